"""Anonymous web chat is a tenant's choice."""

from __future__ import annotations

import dataclasses

import pytest

from tandem.world.world import World
from tests.api.conftest import Api


@pytest.fixture
def world() -> World:
    loaded = World.load()
    bank = dataclasses.replace(loaded.tenant("bank"), settings={"anonymous_chat": False})
    return World([bank, loaded.tenant("health")])


async def test_a_tenant_can_turn_anonymous_chat_off(api: Api) -> None:
    r = await api.call("POST", "/v1/interactions", None, {"channel": "chat"})
    assert r.status_code == 401
    r = await api.client.post("/v1/interactions", params={"tenant": "health"}, json={"channel": "chat"})
    assert r.status_code == 201
    assert (await api.runtime.conductor.load(r.json()["id"])).tenant_id == "health"
