"""The one shape every participant has: look at the case and the input, decide commands."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tandem.case.envelope import Event
from tandem.case.interaction import Interaction
from tandem.commands import Command


@dataclass(frozen=True, slots=True)
class Understanding:
    """What the understanding step made of a customer's words, before anyone decides."""

    intents: tuple[tuple[str, float], ...] = ()
    entities: dict[str, Any] = field(default_factory=dict)
    sentiment: tuple[float, str, str | None] | None = None  # score, label, reason
    text: str = ""
    # Every escalation cue the line carried, most urgent first: the sentiment's label is only the first, and
    # "this is useless, get me a person" is both angry and a request for a person.
    cues: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Turn:
    """Everything a participant may use to decide, beside the case itself."""

    now: datetime
    input: Event
    understanding: Understanding | None = None
    # The case as it would be after this turn's understanding (the intent and sentiment it records first) and
    # some commands of the floor holder: what policy will see when it decides a proposal made after them.
    preview: Callable[[Sequence[Command]], Interaction] | None = None


class Participant(Protocol):
    kind: str

    async def decide(self, case: Interaction, turn: Turn) -> Sequence[Command]: ...


class Understander(Protocol):
    def understand(self, text: str, case: Interaction, now: datetime) -> Understanding: ...


@dataclass(frozen=True, slots=True)
class ActionDecision:
    """A policy's verdict on a proposed action: allow, deny, or require an approval from someone."""

    outcome: str  # allow, deny, require_approval
    rule: str
    policy_version: str
    reasons: tuple[str, ...] = ()
    requires: str | None = None  # agent, supervisor
    expires_in_s: float | None = None


class ActionGate(Protocol):
    """Decides every proposed action from the pinned policy. Anything the customer can influence may only
    tighten the decision; the gate is asked again when the action is about to execute."""

    def decide(
        self, case: Interaction, tool: str, args: dict[str, Any], actor_kind: str, now: datetime
    ) -> ActionDecision: ...
