"""A Databricks SQL warehouse as a signal source, through ``databricks-sql-connector`` (the [databricks] extra).

    warehouse:
      kind: databricks
      server_hostname_env: DATABRICKS_SERVER_HOSTNAME   # adb-1234567890123456.7.azuredatabricks.net
      http_path_env: DATABRICKS_HTTP_PATH                # /sql/1.0/warehouses/abcdef1234567890
      token_env: DATABRICKS_TOKEN                        # a personal access token or service principal's
      catalog: main                                      # optional
      schema: harbor_bank                                # optional
      workers: 4                                         # optional: connections, one per thread

The connector is blocking, so each query runs on a thread with a connection of its own. Queries keep their
``:key`` and ``:today``: those are the connector's native named parameters (sent to the warehouse as typed
parameters, never spliced into the SQL). Rows come back as Arrow (``fetchall_arrow``). A query past its
budget is cancelled with ``cursor.cancel()``. The connector's own errors reach the activator as they are,
which records the signal as failed and lets the conversation go on.

The connector is imported when a source opens, through ``connect``: the seam tests use to put a stand-in in
its place (this workplace cannot reach a warehouse).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from tandem.activation.sources import Row, SourceError
from tandem.release.signals import PLACEHOLDER


class Cursor(Protocol):
    """The part of the connector's DB-API cursor the adapter uses."""

    def execute(self, operation: str, parameters: Mapping[str, Any] | None = None) -> Any: ...

    def fetchall_arrow(self) -> Any: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


class Connection(Protocol):
    def cursor(self) -> Cursor: ...

    def close(self) -> None: ...


Connect = Callable[[], Connection]


def connector_connect(options: Mapping[str, Any], name: str) -> Connect:
    """``databricks.sql.connect`` bound to the options (credentials read from the environment)."""
    try:
        sql = importlib.import_module("databricks.sql")
    except ImportError as exc:
        raise SourceError(
            f"source {name}: Databricks sources need databricks-sql-connector: pip install 'tandem[databricks]'"
        ) from exc

    def setting(key: str) -> str | None:
        if options.get(key):
            return str(options[key])
        env = options.get(f"{key}_env")
        return os.environ.get(str(env)) if env else None

    hostname, http_path, token = setting("server_hostname"), setting("http_path"), setting("token")
    if not hostname or not http_path or not token:
        raise SourceError(
            f"source {name}: needs server_hostname, http_path and token (or *_env naming environment variables)"
        )
    extra = {k: str(options[k]) for k in ("catalog", "schema") if options.get(k)}

    def connect() -> Connection:
        conn: Connection = sql.connect(server_hostname=hostname, http_path=http_path, access_token=token, **extra)
        return conn

    return connect


class _Job:
    __slots__ = ("cancelled", "cursor", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cursor: Cursor | None = None
        self.cancelled = False

    def cancel(self) -> None:
        with self.lock:
            self.cancelled = True
            if self.cursor is not None:
                self.cursor.cancel()


class DatabricksSource:
    kind = "databricks"

    def __init__(self, name: str, connect: Connect, *, workers: int = 4) -> None:
        self.name = name
        self._connect = connect
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=f"databricks-{name}")
        self._connections: queue.SimpleQueue[Connection] = queue.SimpleQueue()

    @classmethod
    async def open(cls, name: str, options: Mapping[str, Any], connect: Connect | None = None) -> DatabricksSource:
        known = {"catalog", "schema", "workers"} | {
            f"{k}{s}" for k in ("server_hostname", "http_path", "token") for s in ("", "_env")
        }
        unknown = set(options) - known
        if unknown:
            raise SourceError(f"source {name}: unknown options {sorted(unknown)}")
        return cls(name, connect or connector_connect(options, name), workers=int(options.get("workers", 4)))

    async def query(self, sql: str, params: Mapping[str, Any], timeout_s: float) -> list[Row]:
        used = {m.group(1) for m in PLACEHOLDER.finditer(sql)}
        values = {k: v for k, v in params.items() if k in used}
        job = _Job()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, self._run, job, sql, values)
        except asyncio.CancelledError:
            job.cancel()
            raise

    def _run(self, job: _Job, sql: str, params: Mapping[str, Any]) -> list[Row]:
        with job.lock:
            if job.cancelled:
                return []
        try:
            conn = self._connections.get_nowait()
        except queue.Empty:
            conn = self._connect()
        cursor = conn.cursor()
        with job.lock:
            job.cursor = cursor
        try:
            cursor.execute(sql, dict(params))
            rows: list[Row] = cursor.fetchall_arrow().to_pylist()
            return rows
        finally:
            with job.lock:
                job.cursor = None
            cursor.close()
            self._connections.put(conn)

    async def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        while True:
            try:
                self._connections.get_nowait().close()
            except queue.Empty:
                break
