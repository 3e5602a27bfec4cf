"""The handoff state machine: requested -> queued -> offered -> accepted -> connected, or it ends early."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

HandoffStatus = Literal[
    "requested", "queued", "offered", "accepted", "connected", "declined", "expired", "abandoned", "completed"
]

# A declined or expired offer sends the handoff back to the queue for the next agent.
TRANSITIONS: dict[str, frozenset[str]] = {
    "requested": frozenset({"queued", "offered", "abandoned"}),
    "queued": frozenset({"offered", "abandoned"}),
    "offered": frozenset({"accepted", "declined", "expired", "abandoned"}),
    "declined": frozenset({"queued", "offered", "abandoned"}),
    "expired": frozenset({"queued", "offered", "abandoned"}),
    "accepted": frozenset({"connected", "abandoned"}),
    "connected": frozenset({"completed"}),
    "abandoned": frozenset(),
    "completed": frozenset(),
}

OPEN_STATUSES = frozenset({"requested", "queued", "offered", "declined", "expired", "accepted"})


class IllegalTransition(ValueError):
    pass


@dataclass(slots=True)
class Handoff:
    handoff_id: str
    target: dict[str, Any]
    reason: str
    requested_at: str
    status: HandoffStatus = "requested"
    queue: str | None = None
    offer_id: str | None = None
    agent_id: str | None = None
    expires_at: str | None = None
    next_step: str | None = None
    requested_by: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def move(self, status: HandoffStatus, at: str, **details: Any) -> None:
        if status not in TRANSITIONS[self.status]:
            raise IllegalTransition(f"handoff {self.handoff_id} cannot go from {self.status} to {status}")
        self.history.append({"from": self.status, "to": status, "at": at, **details})
        self.status = status

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.handoff_id,
            "status": self.status,
            "target": self.target,
            "reason": self.reason,
            "queue": self.queue,
            "agent_id": self.agent_id,
            "offer_id": self.offer_id,
            "expires_at": self.expires_at,
            "requested_at": self.requested_at,
            "next_step": self.next_step,
            "requested_by": self.requested_by,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.to_api(), "history": self.history}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Handoff:
        return cls(
            handoff_id=raw["id"],
            target=raw["target"],
            reason=raw["reason"],
            requested_at=raw["requested_at"],
            status=raw["status"],
            queue=raw.get("queue"),
            offer_id=raw.get("offer_id"),
            agent_id=raw.get("agent_id"),
            expires_at=raw.get("expires_at"),
            next_step=raw.get("next_step"),
            requested_by=raw.get("requested_by"),
            history=list(raw.get("history", [])),
        )
