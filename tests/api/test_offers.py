"""Routing over HTTP: a handoff is queued by skill, offered to an available agent with room, and accepted,
declined or left to expire; the offer carries the handoff card."""

from __future__ import annotations

from datetime import timedelta

from tandem import commands as cmd
from tandem.case import events as ev
from tandem.case.envelope import Actor
from tests.api.conftest import ADMIN_TOKEN, Api


async def test_a_handoff_is_offered_to_an_available_agent_with_the_skill_and_not_to_others(api: Api) -> None:
    away = await api.staff("Away Ann", available=False)
    unskilled = await api.staff("Fraud Fred", skills=("fraud",))
    skilled = await api.staff("Cards Cora")
    chat = await api.chat()
    await api.hand_over(chat)  # a person, in the tenant's first queue: cards
    assert await api.offers(away) == []
    assert await api.offers(unskilled) == []
    [offer] = await api.offers(skilled)
    assert offer["interaction_id"] == chat.id
    assert offer["queue"] == "cards"
    assert offer["expires_at"] == (api.clock.now() + timedelta(seconds=30)).isoformat()


async def test_accepting_gives_the_agent_the_floor_and_the_customer_sees_a_person(api: Api) -> None:
    agent = await api.staff("Cora")
    chat = await api.chat()
    await api.hand_over(chat)
    [offer] = await api.offers(agent)
    r = await api.call("POST", f"/v1/offers/{offer['id']}/accept", agent.token)
    assert r.status_code == 200
    assert r.json()["interaction_id"] == chat.id
    assert r.json()["floor"]["kind"] == "human" and r.json()["floor"]["participant_id"] == agent.id
    types = [e.type for e in await api.events(chat.id)]
    assert types.index(ev.HANDOFF_ACCEPTED) < types.index(ev.FLOOR_MOVED) < types.index(ev.HANDOFF_CONNECTED)
    assert ev.TIMER_CANCELLED in types  # the expiry will not fire for an answered offer
    seen = (await api.call("GET", f"/v1/interactions/{chat.id}", chat.token)).json()
    assert seen["floor"] == {"kind": "human"}
    assert seen["handoff"]["status"] == "connected"
    assert await api.offers(agent) == []


async def test_the_offer_carries_a_handoff_card_with_verified_facts_so_the_agent_does_not_ask_again(api: Api) -> None:
    agent = await api.staff("Cora")
    channel = await api.channel()
    caller = {"channel": "voice", "customer": {"phone": "(415) 555-0134"}}
    r = await api.call("POST", "/v1/interactions", channel, caller)
    chat_id = r.json()["id"]
    runtime = api.runtime
    await runtime.conductor.execute(
        "bank", chat_id,
        [cmd.Learn("date_of_birth", "1985-03-14", "customer", verified=True),
         cmd.Learn("card_last4", "4242", "system:cards", verified=True),
         cmd.DetectIntent("card_declined", 0.91)],
        Actor("bot", "bot"),
    )  # fmt: skip
    body = {"target": {"kind": "human"}, "reason": "the card is on a fraud hold"}
    assert (await api.call("POST", f"/v1/interactions/{chat_id}/handoff", ADMIN_TOKEN, body)).status_code == 202
    [offer] = await api.offers(agent)
    card = offer["card"]
    assert card["who"]["name"] == "Maria Lopez"
    assert card["who"]["customer_id"] == "C-1001"
    assert card["who"]["identified_by"] == "caller_id"
    assert card["who"]["assurance"] == "identified"
    assert card["why"]["reason"] == "the card is on a fraud hold"
    assert card["why"]["intent"] == {"name": "card_declined", "confidence": 0.91}
    known = {f["name"]: f for f in card["known"]}
    assert known["card_last4"]["value"] == "4242"
    assert known["card_last4"]["verified"] is True
    assert known["card_last4"]["source"] == "system:cards"
    assert known["date_of_birth"]["source"] == "customer"
    assert [line["from"] for line in card["tried"]["last_lines"]] == ["bot"]
    assert card["pending"] == {"actions": [], "questions": []}
    assert card["suggested_next_step"]


async def test_a_declined_offer_goes_to_someone_else_and_not_back_to_the_decliner(api: Api) -> None:
    first = await api.staff("First")
    chat = await api.chat()
    await api.hand_over(chat)
    [offer] = await api.offers(first)
    second = await api.staff("Second", available=False)
    await api.presence(second, "available")
    r = await api.call("POST", f"/v1/offers/{offer['id']}/decline", first.token, {"reason": "on a break"})
    assert r.status_code == 200
    assert r.json()["floor"]["kind"] == "bot"
    assert await api.offers(first) == []
    [again] = await api.offers(second)
    assert again["interaction_id"] == chat.id and again["id"] != offer["id"]
    types = [e.type for e in await api.events(chat.id)]
    assert types.count(ev.HANDOFF_QUEUED) == 2 and ev.HANDOFF_DECLINED in types


async def test_an_offer_left_to_expire_returns_to_the_queue_and_accepting_it_is_gone(api: Api) -> None:
    agent = await api.staff("Sleepy")
    chat = await api.chat()
    await api.hand_over(chat)
    [offer] = await api.offers(agent)
    api.clock.advance(timedelta(seconds=31))
    assert await api.runtime.timers.fire_due() == 1
    await api.runtime.router.step()
    types = [e.type for e in await api.events(chat.id)]
    assert types.index(ev.TIMER_FIRED) < types.index(ev.HANDOFF_EXPIRED) < len(types) - 1
    assert types[-1] == ev.HANDOFF_QUEUED
    r = await api.call("POST", f"/v1/offers/{offer['id']}/accept", agent.token)
    assert r.status_code == 410
    assert r.json()["error"]["code"] == "offer_expired"
    # Whoever let an offer run out is set away, so the customer is not offered to an empty desk again.
    listed = (await api.call("GET", "/v1/agents", ADMIN_TOKEN)).json()["items"]
    assert [a["presence"] for a in listed if a["id"] == agent.id] == ["away"]
    queues = (await api.call("GET", "/v1/queues", ADMIN_TOKEN)).json()["items"]
    assert {q["name"]: q["waiting"] for q in queues}["cards"] == 1


async def test_an_offer_past_its_expiry_is_gone_even_before_its_timer_fires(api: Api) -> None:
    agent = await api.staff("Late")
    chat = await api.chat()
    await api.hand_over(chat)
    [offer] = await api.offers(agent)
    api.clock.advance(timedelta(seconds=30))
    r = await api.call("POST", f"/v1/offers/{offer['id']}/accept", agent.token)
    assert r.status_code == 410
    state = await api.runtime.conductor.load(chat.id)
    assert state.floor.kind == "bot"
    assert [e.type for e in await api.events(chat.id)].count(ev.HANDOFF_EXPIRED) == 1
    # The agent is clearly at the desk: the customer is offered to them again, as a new offer.
    await api.runtime.router.step()
    [again] = await api.offers(agent)
    assert again["id"] != offer["id"]


async def test_accepting_with_full_capacity_is_a_conflict_and_leaves_the_offer_open(api: Api) -> None:
    agent = await api.staff("Busy", capacity=1)
    held = await api.chat()
    await api.hand_over(held)
    await api.take(agent, held)
    waiting = await api.chat()
    # Asked for by name, the offer reaches the agent even though they are full; taking it must wait.
    await api.hand_over(waiting, ADMIN_TOKEN, {"kind": "agent", "id": agent.id})
    [offer] = await api.offers(agent)
    assert api.runtime.summaries is not None
    await api.runtime.summaries.step()  # the handoffs' summaries are written: nothing else may be
    before = len(await api.all_events())
    r = await api.call("POST", f"/v1/offers/{offer['id']}/accept", agent.token)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "capacity_full"
    assert len(await api.all_events()) == before
    assert [o["id"] for o in await api.offers(agent)] == [offer["id"]]
    r = await api.call("POST", f"/v1/interactions/{held.id}/handback", agent.token, {"step": "anything_else"})
    assert r.status_code == 200
    assert (await api.call("POST", f"/v1/offers/{offer['id']}/accept", agent.token)).status_code == 200


async def test_answering_an_offer_twice_is_already_decided(api: Api) -> None:
    agent = await api.staff("Cora", capacity=2)
    chat = await api.chat()
    await api.hand_over(chat)
    [offer] = await api.offers(agent)
    assert (await api.call("POST", f"/v1/offers/{offer['id']}/accept", agent.token)).status_code == 200
    r = await api.call("POST", f"/v1/offers/{offer['id']}/decline", agent.token)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "already_decided"


async def test_the_oldest_waiting_handoff_is_offered_first(api: Api) -> None:
    first, second = await api.chat(), await api.chat()
    await api.hand_over(first)
    api.clock.advance(timedelta(seconds=5))
    await api.hand_over(second)
    queues = (await api.call("GET", "/v1/queues", ADMIN_TOKEN)).json()["items"]
    cards = next(q for q in queues if q["name"] == "cards")
    assert cards == {"name": "cards", "waiting": 2, "agents_available": 0, "oldest_wait_s": 5.0}
    agent = await api.staff("Cora", capacity=1)
    assert [o["interaction_id"] for o in await api.offers(agent)] == [first.id]


async def test_a_handoff_the_bot_requests_during_a_turn_is_queued_and_offered(api: Api) -> None:
    agent = await api.staff("Cora", skills=("fraud",))
    chat = await api.chat()
    await api.runtime.conductor.execute(
        "bank", chat.id, [cmd.RequestHandoff({"kind": "queue", "id": "fraud"}, "a fraud hold")], Actor("bot", "bot")
    )
    await api.runtime.router.step()
    [offer] = await api.offers(agent)
    assert offer["queue"] == "fraud"
    assert offer["card"]["why"]["reason"] == "a fraud hold"


async def test_hand_back_returns_the_floor_to_the_bot_which_resumes(api: Api) -> None:
    agent = await api.staff("Cora")
    chat = await api.chat()
    await api.hand_over(chat)
    await api.take(agent, chat)
    body = {"flow": "card_declined", "step": "anything_else", "goal": "confirm the card works", "instructions": "x"}
    r = await api.call("POST", f"/v1/interactions/{chat.id}/handback", agent.token, body)
    assert r.status_code == 200
    assert r.json()["floor"]["kind"] == "bot"
    state = await api.runtime.conductor.load(chat.id)
    assert state.handoff is None and state.handoffs[-1]["status"] == "completed"
    assert state.resume_at is not None and state.resume_at["goal"] == "confirm the card works"
    # The agent no longer holds it: a second hand-back is refused by the floor fence.
    again = await api.call("POST", f"/v1/interactions/{chat.id}/handback", agent.token, {})
    assert again.status_code == 409 and again.json()["error"]["code"] == "floor_not_held"
    agents = (await api.call("GET", "/v1/agents", ADMIN_TOKEN)).json()["items"]
    assert [a["load"] for a in agents if a["id"] == agent.id] == [0]
