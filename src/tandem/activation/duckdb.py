"""DuckDB over the lakehouse: Parquet files as views, Delta tables read with ``deltalake``, or a DuckDB file.

The source spec names the tables::

    lakehouse:
      kind: duckdb
      database: bank/lakehouse.duckdb              # optional: a DuckDB file (attached read-only); a table
                                                   # also declared under `tables` is read from there instead
      tables:
        card_transactions: {parquet: bank/card_transactions.parquet}   # a file or a glob
        holds: {delta: bank/holds.delta}                                 # read at open, through deltalake

DuckDB's extensions are never installed or loaded (they download at run time): Parquet is built in, and a Delta
table is read by the ``deltalake`` package into Arrow, then copied into DuckDB's memory when the source opens.
That copy is a snapshot; it lags the table the way a lakehouse lags its systems of record.

Queries run on a small thread pool, one DuckDB cursor per thread, one DuckDB thread per query: point lookups
gain nothing from intra-query parallelism, and concurrent interactions are the parallelism that matters.
A query past its budget is interrupted, so a slow lookup does not keep a thread busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb

from tandem.activation.sources import Row, SourceError, named_placeholders
from tandem.release.signals import PLACEHOLDER


class _Job:
    """One query on its way through the pool; lets the event loop interrupt exactly that query."""

    __slots__ = ("cancelled", "cursor", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cursor: duckdb.DuckDBPyConnection | None = None
        self.cancelled = False

    def cancel(self) -> None:
        with self.lock:
            self.cancelled = True
            if self.cursor is not None:
                self.cursor.interrupt()


class DuckDBSource:
    kind = "duckdb"

    def __init__(self, name: str, con: duckdb.DuckDBPyConnection, *, workers: int | None = None) -> None:
        self.name = name
        self._con = con
        self._workers = workers or min(8, 2 * (os.cpu_count() or 2))
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix=f"duckdb-{name}")
        self._cursors: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()
        self.tables: dict[str, str] = {}  # table -> where it comes from, for `signals list` and errors

    # -- opening ---------------------------------------------------------------------------------------
    @classmethod
    async def open(cls, name: str, options: Mapping[str, Any], data_dir: Path) -> DuckDBSource:
        return await asyncio.to_thread(cls.connect, name, options, data_dir)

    @classmethod
    def connect(
        cls, name: str, options: Mapping[str, Any], data_dir: Path, *, workers: int | None = None
    ) -> DuckDBSource:
        unknown = set(options) - {"database", "tables", "workers"}
        if unknown:
            raise SourceError(f"source {name}: unknown options {sorted(unknown)}; use database, tables, workers")
        con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
        con.execute("SET threads = 1")
        # Parse each Parquet footer once, not on every lookup (the files are immutable while the source is open).
        _setting(con, "SET parquet_metadata_cache = true")
        # A lookup's ORDER BY ... LIMIT would otherwise scan its row group twice (top-N, then fetch by row id):
        # late materialization pays off for wide scans, never for a point lookup of a few rows.
        _setting(con, "SET late_materialization_max_rows = 0")
        source = cls(name, con, workers=workers or options.get("workers"))
        try:
            declared = options.get("tables") or {}
            if options.get("database"):
                source._attach(_resolve(data_dir, str(options["database"]), name), skip=set(declared))
            for table, spec in declared.items():
                source._register(str(table), spec, data_dir)
        except (duckdb.Error, OSError) as exc:
            con.close()
            raise SourceError(f"source {name}: {exc}") from exc
        return source

    def _attach(self, path: Path, skip: set[str]) -> None:
        self._con.execute(f"ATTACH '{_quote(path)}' AS lake (READ_ONLY)")
        for (table,) in self._con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake'"
        ).fetchall():
            if table in skip:  # a table declared under `tables` wins over the file's copy
                continue
            self._con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM lake."{table}"')
            self.tables[table] = f"duckdb:{path}"

    def _register(self, table: str, spec: Any, data_dir: Path) -> None:
        if table in self.tables:
            raise SourceError(f"source {self.name}: table {table} is declared twice")
        if not isinstance(spec, Mapping) or len(spec) != 1 or next(iter(spec)) not in ("parquet", "delta"):
            raise SourceError(f"source {self.name}: table {table} needs {{parquet: PATH}} or {{delta: PATH}}")
        kind, raw = next(iter(spec.items()))
        if kind == "parquet":
            pattern = data_dir / str(raw) if not Path(str(raw)).is_absolute() else Path(str(raw))
            if not any(pattern.parent.glob(pattern.name)):
                raise SourceError(f"source {self.name}: no Parquet file at {pattern} (run `tandem data generate`?)")
            self._con.execute(f"CREATE VIEW \"{table}\" AS SELECT * FROM read_parquet('{_quote(pattern)}')")
        else:
            path = _resolve(data_dir, str(raw), self.name)
            arrow = _read_delta(path)
            self._con.register("_delta_snapshot", arrow)
            try:
                self._con.execute(f'CREATE TABLE "{table}" AS SELECT * FROM _delta_snapshot')
            finally:
                self._con.unregister("_delta_snapshot")
        self.tables[table] = f"{kind}:{raw}"

    # -- querying --------------------------------------------------------------------------------------
    async def query(self, sql: str, params: Mapping[str, Any], timeout_s: float) -> list[Row]:
        used = {m.group(1) for m in PLACEHOLDER.finditer(sql)}
        text = named_placeholders(sql, "dollar")
        values = {k: v for k, v in params.items() if k in used}
        job = _Job()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, self._run, job, text, values)
        except asyncio.CancelledError:
            job.cancel()
            raise

    def _run(self, job: _Job, sql: str, params: Mapping[str, Any]) -> list[Row]:
        try:
            cursor = self._cursors.get_nowait()
        except queue.Empty:
            cursor = self._con.cursor()
        with job.lock:
            if job.cancelled:
                self._cursors.put(cursor)
                return []
            job.cursor = cursor
        try:
            cursor.execute(sql, dict(params))
            names = [d[0] for d in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        except duckdb.Error as exc:
            raise SourceError(f"source {self.name}: {exc}") from exc
        finally:
            with job.lock:
                job.cursor = None
            self._cursors.put(cursor)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new DuckDB cursor over the same tables, for plain SQL outside the signal path (the benchmark's
        naive scan, test stand-ins). The caller closes it."""
        return self._con.cursor()

    async def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        while True:
            try:
                self._cursors.get_nowait().close()
            except queue.Empty:
                break
        self._con.close()


def _setting(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    with contextlib.suppress(duckdb.CatalogException):  # a DuckDB without the setting: lookups work, slower
        con.execute(sql)


def _read_delta(path: Path) -> Any:
    try:
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError
    except ImportError as exc:  # the [delta] extra
        raise SourceError("reading Delta tables needs the deltalake package: pip install 'tandem[delta]'") from exc
    try:
        return DeltaTable(str(path)).to_pyarrow_table()
    except (DeltaError, OSError) as exc:
        raise SourceError(f"cannot read the Delta table at {path}: {exc}") from exc


def _resolve(data_dir: Path, raw: str, source: str) -> Path:
    path = Path(raw) if Path(raw).is_absolute() else data_dir / raw
    if not path.exists():
        raise SourceError(f"source {source}: nothing at {path} (run `tandem data generate --out {data_dir}`?)")
    return path


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")
