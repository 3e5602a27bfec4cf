"""The interaction aggregate: one customer need, folded from its events. Applying an event is pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tandem.case import events as ev
from tandem.case.casefile import Assertion, CaseFile, Fact, fact_key
from tandem.case.envelope import Event
from tandem.case.floor import Floor
from tandem.case.handoff import Handoff, HandoffStatus
from tandem.case.legs import Assurance, Leg

ACTION_STATUS_BY_EVENT = {
    ev.ACTION_PROPOSED: "proposed",
    ev.ACTION_APPROVED: "approved",
    ev.ACTION_REJECTED: "rejected",
    ev.ACTION_STARTED: "started",
    ev.ACTION_SUCCEEDED: "succeeded",
    ev.ACTION_FAILED: "failed",
    ev.ACTION_OUTCOME_UNKNOWN: "unknown",
    ev.ACTION_COMPENSATED: "compensated",
}


@dataclass(slots=True)
class Line:
    """One line of the conversation as the customer and the floor holder saw it."""

    seq: int
    speaker: str  # customer, ivr, bot, ai, human, supervisor
    participant_id: str | None
    text: str
    at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "from": self.speaker,
            "participant_id": self.participant_id,
            "text": self.text,
            "at": self.at,
        }


@dataclass
class Interaction:
    interaction_id: str
    tenant_id: str = ""
    customer_id: str = ""
    status: str = "new"
    version: int = 0
    channel: str = ""
    started_at: str = ""
    release: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    customer: dict[str, Any] = field(default_factory=dict)
    identified_by: str | None = None
    legs: dict[str, Leg] = field(default_factory=dict)
    floor: Floor = field(default_factory=lambda: Floor("bot", None, 0))
    partners: dict[str, dict[str, Any]] = field(default_factory=dict)
    case: CaseFile = field(default_factory=CaseFile)
    intents: list[dict[str, Any]] = field(default_factory=list)
    sentiment: dict[str, Any] | None = None
    actions: dict[str, dict[str, Any]] = field(default_factory=dict)
    handoff: Handoff | None = None
    handoffs: list[dict[str, Any]] = field(default_factory=list)
    transcript: list[Line] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    whispers: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[dict[str, Any]] = field(default_factory=list)
    timers: dict[str, dict[str, Any]] = field(default_factory=dict)
    resume_at: dict[str, Any] | None = None
    summary: str | None = None
    wrapup: dict[str, Any] | None = None
    disposition: str | None = None
    last_input_seq: int = 0
    handled_seq: int = 0

    # -- folding ---------------------------------------------------------------------------------------
    @classmethod
    def fold(cls, interaction_id: str, events: Iterable[Event], base: Interaction | None = None) -> Interaction:
        state = base or cls(interaction_id)
        for event in events:
            state.apply(event)
        return state

    def apply(self, event: Event) -> None:
        if event.seq != self.version + 1:
            raise ValueError(f"event seq {event.seq} does not follow version {self.version} of {self.interaction_id}")
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(self, event)
        if ev.spec_of(event.type).is_input:
            self.last_input_seq = event.seq
        self.version = event.seq

    # -- queries ---------------------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def has_unhandled_input(self) -> bool:
        return self.last_input_seq > self.handled_seq

    def fact(self, name: str, now: datetime, subject: str | None = None) -> Fact | None:
        return self.case.resolve(name, now, subject)

    def assurance(self, leg_id: str | None = None) -> Assurance:
        """Assurance of the given leg, or of the newest open leg."""
        if leg_id is not None and leg_id in self.legs:
            return self.legs[leg_id].assurance
        open_legs = [leg for leg in self.legs.values() if leg.open]
        return open_legs[-1].assurance if open_legs else Assurance.NONE

    @property
    def current_leg_id(self) -> str | None:
        open_legs = [leg.leg_id for leg in self.legs.values() if leg.open]
        return open_legs[-1] if open_legs else None

    @property
    def top_intent(self) -> dict[str, Any] | None:
        return self.intents[0] if self.intents else None

    def facts_for_api(self, now: datetime) -> dict[str, dict[str, Any]]:
        return {fact_key(f.name, f.subject): f.to_api() for f in self.case.facts(now)}

    # -- snapshots -------------------------------------------------------------------------------------
    def to_snapshot(self) -> dict[str, Any]:
        return {
            "interaction_id": self.interaction_id,
            "tenant_id": self.tenant_id,
            "customer_id": self.customer_id,
            "status": self.status,
            "version": self.version,
            "channel": self.channel,
            "started_at": self.started_at,
            "release": self.release,
            "attributes": self.attributes,
            "customer": self.customer,
            "identified_by": self.identified_by,
            "legs": [leg.to_dict() for leg in self.legs.values()],
            "floor": self.floor.to_api() | {"participant_id": self.floor.participant_id},
            "partners": self.partners,
            "case": self.case.to_snapshot(),
            "intents": self.intents,
            "sentiment": self.sentiment,
            "actions": self.actions,
            "handoff": self.handoff.to_dict() if self.handoff else None,
            "handoffs": self.handoffs,
            "transcript": [line.to_dict() for line in self.transcript],
            "requests": self.requests,
            "whispers": self.whispers,
            "refusals": self.refusals,
            "timers": self.timers,
            "resume_at": self.resume_at,
            "summary": self.summary,
            "wrapup": self.wrapup,
            "disposition": self.disposition,
            "last_input_seq": self.last_input_seq,
            "handled_seq": self.handled_seq,
        }

    @classmethod
    def from_snapshot(cls, raw: dict[str, Any]) -> Interaction:
        state = cls(raw["interaction_id"])
        for name in (
            "tenant_id", "customer_id", "status", "version", "channel", "started_at", "release", "attributes",
            "customer", "identified_by", "partners", "intents", "sentiment", "actions", "handoffs", "requests",
            "whispers", "refusals", "timers", "resume_at", "summary", "wrapup", "disposition",
            "last_input_seq", "handled_seq",
        ):  # fmt: skip
            setattr(state, name, raw[name])
        state.legs = {leg["id"]: Leg.from_dict(leg) for leg in raw["legs"]}
        state.floor = Floor.from_dict(raw["floor"])
        state.case = CaseFile.from_snapshot(raw["case"])
        state.handoff = Handoff.from_dict(raw["handoff"]) if raw["handoff"] else None
        state.transcript = [
            Line(r["seq"], r["from"], r["participant_id"], r["text"], r["at"]) for r in raw["transcript"]
        ]
        return state


# -- event handlers: pure state changes ------------------------------------------------------------------


def _started(s: Interaction, e: Event) -> None:
    d = e.data
    s.tenant_id = e.tenant_id
    s.customer_id = d["customer_id"]
    s.channel = d["channel"]
    s.status = "open"
    s.started_at = e.occurred_at.isoformat()
    s.release = d.get("release")
    s.attributes = dict(d.get("attributes") or {})
    s.customer = dict(d.get("customer") or {})
    s.floor = Floor(d.get("floor", "bot"), d.get("participant_id"), e.floor_epoch)


def _leg_opened(s: Interaction, e: Event) -> None:
    d = e.data
    s.legs[d["leg_id"]] = Leg(
        d["leg_id"], d["channel"], Assurance.parse(d["assurance"]), e.occurred_at.isoformat(), opened_seq=e.seq
    )


def _leg_closed(s: Interaction, e: Event) -> None:
    leg = s.legs.get(e.data["leg_id"])
    if leg is not None:
        leg.open = False


def _assurance_raised(s: Interaction, e: Event) -> None:
    leg = s.legs[e.data["leg_id"]]
    level = Assurance.parse(e.data["level"])
    if level > leg.assurance:
        leg.assurance = level
        leg.verified_by = e.data["method"]


def _identified(s: Interaction, e: Event) -> None:
    s.customer_id = e.data["customer_id"]
    s.identified_by = e.data["method"]
    if "customer" in e.data:
        s.customer = dict(e.data["customer"])


def _said(s: Interaction, e: Event) -> None:
    speaker = e.actor.kind if e.type != ev.CUSTOMER_SAID else "customer"
    text = e.data.get("text")
    if text is None and e.data.get("digits") is not None:
        text = f"[keys] {e.data['digits']}"
    s.transcript.append(Line(e.seq, speaker, e.actor.id, str(text or ""), e.occurred_at.isoformat()))


def _whisper(s: Interaction, e: Event) -> None:
    s.whispers.append({"seq": e.seq, "to": e.data["to"], "text": e.data["text"], "by": e.actor.id})


def _turn_completed(s: Interaction, e: Event) -> None:
    s.handled_seq = max(s.handled_seq, int(e.data["input_seq"]))


def _refused(s: Interaction, e: Event) -> None:
    s.refusals.append({"seq": e.seq, **e.data})


def _fact_requested(s: Interaction, e: Event) -> None:
    s.requests.append({"seq": e.seq, "by": e.actor.kind, **e.data})


def _fact_learned(s: Interaction, e: Event) -> None:
    s.case.add(Assertion.from_event(e))


def _fact_corrected(s: Interaction, e: Event) -> None:
    s.case.correct(Assertion.from_event(e))


def _intent(s: Interaction, e: Event) -> None:
    entry = {"name": e.data["name"], "confidence": e.data["confidence"], "seq": e.seq}
    s.intents = [entry] + [i for i in s.intents if i["name"] != entry["name"]]


def _sentiment(s: Interaction, e: Event) -> None:
    s.sentiment = {"score": e.data["score"], "label": e.data["label"], "reason": e.data.get("reason")}


def _floor_moved(s: Interaction, e: Event) -> None:
    s.floor = Floor(e.data["kind"], e.data.get("participant_id"), int(e.data["epoch"]))


def _partner_joined(s: Interaction, e: Event) -> None:
    key = f"{e.data['kind']}:{e.data.get('participant_id') or ''}"
    s.partners[key] = {"kind": e.data["kind"], "participant_id": e.data.get("participant_id")}


def _partner_left(s: Interaction, e: Event) -> None:
    s.partners.pop(f"{e.data['kind']}:{e.data.get('participant_id') or ''}", None)


def _handoff_requested(s: Interaction, e: Event) -> None:
    s.handoff = Handoff(
        e.data["handoff_id"],
        dict(e.data["target"]),
        e.data["reason"],
        e.occurred_at.isoformat(),
        next_step=e.data.get("next_step"),
        requested_by=e.actor.kind,
    )


def _handoff_step(status: str) -> Callable[[Interaction, Event], None]:
    def handler(s: Interaction, e: Event) -> None:
        h = s.handoff
        if h is None or h.handoff_id != e.data["handoff_id"]:
            return
        h.move(status, e.occurred_at.isoformat(), **{k: v for k, v in e.data.items() if k != "handoff_id"})  # type: ignore[arg-type]
        if "queue" in e.data:
            h.queue = e.data["queue"]
        if status == "offered":
            h.offer_id, h.agent_id, h.expires_at = (
                e.data["offer_id"],
                e.data["agent_id"],
                e.data["expires_at"],
            )
        elif status == "accepted":
            h.agent_id = e.data["agent_id"]
        elif status in ("declined", "expired"):
            h.agent_id, h.expires_at = None, None
        if not h.is_open and status != "connected":
            s.handoffs.append(h.to_dict())
            s.handoff = None

    return handler


def _handed_back(s: Interaction, e: Event) -> None:
    if s.handoff is not None:
        # A committed event must always fold: a hand-back before anyone connected ends the handoff unused.
        ending: HandoffStatus = "completed" if s.handoff.status == "connected" else "abandoned"
        s.handoff.move(ending, e.occurred_at.isoformat())
        s.handoffs.append(s.handoff.to_dict())
        s.handoff = None
    s.resume_at = {k: e.data.get(k) for k in ("flow", "step", "goal", "instructions", "approved_actions", "to")}


def _action(s: Interaction, e: Event) -> None:
    d = e.data
    status = ACTION_STATUS_BY_EVENT.get(e.type)
    if e.type == ev.ACTION_PROPOSED:
        s.actions[d["action_id"]] = {
            "id": d["action_id"],
            "tool": d["tool"],
            "args": d["args"],
            "args_digest": d["args_digest"],
            "status": "proposed",
            "proposed_by": e.actor.to_dict(),
            "decision": None,
            "approval": None,
            "result": None,
        }
        return
    action = s.actions.get(d["action_id"])
    if action is None:
        return
    if e.type == ev.ACTION_DECIDED:
        action["decision"] = {
            "outcome": d["outcome"],
            "rule": d["rule"],
            "policy_version": d["policy_version"],
            "reasons": d.get("reasons", []),
            "requires": d.get("requires"),
            "expires_at": d.get("expires_at"),
            "stage": d.get("stage", "proposal"),
        }
        if d.get("stage") == "execution":
            # Re-decided just before executing: whatever was approved before no longer suffices.
            action["approval"] = None
        action["status"] = {"allow": "approved", "deny": "denied"}.get(d["outcome"], "awaiting_approval")
        return
    if e.type in (ev.ACTION_APPROVED, ev.ACTION_REJECTED):
        action["approval"] = {
            "by": d["by"],
            "reason": d.get("reason"),
            "at": e.occurred_at.isoformat(),
            "role": d.get("role"),
            "args_digest": d.get("args_digest"),
            "expired": bool(d.get("expired")),
        }
    if e.type == ev.ACTION_STARTED:
        action["idempotency_key"] = d["idempotency_key"]
        action["attempts"] = int(action.get("attempts") or 0) + 1
    if e.type in (ev.ACTION_STARTED, ev.ACTION_OUTCOME_UNKNOWN) and "lease_until" in d:
        # The worker that owns the call until then; another one steps in only after it lapsed.
        action["lease"] = {"worker": d.get("worker"), "until": d["lease_until"]}
    if e.type in (ev.ACTION_SUCCEEDED, ev.ACTION_FAILED):
        action["result"] = d.get("result") or ({"error": d["error"]} if "error" in d else None)
        action["reconciled"] = bool(d.get("reconciled"))
    if e.type == ev.ACTION_OUTCOME_UNKNOWN:
        action["escalated"] = bool(d.get("escalated"))
    if e.type == ev.ACTION_COMPENSATED:
        # The effect's own result stays; the compensation is reported beside it.
        action["compensation"] = d.get("result") or {"by_action": d.get("by_action")}
    if status is not None:
        action["status"] = status


def _timer_scheduled(s: Interaction, e: Event) -> None:
    s.timers[e.data["timer_id"]] = {"kind": e.data["kind"], "due_at": e.data["due_at"], "status": "scheduled"}


def _timer_done(status: str) -> Callable[[Interaction, Event], None]:
    def handler(s: Interaction, e: Event) -> None:
        timer = s.timers.get(e.data["timer_id"])
        if timer is not None:
            timer["status"] = status

    return handler


def _summary(s: Interaction, e: Event) -> None:
    s.summary = e.data["text"]


def _wrapup(s: Interaction, e: Event) -> None:
    s.wrapup = {"disposition": e.data["disposition"], "notes": e.data.get("notes"), "by": e.actor.id}


def _closed(s: Interaction, e: Event) -> None:
    s.status = "closed"
    s.disposition = e.data.get("disposition")
    for leg in s.legs.values():
        leg.open = False
    if s.handoff is not None and s.handoff.is_open:
        s.handoff.move("abandoned", e.occurred_at.isoformat())
        s.handoffs.append(s.handoff.to_dict())
        s.handoff = None


_HANDLERS: dict[str, Callable[[Interaction, Event], None]] = {
    ev.INTERACTION_STARTED: _started,
    ev.LEG_OPENED: _leg_opened,
    ev.LEG_CLOSED: _leg_closed,
    ev.ASSURANCE_RAISED: _assurance_raised,
    ev.CUSTOMER_IDENTIFIED: _identified,
    ev.CUSTOMER_SAID: _said,
    ev.AGENT_SAID: _said,
    ev.REPLY_SENT: _said,
    ev.WHISPER_SENT: _whisper,
    ev.TURN_COMPLETED: _turn_completed,
    ev.COMMAND_REFUSED: _refused,
    ev.FACT_REQUESTED: _fact_requested,
    ev.FACT_LEARNED: _fact_learned,
    ev.FACT_CORRECTED: _fact_corrected,
    ev.INTENT_DETECTED: _intent,
    ev.SENTIMENT_ASSESSED: _sentiment,
    ev.FLOOR_MOVED: _floor_moved,
    ev.PARTNER_JOINED: _partner_joined,
    ev.PARTNER_LEFT: _partner_left,
    ev.HANDOFF_REQUESTED: _handoff_requested,
    ev.HANDOFF_QUEUED: _handoff_step("queued"),
    ev.HANDOFF_OFFERED: _handoff_step("offered"),
    ev.HANDOFF_DECLINED: _handoff_step("declined"),
    ev.HANDOFF_EXPIRED: _handoff_step("expired"),
    ev.HANDOFF_ACCEPTED: _handoff_step("accepted"),
    ev.HANDOFF_CONNECTED: _handoff_step("connected"),
    ev.HANDOFF_ABANDONED: _handoff_step("abandoned"),
    ev.HANDED_BACK: _handed_back,
    ev.TIMER_SCHEDULED: _timer_scheduled,
    ev.TIMER_FIRED: _timer_done("fired"),
    ev.TIMER_CANCELLED: _timer_done("cancelled"),
    ev.SUMMARY_WRITTEN: _summary,
    ev.WRAPUP_RECORDED: _wrapup,
    ev.INTERACTION_CLOSED: _closed,
}
for _type in ACTION_STATUS_BY_EVENT:
    _HANDLERS[_type] = _action
_HANDLERS[ev.ACTION_DECIDED] = _action
