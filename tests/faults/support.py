"""Driving worker processes from a test: start them, read their reports, kill them. Every wait is bounded."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

CHILD = Path(__file__).with_name("child.py")


class Child:
    """A worker process running ``child.py``; its reports are kept in order as they arrive."""

    def __init__(self, proc: asyncio.subprocess.Process, stderr: Path) -> None:
        self.proc = proc
        self.stderr = stderr
        self.reports: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, mode: str, args: dict[str, Any], workdir: Path) -> Child:
        stderr = workdir / f"{mode}-{uuid4().hex[:8]}.stderr"
        with stderr.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(CHILD), mode, json.dumps(args), stdout=asyncio.subprocess.PIPE, stderr=err
            )
        return cls(proc, stderr)

    def acks(self) -> list[dict[str, Any]]:
        return [r for r in self.reports if r["event"] == "ack"]

    async def expect(self, event: str, within: float = 30.0, count: int = 1) -> dict[str, Any]:
        """Read reports until the ``count``-th one of ``event`` arrives; return it."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + within
        while sum(r["event"] == event for r in self.reports) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {event!r} report within {within}s; stderr:\n{self.errors()}")
            line = await asyncio.wait_for(self.proc.stdout.readline(), remaining)
            if not line:
                await self.proc.wait()
                raise AssertionError(
                    f"worker exited ({self.proc.returncode}) before {event!r}; stderr:\n{self.errors()}"
                )
            self.reports.append(json.loads(line))
        return [r for r in self.reports if r["event"] == event][count - 1]

    async def kill(self) -> None:
        """SIGKILL: no cleanup, no flush, no goodbye. Reports already written stay readable."""
        self.proc.send_signal(signal.SIGKILL)
        await self.drain(within=10)
        assert self.proc.returncode == -signal.SIGKILL

    async def finish(self, within: float = 120.0) -> None:
        """Wait for a clean exit, keeping every report."""
        await self.drain(within)
        assert self.proc.returncode == 0, f"worker failed ({self.proc.returncode}):\n{self.errors()}"

    async def drain(self, within: float) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + within
        while line := await asyncio.wait_for(self.proc.stdout.readline(), max(0.0, deadline - time.monotonic())):
            if line.endswith(b"\n"):  # a line cut by the kill was never a complete report
                self.reports.append(json.loads(line))
        await asyncio.wait_for(self.proc.wait(), max(0.0, deadline - time.monotonic()))

    def errors(self) -> str:
        return self.stderr.read_text(errors="replace")[-4000:]

    async def stop(self) -> None:
        """Cleanup for a test that failed half-way: never leave a worker behind."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(self.proc.wait(), 10)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 30.0) -> None:
    """Poll ``check`` until it holds, failing after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.02)
