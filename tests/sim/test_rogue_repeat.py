"""A participant that ignores the case file re-asks a fact: both repeat counters must catch it."""

from __future__ import annotations

from collections.abc import Sequence

from tandem import commands as cmd
from tandem.case import events as ev
from tandem.case.askonce import repeats
from tandem.case.interaction import Interaction
from tandem.participants.bot import SelfServiceBot
from tandem.participants.protocol import Participant, Turn
from tandem.sim.evaluation import evaluate
from tandem.sim.metrics import Rates
from tandem.sim.repeats import event_from_json
from tandem.sim.scenario import LoadedScenario, parse_scenario
from tandem.sim.transport import open_deployment
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
title: A participant past ask-once asks James's date of birth again after he gave it to the bot
tenant: bank
persona:
  name: James Chen
  facts: {name: James Chen, phone: "(212) 555-0199", date_of_birth: "July 2, 1990", zip: "10001",
          charge: "the ElectroMart charge of $1,250"}
  legs:
    - channel: chat
      opening: I want to dispute a charge on my credit card
      lines:
        - {to: human, text: "Yes, I never received the TV."}
agent:
  skills: [disputes]
  says: ["Is this about the ElectroMart charge?", "The dispute is open."]
expect:
  repeats: {events: 1, text: 1}
"""


async def test_a_participant_that_bypasses_ask_once_is_caught_by_both_counters() -> None:
    world = World.load()
    scenario = parse_scenario(SCENARIO, EXAMPLES_DIR / "rogue.yaml")
    participants: dict[str, Participant] = {"bot": SelfServiceBot(world), "human": RogueHuman()}
    async with open_deployment("inprocess", world, participants=participants) as deployment:
        evaluation = await evaluate(
            [LoadedScenario(EXAMPLES_DIR / "rogue.yaml", scenario)], deployment, Rates(), {"bank": "bank"},
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
