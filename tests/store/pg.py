"""The PostgreSQL the tests use: one fresh schema per test, dropped afterwards.

An unreachable server fails the test with a message, never skips it: CI starts PostgreSQL, and a silently
skipped store test is a store nobody tested.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import uuid4

import asyncpg
import pytest

DSN = os.environ.get("TANDEM_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


async def _connect() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(DSN, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
    pytest.fail(
        f"PostgreSQL is not reachable at {DSN} ({reason}). Start it, or point TANDEM_TEST_PG_DSN at a server"
        " where these tests may create and drop schemas.",
        pytrace=False,
    )


@asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    """A new, empty schema name (created by the store on connect), dropped when the test ends."""
    conn = await _connect()
    await conn.close()
    name = f"test_{uuid4().hex[:16]}"
    try:
        yield name
    finally:
        conn = await _connect()
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        finally:
            await conn.close()
