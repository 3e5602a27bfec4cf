from __future__ import annotations

from pathlib import Path

import pytest

from tandem import commands as cmd
from tandem.activation.activator import Activator
from tandem.case import events as ev
from tandem.case.askonce import repeats
from tandem.case.envelope import Actor
from tandem.case.legs import Assurance
from tandem.clock import ManualClock
from tandem.conductor import Conductor, Input
from tandem.participants.bot import SelfServiceBot
from tandem.store.sqlite import SqliteStore
from tandem.understanding.rules import RuleUnderstander
from tandem.world.world import World


@pytest.fixture
def conductor(sqlite_store: SqliteStore, clock: ManualClock, example_activator: Activator) -> Conductor:
    world = World.load()
    return Conductor(
        sqlite_store,
        {"bot": SelfServiceBot(world, activator=example_activator)},
        clock=clock,
        understander=RuleUnderstander({t.id: t.kind for t in world}),
    )


async def say(conductor: Conductor, tenant: str, interaction_id: str, text: str) -> list[str]:
    result = await conductor.handle(Input(tenant, interaction_id, ev.CUSTOMER_SAID, {"text": text}, Actor("customer")))
    return [e.data["text"] for e in result.replies]


async def test_maria_is_identified_verified_told_why_her_card_was_declined_and_queued_for_fraud(
    conductor: Conductor, sqlite_store: SqliteStore
) -> None:
    state, _ = await conductor.start("bank", "anon-1", "chat")
    iid = state.interaction_id
    await say(conductor, "bank", iid, "My card was declined in Lisbon")
    await say(conductor, "bank", iid, "415 555 0134")
    await say(conductor, "bank", iid, "March 14, 1985")
    replies = await say(conductor, "bank", iid, "94110")
    text = " ".join(replies)
    assert "Tasca do Chico, Lisbon" in text and "$86.40" in text and "no travel notice" in text
    case = await conductor.load(iid)
    assert case.customer_id == "C-1001"
    assert case.assurance() == Assurance.KNOWLEDGE_VERIFIED
    assert case.handoff is not None and case.handoff.target == {"kind": "queue", "id": "fraud"}
    facts = case.facts_for_api(conductor.clock.now())
    assert facts["fraud_score[card:4242]"]["value"] == 0.82
    assert facts["fraud_score[card:4242]"]["source"] == "signal:fraud_score"
    assert repeats(await sqlite_store.read(iid)) == []


async def test_a_wrong_date_of_birth_does_not_verify_and_the_bot_says_so(conductor: Conductor) -> None:
    state, _ = await conductor.start("health", "anon-2", "chat")
    iid = state.interaction_id
    await say(conductor, "health", iid, "what's the status of my claim")
    await say(conductor, "health", iid, "MBR-55821")
    replies = await say(conductor, "health", iid, "01/01/1980")
    assert any("doesn't match" in r for r in replies)
    assert (await conductor.load(iid)).assurance() < Assurance.KNOWLEDGE_VERIFIED


async def test_after_hand_back_the_bot_resumes_without_asking_anything_again(
    conductor: Conductor, sqlite_store: SqliteStore
) -> None:
    state, _ = await conductor.start("health", "anon-3", "chat")
    iid = state.interaction_id
    for line in ["Why do I owe money on my bill?", "MBR-55821", "1978-11-23", "yes"]:
        await say(conductor, "health", iid, line)
    case = await conductor.load(iid)
    assert case.handoff is not None
    agent = Actor("human", "ag_1")
    await conductor.execute(
        "health", iid,
        [cmd.Emit(ev.HANDOFF_QUEUED, {"handoff_id": case.handoff.handoff_id, "queue": "billing"}),
         cmd.Emit(ev.HANDOFF_OFFERED, {"handoff_id": case.handoff.handoff_id, "offer_id": "off_1",
                                       "agent_id": "ag_1", "expires_at": "2026-12-03T10:00:00+00:00"}),
         cmd.Emit(ev.HANDOFF_ACCEPTED,
                  {"handoff_id": case.handoff.handoff_id, "offer_id": "off_1", "agent_id": "ag_1"}),
         cmd.MoveFloor("human", "ag_1", reason="offer accepted"),
         cmd.Emit(ev.HANDOFF_CONNECTED, {"handoff_id": case.handoff.handoff_id})],
        Actor("system", "routing"),
    )  # fmt: skip
    case = await conductor.load(iid)
    await conductor.accept(
        Input("health", iid, ev.AGENT_SAID, {"text": "Plan set up."}, agent, floor_epoch=case.floor.epoch)
    )
    await conductor.execute(
        "health", iid,
        [cmd.MoveFloor("bot", reason="hand-back"),
         cmd.Emit(ev.HANDED_BACK, {"to": "bot", "flow": "payment_plan", "step": "anything_else"})],
        agent, floor_epoch=case.floor.epoch,
    )  # fmt: skip
    result = await conductor.process(iid)
    assert result is not None
    assert any("anything else" in e.data["text"] for e in result.replies)
    assert not [e for e in result.produced if e.type == ev.FACT_REQUESTED]
    assert repeats(await sqlite_store.read(iid)) == []


async def test_an_agent_line_with_a_stale_epoch_is_refused_after_the_floor_moved(conductor: Conductor) -> None:
    state, _ = await conductor.start("bank", "C-1002", "chat")
    from tandem.conductor import FloorNotHeld

    with pytest.raises(FloorNotHeld):
        await conductor.accept(
            Input("bank", state.interaction_id, ev.AGENT_SAID, {"text": "hi"}, Actor("human", "ag_1"), floor_epoch=0)
        )


async def test_a_returning_customer_on_a_new_leg_is_greeted_with_their_case_and_must_verify_again(
    conductor: Conductor,
) -> None:
    state, _ = await conductor.start("bank", "anon-4", "chat")
    iid = state.interaction_id
    for line in ["what's my balance", "4155550134", "1985-03-14", "94110"]:
        await say(conductor, "bank", iid, line)
    assert (await conductor.load(iid)).assurance() == Assurance.KNOWLEDGE_VERIFIED
    result = await conductor.open_leg("bank", iid, "voice", Assurance.IDENTIFIED, Actor("channel", "ivr"))
    assert any("Welcome back" in e.data["text"] and "balance" in e.data["text"] for e in result.replies)
    case = await conductor.load(iid)
    assert case.assurance() == Assurance.IDENTIFIED
    replies = await say(conductor, "bank", iid, "what's my balance again?")
    assert any("date of birth" in r for r in replies)


async def test_a_full_card_number_never_reaches_storage(conductor: Conductor, tmp_path: Path) -> None:
    state, _ = await conductor.start("bank", "anon-5", "chat")
    await say(conductor, "bank", state.interaction_id, "my card 4111 1111 1111 1111 was declined")
    raw = (tmp_path / "tandem.db").read_bytes() + (tmp_path / "tandem.db-wal").read_bytes()
    assert b"4111 1111 1111 1111" not in raw and b"4111111111111111" not in raw
    case = await conductor.load(state.interaction_id)
    assert "[card ending 1111]" in case.transcript[1].text
