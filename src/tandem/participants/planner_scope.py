"""What a planner outside the conversation's people may see of a case: the case file within a data scope.

Two kinds of planner read a case this way: Tandem's own AI participant (scope ``ai``) and an outside AI agent
calling Tandem's MCP server with a ``service`` token (the scope its token names). Both get the *minimum
necessary*: the facts their scope lists, cut down and masked as it says (``tandem.release.scopes``), and no
full card number ever, whatever a scope or a fact says — every string that leaves here passes the same
card-number redaction the conversation's input does. Identity challenges (date of birth, ZIP) are facts like
any other: a scope that does not list them does not show them.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tandem.case.casefile import fact_key
from tandem.case.interaction import Interaction
from tandem.release.scopes import DataScopes, FactRule
from tandem.release.signals import ReleaseError, load_releases
from tandem.understanding.redaction import redact_card_numbers

log = logging.getLogger(__name__)


@functools.cache
def shipped_scopes() -> Mapping[str, DataScopes]:
    """The example tenants' data scopes, loaded once per process; none when the releases cannot be loaded
    (then a model is shown no facts at all, never more than its scope)."""
    try:
        return {tenant_id: release.scopes for tenant_id, release in load_releases().items()}
    except ReleaseError as exc:
        log.warning("models see no facts: data scopes could not be loaded: %s", exc)
        return {}


# Action fields a planner may see: what was asked for, where it stands and why; never the arguments (they
# carry account and card details) nor results (systems of record answer in full).
_ACTION_FIELDS = ("id", "tool", "status")
_DECISION_FIELDS = ("outcome", "rule", "requires", "reasons")


def redact(value: Any) -> Any:
    """``value`` with every full card number in every string masked, however deeply nested."""
    if isinstance(value, str):
        return redact_card_numbers(value)
    if isinstance(value, Mapping):
        return {str(k): redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def scoped_facts(case: Interaction, scopes: DataScopes, participant: str, now: datetime) -> dict[str, dict[str, Any]]:
    """The resolved facts ``participant`` may see, keyed as the API keys them (``name[subject]``)."""
    out: dict[str, dict[str, Any]] = {}
    for fact in case.case.facts(now):
        rule = scopes.rule(participant, fact.name)
        if rule is None:
            continue
        view = fact.to_api()
        view["value"] = _show(rule, fact.value)
        if "disagreements" in view:
            view["disagreements"] = [{**d, "value": _show(rule, d["value"])} for d in view["disagreements"]]
        out[fact_key(fact.name, fact.subject)] = view
    return out


def _show(rule: FactRule, value: Any) -> Any:
    return redact(rule.apply(value))


def scoped_actions(case: Interaction) -> list[dict[str, Any]]:
    out = []
    for action in case.actions.values():
        item = {k: action.get(k) for k in _ACTION_FIELDS}
        decision = action.get("decision") or {}
        item["decision"] = {k: decision.get(k) for k in _DECISION_FIELDS} if decision else None
        out.append(redact(item))
    return out


def case_file(case: Interaction, scopes: DataScopes, participant: str, now: datetime) -> dict[str, Any]:
    """The case as a planner with ``participant``'s data scope sees it (no transcript: see ``transcript``)."""
    handoff = case.handoff
    return {
        "interaction_id": case.interaction_id,
        "status": case.status,
        "channel": case.channel,
        "customer_id": case.customer_id,
        "assurance": case.assurance().label,
        "floor": {"kind": case.floor.kind, "epoch": case.floor.epoch},
        "intents": [{"name": i["name"], "confidence": i["confidence"]} for i in case.intents[:3]],
        "sentiment": (case.sentiment or {}).get("label"),
        "handoff": {"status": handoff.status, "target": handoff.target, "reason": redact(handoff.reason)}
        if handoff
        else None,
        "facts": scoped_facts(case, scopes, participant, now),
        "actions": scoped_actions(case),
    }


def transcript(case: Interaction, limit: int = 20) -> list[dict[str, str]]:
    """The last ``limit`` lines of the conversation, as the customer saw them (redacted at the door already)."""
    return [{"from": line.speaker, "text": redact(line.text)} for line in case.transcript[-limit:]]
