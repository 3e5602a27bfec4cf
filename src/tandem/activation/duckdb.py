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
That copy is a snapshot; it lags the table the way a lakehouse lags its systems of record. Lookups never read
the Delta table itself (loading it costs far more than the lookup): instead, at most every ``delta_refresh``
(default 10 s) a query starts a check of the table's version off the lookup path, and a new version replaces
the snapshot (``refresh()`` checks at once).

Queries run on a thread pool sized to the cores (``workers``), one DuckDB cursor per thread, one DuckDB thread
per query: point lookups gain nothing from intra-query parallelism, DuckDB releases the GIL while it works, and
concurrent interactions are the parallelism that matters; more threads than cores only share the same CPU.
Lookups queue while every thread is busy, and a free thread answers the queued lookups of one query together,
in one statement (``batch.py``; ``batch: false`` turns it off). A lookup whose caller gave up (its budget ran
out) leaves the queue; a statement all of whose lookups gave up is interrupted, so it does not keep a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from tandem.activation.batch import (
    UNION_MAX,
    Form,
    FormChoice,
    OrderLost,
    SortKey,
    batch_params,
    batch_size,
    lateral_sql,
    ordered_at_top,
    sort_rows,
    top_order,
    union_sql,
)
from tandem.activation.sources import Row, SourceError, named_placeholders
from tandem.release.signals import MANY_PLACEHOLDER, PLACEHOLDER, ReleaseError, parse_duration

log = logging.getLogger(__name__)
DELTA_REFRESH_S = 10.0
TEXT_CACHE = 1024  # distinct queries whose DuckDB text is kept


@dataclass
class _DeltaTable:
    """A Delta table copied into DuckDB: where it is and which version the copy holds."""

    path: Path
    version: int


class _Lookup:
    """One ``query`` waiting for its rows: queued, then answered by a statement alone or in a batch."""

    __slots__ = ("cancelled", "future", "key", "loop", "running")

    def __init__(self, key: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.key = key
        self.loop = loop
        self.future: asyncio.Future[list[Row]] = loop.create_future()
        self.cancelled = False  # its caller gave up (budget): it is dropped from the queue or not waited for
        self.running: _Statement | None = None

    def settle(self, rows: list[Row] | None, error: BaseException | None = None) -> None:
        _settle([(self, rows)], error)

    def resolve(self, rows: list[Row] | None, error: BaseException | None) -> None:
        """On its event loop: hand the caller its rows or the error, unless it stopped waiting."""
        if not self.future.done():
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(rows or [])


def _settle(answered: list[tuple[_Lookup, list[Row] | None]], error: BaseException | None = None) -> None:
    """Answer a statement's lookups with one wake-up of each event loop they wait on, not one per lookup: a
    wake-up is a write to the loop's pipe and a turn of the loop, and a batch answers up to 64 lookups."""
    by_loop: dict[int, list[tuple[_Lookup, list[Row] | None]]] = {}
    for lookup, rows in answered:
        by_loop.setdefault(id(lookup.loop), []).append((lookup, rows))
    for group in by_loop.values():

        def resolve(group: list[tuple[_Lookup, list[Row] | None]] = group) -> None:
            for lookup, rows in group:
                lookup.resolve(rows, error)

        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting any more
            group[0][0].loop.call_soon_threadsafe(resolve)


class _Statement:
    """One statement on a worker thread and the lookups it answers; interrupted once all of them gave up."""

    __slots__ = ("cursor", "cut_off", "form", "lock", "lookups", "shared", "text")

    def __init__(self, text: str, shared: dict[str, Any], lookups: list[_Lookup], form: Form) -> None:
        self.text = text
        self.form = form
        self.shared = shared
        self.lookups = lookups
        self.lock = threading.Lock()
        self.cursor: duckdb.DuckDBPyConnection | None = None
        self.cut_off = False  # interrupted because a lateral trial ran past its cap, not because nobody waits

    def interrupt(self) -> None:
        with self.lock:
            if self.cursor is not None:
                self.cursor.interrupt()

    def cut(self) -> None:
        with self.lock:
            if self.cursor is not None:
                self.cut_off = True
                self.cursor.interrupt()


class _TrialWatch:
    """Cuts a lateral trial off once the thread running it has used ``cap_ms`` of CPU. CPU, not wall time: on a
    busy machine the wait for a core is not the statement's cost, and would cut off a form that is cheaper."""

    def __init__(self, statement: _Statement, cap_ms: float) -> None:
        self._statement = statement
        self._cap_s = cap_ms / 1000
        clock = getattr(time, "pthread_getcpuclockid", None)  # Linux and most Unixes; elsewhere wall time
        self._clock = clock(threading.get_ident()) if clock is not None else time.CLOCK_MONOTONIC
        self._started = time.clock_gettime(self._clock)
        self._done = threading.Event()
        threading.Thread(target=self._watch, name="duckdb-trial", daemon=True).start()

    def _watch(self) -> None:
        remaining = self._cap_s
        while not self._done.wait(remaining):
            used = time.clock_gettime(self._clock) - self._started
            if used >= self._cap_s:
                self._statement.cut()
                return
            remaining = self._cap_s - used

    def stop(self) -> None:
        self._done.set()


class DuckDBSource:
    kind = "duckdb"

    def __init__(
        self,
        name: str,
        con: duckdb.DuckDBPyConnection,
        *,
        workers: int | None = None,
        delta_refresh_s: float = DELTA_REFRESH_S,
        batch: bool = True,
    ) -> None:
        self.name = name
        self._con = con
        self._con_lock = threading.Lock()  # the parent connection hands out cursors from several threads
        self._workers = workers or os.cpu_count() or 2
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix=f"duckdb-{name}")
        self._cursors: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()
        self.tables: dict[str, str] = {}  # table -> where it comes from, for `signals list` and errors
        self._delta: dict[str, _DeltaTable] = {}
        self._delta_refresh_s = delta_refresh_s
        self._delta_checked = time.monotonic()
        self._delta_check: asyncio.Task[list[str]] | None = None
        self._batch = batch
        self._lock = threading.Lock()  # the queue, the busy count and the lookups' state
        self._queue: OrderedDict[tuple[Any, ...], list[_Lookup]] = OrderedDict()  # oldest query first
        self._busy = 0  # workers draining the queue
        self._closed = False
        self._forms: dict[str, FormChoice] = {}
        self._texts: dict[str, tuple[str, frozenset[str]]] = {}  # a signal's SQL -> DuckDB's text, names used
        self._many: dict[str, str] = {}  # a signal's DuckDB text -> its own statement for many keys (DuckDB's)
        self._search_path: str | None = None  # where a cursor finds tables: set when a DuckDB file is attached
        self.lookups = 0  # lookups taken to run, and the statements that answered them (the benchmark shows both)
        self.statements = 0

    @property
    def workers(self) -> int:
        return self._workers

    # -- opening ---------------------------------------------------------------------------------------
    @classmethod
    async def open(cls, name: str, options: Mapping[str, Any], data_dir: Path) -> DuckDBSource:
        return await asyncio.to_thread(cls.connect, name, options, data_dir)

    @classmethod
    def connect(
        cls, name: str, options: Mapping[str, Any], data_dir: Path, *, workers: int | None = None
    ) -> DuckDBSource:
        unknown = set(options) - {"database", "tables", "workers", "delta_refresh", "batch"}
        if unknown:
            raise SourceError(
                f"source {name}: unknown options {sorted(unknown)}; use database, tables, workers, delta_refresh, batch"
            )
        if not isinstance(options.get("batch", True), bool):
            raise SourceError(f"source {name}: batch is true or false, not {options['batch']!r}")
        refresh_s = DELTA_REFRESH_S
        if "delta_refresh" in options:
            try:
                refresh_s = parse_duration(options["delta_refresh"], f"source {name}: delta_refresh").total_seconds()
            except ReleaseError as exc:
                raise SourceError(str(exc)) from exc
        con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
        con.execute("SET threads = 1")
        # Parse each Parquet footer once, not on every lookup (the files are immutable while the source is open).
        _setting(con, "SET parquet_metadata_cache = true")
        # A lookup's ORDER BY ... LIMIT would otherwise scan its row group twice (top-N, then fetch by row id):
        # late materialization pays off for wide scans, never for a point lookup of a few rows. DuckDB 2 ignores
        # the row limit for it, so the optimizer itself is switched off (10-25% of a recent-declines lookup).
        _setting(con, "SET late_materialization_max_rows = 0")
        _setting(con, "SET disabled_optimizers = 'late_materialization'")
        source = cls(
            name,
            con,
            workers=workers or options.get("workers"),
            delta_refresh_s=refresh_s,
            batch=bool(options.get("batch", True)),
        )
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
            self.tables[table] = f"duckdb:{path}"
        # The file's tables are found by name through the search path, after the source's own (declared tables
        # come first, so they win). Not through views: DuckDB binds a view's query again in every statement,
        # 10-20% of a lookup's CPU (docs/activation.md).
        (memory,) = self._con.execute("SELECT current_database()").fetchall()[0]
        self._search_path = f"{_identifier(str(memory))}.main,lake.main"

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
            version, arrow = _read_delta(path)
            self._load_snapshot(self._con, table, arrow)
            self._delta[table] = _DeltaTable(path, version)
        self.tables[table] = f"{kind}:{raw}"

    @staticmethod
    def _load_snapshot(con: duckdb.DuckDBPyConnection, table: str, arrow: Any) -> None:
        # One statement: queries running meanwhile keep reading the old copy (DuckDB's MVCC), later ones the new.
        con.register("_delta_snapshot", arrow)
        try:
            con.execute(f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM _delta_snapshot')
        finally:
            con.unregister("_delta_snapshot")

    # -- Delta snapshots -------------------------------------------------------------------------------
    async def refresh(self) -> list[str]:
        """Check every Delta table's version now and replace the snapshots that are behind; the tables
        replaced. A table that cannot be read keeps its snapshot (logged): the lakehouse lags, lookups go on."""
        if self._delta_check is not None and not self._delta_check.done():
            await asyncio.shield(self._delta_check)  # one check at a time; then look again, it may predate a write
        self._delta_checked = time.monotonic()
        return await asyncio.to_thread(self._refresh)

    def _refresh(self) -> list[str]:
        replaced = []
        with self._con_lock:
            con = self._con.cursor()
        try:
            for table, delta in self._delta.items():
                try:
                    latest = _delta_version(delta.path)
                    if latest == delta.version:
                        continue
                    version, arrow = _read_delta(delta.path)
                    self._load_snapshot(con, table, arrow)
                except (SourceError, duckdb.Error) as exc:
                    log.warning("source %s: Delta table %s keeps version %s: %s", self.name, table, delta.version, exc)
                    continue
                log.info(
                    "source %s: Delta table %s now at version %s (was %s)", self.name, table, version, delta.version
                )
                delta.version = version
                replaced.append(table)
        finally:
            con.close()
        return replaced

    def delta_versions(self) -> dict[str, int]:
        """The version of each Delta table's snapshot (what lookups read now)."""
        return {table: delta.version for table, delta in self._delta.items()}

    def _maybe_refresh(self) -> None:
        """Start a background version check when the last one is ``delta_refresh`` old; never waits for it."""
        if not self._delta or time.monotonic() - self._delta_checked < self._delta_refresh_s:
            return
        if self._delta_check is not None and not self._delta_check.done():
            return
        self._delta_checked = time.monotonic()
        self._delta_check = asyncio.ensure_future(asyncio.to_thread(self._refresh))

    # -- querying --------------------------------------------------------------------------------------
    async def query(self, sql: str, params: Mapping[str, Any], timeout_s: float) -> list[Row]:
        text, used = self._text(sql)
        values = {k: v for k, v in params.items() if k in used}
        self._maybe_refresh()
        lookup = _Lookup(values.pop("key", None), asyncio.get_running_loop())
        # Lookups of the same query with the same other parameters may share a statement (see batch.py); a
        # query without :key, or with batching off, is a group of its own.
        shared = tuple(sorted(values.items()))
        group: tuple[Any, ...] = (text, shared) if self._batch and "key" in used else (text, shared, id(lookup))
        with self._lock:
            if self._closed:
                raise SourceError(f"source {self.name} is closed")
            self._queue.setdefault(group, []).append(lookup)
            start = self._busy < self._workers
            if start:
                self._busy += 1
        if start:
            self._pool.submit(self._drain)
        try:
            return await lookup.future
        except asyncio.CancelledError:
            self._give_up(lookup)
            raise

    def _text(self, sql: str) -> tuple[str, frozenset[str]]:
        """The query as DuckDB takes it and the parameters it uses, worked out once per query: this runs on the
        event loop for every lookup, and the loop's time is what answers budgets on time when many wait."""
        known = self._texts.get(sql)
        if known is None:
            if len(self._texts) >= TEXT_CACHE:  # ad hoc queries (operators, tests) must not grow it forever
                self._texts.clear()
            used = frozenset(m.group(1) for m in PLACEHOLDER.finditer(sql))
            known = self._texts[sql] = (named_placeholders(sql, "dollar"), used)
        return known

    def add_many_form(self, query: str, many: str) -> None:
        """Answer batches of ``query`` with ``many``, a signal's own statement for many keys (``query_many``)."""
        text, _ = self._text(query)
        self._many[text] = MANY_PLACEHOLDER.sub(lambda m: "$" + m.group(1), many)

    def uses_many_form(self, query: str) -> bool:
        """Whether batches of ``query`` are answered by its own statement for many keys (not dropped after a
        failure)."""
        return self._text(query)[0] in self._many

    def _give_up(self, lookup: _Lookup) -> None:
        with self._lock:
            lookup.cancelled = True
            running = lookup.running
            abandoned = running is not None and all(other.cancelled for other in running.lookups)
        if abandoned and running is not None:  # nobody waits for this statement: free its thread now
            running.interrupt()

    def _drain(self) -> None:
        """A worker: run the oldest queued query's lookups (as one statement) until the queue is empty."""
        try:
            cursor = self._cursors.get_nowait()
        except queue.Empty:
            cursor = self._new_cursor()
        try:
            while True:
                with self._lock:  # emptiness and leaving are decided together: no lookup is left unserved
                    statement = self._take(cursor)
                    if statement is None:
                        self._busy -= 1
                        return
                self._execute(cursor, statement)
        finally:
            self._cursors.put(cursor)

    def _take(self, cursor: duckdb.DuckDBPyConnection) -> _Statement | None:
        while self._queue:
            group, lookups = next(iter(self._queue.items()))
            del self._queue[group]
            waiting = [lookup for lookup in lookups if not lookup.cancelled]
            if not waiting:
                continue
            form: Form = "union"
            if len(waiting) > 1:
                form = "many" if group[0] in self._many else self._form(group[0], cursor).next(len(waiting))
            size = batch_size(form, len(waiting), self._workers)
            taken, rest = waiting[:size], waiting[size:]
            if rest:  # to the back of the line: the other queries' lookups go first, none waits for all of these
                self._queue[group] = rest
            statement = _Statement(group[0], dict(group[1]), taken, form)
            statement.cursor = cursor
            self.lookups += len(taken)
            self.statements += 1
            for lookup in taken:
                lookup.running = statement
            return statement
        return None

    def _execute(self, cursor: duckdb.DuckDBPyConnection, statement: _Statement) -> None:
        lookups = statement.lookups
        try:
            if len(lookups) == 1:
                answers = [self._plain(cursor, statement.text, statement.shared, lookups[0].key)]
            else:
                answers = self._batched(cursor, statement, [lookup.key for lookup in lookups])
        except Exception as exc:  # whatever went wrong, every lookup hears of it and the worker goes on
            error = SourceError(f"source {self.name}: {exc}") if isinstance(exc, duckdb.Error) else exc
            _settle([(lookup, None) for lookup in lookups], error)
            return
        finally:
            with statement.lock:
                statement.cursor = None
        _settle(list(zip(lookups, answers, strict=True)))

    @staticmethod
    def _plain(cursor: duckdb.DuckDBPyConnection, text: str, shared: Mapping[str, Any], key: Any) -> list[Row]:
        params = {**shared, "key": key} if key is not None else dict(shared)
        cursor.execute(text, params)
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _form(self, text: str, cursor: duckdb.DuckDBPyConnection) -> FormChoice:
        choice = self._forms.get(text)
        if choice is None:  # once per query (a parse, well under a millisecond), the first time it batches
            order = _order(cursor, text)
            fresh = FormChoice(lateral_ok=order is not None, order=order or (), workers=self._workers)
            choice = self._forms.setdefault(text, fresh)
        return choice

    def _batched(self, cursor: duckdb.DuckDBPyConnection, statement: _Statement, keys: list[Any]) -> list[list[Row]]:
        if statement.form == "many":
            return self._many_answers(cursor, statement, keys)
        choice, form = self._forms[statement.text], statement.form
        sql = lateral_sql(statement.text) if form == "lateral" else union_sql(statement.text, len(keys))
        cap_ms = choice.trial_cap_ms(len(keys)) if form == "lateral" else None
        watch = _TrialWatch(statement, cap_ms) if cap_ms is not None else None
        started = time.thread_time()  # DuckDB runs a one-thread statement on the calling thread
        try:
            try:
                cursor.execute(sql, batch_params(form, keys, statement.shared))
                rows = cursor.fetchall()
            finally:
                if watch is not None:
                    watch.stop()
            names = [d[0] for d in cursor.description or ()][1:]
            grouped: list[list[tuple[Any, ...]]] = [[] for _ in keys]
            for row in rows:
                grouped[row[0]].append(row[1:])
            if form == "lateral" and choice.order:
                grouped = [sort_rows(answer, choice.order, names) for answer in grouped]
        except duckdb.InterruptException:
            if not statement.cut_off:  # every lookup gave up: nobody is waiting for an answer
                raise
            # The lateral trial cost more than a union would have: the union answers these keys, and stays.
            log.info("source %s: lateral batch cut off after %.0f ms; the union stays", self.name, cap_ms or 0)
            choice.refuse_lateral()
            return self._unions(cursor, statement, keys)
        except (duckdb.Error, OrderLost) as exc:
            # A query the batch forms cannot hold (DuckDB refuses to decorrelate it, a trailing semicolon, an
            # order its output cannot show...) is answered key by key, exactly as it would be alone; the lateral
            # form is not tried again.
            log.info("source %s: %s batch refused (%s); answering key by key", self.name, form, exc)
            if form == "lateral":
                choice.refuse_lateral()
            return [self._plain(cursor, statement.text, statement.shared, key) for key in keys]
        choice.record(form, len(keys), (time.thread_time() - started) * 1000)
        return [[dict(zip(names, row, strict=True)) for row in answer] for answer in grouped]

    def _many_answers(
        self, cursor: duckdb.DuckDBPyConnection, statement: _Statement, keys: list[Any]
    ) -> list[list[Row]]:
        """The signal's own statement for these keys; its first column says whose each row is. A statement that
        fails is left for good and the keys are answered one by one, as they would be alone."""
        many = self._many[statement.text]
        try:
            cursor.execute(many, batch_params("many", list(dict.fromkeys(keys)), statement.shared))
            rows = cursor.fetchall()
        except duckdb.InterruptException:
            raise  # every lookup gave up
        except duckdb.Error as exc:
            log.warning("source %s: the signal's query_many failed (%s); answering key by key", self.name, exc)
            self._many.pop(statement.text, None)
            return [self._plain(cursor, statement.text, statement.shared, key) for key in keys]
        names = [d[0] for d in cursor.description or ()][1:]
        by_key: dict[Any, list[Row]] = {key: [] for key in keys}
        for row in rows:
            answer = by_key.get(row[0])
            if answer is not None:  # a row for a key nobody asked about is not anyone's answer
                answer.append(dict(zip(names, row[1:], strict=True)))
        # The same key asked twice (two interactions, one member) gets the same rows, each its own copy.
        return [[dict(r) for r in by_key[key]] for key in keys]

    def _unions(self, cursor: duckdb.DuckDBPyConnection, statement: _Statement, keys: list[Any]) -> list[list[Row]]:
        answers: list[list[Row]] = []
        for start in range(0, len(keys), UNION_MAX):
            chunk = keys[start : start + UNION_MAX]
            cursor.execute(union_sql(statement.text, len(chunk)), batch_params("union", chunk, statement.shared))
            rows = cursor.fetchall()
            names = [d[0] for d in cursor.description or ()][1:]
            part: list[list[Row]] = [[] for _ in chunk]
            for row in rows:
                part[row[0]].append(dict(zip(names, row[1:], strict=True)))
            answers += part
        return answers

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new DuckDB cursor over the same tables, for plain SQL outside the signal path (the benchmark's
        naive scan, test stand-ins). The caller closes it."""
        return self._new_cursor()

    def _new_cursor(self) -> duckdb.DuckDBPyConnection:
        with self._con_lock:
            cursor = self._con.cursor()
        if self._search_path is not None:  # a setting of the connection: a cursor does not inherit it
            cursor.execute(f"SET search_path = '{self._search_path}'")
        return cursor

    async def close(self) -> None:
        with self._lock:
            self._closed = True
            queued = [lookup for lookups in self._queue.values() for lookup in lookups]
            self._queue.clear()
        for lookup in queued:
            lookup.settle(None, SourceError(f"source {self.name} closed"))
        if self._delta_check is not None and not self._delta_check.done():
            with contextlib.suppress(Exception):  # already logged; closing must not fail for it
                await self._delta_check
        self._pool.shutdown(wait=True, cancel_futures=True)
        while True:
            try:
                self._cursors.get_nowait().close()
            except queue.Empty:
                break
        self._con.close()


def _order(cursor: duckdb.DuckDBPyConnection, text: str) -> tuple[SortKey, ...] | None:
    """The query's top-level order as DuckDB's parser reads it (``batch.top_order``); without the parse (a
    statement DuckDB cannot serialize), the text tells only whether there is one: then no lateral batch."""
    try:
        raw = cursor.execute("SELECT json_serialize_sql($sql)", {"sql": text}).fetchall()[0][0]
        defaults = cursor.execute(
            "SELECT current_setting('default_order'), current_setting('default_null_order')"
        ).fetchall()[0]
        order = top_order(json.loads(raw), str(defaults[0]), str(defaults[1]))
    except (duckdb.Error, ValueError):
        order = None
    if order is None and not ordered_at_top(text):
        return ()
    return order


def _setting(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    with contextlib.suppress(duckdb.CatalogException):  # a DuckDB without the setting: lookups work, slower
        con.execute(sql)


def _read_delta(path: Path) -> tuple[int, Any]:
    """The table's current version and its rows as Arrow (one snapshot: the rows are of that version)."""
    DeltaTable, DeltaError = _deltalake()
    try:
        table = DeltaTable(str(path))
        return table.version(), table.to_pyarrow_table()
    except (DeltaError, OSError) as exc:
        raise SourceError(f"cannot read the Delta table at {path}: {exc}") from exc


def _delta_version(path: Path) -> int:
    DeltaTable, DeltaError = _deltalake()
    try:
        version: int = DeltaTable(str(path)).version()
    except (DeltaError, OSError) as exc:
        raise SourceError(f"cannot read the Delta table at {path}: {exc}") from exc
    return version


def _deltalake() -> tuple[Any, type[Exception]]:
    try:
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError
    except ImportError as exc:  # the [delta] extra
        raise SourceError("reading Delta tables needs the deltalake package: pip install 'tandem[delta]'") from exc
    return DeltaTable, DeltaError


def _resolve(data_dir: Path, raw: str, source: str) -> Path:
    path = Path(raw) if Path(raw).is_absolute() else data_dir / raw
    if not path.exists():
        raise SourceError(f"source {source}: nothing at {path} (run `tandem data generate --out {data_dir}`?)")
    return path


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
