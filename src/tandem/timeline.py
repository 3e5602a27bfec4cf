"""An interaction's timeline, readable: who did what, when, and because of what."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tandem.case import events as ev
from tandem.case.envelope import Event


def describe(event: Event) -> str:
    """One line saying what happened, in words an agent or auditor would use."""
    d = event.data
    match event.type:
        case ev.INTERACTION_STARTED:
            return f"started on {d['channel']} for customer {d['customer_id']}"
        case ev.LEG_OPENED:
            return f"{d['channel']} leg opened, assurance {d['assurance']}"
        case ev.CUSTOMER_SAID | ev.AGENT_SAID | ev.REPLY_SENT:
            return f"“{d.get('text') or d.get('digits')}”"
        case ev.FACT_REQUESTED:
            return f"asked for {d['name']} ({d['basis']})"
        case ev.FACT_LEARNED | ev.FACT_CORRECTED:
            subject = f" of {d['subject']}" if d.get("subject") else ""
            verb = "corrected" if event.type == ev.FACT_CORRECTED else "learned"
            return f"{verb} {d['name']}{subject} = {_short(d['value'])} from {d['source']}"
        case ev.INTENT_DETECTED:
            return f"intent {d['name']} ({d['confidence']:.2f})"
        case ev.SENTIMENT_ASSESSED:
            return f"sentiment {d['label']} ({d['score']:+.1f}){' — ' + d['reason'] if d.get('reason') else ''}"
        case ev.CUSTOMER_IDENTIFIED:
            return f"identified as {d['customer_id']} by {d['method']}"
        case ev.ASSURANCE_RAISED:
            return f"assurance raised to {d['level']} by {d['method']}"
        case ev.FLOOR_MOVED:
            who = f" {d['participant_id']}" if d.get("participant_id") else ""
            return f"floor → {d['kind']}{who} (epoch {d['epoch']}){': ' + d['reason'] if d.get('reason') else ''}"
        case ev.HANDOFF_REQUESTED:
            return f"handoff requested to {d['target']}: {d['reason']}"
        case ev.COMMAND_REFUSED:
            return f"refused {d['command']}: {d['reason']}"
        case ev.TURN_COMPLETED:
            return f"turn for #{d['input_seq']} done"
        case _:
            fields = ", ".join(f"{k}={_short(v)}" for k, v in d.items() if k not in ("handoff_id",))
            return fields


def _short(value: Any, limit: int = 80) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rows(events: Sequence[Event]) -> list[tuple[str, str, str, str, str]]:
    """(seq, time, who, what, why) per event; *why* names the event that caused it."""
    seq_of = {e.event_id: e.seq for e in events}
    out = []
    for e in events:
        who = e.actor.kind + (f":{e.actor.id}" if e.actor.id and e.actor.id != e.actor.kind else "")
        if e.actor.model:
            who += f" [{e.actor.model}/{e.actor.prompt_version}]"
        why = f"#{seq_of[e.causation_id]}" if e.causation_id in seq_of else ""
        out.append((str(e.seq), e.occurred_at.strftime("%H:%M:%S"), who, f"{e.type}: {describe(e)}", why))
    return out
