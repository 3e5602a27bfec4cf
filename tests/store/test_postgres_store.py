from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tandem.case.envelope import Event
from tandem.store import codec
from tandem.store.consumer import Consumer
from tandem.store.postgres import PostgresStore
from tandem.store.protocol import EventStore
from tests.store.contract import StoreContract, opening, said
from tests.store.pg import DSN, fresh_schema

pytestmark = pytest.mark.postgres


class TestPostgresStore(StoreContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[EventStore]:
        async with fresh_schema() as schema:
            store = await PostgresStore.connect(DSN, schema=schema)
            yield store
            await store.close()


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with fresh_schema() as name:
        yield name


async def test_workers_starting_together_create_the_tables_once(schema: str) -> None:
    stores = await asyncio.gather(*(PostgresStore.connect(DSN, schema=schema) for _ in range(4)))
    try:
        await stores[0].create("bank", "int-1", "C-1", opening())
        assert len(await stores[3].read("int-1")) == 2
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_an_erasure_by_one_worker_is_honoured_at_once_by_another(schema: str) -> None:
    one = await PostgresStore.connect(DSN, schema=schema)
    other = await PostgresStore.connect(DSN, schema=schema)
    try:
        await one.create("bank", "int-1", "C-1", opening())
        await other.append("bank", "int-1", [said("secret")], None)
        assert (await other.read("int-1"))[2].data["text"] == "secret"
        await one.erase_customer("bank", "C-1")
        assert (await other.read("int-1"))[2].data["text"] == codec.ERASED
        await other.append("bank", "int-1", [said("another secret")], None)
        assert (await one.read("int-1"))[3].data["text"] == codec.ERASED
    finally:
        await one.close()
        await other.close()


async def test_concurrent_writers_never_make_a_following_reader_skip_an_event(schema: str) -> None:
    """Positions follow commit order, so a reader after its checkpoint misses nothing committed later."""
    store = await PostgresStore.connect(DSN, schema=schema, max_size=12)
    try:
        interactions = [f"int-{n}" for n in range(8)]
        for n, interaction_id in enumerate(interactions):
            await store.create("bank", interaction_id, f"C-{n}", opening(f"C-{n}"))
        seen: list[Event] = []

        async def remember(event: Event) -> None:
            seen.append(event)

        follower = Consumer(store, "follower", remember, batch_size=7)
        writing = True

        async def follow() -> None:
            while writing:
                await follower.catch_up()
            await follower.catch_up()

        async def write(interaction_id: str) -> None:
            for n in range(25):
                await store.append("bank", interaction_id, [said(f"{n}"), said(f"{n}+")], None)

        reader = asyncio.create_task(follow())
        await asyncio.gather(*(write(i) for i in interactions))
        writing = False
        await asyncio.wait_for(reader, timeout=30)

        everything = await store.read_all(limit=10_000)
        assert len(everything) == 8 * (2 + 50)
        assert [e.event_id for e in seen] == [e.event_id for e in everything]
        for interaction_id in interactions:
            mine = [e for e in everything if e.interaction_id == interaction_id]
            assert [e.seq for e in mine] == list(range(1, 53))
    finally:
        await store.close()
