"""The event envelope: every fact Tandem knows arrives in one of these, immutable and versioned."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def new_id(prefix: str) -> str:
    """A readable, globally unique id such as ``int_5f0c...``."""
    return f"{prefix}_{uuid.uuid4().hex}"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who caused an event. AI actors name the model and prompt version so every AI word is traceable."""

    kind: str  # customer, ivr, bot, ai, human, copilot, supervisor, system, channel
    id: str | None = None
    model: str | None = None
    prompt_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.id is not None:
            out["id"] = self.id
        if self.model is not None:
            out["model"] = self.model
        if self.prompt_version is not None:
            out["prompt_version"] = self.prompt_version
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Actor:
        return cls(
            kind=str(raw["kind"]),
            id=raw.get("id"),
            model=raw.get("model"),
            prompt_version=raw.get("prompt_version"),
        )


SYSTEM = Actor("system")


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An event decided but not yet committed: the store gives it its seq, position and recorded time."""

    type: str
    data: Mapping[str, Any]
    actor: Actor
    occurred_at: datetime
    floor_epoch: int
    leg_id: str | None = None
    causation_id: str | None = None
    correlation_id: str | None = None
    event_id: str = field(default_factory=lambda: new_id("evt"))


@dataclass(frozen=True, slots=True)
class Event:
    """A committed event, exactly the envelope of DESIGN.md."""

    event_id: str
    tenant_id: str
    interaction_id: str
    seq: int
    position: int
    type: str
    schema_version: int
    occurred_at: datetime
    recorded_at: datetime
    actor: Actor
    leg_id: str | None
    causation_id: str | None
    correlation_id: str | None
    floor_epoch: int
    data: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "tenant_id": self.tenant_id,
            "interaction_id": self.interaction_id,
            "seq": self.seq,
            "position": self.position,
            "type": self.type,
            "schema_version": self.schema_version,
            "occurred_at": self.occurred_at.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
            "actor": self.actor.to_dict(),
            "leg_id": self.leg_id,
            "causation_id": self.causation_id,
            "correlation_id": self.correlation_id,
            "floor_epoch": self.floor_epoch,
            "data": dict(self.data),
        }
