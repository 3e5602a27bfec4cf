"""A worker process the fault tests start, kill and race. Run with ``python child.py MODE JSON_ARGS``.

It reports on stdout, one JSON object a line, flushed, and only after the store call it reports on has
returned: a reported ``ack`` is an acknowledged input. It imports only the installed package, never the
test suite, so it starts like a real worker.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from tandem import commands as cmd
from tandem.case import events as ev
from tandem.case.envelope import Actor
from tandem.case.interaction import Interaction
from tandem.conductor import Conductor, Input
from tandem.participants.protocol import Turn
from tandem.store.protocol import EventStore
from tandem.store.sqlite import SqliteStore


def report(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


class Bot:
    """Greets a new leg and echoes every customer line; with ``hang`` set, never finishes a customer turn."""

    kind = "bot"

    def __init__(self, hang: bool = False) -> None:
        self.hang = hang

    async def decide(self, case: Interaction, turn: Turn) -> Sequence[cmd.Command]:
        if turn.input.type == ev.LEG_OPENED:
            return [cmd.Say("hello", epoch=case.floor.epoch)]
        if turn.input.type != ev.CUSTOMER_SAID:
            return []
        if self.hang:
            report(event="deciding", seq=turn.input.seq)
            await asyncio.Event().wait()  # stuck in the middle of the turn until killed
        return [cmd.Say(f"you said: {turn.input.data.get('text')}", epoch=case.floor.epoch)]


def said(tenant_id: str, interaction_id: str, text: str) -> Input:
    return Input(tenant_id, interaction_id, ev.CUSTOMER_SAID, {"text": text}, Actor("customer"))


async def hang_in_a_turn(args: dict[str, Any]) -> None:
    """Start an interaction, acknowledge one line, then hang while deciding the answer."""
    store = SqliteStore(args["db"])
    # A short lease, so the test's recovery does not wait long for the dead worker's lease to lapse.
    conductor = Conductor(store, {"bot": Bot(hang=True)}, lease_ttl_s=1.0)
    state, _ = await conductor.start("bank", "C-1", "chat")
    accepted = await conductor.accept(said("bank", state.interaction_id, "I lost my card"))
    report(event="ack", interaction_id=state.interaction_id, seq=accepted.seq, event_id=accepted.event_id)
    await conductor.process(state.interaction_id)


async def burst(args: dict[str, Any]) -> None:
    """Acknowledge lines as fast as possible, alternating between two interactions, until killed."""
    store = SqliteStore(args["db"])
    conductor = Conductor(store, {"bot": Bot()})
    ids = [(await conductor.start("bank", f"C-{n}", "chat"))[0].interaction_id for n in range(2)]
    n = 0
    while True:
        interaction_id = ids[n % 2]
        accepted = await conductor.accept(said("bank", interaction_id, f"line {n}"))
        report(event="ack", interaction_id=interaction_id, seq=accepted.seq, event_id=accepted.event_id, n=n)
        n += 1


async def write_and_turn(args: dict[str, Any]) -> None:
    """One of several workers on PostgreSQL: accept lines into a shared and a private interaction, process
    turns, and before leaving make sure no input it acknowledged is left unhandled."""
    from tandem.store.postgres import PostgresStore

    store: EventStore = await PostgresStore.connect(args["dsn"], schema=args["schema"])
    name = args["name"]
    conductor = Conductor(store, {"bot": Bot()}, owner=name)
    shared = args["shared"]
    private, _ = await conductor.start("bank", f"C-{name}", "chat")
    report(event="started", interaction_id=private.interaction_id)
    for n in range(args["count"]):
        for interaction_id in (shared, private.interaction_id):
            accepted = await conductor.accept(said("bank", interaction_id, f"{name} {n}"))
            report(event="ack", interaction_id=interaction_id, seq=accepted.seq, event_id=accepted.event_id, n=n)
            await conductor.process(interaction_id)
    # The other worker may hold the shared mailbox when we ask; it hands over when it is done.
    deadline = time.monotonic() + 60
    for interaction_id in (shared, private.interaction_id):
        while (await conductor.load(interaction_id)).has_unhandled_input:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{interaction_id} still has unhandled input")
            if await conductor.process(interaction_id) is None:
                await asyncio.sleep(0.02)
    report(event="done")
    await store.close()


MODES = {"hang_in_a_turn": hang_in_a_turn, "burst": burst, "write_and_turn": write_and_turn}

if __name__ == "__main__":
    asyncio.run(MODES[sys.argv[1]](json.loads(sys.argv[2])))
