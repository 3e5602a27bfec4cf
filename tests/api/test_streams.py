"""Server-sent event streams: per audience, resumable with Last-Event-ID, opened by browsers with tickets."""

from __future__ import annotations

from tandem import commands as cmd
from tandem.case import events as ev
from tandem.case.envelope import Actor
from tests.api.conftest import ADMIN_TOKEN, Api, stream

HIDDEN_FROM_CUSTOMERS = {ev.FACT_LEARNED, ev.FACT_CORRECTED, ev.WHISPER_SENT, ev.ACTION_PROPOSED, ev.ACTION_DECIDED,
                         ev.INTENT_DETECTED, ev.SENTIMENT_ASSESSED, ev.HANDOFF_OFFERED}  # fmt: skip


async def test_a_customer_stream_resumes_after_the_last_event_id_without_gaps_or_repeats(api: Api) -> None:
    chat = await api.chat()
    path = f"/v1/interactions/{chat.id}/stream"
    async with stream(api, path, chat.token) as s:
        first = await s.until(lambda e: e.data["type"] == ev.REPLY_SENT)
        assert first[-1].data == {"seq": first[-1].id, "type": "ReplySent", "from": "bot", "text": "hello",
                                  "at": api.clock.now().isoformat()}  # fmt: skip
        r = await api.call("POST", f"/v1/interactions/{chat.id}/messages", chat.token, {"text": "one"})
        assert r.json()["replies"][0]["text"] == "you said: one"
        seen = await s.until(lambda e: e.data.get("text") == "you said: one")
    last = seen[-1].id
    # Disconnected, the customer misses two lines; on reconnect they come first, and nothing before them.
    for text in ("two", "three"):
        await api.call("POST", f"/v1/interactions/{chat.id}/messages", chat.token, {"text": text})
    async with stream(api, path, chat.token, **{"Last-Event-ID": str(last)}) as s:
        missed = await s.until(lambda e: e.data.get("text") == "you said: three")
        assert [e.data["text"] for e in missed] == ["two", "you said: two", "three", "you said: three"]
        assert all(e.id > last for e in missed)
        await api.call("POST", f"/v1/interactions/{chat.id}/messages", chat.token, {"text": "four"})
        live = await s.until(lambda e: e.data.get("text") == "you said: four")
        assert [e.data["text"] for e in live] == ["four", "you said: four"]


async def test_a_customer_stream_never_carries_facts_whispers_or_policy_decisions(api: Api) -> None:
    supervisor = await api.staff("Sam", role="supervisor", available=False)
    chat = await api.chat()
    secret = "the customer's fraud score is 0.82"
    await api.runtime.conductor.execute(
        "bank", chat.id,
        [cmd.Learn("fraud_score", 0.82, "signal:fraud"), cmd.DetectIntent("card_declined", 0.9),
         cmd.Emit(ev.ACTION_PROPOSED, {"action_id": "act_1", "tool": "release_hold", "args": {"card": "4242"},
                                       "args_digest": "d1"}),
         cmd.Emit(ev.ACTION_DECIDED, {"action_id": "act_1", "outcome": "require_approval", "rule": "holds",
                                      "policy_version": "p1", "requires": "agent"})],
        Actor("bot", "bot"),
    )  # fmt: skip
    whisper = {"to": "agent", "text": secret}
    assert (await api.call("POST", f"/v1/interactions/{chat.id}/whisper", supervisor.token, whisper)).status_code == 202
    fact = {"name": "zip", "value": "94110"}
    assert (await api.call("POST", f"/v1/interactions/{chat.id}/facts", supervisor.token, fact)).status_code == 201
    await api.call("POST", f"/v1/interactions/{chat.id}/messages", chat.token, {"text": "are you there?"})
    await api.call("POST", f"/v1/interactions/{chat.id}/close", chat.token, {})
    async with stream(api, f"/v1/interactions/{chat.id}/stream", chat.token) as s:
        everything = await s.rest()  # a customer's stream ends with the interaction
    types = [e.data["type"] for e in everything]
    assert types[-1] == ev.INTERACTION_CLOSED
    assert not HIDDEN_FROM_CUSTOMERS & set(types)
    assert all(set(e.data) <= {"seq", "type", "from", "text", "at", "floor", "handoff", "status"} for e in everything)
    raw = "\n".join(s.raw)
    assert secret not in raw and "94110" not in raw and "fraud" not in raw and "release_hold" not in raw
    # Staff following the same interaction see the whole envelope, whisper included.
    async with stream(api, f"/v1/interactions/{chat.id}/stream", supervisor.token) as staff:
        seen = await staff.until(lambda e: e.data["type"] == ev.INTERACTION_CLOSED)
    assert {ev.WHISPER_SENT, ev.FACT_LEARNED, ev.ACTION_DECIDED} <= {e.data["type"] for e in seen}
    assert all(e.id == e.data["seq"] for e in seen)


async def test_a_finished_customer_stream_answers_204_so_the_browser_stops_reconnecting(api: Api) -> None:
    chat = await api.chat()
    await api.call("POST", f"/v1/interactions/{chat.id}/close", chat.token, {})
    assert api.runtime.summaries is not None
    await api.runtime.summaries.step()  # the close's summary is the interaction's last event
    version = len(await api.events(chat.id))
    r = await api.call("GET", f"/v1/interactions/{chat.id}/stream", chat.token, headers={"Last-Event-ID": str(version)})
    assert r.status_code == 204


async def test_a_stream_ticket_opens_one_stream_once(api: Api) -> None:
    chat = await api.chat()
    other = await api.chat()
    r = await api.call("POST", "/v1/stream-tickets", chat.token, {"path": f"/v1/interactions/{chat.id}/stream"})
    assert r.status_code == 201
    ticket = r.json()["ticket"]
    wrong = await api.client.get(f"/v1/interactions/{other.id}/stream", params={"ticket": ticket})
    assert wrong.status_code == 403
    ticket = (await api.call("POST", "/v1/stream-tickets", chat.token, {"interaction_id": chat.id})).json()["ticket"]
    url = f"/v1/interactions/{chat.id}/stream"
    async with api.client.stream("GET", url, params={"ticket": ticket, "last_event_id": "2"}) as response:
        assert response.status_code == 200
    again = await api.client.get(url, params={"ticket": ticket})
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "unauthorized"
    denied = await api.call("POST", "/v1/stream-tickets", chat.token, {"interaction_id": other.id})
    assert denied.status_code == 404


async def test_an_agent_stream_brings_offers_with_their_card_then_the_held_interaction_and_resumes(api: Api) -> None:
    agent = await api.staff("Cora")
    chat = await api.chat()
    path = f"/v1/agents/{agent.id}/stream"
    async with stream(api, path, agent.token) as s:
        await api.hand_over(chat)
        offered = await s.until(lambda e: e.data["type"] == ev.HANDOFF_OFFERED)
        offer = offered[-1].data["offer"]
        assert offer["interaction_id"] == chat.id and offer["card"]["why"]["queue"] == "cards"
        assert offered[-1].id == offered[-1].data["position"]
        r = await api.call("POST", f"/v1/offers/{offer['id']}/accept", agent.token)
        assert r.status_code == 200
        moved = await s.until(lambda e: e.data["type"] == ev.HANDOFF_CONNECTED)
        assert ev.FLOOR_MOVED in [e.data["type"] for e in moved]
        last = moved[-1].id
    await api.call("POST", f"/v1/interactions/{chat.id}/messages", chat.token, {"text": "hello agent"})
    unrelated = await api.chat()
    await api.call("POST", f"/v1/interactions/{unrelated.id}/messages", unrelated.token, {"text": "not for Cora"})
    async with stream(api, path, agent.token, **{"Last-Event-ID": str(last)}) as s:
        missed = await s.until(lambda e: e.data["type"] == ev.CUSTOMER_SAID)
        assert missed[-1].data["data"]["text"] == "hello agent"
        assert {e.data["interaction_id"] for e in missed} == {chat.id}
        assert all(e.id > last for e in missed)


async def test_streams_refuse_what_the_caller_may_not_follow(api: Api) -> None:
    agent = await api.staff("Cora")
    other_agent = await api.staff("Olga")
    chat = await api.chat()
    r = await api.call("GET", f"/v1/agents/{agent.id}/stream", other_agent.token)
    assert r.status_code == 403
    r = await api.call("GET", f"/v1/interactions/{chat.id}/stream", other_agent.token)
    assert r.status_code == 403
    r = await api.call("GET", f"/v1/interactions/{chat.id}/stream", None)
    assert r.status_code == 401
    r = await api.call("GET", f"/v1/interactions/{chat.id}/stream", chat.token, headers={"Last-Event-ID": "x"})
    assert r.status_code == 400
    admin = await api.call("POST", "/v1/stream-tickets", ADMIN_TOKEN, {"agent_id": agent.id})
    assert admin.status_code == 403
