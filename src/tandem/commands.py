"""Commands: what a participant decides. The conductor checks them and turns them into events.

Participants never write events themselves; that keeps the floor, ask-once and the epoch fence in one
place. A command that speaks to the customer carries the floor epoch its author saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Command:
    # The floor epoch the author decided under; None means "the current one" (used by the conductor's
    # own bookkeeping, never by a participant that took time to think).
    epoch: int | None = field(default=None, kw_only=True)

    speaks: bool = field(default=False, init=False, repr=False)


@dataclass(frozen=True, slots=True)
class Say(Command):
    text: str
    speaks: bool = field(default=True, init=False, repr=False)


@dataclass(frozen=True, slots=True)
class Reworded(Say):
    """A line the participant decided, in the words a language model chose (``participants.phrasing``): its
    event names that model and its prompt version, as every AI word's event does."""

    model: str
    prompt_version: str


@dataclass(frozen=True, slots=True)
class Ask(Command):
    """Ask the customer for a fact, through ask-once. ``purpose="authentication"`` asks a challenge, which
    assurance governs instead: fair only while the leg is below ``needed_level``. An empty ``text`` records
    the request without a line of its own (two facts asked in one sentence)."""

    name: str
    text: str
    subject: str | None = None
    min_confidence: float = 0.0
    purpose: str = "fact"
    needed_level: str | None = None
    speaks: bool = field(default=True, init=False, repr=False)


@dataclass(frozen=True, slots=True)
class Learn(Command):
    name: str
    value: Any
    source: str
    confidence: float = 1.0
    subject: str | None = None
    verified: bool = False
    observed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Correct(Command):
    name: str
    value: Any
    source: str
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class Identify(Command):
    customer_id: str
    method: str
    customer: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RaiseAssurance(Command):
    level: str
    method: str
    leg_id: str | None = None


@dataclass(frozen=True, slots=True)
class DetectIntent(Command):
    name: str
    confidence: float


@dataclass(frozen=True, slots=True)
class AssessSentiment(Command):
    score: float
    label: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RequestHandoff(Command):
    target: dict[str, Any]
    reason: str
    next_step: str | None = None  # what the bot suggests the person does first: goes on the handoff card


@dataclass(frozen=True, slots=True)
class MoveFloor(Command):
    kind: str
    participant_id: str | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ScheduleTimer(Command):
    kind: str
    due_at: datetime
    timer_id: str | None = None
    payload: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class CancelTimer(Command):
    timer_id: str


@dataclass(frozen=True, slots=True)
class Close(Command):
    disposition: str | None = None


@dataclass(frozen=True, slots=True)
class ProposeAction(Command):
    """Propose a side effect on an enterprise system. The conductor records it with its argument digest and
    the policy decision in the same transaction; a leased worker executes it later, never the proposer."""

    tool: str
    args: dict[str, Any]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Emit(Command):
    """Any other catalogued event, for participants with their own vocabulary (handoff steps, actions)."""

    type: str
    data: dict[str, Any]
    speaks_to_customer: bool = False
