"""Where the events live: a data directory (SQLite, the default) or a PostgreSQL URL."""

from __future__ import annotations

from pathlib import Path

from tandem.store.protocol import EventStore
from tandem.store.sqlite import SqliteStore


async def open_store(location: str | Path) -> EventStore:
    text = str(location)
    if text.startswith(("postgres://", "postgresql://")):
        from tandem.store.postgres import PostgresStore

        return await PostgresStore.connect(text)
    return SqliteStore(Path(text) / "tandem.db")
