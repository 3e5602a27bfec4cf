"""The self-service bot acting within policy, through the running system: the example systems as MCP
processes, the worker, and the reactor that gives the floor holder a turn when an action's outcome lands."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tandem.actions import lifecycle
from tandem.actions.ledger import EffectLedger, Entry
from tandem.case import events as ev
from tandem.case.envelope import Actor
from tandem.case.interaction import Interaction
from tandem.clock import BusinessDateClock
from tandem.conductor import Input
from tandem.runtime import Runtime, build_runtime
from tandem.world.world import World
from tests.actions.support import settled
from tests.api.conftest import serving
from tests.conftest import open_example_activator

pytestmark = pytest.mark.slow


@pytest.fixture
async def runtime(tmp_path: Path, example_lakehouse: Path) -> AsyncIterator[Runtime]:
    world = World.load()
    clock = BusinessDateClock(world.business_date)
    activator = await open_example_activator(example_lakehouse, clock)
    running = await build_runtime(
        tmp_path, world, clock=clock, admin_token="adm", with_actions=True, activator=activator
    )
    assert running.actions is not None
    assert await running.actions.start() == {}
    running.start()
    yield running
    await running.aclose()


async def play(runtime: Runtime, tenant: str, lines: list[str]) -> str:
    state, _ = await runtime.conductor.start(tenant, f"anon-{tenant}", "chat")
    for line in lines:
        await runtime.conductor.handle(
            Input(tenant, state.interaction_id, ev.CUSTOMER_SAID, {"text": line}, Actor("customer"))
        )
    return state.interaction_id


async def until(runtime: Runtime, iid: str, done: str, timeout_s: float = 30.0) -> Interaction:
    async with asyncio.timeout(timeout_s):
        while True:
            case = await runtime.conductor.load(iid)
            if any(done in line.text for line in case.transcript):
                return case
            await asyncio.sleep(0.05)


async def test_the_bot_releases_marias_hold_within_policy_and_tells_her_when_it_is_done(runtime: Runtime) -> None:
    iid = await play(runtime, "bank", ["my card was declined in Lisbon", "415 555 0134", "March 14, 1985", "94110"])
    case = await until(runtime, iid, "the hold on your card is released")
    [action] = case.actions.values()
    assert (action["tool"], action["status"]) == ("release_fraud_hold", "succeeded")
    assert action["decision"]["rule"] == "verified_low_risk_small"
    assert case.handoff is None  # self-served: nobody had to step in
    assert case.facts_for_api(runtime.clock.now())["card_hold[card:4242]"]["value"]["status"] == "released"


async def test_james_dispute_over_the_ai_limit_waits_for_an_agent_and_is_handed_over(runtime: Runtime) -> None:
    iid = await play(
        runtime,
        "bank",
        ["I want to dispute a charge", "+1 212 555 0199", "07/02/1990", "10001", "the ElectroMart one for $1,250"],
    )
    case = await runtime.conductor.load(iid)
    [action] = case.actions.values()
    assert (action["tool"], action["status"]) == ("open_dispute", "awaiting_approval")
    assert case.handoff is not None and case.handoff.target == {"kind": "queue", "id": "disputes"}
    assert "approve" in case.handoff.reason


async def test_james_dispute_executes_exactly_once_after_the_agent_who_took_him_approves_it_over_http(
    runtime: Runtime, tmp_path: Path
) -> None:
    """Issue #7's journey end to end: the bot proposes, policy asks for an agent, the router offers James to
    one, the agent approves what they saw over the API, the worker opens the dispute once in core banking."""
    iid = await play(
        runtime,
        "bank",
        ["I want to dispute a charge", "+1 212 555 0199", "07/02/1990", "10001", "the ElectroMart one for $1,250"],
    )
    [action] = (await runtime.conductor.load(iid)).actions.values()
    assert action["status"] == "awaiting_approval" and action["decision"]["requires"] == "agent"
    async with serving(runtime) as url, httpx.AsyncClient(base_url=url, timeout=10.0) as client:
        admin = {"Authorization": "Bearer adm", "X-Tandem-Tenant": "bank"}
        body = {"name": "Dana", "skills": ["disputes"], "capacity": 1, "role": "agent"}
        made = (await client.post("/v1/agents", headers=admin, json=body)).json()
        agent = {"Authorization": f"Bearer {made['token']}", "X-Tandem-Tenant": "bank"}
        r = await client.put(f"/v1/agents/{made['id']}/presence", headers=agent, json={"status": "available"})
        assert r.status_code == 200, r.text
        offer = await offered(client, made["id"], agent, iid)
        r = await client.post(f"/v1/offers/{offer['id']}/accept", headers=agent)
        assert r.status_code == 200, r.text
        assert ledger_of(tmp_path, "core_banking", "open_dispute") == []  # nothing before the approval

        path = f"/v1/interactions/{iid}/actions/{action['id']}/approve"
        r = await client.post(path, headers=agent, json={"args_digest": action["args_digest"]})
        assert r.status_code == 200, r.text
        again = await client.post(path, headers=agent, json={"args_digest": action["args_digest"]})
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_decided"
        done = await settled(runtime.conductor, iid, action["id"], {"succeeded", "failed"})

    assert done["status"] == "succeeded" and done["approval"]["role"] == "agent"
    [effect] = ledger_of(tmp_path, "core_banking", "open_dispute")
    assert effect.idempotency_key == lifecycle.idempotency_key("bank", action["id"])
    case = await runtime.conductor.load(iid)
    assert case.facts_for_api(runtime.clock.now())["dispute[transaction:TXN-77120]"]["source"] == "action:open_dispute"
    started = [e for e in await runtime.store.read(iid) if e.type == ev.ACTION_STARTED]
    assert len(started) == 1


async def offered(client: httpx.AsyncClient, agent_id: str, headers: dict[str, str], iid: str) -> dict[str, Any]:
    """The offer of ``iid`` the router made to the agent, waited for within a bound."""
    async with asyncio.timeout(15.0):
        while True:
            r = await client.get(f"/v1/agents/{agent_id}/offers", headers=headers)
            assert r.status_code == 200, r.text
            for item in r.json()["items"]:
                if item["interaction_id"] == iid:
                    return dict(item)
            await asyncio.sleep(0.05)


def ledger_of(data_dir: Path, server: str, tool: str) -> list[Entry]:
    ledger = EffectLedger(data_dir / "mcp" / "bank" / f"{server}.db", faults="")
    try:
        return ledger.entries(tool)
    finally:
        ledger.close()
