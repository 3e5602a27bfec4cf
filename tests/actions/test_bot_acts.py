"""The self-service bot acting within policy, through the running system: the example systems as MCP
processes, the worker, and the reactor that gives the floor holder a turn when an action's outcome lands."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tandem.case import events as ev
from tandem.case.envelope import Actor
from tandem.case.interaction import Interaction
from tandem.conductor import Input
from tandem.runtime import Runtime, build_runtime
from tandem.world.world import World

pytestmark = pytest.mark.slow


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    running = await build_runtime(tmp_path, World.load(), admin_token="adm", with_actions=True)
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
