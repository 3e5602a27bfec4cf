"""The policy gate: decides every proposed action from the policy the interaction is pinned to.

``PolicyGate`` implements ``tandem.participants.protocol.ActionGate``. The conductor asks it when an action
is proposed and the action worker asks it again just before the call, with the case as it is then. The
order of a decision is fixed: a revoked tool (the kill switch, overriding every pin) or a tool whose schema
no longer matches its pin is denied; then the tool's baseline autonomy, loosened by the first grant that
holds (trusted inputs only), tightened by every limit that holds (any input). Every decision says which rule
decided, under which policy version, and the inputs the rules read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from celpy import celtypes
from celpy.adapter import json_to_cel

from tandem.case.casefile import fact_key, source_kind
from tandem.case.interaction import Interaction
from tandem.case.legs import Assurance
from tandem.participants.protocol import ActionDecision
from tandem.release.policy import OPTIONAL, Autonomy, Escalation, Policy, PolicyBook, ToolPolicy
from tandem.release.policy_revocations import Revocations

RecordLookup = Callable[[str, str], Mapping[str, Any] | None]
# Sources whose facts a customer cannot write: systems of record, signals and the results of actions.
TRUSTED_SOURCES = frozenset({"system", "signal", "action"})


class ToolAvailability(Protocol):
    def problem(self, tenant_id: str, tool: str) -> str | None:
        """Why the tool may not be called now (its schema changed against the pin), or None."""
        ...


@dataclass(frozen=True, slots=True)
class Inputs:
    """What the rules of one decision may read, in plain Python (for reasons) and as CEL values."""

    values: Mapping[str, Any]
    activation: Mapping[str, Any]

    def describe(self, names: frozenset[str]) -> str:
        parts = []
        for name in sorted(names):
            if name in ("NONE", "IDENTIFIED", "KNOWLEDGE_VERIFIED", "STRONG"):
                continue
            value = self.values.get(name, "(missing)")
            if name == "assurance" and isinstance(value, int):
                value = Assurance(value).label
            if name == "interaction" and isinstance(value, Mapping):
                parts.append(_describe_totals(value))
                continue
            parts.append(f"{name}={_short(value)}")
        return ", ".join(parts)


def _describe_totals(totals: Mapping[str, Any]) -> str:
    same = totals["same_tool"]
    return (
        f"interaction=this tool {same['amount_proposed']:.2f} proposed, {same['amount_approved']:.2f} approved, "
        f"{same['amount_executed']:.2f} executed in {same['actions']} action(s); all tools "
        f"{totals['amount_proposed']:.2f} proposed in {totals['actions']}"
    )


def _short(value: Any) -> str:
    text = f"{value:.2f}" if isinstance(value, float) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _major(value: Any) -> tuple[float, str] | None:
    if isinstance(value, Mapping) and isinstance(value.get("amount_minor"), int | float):
        return float(value["amount_minor"]) / 100.0, str(value.get("currency", "USD"))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), "USD"
    return None


def case_assurance(case: Interaction) -> Assurance:
    """The newest open leg's assurance; once every leg closed, the assurance the last one ended with (an
    action approved while the customer was verified survives their hanging up, a new leg never inherits)."""
    legs = list(case.legs.values())
    open_legs = [leg for leg in legs if leg.open]
    if open_legs:
        return open_legs[-1].assurance
    return legs[-1].assurance if legs else Assurance.NONE


_NEEDS_FACTS = frozenset({"facts", "fraud_score", "known"})
_NEEDS_STATED = frozenset({"stated", "stated_amount"})

# What an earlier action of the interaction counts towards, by its folded status. Denied, rejected (or expired),
# failed and compensated actions count towards nothing: no money moved, or it moved back.
_PROPOSED = frozenset({"proposed", "awaiting_approval", "approved", "started", "succeeded", "unknown"})
_APPROVED = frozenset({"approved", "started", "succeeded", "unknown"})
# Started or unknown: the effect may have happened, so it counts as if it had.
_EXECUTED = frozenset({"started", "succeeded", "unknown"})


def action_amount(args: Mapping[str, Any]) -> tuple[float, str] | None:
    """The size of what an action moves, in major units: ``args.amount`` (money) or ``args.amount_minor``."""
    amount = _major(args.get("amount"))
    if amount is not None:
        return amount
    if isinstance(args.get("amount_minor"), int | float) and not isinstance(args.get("amount_minor"), bool):
        return float(args["amount_minor"]) / 100.0, str(args.get("currency", "USD"))
    return None


def _totals() -> dict[str, Any]:
    return {"amount_proposed": 0.0, "amount_approved": 0.0, "amount_executed": 0.0, "actions": 0}


def interaction_totals(
    case: Interaction, tool: str, tools: Iterable[str] = (), before: str | None = None
) -> dict[str, Any]:
    """The ``interaction`` input: what the interaction's recorded actions already add up to, in total, for the
    tool being decided (``same_tool``) and for every tool (``tools``; every tool in ``tools`` is present, with
    zeros when it has no action, so a rule never fails on a missing key).

    Only actions recorded before the one being decided count: with ``before`` (the action re-checked at
    execution) those proposed ahead of it in the log, else all of them (a proposal is decided before it is
    recorded). Counted from the log alone, never from what a customer says. Amounts add at face value, whatever
    their currency: the shipped tenants use one; a policy for several should test ``currency`` as well."""
    overall = _totals()
    by_tool: dict[str, dict[str, Any]] = {name: _totals() for name in tools}
    same_tool = by_tool.setdefault(tool, _totals()) if tool else _totals()
    for action_id, action in case.actions.items():
        if action_id == before:
            break
        status = action.get("status")
        if status not in _PROPOSED:
            continue
        name = str(action.get("tool"))
        sized = action_amount(action.get("args") or {})
        size = sized[0] if sized is not None else 0.0
        for totals in (overall, by_tool.setdefault(name, _totals())):
            totals["actions"] += 1
            totals["amount_proposed"] += size
            if status in _APPROVED:
                totals["amount_approved"] += size
            if status in _EXECUTED:
                totals["amount_executed"] += size
    return {**overall, "same_tool": same_tool, "tools": by_tool}


def build_inputs(
    case: Interaction,
    tool: str,
    args: Mapping[str, Any],
    proposer: str,
    now: datetime,
    record: Mapping[str, Any] | None,
    needed: frozenset[str] | None = None,
    *,
    tools: Iterable[str] = (),
    action_id: str | None = None,
) -> Inputs:
    """The inputs of a decision. With ``needed`` (the names its rules read) only those are turned into CEL
    values, and the case file is scanned only when a rule reads what it holds. ``tools``: every tool the policy
    lists (each has totals in ``interaction.tools``); ``action_id``: the action re-checked at execution, when it
    is one (only the actions before it count towards ``interaction``)."""
    values: dict[str, Any] = {
        "tool": tool,
        "proposer": proposer,
        "args": dict(args),
        "NONE": int(Assurance.NONE),
        "IDENTIFIED": int(Assurance.IDENTIFIED),
        "KNOWLEDGE_VERIFIED": int(Assurance.KNOWLEDGE_VERIFIED),
        "STRONG": int(Assurance.STRONG),
        "channel": case.channel,
        "floor": case.floor.kind,
        "now": now,
        "hour": now.hour,
        "weekday": now.weekday(),
    }
    assurance = case_assurance(case)
    values["assurance"] = int(assurance)
    values["assurance_level"] = assurance.label
    amount = action_amount(args)
    if amount is not None:
        values["amount"], values["currency"] = amount
    customer = {k: v for k, v in (record or {}).items() if not isinstance(v, list)}
    values["customer"] = customer
    if "tier" in customer:
        values["tier"] = str(customer["tier"])
    if needed is None or needed & _NEEDS_FACTS:
        facts: dict[str, Any] = {}
        fraud_scores: list[float] = []
        for fact in case.case.facts(now):
            if source_kind(fact.source) not in TRUSTED_SOURCES or fact.status != "known":
                continue
            facts[fact_key(fact.name, fact.subject)] = fact.value
            if fact.name == "fraud_score" and isinstance(fact.value, int | float):
                fraud_scores.append(float(fact.value))
        values["facts"] = facts
        if fraud_scores:
            values["fraud_score"] = max(fraud_scores)
        values["known"] = sorted(name for name in OPTIONAL if name in values)
    if needed is None or "interaction" in needed:
        values["interaction"] = interaction_totals(case, tool, tools, action_id)
    if needed is None or needed & _NEEDS_STATED:
        stated: dict[str, Any] = {}
        for (name, subject), assertions in case.case.assertions.items():
            said = [a for a in assertions if not a.superseded and source_kind(a.source) == "customer"]
            if said:
                stated[fact_key(name, subject)] = max(said, key=lambda a: a.seq).value
        values["stated"] = stated
        stated_amount = _major(stated.get("mentioned_amount"))
        values["stated_amount"] = stated_amount[0] if stated_amount is not None else 0.0
    values["sentiment"] = str((case.sentiment or {}).get("label") or "unknown")
    score = (case.sentiment or {}).get("score")
    values["sentiment_score"] = float(score) if isinstance(score, int | float) else 0.0
    top = case.top_intent
    values["intent"] = str(top["name"]) if top else ""
    if needed is None or "text" in needed:
        lines = [line.text for line in case.transcript if line.speaker == "customer"]
        values["text"] = lines[-1] if lines else ""
    names = values.keys() if needed is None else needed & values.keys()
    activation = {name: _to_cel(values[name]) for name in names}
    return Inputs(values, activation)


def _to_cel(value: Any) -> Any:
    if isinstance(value, datetime):
        return celtypes.TimestampType(value)
    return json_to_cel(_jsonable(value))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


_OUTCOME = {
    Autonomy.AUTO: ("allow", None),
    Autonomy.AGENT_APPROVAL: ("require_approval", "agent"),
    Autonomy.SUPERVISOR_APPROVAL: ("require_approval", "supervisor"),
    Autonomy.NEVER: ("deny", None),
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """A decision with the policy and autonomy behind it (``ActionDecision`` is what gets recorded)."""

    decision: ActionDecision
    autonomy: Autonomy | None
    policy: Policy | None


class PolicyGate:
    def __init__(
        self,
        book: PolicyBook,
        *,
        records: RecordLookup | None = None,
        revocations: Revocations | None = None,
        tools: ToolAvailability | None = None,
    ) -> None:
        self.book = book
        self.records = records
        self.revocations = revocations
        self.tools = tools

    # -- the ActionGate protocol -----------------------------------------------------------------------
    def decide(
        self,
        case: Interaction,
        tool: str,
        args: dict[str, Any],
        actor_kind: str,
        now: datetime,
        *,
        action_id: str | None = None,
    ) -> ActionDecision:
        return self.verdict(case, tool, args, actor_kind, now, action_id=action_id).decision

    def verdict(
        self,
        case: Interaction,
        tool: str,
        args: Mapping[str, Any],
        actor_kind: str,
        now: datetime,
        *,
        action_id: str | None = None,
    ) -> Verdict:
        """The decision on a proposal (``case`` as it is before the action is recorded), or, with
        ``action_id``, the re-check of that recorded action just before it executes."""
        policy = self.book.resolve(case.tenant_id, case.release)
        if policy is None:
            pinned = case.release or "(none)"
            return _deny("release", "none", f"interaction is pinned to release {pinned}, which this deployment lacks")
        revoked = self.revocations.revoked(case.tenant_id, tool) if self.revocations is not None else None
        if revoked is not None:
            return _deny("kill_switch", policy.version, f"{tool} is revoked: {revoked}", policy)
        spec = policy.tool(tool)
        if spec is None:
            return _deny("unknown_tool", policy.version, f"policy {policy.version} does not list {tool}", policy)
        problem = self.tools.problem(case.tenant_id, tool) if self.tools is not None else None
        if problem is not None:
            return _deny("schema_pin", policy.version, problem, policy)
        if actor_kind not in spec.proposers:
            allowed = ", ".join(sorted(spec.proposers))
            return _deny("proposer", policy.version, f"{actor_kind} may not propose {tool} (only {allowed})", policy)
        record = self.records(case.tenant_id, case.customer_id) if self.records is not None else None
        inputs = build_inputs(
            case, tool, args, actor_kind, now, record, spec.reads, tools=policy.tools, action_id=action_id
        )
        return _decide(policy, spec, inputs)

    # -- beyond actions --------------------------------------------------------------------------------
    def escalations(self, case: Interaction, now: datetime) -> list[tuple[Escalation, str]]:
        """Escalation triggers that hold for the case now, each with the inputs it read."""
        policy = self.book.resolve(case.tenant_id, case.release)
        if policy is None or not policy.escalations:
            return []
        record = self.records(case.tenant_id, case.customer_id) if self.records is not None else None
        reads = frozenset().union(*(e.when.identifiers for e in policy.escalations))
        inputs = build_inputs(case, "", {}, case.floor.kind, now, record, reads, tools=policy.tools)
        out = []
        for escalation in policy.escalations:
            # An escalation only ever brings a person in: one that cannot be evaluated is not raised, and
            # the failure is visible through ``tandem policy test``.
            if escalation.when.evaluate(inputs.activation) is True:
                out.append((escalation, inputs.describe(escalation.when.identifiers)))
        return out

    def may_serve(self, case: Interaction, intent: str, participant: str) -> bool:
        policy = self.book.resolve(case.tenant_id, case.release)
        return policy is not None and policy.may_serve(intent, participant)


def _deny(rule: str, version: str, reason: str, policy: Policy | None = None) -> Verdict:
    return Verdict(ActionDecision("deny", rule, version, (reason,)), Autonomy.NEVER, policy)


def _decide(policy: Policy, spec: ToolPolicy, inputs: Inputs) -> Verdict:
    level = spec.autonomy
    rule = "default"
    reasons = [f"default for {spec.name}: {level.label}"]
    read: set[str] = set()
    for grant in spec.grants:
        result = grant.when.evaluate(inputs.activation)
        read |= grant.when.identifiers
        if result is True:
            level, rule = grant.autonomy, grant.name
            reasons.append(f"grant {grant.name} holds: {level.label}")
            break
        if result is not False:
            reasons.append(f"grant {grant.name} not applied: {result}")
    for limit in spec.limits:
        result = limit.when.evaluate(inputs.activation)
        read |= limit.when.identifiers
        if result is False:
            continue
        note = "holds" if result is True else f"could not be evaluated ({result}), so it applies"
        if limit.autonomy > level:
            level, rule = limit.autonomy, limit.name
            reasons.append(f"limit {limit.name} {note}: {level.label}")
        else:
            reasons.append(f"limit {limit.name} {note} (already {level.label})")
    if read:
        reasons.append(f"inputs: {inputs.describe(frozenset(read))}")
    outcome, requires = _OUTCOME[level]
    expires = spec.approval_expires_in_s if outcome == "require_approval" else None
    return Verdict(ActionDecision(outcome, rule, policy.version, tuple(reasons), requires, expires), level, policy)
