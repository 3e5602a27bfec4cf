"""Stand-ins for sources the tests cannot reach or want to misbehave on purpose."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

import duckdb
import pyarrow as pa

from tandem.activation.sources import Row
from tandem.release.signals import PLACEHOLDER


class ScriptedSource:
    """Answers every query with fixed rows, counting calls; optionally waits first (bounded) or fails."""

    kind = "scripted"

    def __init__(
        self,
        name: str = "lakehouse",
        rows: list[Row] | None = None,
        *,
        delay_s: float = 0.0,
        error: Exception | None = None,
        barrier: asyncio.Barrier | None = None,
    ) -> None:
        self.name = name
        self.rows = rows or []
        self.delay_s = delay_s
        self.error = error
        self.barrier = barrier
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.closed = False

    async def query(self, sql: str, params: Mapping[str, Any], timeout_s: float) -> list[Row]:
        self.calls.append((sql, dict(params)))
        if self.barrier is not None:
            # Every query of the set must be in flight at once for this to pass: proof they run concurrently.
            await self.barrier.wait()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)  # a deliberately slow source, cancelled by the budget
        if self.error is not None:
            raise self.error
        return [dict(r) for r in self.rows]

    async def close(self) -> None:
        self.closed = True


class FakeWarehouseError(Exception):
    """What the connector raises (its DB-API errors are its own classes, not the standard library's)."""


class FakeCursor:
    """The connector's cursor as the adapter uses it: execute with native named parameters, Arrow out."""

    def __init__(self, warehouse: FakeWarehouse) -> None:
        self.warehouse = warehouse
        self._result: pa.Table | None = None
        self._cancelled = threading.Event()
        self.closed = False

    def execute(self, operation: str, parameters: Mapping[str, Any] | None = None) -> FakeCursor:
        params = dict(parameters or {})
        self.warehouse.statements.append((operation, params))
        if self.warehouse.hang:
            # A warehouse still starting up: only cancel() gets the caller out (bounded, never forever).
            if self._cancelled.wait(timeout=10):
                self.warehouse.cancelled += 1
                raise FakeWarehouseError("Query was cancelled")
            raise AssertionError("the adapter never cancelled a query past its budget")
        names = {m.group(1) for m in PLACEHOLDER.finditer(operation)}
        if names != set(params):
            raise FakeWarehouseError(f"parameters {sorted(params)} do not match markers {sorted(names)}")
        duck_sql = PLACEHOLDER.sub(lambda m: "$" + m.group(1), operation)
        cursor = self.warehouse.duck.cursor()
        try:
            self._result = cursor.sql(duck_sql, params=params).to_arrow_table()
        finally:
            cursor.close()
        return self

    def fetchall_arrow(self) -> pa.Table:
        assert self._result is not None, "fetch before execute"
        return self._result

    def cancel(self) -> None:
        self._cancelled.set()

    def close(self) -> None:
        self.closed = True


class FakeConnection:
    def __init__(self, warehouse: FakeWarehouse) -> None:
        self.warehouse = warehouse
        self.closed = False

    def cursor(self) -> FakeCursor:
        cursor = FakeCursor(self.warehouse)
        self.warehouse.cursors.append(cursor)
        return cursor

    def close(self) -> None:
        self.closed = True


class FakeWarehouse:
    """A Databricks SQL warehouse stand-in: runs the SQL it is sent on DuckDB over the same tables."""

    def __init__(self, duck: duckdb.DuckDBPyConnection, *, hang: bool = False) -> None:
        self.duck = duck
        self.hang = hang
        self.statements: list[tuple[str, dict[str, Any]]] = []
        self.connections: list[FakeConnection] = []
        self.cursors: list[FakeCursor] = []
        self.cancelled = 0

    def connect(self) -> FakeConnection:
        conn = FakeConnection(self)
        self.connections.append(conn)
        return conn
