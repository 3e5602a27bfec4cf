"""Two worker processes on PostgreSQL writing one interaction at once: nothing lost, doubled or reordered."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tandem.case import events as ev
from tandem.case.envelope import Event
from tandem.conductor import Conductor
from tandem.store.consumer import Consumer
from tandem.store.postgres import PostgresStore
from tests.conftest import EchoBot
from tests.faults.support import Child, eventually
from tests.store.pg import DSN, fresh_schema

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

LINES_PER_WORKER = 100


@pytest.fixture
async def store() -> AsyncIterator[PostgresStore]:
    async with fresh_schema() as schema:
        store = await PostgresStore.connect(DSN, schema=schema)
        yield store
        await store.close()


async def test_two_workers_on_one_interaction_never_lose_duplicate_or_reorder_an_event(
    store: PostgresStore, tmp_path: Path
) -> None:
    shared, _ = await Conductor(store, {"bot": EchoBot()}).start("bank", "C-shared", "chat")
    # This process hears none of the workers' wake-ups: it follows the log by polling from its checkpoint.
    followed: list[Event] = []

    async def follow(event: Event) -> None:
        followed.append(event)

    follower = Consumer(store, "follower", follow, batch_size=50, poll_interval_s=0.05)
    follower.start()
    try:
        await run_two_workers_and_check(store, shared.interaction_id, tmp_path, followed)
    finally:
        await follower.stop()


async def run_two_workers_and_check(
    store: PostgresStore, shared_id: str, tmp_path: Path, followed: list[Event]
) -> None:
    args = {"dsn": DSN, "schema": store.schema, "shared": shared_id, "count": LINES_PER_WORKER}
    workers = [await Child.start("write_and_turn", args | {"name": name}, tmp_path) for name in ("w1", "w2")]
    try:
        for worker in workers:
            await worker.finish(within=180)
    finally:
        for worker in workers:
            await worker.stop()

    acks = [ack | {"worker": n} for n, worker in enumerate(workers) for ack in worker.acks()]
    assert len(acks) == 2 * 2 * LINES_PER_WORKER
    interactions = {shared_id} | {w.reports[0]["interaction_id"] for w in workers}
    assert len(interactions) == 3
    assert await store.unhandled() == []

    for interaction_id in interactions:
        events = await store.read(interaction_id)
        assert [e.seq for e in events] == list(range(1, len(events) + 1)), "seq has a gap"
        assert [e.position for e in events] == sorted({e.position for e in events}), "positions follow seq"
        assert len({e.event_id for e in events}) == len(events)

        mine = [a for a in acks if a["interaction_id"] == interaction_id]
        stored = {e.seq: e for e in events}
        for ack in mine:
            assert stored[ack["seq"]].event_id == ack["event_id"], f"acknowledged seq {ack['seq']} changed"
        lines = [e for e in events if e.type == ev.CUSTOMER_SAID]
        assert sorted(e.seq for e in lines) == sorted(a["seq"] for a in mine), "an input without an ack, or lost"
        for sender in range(2):
            # Each worker's lines stay in the order it sent them.
            sent = [a["seq"] for a in mine if a["worker"] == sender]
            assert sent == sorted(sent)

        # Every input is answered exactly once, in the order the inputs were committed.
        turns = [int(e.data["input_seq"]) for e in events if e.type == ev.TURN_COMPLETED]
        inputs = [e.seq for e in events if ev.spec_of(e.type).is_input]
        assert turns == inputs
        answers = Counter(e.causation_id for e in events if e.type == ev.REPLY_SENT)
        assert all(answers[e.event_id] == 1 for e in lines)

    everything = await store.read_all(limit=100_000)
    versions = [(await store.record(i)).version for i in interactions]
    assert len(everything) == sum(versions)
    assert [e.position for e in everything] == sorted({e.position for e in everything})

    async def caught_up() -> bool:
        return len(followed) >= len(everything)

    await eventually(caught_up, "the follower reads every committed event")
    assert [e.event_id for e in followed] == [e.event_id for e in everything]
