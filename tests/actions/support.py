"""Helpers for action tests: a deployment with real MCP server processes, cases to act on, bounded waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem import commands as cmd
from tandem.actions.ledger import EffectLedger, Entry
from tandem.actions.runtime import Actions, build_actions, policy_files
from tandem.case import events as ev
from tandem.case.envelope import Actor
from tandem.clock import Clock
from tandem.conductor import Conductor
from tandem.store.protocol import EventStore
from tandem.store.sqlite import SqliteStore
from tandem.world.world import World
from tests.conftest import EchoBot

BOT = Actor("bot", "bot")
AGENT = Actor("human", "ag_1")
SUPERVISOR = Actor("supervisor", "sup_1")

MARIA_HOLD = {"customer_id": "C-1001", "card_last4": "4242", "amount": {"amount_minor": 8640, "currency": "USD"}}
JAMES_DISPUTE = {
    "customer_id": "C-1002",
    "transaction_id": "TXN-77120",
    "amount": {"amount_minor": 125000, "currency": "USD"},
    "reason": "merchandise not received",
}
AISHA_PLAN = {"member_id": "MBR-55821", "amount": {"amount_minor": 45000, "currency": "USD"}, "months": 3}
ROBERT_RESCHEDULE = {"member_id": "MBR-60317", "appointment_id": "APT-3120", "new_date": "2026-12-17"}
SERVER_OF = {"bank": {"release_fraud_hold": "fraud", "open_dispute": "core_banking", "add_note": "crm"},
             "health": {"set_up_payment_plan": "billing", "reschedule_appointment": "billing"}}  # fmt: skip


@dataclass
class Deployment:
    data_dir: Path
    store: EventStore
    conductor: Conductor
    actions: Actions
    store_args: dict[str, str]  # how a child process opens the same store

    def ledger(self, tenant: str, server: str, tool: str | None = None) -> list[Entry]:
        """The effects a server did, read from its data file like anyone counting them would."""
        ledger = EffectLedger(self.data_dir / "mcp" / tenant / f"{server}.db", faults="")
        try:
            return ledger.entries(tool)
        finally:
            ledger.close()


@asynccontextmanager
async def deployment(
    data_dir: Path,
    tenants: Iterable[str],
    *,
    clock: Clock | None = None,
    server_env: Mapping[str, str] | None = None,
    worker: bool = True,
    lease_ttl_s: float = 60.0,
    policies: Mapping[str, Path] | None = None,
    allow_failed: bool = False,
    postgres: tuple[str, str] | None = None,
) -> AsyncIterator[Deployment]:
    """A deployment on SQLite under ``data_dir``, or on PostgreSQL (``postgres``: DSN and schema)."""
    world = World.load()
    store: EventStore
    if postgres is not None:
        from tandem.store.postgres import PostgresStore

        store = await PostgresStore.connect(postgres[0], schema=postgres[1])
        store_args = {"dsn": postgres[0], "schema": postgres[1]}
    else:
        store = SqliteStore(data_dir / "tandem.db")
        store_args = {}
    conductor = Conductor(store, {"bot": EchoBot(), "human": EchoBot()}, clock=clock)
    files = policies or {t: p for t, p in policy_files(world).items() if t in set(tenants)}
    actions = build_actions(world, data_dir, conductor, policies=files, server_env=server_env, lease_ttl_s=lease_ttl_s)
    try:
        failed = await actions.start(worker=worker)
        assert allow_failed or not failed, f"servers did not start: {failed}"
        yield Deployment(data_dir, store, conductor, actions, store_args)
    finally:
        await actions.aclose()
        await store.close()


async def verified_case(
    d: Deployment, tenant: str, customer_id: str, *, facts: Iterable[cmd.Learn] = (), verified: bool = True
) -> str:
    """An interaction with the customer on a chat leg, knowledge-verified, and the facts systems reported."""
    state, _ = await d.conductor.start(tenant, customer_id, "chat", release=d.actions.release(tenant))
    commands: list[cmd.Command] = list(facts)
    if verified:
        commands.insert(0, cmd.RaiseAssurance("knowledge_verified", "knowledge: date of birth"))
    if commands:
        await d.conductor.execute(tenant, state.interaction_id, commands, BOT)
    return state.interaction_id


def maria_facts() -> list[cmd.Learn]:
    return [
        cmd.Learn("fraud_score", 0.82, "system:fraud", subject="card:4242"),
        cmd.Learn("card_hold", {"status": "held", "reason": "foreign-transaction alert"}, "signal:card_holds",
                  subject="card:4242"),
    ]  # fmt: skip


async def propose(d: Deployment, tenant: str, interaction_id: str, tool: str, args: dict[str, Any],
                  by: Actor = BOT) -> str:  # fmt: skip
    events = await d.conductor.execute(tenant, interaction_id, [cmd.ProposeAction(tool, args, "test")], by)
    return str(next(e for e in events if e.type == ev.ACTION_PROPOSED).data["action_id"])


async def settled(
    conductor: Conductor, interaction_id: str, action_id: str, statuses: Iterable[str], within: float = 30.0
) -> dict[str, Any]:
    """Wait until the action reaches one of ``statuses``, woken by the bus; fail after ``within`` seconds."""
    wanted = set(statuses)
    queue = conductor.bus.subscribe()
    try:
        async with asyncio.timeout(within):
            while True:
                action = (await conductor.load(interaction_id)).actions.get(action_id, {})
                if action.get("status") in wanted:
                    return dict(action)
                await queue.get()
    except TimeoutError:
        action = (await conductor.load(interaction_id)).actions.get(action_id, {})
        raise AssertionError(f"action {action_id} did not reach {wanted} within {within}s: {action}") from None
    finally:
        conductor.bus.unsubscribe(queue)


async def hand_to_agent(d: Deployment, tenant: str, interaction_id: str, agent: Actor = AGENT) -> None:
    await d.conductor.execute(tenant, interaction_id, [cmd.MoveFloor("human", agent.id, "agent accepted")], BOT)


async def events_of(d: Deployment, interaction_id: str, type_: str) -> list[dict[str, Any]]:
    return [dict(e.data) for e in await d.store.read(interaction_id) if e.type == type_]
