"""The kill switch: revoke a tool at once, for every interaction, whatever release it is pinned to.

Revocations live in a small SQLite file beside the event store, so every process of a deployment (the API,
the action worker, the CLI) sees a revocation on its next decision. Reading is one ``PRAGMA data_version``
per decision; the table is read again only after another connection changed it.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS revocations (
    tenant_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    reason TEXT NOT NULL,
    revoked_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, tool)
);
"""


class Revocations:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._seen_version = -1
        self._revoked: dict[tuple[str, str], str] = {}

    def revoke(self, tenant_id: str, tool: str, reason: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO revocations (tenant_id, tool, reason, revoked_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (tenant_id, tool)"
                " DO UPDATE SET reason = excluded.reason, revoked_at = excluded.revoked_at",
                (tenant_id, tool, reason, datetime.now(UTC).isoformat()),
            )
            self._seen_version = -1  # our own writes do not move data_version for this connection

    def restore(self, tenant_id: str, tool: str) -> bool:
        with self._lock:
            cursor = self._db.execute("DELETE FROM revocations WHERE tenant_id = ? AND tool = ?", (tenant_id, tool))
            self._seen_version = -1
            return cursor.rowcount > 0

    def revoked(self, tenant_id: str, tool: str) -> str | None:
        """The reason the tool is revoked for the tenant, or None."""
        with self._lock:
            version = int(self._db.execute("PRAGMA data_version").fetchone()[0])
            if version != self._seen_version:
                rows = self._db.execute("SELECT tenant_id, tool, reason FROM revocations").fetchall()
                self._revoked = {(r[0], r[1]): r[2] for r in rows}
                self._seen_version = version
            return self._revoked.get((tenant_id, tool))

    def all(self) -> dict[tuple[str, str], str]:
        self.revoked("", "")
        with self._lock:
            return dict(self._revoked)

    def close(self) -> None:
        self._db.close()
