"""A real Tandem API on 127.0.0.1 (a random port), served by uvicorn in the test's own event loop, so a test
can drive it over HTTP (streams included) and look at the runtime directly. Time is a ManualClock."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tandem.actions.runtime import policy_files
from tandem.api.app import create_app
from tandem.case.envelope import Event
from tandem.clock import ManualClock
from tandem.participants.protocol import Participant
from tandem.runtime import Runtime, build_runtime
from tandem.world.world import World
from tests.conftest import EchoBot

ADMIN_TOKEN = "admin-test-token"
TENANT = "bank"
WAIT_S = 5.0


@asynccontextmanager
async def serving(runtime: Runtime) -> AsyncIterator[str]:
    """Serve the app on a socket that is already listening: requests wait in the backlog until uvicorn has
    run the lifespan and accepts them, so nobody has to wait for start-up."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Accepted connections inherit this; without it each response waits ~40 ms for a delayed ACK (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(runtime), log_config=None, log_level="warning", ws="none", lifespan="on",
        timeout_graceful_shutdown=2,
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@dataclass
class Chat:
    id: str
    leg_id: str
    token: str
    body: dict[str, Any]


@dataclass
class Staff:
    id: str
    token: str


@dataclass
class Api:
    """The running API, its runtime, and the small steps most tests take."""

    runtime: Runtime
    client: httpx.AsyncClient
    clock: ManualClock
    channels: dict[str, str] = field(default_factory=dict)

    def auth(self, token: str | None) -> dict[str, str]:
        headers = {"X-Tandem-Tenant": TENANT}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    @property
    def admin(self) -> dict[str, str]:
        return self.auth(ADMIN_TOKEN)

    async def call(
        self, method: str, path: str, token: str | None = None, body: Any = None, **kw: Any
    ) -> httpx.Response:
        headers = {**self.auth(token), **kw.pop("headers", {})}
        if body is None:
            return await self.client.request(method, path, headers=headers, **kw)
        return await self.client.request(method, path, headers=headers, json=body, **kw)

    async def channel(self, kinds: tuple[str, ...] = ("chat", "voice", "sms")) -> str:
        key = ",".join(kinds)
        if key not in self.channels:
            r = await self.call("POST", "/v1/channels", ADMIN_TOKEN, {"kinds": list(kinds)})
            assert r.status_code == 201, r.text
            self.channels[key] = r.json()["token"]
        return self.channels[key]

    async def chat(self, token: str | None = None, **body: Any) -> Chat:
        payload = {"channel": "chat", **body}
        r = await self.call("POST", "/v1/interactions", token, payload)
        assert r.status_code == 201, r.text
        data = r.json()
        return Chat(data["id"], data["leg_id"], data["customer_token"], data)

    async def staff(self, name: str, skills: tuple[str, ...] = ("cards",), capacity: int = 1,
                    role: str = "agent", available: bool = True) -> Staff:  # fmt: skip
        body = {"name": name, "skills": list(skills), "capacity": capacity, "role": role}
        r = await self.call("POST", "/v1/agents", ADMIN_TOKEN, body)
        assert r.status_code == 201, r.text
        person = Staff(r.json()["id"], r.json()["token"])
        if available:
            await self.presence(person, "available")
        return person

    async def presence(self, person: Staff, status: str) -> None:
        r = await self.call("PUT", f"/v1/agents/{person.id}/presence", person.token, {"status": status})
        assert r.status_code == 200, r.text

    async def offers(self, person: Staff) -> list[dict[str, Any]]:
        r = await self.call("GET", f"/v1/agents/{person.id}/offers", person.token)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    async def hand_over(self, chat: Chat, token: str | None = None, target: dict[str, Any] | None = None) -> None:
        body = {"target": target or {"kind": "human"}, "reason": "the customer asked for a person"}
        r = await self.call("POST", f"/v1/interactions/{chat.id}/handoff", token or chat.token, body)
        assert r.status_code == 202, r.text

    async def take(self, person: Staff, chat: Chat) -> None:
        """Accept the offer of this chat that ``person`` holds."""
        offer = next(o for o in await self.offers(person) if o["interaction_id"] == chat.id)
        r = await self.call("POST", f"/v1/offers/{offer['id']}/accept", person.token)
        assert r.status_code == 200, r.text

    async def events(self, interaction_id: str) -> list[Event]:
        return await self.runtime.store.read(interaction_id)

    async def all_events(self) -> list[Event]:
        return await self.runtime.store.read_all(0, limit=1_000_000)


@pytest.fixture
def world() -> World:
    return World.load()


@pytest.fixture
def participants() -> Mapping[str, Participant]:
    return {"bot": EchoBot()}


@asynccontextmanager
async def running(runtime: Runtime, clock: ManualClock) -> AsyncIterator[Api]:
    """The API over ``runtime``, served until the block ends; the runtime is closed after it."""
    try:
        async with serving(runtime) as url, httpx.AsyncClient(base_url=url, timeout=WAIT_S) as client:
            yield Api(runtime, client, clock)
    finally:
        await runtime.aclose()


@pytest.fixture
def shipped() -> str:
    """The bank's shipped policy file, as text."""
    return policy_files(World.load())[TENANT].read_text()


@pytest.fixture
async def api(
    tmp_path: Path, clock: ManualClock, world: World, participants: Mapping[str, Participant]
) -> AsyncIterator[Api]:
    runtime = await build_runtime(tmp_path, world, clock=clock, participants=participants, admin_token=ADMIN_TOKEN)
    async with running(runtime, clock) as api:
        yield api


@dataclass
class Sse:
    id: int
    data: dict[str, Any]


class Stream:
    """Reads server-sent events from an open response, each read bounded by a timeout."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.raw: list[str] = []
        self._lines = response.aiter_lines()

    async def next(self, timeout_s: float = WAIT_S) -> Sse | None:
        """The next event, or None when the server ended the stream."""
        async with asyncio.timeout(timeout_s):
            event_id, data = None, None
            async for line in self._lines:
                self.raw.append(line)
                if line.startswith("id: "):
                    event_id = int(line[4:])
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                elif line == "" and data is not None:
                    assert event_id is not None
                    return Sse(event_id, data)
            return None

    async def until(self, matches: Callable[[Sse], bool], timeout_s: float = WAIT_S) -> list[Sse]:
        """Events up to and including the first that matches."""
        seen: list[Sse] = []
        async with asyncio.timeout(timeout_s):
            while True:
                event = await self.next(timeout_s)
                assert event is not None, f"the stream ended before a match; saw {[e.data for e in seen]}"
                seen.append(event)
                if matches(event):
                    return seen

    async def rest(self, timeout_s: float = WAIT_S) -> list[Sse]:
        """Everything until the server ends the stream."""
        seen: list[Sse] = []
        async with asyncio.timeout(timeout_s):
            while (event := await self.next(timeout_s)) is not None:
                seen.append(event)
        return seen


@asynccontextmanager
async def stream(api: Api, path: str, token: str | None, **headers: str) -> AsyncIterator[Stream]:
    async with api.client.stream("GET", path, headers={**api.auth(token), **headers}) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Stream(response)
