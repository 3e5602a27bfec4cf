"""The handoff card: what a person needs to take over without making the customer repeat anything.

Built from the case file when it is read, so it is as fresh as the case: who the customer is and how sure
we are, why they are being handed over, what is known (with source and verification), what was tried,
what is still pending, how they feel, and a suggested next step.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tandem.case.casefile import Fact, fact_key, fact_type
from tandem.case.interaction import Interaction
from tandem.case.legs import Assurance

LAST_LINES = 6
OPEN_ACTION_STATUSES = frozenset({"proposed", "awaiting_approval", "approved", "started", "unknown"})


def handoff_card(state: Interaction, now: datetime) -> dict[str, Any]:
    facts = list(state.case.facts(now))
    return {
        "who": _who(state, facts),
        "why": _why(state),
        "known": [_known(f) for f in facts],
        "tried": _tried(state),
        "pending": _pending(state, now),
        "sentiment": state.sentiment,
        "suggested_next_step": _next_step(state, facts),
    }


def _who(state: Interaction, facts: list[Fact]) -> dict[str, Any]:
    name = state.customer.get("name") or next((f.value for f in facts if f.name == "customer_name"), None)
    return {
        "customer_id": state.customer_id,
        "name": name,
        "identified_by": state.identified_by or state.customer.get("identified_by"),
        "assurance": state.assurance().label,
        "legs": [
            {"id": leg.leg_id, "channel": leg.channel, "assurance": leg.assurance.label,
             "verified_by": leg.verified_by, "open": leg.open}
            for leg in state.legs.values()
        ],
    }  # fmt: skip


def _why(state: Interaction) -> dict[str, Any]:
    handoff = state.handoff
    top = state.top_intent
    return {
        "reason": handoff.reason if handoff else None,
        "target": handoff.target if handoff else None,
        "queue": handoff.queue if handoff else None,
        "requested_at": handoff.requested_at if handoff else None,
        "intent": {"name": top["name"], "confidence": top["confidence"]} if top else None,
    }


def _known(fact: Fact) -> dict[str, Any]:
    out = {
        "name": fact_key(fact.name, fact.subject),
        "label": fact_type(fact.name).label,
        **fact.to_api(),
    }
    return out


def _tried(state: Interaction) -> dict[str, Any]:
    return {
        "summary": state.summary,
        "last_lines": [
            {"from": line.speaker, "text": line.text, "at": line.at} for line in state.transcript[-LAST_LINES:]
        ],
        "asked": sorted({str(r["name"]) for r in state.requests}),
        "refused": [{"command": r.get("command"), "reason": r.get("reason")} for r in state.refusals[-5:]],
    }


def _pending(state: Interaction, now: datetime) -> dict[str, Any]:
    unanswered = sorted(
        {str(r["name"]) for r in state.requests if state.fact(str(r["name"]), now, r.get("subject")) is None}
    )
    return {
        "actions": [
            {"id": a["id"], "tool": a["tool"], "args": a["args"], "status": a["status"]}
            for a in state.actions.values()
            if a["status"] in OPEN_ACTION_STATUSES
        ],
        "questions": unanswered,
    }


def _next_step(state: Interaction, facts: list[Fact]) -> str:
    stated = getattr(state.handoff, "next_step", None) if state.handoff else None
    if stated:
        return str(stated)
    waiting = [a for a in state.actions.values() if a["status"] == "awaiting_approval"]
    if waiting:
        return f"Review the {waiting[0]['tool']} action waiting for approval."
    conflicted = [f for f in facts if f.status == "conflicted"]
    if conflicted:
        return f"Settle the conflicting {fact_type(conflicted[0].name).label} before acting on it."
    if state.assurance() < Assurance.KNOWLEDGE_VERIFIED:
        return (
            f"Identity is only {state.assurance().label.replace('_', ' ')}: verify it before discussing or "
            "changing the account."
        )
    top = state.top_intent
    if top:
        return f"Pick up '{top['name']}'; what is known above is confirmed, so there is no need to ask it again."
    return "Greet the customer by name and confirm why they are contacting us."
