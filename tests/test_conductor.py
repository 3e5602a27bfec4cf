from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from tandem import commands as cmd
from tandem.case import events as ev
from tandem.case.envelope import Actor
from tandem.case.interaction import Interaction
from tandem.clock import ManualClock
from tandem.conductor import Conductor, Input, InteractionClosed
from tandem.participants.protocol import ActionDecision, ActionGate, Turn
from tandem.store.protocol import DuplicateInput
from tandem.store.sqlite import SqliteStore
from tandem.understanding.rules import RuleUnderstander
from tandem.world.world import World
from tests.conftest import EchoBot
from tests.planner.support import MARIA_HOLD, example_gate


def said(iid: str, text: str) -> Input:
    return Input("bank", iid, ev.CUSTOMER_SAID, {"text": text}, Actor("customer"))


async def test_a_customer_line_is_acknowledged_answered_and_folded(
    sqlite_store: SqliteStore, clock: ManualClock
) -> None:
    conductor = Conductor(sqlite_store, {"bot": EchoBot()}, clock=clock)
    state, greeting = await conductor.start("bank", "C-1001", "chat")
    assert [e.data["text"] for e in greeting.replies] == ["hello"]
    turn = await conductor.handle(said(state.interaction_id, "hi"))
    assert [e.data["text"] for e in turn.replies] == ["you said: hi"]
    assert all(e.causation_id == turn.input.event_id for e in turn.produced)
    again = await Conductor(sqlite_store, {"bot": EchoBot()}, clock=clock).load(state.interaction_id)
    assert [line.text for line in again.transcript] == ["hello", "hi", "you said: hi"]
    assert not again.has_unhandled_input


class SlowThinker:
    """Decides a reply, but while it 'thinks' someone else takes the floor."""

    kind = "bot"

    def __init__(self, conductor_ref: list[Conductor]) -> None:
        self.ref = conductor_ref

    async def decide(self, case: Interaction, turn: Turn) -> Sequence[cmd.Command]:
        if turn.input.type != ev.CUSTOMER_SAID:
            return []
        return [cmd.Say("a reply decided before the handoff", epoch=case.floor.epoch - 1)]


async def test_a_reply_decided_under_an_old_floor_epoch_never_reaches_the_customer(
    sqlite_store: SqliteStore, clock: ManualClock
) -> None:
    conductor = Conductor(sqlite_store, {"bot": SlowThinker([])}, clock=clock)
    state, _ = await conductor.start("bank", "C-1001", "chat")
    await conductor.execute("bank", state.interaction_id, [cmd.MoveFloor("bot", reason="re-routed")], Actor("system"))
    turn = await conductor.handle(said(state.interaction_id, "hello?"))
    assert turn.replies == []
    refused = [e for e in turn.produced if e.type == ev.COMMAND_REFUSED]
    assert refused and "stale floor epoch" in refused[0].data["reason"]


async def test_partners_cannot_speak_to_the_customer(sqlite_store: SqliteStore, clock: ManualClock) -> None:
    class Copilot:
        kind = "copilot"

        async def decide(self, case: Interaction, turn: Turn) -> Sequence[cmd.Command]:
            return [cmd.Say("psst"), cmd.Learn("hint", "check travel notice", "copilot")]

    conductor = Conductor(sqlite_store, {"bot": EchoBot()}, partners=[Copilot()], clock=clock)
    state, _ = await conductor.start("bank", "C-1001", "chat")
    turn = await conductor.handle(said(state.interaction_id, "hi"))
    assert [e.data["text"] for e in turn.replies] == ["you said: hi"]
    assert any(e.type == ev.FACT_LEARNED and e.data["name"] == "hint" for e in turn.produced)


async def test_a_durable_timer_fires_once_through_the_conductor(sqlite_store: SqliteStore, clock: ManualClock) -> None:
    conductor = Conductor(sqlite_store, {"bot": EchoBot()}, clock=clock)
    state, _ = await conductor.start("bank", "C-1001", "chat")
    iid = state.interaction_id
    await conductor.execute(
        "bank", iid, [cmd.ScheduleTimer("no_input", clock.now() + timedelta(seconds=30), timer_id="tmr_1")],
        Actor("system"),
    )  # fmt: skip
    assert await sqlite_store.due_timers(clock.now()) == []
    clock.advance(timedelta(seconds=31))
    due = await sqlite_store.due_timers(clock.now())
    assert [t.timer_id for t in due] == ["tmr_1"]
    fire = Input("bank", iid, ev.TIMER_FIRED, {"timer_id": "tmr_1", "kind": "no_input"}, Actor("system", "timers"))
    await conductor.handle(fire)
    with pytest.raises(DuplicateInput):
        await conductor.handle(fire)
    assert (await conductor.load(iid)).timers["tmr_1"]["status"] == "fired"


async def test_a_closed_interaction_refuses_new_lines_and_frees_the_customer(
    sqlite_store: SqliteStore, clock: ManualClock
) -> None:
    conductor = Conductor(sqlite_store, {"bot": EchoBot()}, clock=clock)
    state, _ = await conductor.start("bank", "C-1001", "chat")
    await conductor.execute("bank", state.interaction_id, [cmd.Close("resolved")], Actor("human", "ag_1"))
    with pytest.raises(InteractionClosed):
        await conductor.handle(said(state.interaction_id, "one more thing"))
    assert await sqlite_store.open_interaction_of("bank", "C-1001") is None
    again, _ = await conductor.start("bank", "C-1001", "voice")
    assert again.interaction_id != state.interaction_id


async def test_a_long_interaction_loads_from_its_snapshot(sqlite_store: SqliteStore, clock: ManualClock) -> None:
    conductor = Conductor(sqlite_store, {"bot": EchoBot()}, clock=clock, snapshot_every=50)
    state, _ = await conductor.start("bank", "C-1001", "chat")
    for i in range(40):
        await conductor.handle(said(state.interaction_id, f"line {i}"))
    snap = await sqlite_store.load_snapshot(state.interaction_id)
    assert snap is not None and snap[0] >= 100
    fresh = Conductor(sqlite_store, {"bot": EchoBot()}, clock=clock)
    loaded = await fresh.load(state.interaction_id)
    assert loaded.version == (await conductor.load(state.interaction_id)).version
    assert loaded.transcript[-1].text == "you said: line 39"


async def test_a_hand_back_before_anyone_connected_folds_as_an_abandoned_handoff(
    sqlite_store: SqliteStore, clock: ManualClock
) -> None:
    conductor = Conductor(sqlite_store, {"bot": EchoBot()}, clock=clock)
    state, _ = await conductor.start("bank", "C-1001", "chat")
    iid = state.interaction_id
    await conductor.execute(
        "bank", iid, [cmd.RequestHandoff({"kind": "queue", "id": "cards"}, "lost card")], Actor("bot")
    )
    await conductor.execute("bank", iid, [cmd.Emit(ev.HANDED_BACK, {"to": "bot"})], Actor("supervisor", "sup_1"))
    case = await Conductor(sqlite_store, {"bot": EchoBot()}, clock=clock).load(iid)
    assert case.handoff is None
    assert case.handoffs[-1]["status"] == "abandoned"


class PreviewingBot:
    """Asks the policy with the turn's preview before proposing, as the self-service bot does, and keeps what
    the preview said."""

    kind = "bot"

    def __init__(self, gate: ActionGate) -> None:
        self.gate = gate
        self.previews: list[ActionDecision] = []

    async def decide(self, case: Interaction, turn: Turn) -> Sequence[cmd.Command]:
        if turn.input.type != ev.CUSTOMER_SAID or turn.preview is None:
            return []
        before: list[cmd.Command] = [cmd.Say("Let me release the hold on your card.", epoch=case.floor.epoch)]
        seen = turn.preview(before)
        self.previews.append(self.gate.decide(seen, "release_fraud_hold", dict(MARIA_HOLD), self.kind, turn.now))
        return [*before, cmd.ProposeAction("release_fraud_hold", MARIA_HOLD, "the customer confirmed the payment")]


@pytest.mark.parametrize(
    ("line", "outcome", "rule"),
    [
        ("This is ridiculous, release my card now!", "require_approval", "upset_customer"),
        ("yes, that Lisbon payment was me", "allow", "verified_low_risk_small"),
    ],
)
async def test_the_preview_includes_the_turns_own_sentiment_so_it_decides_as_the_recorded_proposal(
    sqlite_store: SqliteStore, clock: ManualClock, line: str, outcome: str, rule: str
) -> None:
    gate = example_gate(World.load())
    bot = PreviewingBot(gate)
    conductor = Conductor(
        sqlite_store, {"bot": bot}, clock=clock, gate=gate, understander=RuleUnderstander({"bank": "bank"})
    )
    state, _ = await conductor.start("bank", "C-1001", "chat")
    setup = [cmd.RaiseAssurance("knowledge_verified", "knowledge: date of birth"),
             cmd.Learn("fraud_score", 0.82, "system:fraud", subject="card:4242")]  # fmt: skip
    await conductor.execute("bank", state.interaction_id, setup, Actor("system", "test"))

    turn = await conductor.handle(said(state.interaction_id, line))

    [recorded] = [e.data for e in turn.produced if e.type == ev.ACTION_DECIDED]
    [previewed] = bot.previews
    assert (previewed.outcome, previewed.rule) == (recorded["outcome"], recorded["rule"]) == (outcome, rule)
