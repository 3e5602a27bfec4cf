"""Helpers for the AI participant's tests: the shipped policies and data scopes, and a desk where the AI holds
the floor of a real conductor (SQLite store, ManualClock) with a scripted model."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem import commands as cmd
from tandem.case import events as ev
from tandem.case.envelope import Actor, Event
from tandem.clock import ManualClock
from tandem.conductor import Conductor, Input, TurnResult
from tandem.llm.protocol import LLM
from tandem.participants.ai import AIParticipant
from tandem.participants.bot import SelfServiceBot
from tandem.participants.planner import Knowledge, Limits
from tandem.release.policy import PolicyBook, load_policy
from tandem.release.policy_gate import PolicyGate
from tandem.release.scopes import DataScopes
from tandem.release.signals import load_releases
from tandem.store.sqlite import SqliteStore
from tandem.world.world import EXAMPLES_DIR, World

SETUP = Actor("system", "test")
MARIA_HOLD = {"customer_id": "C-1001", "card_last4": "4242", "amount": {"amount_minor": 8640, "currency": "USD"}}


def example_gate(world: World) -> PolicyGate:
    """The shipped policies of both tenants, deciding with the customers' records as the system of record."""
    book = PolicyBook()
    for folder in ("bank", "healthcare"):
        book.add(load_policy(EXAMPLES_DIR / folder / "policy.yaml"))

    def records(tenant_id: str, customer_id: str) -> Mapping[str, Any] | None:
        tenant = world.tenants.get(tenant_id)
        record = tenant.directory.get(customer_id) if tenant else None
        return None if record is None else {"id": record.id, **record.details}

    return PolicyGate(book, records=records)


def example_scopes() -> dict[str, DataScopes]:
    return {tenant_id: release.scopes for tenant_id, release in load_releases().items()}


def maria_facts() -> list[cmd.Command]:
    return [
        cmd.Learn("date_of_birth", "1985-03-14", "customer", verified=True),
        cmd.Learn("fraud_score", 0.82, "system:fraud", subject="card:4242"),
        cmd.Learn("card_hold", {"status": "held", "reason": "foreign-transaction alert"}, "signal:card_holds",
                  subject="card:4242"),
    ]  # fmt: skip


@dataclass
class Desk:
    """A conductor whose AI participant talks to ``llm``; the bot is there for cases that start with it."""

    world: World
    store: SqliteStore
    conductor: Conductor
    ai: AIParticipant
    clock: ManualClock

    async def start(
        self,
        tenant: str,
        customer_id: str,
        *,
        verified: bool = True,
        facts: Iterable[cmd.Command] = (),
        floor: str = "ai",
    ) -> str:
        record = self.world.tenant(tenant).directory.get(customer_id)
        customer = record.public() if record is not None else {}
        state, _ = await self.conductor.start(tenant, customer_id, "chat", customer=customer, floor=floor)
        setup: list[cmd.Command] = list(facts)
        if verified:
            setup.insert(0, cmd.RaiseAssurance("knowledge_verified", "knowledge: date of birth"))
        if setup:
            await self.conductor.execute(tenant, state.interaction_id, setup, SETUP)
        return state.interaction_id

    async def say(self, tenant: str, interaction_id: str, text: str) -> TurnResult:
        return await self.conductor.handle(
            Input(tenant, interaction_id, ev.CUSTOMER_SAID, {"text": text}, Actor("customer"))
        )

    async def events(self, interaction_id: str, type_: str | None = None) -> list[Event]:
        return [e for e in await self.store.read(interaction_id) if type_ is None or e.type == type_]


def replies(result: TurnResult) -> list[str]:
    return [str(e.data["text"]) for e in result.replies]


def make_desk(
    tmp_path: Path,
    llm: LLM,
    *,
    gate: bool = True,
    preview: bool = True,
    knowledge: Knowledge | None = None,
    timeout_s: float = 5.0,
    limits: Limits | None = None,
    scopes: Mapping[str, DataScopes] | None = None,
    extra: Sequence[tuple[str, Any]] = (),
) -> Desk:
    world = World.load()
    clock = ManualClock()
    store = SqliteStore(tmp_path / "tandem.db")
    policy = example_gate(world) if gate else None
    ai = AIParticipant(
        llm, world, scopes=example_scopes() if scopes is None else scopes, knowledge=knowledge,
        gate=policy if preview else None, timeout_s=timeout_s, limits=limits,
    )  # fmt: skip
    participants: dict[str, Any] = {"bot": SelfServiceBot(world), "ai": ai, **dict(extra)}
    conductor = Conductor(store, participants, clock=clock, gate=policy)
    return Desk(world, store, conductor, ai, clock)
