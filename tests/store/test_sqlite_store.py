from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tandem.bus import Bus
from tandem.case.envelope import Event
from tandem.store.consumer import Consumer
from tandem.store.protocol import EventStore
from tandem.store.sqlite import SqliteStore
from tests.store.contract import StoreContract, opening, said


class TestSqliteStore(StoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[EventStore]:
        store = SqliteStore(tmp_path / "tandem.db")
        yield store
        await store.close()


async def test_an_acknowledged_append_is_in_the_file_when_it_is_reopened(tmp_path: Path) -> None:
    first = SqliteStore(tmp_path / "tandem.db")
    await first.create("bank", "int-1", "C-1", opening())
    await first.append("bank", "int-1", [said("remember me")], None)
    await first.close()
    reopened = SqliteStore(tmp_path / "tandem.db")
    try:
        assert [e.data.get("text") for e in await reopened.read("int-1", after_seq=2)] == ["remember me"]
    finally:
        await reopened.close()


async def test_a_consumer_woken_by_the_bus_reads_at_once_without_waiting_for_its_poll(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "tandem.db")
    bus = Bus()
    seen: list[Event] = []
    arrived = asyncio.Event()

    async def handle(event: Event) -> None:
        seen.append(event)
        arrived.set()

    first = await store.create("bank", "int-1", "C-1", opening())
    consumer = Consumer(store, "prompt", handle, bus=bus, poll_interval_s=3600)
    consumer.start()
    try:
        await asyncio.wait_for(arrived.wait(), 5)  # its first read: by now it is subscribed and waiting
        arrived.clear()
        later = await store.append("bank", "int-1", [said("wake up")], None)
        bus.publish(later)
        await asyncio.wait_for(arrived.wait(), 5)
    finally:
        await consumer.stop()
        await store.close()
    assert [e.event_id for e in seen] == [e.event_id for e in [*first, *later]]
