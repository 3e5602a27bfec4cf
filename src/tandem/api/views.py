"""What each audience sees of an interaction. Staff see the case; a customer sees their conversation and
its status, never facts with sources, signals, whispers, intents or policy decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tandem.case import events as ev
from tandem.case.envelope import Event
from tandem.case.interaction import Interaction
from tandem.store.protocol import InteractionRecord


def reply_view(event: Event) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "from": event.actor.kind,
        "text": event.data.get("text"),
        "at": event.occurred_at.isoformat(),
    }


def action_view(action: dict[str, Any]) -> dict[str, Any]:
    out = {k: action.get(k) for k in ("id", "tool", "args", "args_digest", "status", "decision")}
    for optional in ("approval", "result"):
        if action.get(optional) is not None:
            out[optional] = action[optional]
    return out


def staff_view(state: Interaction, now: datetime) -> dict[str, Any]:
    return {
        "id": state.interaction_id,
        "tenant": state.tenant_id,
        "status": state.status,
        "version": state.version,
        "channel": state.channel,
        "started_at": state.started_at,
        "customer": {"id": state.customer_id, "name": state.customer.get("name"),
                     "identified_by": state.identified_by or state.customer.get("identified_by")},
        "legs": [leg.to_dict() for leg in state.legs.values()],
        "floor": state.floor.to_api(),
        "handoff": state.handoff.to_api() if state.handoff else None,
        "partners": list(state.partners.values()),
        "facts": state.facts_for_api(now),
        "intents": [{"name": i["name"], "confidence": i["confidence"]} for i in state.intents],
        "sentiment": state.sentiment,
        "actions": [action_view(a) for a in state.actions.values()],
        "summary": state.summary,
        "release": state.release,
        "transcript": [line.to_dict() for line in state.transcript],
        "whispers": state.whispers,
        "wrapup": state.wrapup,
        "disposition": state.disposition,
    }  # fmt: skip


def customer_view(state: Interaction) -> dict[str, Any]:
    return {
        "id": state.interaction_id,
        "status": state.status,
        "seq": state.version,
        "floor": {"kind": state.floor.kind},
        "handoff": customer_handoff(state),
        "transcript": [
            {"seq": line.seq, "from": line.speaker, "text": line.text, "at": line.at} for line in state.transcript
        ],
    }


def customer_handoff(state: Interaction) -> dict[str, Any] | None:
    return {"id": state.handoff.handoff_id, "status": state.handoff.status} if state.handoff else None


def customer_event(event: Event) -> dict[str, Any] | None:
    """An event as a customer may see it, or None. Only catalogued customer-visible types pass, and only
    their plain shape: who said what, when; or that the status changed."""
    if not ev.spec_of(event.type).customer_visible:
        return None
    out: dict[str, Any] = {
        "seq": event.seq,
        "type": event.type,
        "from": "system",
        "text": None,
        "at": event.occurred_at.isoformat(),
    }
    d = event.data
    if event.type == ev.CUSTOMER_SAID:
        out["from"] = "customer"
        out["text"] = d.get("text") if d.get("text") is not None else f"[keys] {d.get('digits', '')}"
    elif event.type in (ev.REPLY_SENT, ev.AGENT_SAID):
        out["from"] = event.actor.kind
        out["text"] = d.get("text")
    elif event.type == ev.FLOOR_MOVED:
        out["floor"] = {"kind": d.get("kind")}
    elif event.type == ev.HANDOFF_QUEUED:
        out["handoff"] = {"status": "queued"}
    elif event.type == ev.HANDOFF_CONNECTED:
        out["handoff"] = {"status": "connected"}
    elif event.type == ev.INTERACTION_CLOSED:
        out["status"] = "closed"
    return out


def record_view(record: InteractionRecord) -> dict[str, Any]:
    return {
        "id": record.interaction_id,
        "status": record.status,
        "customer_id": record.customer_id,
        "channel": record.channel,
        "floor": {"kind": record.floor_kind},
        "version": record.version,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }
