"""A checkpointed reader of the store-wide log: the way reactors, projections and streams follow it.

The store is the truth and the bus only wakes. A consumer reads ``read_all(after_position=checkpoint)`` in
batches, hands each event to its handler, and saves the checkpoint after each batch. Wake-ups make it
prompt; a bounded poll makes it correct when wake-ups are lost: a full bus queue, a late subscription, or
events committed by another process, whose bus this process never hears.

Delivery is once per event while the consumer runs, and at least once across a crash (the batch after the
last saved checkpoint is handled again), so handlers should be idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from tandem.bus import Bus
from tandem.case.envelope import Event
from tandem.store.protocol import EventStore

log = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None]]


class Consumer:
    def __init__(
        self,
        store: EventStore,
        name: str,
        handler: Handler,
        *,
        bus: Bus | None = None,
        batch_size: int = 500,
        poll_interval_s: float = 1.0,
    ) -> None:
        self.store = store
        self.name = name
        self.handler = handler
        self.bus = bus
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self._position: int | None = None
        # One reader at a time, so a manual catch_up beside run() cannot hand an event over twice.
        self._reading = asyncio.Lock()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def position(self) -> int:
        """The position of the last event handled (0 before the first catch-up)."""
        return self._position or 0

    async def catch_up(self) -> int:
        """Handle everything committed after the checkpoint; return how many events were handled.

        If the handler raises, the checkpoint keeps the events handled before it and the error propagates;
        the failed event is offered again on the next catch-up.
        """
        async with self._reading:
            if self._position is None:
                self._position = await self.store.checkpoint(self.name)
            handled = 0
            while True:
                batch = await self.store.read_all(after_position=self._position, limit=self.batch_size)
                if not batch:
                    return handled
                saved = self._position
                try:
                    for event in batch:
                        await self.handler(event)
                        self._position = event.position
                        handled += 1
                finally:
                    if self._position != saved:
                        await self.store.save_checkpoint(self.name, self._position)
                if len(batch) < self.batch_size:
                    return handled

    async def run(self) -> None:
        """Follow the log until ``stop()``: catch up, then wait for a wake-up or the poll interval."""
        # Subscribe before the first read: anything committed after it wakes us; anything before, we read.
        queue = self.bus.subscribe() if self.bus is not None else None
        try:
            while not self._stop.is_set():
                try:
                    await self.catch_up()
                except Exception:
                    # Top level of a long-running task: keep following, retry after the poll interval.
                    log.exception("consumer %s failed; retrying from position %s", self.name, self.position)
                await self._wait(queue)
        finally:
            if queue is not None and self.bus is not None:
                self.bus.unsubscribe(queue)

    async def _wait(self, queue: asyncio.Queue[Event] | None) -> None:
        waiters: set[asyncio.Task[object]] = {asyncio.create_task(self._stop.wait())}
        if queue is not None:
            waiters.add(asyncio.create_task(queue.get()))
        try:
            await asyncio.wait(waiters, timeout=self.poll_interval_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        if queue is not None:
            # The wake-ups themselves carry nothing we need: the next read gets every event from the store.
            while not queue.empty():
                queue.get_nowait()

    def start(self) -> asyncio.Task[None]:
        """Run in the background of the current event loop."""
        if self._task is None or self._task.done():
            self._stop.clear()
            self._task = asyncio.create_task(self.run(), name=f"consumer:{self.name}")
        return self._task

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
