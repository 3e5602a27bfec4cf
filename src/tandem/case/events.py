"""The catalogue of event types: names in the past tense, schema versions, and which fields are personal.

A field marked personal is encrypted with the customer's key before it reaches storage, so erasing the
customer (destroying the key) makes it unreadable while the log itself stays intact and ordered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    version: int
    required: frozenset[str]
    personal: frozenset[str] = frozenset()
    # An input is something from outside the conductor (a customer line, an agent's word, a timer):
    # it is appended first, as the acknowledgement, and the mailbox then processes it.
    is_input: bool = False
    # Customers see only what is addressed to them: their own lines, replies and status.
    customer_visible: bool = False


class UnknownEventType(ValueError):
    pass


class InvalidEventData(ValueError):
    pass


_CATALOGUE: dict[str, EventType] = {}


def register(
    name: str,
    version: int = 1,
    *,
    required: tuple[str, ...] = (),
    personal: tuple[str, ...] = (),
    is_input: bool = False,
    customer_visible: bool = False,
) -> EventType:
    spec = EventType(name, version, frozenset(required), frozenset(personal), is_input, customer_visible)
    _CATALOGUE[name] = spec
    return spec


def spec_of(name: str) -> EventType:
    try:
        return _CATALOGUE[name]
    except KeyError:
        raise UnknownEventType(f"unknown event type {name!r}") from None


def validate(name: str, data: Mapping[str, Any]) -> EventType:
    spec = spec_of(name)
    missing = spec.required - data.keys()
    if missing:
        raise InvalidEventData(f"{name} needs {', '.join(sorted(missing))}")
    return spec


def catalogue() -> Mapping[str, EventType]:
    return dict(_CATALOGUE)


# Lifecycle
INTERACTION_STARTED = register(
    "InteractionStarted", required=("customer_id", "channel"), personal=("customer",), customer_visible=True
).name
INTERACTION_CLOSED = register("InteractionClosed", customer_visible=True).name
WRAPUP_RECORDED = register("WrapUpRecorded", required=("disposition",), personal=("notes",)).name
SUMMARY_WRITTEN = register("SummaryWritten", required=("text",), personal=("text",)).name

# Legs and identity
# A new leg is an input: whoever holds the floor greets the customer on it.
LEG_OPENED = register(
    "LegOpened", required=("leg_id", "channel", "assurance"), is_input=True, customer_visible=True
).name
LEG_CLOSED = register("LegClosed", required=("leg_id",), customer_visible=True).name
ASSURANCE_RAISED = register("AssuranceRaised", required=("leg_id", "level", "method")).name
CUSTOMER_IDENTIFIED = register("CustomerIdentified", required=("customer_id", "method")).name

# Conversation
CUSTOMER_SAID = register("CustomerSaid", personal=("text", "digits"), is_input=True, customer_visible=True).name
AGENT_SAID = register("AgentSaid", required=("text",), personal=("text",), is_input=True, customer_visible=True).name
REPLY_SENT = register("ReplySent", required=("text",), personal=("text",), customer_visible=True).name
WHISPER_SENT = register("WhisperSent", required=("to", "text"), personal=("text",), is_input=True).name
TURN_COMPLETED = register("TurnCompleted", required=("input_seq",)).name
COMMAND_REFUSED = register("CommandRefused", required=("command", "reason")).name

# Case file
FACT_REQUESTED = register("FactRequested", required=("name", "basis")).name
FACT_LEARNED = register("FactLearned", required=("name", "value", "source"), personal=("value",)).name
FACT_CORRECTED = register(
    "FactCorrected", required=("name", "value", "source"), personal=("value",), is_input=True
).name
INTENT_DETECTED = register("IntentDetected", required=("name", "confidence")).name
SENTIMENT_ASSESSED = register("SentimentAssessed", required=("score", "label")).name

# Floor and partners
FLOOR_MOVED = register("FloorMoved", required=("kind", "epoch"), customer_visible=True).name
PARTNER_JOINED = register("PartnerJoined", required=("kind",)).name
PARTNER_LEFT = register("PartnerLeft", required=("kind",)).name

# Handoff
HANDOFF_REQUESTED = register("HandoffRequested", required=("handoff_id", "target", "reason")).name
HANDOFF_QUEUED = register("HandoffQueued", required=("handoff_id", "queue"), customer_visible=True).name
HANDOFF_OFFERED = register("HandoffOffered", required=("handoff_id", "offer_id", "agent_id", "expires_at")).name
HANDOFF_DECLINED = register("HandoffDeclined", required=("handoff_id", "offer_id")).name
HANDOFF_EXPIRED = register("HandoffExpired", required=("handoff_id", "offer_id")).name
HANDOFF_ACCEPTED = register("HandoffAccepted", required=("handoff_id", "offer_id", "agent_id")).name
HANDOFF_CONNECTED = register("HandoffConnected", required=("handoff_id",), customer_visible=True).name
HANDOFF_ABANDONED = register("HandoffAbandoned", required=("handoff_id",)).name
HANDED_BACK = register("HandedBack", required=("to",), personal=("instructions",), is_input=True).name

# Actions
ACTION_PROPOSED = register("ActionProposed", required=("action_id", "tool", "args", "args_digest")).name
ACTION_DECIDED = register("ActionDecided", required=("action_id", "outcome", "rule", "policy_version")).name
ACTION_APPROVED = register("ActionApproved", required=("action_id", "by"), is_input=True).name
ACTION_REJECTED = register("ActionRejected", required=("action_id", "by"), is_input=True).name
ACTION_STARTED = register("ActionStarted", required=("action_id", "idempotency_key")).name
# An action's outcome is an input: whoever holds the floor gets a turn to tell the customer it is done.
ACTION_SUCCEEDED = register("ActionSucceeded", required=("action_id",), is_input=True).name
ACTION_FAILED = register("ActionFailed", required=("action_id", "error"), is_input=True).name
ACTION_OUTCOME_UNKNOWN = register("ActionOutcomeUnknown", required=("action_id",), is_input=True).name
ACTION_COMPENSATED = register("ActionCompensated", required=("action_id",)).name

# Timers: durable inputs fired through the conductor like any other
TIMER_SCHEDULED = register("TimerScheduled", required=("timer_id", "kind", "due_at")).name
TIMER_FIRED = register("TimerFired", required=("timer_id", "kind"), is_input=True).name
TIMER_CANCELLED = register("TimerCancelled", required=("timer_id",)).name
