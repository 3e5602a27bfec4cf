"""A real Tandem API with its MCP server on 127.0.0.1 (a random port), served by uvicorn in the test's own
event loop; the official SDK's client talks to it over streamable HTTP. Policy is the shipped example
policies through the real ``PolicyGate``; time is a ManualClock on the business date."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tandem.activation.activator import Activator
from tandem.clock import ManualClock
from tandem.participants.bot import SelfServiceBot
from tandem.runtime import Runtime, build_runtime
from tandem.world.world import World
from tests.api.conftest import serving
from tests.planner.support import example_gate

ADMIN_TOKEN = "admin-test-token"
WAIT_S = 10.0
MARIA_LINES = ("My card was declined in Lisbon", "415 555 0134", "March 14, 1985", "94110")


@dataclass
class Tandem:
    runtime: Runtime
    url: str
    http: httpx.AsyncClient

    async def call(self, method: str, path: str, token: str | None, tenant: str = "bank", **kw: Any) -> httpx.Response:
        headers = {"X-Tandem-Tenant": tenant}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return await self.http.request(method, path, headers=headers, **kw)

    async def service(self, tenant: str = "bank", data_scope: str = "ai") -> tuple[str, str]:
        """A service token for ``tenant``: (id, token)."""
        r = await self.call("POST", "/v1/services", ADMIN_TOKEN, tenant, json={"data_scope": data_scope})
        assert r.status_code == 201, r.text
        return r.json()["id"], r.json()["token"]

    async def chat(self, tenant: str, lines: tuple[str, ...] = ()) -> tuple[str, str]:
        """A customer's web chat, saying ``lines`` one after another: (interaction id, customer token)."""
        r = await self.call("POST", "/v1/interactions", None, tenant, json={"channel": "chat"})
        assert r.status_code == 201, r.text
        iid, token = r.json()["id"], r.json()["customer_token"]
        for line in lines:
            said = await self.call("POST", f"/v1/interactions/{iid}/messages", token, tenant, json={"text": line})
            assert said.status_code == 200, said.text
        return iid, token

    @asynccontextmanager
    async def mcp(self, token: str) -> AsyncIterator[Client]:
        """The official SDK's client on /mcp with ``token``."""
        async with (
            create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http,
            Client(streamable_http_client(f"{self.url}/mcp", http_client=http), read_timeout_seconds=WAIT_S) as client,
        ):
            yield client


@pytest.fixture(autouse=True)
def no_real_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's TANDEM_LLM must not give these runtimes a real model."""
    monkeypatch.delenv("TANDEM_LLM", raising=False)


@pytest.fixture
async def tandem(tmp_path: Path, clock: ManualClock, example_activator: Activator) -> AsyncIterator[Tandem]:
    world = World.load()
    bot = SelfServiceBot(world, activator=example_activator)
    runtime = await build_runtime(tmp_path, world, clock=clock, participants={"bot": bot}, admin_token=ADMIN_TOKEN)
    runtime.conductor.gate = example_gate(world)
    try:
        async with serving(runtime) as url, httpx.AsyncClient(base_url=url, timeout=WAIT_S) as http:
            yield Tandem(runtime, url, http)
    finally:
        await runtime.aclose()
