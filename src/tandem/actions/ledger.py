"""The effect ledger, for MCP servers that Tandem calls: every effect once per idempotency key, and visible.

A server keeps its domain tables and the ledger in one SQLite file. ``EffectLedger.apply`` runs the effect
and records it under the caller's idempotency key in the same transaction, so an effect and its ledger entry
exist together or not at all; a second call with the same key replays the first result instead of acting
again. ``lookup`` is the reconcile query (has the effect with this key happened?), and ``entries`` is how
anyone counts effects.

Fault points for tests with real processes: ``TANDEM_MCP_FAULTS="tool:point,..."`` makes the server
``crash_before_commit``, ``crash_after_commit`` (the effect is durable, the answer never leaves) or
``hang_after_commit`` (the caller times out) the first time the tool runs; each fault fires once per ledger
file, remembered in the file itself so a restarted server does not fire it again.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError

IDEMPOTENCY_META_KEY = "tandem/idempotency_key"
EFFECT_META_KEY = "tandem/effect"
FAULTS_ENV = "TANDEM_MCP_FAULTS"
FAULT_POINTS = frozenset({"crash_before_commit", "crash_after_commit", "hang_after_commit"})

SCHEMA = """
CREATE TABLE IF NOT EXISTS effects (
    seq INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    tool TEXT NOT NULL,
    args TEXT NOT NULL,
    result TEXT NOT NULL,
    status TEXT NOT NULL,
    compensated_by TEXT,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS faults_fired (tool TEXT NOT NULL, point TEXT NOT NULL, PRIMARY KEY (tool, point));
CREATE TABLE IF NOT EXISTS seeded (source TEXT PRIMARY KEY, at TEXT NOT NULL);
"""


class EffectRefused(ToolError):
    """The effect cannot be done (a business rule): nothing was written, the caller may tell the customer. A
    tool that raises it answers with an error result carrying the reason, as the MCP SDK does any ToolError."""


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    idempotency_key: str
    tool: str
    args: dict[str, Any]
    result: dict[str, Any]
    status: str  # applied, compensated
    compensated_by: str | None
    at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "idempotency_key": self.idempotency_key,
            "tool": self.tool,
            "args": self.args,
            "result": self.result,
            "status": self.status,
            "compensated_by": self.compensated_by,
            "at": self.at,
        }


Effect = Callable[[sqlite3.Connection], dict[str, Any]]


class EffectLedger:
    def __init__(self, path: str | Path, faults: str | None = None) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a crash of the process (what the fault tests do), not a power cut.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.executescript(SCHEMA)
        self._faults = _parse_faults(os.environ.get(FAULTS_ENV, "") if faults is None else faults)

    # -- seeding ---------------------------------------------------------------------------------------
    def seed_once(self, source: str, seed: Callable[[sqlite3.Connection], None]) -> bool:
        """Run ``seed`` in one transaction unless this file was already seeded from ``source``."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("SELECT 1 FROM seeded WHERE source = ?", (source,)).fetchone():
                db.execute("ROLLBACK")
                return False
            seed(db)
            db.execute("INSERT INTO seeded (source, at) VALUES (?, ?)", (source, _now()))
            db.execute("COMMIT")
            return True
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    # -- effects ---------------------------------------------------------------------------------------
    async def apply(self, key: str | None, tool: str, args: Mapping[str, Any], effect: Effect) -> dict[str, Any]:
        """Do ``effect`` once for ``key``: the first call commits the effect and its entry together; any
        later call with the key returns the recorded result, marked ``replayed``."""
        key = key or f"keyless:{os.urandom(8).hex()}"
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT result FROM effects WHERE idempotency_key = ?", (key,)).fetchone()
            if row is not None:
                db.execute("ROLLBACK")
                return {**json.loads(row[0]), "replayed": True}
            result = effect(db)
            db.execute(
                _INSERT,
                (key, tool, json.dumps(dict(args), sort_keys=True, default=str), json.dumps(result, default=str),
                 _now()),
            )  # fmt: skip
            self._fault(tool, "crash_before_commit")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._fault(tool, "crash_after_commit")
        if self._armed(tool, "hang_after_commit"):
            self._fired(tool, "hang_after_commit")
            await asyncio.Event().wait()  # the caller's timeout is what ends this call
        return {**result, "replayed": False}

    def compensate(
        self, original_key: str, key: str | None, tool: str, undo: Callable[[sqlite3.Connection, Entry], dict[str, Any]]
    ) -> dict[str, Any]:
        """Undo the effect recorded under ``original_key`` once; the undo is itself an effect under ``key``."""
        key = key or f"{original_key}:compensate"
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT result FROM effects WHERE idempotency_key = ?", (key,)).fetchone()
            if row is not None:
                db.execute("ROLLBACK")
                return {**json.loads(row[0]), "replayed": True}
            original = self._entry(db, original_key)
            if original is None:
                raise EffectRefused(f"no effect with key {original_key}")
            if original.status == "compensated":
                raise EffectRefused(f"the effect {original_key} was already compensated by {original.compensated_by}")
            result = undo(db, original)
            db.execute(
                "UPDATE effects SET status = 'compensated', compensated_by = ? WHERE idempotency_key = ?",
                (key, original_key),
            )
            db.execute(
                _INSERT,
                (key, tool, json.dumps({"original_key": original_key}), json.dumps(result, default=str), _now()),
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return {**result, "replayed": False}

    def lookup(self, key: str) -> Entry | None:
        return self._entry(self.db, key)

    @staticmethod
    def _entry(db: sqlite3.Connection, key: str) -> Entry | None:
        row = db.execute(f"SELECT {_COLUMNS} FROM effects WHERE idempotency_key = ?", (key,)).fetchone()
        return None if row is None else _row(row)

    def entries(self, tool: str | None = None) -> list[Entry]:
        sql = f"SELECT {_COLUMNS} FROM effects"
        args: tuple[Any, ...] = ()
        if tool is not None:
            sql += " WHERE tool = ?"
            args = (tool,)
        return [_row(r) for r in self.db.execute(sql + " ORDER BY seq", args).fetchall()]

    def close(self) -> None:
        self.db.close()

    # -- faults ----------------------------------------------------------------------------------------
    def _armed(self, tool: str, point: str) -> bool:
        if (tool, point) not in self._faults:
            return False
        return (
            self.db.execute("SELECT 1 FROM faults_fired WHERE tool = ? AND point = ?", (tool, point)).fetchone() is None
        )

    def _fired(self, tool: str, point: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO faults_fired (tool, point) VALUES (?, ?)", (tool, point))

    def _fault(self, tool: str, point: str) -> None:
        if not self._armed(tool, point):
            return
        if point == "crash_before_commit":
            # Remember the fault outside the transaction that is about to die with the process.
            marker = sqlite3.connect(self.path, isolation_level=None)
            marker.execute("PRAGMA busy_timeout=10000")
            self.db.execute("ROLLBACK")
            marker.execute("INSERT OR IGNORE INTO faults_fired (tool, point) VALUES (?, ?)", (tool, point))
            marker.close()
        else:
            self._fired(tool, point)
        os._exit(70)


def idempotency_key(meta: Mapping[str, Any] | None) -> str | None:
    """The idempotency key Tandem passes in a call's ``_meta``."""
    value = (meta or {}).get(IDEMPOTENCY_META_KEY)
    return str(value) if value else None


def call_key(ctx: Any) -> str | None:
    """The idempotency key of the call a tool serves (an SDK ``Context``); None when called in process."""
    try:
        meta = ctx.request_context.meta
    except ValueError:  # the SDK's way of saying there is no request: a direct call, keyless
        return None
    return idempotency_key(meta)


def effect_meta(*, reconcile: str = "effect", compensate: str | None = None) -> dict[str, Any]:
    """The declaration an effect tool carries in its ``_meta``: idempotent by the key in ``_meta``, how to
    reconcile (look the key up) and how to compensate. Tandem pins it with the tool's schema."""
    declared: dict[str, Any] = {"idempotent": True, "key": IDEMPOTENCY_META_KEY, "reconcile": reconcile}
    if compensate is not None:
        declared["compensate"] = compensate
    return {EFFECT_META_KEY: declared}


def add_ledger_tools(server: Any, ledger: EffectLedger) -> None:
    """Register ``effect`` (the reconcile lookup) and ``ledger`` (every effect, for people and tests) on an
    ``MCPServer``."""

    async def effect(idempotency_key: str) -> dict[str, Any]:
        """Look up the effect done under an idempotency key: whether it happened, and its result."""
        entry = ledger.lookup(idempotency_key)
        return {"found": entry is not None, "entry": entry.to_dict() if entry else None}

    async def ledger_entries(tool: str | None = None) -> dict[str, Any]:
        """Every effect this server has done, in order, optionally for one tool."""
        return {"entries": [e.to_dict() for e in ledger.entries(tool)]}

    server.add_tool(effect, name="effect")
    server.add_tool(ledger_entries, name="ledger")


_INSERT = "INSERT INTO effects (idempotency_key, tool, args, result, status, at) VALUES (?, ?, ?, ?, 'applied', ?)"
_COLUMNS = "seq, idempotency_key, tool, args, result, status, compensated_by, at"


def _row(r: Any) -> Entry:
    return Entry(int(r[0]), r[1], r[2], json.loads(r[3]), json.loads(r[4]), r[5], r[6], r[7])


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _parse_faults(raw: str) -> frozenset[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for item in raw.split(","):
        if not item.strip():
            continue
        tool, _, point = item.strip().partition(":")
        if point not in FAULT_POINTS:
            raise ValueError(f"{FAULTS_ENV}: unknown fault point {point!r}; use {', '.join(sorted(FAULT_POINTS))}")
        out.add((tool, point))
    return frozenset(out)
