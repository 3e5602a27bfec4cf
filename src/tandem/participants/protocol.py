"""The one shape every participant has: look at the case and the input, decide commands."""

from __future__ import annotations

from collections.abc import Sequence
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


@dataclass(frozen=True, slots=True)
class Turn:
    """Everything a participant may use to decide, beside the case itself."""

    now: datetime
    input: Event
    understanding: Understanding | None = None


class Participant(Protocol):
    kind: str

    async def decide(self, case: Interaction, turn: Turn) -> Sequence[Command]: ...


class Understander(Protocol):
    def understand(self, text: str, case: Interaction, now: datetime) -> Understanding: ...
