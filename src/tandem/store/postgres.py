"""The event store at scale: PostgreSQL through asyncpg, shared by several stateless worker processes.

Same semantics as the SQLite store, with two things SQLite gets for free made explicit:

- several processes may write one interaction at once, so an append locks that interaction's row
  (``SELECT ... FOR UPDATE``) and checks the expected version under the lock;
- ``position`` must follow commit order store-wide, which a bare sequence does not give (see ``_insert``).

Customer keys are read in the same query as the rows they open, never cached, so an erasure made by one
process is honoured at once by every other.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime
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
CREATE SEQUENCE IF NOT EXISTS event_position;
CREATE TABLE IF NOT EXISTS events (
    position BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    interaction_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
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
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS one_open_interaction_per_customer
    ON interactions (tenant_id, customer_id) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS interactions_unhandled ON interactions (interaction_id)
    WHERE last_input_seq > handled_seq;
CREATE INDEX IF NOT EXISTS interactions_by_tenant ON interactions (tenant_id, interaction_id);
CREATE TABLE IF NOT EXISTS customer_keys (
    tenant_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    key BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, key_id)
);
CREATE INDEX IF NOT EXISTS customer_keys_by_customer ON customer_keys (tenant_id, customer_id);
CREATE TABLE IF NOT EXISTS snapshots (
    interaction_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (consumer TEXT PRIMARY KEY, position BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS leases (
    interaction_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS timers (
    timer_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    interaction_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    due_at TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS timers_due ON timers (due_at) WHERE status = 'scheduled';
"""

_EVENT_COLUMNS = (
    "position, event_id, tenant_id, interaction_id, seq, type, schema_version, occurred_at, recorded_at, "
    "actor, leg_id, causation_id, correlation_id, floor_epoch, data"
)
# Events joined with the key that opens them, read in one snapshot.
_EVENTS_WITH_KEYS = (
    "SELECT e.position, e.event_id, e.tenant_id, e.interaction_id, e.seq, e.type, e.schema_version,"
    " e.occurred_at, e.recorded_at, e.actor, e.leg_id, e.causation_id, e.correlation_id, e.floor_epoch,"
    " e.data, k.key FROM events e JOIN interactions i ON i.interaction_id = e.interaction_id"
    " LEFT JOIN customer_keys k ON k.tenant_id = i.tenant_id AND k.key_id = i.key_id"
)
_RECORD_COLUMNS = "interaction_id, tenant_id, customer_id, status, version, channel, floor_kind, created_at, updated_at"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _driver() -> Any:
    try:
        import asyncpg
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError("PostgresStore needs asyncpg: pip install tandem[postgres]") from exc
    return asyncpg


def _lock_key(schema: str, purpose: str) -> int:
    """A stable signed 64-bit advisory-lock key per schema, so isolated schemas never contend."""
    digest = hashlib.blake2b(f"tandem:{schema}:{purpose}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _record(row: Any) -> InteractionRecord:
    return InteractionRecord(
        interaction_id=row[0],
        tenant_id=row[1],
        customer_id=row[2],
        status=row[3],
        version=row[4],
        channel=row[5],
        floor_kind=row[6],
        created_at=_utc(row[7]).isoformat(),
        updated_at=_utc(row[8]).isoformat(),
    )


def _events(rows: Sequence[Any]) -> list[Event]:
    return [
        codec.build_event(
            position=r[0], event_id=r[1], tenant_id=r[2], interaction_id=r[3], seq=r[4], type=r[5],
            schema_version=r[6], occurred_at=r[7], recorded_at=r[8], actor=r[9], leg_id=r[10],
            causation_id=r[11], correlation_id=r[12], floor_epoch=r[13], data=r[14],
            key=None if r[15] is None else bytes(r[15]),
        )
        for r in rows
    ]  # fmt: skip


async def _open_interaction_of(db: Any, tenant_id: str, customer_id: str) -> str | None:
    found = await db.fetchval(
        "SELECT interaction_id FROM interactions WHERE tenant_id = $1 AND customer_id = $2 AND status = 'open'",
        tenant_id, customer_id,
    )  # fmt: skip
    return None if found is None else str(found)


class PostgresStore:
    """Construct with ``await PostgresStore.connect(dsn, schema=None)``."""

    def __init__(self, pool: Any, driver: Any, schema: str) -> None:
        self._pool = pool
        self._pg = driver
        self.schema = schema
        self._position_lock = _lock_key(schema, "positions")

    @classmethod
    async def connect(
        cls, dsn: str, schema: str | None = None, *, min_size: int = 1, max_size: int = 10
    ) -> PostgresStore:
        """Open a pool and create the tables if missing, in ``schema`` when given (tests isolate this way)."""
        pg = _driver()
        settings: dict[str, str] = {}
        if schema is not None:
            if not _IDENTIFIER.match(schema):
                raise ValueError(f"not a plain schema name: {schema!r}")
            settings["search_path"] = f'"{schema}"'
            conn = await pg.connect(dsn)
            try:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            except pg.UniqueViolationError:
                pass  # another process created it at the same moment
            finally:
                await conn.close()
        pool = await pg.create_pool(dsn, min_size=min_size, max_size=max_size, server_settings=settings)
        try:
            async with pool.acquire() as conn, conn.transaction():
                current = str(await conn.fetchval("SELECT current_schema()"))
                # Concurrent CREATE ... IF NOT EXISTS can still collide in the catalogue when several
                # workers start at once; one lock per schema makes table creation one at a time.
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(current, "schema"))
                await conn.execute(SCHEMA)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, pg, current)

    # -- writing ---------------------------------------------------------------------------------------
    async def create(
        self, tenant_id: str, interaction_id: str, customer_id: str, events: Sequence[PendingEvent]
    ) -> list[Event]:
        if not events or events[0].type != ev.INTERACTION_STARTED:
            raise ValueError("an interaction starts with InteractionStarted")
        first = events[0].data
        now = datetime.now(UTC)
        key = codec.new_key()
        async with self._pool.acquire() as conn:
            try:
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO interactions (interaction_id, tenant_id, customer_id, key_id, status, version,"
                        " channel, floor_kind, created_at, updated_at) VALUES ($1, $2, $3, $1, 'open', 0, $4, $5,"
                        " $6, $6)",
                        interaction_id, tenant_id, customer_id, first["channel"], first.get("floor", "bot"), now,
                    )  # fmt: skip
                    await conn.execute(
                        "INSERT INTO customer_keys (tenant_id, key_id, customer_id, key) VALUES ($1, $2, $3, $4)",
                        tenant_id, interaction_id, customer_id, key,
                    )  # fmt: skip
                    return await self._insert(conn, tenant_id, interaction_id, events, 0, key)
            except self._pg.UniqueViolationError as exc:
                if exc.constraint_name == "interactions_pkey":
                    raise StoreError(f"interaction {interaction_id} already exists") from None
                if exc.constraint_name != "one_open_interaction_per_customer":
                    raise
            existing = await _open_interaction_of(conn, tenant_id, customer_id)
            raise OpenInteractionExists(tenant_id, customer_id, existing or "?")

    async def append(
        self,
        tenant_id: str,
        interaction_id: str,
        events: Sequence[PendingEvent],
        expected_version: int | None,
    ) -> list[Event]:
        if not events:
            return []
        async with self._pool.acquire() as conn, conn.transaction():
            # The row lock orders writers of one interaction; the version check under it is the fence.
            row = await conn.fetchrow(
                "SELECT i.version, i.tenant_id, k.key FROM interactions i LEFT JOIN customer_keys k"
                " ON k.tenant_id = i.tenant_id AND k.key_id = i.key_id"
                " WHERE i.interaction_id = $1 FOR UPDATE OF i",
                interaction_id,
            )
            if row is None or row["tenant_id"] != tenant_id:
                raise InteractionNotFound(interaction_id)
            version = int(row["version"])
            if expected_version is not None and version != expected_version:
                raise VersionConflict(interaction_id, expected_version, version)
            key = None if row["key"] is None else bytes(row["key"])
            return await self._insert(conn, tenant_id, interaction_id, events, version, key)

    async def _insert(
        self,
        conn: Any,
        tenant_id: str,
        interaction_id: str,
        events: Sequence[PendingEvent],
        version: int,
        key: bytes | None,
    ) -> list[Event]:
        recorded = datetime.now(UTC)
        rows: list[tuple[Any, ...]] = []
        specs = []
        seq = version
        last_input = 0
        handled = 0
        for pending in events:
            spec = ev.validate(pending.type, pending.data)
            specs.append(spec)
            seq += 1
            await self._project(conn, tenant_id, interaction_id, pending)
            if spec.is_input:
                last_input = seq
            if pending.type == ev.TURN_COMPLETED:
                handled = max(handled, int(pending.data["input_seq"]))
            rows.append(
                (pending.event_id, tenant_id, interaction_id, seq, pending.type, spec.version,
                 _utc(pending.occurred_at), recorded, codec.encode_actor(pending.actor), pending.leg_id,
                 pending.causation_id, pending.correlation_id, pending.floor_epoch,
                 codec.encode_data(pending, key))
            )  # fmt: skip
        await conn.execute(
            "UPDATE interactions SET version = $1, updated_at = $2, last_input_seq = GREATEST(last_input_seq, $3),"
            " handled_seq = GREATEST(handled_seq, $4) WHERE interaction_id = $5",
            seq, recorded, last_input, handled, interaction_id,
        )  # fmt: skip
        # A sequence hands out numbers when asked, not when the transaction commits: if A takes 10 and B
        # takes 11 and B commits first, a consumer can read 11, save checkpoint 11 and never see 10. So the
        # numbers are taken under one lock per store, held until commit: the next writer takes its numbers
        # only after this transaction is visible, and positions grow in commit order. It is taken last,
        # after every other write of this transaction, so it is held only for the insert and the commit,
        # and a holder never waits on another lock (no deadlock).
        await conn.execute("SELECT pg_advisory_xact_lock($1)", self._position_lock)
        positions = sorted(
            await conn.fetchval("SELECT array_agg(nextval('event_position')) FROM generate_series(1, $1)", len(rows))
        )
        await conn.executemany(
            f"INSERT INTO events ({_EVENT_COLUMNS})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            [(position, *row) for position, row in zip(positions, rows, strict=True)],
        )
        return [
            Event(
                event_id=pending.event_id,
                tenant_id=tenant_id,
                interaction_id=interaction_id,
                seq=row[3],
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
            for pending, spec, row, position in zip(events, specs, rows, positions, strict=True)
        ]

    async def _project(self, conn: Any, tenant_id: str, interaction_id: str, pending: PendingEvent) -> None:
        """Inline projections the store itself needs to enforce its rules, kept in the same transaction."""
        d = pending.data
        if pending.type == ev.INTERACTION_CLOSED:
            await conn.execute("UPDATE interactions SET status = 'closed' WHERE interaction_id = $1", interaction_id)
        elif pending.type == ev.FLOOR_MOVED:
            await conn.execute(
                "UPDATE interactions SET floor_kind = $1 WHERE interaction_id = $2", d["kind"], interaction_id
            )
        elif pending.type == ev.CUSTOMER_IDENTIFIED:
            await conn.execute(
                "UPDATE customer_keys SET customer_id = $1 WHERE tenant_id = $2 AND key_id ="
                " (SELECT key_id FROM interactions WHERE interaction_id = $3)",
                d["customer_id"], tenant_id, interaction_id,
            )  # fmt: skip
            # The interaction takes the customer's identity unless another open one already holds it; then
            # the link stays in the event and the keys. A savepoint, because another process may take the
            # identity between our check and our update, and the unique index then says no.
            try:
                async with conn.transaction():
                    await conn.execute(
                        "UPDATE interactions SET customer_id = $1 WHERE interaction_id = $2 AND NOT EXISTS"
                        " (SELECT 1 FROM interactions WHERE tenant_id = $3 AND customer_id = $1"
                        " AND status = 'open' AND interaction_id != $2)",
                        d["customer_id"], interaction_id, tenant_id,
                    )  # fmt: skip
            except self._pg.UniqueViolationError:
                pass
        elif pending.type == ev.TIMER_SCHEDULED:
            try:
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO timers (timer_id, tenant_id, interaction_id, kind, due_at, status)"
                        " VALUES ($1, $2, $3, $4, $5, 'scheduled')",
                        d["timer_id"], tenant_id, interaction_id, d["kind"],
                        _utc(datetime.fromisoformat(d["due_at"])),
                    )  # fmt: skip
            except self._pg.UniqueViolationError:
                raise DuplicateInput(f"timer {d['timer_id']} is already scheduled") from None
        elif pending.type in (ev.TIMER_FIRED, ev.TIMER_CANCELLED):
            status = "fired" if pending.type == ev.TIMER_FIRED else "cancelled"
            # Under a concurrent firing this waits for the other's row lock, then re-reads the status.
            done = await conn.fetchval(
                "UPDATE timers SET status = $1 WHERE timer_id = $2 AND status = 'scheduled' RETURNING timer_id",
                status, d["timer_id"],
            )  # fmt: skip
            if done is None:
                raise DuplicateInput(f"timer {d['timer_id']} is no longer scheduled")

    # -- reading ---------------------------------------------------------------------------------------
    async def read(self, interaction_id: str, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        rows = await self._pool.fetch(
            f"{_EVENTS_WITH_KEYS} WHERE e.interaction_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3",
            interaction_id, after_seq, limit,
        )  # fmt: skip
        return _events(rows)

    async def read_all(self, after_position: int = 0, limit: int = 500) -> list[Event]:
        rows = await self._pool.fetch(
            f"{_EVENTS_WITH_KEYS} WHERE e.position > $1 ORDER BY e.position LIMIT $2", after_position, limit
        )
        return _events(rows)

    async def record(self, interaction_id: str) -> InteractionRecord:
        row = await self._pool.fetchrow(
            f"SELECT {_RECORD_COLUMNS} FROM interactions WHERE interaction_id = $1", interaction_id
        )
        if row is None:
            raise InteractionNotFound(interaction_id)
        return _record(row)

    async def open_interaction_of(self, tenant_id: str, customer_id: str) -> str | None:
        return await _open_interaction_of(self._pool, tenant_id, customer_id)

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
        sql = f"SELECT {_RECORD_COLUMNS} FROM interactions WHERE tenant_id = $1"
        args: list[Any] = [tenant_id]
        for column, value in (("status", status), ("customer_id", customer_id), ("floor_kind", floor_kind)):
            if value is not None:
                args.append(value)
                sql += f" AND {column} = ${len(args)}"
        if after is not None:
            args.append(after)
            sql += f" AND interaction_id > ${len(args)}"
        args.append(limit)
        sql += f" ORDER BY interaction_id LIMIT ${len(args)}"
        return [_record(r) for r in await self._pool.fetch(sql, *args)]

    # -- snapshots -------------------------------------------------------------------------------------
    async def _key(self, conn: Any, interaction_id: str) -> bytes | None:
        row = await conn.fetchrow(
            "SELECT k.key FROM interactions i LEFT JOIN customer_keys k"
            " ON k.tenant_id = i.tenant_id AND k.key_id = i.key_id WHERE i.interaction_id = $1",
            interaction_id,
        )
        if row is None:
            raise InteractionNotFound(interaction_id)
        return None if row["key"] is None else bytes(row["key"])

    async def save_snapshot(self, interaction_id: str, version: int, state: dict[str, Any]) -> None:
        async with self._pool.acquire() as conn:
            sealed = codec.seal_snapshot(await self._key(conn, interaction_id), interaction_id, state)
            if sealed is None:
                return
            await conn.execute(
                "INSERT INTO snapshots (interaction_id, version, state) VALUES ($1, $2, $3)"
                " ON CONFLICT (interaction_id) DO UPDATE SET version = excluded.version, state = excluded.state"
                " WHERE excluded.version > snapshots.version",
                interaction_id, version, sealed,
            )  # fmt: skip

    async def load_snapshot(self, interaction_id: str) -> tuple[int, dict[str, Any]] | None:
        row = await self._pool.fetchrow(
            "SELECT s.version, s.state, k.key FROM snapshots s JOIN interactions i ON i.interaction_id ="
            " s.interaction_id LEFT JOIN customer_keys k ON k.tenant_id = i.tenant_id AND k.key_id = i.key_id"
            " WHERE s.interaction_id = $1",
            interaction_id,
        )
        if row is None:
            return None
        key = None if row["key"] is None else bytes(row["key"])
        state = codec.unseal_snapshot(key, interaction_id, row["state"])
        return None if state is None else (int(row["version"]), state)

    # -- consumers, leases, timers, recovery -----------------------------------------------------------
    async def checkpoint(self, consumer: str) -> int:
        position = await self._pool.fetchval("SELECT position FROM checkpoints WHERE consumer = $1", consumer)
        return 0 if position is None else int(position)

    async def save_checkpoint(self, consumer: str, position: int) -> None:
        await self._pool.execute(
            "INSERT INTO checkpoints (consumer, position) VALUES ($1, $2)"
            " ON CONFLICT (consumer) DO UPDATE SET position = excluded.position",
            consumer, position,
        )  # fmt: skip

    async def acquire_lease(self, interaction_id: str, owner: str, ttl_s: float) -> bool:
        # Expiry is measured on the database's clock, the one clock every worker shares.
        granted = await self._pool.fetchval(
            "INSERT INTO leases (interaction_id, owner, expires)"
            " VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3)) ON CONFLICT (interaction_id)"
            " DO UPDATE SET owner = excluded.owner, expires = excluded.expires"
            " WHERE leases.owner = excluded.owner OR leases.expires < clock_timestamp() RETURNING owner",
            interaction_id, owner, float(ttl_s),
        )  # fmt: skip
        return granted is not None

    async def release_lease(self, interaction_id: str, owner: str) -> None:
        await self._pool.execute("DELETE FROM leases WHERE interaction_id = $1 AND owner = $2", interaction_id, owner)

    async def due_timers(self, now: datetime, limit: int = 100) -> list[DueTimer]:
        rows = await self._pool.fetch(
            "SELECT timer_id, tenant_id, interaction_id, kind, due_at FROM timers"
            " WHERE status = 'scheduled' AND due_at <= $1 ORDER BY due_at LIMIT $2",
            _utc(now), limit,
        )  # fmt: skip
        return [DueTimer(r[0], r[1], r[2], r[3], _utc(r[4])) for r in rows]

    async def unhandled(self, limit: int = 100) -> list[tuple[str, str]]:
        rows = await self._pool.fetch(
            "SELECT tenant_id, interaction_id FROM interactions WHERE last_input_seq > handled_seq LIMIT $1", limit
        )
        return [(r[0], r[1]) for r in rows]

    async def erase_customer(self, tenant_id: str, customer_id: str) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            key_ids = await conn.fetch(
                "DELETE FROM customer_keys WHERE tenant_id = $1 AND customer_id = $2 RETURNING key_id",
                tenant_id, customer_id,
            )  # fmt: skip
            await conn.execute(
                "DELETE FROM snapshots WHERE interaction_id IN"
                " (SELECT interaction_id FROM interactions WHERE tenant_id = $1 AND key_id = ANY($2::text[]))",
                tenant_id, [r[0] for r in key_ids],
            )  # fmt: skip
        return len(key_ids)

    async def close(self) -> None:
        await self._pool.close()
