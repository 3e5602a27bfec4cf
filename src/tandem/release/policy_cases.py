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
        expect: {outcome: require_approval, requires: agent, rule: default}
      - name: a distressed customer goes to a person
        case: {sentiment: distressed}
        escalations: [distressed_customer]     # instead of tool: the escalations that must be raised

Each case is folded into a real interaction (the same events the conductor writes) and decided by the real
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


@dataclass(frozen=True, slots=True)
class CaseResult:
    name: str
    passed: bool
    got: dict[str, Any]
    expected: dict[str, Any]
    reasons: tuple[str, ...] = ()


def interaction_for(policy: Policy, spec: Mapping[str, Any]) -> Interaction:
    """Fold the events that give an interaction the case's state."""
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
    state = interaction_for(policy, spec)
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
            state, str(case["tool"]), dict(case.get("args") or {}), str(case.get("proposer", "bot")), now
        )
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
