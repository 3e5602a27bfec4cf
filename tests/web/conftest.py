"""A real Tandem server on a free local port and Debian's Chromium, for tests that drive the web pages.

The server runs in a thread with its own event loop: the runtime is built inside that loop (its store and
bus belong to it), and the browser talks to it over HTTP exactly as a phone or a desktop would.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tandem.clock import BusinessDateClock
from tests.conftest import open_example_activator

CHROMIUM = "/usr/bin/chromium"
ADMIN_TOKEN = "test-admin-token"
START_TIMEOUT_S = 20.0


@dataclass
class Server:
    url: str
    admin_token: str

    def admin(self, method: str, path: str, tenant: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.admin_token}", "X-Tandem-Tenant": tenant}
        response = httpx.request(method, self.url + path, json=body, headers=headers, timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def create_agent(self, tenant: str, name: str, skills: list[str]) -> dict[str, Any]:
        return self.admin("POST", "/v1/agents", tenant, {"name": name, "skills": skills, "capacity": 2})

    def create_chat_channel(self, tenant: str) -> str:
        token: str = self.admin("POST", "/v1/channels", tenant, {"kinds": ["chat"]})["token"]
        return token


class _Uvicorn(uvicorn.Server):
    """Tells the test thread when it is listening (uvicorn itself only sets a flag)."""

    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self.ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


class _ServerThread(threading.Thread):
    def __init__(self, data_dir: Path, sock: socket.socket, lakehouse: Path, with_actions: bool = False) -> None:
        super().__init__(name="tandem-test-server", daemon=True)
        self.data_dir, self.sock, self.lakehouse, self.with_actions = data_dir, sock, lakehouse, with_actions
        self.started = threading.Event()
        self.failure: BaseException | None = None
        self.server: _Uvicorn | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # top level of the thread: hand the failure to the test
            self.failure = exc
            self.started.set()

    async def _serve(self) -> None:
        from tandem.api.app import create_app
        from tandem.runtime import build_runtime
        from tandem.world.world import World

        world = World.load()
        # The bot answers from live signals, as in `tandem demo`: the example lakehouse on the runtime's clock.
        clock = BusinessDateClock(world.business_date)
        activator = await open_example_activator(self.lakehouse, clock)
        runtime = await build_runtime(
            self.data_dir, world, clock=clock, admin_token=ADMIN_TOKEN, activator=activator,
            with_actions=self.with_actions,
        )  # fmt: skip
        if runtime.actions is not None:  # the example systems as MCP processes, as `tandem demo` runs them
            not_started = await runtime.actions.start()
            if not_started:
                await runtime.aclose()
                raise RuntimeError(f"MCP servers did not start: {not_started}")
        # Streams send a keep-alive this often; short, so that a closing browser frees its stream quickly.
        runtime.stream_heartbeat_s = 1.0
        config = uvicorn.Config(
            create_app(runtime),
            log_level="warning",
            http="h11",
            ws="none",
            lifespan="on",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        self.server = _Uvicorn(config, self.started)
        try:
            await self.server.serve(sockets=[self.sock])
        finally:
            await runtime.aclose()


@pytest.fixture
def server(tmp_path: Path, example_lakehouse: Path) -> Iterator[Server]:
    """A fresh server per test: agents left available by one test must not take another test's offers."""
    yield from _running(tmp_path, example_lakehouse, with_actions=False)


@pytest.fixture
def server_with_actions(tmp_path: Path, example_lakehouse: Path) -> Iterator[Server]:
    """A fresh server whose bot can act: the action worker and the example MCP servers are running."""
    yield from _running(tmp_path, example_lakehouse, with_actions=True)


def _running(tmp_path: Path, lakehouse: Path, *, with_actions: bool) -> Iterator[Server]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # the OS picks a free port; handing uvicorn the socket leaves no race
    port = sock.getsockname()[1]
    thread = _ServerThread(tmp_path, sock, lakehouse, with_actions)
    thread.start()
    if not thread.started.wait(START_TIMEOUT_S):
        raise TimeoutError("the test server did not start")
    if thread.failure is not None:
        raise thread.failure
    try:
        yield Server(f"http://127.0.0.1:{port}", ADMIN_TOKEN)
    finally:
        # The browser has closed its pages by now, so open event streams end at their next keep-alive;
        # a stream that does not is cut off after the grace period rather than holding the test.
        assert thread.server is not None
        thread.server.should_exit = True
        thread.join(START_TIMEOUT_S)
        sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield browser
        browser.close()
