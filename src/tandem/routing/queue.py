"""Queues: handoffs waiting for a person, first in first out per skill.

A queue is named by a skill. A handoff keeps its place from the moment it was requested: one that comes
back after a declined or expired offer is still the oldest, and is offered first again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tandem.world.world import Tenant

GENERAL = "general"


def queues_of(tenant: Tenant) -> tuple[str, ...]:
    return tenant.skills or (GENERAL,)


def default_queue(tenant: Tenant) -> str:
    return queues_of(tenant)[0]


def queue_for(tenant: Tenant, target: Mapping[str, Any]) -> str:
    """The queue a handoff target lands in: a named skill queue, or the tenant's first."""
    wanted = target.get("id") if target.get("kind") == "queue" else None
    if isinstance(wanted, str) and (wanted in tenant.skills or wanted == GENERAL):
        return wanted
    return default_queue(tenant)


@dataclass(slots=True)
class Waiting:
    tenant_id: str
    interaction_id: str
    handoff_id: str
    queue: str
    since: datetime
    # A handoff to one named agent waits for that agent only.
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class QueueStats:
    name: str
    waiting: int
    agents_available: int
    oldest_wait_s: float | None

    def to_api(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "waiting": self.waiting,
            "agents_available": self.agents_available,
            "oldest_wait_s": self.oldest_wait_s,
        }


@dataclass(slots=True)
class Queues:
    """The waiting handoffs of every tenant, by interaction (an interaction has at most one open handoff)."""

    waiting: dict[str, Waiting] = field(default_factory=dict)

    def add(self, item: Waiting) -> None:
        self.waiting[item.interaction_id] = item

    def remove(self, interaction_id: str) -> None:
        self.waiting.pop(interaction_id, None)

    def in_order(self, tenant_id: str | None = None) -> list[Waiting]:
        items: Iterable[Waiting] = self.waiting.values()
        if tenant_id is not None:
            items = (w for w in items if w.tenant_id == tenant_id)
        return sorted(items, key=lambda w: (w.since, w.handoff_id))
