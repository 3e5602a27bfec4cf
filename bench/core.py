"""Core benchmark: customer turns through the conductor, beside the database's own limit and a peer.

Run ``.venv/bin/python -m bench.core`` (four to five minutes on 2 cores). In one run it measures

* customer turns per second and the latency of each turn, in process (``Conductor.handle`` with a
  ``CustomerSaid`` input, a trivial echo participant, no understanding), with 1, 100 and 1,000 concurrent
  interactions, on SQLite (a file in a temporary directory) and on PostgreSQL (``TANDEM_BENCH_PG_DSN``, an
  own schema dropped afterwards);
* the raw rate of appending the same rows straight into each database (plain ``sqlite3`` / ``asyncpg``, no
  Tandem code): the limit the conductor works against;
* a peer: a two-node LangGraph graph (understand -> respond) persisted by its SQLite checkpointer;
* the load time of a 1,000-event interaction by a cold conductor, with and without a snapshot;
* the resident memory that 10,000 open idle interactions started through the conductor add (SQLite), in a
  fresh child process so that nothing else the run allocated blurs it.

It prints the figures beside their goals, writes the raw figures to ``bench/out/core.json`` and rewrites the
section "## Core (in process)" of ``docs/benchmarks.md``, leaving other sections as they are.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import importlib.metadata
import json
import math
import operator
import os
import platform
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypedDict

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.document import DOC, write_section
from tandem import commands as cmd
from tandem.case import events as ev
from tandem.case.envelope import Actor
from tandem.case.interaction import Interaction
from tandem.conductor import Conductor, Input
from tandem.participants.protocol import Turn
from tandem.store.protocol import EventStore
from tandem.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "out"
SECTION = "## Core (in process)"
COMMAND = ".venv/bin/python -m bench.core"
PG_DSN = os.environ.get("TANDEM_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")

CONCURRENCY = (1, 100, 1000)
# A long customer conversation; after it a worker moves to a fresh interaction, so that a single
# interaction driven for the whole case does not grow into an unrealistic 20,000-event log.
TURNS_PER_INTERACTION = 100
RAW_PG_POOL = 20
LOAD_EVENTS = 1000
SNAPSHOT_EVERY = 100  # the conductor's default: a snapshot is at most this many events behind
IDLE_INTERACTIONS = 10_000
TENANT = "bank"
LINE = "I lost my card yesterday, can you block it?"

GOAL_PEER_FACTOR = 5.0  # SQLite turns/s at least 5x LangGraph's
GOAL_RAW_SHARE = 0.10  # SQLite turns/s at least 10% of the raw append rate
GOAL_LOAD_MS = 5.0  # a 1,000-event interaction with a snapshot loads within 5 ms
GOAL_RSS_MB = 100.0  # 10,000 idle interactions add at most 100 MB

console = Console()


# -- the participant -------------------------------------------------------------------------------------
class Echo:
    """The trivial participant: greets a new leg, echoes every customer line. Like tests' EchoBot."""

    kind = "bot"

    async def decide(self, case: Interaction, turn: Turn) -> Sequence[cmd.Command]:
        if turn.input.type == ev.LEG_OPENED:
            return [cmd.Say("hello", epoch=case.floor.epoch)]
        if turn.input.type == ev.CUSTOMER_SAID:
            return [cmd.Say(f"you said: {turn.input.data.get('text')}", epoch=case.floor.epoch)]
        return []


def conductor_for(store: EventStore, snapshot_every: int = SNAPSHOT_EVERY) -> Conductor:
    return Conductor(store, {"bot": Echo()}, snapshot_every=snapshot_every)


def said(interaction_id: str, customer_id: str) -> Input:
    return Input(TENANT, interaction_id, ev.CUSTOMER_SAID, {"text": LINE}, Actor("customer", customer_id))


# -- measuring -------------------------------------------------------------------------------------------
def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest rank: the smallest sample with at least ``q`` of the samples at or below it."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summarize(done: list[float], start: float, end: float) -> dict[str, Any]:
    """One repetition's throughput: every turn over the wall time, all workers starting together and each
    stopping after the first turn that ends past the deadline. The system stays saturated throughout (a closed
    loop with no think time), and whole-case counting is fair to peers that complete concurrent turns in bursts
    (LangGraph finishes its threads nearly together, so short windows would see feast or famine)."""
    per_second = [0] * max(1, math.ceil(end - start))
    for moment in done:
        per_second[min(len(per_second) - 1, int(moment - start))] += 1
    return {
        "rate": round(len(done) / (end - start), 1),
        "turns": len(done),
        "elapsed_s": round(end - start, 3),
        "per_second": per_second,
    }


def combine(reps: list[tuple[dict[str, Any], list[float]]]) -> dict[str, Any]:
    """Repetitions of one case: the median rate, and latency percentiles over every turn of every repetition."""
    rates = [summary["rate"] for summary, _ in reps]
    ordered = sorted(latency for _, latencies in reps for latency in latencies)
    return {
        "rate": round(statistics.median(rates), 1),
        "rates": rates,
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 3),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 3),
        "turns": len(ordered),
        "repetitions": [summary for summary, _ in reps],
        "status": "ok",
    }


class Bench:
    """Holds the progress display and the run's settings."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    async def drive(
        self, label: str, turns: Sequence[Callable[[], Awaitable[None]]], duration: float
    ) -> tuple[dict[str, Any], list[float]]:
        """Run one worker per element of ``turns``, each doing turns one after another until ``duration`` is
        over (at least one turn each: with 1,000 workers one round can outlast the duration)."""
        latencies: list[float] = []
        done: list[float] = []
        start = time.perf_counter()
        deadline = start + duration

        async def worker(turn: Callable[[], Awaitable[None]]) -> None:
            while True:
                # The customer's next line arrives over the network and waits its turn in the event loop, as a
                # request would; its latency counts from its arrival, so queueing behind other interactions is
                # included. (SqliteStore never suspends, so without this yield one worker would run the whole
                # case alone and latency would hide all waiting.)
                began = time.perf_counter()
                await asyncio.sleep(0)
                await turn()
                ended = time.perf_counter()
                latencies.append(ended - began)
                done.append(ended)
                if ended >= deadline:
                    break

        task = self.progress.add_task(label, total=duration, figure="")
        ticker = asyncio.get_running_loop().create_task(self._tick(task, start, duration, done))
        try:
            await asyncio.gather(*(worker(t) for t in turns))
        finally:
            ticker.cancel()
        end = time.perf_counter()
        summary = summarize(done, start, end)
        p99 = percentile(sorted(latencies), 0.99) * 1000
        self.progress.update(task, completed=duration, figure=f"{summary['rate']:,.0f} turns/s, p99 {p99:,.1f} ms")
        return summary, latencies

    async def _tick(self, task: TaskID, start: float, duration: float, done: list[float]) -> None:
        while True:
            elapsed = time.perf_counter() - start
            rate = len(done) / elapsed if elapsed > 0 else 0.0
            self.progress.update(task, completed=min(elapsed, duration), figure=f"{len(done):,} turns, {rate:,.0f}/s")
            await asyncio.sleep(0.25)

    async def step(self, label: str, total: int, items: Callable[[int], Awaitable[None]], parallel: int = 1) -> float:
        """Run ``items(i)`` for i < total (at most ``parallel`` at once) under a progress bar; return seconds."""
        task = self.progress.add_task(label, total=total, figure="")
        start = time.perf_counter()
        next_index = 0

        async def runner() -> None:
            nonlocal next_index
            while next_index < total:
                index = next_index
                next_index += 1
                await items(index)
                self.progress.advance(task)
                await asyncio.sleep(0)

        await asyncio.gather(*(runner() for _ in range(max(1, min(parallel, total)))))
        elapsed = time.perf_counter() - start
        self.progress.update(task, figure=f"{total / elapsed:,.0f}/s")
        return elapsed


# -- Tandem through the conductor ------------------------------------------------------------------------
class Rotation:
    """One worker's turns: up to TURNS_PER_INTERACTION on each of its interactions, then the next one."""

    def __init__(self, conductor: Conductor, interactions: list[tuple[str, str]], prefix: str) -> None:
        self.conductor = conductor
        self.interactions = interactions
        self.prefix = prefix
        self.index = 0
        self.turns = 0

    async def __call__(self) -> None:
        if self.turns == TURNS_PER_INTERACTION:
            self.index, self.turns = self.index + 1, 0
            if self.index == len(self.interactions):  # more turns than foreseen: open one more, untimed by design
                customer = f"{self.prefix}-x{self.index}"
                state, _ = await self.conductor.start(TENANT, customer, "chat")
                self.interactions.append((state.interaction_id, customer))
        interaction_id, customer = self.interactions[self.index]
        await self.conductor.handle(said(interaction_id, customer))
        self.turns += 1


class LeasesInMemory(SqliteStore):
    """What-if, for this benchmark only: the mailbox lease kept in memory instead of two autocommit writes.

    Valid for one process (the SQLite deployment), where the conductor's in-process lock already orders
    turns and the version check fences the append; measured beside the real store to size the change.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._held: dict[str, tuple[str, float]] = {}

    async def acquire_lease(self, interaction_id: str, owner: str, ttl_s: float) -> bool:
        now = time.monotonic()
        held = self._held.get(interaction_id)
        if held is not None and held[0] != owner and held[1] > now:
            return False
        self._held[interaction_id] = (owner, now + ttl_s)
        return True

    async def release_lease(self, interaction_id: str, owner: str) -> None:
        if self._held.get(interaction_id, ("",))[0] == owner:
            del self._held[interaction_id]


async def tandem_workers(
    bench: Bench, store: EventStore, label: str, concurrency: int, expected_turns: float
) -> list[Callable[[], Awaitable[None]]]:
    """Open enough interactions for the turns expected (untimed), and a rotation over them per worker."""
    conductor = conductor_for(store)
    per_worker = max(1, math.ceil(expected_turns / concurrency / TURNS_PER_INTERACTION))
    opened: list[list[tuple[str, str]]] = [[] for _ in range(concurrency)]
    run = uuid.uuid4().hex[:6]

    async def open_one(i: int) -> None:
        customer = f"C-{run}-{i}"
        state, _ = await conductor.start(TENANT, customer, "chat")
        opened[i % concurrency].append((state.interaction_id, customer))

    total = concurrency * per_worker
    await bench.step(f"{label}: open {total:,} interactions", total, open_one, parallel=50)
    return [Rotation(conductor, opened[w], f"C-{run}-w{w}") for w in range(concurrency)]


# -- the database's own limit ----------------------------------------------------------------------------
def _sealed(size: int) -> str:
    """A value shaped like a sealed personal field (nonce + ciphertext + tag, base64)."""
    return json.dumps(
        {"text": {"$sealed": base64.b64encode(os.urandom(12 + size + 16)).decode()}}, separators=(",", ":")
    )


SAID_DATA = _sealed(len(json.dumps(LINE)))
REPLY_DATA = _sealed(len(json.dumps("you said: " + LINE)))
CUSTOMER_ACTOR = json.dumps({"kind": "customer", "id": "C-1"}, separators=(",", ":"))
BOT_ACTOR = json.dumps({"kind": "bot", "id": "bot"}, separators=(",", ":"))
SYSTEM_ACTOR = json.dumps({"kind": "system"}, separators=(",", ":"))

RAW_COLUMNS = (
    "event_id, tenant_id, interaction_id, seq, type, schema_version, occurred_at, recorded_at, actor, leg_id,"
    " causation_id, correlation_id, floor_epoch, data"
)


def turn_rows(interaction_id: str, seq: int, leg_id: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rows of one turn: the input (its own transaction, the acknowledgement), then reply and completion."""
    now = datetime.now(UTC)
    input_id = uuid.uuid4().hex
    said_row = (input_id, TENANT, interaction_id, seq + 1, ev.CUSTOMER_SAID, 1, now, now, CUSTOMER_ACTOR, leg_id,
                None, None, 0, SAID_DATA)  # fmt: skip
    results = [
        (uuid.uuid4().hex, TENANT, interaction_id, seq + 2, ev.REPLY_SENT, 1, now, now, BOT_ACTOR, leg_id,
         input_id, input_id, 0, REPLY_DATA),
        (uuid.uuid4().hex, TENANT, interaction_id, seq + 3, ev.TURN_COMPLETED, 1, now, now, SYSTEM_ACTOR, leg_id,
         input_id, input_id, 0, json.dumps({"input_seq": seq + 1})),
    ]  # fmt: skip
    return [said_row], results


class RawSqlite:
    """Plain sqlite3 with the settings the store uses (WAL, synchronous=FULL): the most a turn can cost less."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(
            "CREATE TABLE events (position INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, tenant_id TEXT NOT NULL,"
            " interaction_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, schema_version INTEGER NOT NULL,"
            " occurred_at TEXT NOT NULL, recorded_at TEXT NOT NULL, actor TEXT NOT NULL, leg_id TEXT,"
            " causation_id TEXT, correlation_id TEXT, floor_epoch INTEGER NOT NULL, data TEXT NOT NULL,"
            " UNIQUE (interaction_id, seq))"
        )
        self.sql = f"INSERT INTO events ({RAW_COLUMNS}) VALUES ({', '.join('?' * 14)})"

    def _commit(self, rows: list[tuple[Any, ...]]) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany(self.sql, [(*r[:6], r[6].isoformat(), r[7].isoformat(), *r[8:]) for r in rows])
        self.db.execute("COMMIT")

    def worker(self, name: str) -> Callable[[], Awaitable[None]]:
        seq = 0

        async def turn() -> None:
            nonlocal seq
            first, rest = turn_rows(name, seq, f"leg-{name}")
            self._commit(first)
            self._commit(rest)
            seq += 3

        return turn


class RawPostgres:
    """Plain asyncpg over a pool: the same rows in the same two transactions per turn."""

    def __init__(self, pool: Any, schema: str) -> None:
        self.pool = pool
        self.sql = f'INSERT INTO "{schema}".events ({RAW_COLUMNS}) VALUES ({", ".join(f"${i}" for i in range(1, 15))})'

    @staticmethod
    async def create(conn: Any, schema: str) -> None:
        await conn.execute(
            f'CREATE SCHEMA "{schema}"; CREATE TABLE "{schema}".events (position BIGINT GENERATED ALWAYS AS IDENTITY'
            " PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, tenant_id TEXT NOT NULL, interaction_id TEXT NOT NULL,"
            " seq INTEGER NOT NULL, type TEXT NOT NULL, schema_version INTEGER NOT NULL, occurred_at TIMESTAMPTZ"
            " NOT NULL, recorded_at TIMESTAMPTZ NOT NULL, actor JSONB NOT NULL, leg_id TEXT, causation_id TEXT,"
            " correlation_id TEXT, floor_epoch INTEGER NOT NULL, data JSONB NOT NULL, UNIQUE (interaction_id, seq))"
        )

    async def _commit(self, rows: list[tuple[Any, ...]]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(self.sql, rows)

    def worker(self, name: str) -> Callable[[], Awaitable[None]]:
        seq = 0

        async def turn() -> None:
            nonlocal seq
            first, rest = turn_rows(name, seq, f"leg-{name}")
            await self._commit(first)
            await self._commit(rest)
            seq += 3

        return turn


# -- the peer: LangGraph ----------------------------------------------------------------------------------
class PeerState(TypedDict):
    messages: Annotated[list[str], operator.add]
    intent: str


def _understand(state: PeerState) -> dict[str, Any]:
    return {"intent": "card_lost" if "card" in state["messages"][-1] else "other"}


def _respond(state: PeerState) -> dict[str, Any]:
    return {"messages": [f"you said: {state['messages'][-1]}"]}


async def langgraph_workers(
    stack: contextlib.AsyncExitStack, path: Path, concurrency: int, settings: dict[str, Any]
) -> list[Callable[[], Awaitable[None]]]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(PeerState)
    graph.add_node("understand", _understand)
    graph.add_node("respond", _respond)
    graph.add_edge(START, "understand")
    graph.add_edge("understand", "respond")
    graph.add_edge("respond", END)
    saver = await stack.enter_async_context(AsyncSqliteSaver.from_conn_string(str(path)))
    app = graph.compile(checkpointer=saver)
    await saver.setup()
    for pragma in ("journal_mode", "synchronous"):
        settings[pragma] = (await (await saver.conn.execute(f"PRAGMA {pragma}")).fetchall())[0][0]

    def worker(w: int) -> Callable[[], Awaitable[None]]:
        count = 0

        async def turn() -> None:
            nonlocal count
            thread = f"t{w}-{count // TURNS_PER_INTERACTION}"
            await app.ainvoke({"messages": [LINE]}, {"configurable": {"thread_id": thread}})
            count += 1

        return turn

    return [worker(w) for w in range(concurrency)]


# -- loading ---------------------------------------------------------------------------------------------
async def load_case(bench: Bench, store: EventStore, backend: str, loads: int) -> dict[str, Any]:
    """A 1,000-event interaction loaded by a new conductor each time (nothing cached), median of ``loads``."""
    writer = conductor_for(store, snapshot_every=10**9)  # writes no snapshot: we place them ourselves
    customer = f"L-{uuid.uuid4().hex[:8]}"
    state, _ = await writer.start(TENANT, customer, "chat")
    interaction_id = state.interaction_id
    turns_needed = (LOAD_EVENTS - state.version) // 3

    async def one_turn(_: int) -> None:
        await writer.handle(said(interaction_id, customer))

    await bench.step(f"{backend}: build a {LOAD_EVENTS:,}-event interaction", turns_needed, one_turn)
    events = await store.read(interaction_id)
    version = len(events)

    async def median_load(label: str) -> dict[str, Any]:
        times: list[float] = []

        async def one_load(_: int) -> None:
            cold = conductor_for(store, snapshot_every=10**9)  # loading must not write a snapshot of its own
            began = time.perf_counter()
            loaded = await cold.load(interaction_id)
            times.append(time.perf_counter() - began)
            if loaded.version != version:
                raise RuntimeError(f"loaded version {loaded.version}, expected {version}")

        await bench.step(f"{backend}: load, {label}", loads, one_load)
        ordered = sorted(times)
        return {
            "median_ms": round(statistics.median(ordered) * 1000, 3),
            "p90_ms": round(percentile(ordered, 0.9) * 1000, 3),
            "min_ms": round(ordered[0] * 1000, 3),
            "loads": loads,
        }

    out: dict[str, Any] = {"events": version, "status": "ok"}
    out["no_snapshot"] = await median_load("no snapshot")
    behind = version - SNAPSHOT_EVERY
    await store.save_snapshot(interaction_id, behind, Interaction.fold(interaction_id, events[:behind]).to_snapshot())
    out["snapshot_behind"] = await median_load(f"snapshot {SNAPSHOT_EVERY} events behind") | {
        "newer_events": SNAPSHOT_EVERY
    }
    await store.save_snapshot(interaction_id, version, Interaction.fold(interaction_id, events).to_snapshot())
    out["snapshot_at_tip"] = await median_load("snapshot at the tip") | {"newer_events": 0}
    return out


# -- where a SQLite turn's time goes ---------------------------------------------------------------------
class TimedConnection:
    """Wraps the store's sqlite3 connection and times every statement by its first words."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        began = time.perf_counter()
        try:
            return self._db.execute(sql, *args)
        finally:
            entry = self.stats[_statement_kind(sql)]
            entry[0] += 1
            entry[1] += time.perf_counter() - began

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def _statement_kind(sql: str) -> str:
    words = sql.split()
    head = " ".join(words[:2]).upper()
    if head.startswith(("INSERT", "DELETE")) and "leases" in sql:
        return f"{words[0].upper()} lease (autocommit)"
    if sql.startswith("INSERT INTO snapshots"):
        return "INSERT snapshot (autocommit)"
    for kind in ("COMMIT", "BEGIN IMMEDIATE", "INSERT INTO events", "UPDATE interactions", "SELECT version"):
        if sql.startswith(kind):
            return kind
    if sql.startswith("SELECT position"):
        return "SELECT events (read)"
    return head


async def breakdown_case(bench: Bench, directory: Path, turns: int) -> dict[str, Any]:
    """One interaction at a time, every statement timed: what a turn pays the database for."""
    store = SqliteStore(directory / "breakdown.db")
    try:
        conductor = conductor_for(store)
        timed = TimedConnection(store._db)
        store._db = timed  # type: ignore[assignment]  # bench-only instrumentation
        state, _ = await conductor.start(TENANT, "B-0", "chat")
        opened = [(state.interaction_id, "B-0")]
        timed.stats.clear()

        async def one_turn(i: int) -> None:
            if i and i % TURNS_PER_INTERACTION == 0:  # a fresh interaction, as in the throughput cases
                customer = f"B-{i}"
                state, _ = await conductor.start(TENANT, customer, "chat")
                opened.append((state.interaction_id, customer))
            await conductor.handle(said(*opened[-1]))

        # Starting each next interaction (1 per 100 turns) is inside the figures; the first is not.
        began = time.perf_counter()
        await bench.step("SQLite: time each statement of a turn", turns, one_turn)
        elapsed = time.perf_counter() - began
        per_turn_ms = elapsed / turns * 1000
        statements = {
            kind: {"per_turn": round(n / turns, 2), "ms_per_turn": round(t / turns * 1000, 4)}
            for kind, (n, t) in sorted(timed.stats.items(), key=lambda kv: -kv[1][1])
        }
        sql_ms = sum(s["ms_per_turn"] for s in statements.values())
        lease_ms = sum(s["ms_per_turn"] for k, s in statements.items() if "lease" in k)
        return {
            "turns": turns,
            "ms_per_turn": round(per_turn_ms, 4),
            "sql_ms_per_turn": round(sql_ms, 4),
            "lease_ms_per_turn": round(lease_ms, 4),
            "python_ms_per_turn": round(per_turn_ms - sql_ms, 4),
            "statements": statements,
            "status": "ok",
        }
    finally:
        await store.close()


# -- memory, in a child process --------------------------------------------------------------------------
def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    import resource  # not Linux: peak, not current, but still an upper bound on growth

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def memory_child(count: int, directory: Path) -> dict[str, Any]:
    store = SqliteStore(directory / "idle.db")
    conductor = conductor_for(store)
    for i in range(20):  # warm up: imports, statement cache, SQLite pages, allocator arenas
        await conductor.start(TENANT, f"warm-{i}", "chat")
    gc.collect()
    before = rss_bytes()
    began = time.perf_counter()
    for i in range(count):
        await conductor.start(TENANT, f"I-{i}", "chat")
        if i % 250 == 249:
            print(i + 1, file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - began
    gc.collect()
    after = rss_bytes()
    await store.close()
    growth = after - before
    return {
        "interactions": count,
        "rss_before_mb": round(before / 2**20, 1),
        "rss_after_mb": round(after / 2**20, 1),
        "growth_mb": round(growth / 2**20, 1),
        "kb_per_interaction": round(growth / count / 1024, 2),
        "starts_per_s": round(count / elapsed, 1),
        "cached_states": len(getattr(conductor, "_cache", ())),
        "mailbox_locks_left": len(getattr(conductor, "_locks", ())),
        "status": "ok",
    }


async def memory_case(bench: Bench, directory: Path, count: int) -> dict[str, Any]:
    task = bench.progress.add_task(f"SQLite: {count:,} idle interactions (child process)", total=count, figure="")
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.core", "--memory-child", str(count), "--dir", str(directory),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None and child.stderr is not None
    errors: list[str] = []

    async def follow() -> None:
        assert child.stderr is not None
        async for raw in child.stderr:
            line = raw.decode().strip()
            if line.isdigit():
                bench.progress.update(task, completed=int(line))
            elif line:
                errors.append(line)

    follower = asyncio.get_running_loop().create_task(follow())
    out = await child.stdout.read()
    await child.wait()
    await follower
    if child.returncode != 0:
        raise RuntimeError(f"memory child failed ({child.returncode}): {' | '.join(errors[-5:])}")
    result: dict[str, Any] = json.loads(out)
    bench.progress.update(task, completed=count, figure=f"+{result['growth_mb']} MB")
    return result


# -- PostgreSQL plumbing ---------------------------------------------------------------------------------
async def pg_server(dsn: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        import asyncpg
    except ImportError:
        return None, "asyncpg is not installed (pip install -e '.[bench]')"
    try:
        conn = await asyncio.wait_for(asyncpg.connect(dsn), 10)
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        return None, f"PostgreSQL at {dsn} unreachable: {error}"
    try:
        info = {
            name: await conn.fetchval(f"SHOW {name}")
            for name in ("server_version", "synchronous_commit", "fsync", "max_connections")
        }
    finally:
        await conn.close()
    return info, None


async def drop_schema(dsn: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def pg_settle(dsn: str) -> None:
    """Flush the previous case's dirty pages now rather than during the next case (needs superuser; best effort)."""
    import asyncpg

    with contextlib.suppress(OSError, asyncpg.PostgresError):
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CHECKPOINT")
        finally:
            await conn.close()


def postgres_store_class() -> tuple[Any, str | None]:
    try:
        from tandem.store.postgres import PostgresStore
    except ImportError as error:
        return None, f"tandem.store.postgres is not importable yet ({error})"
    return PostgresStore, None


class PostgresSchema:
    """A PostgresStore in a schema of its own, dropped on the way out."""

    def __init__(self, cls: Any, dsn: str, purpose: str) -> None:
        self.cls, self.dsn = cls, dsn
        self.schema = f"bench_{purpose}_{uuid.uuid4().hex[:8]}"
        self.store: Any = None

    async def __aenter__(self) -> Any:
        self.store = await self.cls.connect(self.dsn, schema=self.schema)
        return self.store

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self.store is not None:
                await self.store.close()
        finally:
            await drop_schema(self.dsn, self.schema)


# -- the run ---------------------------------------------------------------------------------------------
def failed(error: BaseException) -> dict[str, Any]:
    return {"status": "failed", "reason": f"{type(error).__name__}: {error}"}


def not_run(reason: str) -> dict[str, Any]:
    return {"status": "not run", "reason": reason}


async def guarded(label: str, work: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """One case failing must not lose the others: record why, go on."""
    try:
        return await work
    except Exception as error:  # top-level handler of a case: report, keep measuring the rest
        console.print(f"[red]{label} failed:[/red] {type(error).__name__}: {error}")
        return failed(error)


Workers = list[Callable[[], Awaitable[None]]]
Setup = Callable[[contextlib.AsyncExitStack], Awaitable[Workers]]


async def rounds(
    bench: Bench, cases: Sequence[tuple[str, str, Setup]], repetitions: int, duration: float
) -> dict[str, dict[str, Any]]:
    """Set every case up, then run them in turn, ``repetitions`` times round: background load on this shared
    machine then falls on all of them alike, and each case's figure is the median of its repetitions."""
    out: dict[str, dict[str, Any]] = {}
    ready: dict[str, tuple[str, Workers]] = {}
    measured: dict[str, list[tuple[dict[str, Any], list[float]]]] = defaultdict(list)
    stack = contextlib.AsyncExitStack()
    try:
        for key, label, setup in cases:
            try:
                ready[key] = (label, await setup(stack))
            except Exception as error:  # a case that cannot start is reported, the others go on
                console.print(f"[red]{label} could not start:[/red] {type(error).__name__}: {error}")
                out[key] = failed(error)
        for rep in range(repetitions):
            for key, (label, workers) in ready.items():
                if key in out:
                    continue
                suffix = f" [{rep + 1}/{repetitions}]" if repetitions > 1 else ""
                try:
                    measured[key].append(await bench.drive(label + suffix, workers, duration))
                except Exception as error:  # report, keep measuring the rest
                    console.print(f"[red]{label} failed:[/red] {type(error).__name__}: {error}")
                    out[key] = failed(error)
    finally:
        try:
            await stack.aclose()
        except Exception as error:  # cleanup (closing pools, dropping schemas) must not lose the figures
            console.print(f"[yellow]cleanup after {', '.join(ready)}:[/yellow] {type(error).__name__}: {error}")
    for key, reps in measured.items():
        out.setdefault(key, combine(reps))
    return {key: out[key] for key, _, _ in cases}


def pressure() -> dict[str, float]:
    """Linux pressure stall information: the share of the last minute something waited for CPU or disk."""
    out: dict[str, float] = {}
    for resource in ("cpu", "io"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            line = Path(f"/proc/pressure/{resource}").read_text().splitlines()[0]
            out[resource] = float(dict(part.split("=") for part in line.split()[1:])["avg60"])
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    reps, duration = args.repetitions, args.duration
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": COMMAND,
        "settings": {
            "duration_s": duration,
            "repetitions": reps,
            "duration_1000_s": 2 * duration,
            "concurrency": list(CONCURRENCY),
            "turns_per_interaction": TURNS_PER_INTERACTION,
            "snapshot_every": SNAPSHOT_EVERY,
            "load_events": LOAD_EVENTS,
            "loads": args.loads,
            "idle_interactions": args.idle,
            "raw_pg_pool": RAW_PG_POOL,
            "pg_dsn": re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", PG_DSN),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "langgraph": _version("langgraph"),
            "langgraph-checkpoint-sqlite": _version("langgraph-checkpoint-sqlite"),
            "asyncpg": _version("asyncpg"),
            "pressure_avg60_at_start": pressure(),
        },
        "sqlite": {},
        "postgres": {},
        "raw": {},
        "langgraph": {},
    }
    started = time.perf_counter()
    pg_info, pg_reason = await pg_server(PG_DSN)
    results["machine"]["postgres"] = pg_info
    store_cls, store_reason = postgres_store_class()
    if store_cls is None:
        pg_reason = pg_reason or store_reason
    expected = 2500 * duration * reps  # turns a worker pool might do: interactions are opened for them beforehand
    with (
        tempfile.TemporaryDirectory(prefix="tandem-bench-") as tmp,
        Progress(
            TextColumn("{task.description:<50}"),
            BarColumn(bar_width=20),
            TimeElapsedColumn(),
            TextColumn("{task.fields[figure]}"),
            console=console,
            refresh_per_second=4,
        ) as progress,
    ):
        directory = Path(tmp)
        bench = Bench(progress)
        peer_settings: dict[str, Any] = {}

        def raw_sqlite(stack: contextlib.AsyncExitStack) -> Awaitable[Workers]:
            raw = RawSqlite(directory / "raw.db")
            stack.callback(raw.db.close)
            return _ready([raw.worker("raw")])

        def tandem_sqlite(n: int, store_type: type[SqliteStore] = SqliteStore) -> Setup:
            async def setup(stack: contextlib.AsyncExitStack) -> Workers:
                store = store_type(directory / f"{store_type.__name__}-{n}.db")
                stack.push_async_callback(store.close)
                label = "SQLite" if store_type is SqliteStore else "SQLite, leases in memory"
                return await tandem_workers(bench, store, label, n, expected if n < 1000 else expected / reps * 2)

            return setup

        def peer(n: int) -> Setup:
            return lambda stack: langgraph_workers(stack, directory / f"langgraph-{n}.db", n, peer_settings)

        # Everything on SQLite first: PostgreSQL's checkpoints would slow the fsyncs SQLite waits for.
        sqlite_cases: list[tuple[str, str, Setup]] = [
            ("raw/sqlite_1", "raw sqlite3, 2 txns/turn, 1 writer", raw_sqlite),
            ("sqlite/turns_1", "SQLite: turns, 1 concurrent", tandem_sqlite(1)),
            ("langgraph/turns_1", "LangGraph: turns, 1 concurrent", peer(1)),
            ("sqlite/turns_100", "SQLite: turns, 100 concurrent", tandem_sqlite(100)),
            ("langgraph/turns_100", "LangGraph: turns, 100 concurrent", peer(100)),
        ]
        _file(results, await rounds(bench, sqlite_cases, reps, duration))
        # 1,000 workers: one round of turns alone takes seconds, so one longer repetition.
        thousand: list[tuple[str, str, Setup]] = [
            ("sqlite/turns_1000", "SQLite: turns, 1,000 concurrent", tandem_sqlite(1000)),
            ("langgraph/turns_1000", "LangGraph: turns, 1,000 concurrent", peer(1000)),
        ]
        _file(results, await rounds(bench, thousand, 1, 2 * duration))
        results["langgraph"]["sqlite_settings"] = peer_settings

        async def sqlite_load() -> dict[str, Any]:
            store = SqliteStore(directory / "load.db")
            try:
                return await load_case(bench, store, "SQLite", args.loads)
            finally:
                await store.close()

        results["sqlite"]["load"] = await guarded("sqlite load", sqlite_load())
        results["sqlite"]["breakdown"] = await guarded("breakdown", breakdown_case(bench, directory, args.breakdown))

        # PostgreSQL, each round after a checkpoint so that the previous case's dirty pages do not slow the next.
        def tandem_pg(n: int) -> Setup:
            async def setup(stack: contextlib.AsyncExitStack) -> Workers:
                store = await stack.enter_async_context(PostgresSchema(store_cls, PG_DSN, f"core{n}"))
                return await tandem_workers(
                    bench, store, "PostgreSQL", n, expected if n < 1000 else expected / reps * 2
                )

            return setup

        def raw_pg(n: int) -> Setup:
            return lambda stack: raw_postgres_workers(stack, n)

        if pg_info is None:
            for key in ("postgres_1", "postgres_100"):
                results["raw"][key] = not_run(pg_reason or "PostgreSQL unavailable")
        pg_cases: list[tuple[str, str, Setup]] = []
        if pg_info is not None:
            pg_cases += [("raw/postgres_1", "raw asyncpg, 2 txns/turn, 1 concurrent", raw_pg(1))]
        if pg_info is not None and store_cls is not None:
            pg_cases += [("postgres/turns_1", "PostgreSQL: turns, 1 concurrent", tandem_pg(1))]
        if pg_info is not None:
            pg_cases += [("raw/postgres_100", "raw asyncpg, 2 txns/turn, 100 concurrent", raw_pg(100))]
        if pg_info is not None and store_cls is not None:
            pg_cases += [("postgres/turns_100", "PostgreSQL: turns, 100 concurrent", tandem_pg(100))]
        if pg_cases:
            await pg_settle(PG_DSN)
            _file(results, await rounds(bench, pg_cases, reps, duration))
        if pg_info is not None and store_cls is not None:
            await pg_settle(PG_DSN)
            pg_thousand: list[tuple[str, str, Setup]] = [
                ("postgres/turns_1000", "PostgreSQL: turns, 1,000 concurrent", tandem_pg(1000))
            ]
            _file(results, await rounds(bench, pg_thousand, 1, 2 * duration))

            async def postgres_load() -> dict[str, Any]:
                async with PostgresSchema(store_cls, PG_DSN, "load") as store:
                    return await load_case(bench, store, "PostgreSQL", args.loads)

            await pg_settle(PG_DSN)
            results["postgres"]["load"] = await guarded("postgres load", postgres_load())
        else:
            for key in ("turns_1", "turns_100", "turns_1000", "load"):
                results["postgres"][key] = not_run(pg_reason or "")

        # Memory last, in its own process, once nothing else runs.
        results["memory"] = await guarded("memory", memory_case(bench, directory, args.idle))
    results["machine"]["pressure_avg60_at_end"] = pressure()
    results["total_s"] = round(time.perf_counter() - started, 1)
    results["goals"] = goals(results)
    return results


async def _ready(workers: Workers) -> Workers:
    return workers


def _file(results: dict[str, Any], measured: dict[str, dict[str, Any]]) -> None:
    for key, value in measured.items():
        group, name = key.split("/")
        results[group][name] = value


async def raw_postgres_workers(
    stack: contextlib.AsyncExitStack, concurrency: int
) -> list[Callable[[], Awaitable[None]]]:
    import asyncpg

    schema = f"bench_raw_{uuid.uuid4().hex[:8]}"
    pool_size = min(concurrency, RAW_PG_POOL)
    stack.push_async_callback(drop_schema, PG_DSN, schema)
    pool = await asyncpg.create_pool(PG_DSN, min_size=pool_size, max_size=pool_size)
    stack.push_async_callback(pool.close)
    async with pool.acquire() as conn:
        await RawPostgres.create(conn, schema)
    raw = RawPostgres(pool, schema)
    return [raw.worker(f"raw-{w}") for w in range(concurrency)]


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


# -- goals and the report --------------------------------------------------------------------------------
def _ok(case: dict[str, Any] | None) -> bool:
    return bool(case) and case.get("status") == "ok"  # type: ignore[union-attr]


def goals(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the report: figure, value, goal, anchor/peer, met (True, False or None when not judged)."""
    rows: list[dict[str, Any]] = []
    raw_sqlite = r["raw"].get("sqlite_1")
    for n in CONCURRENCY:
        case = r["sqlite"].get(f"turns_{n}")
        peer = r["langgraph"].get(f"turns_{n}")
        figure = f"Turns/s, SQLite, {n:,} concurrent"
        if not _ok(case):
            rows.append(_missing(figure, case, f"≥ {GOAL_PEER_FACTOR:g}× LangGraph"))
            continue
        value = _turns(case)
        if _ok(peer) and peer["rate"] > 0:
            factor = ratio(case, peer)
            rows.append({
                "figure": figure, "value": value, "goal": f"≥ {GOAL_PEER_FACTOR:g}× LangGraph",
                "anchor": f"LangGraph {n:,} thread{'s' if n > 1 else ''}: {_turns(peer)} → **{factor:.1f}×**",
                "met": factor >= GOAL_PEER_FACTOR, "ratio": round(factor, 2),
            })  # fmt: skip
        elif _ok(peer):
            rows.append(_missing(figure, {"status": "measured 0 turns/s", "reason": "lengthen --duration"},
                                 f"≥ {GOAL_PEER_FACTOR:g}× LangGraph", value=value, what="LangGraph"))  # fmt: skip
        else:
            rows.append(_missing(figure, peer, f"≥ {GOAL_PEER_FACTOR:g}× LangGraph", value=value, what="LangGraph"))
        if _ok(raw_sqlite) and raw_sqlite["rate"] > 0:
            share = ratio(case, raw_sqlite)
            rows.append({
                "figure": f"… as a share of raw SQLite appends ({n:,} concurrent)", "value": f"**{share:.0%}**",
                "goal": f"≥ {GOAL_RAW_SHARE:.0%} of raw",
                "anchor": f"raw sqlite3, same rows, 2 txns/turn: {raw_sqlite['rate']:,.0f} turns/s",
                "met": share >= GOAL_RAW_SHARE, "ratio": round(share, 3),
            })  # fmt: skip
    what_if, real = r["sqlite"].get("leases_in_memory_1"), r["sqlite"].get("turns_1")
    if _ok(what_if) and _ok(real) and real["rate"] > 0:
        rows.append({
            "figure": "What-if: turns/s, SQLite, 1 concurrent, mailbox lease in memory (bench-only store subclass)",
            "value": _turns(what_if), "goal": "—",
            "anchor": f"{ratio(what_if, real):.2f}× the real store in the same rounds"
                      + (f"; {ratio(what_if, raw_sqlite):.0%} of raw" if _ok(raw_sqlite) else ""),
            "met": None,
        })  # fmt: skip
    for n in CONCURRENCY:
        case = r["postgres"].get(f"turns_{n}")
        figure = f"Turns/s, PostgreSQL, {n:,} concurrent"
        if not _ok(case):
            rows.append(_missing(figure, case, "—"))
            continue
        raw = r["raw"].get("postgres_1" if n == 1 else "postgres_100")
        peer = r["langgraph"].get(f"turns_{n}")
        anchors = []
        if _ok(raw) and raw["rate"] > 0:
            connections = min(1 if n == 1 else 100, RAW_PG_POOL)
            share = ratio(case, raw)
            anchors.append(f"raw asyncpg ({connections} conn.): {raw['rate']:,.0f} turns/s → {share:.0%}")
        if _ok(peer) and peer["rate"] > 0:
            anchors.append(f"{ratio(case, peer):.1f}× LangGraph")
        rows.append({"figure": figure, "value": _turns(case), "goal": "—", "anchor": "; ".join(anchors), "met": None})
    for backend in ("sqlite", "postgres"):
        load = r[backend].get("load")
        name = "SQLite" if backend == "sqlite" else "PostgreSQL"
        figure = f"Load of a {LOAD_EVENTS:,}-event interaction, {name}, cold conductor"
        if not _ok(load):
            rows.append(_missing(figure, load, f"≤ {GOAL_LOAD_MS:g} ms with a snapshot"))
            continue
        none = load["no_snapshot"]["median_ms"]
        for key, label in (("snapshot_at_tip", "snapshot at the tip"),
                           ("snapshot_behind", f"snapshot {SNAPSHOT_EVERY} events behind (worst case)")):  # fmt: skip
            ms = load[key]["median_ms"]
            rows.append({
                "figure": f"{figure}, {label}", "value": f"{ms:.2f} ms (median of {load[key]['loads']})",
                "goal": f"≤ {GOAL_LOAD_MS:g} ms", "anchor": f"without a snapshot: {none:.2f} ms",
                "met": ms <= GOAL_LOAD_MS,
            })  # fmt: skip
    memory = r.get("memory")
    figure = f"RSS growth, {IDLE_INTERACTIONS:,} idle interactions (SQLite)"
    if _ok(memory):
        rows.append({
            "figure": figure.replace(f"{IDLE_INTERACTIONS:,}", f"{memory['interactions']:,}"),
            "value": f"{memory['growth_mb']:.1f} MB ({memory['kb_per_interaction']:.1f} KB each)",
            "goal": f"≤ {GOAL_RSS_MB:g} MB",
            "anchor": f"{memory['rss_before_mb']:.0f} → {memory['rss_after_mb']:.0f} MB; opened at "
                      f"{memory['starts_per_s']:,.0f}/s",
            "met": memory["growth_mb"] <= GOAL_RSS_MB * memory["interactions"] / IDLE_INTERACTIONS,
        })  # fmt: skip
    else:
        rows.append(_missing(figure, memory, f"≤ {GOAL_RSS_MB:g} MB"))
    return rows


def ratio(a: dict[str, Any], b: dict[str, Any]) -> float:
    """a's rate over b's: the median of per-round ratios when both ran the same rounds (each pair measured
    back to back, under the same background load), else the ratio of their rates."""
    pairs = list(zip(a.get("rates", ()), b.get("rates", ()), strict=False))
    if len(pairs) > 1 and len(a["rates"]) == len(b["rates"]) and all(y > 0 for _, y in pairs):
        return float(statistics.median(x / y for x, y in pairs))
    return float(a["rate"] / b["rate"]) if b["rate"] > 0 else math.inf


def _turns(case: dict[str, Any]) -> str:
    return f"{case['rate']:,.0f}/s (p50 {case['p50_ms']:,.1f} ms, p99 {case['p99_ms']:,.1f} ms)"


def _missing(
    figure: str, case: dict[str, Any] | None, goal: str, value: str | None = None, what: str = ""
) -> dict[str, Any]:
    status = (case or {}).get("status", "not run")
    reason = (case or {}).get("reason", "")
    label = f"{what} {status}".strip()
    return {"figure": figure, "value": value or status, "goal": goal, "anchor": f"{label}: {reason}", "met": None}


def _case_label(name: str, key: str) -> str:
    kind, _, n = key.rpartition("_")
    detail = {"turns": "", "leases_in_memory": " with the lease in memory (what-if)", "sqlite": " sqlite3",
              "postgres": " asyncpg"}.get(kind, f" {kind}")  # fmt: skip
    return f"{name}{detail}, {int(n):,} concurrent"


def _settings(settings: dict[str, Any] | None) -> str:
    if not settings:
        return "settings unknown"
    sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(settings.get("synchronous"), settings.get("synchronous"))
    return f"journal_mode={settings.get('journal_mode')}, synchronous={sync}, like ours"


def _pressure(machine: dict[str, Any]) -> str:
    start, end = machine.get("pressure_avg60_at_start") or {}, machine.get("pressure_avg60_at_end") or {}
    if not start and not end:
        return "not available"
    return ", ".join(
        f"{name} {start.get(name, math.nan):.0f}% at the start, {end.get(name, math.nan):.0f}% at the end"
        for name in ("cpu", "io")
    )


def _met(met: bool | None) -> str:
    return "—" if met is None else ("yes" if met else "**no**")


def section(r: dict[str, Any]) -> str:
    m = r["machine"]
    pg = m.get("postgres") or {}
    date = r["date"][:10]
    postgres = (
        f"PostgreSQL {pg['server_version']} on the same machine (synchronous_commit={pg['synchronous_commit']}), "
        if pg
        else "PostgreSQL not reachable, "
    )
    lines = [
        SECTION,
        "",
        f"Measured {date} with `{r['command']}` in {r['total_s']:.0f} s, on this machine: {m['cpus']} cores, "
        f"Python {m['python']}, SQLite {m['sqlite']}, "
        + postgres
        + f"LangGraph {m['langgraph']} with langgraph-checkpoint-sqlite {m['langgraph-checkpoint-sqlite']}.",
        "",
        "How it measures:",
        "",
        "- Every concurrent interaction is an asyncio task doing one customer turn after another (`Conductor.handle` "
        "of a `CustomerSaid`, a trivial echo participant, no understanding), moving to a fresh interaction after "
        f"{TURNS_PER_INTERACTION} turns (interactions are opened beforehand, untimed).",
        f"- The cases with 1 and 100 run {r['settings']['repetitions']} times {r['settings']['duration_s']:g} s, "
        "taking turns round by round so that background load on this shared machine falls on all of them alike. "
        "A repetition's rate is its turns over its wall time (all workers start together and stop after the first "
        "turn ending past the deadline); turns/s is the median of the repetitions, and a ratio between two cases "
        "is the median of their per-round ratios. The 1,000 cases run once for "
        f"{r['settings']['duration_1000_s']:g} s (every worker doing at least one turn).",
        "- Latency runs from the line's arrival (its task becoming ready) to the reply, so queueing behind other "
        "interactions is in it; p50 and p99 pool all repetitions.",
        "- *Raw* appends the rows a turn writes (CustomerSaid, then ReplySent and TurnCompleted: two transactions, "
        "as the conductor commits them) with plain sqlite3 / asyncpg and no Tandem code: the database's limit.",
        "- The peer is a two-node LangGraph graph (understand → respond) on its SQLite checkpointer "
        f"({_settings(r['langgraph'].get('sqlite_settings'))}), one thread per interaction.",
        f"- Loads use a new `Conductor` each time (nothing cached; the store stays open), median of "
        f"{r['settings']['loads']}.",
        "- Memory is VmRSS of a fresh child process before and after opening the interactions through "
        "`Conductor.start` (each greeted, then idle).",
        f"- Machine pressure (share of the last minute spent waiting, Linux PSI): {_pressure(m)}.",
        "",
        "| figure | value | goal | anchor / peer | met? |",
        "|---|---|---|---|---|",
    ]
    for row in r["goals"]:
        lines.append(f"| {row['figure']} | {row['value']} | {row['goal']} | {row['anchor']} | {_met(row['met'])} |")
    lines += [
        "",
        "All throughput cases:",
        "",
        "| case | turns/s (median) | each repetition | p50 ms | p99 ms | turns |",
        "|---|---|---|---|---|---|",
    ]
    for group, name in (("sqlite", "Tandem, SQLite"), ("postgres", "Tandem, PostgreSQL"), ("langgraph", "LangGraph"),
                        ("raw", "raw")):  # fmt: skip
        for key, case in r[group].items():
            if key in ("load", "breakdown", "sqlite_settings"):
                continue
            label = _case_label(name, key)
            if _ok(case):
                lines.append(
                    f"| {label} | {case['rate']:,.0f} | {', '.join(f'{x:,.0f}' for x in case['rates'])} | "
                    f"{case['p50_ms']:,.2f} | "
                    f"{case['p99_ms']:,.2f} | {case['turns']:,} |"
                )
            else:
                lines.append(f"| {label} | {case.get('status')}: {case.get('reason', '')} | | | | |")
    breakdown = r["sqlite"].get("breakdown")
    if _ok(breakdown):
        lines += [
            "",
            f"Where a SQLite turn's time goes (one interaction at a time, {breakdown['turns']:,} turns, every "
            f"statement timed): {breakdown['ms_per_turn']:.3f} ms per turn, of which SQL "
            f"{breakdown['sql_ms_per_turn']:.3f} ms and Python {breakdown['python_ms_per_turn']:.3f} ms.",
            "",
            "| statement | per turn | ms per turn |",
            "|---|---|---|",
        ]
        for kind, s in breakdown["statements"].items():
            lines.append(f"| {kind} | {s['per_turn']:g} | {s['ms_per_turn']:.3f} |")
        if breakdown["lease_ms_per_turn"] > 0:
            share = breakdown["lease_ms_per_turn"] / breakdown["ms_per_turn"]
            lines += [
                "",
                f"The mailbox lease (an autocommit INSERT and DELETE, each a synchronous=FULL commit) costs "
                f"{breakdown['lease_ms_per_turn']:.3f} ms, {share:.0%} of a turn; the two commits of the turn's "
                f"events cost {breakdown['statements'].get('COMMIT', {}).get('ms_per_turn', math.nan):.3f} ms.",
            ]
    lines += ["", "Raw figures: `bench/out/core.json`.", ""]
    return "\n".join(lines)


def write_doc(r: dict[str, Any]) -> None:
    write_section(SECTION, section(r))


def show(r: dict[str, Any]) -> None:
    table = Table(title="Core (in process)", show_lines=False)
    for column in ("figure", "value", "goal", "anchor / peer", "met?"):
        table.add_column(column, overflow="fold")
    for row in r["goals"]:
        met = row["met"]
        mark = "—" if met is None else ("[green]yes[/green]" if met else "[red]no[/red]")
        table.add_row(row["figure"], row["value"].replace("**", ""), row["goal"], row["anchor"].replace("**", ""), mark)
    console.print(table)
    breakdown = r["sqlite"].get("breakdown")
    if _ok(breakdown):
        console.print(
            f"SQLite turn: {breakdown['ms_per_turn']:.3f} ms = SQL {breakdown['sql_ms_per_turn']:.3f} ms "
            f"(leases {breakdown['lease_ms_per_turn']:.3f} ms) + Python {breakdown['python_ms_per_turn']:.3f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.core", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per repetition (default 4)")
    parser.add_argument("--repetitions", type=int, default=3, help="repetitions of the 1 and 100 cases (default 3)")
    parser.add_argument("--loads", type=int, default=50, help="loads per load case (default 50)")
    parser.add_argument("--idle", type=int, default=IDLE_INTERACTIONS, help="idle interactions for the RSS case")
    parser.add_argument("--breakdown", type=int, default=3000, help="turns timed statement by statement")
    parser.add_argument("--quick", action="store_true", help="a short trial run; does not touch docs/benchmarks.md")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child is not None:
        print(json.dumps(asyncio.run(memory_child(args.memory_child, args.dir or Path(tempfile.mkdtemp())))))
        return
    if args.quick:
        args.duration, args.repetitions, args.loads, args.idle, args.breakdown = 1.0, 2, 5, 1000, 300
    results = asyncio.run(run(args))
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / ("core-quick.json" if args.quick else "core.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    show(results)
    if not args.quick:
        write_doc(results)
        console.print(f"Wrote {out.relative_to(ROOT)} and the section '{SECTION}' of {DOC.relative_to(ROOT)}.")
    else:
        console.print(f"Wrote {out.relative_to(ROOT)} (quick run: docs untouched).")


if __name__ == "__main__":
    main()
