"""A consumer that misses wake-ups still sees every event exactly once: it reads from its checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem.bus import Bus
from tandem.case import events as ev
from tandem.case.envelope import Actor, Event
from tandem.clock import ManualClock
from tandem.conductor import Conductor, Input
from tandem.store.consumer import Consumer
from tandem.store.sqlite import SqliteStore
from tests.conftest import EchoBot
from tests.faults.support import Child, eventually

pytestmark = pytest.mark.slow


class Seen:
    """A handler that remembers what it was given."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    def ids(self) -> list[str]:
        return [e.event_id for e in self.events]


async def test_a_late_subscriber_with_an_overflowing_queue_sees_every_event_once(
    sqlite_store: SqliteStore, clock: ManualClock
) -> None:
    bus = Bus(queue_size=2)
    conductor = Conductor(sqlite_store, {"bot": EchoBot()}, clock=clock, bus=bus)
    state, _ = await conductor.start("bank", "C-1", "chat")
    customer = Actor("customer", "C-1")
    for n in range(5):  # committed before the consumer subscribes: no wake-up will ever say so
        await conductor.handle(Input("bank", state.interaction_id, ev.CUSTOMER_SAID, {"text": f"early {n}"}, customer))

    seen = Seen()
    consumer = Consumer(sqlite_store, "late", seen, bus=bus, poll_interval_s=0.05, batch_size=16)
    consumer.start()
    try:
        for n in range(40):  # each turn publishes several events into a queue that holds two
            await conductor.handle(Input("bank", state.interaction_id, ev.CUSTOMER_SAID, {"text": f"{n}"}, customer))

        async def caught_up() -> bool:
            return len(seen.events) >= len(await sqlite_store.read_all(limit=10_000))

        await eventually(caught_up, "the consumer reads everything committed")
    finally:
        await consumer.stop()
    assert seen.ids() == [e.event_id for e in await sqlite_store.read_all(limit=10_000)]
    assert await sqlite_store.checkpoint("late") == seen.events[-1].position


async def test_a_consumer_follows_another_process_it_never_hears_and_resumes_after_a_restart(
    tmp_path: Path,
) -> None:
    db = tmp_path / "tandem.db"
    writer = await Child.start("burst", {"db": str(db)}, tmp_path)
    store = SqliteStore(db)
    seen = Seen()
    try:
        await writer.expect("ack")
        # Its own bus: wake-ups from the writer's process never arrive; only the bounded poll finds them.
        first = Consumer(store, "follower", seen, bus=Bus(), poll_interval_s=0.05, batch_size=25)
        first.start()
        try:

            async def some() -> bool:
                return len(seen.events) >= 100

            await eventually(some, "the consumer reads what another process commits")
        finally:
            await first.stop()
        await writer.expect("ack", count=len(writer.acks()) + 100)  # more lands while nobody follows
        await writer.kill()

        second = Consumer(store, "follower", seen, bus=Bus(), poll_interval_s=0.05, batch_size=25)
        second.start()
        try:
            everything = await store.read_all(limit=100_000)

            async def caught_up() -> bool:
                return len(seen.events) >= len(everything)

            await eventually(caught_up, "the restarted consumer catches up from its checkpoint")
        finally:
            await second.stop()
        assert seen.ids() == [e.event_id for e in everything]
        acknowledged = {a["event_id"] for a in writer.acks()}
        assert acknowledged <= set(seen.ids())
    finally:
        await writer.stop()
        await store.close()
