"""The reference journeys with live signals: the case file shows where each fact came from, and a source
that times out leaves the conversation answering."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tandem.activation import Activator
from tandem.case import events as ev
from tandem.case.envelope import Actor
from tandem.case.interaction import Interaction
from tandem.clock import ManualClock
from tandem.conductor import Conductor, Input
from tandem.participants.bot import SelfServiceBot
from tandem.release.signals import load_releases
from tandem.store.sqlite import SqliteStore
from tandem.understanding.rules import RuleUnderstander
from tandem.world.world import World
from tests.activation.conftest import relaxed
from tests.activation.fakes import ScriptedSource

MARIA = ["my card was declined in Lisbon", "415 555 0134", "March 14, 1985", "94110"]
AISHA = ["why do I owe money on my bill?", "MBR-55821", "11/23/1978"]


async def _play(
    activator: Activator, store: SqliteStore, clock: ManualClock, tenant: str, lines: list[str]
) -> tuple[Interaction, list[str]]:
    world = World.load()
    conductor = Conductor(
        store,
        {"bot": SelfServiceBot(world, activator=activator)},
        clock=clock,
        understander=RuleUnderstander({t.id: t.kind for t in world}),
    )
    state, _ = await conductor.start(tenant, f"anon-{tenant}", "chat")
    replies: list[str] = []
    for line in lines:
        result = await conductor.handle(
            Input(tenant, state.interaction_id, ev.CUSTOMER_SAID, {"text": line}, Actor("customer"))
        )
        replies.extend(e.data["text"] for e in result.replies)
    return await conductor.load(state.interaction_id), replies


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "tandem.db")
    yield opened
    await opened.close()


async def test_marias_decline_fraud_score_hold_and_missing_travel_notice_arrive_as_signals(
    activator: Activator, store: SqliteStore, business_clock: ManualClock
) -> None:
    case, replies = await _play(activator, store, business_clock, "bank", MARIA)
    facts = case.facts_for_api(business_clock.now())
    assert facts["fraud_score[card:4242]"]["value"] == 0.82
    assert facts["fraud_score[card:4242]"]["source"].startswith("signal:")
    assert facts["card_hold[card:4242]"]["source"].startswith("signal:")
    assert facts["declined_payment[transaction:TXN-88301]"]["source"].startswith("signal:")
    assert facts["travel_notice"]["value"] == "none on file"
    assert any("Tasca do Chico" in r for r in replies)


async def test_aishas_bill_shows_the_out_of_network_line_and_payment_plan_eligibility(
    activator: Activator, store: SqliteStore, business_clock: ManualClock
) -> None:
    case, replies = await _play(activator, store, business_clock, "health", AISHA)
    facts = case.facts_for_api(business_clock.now())
    assert facts["statement_balance"]["value"] == {"amount_minor": 45000, "currency": "USD"}
    assert facts["statement_balance"]["source"].startswith("signal:")
    lines = [v for k, v in facts.items() if k.startswith("claim_line[")]
    assert lines and lines[0]["value"]["reason"] == "billed out of network"
    assert facts["payment_plan_eligible"]["value"] is True
    assert any("$450.00" in r for r in replies)


async def test_a_lakehouse_that_times_out_leaves_a_timeout_fact_and_the_conversation_answering(
    lakehouse: Path, store: SqliteStore, business_clock: ManualClock
) -> None:
    releases = {tenant: relaxed(release, budget_ms=50) for tenant, release in load_releases().items()}
    slow = {"bank": {name: ScriptedSource(name, delay_s=30) for name in releases["bank"].sources}}
    activator = await Activator.open(releases, lakehouse, clock=business_clock, sources=slow)
    try:
        case, replies = await _play(activator, store, business_clock, "bank", MARIA)
    finally:
        await activator.close()
    statuses = [
        v["value"] for k, v in case.facts_for_api(business_clock.now()).items() if k.startswith("signal_status[")
    ]
    assert statuses and all(s["status"] == "timeout" for s in statuses)
    assert any("can't reach those records" in r for r in replies)  # says so, politely, and hands over
    assert case.handoff is not None
