"""Policy unit tests: a YAML of inputs and the decisions they must get (``tandem policy test FILE CASES``).

::

    cases:
      - name: James's $1,250 dispute waits for an agent
        tool: open_dispute
        args: {customer_id: C-1002, transaction_id: TXN-77120, amount: {amount_minor: 125000, currency: USD}}
        proposer: bot                          # default bot
        case:
          assurance: knowledge_verified        # of the customer's leg; default none
          customer: {tier: gold}               # the record in the system of record
          facts: {fraud_score: 0.82}           # trusted facts (source system:test unless given with source)
          stated: {mentioned_amount: {amount_minor: 125000, currency: USD}}   # what the customer said
          sentiment: neutral
          intent: dispute_charge
          text: I want to dispute the ElectroMart charge
          now: "2026-12-03T10:00:00+00:00"
          revoked: false                       # the kill switch pulled for this tool
          actions:                             # earlier actions of the interaction, in order (interaction.*)
            - {tool: open_dispute, args: {amount: {amount_minor: 40000, currency: USD}}, status: succeeded}
          stage: execution                     # re-check the action, recorded after those, before it runs
        expect: {outcome: require_approval, requires: agent, rule: default}
      - name: a distressed customer goes to a person
        case: {sentiment: distressed}
        escalations: [distressed_customer]     # instead of tool: the escalations that must be raised

An earlier action's ``status`` is where it stands (default ``succeeded``): proposed, awaiting_approval, approved,
denied, rejected, started, succeeded, failed, unknown or compensated; it is recorded with the events that lead
there. Each case is folded into a real interaction (the same events the conductor writes) and decided by the real
``PolicyGate``, so a passing case is a decision the deployment makes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from tandem.case import events as ev
from tandem.case.envelope import Actor, Event, new_id
from tandem.case.interaction import Interaction
from tandem.case.legs import Assurance
from tandem.release.policy import Policy, PolicyBook, PolicyError
from tandem.release.policy_gate import PolicyGate
from tandem.release.policy_revocations import Revocations

DEFAULT_NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
EXPECTABLE = ("outcome", "rule", "requires")
STAGES = ("proposal", "execution")
# The events that bring an action to each status, after its proposal.
_ACTION_PATHS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "proposed": (),
    "awaiting_approval": ((ev.ACTION_DECIDED, "require_approval"),),
    "denied": ((ev.ACTION_DECIDED, "deny"),),
    "rejected": ((ev.ACTION_DECIDED, "require_approval"), (ev.ACTION_REJECTED, None)),
    "approved": ((ev.ACTION_DECIDED, "allow"),),
    "started": ((ev.ACTION_DECIDED, "allow"), (ev.ACTION_STARTED, None)),
    "succeeded": ((ev.ACTION_DECIDED, "allow"), (ev.ACTION_STARTED, None), (ev.ACTION_SUCCEEDED, None)),
    "failed": ((ev.ACTION_DECIDED, "allow"), (ev.ACTION_STARTED, None), (ev.ACTION_FAILED, None)),
    "unknown": ((ev.ACTION_DECIDED, "allow"), (ev.ACTION_STARTED, None), (ev.ACTION_OUTCOME_UNKNOWN, None)),
    "compensated": ((ev.ACTION_DECIDED, "allow"), (ev.ACTION_STARTED, None), (ev.ACTION_SUCCEEDED, None),
                    (ev.ACTION_COMPENSATED, None)),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CaseResult:
    name: str
    passed: bool
    got: dict[str, Any]
    expected: dict[str, Any]
    reasons: tuple[str, ...] = ()


def interaction_for(policy: Policy, spec: Mapping[str, Any], tested: Mapping[str, Any] | None = None) -> Interaction:
    """Fold the events that give an interaction the case's state. ``tested`` (``tool``, ``args``, ``proposer``,
    ``action_id``): the action under test, recorded as allowed after the earlier actions, for a re-check."""
    now = _when(spec.get("now"))
    events: list[tuple[str, dict[str, Any], Actor]] = []
    customer_id = str((spec.get("customer") or {}).get("id", "C-TEST"))
    release = spec.get("release", f"policy:{policy.version}")
    started = {"customer_id": customer_id, "channel": spec.get("channel", "chat"), "release": release,
               "floor": spec.get("floor", "bot")}  # fmt: skip
    events.append((ev.INTERACTION_STARTED, started, Actor("system")))
    leg_id = "leg_test"
    events.append((ev.LEG_OPENED, {"leg_id": leg_id, "channel": "chat", "assurance": "none"}, Actor("system")))
    level = Assurance.parse(str(spec.get("assurance", "none")))
    if level > Assurance.NONE:
        events.append((ev.ASSURANCE_RAISED, {"leg_id": leg_id, "level": level.label, "method": "test"}, Actor("bot")))
    for name, raw in (spec.get("facts") or {}).items():
        value, source = (raw["value"], raw.get("source", "system:test")) if _sourced(raw) else (raw, "system:test")
        events.append((ev.FACT_LEARNED, _fact(str(name), value, str(source)), Actor("system")))
    for name, value in (spec.get("stated") or {}).items():
        events.append((ev.FACT_LEARNED, _fact(str(name), value, "customer"), Actor("bot")))
    if spec.get("intent"):
        events.append((ev.INTENT_DETECTED, {"name": spec["intent"], "confidence": 0.9}, Actor("system")))
    if spec.get("sentiment"):
        score = float(spec.get("sentiment_score", -0.8 if spec["sentiment"] in ("angry", "distressed") else 0.0))
        events.append((ev.SENTIMENT_ASSESSED, {"score": score, "label": spec["sentiment"]}, Actor("system")))
    if spec.get("text"):
        events.append((ev.CUSTOMER_SAID, {"text": spec["text"]}, Actor("customer")))
    earlier = spec.get("actions") or []
    if not isinstance(earlier, list):
        raise PolicyError("case.actions: expected a list of {tool, args, status}")
    for i, raw in enumerate(earlier):
        if not isinstance(raw, Mapping) or not isinstance(raw.get("tool"), str):
            raise PolicyError(f"case.actions[{i}]: expected {{tool, args, status}}")
        events += _action_events(policy, new_id("act"), raw, f"case.actions[{i}]")
    if tested is not None:
        events += _action_events(policy, str(tested["action_id"]), {**tested, "status": "approved"}, "the action")
    state = Interaction(new_id("int"))
    for seq, (type_, data, actor) in enumerate(events, start=1):
        state.apply(
            Event(
                event_id=new_id("evt"), tenant_id=policy.tenant_id, interaction_id=state.interaction_id, seq=seq,
                position=seq, type=type_, schema_version=1, occurred_at=now, recorded_at=now, actor=actor,
                leg_id=leg_id if type_ != ev.INTERACTION_STARTED else None, causation_id=None, correlation_id=None,
                floor_epoch=0, data=data,
            )
        )  # fmt: skip
    return state


def _action_events(
    policy: Policy, action_id: str, raw: Mapping[str, Any], where: str
) -> list[tuple[str, dict[str, Any], Actor]]:
    status = str(raw.get("status", "succeeded"))
    path = _ACTION_PATHS.get(status)
    if path is None:
        raise PolicyError(f"{where}.status: unknown status {status!r}; use {', '.join(_ACTION_PATHS)}")
    args = raw.get("args") or {}
    if not isinstance(args, Mapping):
        raise PolicyError(f"{where}.args: expected a mapping")
    proposed = {"action_id": action_id, "tool": raw["tool"], "args": dict(args), "args_digest": "test"}
    out = [(ev.ACTION_PROPOSED, proposed, Actor(str(raw.get("proposer", "bot"))))]
    for type_, outcome in path:
        data: dict[str, Any] = {"action_id": action_id}
        if type_ == ev.ACTION_DECIDED:
            data.update(outcome=outcome, rule="test", policy_version=policy.version)
        elif type_ in (ev.ACTION_APPROVED, ev.ACTION_REJECTED):
            data["by"] = "test"
        elif type_ == ev.ACTION_STARTED:
            data["idempotency_key"] = f"test:{action_id}"
        elif type_ == ev.ACTION_FAILED:
            data["error"] = "failed in the test case"
        out.append((type_, data, Actor("system", "test")))
    return out


def _sourced(raw: Any) -> bool:
    return isinstance(raw, Mapping) and set(raw) <= {"value", "source"} and "value" in raw


def _fact(name: str, value: Any, source: str) -> dict[str, Any]:
    base, _, rest = name.partition("[")
    data: dict[str, Any] = {"name": base, "value": value, "source": source, "confidence": 1.0}
    if rest:
        data["subject"] = rest.rstrip("]")
    return data


def _when(raw: Any) -> datetime:
    if raw is None:
        return DEFAULT_NOW
    moment = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run_cases(policy: Policy, cases: Any) -> Iterator[CaseResult]:
    if not isinstance(cases, Mapping) or not isinstance(cases.get("cases"), list):
        raise PolicyError("cases: expected a mapping with a list under cases")
    for i, case in enumerate(cases["cases"]):
        if not isinstance(case, Mapping):
            raise PolicyError(f"cases[{i}]: expected a mapping")
        yield _run(policy, case, str(case.get("name") or f"case {i + 1}"))


def _run(policy: Policy, case: Mapping[str, Any], name: str) -> CaseResult:
    spec = case.get("case") or {}
    stage = str(spec.get("stage", "proposal"))
    if stage not in STAGES:
        raise PolicyError(f"{name}: case.stage must be one of {', '.join(STAGES)}, not {stage!r}")
    tested: dict[str, Any] | None = None
    if stage == "execution" and case.get("tool"):
        tested = {"action_id": new_id("act"), "tool": str(case["tool"]), "args": dict(case.get("args") or {}),
                  "proposer": str(case.get("proposer", "bot"))}  # fmt: skip
    state = interaction_for(policy, spec, tested)
    book = PolicyBook()
    book.add(policy)
    record = dict(spec.get("customer") or {})
    revocations = Revocations(":memory:")
    try:
        if spec.get("revoked") and case.get("tool"):
            revocations.revoke(policy.tenant_id, str(case["tool"]), "revoked in the test case")
        gate = PolicyGate(book, records=lambda _t, _c: record, revocations=revocations)
        now = _when(spec.get("now"))
        if "escalations" in case:
            raised = sorted(e.name for e, _ in gate.escalations(state, now))
            expected_names = sorted(str(n) for n in case["escalations"] or [])
            return CaseResult(name, raised == expected_names, {"escalations": raised}, {"escalations": expected_names})
        if not case.get("tool"):
            raise PolicyError(f"{name}: needs a tool (or escalations)")
        decision = gate.decide(
            state, str(case["tool"]), dict(case.get("args") or {}), str(case.get("proposer", "bot")), now,
            action_id=tested["action_id"] if tested is not None else None,
        )  # fmt: skip
    finally:
        revocations.close()
    got = {"outcome": decision.outcome, "rule": decision.rule, "requires": decision.requires}
    expected = dict(case.get("expect") or {})
    unknown = set(expected) - set(EXPECTABLE)
    if unknown:
        raise PolicyError(f"{name}: expect may name {', '.join(EXPECTABLE)}, not {sorted(unknown)}")
    passed = all(got[key] == value for key, value in expected.items())
    return CaseResult(name, passed, got, expected, decision.reasons)


def load_cases(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: {exc}") from exc
