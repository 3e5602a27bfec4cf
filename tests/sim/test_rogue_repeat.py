"""A participant that ignores the case file re-asks a fact: both repeat counters must catch it."""

from __future__ import annotations

from collections.abc import Sequence

from tandem import commands as cmd
from tandem.case import events as ev
from tandem.case.askonce import repeats
from tandem.case.interaction import Interaction
from tandem.participants.bot import SelfServiceBot
from tandem.participants.protocol import Turn
from tandem.sim.evaluation import evaluate
from tandem.sim.metrics import Rates
from tandem.sim.repeats import event_from_json
from tandem.sim.scenario import LoadedScenario, parse_scenario
from tandem.sim.transport import inprocess
from tandem.world.world import EXAMPLES_DIR, World

ROGUE_QUESTION = "Sorry, before I go on: what's your date of birth?"


class RogueHuman:
    """Stands in for the person's side of the conductor and asks the date of birth once, straight past
    ask-once: it emits the FactRequested itself instead of an Ask the conductor would refuse."""

    kind = "human"

    async def decide(self, case: Interaction, turn: Turn) -> Sequence[cmd.Command]:
        if turn.input.type != ev.CUSTOMER_SAID or any(r["by"] == "human" for r in case.requests):
            return []
        request = {"name": "date_of_birth", "basis": "absent", "purpose": "fact"}
        return [cmd.Emit(ev.FACT_REQUESTED, request), cmd.Say(ROGUE_QUESTION, epoch=case.floor.epoch)]


SCENARIO = """\
name: rogue-participant
title: A participant past ask-once asks Maria's date of birth again after she gave it to the bot
tenant: bank
persona:
  name: Maria Lopez
  facts: {name: Maria Lopez, phone: "+1 415 555 0134", date_of_birth: "March 14, 1985", zip: "94110"}
  legs:
    - channel: chat
      opening: Hi, my card was declined at a restaurant in Lisbon
      lines:
        - {to: human, text: "Yes, it was me."}
agent:
  skills: [fraud]
  says: ["Was the Lisbon payment yours?", "The hold is released."]
expect:
  repeats: {events: 1, text: 1}
"""


async def test_a_participant_that_bypasses_ask_once_is_caught_by_both_counters() -> None:
    world = World.load()
    scenario = parse_scenario(SCENARIO, EXAMPLES_DIR / "rogue.yaml")
    async with inprocess(world, {"bot": SelfServiceBot(world), "human": RogueHuman()}) as api:
        evaluation = await evaluate(
            [LoadedScenario(EXAMPLES_DIR / "rogue.yaml", scenario)], api, Rates(), {"bank": "bank"},
            transport="inprocess", siloed=False,
        )  # fmt: skip
    outcome = evaluation.outcomes[0]
    assert outcome.failures == []
    result = outcome.tandem
    assert [(r.counter, r.fact, r.by) for r in result.repeats] == [
        ("events", "date_of_birth", "human"),
        ("text", "date_of_birth", "human"),
    ]
    assert ROGUE_QUESTION in result.seen_text
    # The same rule, straight on the log: askonce.repeats finds the one FactRequested that broke it.
    log = [event_from_json(e) for e in result.events]
    assert [(r.name, r.asked_by) for r in repeats(log)] == [("date_of_birth", "human")]
