"""The EventStore protocol every backend implements, and the errors it speaks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tandem.case.envelope import Event, PendingEvent


class StoreError(Exception):
    pass


class VersionConflict(StoreError):
    """Someone else appended first: reload and decide again. This is the fence of the mailbox."""

    def __init__(self, interaction_id: str, expected: int, actual: int) -> None:
        super().__init__(f"interaction {interaction_id} is at version {actual}, not {expected}")
        self.interaction_id, self.expected, self.actual = interaction_id, expected, actual


class InteractionNotFound(StoreError):
    def __init__(self, interaction_id: str) -> None:
        super().__init__(f"no interaction {interaction_id}")
        self.interaction_id = interaction_id


class OpenInteractionExists(StoreError):
    """At most one open interaction per customer and tenant."""

    def __init__(self, tenant_id: str, customer_id: str, existing: str) -> None:
        super().__init__(f"customer {customer_id} of {tenant_id} already has open interaction {existing}")
        self.existing = existing


class DuplicateInput(StoreError):
    """A timer that already fired, or was cancelled, fired again: the second firing is dropped."""


@dataclass(frozen=True, slots=True)
class InteractionRecord:
    interaction_id: str
    tenant_id: str
    customer_id: str
    status: str
    version: int
    channel: str
    floor_kind: str
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class DueTimer:
    timer_id: str
    tenant_id: str
    interaction_id: str
    kind: str
    due_at: datetime


class EventStore(Protocol):
    """Durable, ordered, per-interaction logs with a store-wide commit order.

    ``seq`` is gap-free per interaction; ``position`` grows in commit order across the store, so a
    consumer that reads after its checkpoint never skips an event committed later with a smaller number.
    """

    async def create(
        self, tenant_id: str, interaction_id: str, customer_id: str, events: Sequence[PendingEvent]
    ) -> list[Event]: ...

    async def append(
        self,
        tenant_id: str,
        interaction_id: str,
        events: Sequence[PendingEvent],
        expected_version: int | None,
    ) -> list[Event]:
        """Append atomically. ``expected_version=None`` appends at the end (inputs: their arrival is the
        acknowledgement); otherwise a different current version raises VersionConflict."""
        ...

    async def read(self, interaction_id: str, after_seq: int = 0, limit: int | None = None) -> list[Event]: ...

    async def read_all(self, after_position: int = 0, limit: int = 500) -> list[Event]: ...

    async def record(self, interaction_id: str) -> InteractionRecord: ...

    async def open_interaction_of(self, tenant_id: str, customer_id: str) -> str | None: ...

    async def search(
        self,
        tenant_id: str,
        *,
        status: str | None = None,
        customer_id: str | None = None,
        floor_kind: str | None = None,
        limit: int = 50,
        after: str | None = None,
    ) -> list[InteractionRecord]: ...

    async def save_snapshot(self, interaction_id: str, version: int, state: dict[str, Any]) -> None: ...

    async def load_snapshot(self, interaction_id: str) -> tuple[int, dict[str, Any]] | None: ...

    async def checkpoint(self, consumer: str) -> int: ...

    async def save_checkpoint(self, consumer: str, position: int) -> None: ...

    async def acquire_lease(self, interaction_id: str, owner: str, ttl_s: float) -> bool: ...

    async def release_lease(self, interaction_id: str, owner: str) -> None: ...

    async def due_timers(self, now: datetime, limit: int = 100) -> list[DueTimer]: ...

    async def unhandled(self, limit: int = 100) -> list[tuple[str, str]]:
        """(tenant, interaction) pairs holding acknowledged inputs not yet processed: work a crash left."""
        ...

    async def erase_customer(self, tenant_id: str, customer_id: str) -> int:
        """Destroy the customer's keys: their personal data becomes unreadable; the log stays."""
        ...

    async def close(self) -> None: ...
