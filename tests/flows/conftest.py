"""A conductor with the self-service bot on its flows, reading the example lakehouse through the activator."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import pytest

from tandem.activation.activator import Activator
from tandem.case import events as ev
from tandem.case.envelope import Actor
from tandem.case.interaction import Interaction
from tandem.clock import ManualClock
from tandem.conductor import Conductor, Input
from tandem.participants.bot import SelfServiceBot
from tandem.participants.protocol import Understanding
from tandem.store.sqlite import SqliteStore
from tandem.understanding.rules import RuleUnderstander
from tandem.understanding.sentiment import assess
from tandem.world.world import World
from tests.planner.support import example_gate


class CuedUnderstander:
    """The rule understander with the sentiment cues of ``tandem.understanding.sentiment`` (repeated failure,
    asking for a person), as the classifier understander gives them, without training a model."""

    def __init__(self, world: World) -> None:
        self.rules = RuleUnderstander({t.id: t.kind for t in world})

    def understand(self, text: str, case: Interaction, now: datetime) -> Understanding:
        base = self.rules.understand(text, case, now)
        assessment = assess(text, case)
        return Understanding(base.intents, base.entities, assessment.as_tuple(), base.text, assessment.cues)


@dataclass
class Chat:
    conductor: Conductor
    tenant: str
    interaction_id: str

    async def say(self, text: str) -> list[str]:
        result = await self.conductor.handle(
            Input(self.tenant, self.interaction_id, ev.CUSTOMER_SAID, {"text": text}, Actor("customer"))
        )
        return [e.data["text"] for e in result.replies]

    async def lines(self, *texts: str) -> list[str]:
        replies: list[str] = []
        for text in texts:
            replies.extend(await self.say(text))
        return replies

    async def case(self) -> Interaction:
        return await self.conductor.load(self.interaction_id)


@pytest.fixture
def world() -> World:
    return World.load()


@pytest.fixture
def bot(world: World, example_activator: Activator) -> SelfServiceBot:
    return SelfServiceBot(world, activator=example_activator)


@pytest.fixture
def conductor(sqlite_store: SqliteStore, clock: ManualClock, world: World, bot: SelfServiceBot) -> Conductor:
    return Conductor(sqlite_store, {"bot": bot}, clock=clock, understander=CuedUnderstander(world))


@pytest.fixture
def chat(conductor: Conductor) -> Callable[[str], Awaitable[Chat]]:
    async def start(tenant: str) -> Chat:
        state, _ = await conductor.start(tenant, f"anon-{tenant}", "chat")
        return Chat(conductor, tenant, state.interaction_id)

    return start


async def bank_chat_with_gate(store: SqliteStore, clock: ManualClock, world: World, activator: Activator) -> Chat:
    """A bank chat whose bot proposes actions through the example policy gate, as a deployment's does."""
    gate = example_gate(world)
    bot = SelfServiceBot(world, activator=activator, gate=gate)
    conductor = Conductor(store, {"bot": bot}, clock=clock, understander=CuedUnderstander(world), gate=gate)
    state, _ = await conductor.start("bank", "anon-bank", "chat")
    return Chat(conductor, "bank", state.interaction_id)
