"""In-process wake-ups. The store is the truth; the bus only tells listeners that something committed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from tandem.case.envelope import Event


class Bus:
    """Fan committed events out to subscribers' queues. A slow subscriber loses wake-ups, never events:
    it reads what it missed from the store, after its own checkpoint."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._queues: set[asyncio.Queue[Event]] = set()
        self._queue_size = queue_size

    def subscribe(self) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        self._queues.discard(queue)

    def publish(self, events: Sequence[Event]) -> None:
        for queue in tuple(self._queues):
            for event in events:
                try:
                    queue.put_nowait(event)
                except asyncio.QueueFull:
                    break
