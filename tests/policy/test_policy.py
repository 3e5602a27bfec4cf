"""Policy: loading and its static guarantees, decisions by the gate, versions and pins, the kill switch, the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from typer.testing import CliRunner

from tandem import commands as cmd
from tandem.actions.cli import policy_app
from tandem.actions.tools import Binding, Toolbox, contract_digest, contract_of
from tandem.case import events as ev
from tandem.case.envelope import Actor
from tandem.clock import ManualClock
from tandem.conductor import Conductor
from tandem.release.policy import PolicyBook, PolicyError, load_policy, parse_policy, pinned_version
from tandem.release.policy_cases import interaction_for, load_cases, run_cases
from tandem.release.policy_gate import PolicyGate
from tandem.release.policy_revocations import Revocations
from tandem.store.sqlite import SqliteStore
from tandem.world.world import EXAMPLES_DIR
from tests.conftest import EchoBot

HERE = Path(__file__).parent
BANK = EXAMPLES_DIR / "bank" / "policy.yaml"
HEALTH = EXAMPLES_DIR / "healthcare" / "policy.yaml"
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def policy_text(tools: str, escalations: str = "") -> str:
    return f"policy: {{tenant: bank, name: test-policy}}\ntools:\n{tools}\n{escalations}"


def tool(grants: str = "", limits: str = "", autonomy: str = "agent_approval") -> str:
    out = f"  open_dispute:\n    server: core_banking\n    autonomy: {autonomy}\n"
    if grants:
        out += f"    grants:\n{grants}"
    if limits:
        out += f"    limits:\n{limits}"
    return out


def parse(text: str) -> Any:
    import yaml

    return parse_policy(yaml.safe_load(text), text=text)


@pytest.mark.parametrize(("policy", "cases"), [(BANK, "bank_cases.yaml"), (HEALTH, "health_cases.yaml")])
def test_every_case_written_for_the_shipped_policies_is_decided_as_expected(policy: Path, cases: str) -> None:
    results = list(run_cases(load_policy(policy), load_cases(HERE / cases)))
    assert results and [(r.name, r.got) for r in results if not r.passed] == []


def test_a_grant_may_not_read_what_the_customer_can_influence() -> None:
    grant = "      - {rule: calm, when: \"sentiment == 'neutral'\", autonomy: auto}\n"
    with pytest.raises(PolicyError, match="grant may only read inputs the customer cannot influence"):
        parse(policy_text(tool(grants=grant)))
    stated = "      - {rule: says_small, when: 'stated_amount < 100.0', autonomy: auto}\n"
    with pytest.raises(PolicyError, match="stated_amount may only tighten"):
        parse(policy_text(tool(grants=stated)))
    # the same inputs may tighten
    assert parse(policy_text(tool(limits=grant.replace("autonomy: auto", "autonomy: never")))).tools


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("amount <=", "not valid CEL"),
        ("balance > 3.0", "unknown input balance"),
        ("has(customer.tier)", "has\\(\\) is not supported"),
    ],
)
def test_conditions_are_checked_when_the_policy_is_loaded(when: str, message: str) -> None:
    grant = f"      - {{rule: r, when: '{when}', autonomy: auto}}\n"
    with pytest.raises(PolicyError, match=message):
        parse(policy_text(tool(grants=grant)))


def test_a_grant_that_cannot_be_evaluated_does_not_apply_and_a_limit_that_cannot_does() -> None:
    grant = "      - {rule: small, when: 'amount <= 500.0', autonomy: auto}\n"
    limit = "      - {rule: huge, when: 'amount > 5000.0', autonomy: supervisor_approval}\n"
    policy = parse(policy_text(tool(grants=grant, limits=limit)))
    book = PolicyBook()
    book.add(policy)
    gate = PolicyGate(book)
    case = interaction_for(policy, {"assurance": "knowledge_verified"})
    no_amount = gate.decide(case, "open_dispute", {"customer_id": "C-1"}, "bot", NOW)
    assert (no_amount.outcome, no_amount.requires, no_amount.rule) == ("require_approval", "supervisor", "huge")
    assert any("could not be evaluated" in r for r in no_amount.reasons)
    small = gate.decide(case, "open_dispute", {"amount": {"amount_minor": 100, "currency": "USD"}}, "bot", NOW)
    assert (small.outcome, small.rule) == ("allow", "small")
    assert "inputs: amount=1.00" in small.reasons[-1]


def test_a_policy_version_names_its_text_and_a_pinned_interaction_keeps_it_across_restarts(tmp_path: Path) -> None:
    old = parse(policy_text(tool(autonomy="auto")))
    new = parse(policy_text(tool(autonomy="never")))
    assert old.version != new.version and old.version.startswith("test-policy@")
    archive = tmp_path / "archive"
    book = PolicyBook(archive)
    book.add(old)
    pinned = interaction_for(old, {"release": f"policy:{old.version}", "assurance": "strong"})
    book.add(new)
    restarted = PolicyBook(archive)
    restarted.add(new)
    assert restarted.active("bank") is not None and restarted.active("bank").version == new.version  # type: ignore[union-attr]
    gate = PolicyGate(restarted)
    assert gate.decide(pinned, "open_dispute", {}, "bot", NOW).outcome == "allow"  # its own version, kept
    unpinned = interaction_for(old, {"release": None})
    assert gate.decide(unpinned, "open_dispute", {}, "bot", NOW).outcome == "deny"  # the active one
    assert pinned_version("policy:a@1 signals:b@2") == "a@1" and pinned_version("a@1") == "a@1"


def test_one_version_cannot_mean_two_texts() -> None:
    book = PolicyBook()
    first = parse(policy_text(tool()))
    book.add(first)
    forged = type(first)(**{**first.__dict__, "text": first.text + "\n# changed"})
    with pytest.raises(PolicyError, match="already exists with other content"):
        book.add(forged)


def test_a_revocation_is_seen_by_every_process_at_once_and_overrides_the_pin(tmp_path: Path) -> None:
    policy = load_policy(BANK)
    book = PolicyBook()
    book.add(policy)
    api_side = Revocations(tmp_path / "revocations.db")
    worker_side = Revocations(tmp_path / "revocations.db")
    gate = PolicyGate(book, revocations=worker_side)
    case = interaction_for(policy, {"assurance": "knowledge_verified", "release": f"policy:{policy.version}"})
    args = {"customer_id": "C-1001", "text": "hello"}
    assert gate.decide(case, "add_note", args, "bot", NOW).outcome == "allow"
    api_side.revoke("bank", "add_note", "CRM incident")
    denied = gate.decide(case, "add_note", args, "bot", NOW)
    assert (denied.outcome, denied.rule) == ("deny", "kill_switch") and "CRM incident" in denied.reasons[0]
    assert api_side.restore("bank", "add_note")
    assert gate.decide(case, "add_note", args, "bot", NOW).outcome == "allow"
    api_side.close()
    worker_side.close()


def _tool(schema: dict[str, Any], effect: dict[str, Any] | None = None) -> types.Tool:
    meta = {"tandem/effect": effect} if effect is not None else None
    return types.Tool(name="add_note", description="Add a note.", input_schema=schema, _meta=meta)


def test_a_contract_digest_changes_with_the_schema_and_the_declaration_and_a_mismatch_denies() -> None:
    schema = {"type": "object", "properties": {"text": {"type": "string"}}}
    base = _tool(schema, {"idempotent": True, "reconcile": "effect"})
    wider = _tool({**schema, "properties": {"text": {"type": "string"}, "to": {"type": "string"}}},
                  {"idempotent": True, "reconcile": "effect"})  # fmt: skip
    not_idempotent = _tool(schema, {"idempotent": False})
    digests = {contract_digest(t) for t in (base, wider, not_idempotent)}
    assert len(digests) == 3
    contract = contract_of("crm", base)
    assert contract.idempotent and contract.reconcile == "effect" and contract.compensate is None
    good = Binding("add_note", "crm", "add_note", contract.digest, 5.0)
    assert Toolbox._check(good, {"add_note": contract}) is None
    changed = Binding("add_note", "crm", "add_note", contract_digest(wider), 5.0)
    assert "changed" in (Toolbox._check(changed, {"add_note": contract}) or "")
    unpinned = Binding("add_note", "crm", "add_note", None, 5.0)
    assert "no schema pin" in (Toolbox._check(unpinned, {"add_note": contract}) or "")
    assert "does not offer" in (Toolbox._check(good, {}) or "")


async def test_the_conductor_records_the_gates_decision_with_the_proposal(tmp_path: Path) -> None:
    policy = load_policy(BANK)
    book = PolicyBook()
    book.add(policy)
    store = SqliteStore(tmp_path / "t.db")
    conductor = Conductor(store, {"bot": EchoBot()}, clock=ManualClock(), gate=PolicyGate(book))
    state, _ = await conductor.start("bank", "C-1002", "chat", release=f"policy:{policy.version}")
    args = {"customer_id": "C-1002", "transaction_id": "TXN-77120", "amount": {"amount_minor": 125000,
            "currency": "USD"}, "reason": "x"}  # fmt: skip
    await conductor.execute(
        "bank", state.interaction_id, [cmd.RaiseAssurance("knowledge_verified", "test")], Actor("bot")
    )
    events = await conductor.execute(
        "bank", state.interaction_id, [cmd.ProposeAction("open_dispute", args)], Actor("bot")
    )
    decided = next(e for e in events if e.type == ev.ACTION_DECIDED).data
    assert decided["outcome"] == "require_approval" and decided["requires"] == "agent"
    assert decided["policy_version"] == policy.version and decided["rule"] == "default"
    assert "expires_at" in decided and any("amount=1250.00" in r for r in decided["reasons"])
    await store.close()


async def test_amounts_add_up_over_the_interactions_recorded_actions_and_a_recheck_counts_only_earlier_ones(
    tmp_path: Path,
) -> None:
    policy = load_policy(BANK)
    book = PolicyBook()
    book.add(policy)
    gate = PolicyGate(book, records=lambda _t, _c: {"id": "C-1002", "tier": "gold"})
    store = SqliteStore(tmp_path / "t.db")
    conductor = Conductor(store, {"bot": EchoBot()}, clock=ManualClock(), gate=gate)
    state, _ = await conductor.start("bank", "C-1002", "chat", release=f"policy:{policy.version}")
    iid = state.interaction_id
    await conductor.execute("bank", iid, [cmd.RaiseAssurance("knowledge_verified", "test")], Actor("bot"))
    credit = {"customer_id": "C-1002", "amount": {"amount_minor": 2500, "currency": "USD"}, "reason": "goodwill"}
    # Four pieces in one turn: each is decided on the case with the pieces before it.
    events = await conductor.execute("bank", iid, [cmd.ProposeAction("issue_credit", credit)] * 4, Actor("bot"))
    decided = [(e.data["outcome"], e.data["rule"]) for e in events if e.type == ev.ACTION_DECIDED]
    assert decided == [("allow", "small_goodwill_for_gold")] + [("require_approval", "credits_add_up")] * 3
    state = await conductor.load(iid)
    ids = list(state.actions)

    def again(action_id: str | None) -> tuple[str, str]:
        verdict = gate.verdict(state, "issue_credit", credit, "bot", NOW, action_id=action_id)
        return verdict.decision.outcome, verdict.decision.rule

    # Re-checked before executing: the first still counts nothing before it, whatever was asked after it.
    assert again(ids[0]) == ("allow", "small_goodwill_for_gold")
    assert again(ids[3]) == ("require_approval", "credits_add_up")
    # A fifth piece counts all four: $125 in all is past the $100 that needs a supervisor.
    assert again(None) == ("require_approval", "large_credit")
    reasons = gate.decide(state, "issue_credit", credit, "bot", NOW).reasons
    assert any("this tool 100.00 proposed, 25.00 approved, 0.00 executed in 4 action(s)" in r for r in reasons)
    await store.close()


def test_every_tool_of_the_policy_has_totals_so_a_rule_on_another_tool_never_fails_on_a_missing_key() -> None:
    limit = "      - {rule: credits_too, when: 'interaction.tools.add_note.amount_proposed > 0.0', autonomy: never}\n"
    text = policy_text(tool(limits=limit) + "  add_note:\n    server: crm\n    autonomy: auto\n")
    book = PolicyBook()
    book.add(parse(text))
    case = interaction_for(book.active("bank") or parse(text), {"assurance": "knowledge_verified"})
    decision = PolicyGate(book).decide(case, "open_dispute", {"amount": {"amount_minor": 100}}, "bot", NOW)
    assert (decision.outcome, decision.rule) == ("require_approval", "default")  # evaluated, and false


def test_policy_check_accepts_the_shipped_policies_and_rejects_a_loosening_by_the_customer(tmp_path: Path) -> None:
    runner = CliRunner()
    for path in (BANK, HEALTH):
        result = runner.invoke(policy_app, ["check", str(path)])
        assert result.exit_code == 0, result.output
        assert "ok:" in result.output
    bad = tmp_path / "policy.yaml"
    bad.write_text(policy_text(tool(grants="      - {rule: r, when: \"sentiment == 'calm'\", autonomy: auto}\n")))
    result = runner.invoke(policy_app, ["check", str(bad)])
    assert result.exit_code == 1 and "may only tighten" in result.output


def test_policy_test_passes_the_shipped_cases_and_fails_a_wrong_expectation(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(policy_app, ["test", str(BANK), str(HERE / "bank_cases.yaml")])
    assert result.exit_code == 0, result.output
    wrong = tmp_path / "cases.yaml"
    wrong.write_text(
        "cases:\n  - name: James's dispute is automatic (it is not)\n    tool: open_dispute\n"
        "    args: {amount: {amount_minor: 125000, currency: USD}}\n    case: {assurance: knowledge_verified}\n"
        "    expect: {outcome: allow}\n"
    )
    result = runner.invoke(policy_app, ["test", str(BANK), str(wrong)])
    assert result.exit_code == 1 and "FAIL" in result.output and "1 failed" in result.output


def test_the_kill_switch_commands_write_where_every_process_reads(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["--tenant", "bank", "--data-dir", str(tmp_path)]
    result = runner.invoke(policy_app, ["revoke", "open_dispute", *args, "--reason", "incident"])
    assert result.exit_code == 0, result.output
    revocations = Revocations(tmp_path / "revocations.db")
    assert revocations.revoked("bank", "open_dispute") == "incident"
    assert runner.invoke(policy_app, ["restore", "open_dispute", *args]).exit_code == 0
    assert revocations.revoked("bank", "open_dispute") is None
    revocations.close()


def test_who_may_serve_an_intent_comes_from_the_policy() -> None:
    policy = load_policy(BANK)
    assert policy.may_serve("dispute_charge", "bot") and policy.may_serve("lost_card", "bot")
    assert not policy.may_serve("lost_card", "ivr")
    assert policy.may_serve("lost_card", "human") and not policy.may_serve("unlisted", "ivr")
