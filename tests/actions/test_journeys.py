"""The action lifecycle end to end, with the example MCP servers running as real processes."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from tandem import commands as cmd
from tandem.actions import approvals, lifecycle
from tandem.case import events as ev
from tandem.case.envelope import SYSTEM
from tandem.clock import ManualClock
from tandem.conductor import FloorNotHeld, Input
from tandem.world.world import EXAMPLES_DIR
from tests.actions.support import (
    AGENT,
    AISHA_PLAN,
    BOT,
    JAMES_DISPUTE,
    MARIA_HOLD,
    ROBERT_RESCHEDULE,
    SUPERVISOR,
    deployment,
    events_of,
    hand_to_agent,
    maria_facts,
    propose,
    settled,
    verified_case,
)

pytestmark = pytest.mark.slow


def policy_copy(tmp_path: Path, tenant_dir: str, edit: dict[str, str]) -> Path:
    """A copy of a shipped policy with some text replaced, its servers and world still the shipped ones."""
    source = EXAMPLES_DIR / tenant_dir
    text = (source / "policy.yaml").read_text()
    for old, new in edit.items():
        assert old in text, old
        text = text.replace(old, new)
    text = text.replace("servers: mcp/servers.yaml", f"servers: {source / 'mcp' / 'servers.yaml'}")
    text = text.replace("data_scopes: signals.yaml", f"data_scopes: {source / 'signals.yaml'}")
    folder = tmp_path / "release" / tenant_dir
    folder.mkdir(parents=True)
    (folder / "world.yaml").write_text((source / "world.yaml").read_text())
    (folder / "policy.yaml").write_text(text)
    return folder / "policy.yaml"


def pin_of(tenant_dir: str, tool: str) -> str:
    text = (EXAMPLES_DIR / tenant_dir / "policy.yaml").read_text()
    match = re.search(rf"\n  {tool}:\n(?:    .*\n)*?    schema_sha256: ([0-9a-f]{{64}})", text)
    assert match, tool
    return match.group(1)


async def test_marias_hold_is_released_automatically_once_verified_and_the_result_outranks_the_signal(
    tmp_path: Path,
) -> None:
    async with deployment(tmp_path, ["bank"]) as d:
        iid = await verified_case(d, "bank", "C-1001", facts=maria_facts())
        action_id = await propose(d, "bank", iid, "release_fraud_hold", MARIA_HOLD)
        action = await settled(d.conductor, iid, action_id, {"succeeded", "failed"})
        assert action["status"] == "succeeded"
        assert action["decision"]["rule"] == "verified_low_risk_small"
        assert action["decision"]["policy_version"].startswith("harbor-bank-policy@")
        started = await events_of(d, iid, ev.ACTION_STARTED)
        assert [s["idempotency_key"] for s in started] == [lifecycle.idempotency_key("bank", action_id)]
        hold = (await d.conductor.load(iid)).facts_for_api(d.conductor.clock.now())["card_hold[card:4242]"]
        assert hold["value"]["status"] == "released"
        assert hold["source"] == "action:release_fraud_hold"
        assert hold["disagreements"][0]["source"] == "signal:card_holds"  # the lagging signal, kept visible
        effects = d.ledger("bank", "fraud", "release_hold")
        assert [e.idempotency_key for e in effects] == [started[0]["idempotency_key"]]


async def test_james_dispute_waits_for_an_agent_and_then_executes_exactly_once(tmp_path: Path) -> None:
    async with deployment(tmp_path, ["bank"]) as d:
        iid = await verified_case(d, "bank", "C-1002")
        action_id = await propose(d, "bank", iid, "open_dispute", JAMES_DISPUTE)
        action = await settled(d.conductor, iid, action_id, {"awaiting_approval"})
        assert action["decision"]["requires"] == "agent"
        await d.actions.worker.catch_up()
        timer = (await d.conductor.load(iid)).timers[lifecycle.approval_timer_id(action_id)]
        assert timer["kind"] == lifecycle.APPROVAL_EXPIRY and timer["status"] == "scheduled"

        with pytest.raises(approvals.NotAllowed):
            await d.actions.approve("bank", iid, action_id, BOT)  # the bot may not approve its own proposal
        with pytest.raises(FloorNotHeld):
            await d.actions.approve("bank", iid, action_id, AGENT)  # an agent approves from the floor
        await hand_to_agent(d, "bank", iid)
        with pytest.raises(approvals.DigestMismatch):
            await d.actions.approve("bank", iid, action_id, AGENT, args_digest="0" * 64)
        assert d.ledger("bank", "core_banking", "open_dispute") == []

        approved = await d.actions.approve("bank", iid, action_id, AGENT, args_digest=action["args_digest"])
        assert approved["approval"]["role"] == "agent"
        with pytest.raises(approvals.AlreadyDecided):
            await d.actions.approve("bank", iid, action_id, SUPERVISOR)
        done = await settled(d.conductor, iid, action_id, {"succeeded", "failed"})
        assert done["status"] == "succeeded" and done["result"]["dispute"]["status"] == "open"
        assert len(d.ledger("bank", "core_banking", "open_dispute")) == 1
        assert (await d.conductor.load(iid)).timers[lifecycle.approval_timer_id(action_id)]["status"] == "cancelled"
        assert len(await events_of(d, iid, ev.ACTION_APPROVED)) == 1


async def test_aishas_payment_plan_is_set_up_automatically(tmp_path: Path) -> None:
    async with deployment(tmp_path, ["health"]) as d:
        iid = await verified_case(d, "health", "MBR-55821")
        action_id = await propose(d, "health", iid, "set_up_payment_plan", AISHA_PLAN)
        action = await settled(d.conductor, iid, action_id, {"succeeded", "failed"})
        assert action["status"] == "succeeded", action
        assert action["decision"]["rule"] == "eligible_member_up_to_1000"
        plan = (await d.conductor.load(iid)).facts_for_api(d.conductor.clock.now())["payment_plan"]
        assert plan["value"]["installment"] == {"amount_minor": 15000, "currency": "USD"}
        assert plan["source"] == "action:set_up_payment_plan"
        assert len(d.ledger("health", "billing", "set_up_payment_plan")) == 1


async def test_roberts_appointment_is_rescheduled_automatically(tmp_path: Path) -> None:
    async with deployment(tmp_path, ["health"]) as d:
        iid = await verified_case(d, "health", "MBR-60317")
        action_id = await propose(d, "health", iid, "reschedule_appointment", ROBERT_RESCHEDULE)
        action = await settled(d.conductor, iid, action_id, {"succeeded", "failed"})
        assert action["status"] == "succeeded", action
        fact = (await d.conductor.load(iid)).facts_for_api(d.conductor.clock.now())["appointment[appointment:APT-3120]"]
        assert fact["value"]["date"] == "2026-12-17" and fact["value"]["previous_date"] == "2026-12-10"


async def test_an_approval_expires_on_its_durable_timer_and_cannot_be_given_after(tmp_path: Path) -> None:
    clock = ManualClock()
    async with deployment(tmp_path, ["bank"], clock=clock) as d:
        iid = await verified_case(d, "bank", "C-1002")
        action_id = await propose(d, "bank", iid, "open_dispute", JAMES_DISPUTE)
        await d.actions.worker.catch_up()
        timer_id = lifecycle.approval_timer_id(action_id)
        assert (await d.conductor.load(iid)).timers[timer_id]["status"] == "scheduled"
        clock.advance(timedelta(minutes=31))
        due = await d.store.due_timers(clock.now())
        assert [t.timer_id for t in due] == [timer_id]
        fired = {"timer_id": timer_id, "kind": lifecycle.APPROVAL_EXPIRY}
        await d.conductor.handle(Input("bank", iid, ev.TIMER_FIRED, fired, SYSTEM))  # as the timer reactor does
        action = await settled(d.conductor, iid, action_id, {"rejected"})
        assert action["approval"]["expired"] is True
        await hand_to_agent(d, "bank", iid)
        with pytest.raises(approvals.ApprovalExpired):
            await d.actions.approve("bank", iid, action_id, AGENT)
        assert d.ledger("bank", "core_banking", "open_dispute") == []


async def test_the_kill_switch_stops_an_approved_action_at_execution_and_denies_new_ones(tmp_path: Path) -> None:
    async with deployment(tmp_path, ["bank"], worker=False) as d:
        iid = await verified_case(d, "bank", "C-1002")
        action_id = await propose(d, "bank", iid, "open_dispute", JAMES_DISPUTE)
        await hand_to_agent(d, "bank", iid)
        await d.actions.approve("bank", iid, action_id, AGENT)
        d.actions.revoke("bank", "open_dispute", "incident 4711: duplicate disputes")
        await d.actions.worker.start()  # the worker only now reaches the approved action
        action = await settled(d.conductor, iid, action_id, {"denied", "succeeded"})
        assert action["status"] == "denied"
        assert action["decision"]["stage"] == "execution" and action["decision"]["rule"] == "kill_switch"
        again = await propose(d, "bank", iid, "open_dispute", JAMES_DISPUTE, by=AGENT)
        assert (await d.conductor.load(iid)).actions[again]["decision"]["rule"] == "kill_switch"
        assert d.ledger("bank", "core_banking", "open_dispute") == []
        assert d.actions.restore("bank", "open_dispute")


async def test_a_tool_whose_schema_no_longer_matches_its_pin_fails_closed(tmp_path: Path) -> None:
    pin = pin_of("bank", "add_note")
    policy = policy_copy(tmp_path, "bank", {pin: "f" * 64})
    async with deployment(tmp_path / "data", ["bank"], policies={"bank": policy}) as d:
        iid = await verified_case(d, "bank", "C-1001")
        action_id = await propose(d, "bank", iid, "add_note", {"customer_id": "C-1001", "text": "called"})
        action = (await d.conductor.load(iid)).actions[action_id]
        assert action["status"] == "denied" and action["decision"]["rule"] == "schema_pin"
        assert "changed" in action["decision"]["reasons"][0]
        assert d.ledger("bank", "crm") == []


async def test_a_refused_effect_fails_and_the_failure_becomes_a_fact(tmp_path: Path) -> None:
    async with deployment(tmp_path, ["bank"]) as d:
        iid = await verified_case(d, "bank", "C-1001")
        args = {"customer_id": "C-1001", "countries": [], "start": "2026-12-04", "end": "2026-12-20"}
        action_id = await propose(d, "bank", iid, "add_travel_notice", args)
        action = await settled(d.conductor, iid, action_id, {"succeeded", "failed"})
        assert action["status"] == "failed" and "at least one country" in action["result"]["error"]
        status = (await d.conductor.load(iid)).facts_for_api(d.conductor.clock.now())[
            f"action_status[action:{action_id}]"
        ]
        assert status["value"]["status"] == "failed" and status["source"] == "action:add_travel_notice"
        assert d.ledger("bank", "fraud") == []


async def test_a_succeeded_action_is_compensated_by_its_declared_undo(tmp_path: Path) -> None:
    async with deployment(tmp_path, ["bank"]) as d:
        iid = await verified_case(d, "bank", "C-1001", facts=maria_facts())
        action_id = await propose(d, "bank", iid, "release_fraud_hold", MARIA_HOLD)
        await settled(d.conductor, iid, action_id, {"succeeded"})
        await hand_to_agent(d, "bank", iid)
        undo_id = await d.actions.compensate("bank", iid, action_id, AGENT, reason="customer did not make it")
        undo = await settled(d.conductor, iid, undo_id, {"succeeded", "failed", "awaiting_approval"})
        assert undo["status"] == "succeeded" and undo["tool"] == "reinstate_fraud_hold"
        original = await settled(d.conductor, iid, action_id, {"compensated"})
        assert original["compensation"]["hold"]["status"] == "held"
        assert original["result"]["hold"]["status"] == "released"  # what it did stays on record
        hold = (await d.conductor.load(iid)).facts_for_api(d.conductor.clock.now())["card_hold[card:4242]"]
        assert hold["value"]["status"] == "held" and hold["source"] == "action:reinstate_fraud_hold"
        effects = d.ledger("bank", "fraud")
        assert [(e.tool, e.status) for e in effects] == [("release_hold", "compensated"), ("reinstate_hold", "applied")]


async def test_a_call_that_times_out_is_reconciled_by_its_key_not_called_again(tmp_path: Path) -> None:
    policy = policy_copy(
        tmp_path, "bank", {"    mcp_tool: release_hold\n": "    mcp_tool: release_hold\n    timeout: 1s\n"}
    )
    env = {"TANDEM_MCP_FAULTS": "release_hold:hang_after_commit"}
    async with deployment(tmp_path / "data", ["bank"], policies={"bank": policy}, server_env=env) as d:
        iid = await verified_case(d, "bank", "C-1001", facts=maria_facts())
        action_id = await propose(d, "bank", iid, "release_fraud_hold", MARIA_HOLD)
        action = await settled(d.conductor, iid, action_id, {"succeeded", "failed"})
        assert action["status"] == "succeeded" and action["reconciled"] is True
        unknown = await events_of(d, iid, ev.ACTION_OUTCOME_UNKNOWN)
        assert len(unknown) == 1 and "timed out" in unknown[0]["error"]
        assert len(await events_of(d, iid, ev.ACTION_STARTED)) == 1
        assert len(d.ledger("bank", "fraud", "release_hold")) == 1


async def test_crm_notes_go_over_streamable_http(tmp_path: Path) -> None:
    async with deployment(tmp_path, ["bank"]) as d:
        assert d.actions.toolboxes["bank"].servers["crm"].transport == "http"
        iid = await verified_case(d, "bank", "C-1001")
        action_id = await propose(d, "bank", iid, "add_note", {"customer_id": "C-1001", "text": "called about Lisbon"})
        action = await settled(d.conductor, iid, action_id, {"succeeded", "failed"})
        assert action["status"] == "succeeded", action
        assert [e.args["text"] for e in d.ledger("bank", "crm", "add_note")] == ["called about Lisbon"]


async def test_a_server_that_cannot_start_fails_the_action_into_a_fact_for_a_fallback(tmp_path: Path) -> None:
    dead = "{transport: stdio, command: '{python}', args: ['-c', 'raise SystemExit(3)'], connect_timeout: 5s}"
    servers = tmp_path / "servers.yaml"
    servers.write_text(f"servers:\n  core_banking: {dead}\n  fraud: {dead}\n  crm: {dead}\n")
    policy = policy_copy(tmp_path, "bank", {})
    shipped = f"servers: {EXAMPLES_DIR / 'bank' / 'mcp' / 'servers.yaml'}"
    policy.write_text(policy.read_text().replace(shipped, f"servers: {servers}"))
    async with deployment(tmp_path / "data", ["bank"], policies={"bank": policy}, allow_failed=True) as d:
        assert set(d.actions.failed_servers["bank"]) == {"core_banking", "fraud", "crm"}
        iid = await verified_case(d, "bank", "C-1001")
        action_id = await propose(d, "bank", iid, "add_note", {"customer_id": "C-1001", "text": "called"})
        action = await settled(d.conductor, iid, action_id, {"succeeded", "failed"})
        assert action["status"] == "failed" and "unavailable" in action["result"]["error"]
        facts = (await d.conductor.load(iid)).facts_for_api(d.conductor.clock.now())
        assert facts[f"action_status[action:{action_id}]"]["value"]["status"] == "failed"


async def test_a_person_can_reject_and_nothing_happens(tmp_path: Path) -> None:
    async with deployment(tmp_path, ["bank"]) as d:
        iid = await verified_case(d, "bank", "C-1002")
        action_id = await propose(d, "bank", iid, "open_dispute", JAMES_DISPUTE)
        await settled(d.conductor, iid, action_id, {"awaiting_approval"})
        rejected = await d.actions.reject("bank", iid, action_id, SUPERVISOR, reason="needs the receipt first")
        assert rejected["status"] == "rejected" and rejected["approval"]["reason"] == "needs the receipt first"
        await d.actions.worker.catch_up()
        assert d.ledger("bank", "core_banking") == []
        await d.conductor.execute("bank", iid, [cmd.Close("resolved")], AGENT)


async def test_credits_asked_for_in_pieces_execute_only_within_the_limit_until_a_person_approves(
    tmp_path: Path,
) -> None:
    """Four $25 goodwill credits for a gold customer: the first is within the grant; the others add up past it,
    as proposed and when the worker re-checks them, so only the first reaches core banking on its own."""
    credit = {"customer_id": "C-1002", "amount": {"amount_minor": 2500, "currency": "USD"}, "reason": "goodwill"}
    async with deployment(tmp_path, ["bank"]) as d:
        iid = await verified_case(d, "bank", "C-1002")
        first = await propose(d, "bank", iid, "issue_credit", credit)
        assert (await settled(d.conductor, iid, first, {"succeeded", "failed"}))["status"] == "succeeded"
        rest = [await propose(d, "bank", iid, "issue_credit", credit) for _ in range(3)]
        for action_id in rest:
            action = await settled(d.conductor, iid, action_id, {"awaiting_approval"})
            assert (action["decision"]["rule"], action["decision"]["requires"]) == ("credits_add_up", "agent")
        await d.actions.worker.catch_up()
        assert len(d.ledger("bank", "core_banking", "issue_credit")) == 1

        # An agent approves the second: re-checked with the first counted, it still needs that agent, who gave it.
        await hand_to_agent(d, "bank", iid)
        state = await d.conductor.load(iid)
        await d.actions.approve("bank", iid, rest[0], AGENT, args_digest=state.actions[rest[0]]["args_digest"])
        assert (await settled(d.conductor, iid, rest[0], {"succeeded", "failed"}))["status"] == "succeeded"
        await d.actions.worker.catch_up()
        assert len(d.ledger("bank", "core_banking", "issue_credit")) == 2
        state = await d.conductor.load(iid)
        assert [state.actions[a]["status"] for a in rest[1:]] == ["awaiting_approval", "awaiting_approval"]
