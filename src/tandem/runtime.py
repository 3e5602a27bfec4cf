"""The running system: one store, one conductor, the bus, the world, the clock, routing, timers and the
registry of tokens and agents, assembled once and shared by the HTTP API and the CLI.

The same conductor serves every tenant (the tenant comes from each caller's token). Reactors run as tasks
of the event loop that serves the API: the router (woken by the bus, with a poll as a safety net), the
timer reactor (a poll of due timers), the summaries (a case summary for each handoff request and each close,
written after the turn that caused it, never inside it) and, once at start, recovery of inputs a crash left
unprocessed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tandem import commands as cmd
from tandem.actions.runtime import Actions, build_actions
from tandem.activation.activator import Activator
from tandem.api.idempotency import IdempotencyStore
from tandem.api.metrics import Metrics
from tandem.api.tokens import Principal, TokenRegistry
from tandem.bus import Bus
from tandem.case import events as ev
from tandem.case.envelope import SYSTEM
from tandem.clock import BusinessDateClock, Clock
from tandem.conductor import Conductor, Input, InteractionClosed
from tandem.llm.protocol import LLM
from tandem.participants.ai import AIParticipant, ai_from_env, llm_from_env
from tandem.participants.bot import SelfServiceBot
from tandem.participants.flow_planner import self_service_from_env
from tandem.participants.phrasing import phrasing_from_env
from tandem.participants.protocol import Participant, Understander
from tandem.participants.summarizer import Summarizer, SummaryReactor, summarizer_from_env
from tandem.routing.presence import AgentDirectory
from tandem.routing.router import Router
from tandem.store.protocol import DuplicateInput, EventStore, InteractionNotFound
from tandem.store.sqlite import SqliteStore
from tandem.understanding.rules import RuleUnderstander
from tandem.world.world import World

log = logging.getLogger(__name__)

ADMIN = Principal("admin", "admin", None)


class TimerReactor:
    """Fires due timers through the conductor, like any input: deduplicated by the store, fenced by the
    mailbox. A timer of an interaction that closed meanwhile is cancelled instead."""

    def __init__(self, conductor: Conductor, batch: int = 100) -> None:
        self.conductor = conductor
        self.batch = batch

    async def fire_due(self) -> int:
        fired = 0
        store = self.conductor.store
        for timer in await store.due_timers(self.conductor.clock.now(), self.batch):
            data = {"timer_id": timer.timer_id, "kind": timer.kind}
            try:
                await self.conductor.handle(Input(timer.tenant_id, timer.interaction_id, ev.TIMER_FIRED, data, SYSTEM))
                fired += 1
            except DuplicateInput:
                continue  # fired by someone else, or cancelled, since we read it
            except InteractionClosed:
                await self.conductor.execute(
                    timer.tenant_id, timer.interaction_id, [cmd.CancelTimer(timer.timer_id)], SYSTEM,
                    require_open=False,
                )  # fmt: skip
            except InteractionNotFound:
                log.warning("timer %s belongs to no interaction", timer.timer_id)
        return fired


@dataclass
class Runtime:
    data_dir: Path
    world: World
    clock: Clock
    store: EventStore
    bus: Bus
    conductor: Conductor
    registry: sqlite3.Connection
    tokens: TokenRegistry
    agents: AgentDirectory
    router: Router
    timers: TimerReactor
    metrics: Metrics
    idempotency: IdempotencyStore
    owns_store: bool = True
    activator: Activator | None = None
    # False when the activator is shared with other runtimes (the simulator's one lakehouse): its owner closes it.
    owns_activator: bool = True
    actions: Actions | None = None
    summaries: SummaryReactor | None = None
    # The client for the model TANDEM_LLM names, shared by every duty that uses it and closed with the runtime.
    llm: LLM | None = None
    # Set when the data directory had no admin token and TANDEM_ADMIN_TOKEN named none: print it once.
    admin_token_created: str | None = None
    timer_interval_s: float = 0.5
    routing_interval_s: float = 1.0
    stream_heartbeat_s: float = 15.0
    _stop: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False)

    @property
    def routing(self) -> Router:
        return self.router

    @property
    def running(self) -> bool:
        """The long-running reactors are alive (recovery runs once and ends)."""
        reactors = [t for t in self._tasks if t.get_name() != "recovery"]
        return bool(reactors) and not any(t.done() for t in reactors)

    def start(self) -> None:
        """Start the reactors in the running event loop (the API's lifespan does this)."""
        if self._tasks:
            return
        self._stop.clear()
        self._tasks = [
            asyncio.create_task(self._recover(), name="recovery"),
            asyncio.create_task(
                _repeat("routing", self.router.step, self.routing_interval_s, self._stop, self.bus), name="routing"
            ),
            asyncio.create_task(
                _repeat("timers", self.timers.fire_due, self.timer_interval_s, self._stop), name="timers"
            ),
            # Inputs written outside a request (an action's outcome, or one a busy mailbox left) get their
            # turn here: woken by every commit, with a poll as a safety net.
            asyncio.create_task(
                _repeat("inputs", self._process_unhandled, self.timer_interval_s, self._stop, self.bus), name="inputs"
            ),
        ]
        if self.summaries is not None:
            self._tasks.append(
                asyncio.create_task(
                    _repeat("summaries", self.summaries.step, self.routing_interval_s, self._stop, self.bus),
                    name="summaries",
                )
            )

    async def stop(self) -> None:
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        await self.stop()
        self.registry.close()
        if self.actions is not None:
            await self.actions.aclose()
        if self.activator is not None and self.owns_activator:
            await self.activator.close()
        if self.owns_store:
            await self.store.close()
        aclose = getattr(self.llm, "aclose", None)
        if aclose is not None:
            await aclose()  # its connection pool; the model's other users stopped with the reactors above

    async def _process_unhandled(self) -> None:
        for _tenant, interaction_id in await self.store.unhandled():
            try:
                await self.conductor.process(interaction_id)
            except Exception:  # top level of a reactor: one broken interaction must not stop the rest
                log.exception("processing %s failed", interaction_id)

    async def _recover(self) -> None:
        # Inputs acknowledged before a crash but never processed: process them now.
        for _tenant, interaction_id in await self.store.unhandled():
            try:
                await self.conductor.process(interaction_id)
            except Exception:  # top level of a task: one broken interaction must not stop the rest
                log.exception("recovering %s failed", interaction_id)


async def _repeat(
    name: str, step: Callable[[], Awaitable[object]], interval_s: float, stop: asyncio.Event, bus: Bus | None = None
) -> None:
    """Run ``step`` now, then on every bus wake-up (if any) or every ``interval_s``, until ``stop``."""
    queue = bus.subscribe() if bus is not None else None
    try:
        while not stop.is_set():
            try:
                await step()
            except Exception:  # top level of a reactor: log, and try again on the next round
                log.exception("%s failed; trying again", name)
            waiters: set[asyncio.Task[object]] = {asyncio.create_task(stop.wait())}
            if queue is not None:
                waiters.add(asyncio.create_task(queue.get()))
            try:
                await asyncio.wait(waiters, timeout=interval_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
                await asyncio.gather(*waiters, return_exceptions=True)
            while queue is not None and not queue.empty():
                queue.get_nowait()  # a wake-up carries nothing: the step reads the store
    finally:
        if queue is not None and bus is not None:
            bus.unsubscribe(queue)


def open_registry(path: str | Path) -> sqlite3.Connection:
    """The registry of tokens, agents and idempotency keys: beside the events in the same SQLite file by
    default, on a connection of its own."""
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    # NORMAL: a power cut may lose the last token or presence change, never corrupt; events keep FULL.
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=5000")
    return db


async def build_runtime(
    data_dir: Path,
    world: World,
    *,
    clock: Clock | None = None,
    store: EventStore | None = None,
    participants: Mapping[str, Participant] | None = None,
    understander: Understander | None = None,
    admin_token: str | None = None,
    activator: Activator | None = None,
    with_actions: bool = False,
    policies: Mapping[str, Path] | None = None,
    summarizer: Summarizer | None = None,
) -> Runtime:
    """Assemble everything. ``admin_token`` (or ``TANDEM_ADMIN_TOKEN``) becomes an admin token of every
    tenant; with neither, a fresh data directory gets a new one in ``admin_token_created``. ``policies``
    (tenant -> policy.yaml) saves finding each tenant's policy file, which parses every policy once more:
    for callers that build many runtimes (the simulator builds one per journey). ``summarizer`` writes the case
    summaries (by default the one ``TANDEM_LLM`` configures, see ``summarizer_from_env``)."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    clock = clock or BusinessDateClock(world.business_date)
    owns_store = store is None
    store = store or SqliteStore(data_dir / "tandem.db")
    registry = open_registry(store.path if isinstance(store, SqliteStore) else data_dir / "tandem.db")
    bus = Bus()
    bot: SelfServiceBot | None = None
    # One client (one connection pool, one set of retries and timeouts) for every duty the configured model
    # serves: the flow planner, the AI, reply phrasing and case summaries.
    model = llm_from_env() if participants is None or summarizer is None else None
    if participants is None:
        bot = self_service_from_env(world, activator=activator, model=model)
        bot.phrasing = phrasing_from_env(model=model)
        participants = {"bot": bot, **ai_from_env(world, model=model)}
    if understander is None:
        understander = RuleUnderstander({t.id: t.kind for t in world})
    conductor = Conductor(store, participants, clock=clock, understander=understander, bus=bus)
    actions: Actions | None = None
    if with_actions:
        # The example systems as MCP servers, the policy gate and the action worker; started by the caller
        # (``await runtime.actions.start()``) since it launches processes.
        actions = build_actions(world, data_dir, conductor, policies=policies)
        if bot is not None:
            bot.gate = conductor.gate
        if isinstance(ai := participants.get("ai"), AIParticipant):
            ai.gate = conductor.gate
    tokens = TokenRegistry(registry, clock)
    agents = AgentDirectory(registry)
    router = Router(conductor, agents, world)
    metrics = Metrics()
    router.observers.append(metrics.observe)
    runtime = Runtime(
        data_dir=data_dir,
        world=world,
        clock=clock,
        store=store,
        bus=bus,
        conductor=conductor,
        registry=registry,
        tokens=tokens,
        agents=agents,
        router=router,
        timers=TimerReactor(conductor),
        metrics=metrics,
        idempotency=IdempotencyStore(registry, clock),
        owns_store=owns_store,
        activator=activator,
        actions=actions,
        summaries=SummaryReactor(conductor, summarizer or summarizer_from_env(model=model)),
        llm=model,
    )
    chosen = admin_token or os.environ.get("TANDEM_ADMIN_TOKEN")
    if chosen:
        tokens.register(chosen, ADMIN)
    elif not tokens.has_admin():
        runtime.admin_token_created = tokens.issue(ADMIN)
    await router.sync()  # the routing index and the metrics start from the whole log
    return runtime
