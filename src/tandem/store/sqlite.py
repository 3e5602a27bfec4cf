"""The embedded event store: one SQLite file, WAL, synchronous=FULL, one process.

Calls are synchronous under the hood and never await inside a transaction, so within one event loop each
append is atomic with respect to every other; the database file is the durability boundary.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tandem.case import events as ev
from tandem.case.envelope import Event, PendingEvent
from tandem.store import codec
from tandem.store.protocol import (
    DueTimer,
    DuplicateInput,
    InteractionNotFound,
    InteractionRecord,
    OpenInteractionExists,
    StoreError,
    VersionConflict,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    interaction_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    occurred_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    leg_id TEXT,
    causation_id TEXT,
    correlation_id TEXT,
    floor_epoch INTEGER NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (interaction_id, seq)
);
CREATE TABLE IF NOT EXISTS interactions (
    interaction_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    channel TEXT NOT NULL,
    floor_kind TEXT NOT NULL,
    last_input_seq INTEGER NOT NULL DEFAULT 0,
    handled_seq INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS one_open_interaction_per_customer
    ON interactions (tenant_id, customer_id) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS interactions_unhandled ON interactions (status, last_input_seq, handled_seq);
CREATE TABLE IF NOT EXISTS customer_keys (
    tenant_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    key BLOB NOT NULL,
    PRIMARY KEY (tenant_id, key_id)
);
CREATE INDEX IF NOT EXISTS customer_keys_by_customer ON customer_keys (tenant_id, customer_id);
CREATE TABLE IF NOT EXISTS snapshots (
    interaction_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (consumer TEXT PRIMARY KEY, position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS timers (
    timer_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    interaction_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    due_at TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS timers_due ON timers (status, due_at);
"""

_EVENT_COLUMNS = (
    "position, event_id, tenant_id, interaction_id, seq, type, schema_version, occurred_at, recorded_at, "
    "actor, leg_id, causation_id, correlation_id, floor_epoch, data"
)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class SqliteStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged input survives power loss, not just a process crash.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        self._keys: dict[tuple[str, str], bytes | None] = {}
        self._key_of_interaction: dict[str, tuple[str, str]] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._pending: list[tuple[str, str, list[PendingEvent], int | None, asyncio.Future[list[Event]]]] = []
        self._flush_scheduled = False

    # -- keys ------------------------------------------------------------------------------------------
    def _interaction_key(self, interaction_id: str) -> bytes | None:
        ref = self._key_of_interaction.get(interaction_id)
        if ref is None:
            row = self._db.execute(
                "SELECT tenant_id, key_id FROM interactions WHERE interaction_id = ?", (interaction_id,)
            ).fetchone()
            if row is None:
                raise InteractionNotFound(interaction_id)
            ref = (row[0], row[1])
            self._key_of_interaction[interaction_id] = ref
        if ref not in self._keys:
            row = self._db.execute("SELECT key FROM customer_keys WHERE tenant_id = ? AND key_id = ?", ref).fetchone()
            self._keys[ref] = bytes(row[0]) if row else None
        return self._keys[ref]

    # -- writing ---------------------------------------------------------------------------------------
    async def create(
        self, tenant_id: str, interaction_id: str, customer_id: str, events: Sequence[PendingEvent]
    ) -> list[Event]:
        if not events or events[0].type != ev.INTERACTION_STARTED:
            raise ValueError("an interaction starts with InteractionStarted")
        now = _iso(datetime.now(UTC))
        first = events[0].data
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            try:
                db.execute(
                    "INSERT INTO interactions (interaction_id, tenant_id, customer_id, key_id, status, version,"
                    " channel, floor_kind, created_at, updated_at) VALUES (?, ?, ?, ?, 'open', 0, ?, ?, ?, ?)",
                    (interaction_id, tenant_id, customer_id, interaction_id, first["channel"],
                     first.get("floor", "bot"), now, now),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                db.execute("ROLLBACK")
                existing = await self.open_interaction_of(tenant_id, customer_id)
                if existing is None:
                    raise StoreError(f"interaction {interaction_id} already exists") from None
                raise OpenInteractionExists(tenant_id, customer_id, existing) from None
            key = codec.new_key()
            db.execute(
                "INSERT INTO customer_keys (tenant_id, key_id, customer_id, key) VALUES (?, ?, ?, ?)",
                (tenant_id, interaction_id, customer_id, key),
            )
            self._keys[(tenant_id, interaction_id)] = key
            self._key_of_interaction[interaction_id] = (tenant_id, interaction_id)
            committed = self._insert(tenant_id, interaction_id, events, 0, key)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return committed

    async def append(
        self,
        tenant_id: str,
        interaction_id: str,
        events: Sequence[PendingEvent],
        expected_version: int | None,
    ) -> list[Event]:
        """Appends that arrive in the same turn of the event loop are committed together: one transaction
        and one flush to disk for all of them (group commit), each still checked against its own expected
        version inside a savepoint, and none acknowledged before the commit."""
        if not events:
            return []
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[Event]] = loop.create_future()
        self._pending.append((tenant_id, interaction_id, list(events), expected_version, done))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await done

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._pending = self._pending, []
        db = self._db
        outcomes: list[tuple[asyncio.Future[list[Event]], list[Event] | BaseException]] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for tenant_id, interaction_id, events, expected_version, done in batch:
                db.execute("SAVEPOINT one_append")
                try:
                    outcome: list[Event] | BaseException = self._append_one(
                        tenant_id, interaction_id, events, expected_version
                    )
                except (StoreError, ValueError, sqlite3.IntegrityError) as exc:
                    db.execute("ROLLBACK TO one_append")
                    outcome = exc
                db.execute("RELEASE one_append")
                outcomes.append((done, outcome))
            db.execute("COMMIT")
        except BaseException as exc:  # the whole batch failed to commit: every waiter learns why
            if db.in_transaction:
                db.execute("ROLLBACK")
            for *_, done in batch:
                if not done.done():
                    done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for done, outcome in outcomes:
            if done.done():
                continue
            if isinstance(outcome, BaseException):
                done.set_exception(outcome)
            else:
                done.set_result(outcome)

    def _append_one(
        self, tenant_id: str, interaction_id: str, events: Sequence[PendingEvent], expected_version: int | None
    ) -> list[Event]:
        row = self._db.execute(
            "SELECT version, tenant_id FROM interactions WHERE interaction_id = ?", (interaction_id,)
        ).fetchone()
        if row is None or row[1] != tenant_id:
            raise InteractionNotFound(interaction_id)
        version = int(row[0])
        if expected_version is not None and version != expected_version:
            raise VersionConflict(interaction_id, expected_version, version)
        return self._insert(tenant_id, interaction_id, events, version, self._interaction_key(interaction_id))

    def _insert(
        self,
        tenant_id: str,
        interaction_id: str,
        events: Sequence[PendingEvent],
        version: int,
        key: bytes | None,
    ) -> list[Event]:
        db = self._db
        recorded = datetime.now(UTC)
        recorded_iso = _iso(recorded)
        out: list[Event] = []
        seq = version
        last_input = 0
        handled = 0
        for pending in events:
            spec = ev.validate(pending.type, pending.data)
            seq += 1
            data = codec.encode_data(pending, key)
            actor = codec.encode_actor(pending.actor)
            cursor = db.execute(
                f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (pending.event_id, tenant_id, interaction_id, seq, pending.type, spec.version,
                 _iso(pending.occurred_at), recorded_iso, actor, pending.leg_id, pending.causation_id,
                 pending.correlation_id, pending.floor_epoch, data),
            )  # fmt: skip
            position = int(cursor.lastrowid or 0)
            self._project(tenant_id, interaction_id, pending)
            if spec.is_input:
                last_input = seq
            if pending.type == ev.TURN_COMPLETED:
                handled = max(handled, int(pending.data["input_seq"]))
            out.append(
                Event(
                    event_id=pending.event_id,
                    tenant_id=tenant_id,
                    interaction_id=interaction_id,
                    seq=seq,
                    position=position,
                    type=pending.type,
                    schema_version=spec.version,
                    occurred_at=pending.occurred_at,
                    recorded_at=recorded,
                    actor=pending.actor,
                    leg_id=pending.leg_id,
                    causation_id=pending.causation_id,
                    correlation_id=pending.correlation_id,
                    floor_epoch=pending.floor_epoch,
                    data=dict(pending.data),
                )
            )
        db.execute(
            "UPDATE interactions SET version = ?, updated_at = ?,"
            " last_input_seq = MAX(last_input_seq, ?), handled_seq = MAX(handled_seq, ?)"
            " WHERE interaction_id = ?",
            (seq, recorded_iso, last_input, handled, interaction_id),
        )
        return out

    def _project(self, tenant_id: str, interaction_id: str, pending: PendingEvent) -> None:
        """Inline projections the store itself needs to enforce its rules, kept in the same transaction."""
        d = pending.data
        db = self._db
        if pending.type == ev.INTERACTION_CLOSED:
            db.execute("UPDATE interactions SET status = 'closed' WHERE interaction_id = ?", (interaction_id,))
        elif pending.type == ev.FLOOR_MOVED:
            db.execute("UPDATE interactions SET floor_kind = ? WHERE interaction_id = ?", (d["kind"], interaction_id))
        elif pending.type == ev.CUSTOMER_IDENTIFIED:
            db.execute(
                "UPDATE customer_keys SET customer_id = ? WHERE tenant_id = ? AND key_id = "
                "(SELECT key_id FROM interactions WHERE interaction_id = ?)",
                (d["customer_id"], tenant_id, interaction_id),
            )
            # The interaction takes the customer's identity unless another open one already holds it;
            # then the link stays in the event and the keys, and this one keeps its provisional id.
            db.execute(
                "UPDATE interactions SET customer_id = ? WHERE interaction_id = ? AND NOT EXISTS "
                "(SELECT 1 FROM interactions WHERE tenant_id = ? AND customer_id = ? AND status = 'open'"
                " AND interaction_id != ?)",
                (d["customer_id"], interaction_id, tenant_id, d["customer_id"], interaction_id),
            )
        elif pending.type == ev.TIMER_SCHEDULED:
            if db.execute("SELECT 1 FROM timers WHERE timer_id = ?", (d["timer_id"],)).fetchone():
                raise DuplicateInput(f"timer {d['timer_id']} is already scheduled")
            db.execute(
                "INSERT INTO timers (timer_id, tenant_id, interaction_id, kind, due_at, status)"
                " VALUES (?, ?, ?, ?, ?, 'scheduled')",
                (
                    d["timer_id"],
                    tenant_id,
                    interaction_id,
                    d["kind"],
                    _iso(datetime.fromisoformat(d["due_at"])),
                ),
            )
        elif pending.type in (ev.TIMER_FIRED, ev.TIMER_CANCELLED):
            status = "fired" if pending.type == ev.TIMER_FIRED else "cancelled"
            cursor = db.execute(
                "UPDATE timers SET status = ? WHERE timer_id = ? AND status = 'scheduled'",
                (status, d["timer_id"]),
            )
            if cursor.rowcount == 0:
                raise DuplicateInput(f"timer {d['timer_id']} is no longer scheduled")

    # -- reading ---------------------------------------------------------------------------------------
    def _events(self, rows: list[Any]) -> list[Event]:
        out = []
        for r in rows:
            out.append(
                codec.build_event(
                    position=r[0], event_id=r[1], tenant_id=r[2], interaction_id=r[3], seq=r[4], type=r[5],
                    schema_version=r[6], occurred_at=r[7], recorded_at=r[8], actor=r[9], leg_id=r[10],
                    causation_id=r[11], correlation_id=r[12], floor_epoch=r[13], data=r[14],
                    key=self._interaction_key(r[3]),
                )
            )  # fmt: skip
        return out

    async def read(self, interaction_id: str, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        rows = self._db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE interaction_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (interaction_id, after_seq, -1 if limit is None else limit),
        ).fetchall()
        return self._events(rows)

    async def read_all(self, after_position: int = 0, limit: int = 500) -> list[Event]:
        rows = self._db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?",
            (after_position, limit),
        ).fetchall()
        return self._events(rows)

    def _record(self, row: Any) -> InteractionRecord:
        return InteractionRecord(*row)

    _RECORD_COLUMNS = (
        "interaction_id, tenant_id, customer_id, status, version, channel, floor_kind, created_at, updated_at"
    )

    async def record(self, interaction_id: str) -> InteractionRecord:
        row = self._db.execute(
            f"SELECT {self._RECORD_COLUMNS} FROM interactions WHERE interaction_id = ?", (interaction_id,)
        ).fetchone()
        if row is None:
            raise InteractionNotFound(interaction_id)
        return self._record(row)

    async def open_interaction_of(self, tenant_id: str, customer_id: str) -> str | None:
        row = self._db.execute(
            "SELECT interaction_id FROM interactions WHERE tenant_id = ? AND customer_id = ? AND status = 'open'",
            (tenant_id, customer_id),
        ).fetchone()
        return str(row[0]) if row else None

    async def search(
        self,
        tenant_id: str,
        *,
        status: str | None = None,
        customer_id: str | None = None,
        floor_kind: str | None = None,
        limit: int = 50,
        after: str | None = None,
    ) -> list[InteractionRecord]:
        sql = f"SELECT {self._RECORD_COLUMNS} FROM interactions WHERE tenant_id = ?"
        args: list[Any] = [tenant_id]
        for column, value in (("status", status), ("customer_id", customer_id), ("floor_kind", floor_kind)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        if after is not None:
            sql += " AND interaction_id > ?"
            args.append(after)
        sql += " ORDER BY interaction_id LIMIT ?"
        args.append(limit)
        return [self._record(r) for r in self._db.execute(sql, args).fetchall()]

    # -- snapshots -------------------------------------------------------------------------------------
    async def save_snapshot(self, interaction_id: str, version: int, state: dict[str, Any]) -> None:
        sealed = codec.seal_snapshot(self._interaction_key(interaction_id), interaction_id, state)
        if sealed is None:
            return
        self._db.execute(
            "INSERT INTO snapshots (interaction_id, version, state) VALUES (?, ?, ?) ON CONFLICT (interaction_id)"
            " DO UPDATE SET version = excluded.version, state = excluded.state WHERE excluded.version > version",
            (interaction_id, version, sealed),
        )

    async def load_snapshot(self, interaction_id: str) -> tuple[int, dict[str, Any]] | None:
        row = self._db.execute(
            "SELECT version, state FROM snapshots WHERE interaction_id = ?", (interaction_id,)
        ).fetchone()
        if row is None:
            return None
        state = codec.unseal_snapshot(self._interaction_key(interaction_id), interaction_id, row[1])
        return None if state is None else (int(row[0]), state)

    # -- consumers, leases, timers, recovery -----------------------------------------------------------
    async def checkpoint(self, consumer: str) -> int:
        row = self._db.execute("SELECT position FROM checkpoints WHERE consumer = ?", (consumer,)).fetchone()
        return int(row[0]) if row else 0

    async def save_checkpoint(self, consumer: str, position: int) -> None:
        self._db.execute(
            "INSERT INTO checkpoints (consumer, position) VALUES (?, ?)"
            " ON CONFLICT (consumer) DO UPDATE SET position = excluded.position",
            (consumer, position),
        )

    async def acquire_lease(self, interaction_id: str, owner: str, ttl_s: float) -> bool:
        # One process owns an SQLite store, so its leases live in memory: two durable writes fewer per
        # turn, and after a crash nothing stale is left to wait out. The expected version stays the fence.
        now = time.monotonic()
        held = self._leases.get(interaction_id)
        if held is not None and held[0] != owner and held[1] > now:
            return False
        self._leases[interaction_id] = (owner, now + ttl_s)
        return True

    async def release_lease(self, interaction_id: str, owner: str) -> None:
        held = self._leases.get(interaction_id)
        if held is not None and held[0] == owner:
            del self._leases[interaction_id]

    async def due_timers(self, now: datetime, limit: int = 100) -> list[DueTimer]:
        rows = self._db.execute(
            "SELECT timer_id, tenant_id, interaction_id, kind, due_at FROM timers"
            " WHERE status = 'scheduled' AND due_at <= ? ORDER BY due_at LIMIT ?",
            (_iso(now), limit),
        ).fetchall()
        return [DueTimer(r[0], r[1], r[2], r[3], datetime.fromisoformat(r[4])) for r in rows]

    async def unhandled(self, limit: int = 100) -> list[tuple[str, str]]:
        rows = self._db.execute(
            "SELECT tenant_id, interaction_id FROM interactions WHERE last_input_seq > handled_seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    async def erase_customer(self, tenant_id: str, customer_id: str) -> int:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            key_ids = [
                r[0]
                for r in db.execute(
                    "SELECT key_id FROM customer_keys WHERE tenant_id = ? AND customer_id = ?",
                    (tenant_id, customer_id),
                ).fetchall()
            ]
            db.execute("DELETE FROM customer_keys WHERE tenant_id = ? AND customer_id = ?", (tenant_id, customer_id))
            for key_id in key_ids:
                db.execute(
                    "DELETE FROM snapshots WHERE interaction_id IN"
                    " (SELECT interaction_id FROM interactions WHERE tenant_id = ? AND key_id = ?)",
                    (tenant_id, key_id),
                )
                self._keys[(tenant_id, key_id)] = None
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return len(key_ids)

    async def close(self) -> None:
        self._db.close()
