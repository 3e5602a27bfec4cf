"""Starting and continuing interactions, what each audience reads, and the staff's tools on a case."""

from __future__ import annotations

from datetime import timedelta

from tandem import commands as cmd
from tandem.case import events as ev
from tandem.case.envelope import Actor
from tests.api.conftest import ADMIN_TOKEN, Api

MARIA_PHONE = "+1 (415) 555-0134"


# -- continuation only for trusted callers ---------------------------------------------------------------------
async def test_a_trusted_channel_identifies_a_caller_by_phone_and_continues_their_open_case(api: Api) -> None:
    channel = await api.channel()
    r = await api.call("POST", "/v1/interactions", channel, {"channel": "voice", "customer": {"phone": MARIA_PHONE}})
    assert r.status_code == 201
    first = r.json()
    assert first["continued"] is False
    state = await api.runtime.conductor.load(first["id"])
    assert state.customer_id == "C-1001"
    assert state.assurance(first["leg_id"]).label == "identified"
    again = await api.call("POST", "/v1/interactions", channel, {"channel": "sms", "customer": {"phone": MARIA_PHONE}})
    assert again.status_code == 201
    assert again.json()["continued"] is True
    assert again.json()["id"] == first["id"]
    assert again.json()["leg_id"] != first["leg_id"]
    state = await api.runtime.conductor.load(first["id"])
    assert [leg.channel for leg in state.legs.values()] == ["voice", "sms"]


async def test_an_anonymous_caller_claiming_a_customers_phone_gets_a_new_unauthenticated_case(api: Api) -> None:
    channel = await api.channel()
    r = await api.call("POST", "/v1/interactions", channel, {"channel": "voice", "customer": {"phone": MARIA_PHONE}})
    marias = r.json()["id"]
    claim = await api.call(
        "POST", "/v1/interactions", None, {"channel": "chat", "customer": {"phone": MARIA_PHONE, "id": "C-1001"}}
    )
    assert claim.status_code == 201
    assert claim.json()["continued"] is False
    assert claim.json()["id"] != marias
    state = await api.runtime.conductor.load(claim.json()["id"])
    assert state.customer_id != "C-1001"
    assert state.assurance().label == "none"
    # Nothing of Maria's case reached the claimant, and her case has no new leg.
    greeting = {"seq": 3, "from": "bot", "text": "hello", "at": api.clock.now().isoformat()}
    assert claim.json()["state"]["transcript"] == [greeting]
    assert len((await api.runtime.conductor.load(marias)).legs) == 1
    token_reach = await api.call("GET", f"/v1/interactions/{marias}", claim.json()["customer_token"])
    assert token_reach.status_code == 404


async def test_only_trusted_callers_may_state_assurance(api: Api) -> None:
    body = {"channel": "chat", "customer": {"id": "C-1002"}, "assurance": "authenticated"}
    anonymous = await api.call("POST", "/v1/interactions", None, body)
    assert anonymous.status_code == 403
    assert "trusted" in anonymous.json()["error"]["message"]
    r = await api.call("POST", "/v1/interactions", ADMIN_TOKEN, body)
    assert r.status_code == 201
    state = await api.runtime.conductor.load(r.json()["id"])
    assert state.customer_id == "C-1002" and state.assurance().label == "strong"
    again = await api.call("POST", "/v1/interactions", ADMIN_TOKEN, {"channel": "api", "customer": {"id": "C-1002"}})
    assert again.json()["continued"] is True and again.json()["id"] == r.json()["id"]
    anonymous_voice = await api.call("POST", "/v1/interactions", None, {"channel": "voice"})
    assert anonymous_voice.status_code == 403


async def test_a_channel_token_starts_only_its_own_channel_kinds(api: Api) -> None:
    sms_only = await api.channel(("sms",))
    r = await api.call("POST", "/v1/interactions", sms_only, {"channel": "voice", "customer": {"phone": MARIA_PHONE}})
    assert r.status_code == 403
    assert (await api.call("POST", "/v1/interactions", sms_only, {"channel": "sms"})).status_code == 201


async def test_a_customer_token_reaches_only_its_own_interaction(api: Api) -> None:
    mine, theirs = await api.chat(), await api.chat()
    assert (await api.call("GET", f"/v1/interactions/{mine.id}", mine.token)).status_code == 200
    for method, path, body in [
        ("GET", f"/v1/interactions/{theirs.id}", None),
        ("POST", f"/v1/interactions/{theirs.id}/messages", {"text": "hi"}),
        ("POST", f"/v1/interactions/{theirs.id}/close", {}),
    ]:
        r = await api.call(method, path, mine.token, body)
        assert r.status_code == 404, (path, r.text)


# -- what each audience reads ----------------------------------------------------------------------------------
async def test_a_customer_reads_a_reduced_view_and_staff_read_the_case(api: Api) -> None:
    agent = await api.staff("Cora")
    chat = await api.chat(customer={"name": "Maria"})
    await api.runtime.conductor.execute(
        "bank", chat.id, [cmd.Learn("zip", "94110", "customer"), cmd.AssessSentiment(-0.4, "frustrated")],
        Actor("bot", "bot"),
    )  # fmt: skip
    await api.hand_over(chat)
    await api.take(agent, chat)
    reduced = (await api.call("GET", f"/v1/interactions/{chat.id}", chat.token)).json()
    assert set(reduced) == {"id", "status", "seq", "floor", "handoff", "transcript"}
    assert reduced["floor"] == {"kind": "human"}
    assert reduced["handoff"]["status"] == "connected"
    full = (await api.call("GET", f"/v1/interactions/{chat.id}", agent.token)).json()
    for name in ("id", "status", "legs", "floor", "handoff", "partners", "facts", "intents", "sentiment", "actions",
                 "summary", "release"):  # fmt: skip
        assert name in full
    assert full["facts"]["zip"]["value"] == "94110" and full["facts"]["zip"]["source"] == "customer"
    assert full["floor"] == {"kind": "human", "participant_id": agent.id, "epoch": 1}
    assert full["sentiment"]["label"] == "frustrated"


async def test_the_event_log_pages_with_a_cursor(api: Api) -> None:
    chat = await api.chat()
    for text in ("a", "b", "c"):
        await api.call("POST", f"/v1/interactions/{chat.id}/messages", chat.token, {"text": text})
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": "4"} | ({"cursor": cursor} if cursor else {})
        page = (await api.call("GET", f"/v1/interactions/{chat.id}/events", ADMIN_TOKEN, params=params)).json()
        seen += [e["seq"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(1, len(await api.events(chat.id)) + 1))
    envelope = page["items"][0]
    assert set(envelope) >= {"event_id", "tenant_id", "interaction_id", "seq", "position", "type", "schema_version",
                             "occurred_at", "recorded_at", "actor", "floor_epoch", "data"}  # fmt: skip
    after = (await api.call("GET", f"/v1/interactions/{chat.id}/events", ADMIN_TOKEN, params={"after": "9"})).json()
    assert after["items"][0]["seq"] == 10


async def test_search_filters_by_status_customer_and_floor_and_pages(api: Api) -> None:
    channel = await api.channel()
    maria = await api.call("POST", "/v1/interactions", channel, {"channel": "voice", "customer": {"id": "C-1001"}})
    chats = [await api.chat() for _ in range(3)]
    await api.call("POST", f"/v1/interactions/{chats[0].id}/close", chats[0].token, {})
    found = (await api.call("GET", "/v1/interactions", ADMIN_TOKEN, params={"customer": "C-1001"})).json()
    assert [i["id"] for i in found["items"]] == [maria.json()["id"]]
    closed = (await api.call("GET", "/v1/interactions", ADMIN_TOKEN, params={"status": "closed"})).json()
    assert [i["id"] for i in closed["items"]] == [chats[0].id]
    ids: list[str] = []
    cursor = None
    while True:
        params = {"status": "open", "floor": "bot", "limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = (await api.call("GET", "/v1/interactions", ADMIN_TOKEN, params=params)).json()
        ids += [i["id"] for i in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert sorted(ids) == sorted([maria.json()["id"], chats[1].id, chats[2].id])
    other_tenant = await api.call("GET", "/v1/interactions", ADMIN_TOKEN, headers={"X-Tandem-Tenant": "health"})
    assert other_tenant.json()["items"] == []


async def test_an_admin_of_every_tenant_must_name_the_tenant_for_lists(api: Api) -> None:
    r = await api.client.get("/v1/interactions", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 400
    assert "X-Tandem-Tenant" in r.json()["error"]["message"]
    supervisor = await api.staff("Sam", role="supervisor", available=False)
    r = await api.call("GET", "/v1/interactions", supervisor.token, headers={"X-Tandem-Tenant": "health"})
    assert r.status_code == 403


# -- staff's tools -----------------------------------------------------------------------------------------------
async def test_an_agent_speaks_only_while_holding_the_floor(api: Api) -> None:
    agent = await api.staff("Cora")
    chat = await api.chat()
    r = await api.call("POST", f"/v1/interactions/{chat.id}/messages", agent.token, {"text": "hello?"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "floor_not_held"
    await api.hand_over(chat)
    await api.take(agent, chat)
    r = await api.call("POST", f"/v1/interactions/{chat.id}/messages", agent.token, {"text": "Hi, I'm Cora"})
    assert r.status_code == 200
    assert r.json()["replies"] == [] and r.json()["floor"]["participant_id"] == agent.id
    stale = await api.call("POST", f"/v1/interactions/{chat.id}/messages", agent.token, {"text": "x", "floor_epoch": 0})
    assert stale.status_code == 409
    said = [e for e in await api.events(chat.id) if e.type == ev.AGENT_SAID]
    assert [(e.data["text"], e.actor.kind, e.actor.id) for e in said] == [("Hi, I'm Cora", "human", agent.id)]


async def test_a_supervisor_whispers_barges_and_corrects_facts(api: Api) -> None:
    agent = await api.staff("Cora")
    supervisor = await api.staff("Sam", role="supervisor", available=False)
    chat = await api.chat()
    await api.hand_over(chat)
    await api.take(agent, chat)
    whisper = {"to": "agent", "text": "ask about travel"}
    r = await api.call("POST", f"/v1/interactions/{chat.id}/whisper", supervisor.token, whisper)
    assert r.status_code == 202
    agent_view = (await api.call("GET", f"/v1/interactions/{chat.id}", agent.token)).json()
    assert agent_view["whispers"][0]["text"] == "ask about travel"
    r = await api.call("POST", f"/v1/interactions/{chat.id}/facts", supervisor.token, {"name": "zip", "value": "94110"})
    assert r.status_code == 201
    assert r.json()["fact"]["source"] == f"supervisor:{supervisor.id}" and r.json()["fact"]["verified"] is True
    r = await api.call("POST", f"/v1/interactions/{chat.id}/barge", supervisor.token)
    assert r.status_code == 200
    assert r.json()["floor"]["kind"] == "supervisor" and r.json()["floor"]["participant_id"] == supervisor.id
    # The agent lost the floor to the barge: their line is fenced off.
    r = await api.call("POST", f"/v1/interactions/{chat.id}/messages", agent.token, {"text": "still me"})
    assert r.status_code == 409
    r = await api.call("POST", f"/v1/interactions/{chat.id}/messages", supervisor.token, {"text": "Sam here"})
    assert r.status_code == 200


async def test_an_agent_holding_the_floor_corrects_a_fact_with_their_name_as_source(api: Api) -> None:
    agent = await api.staff("Cora")
    chat = await api.chat()
    await api.runtime.conductor.execute("bank", chat.id, [cmd.Learn("zip", "94111", "customer")], Actor("bot", "bot"))
    r = await api.call("POST", f"/v1/interactions/{chat.id}/facts", agent.token, {"name": "zip", "value": "94110"})
    assert r.status_code == 409
    await api.hand_over(chat)
    await api.take(agent, chat)
    r = await api.call("POST", f"/v1/interactions/{chat.id}/facts", agent.token, {"name": "zip", "value": "94110"})
    assert r.status_code == 201
    assert r.json()["fact"] == {**r.json()["fact"], "name": "zip", "value": "94110", "source": f"agent:{agent.id}"}


async def _awaiting_approval(api: Api, interaction_id: str, requires: str = "agent", **decided: str) -> str:
    await api.runtime.conductor.execute(
        "bank", interaction_id,
        [cmd.Emit(ev.ACTION_PROPOSED, {"action_id": "act_1", "tool": "release_hold", "args": {"card": "4242"},
                                       "args_digest": "d1"}),
         cmd.Emit(ev.ACTION_DECIDED, {"action_id": "act_1", "outcome": "require_approval", "rule": "holds",
                                      "policy_version": "p1", "requires": requires, **decided})],
        Actor("ai", "ai"),
    )  # fmt: skip
    return "act_1"


async def test_an_action_awaiting_approval_is_decided_once(api: Api) -> None:
    agent = await api.staff("Cora")
    chat = await api.chat()
    await api.hand_over(chat)
    await api.take(agent, chat)
    action = await _awaiting_approval(api, chat.id)
    r = await api.call("POST", f"/v1/interactions/{chat.id}/actions/{action}/approve", agent.token, {"reason": "ok"})
    assert r.status_code == 200
    assert r.json()["action"]["status"] == "approved"
    assert r.json()["action"]["approval"]["by"] == agent.id
    approved = [e for e in await api.events(chat.id) if e.type == ev.ACTION_APPROVED]
    assert approved[0].data["args_digest"] == "d1"  # the approval is bound to these arguments
    again = await api.call("POST", f"/v1/interactions/{chat.id}/actions/{action}/reject", agent.token, {})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_decided"


async def test_an_approval_after_its_window_is_gone_and_one_for_other_arguments_is_a_conflict(api: Api) -> None:
    supervisor = await api.staff("Sam", role="supervisor", available=False)
    chat = await api.chat()
    deadline = (api.clock.now() + timedelta(minutes=5)).isoformat()
    action = await _awaiting_approval(api, chat.id, expires_at=deadline)
    path = f"/v1/interactions/{chat.id}/actions/{action}/approve"
    r = await api.call("POST", path, supervisor.token, {"args_digest": "something-else"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "version_conflict"
    api.clock.advance(timedelta(minutes=5))
    before = await api.all_events()
    r = await api.call("POST", path, supervisor.token, {"args_digest": "d1"})
    assert r.status_code == 410 and r.json()["error"]["code"] == "approval_expired"
    assert await api.all_events() == before


async def test_an_action_that_needs_a_supervisor_is_not_approved_by_an_agent(api: Api) -> None:
    agent = await api.staff("Cora")
    supervisor = await api.staff("Sam", role="supervisor", available=False)
    chat = await api.chat()
    await api.hand_over(chat)
    await api.take(agent, chat)
    action = await _awaiting_approval(api, chat.id, requires="supervisor")
    r = await api.call("POST", f"/v1/interactions/{chat.id}/actions/{action}/approve", agent.token, {})
    assert r.status_code == 403
    path = f"/v1/interactions/{chat.id}/actions/{action}/reject"
    r = await api.call("POST", path, supervisor.token, {"reason": "no"})
    assert r.status_code == 200 and r.json()["action"]["status"] == "rejected"


async def test_wrap_up_is_recorded_after_the_customer_leaves(api: Api) -> None:
    agent = await api.staff("Cora")
    chat = await api.chat()
    await api.hand_over(chat)
    await api.take(agent, chat)
    closed = await api.call("POST", f"/v1/interactions/{chat.id}/close", chat.token, {"disposition": "done"})
    assert closed.status_code == 200
    body = {"disposition": "resolved", "notes": "released the hold"}
    r = await api.call("POST", f"/v1/interactions/{chat.id}/wrapup", agent.token, body)
    assert r.status_code == 200
    assert r.json()["wrapup"] == {"disposition": "resolved", "notes": "released the hold", "by": agent.id}
    agents = (await api.call("GET", "/v1/agents", ADMIN_TOKEN)).json()["items"]
    assert [a["load"] for a in agents if a["id"] == agent.id] == [0]


async def test_closing_abandons_a_waiting_handoff_and_withdraws_its_offer(api: Api) -> None:
    agent = await api.staff("Cora")
    chat = await api.chat()
    await api.hand_over(chat)
    [offer] = await api.offers(agent)
    assert (await api.call("POST", f"/v1/interactions/{chat.id}/close", chat.token, {})).status_code == 200
    assert await api.offers(agent) == []
    r = await api.call("POST", f"/v1/offers/{offer['id']}/accept", agent.token)
    assert r.status_code == 410


# -- operations ----------------------------------------------------------------------------------------------------
async def test_metrics_count_interactions_floors_turns_and_queues(api: Api) -> None:
    agent = await api.staff("Cora")
    held, waiting, closed = await api.chat(), await api.chat(), await api.chat()
    await api.hand_over(held)
    await api.take(agent, held)
    await api.hand_over(waiting)
    await api.call("POST", f"/v1/interactions/{closed.id}/close", closed.token, {})
    m = (await api.call("GET", "/v1/metrics", ADMIN_TOKEN)).json()
    assert m["interactions"] == {"open": 2, "closed": 1}
    assert m["open_by_floor"] == {"bot": 1, "human": 1}
    assert m["turns"] == 3  # three greetings
    assert {q["name"]: q["waiting"] for q in m["queues"]}["cards"] == 1
    assert m["agents"] == {"available": 1, "busy": 0, "away": 0}


async def test_health_readiness_release_me_and_the_openapi_document(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"store": "ok", "reactors": "ok"}
    release = (await api.call("GET", "/v1/release", ADMIN_TOKEN)).json()
    assert release["kind"] == "built-in" and release["publishing"] is False
    assert (await api.call("GET", "/v1/me", ADMIN_TOKEN)).json() == {"role": "admin", "id": "admin", "tenant": None}
    spec = (await api.client.get("/openapi.json")).json()
    expected = {"/v1/interactions", "/v1/interactions/{interaction_id}/messages", "/v1/offers/{offer_id}/accept",
                "/v1/agents/{agent_id}/stream", "/v1/queues", "/v1/stream-tickets", "/healthz", "/readyz"}  # fmt: skip
    assert expected <= set(spec["paths"])


async def test_readiness_fails_with_the_failing_check_when_the_reactors_stop(api: Api) -> None:
    await api.runtime.stop()
    r = await api.client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["reactors"] == "not running"
    assert r.headers["retry-after"] == "5"


async def test_the_web_pages_are_served_when_installed(api: Api) -> None:
    index = await api.client.get("/")
    assert index.status_code == 200 and "text/html" in index.headers["content-type"]
    chat = await api.client.get("/chat")
    assert chat.status_code == 200 and "text/html" in chat.headers["content-type"]
    assert (await api.client.get("/static/api.js")).status_code == 200
    assert (await api.client.get("/no-such-page")).status_code == 404


async def test_a_timer_of_a_closed_interaction_is_cancelled_instead_of_fired(api: Api) -> None:
    chat = await api.chat()
    due = api.clock.now() + timedelta(seconds=10)
    await api.runtime.conductor.execute(
        "bank", chat.id, [cmd.ScheduleTimer("no_input", due, timer_id="tmr_x")], Actor("bot", "bot")
    )
    await api.call("POST", f"/v1/interactions/{chat.id}/close", chat.token, {})
    api.clock.advance(timedelta(seconds=11))
    assert await api.runtime.timers.fire_due() == 0
    assert [e.type for e in await api.events(chat.id)][-1] == ev.TIMER_CANCELLED
    assert await api.runtime.store.due_timers(api.clock.now()) == []
