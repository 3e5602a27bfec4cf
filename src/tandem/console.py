"""The console demo: reference journeys played in process, printed as a conversation and a case file."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tandem.case import events as ev
from tandem.case.askonce import repeats
from tandem.case.envelope import Actor
from tandem.clock import BusinessDateClock
from tandem.conductor import Conductor, Input
from tandem.participants.bot import SelfServiceBot
from tandem.server import open_demo_lakehouse
from tandem.store.sqlite import SqliteStore
from tandem.understanding.rules import RuleUnderstander
from tandem.world.world import World

JOURNEYS: dict[str, tuple[str, list[str]]] = {
    "Maria Lopez — card declined in Lisbon": (
        "bank",
        [
            "Hi, my card was just declined at a restaurant in Lisbon",
            "+1 415 555 0134",
            "March 14, 1985",
            "94110",
            "thank you",
        ],
    ),
    "Aisha Patel — why do I owe $450?": (
        "health",
        ["Why do I owe $450 on my bill?", "MBR-55821", "11/23/1978", "yes please"],
    ),
}


async def play(data_dir: Path | None, console: Console) -> int:
    world = World.load()
    directory = data_dir or Path(tempfile.mkdtemp(prefix="tandem-demo-"))
    # The bot answers from live signals, as in the demo: the example lakehouse on the conductor's clock.
    activator = await open_demo_lakehouse(directory, world, console)
    store = SqliteStore(directory / "tandem.db")
    conductor = Conductor(
        store,
        {"bot": SelfServiceBot(world, activator=activator)},
        clock=BusinessDateClock(world.business_date),
        understander=RuleUnderstander({t.id: t.kind for t in world}),
    )
    total_repeats = 0
    try:
        for title, (tenant, lines) in JOURNEYS.items():
            console.rule(f"[bold]{title}")
            state, greeting = await conductor.start(tenant, f"anon-{title[:5]}", "chat")
            for reply in greeting.replies:
                console.print(f"[cyan]assistant[/]  {reply.data['text']}")
            for line in lines:
                console.print(f"[green]customer [/]  {line}")
                result = await conductor.handle(
                    Input(tenant, state.interaction_id, ev.CUSTOMER_SAID, {"text": line}, Actor("customer"))
                )
                for event in result.produced:
                    if event.type == ev.REPLY_SENT:
                        console.print(f"[cyan]assistant[/]  {event.data['text']}")
                    elif event.type == ev.HANDOFF_REQUESTED:
                        console.print(f"[magenta]  ↳ handoff to {event.data['target']['id']}: {event.data['reason']}")
            case = await conductor.load(state.interaction_id)
            table = Table("fact", "value", "source", "status", "verified", title="case file")
            for key, fact in case.facts_for_api(conductor.clock.now()).items():
                table.add_row(key, str(fact["value"])[:60], fact["source"], fact["status"], str(fact["verified"]))
            console.print(table)
            found = repeats(await store.read(state.interaction_id))
            total_repeats += len(found)
            console.print(f"questions asked twice: {len(found)} · interaction {state.interaction_id}")
        console.print(f"\nevents are in {directory / 'tandem.db'}; try `tandem events ID --data-dir {directory}`")
    finally:
        await activator.close()
        await store.close()
    return total_repeats
