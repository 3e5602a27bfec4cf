"""kill -9 of a worker: no acknowledged input is lost, no turn is half-written, recovery handles it once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tandem.case import events as ev
from tandem.conductor import Conductor, TurnResult
from tandem.store.sqlite import SqliteStore
from tests.conftest import EchoBot
from tests.faults.support import Child, eventually

pytestmark = pytest.mark.slow


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


async def test_a_worker_killed_mid_turn_loses_no_acknowledged_input_and_recovery_answers_it_once(
    tmp_path: Path,
) -> None:
    db = tmp_path / "tandem.db"
    child = await Child.start("hang_in_a_turn", {"db": str(db)}, tmp_path)
    try:
        ack = await child.expect("ack")
        await child.expect("deciding")
        await child.kill()
    finally:
        await child.stop()
    interaction_id, seq = ack["interaction_id"], ack["seq"]

    assert integrity(db) == "ok"
    store = SqliteStore(db)
    try:
        events = await store.read(interaction_id)
        # The acknowledged line is there, and nothing of the turn that was deciding about it.
        assert events[-1].seq == seq
        assert (events[-1].event_id, events[-1].type) == (ack["event_id"], ev.CUSTOMER_SAID)
        assert events[-1].data["text"] == "I lost my card"
        assert [e.seq for e in events] == list(range(1, seq + 1))
        assert not [e for e in events if e.type == ev.TURN_COMPLETED and e.data["input_seq"] == seq]
        assert await store.unhandled() == [("bank", interaction_id)]

        recovery = Conductor(store, {"bot": EchoBot()})
        turns: list[TurnResult] = []

        async def handled() -> bool:
            # The dead worker's lease lapses after its (short) TTL; until then the mailbox is refused.
            result = await recovery.process(interaction_id)
            if result is not None:
                turns.append(result)
            return result is not None

        await eventually(handled, "the dead worker's lease lapses and the input is handled", within=15)
        assert turns[0].input.seq == seq
        assert [e.data["text"] for e in turns[0].replies] == ["you said: I lost my card"]
        assert await recovery.process(interaction_id) is None
        assert await store.unhandled() == []

        events = await store.read(interaction_id)
        completed = [e for e in events if e.type == ev.TURN_COMPLETED and e.data["input_seq"] == seq]
        answers = [e for e in events if e.type == ev.REPLY_SENT and e.causation_id == ack["event_id"]]
        assert len(completed) == 1
        assert len(answers) == 1
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
    finally:
        await store.close()


async def test_a_worker_killed_during_a_burst_of_appends_keeps_every_acknowledged_seq(tmp_path: Path) -> None:
    db = tmp_path / "tandem.db"
    child = await Child.start("burst", {"db": str(db)}, tmp_path)
    try:
        await child.expect("ack", count=300)
        await child.kill()  # while it is still appending as fast as it can
    finally:
        await child.stop()
    acks = child.acks()
    assert len(acks) >= 300

    assert integrity(db) == "ok"
    store = SqliteStore(db)
    try:
        by_interaction: dict[str, dict[int, str]] = {}
        for ack in acks:
            by_interaction.setdefault(ack["interaction_id"], {})[ack["seq"]] = ack["event_id"]
        assert len(by_interaction) == 2
        for interaction_id, acknowledged in by_interaction.items():
            events = await store.read(interaction_id)
            assert [e.seq for e in events] == list(range(1, len(events) + 1)), "seq has a gap"
            stored = {e.seq: e.event_id for e in events}
            assert {seq: stored.get(seq) for seq in acknowledged} == acknowledged
        everything = await store.read_all(limit=100_000)
        positions = [e.position for e in everything]
        assert positions == sorted(set(positions))
        lines = [e.data["text"] for e in everything if e.type == ev.CUSTOMER_SAID]
        # Every line the worker managed to commit, in the order it sent them, whether or not it got to report.
        assert lines == [f"line {n}" for n in range(len(lines))]
        assert len(lines) >= len(acks)

        # The store takes writes again where the dead worker stopped.
        interaction_id = acks[-1]["interaction_id"]
        version = (await store.record(interaction_id)).version
        resumed = await Conductor(store, {"bot": EchoBot()}).process(interaction_id)
        assert resumed is not None
        assert (await store.record(interaction_id)).version > version
    finally:
        await store.close()
