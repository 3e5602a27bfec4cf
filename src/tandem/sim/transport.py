"""Where the simulator's client talks to: the app in this process, a server on a socket, or a URL.

In process, the client speaks HTTP to ``create_app(runtime)`` through ``httpx.ASGITransport``: the same
requests, routing, validation and error handling, without a socket. Over HTTP, a uvicorn server runs in a
thread on a socket bound to 127.0.0.1 before it starts, so the first request waits in the listen backlog
instead of racing the start-up. Both own a fresh data directory and a frozen simulated clock on the world's
business date, so a run gives the same figures on either.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import tempfile
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any, Literal

import httpx

from tandem.clock import ManualClock
from tandem.participants.protocol import Participant
from tandem.sim.client import TandemApi
from tandem.world.world import World

Transport = Literal["inprocess", "http"]
REQUEST_TIMEOUT_S = 30.0
SERVER_STOP_S = 10.0


def simulated_clock(world: World) -> ManualClock:
    return ManualClock(datetime.combine(world.business_date, time(9, 0), UTC))


async def _runtime(
    data_dir: Path, world: World, admin_token: str, participants: Mapping[str, Participant] | None = None
) -> Any:
    from tandem.runtime import build_runtime

    return await build_runtime(
        data_dir, world, clock=simulated_clock(world), admin_token=admin_token, participants=participants
    )


def _app(runtime: Any) -> Any:
    from tandem.api.app import create_app

    return create_app(runtime)


@asynccontextmanager
async def inprocess(world: World, participants: Mapping[str, Participant] | None = None) -> AsyncIterator[TandemApi]:
    """``participants`` replaces the deployment's (the self-service bot): a seam for tests that need a
    participant misbehaving on purpose."""
    admin_token = "tdm_sim_" + secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="tandem-sim-") as directory:
        runtime = await _runtime(Path(directory), world, admin_token, participants)
        app = _app(runtime)
        # ASGITransport sends no lifespan events: run the app's lifespan (reactors, shutdown) ourselves.
        lifespan: AbstractAsyncContextManager[Any] = app.router.lifespan_context(app)
        try:
            async with lifespan:
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://tandem.inprocess", timeout=REQUEST_TIMEOUT_S
                ) as http:
                    yield TandemApi(http, admin_token)
        finally:
            await runtime.aclose()


class _ServerThread(threading.Thread):
    """uvicorn in a thread of its own, with its own event loop, on a socket bound before it starts."""

    def __init__(self, world: World, data_dir: Path, admin_token: str, sock: socket.socket) -> None:
        super().__init__(name="tandem-sim-server", daemon=True)
        self.world, self.data_dir, self.admin_token, self.sock = world, data_dir, admin_token, sock
        self.server: Any = None
        self.ready = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # the thread's top level: hand the failure to the caller
            self.failure = exc
            self.ready.set()

    async def _serve(self) -> None:
        import uvicorn

        runtime = await _runtime(self.data_dir, self.world, self.admin_token)
        try:
            config = uvicorn.Config(_app(runtime), log_level="warning", lifespan="on", access_log=False)
            self.server = uvicorn.Server(config)
            self.ready.set()
            await self.server.serve(sockets=[self.sock])
        finally:
            await runtime.aclose()

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.join(SERVER_STOP_S)


@asynccontextmanager
async def http_server(world: World) -> AsyncIterator[TandemApi]:
    admin_token = "tdm_sim_" + secrets.token_urlsafe(16)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it every small answer waits out a delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="tandem-sim-") as directory:
        thread = _ServerThread(world, Path(directory), admin_token, sock)
        thread.start()
        try:
            # Bounded: the server object exists once the runtime is built; requests then queue on the socket.
            ready = await asyncio.to_thread(thread.ready.wait, REQUEST_TIMEOUT_S)
            if thread.failure is not None:
                raise RuntimeError(f"the simulator's server failed to start: {thread.failure}") from thread.failure
            if not ready:
                raise RuntimeError(f"the simulator's server did not start within {REQUEST_TIMEOUT_S} s")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=REQUEST_TIMEOUT_S) as http:
                yield TandemApi(http, admin_token)
        finally:
            await asyncio.to_thread(thread.stop)
            sock.close()


@asynccontextmanager
async def external(url: str, admin_token: str) -> AsyncIterator[TandemApi]:
    async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=REQUEST_TIMEOUT_S) as http:
        yield TandemApi(http, admin_token)


def open_api(
    transport: Transport, world: World, *, url: str | None = None, admin_token: str | None = None
) -> AbstractAsyncContextManager[TandemApi]:
    if url is not None:
        if not admin_token:
            raise ValueError("an external --url needs an admin token (--admin-token or TANDEM_ADMIN_TOKEN)")
        return external(url, admin_token)
    return inprocess(world) if transport == "inprocess" else http_server(world)
