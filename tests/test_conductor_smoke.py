from __future__ import annotations

from tandem.case import events as ev
from tandem.case.envelope import Actor
from tandem.clock import ManualClock
from tandem.conductor import Conductor, Input
from tandem.store.sqlite import SqliteStore
from tests.conftest import EchoBot


async def test_a_customer_line_is_acknowledged_answered_and_folded(
    sqlite_store: SqliteStore, clock: ManualClock
) -> None:
    conductor = Conductor(sqlite_store, {"bot": EchoBot()}, clock=clock)
    state, greeting = await conductor.start("bank", "C-1001", "chat")
    assert [e.data["text"] for e in greeting.replies] == ["hello"]
    turn = await conductor.handle(
        Input("bank", state.interaction_id, ev.CUSTOMER_SAID, {"text": "hi"}, Actor("customer", "C-1001"))
    )
    assert [e.data["text"] for e in turn.replies] == ["you said: hi"]
    fresh = Conductor(sqlite_store, {"bot": EchoBot()}, clock=clock)
    again = await fresh.load(state.interaction_id)
    assert [line.text for line in again.transcript] == ["hello", "hi", "you said: hi"]
    assert not again.has_unhandled_input
