"""Each source answers the shipped signal sets with the same facts: DuckDB over Parquet and Delta, DuckDB's
own file, PostgreSQL, and a Databricks SQL warehouse (through a stand-in of the connector's cursor)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tandem.activation import Activator, Source, SourceError, Trigger
from tandem.activation.databricks import DatabricksSource
from tandem.activation.duckdb import DuckDBSource
from tandem.activation.postgres import PostgresSource
from tandem.activation.sources import named_placeholders, positional_placeholders
from tandem.case.legs import Assurance
from tandem.clock import ManualClock
from tandem.release.signals import STATUS_FACT, SignalRelease, load_releases
from tests.activation.conftest import relaxed
from tests.activation.fakes import FakeWarehouse, FakeWarehouseError

VERIFIED = Assurance.KNOWLEDGE_VERIFIED
DSN = os.environ.get("TANDEM_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")  # as the store tests
# (tenant, trigger, keys): the sets whose facts every source must agree on.
CASES: list[tuple[str, Trigger, dict[str, str]]] = [
    ("bank", Trigger.intent("card_declined", VERIFIED), {"customer": "C-1001"}),
    ("bank", Trigger.intent("dispute_charge", VERIFIED), {"customer": "C-1002"}),
    ("bank", Trigger.intent("balance", VERIFIED), {"customer": "C-1001"}),
    ("health", Trigger.intent("explain_bill", VERIFIED), {"member": "MBR-55821"}),
    ("health", Trigger.intent("eligibility", VERIFIED), {"member": "MBR-60317"}),
    ("health", Trigger.intent("reschedule", VERIFIED), {"member": "MBR-60317"}),
    ("health", Trigger.intent("explain_bill", VERIFIED), {"member": "MBR-7000004"}),
    ("bank", Trigger.intent("card_declined", VERIFIED), {"customer": "C-2000082"}),
]


def _releases() -> dict[str, SignalRelease]:
    return {tenant: relaxed(r) for tenant, r in load_releases().items()}


async def _answers(activator: Activator) -> list[list[tuple[str, str | None, Any]]]:
    out = []
    for tenant, trigger, keys in CASES:
        activation = await activator.activate(tenant, trigger, keys, "human")
        assert {r.status for r in activation.reports} <= {"ok"}, activation.reports
        out.append([(f.name, f.subject, f.value) for f in activation.learns if f.name != STATUS_FACT])
    return out


@pytest.fixture
async def reference(lakehouse: Path) -> list[list[tuple[str, str | None, Any]]]:
    activator = await Activator.open(_releases(), lakehouse, clock=ManualClock())
    try:
        return await _answers(activator)
    finally:
        await activator.close()


async def test_duckdb_over_its_own_file_answers_like_duckdb_over_parquet_and_delta(
    lakehouse: Path, reference: list[Any]
) -> None:
    sources: dict[str, Mapping[str, Source]] = {}
    for tenant in ("bank", "health"):
        options: dict[str, Any] = {"database": f"{tenant}/lakehouse.duckdb"}
        sources[tenant] = {"lakehouse": await DuckDBSource.open("lakehouse", options, lakehouse)}
    activator = await Activator.open(_releases(), lakehouse, clock=ManualClock(), sources=sources)
    try:
        assert await _answers(activator) == reference
        assert any(ans for ans in reference)  # the cases do produce facts
    finally:
        await activator.close()


async def test_a_duckdb_lookup_past_its_budget_is_interrupted_and_frees_its_thread(lakehouse: Path) -> None:
    source = DuckDBSource.connect("lake", {}, lakehouse, workers=1)
    endless = "SELECT count(*) AS n FROM range(1000000000000) t(i) WHERE i % 7 = 3 AND :key IS NOT NULL"
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await source.query(endless, {"key": "x"}, 0.2)
        # One worker: this answers only because the endless query was interrupted, not left running.
        rows = await asyncio.wait_for(source.query("SELECT :key AS k", {"key": "x", "today": None}, 5), 10)
        assert rows == [{"k": "x"}]
    finally:
        await source.close()


async def test_a_duckdb_source_answers_each_query_by_its_own_text_when_more_queries_come_than_it_remembers(
    lakehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tandem.activation.duckdb.TEXT_CACHE", 2)
    source = DuckDBSource.connect("lake", {}, lakehouse, workers=1)
    queries = [f"SELECT :key AS k, {n} AS n" for n in range(5)] + ["SELECT :key AS k, CAST(:today AS DATE) AS d"]
    try:
        for _ in range(2):  # the second pass finds some texts forgotten, others remembered
            for n, sql in enumerate(queries[:5]):
                assert await source.query(sql, {"key": f"C-{n}", "today": None}, 5) == [{"k": f"C-{n}", "n": n}]
            rows = await source.query(queries[5], {"key": "C-9", "today": date(2026, 12, 3)}, 5)
            assert rows == [{"k": "C-9", "d": date(2026, 12, 3)}]
        assert len(source._texts) <= 2  # ad hoc queries do not pile up
    finally:
        await source.close()


async def test_a_duckdb_source_refuses_unknown_options_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="unknown options"):
        DuckDBSource.connect("lake", {"path": "x"}, tmp_path)
    with pytest.raises(SourceError, match="no Parquet file"):
        DuckDBSource.connect("lake", {"tables": {"t": {"parquet": "t.parquet"}}}, tmp_path)
    with pytest.raises(SourceError, match="nothing at"):
        DuckDBSource.connect("lake", {"tables": {"t": {"delta": "t.delta"}}}, tmp_path)
    with pytest.raises(SourceError, match="parquet: PATH"):
        DuckDBSource.connect("lake", {"tables": {"t": {"csv": "t.csv"}}}, tmp_path)


def test_placeholders_become_each_backends_own() -> None:
    sql = "SELECT x::date FROM t WHERE k = :key AND d >= CAST(:today AS DATE) AND k2 = :key AND s = ':keyword'"
    assert named_placeholders(sql, "dollar").count("$key") == 2
    text, order = positional_placeholders(sql)
    assert order == ["key", "today"] and "$1" in text and "$2" in text and "x::date" in text


# -- PostgreSQL ---------------------------------------------------------------------------------------------
PG_TYPES = {pa.string(): "text", pa.int64(): "bigint", pa.int32(): "integer", pa.float64(): "double precision",
            pa.bool_(): "boolean", pa.date32(): "date"}  # fmt: skip


async def _load_schema(conn: Any, schema: str, tables: list[tuple[Path, pa.Table]]) -> None:
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    for path, table in tables:
        columns = ", ".join(
            f'"{f.name}" {"timestamptz" if pa.types.is_timestamp(f.type) else PG_TYPES[f.type]}' for f in table.schema
        )
        await conn.execute(f'CREATE TABLE "{schema}"."{path.stem}" ({columns})')
        records = [tuple(row.values()) for row in table.to_pylist()]
        await conn.copy_records_to_table(path.stem, records=records, schema_name=schema)


@pytest.fixture
async def pg_sources(lakehouse: Path) -> AsyncIterator[dict[str, Mapping[str, Source]]]:
    try:
        conn = await asyncpg.connect(DSN, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is not reachable at {DSN} ({exc}); set TANDEM_TEST_PG_DSN", pytrace=False)
    schemas = {tenant: f"act_{tenant}_{uuid.uuid4().hex[:10]}" for tenant in ("bank", "health")}
    try:
        for tenant, schema in schemas.items():
            files = sorted((lakehouse / tenant).glob("*.parquet"))
            await _load_schema(conn, schema, [(path, pq.read_table(path)) for path in files])
        os.environ["TANDEM_TEST_ACTIVATION_DSN"] = DSN
        sources: dict[str, Mapping[str, Source]] = {
            tenant: {"lakehouse": await PostgresSource.open(
                "lakehouse", {"dsn_env": "TANDEM_TEST_ACTIVATION_DSN", "schema": schema, "pool_size": 4})}
            for tenant, schema in schemas.items()
        }  # fmt: skip
        yield sources
    finally:
        os.environ.pop("TANDEM_TEST_ACTIVATION_DSN", None)
        for schema in schemas.values():
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


@pytest.mark.postgres
async def test_postgresql_answers_the_signal_sets_like_the_lakehouse(
    lakehouse: Path, reference: list[Any], pg_sources: dict[str, Mapping[str, Source]]
) -> None:
    activator = await Activator.open(_releases(), lakehouse, clock=ManualClock(), sources=pg_sources)
    try:
        assert await _answers(activator) == reference
    finally:
        await activator.close()


@pytest.mark.postgres
async def test_a_postgresql_query_past_its_budget_is_cancelled_on_the_server(
    pg_sources: dict[str, Mapping[str, Source]],
) -> None:
    source = pg_sources["bank"]["lakehouse"]
    try:
        with pytest.raises(TimeoutError):
            await source.query("SELECT pg_sleep(30), :key AS k", {"key": "x"}, 0.2)
        assert await source.query("SELECT CAST(:key AS text) AS k", {"key": "x"}, 5) == [{"k": "x"}]
    finally:
        for tenant_sources in pg_sources.values():
            await tenant_sources["lakehouse"].close()


async def test_a_postgresql_source_without_a_dsn_says_which_variable_to_set() -> None:
    with pytest.raises(SourceError, match="TANDEM_NOT_SET_DSN"):
        await PostgresSource.open("db", {"dsn_env": "TANDEM_NOT_SET_DSN"})


@pytest.mark.parametrize("pool_size", [0, -2, "ten", 2.5, True])
async def test_a_postgresql_pool_size_that_is_not_a_positive_whole_number_is_refused(pool_size: object) -> None:
    with pytest.raises(SourceError, match="pool_size must be a whole number"):
        await PostgresSource.open("db", {"dsn": "postgresql://nobody@127.0.0.1:1/none", "pool_size": pool_size})


# -- Databricks (a stand-in of the connector behind the adapter's seam) ---------------------------------------
@pytest.fixture
async def warehouses(lakehouse: Path) -> AsyncIterator[dict[str, FakeWarehouse]]:
    releases = load_releases()
    ducks = {t: DuckDBSource.connect("w", releases[t].sources["lakehouse"].options, lakehouse) for t in releases}
    yield {tenant: FakeWarehouse(duck.cursor()) for tenant, duck in ducks.items()}
    for duck in ducks.values():
        await duck.close()


async def test_databricks_answers_the_signal_sets_like_the_lakehouse_through_the_connector_api(
    lakehouse: Path, reference: list[Any], warehouses: dict[str, FakeWarehouse]
) -> None:
    sources: dict[str, Mapping[str, Source]] = {
        tenant: {"lakehouse": await DatabricksSource.open("lakehouse", {"workers": 2}, connect=w.connect)}
        for tenant, w in warehouses.items()
    }
    activator = await Activator.open(_releases(), lakehouse, clock=ManualClock(), sources=sources)
    try:
        assert await _answers(activator) == reference
    finally:
        await activator.close()
    bank = warehouses["bank"]
    # Native named parameters: the SQL is sent as written, the values separately, only those it uses.
    sql, params = bank.statements[0]
    assert ":key" in sql and params["key"] == "C-1001"
    assert all(set(p) <= {"key", "today"} for _, p in bank.statements)
    assert all(c.closed for c in bank.cursors) and all(c.closed for c in bank.connections)
    assert len(bank.connections) <= 2  # connections are reused, one per worker thread


async def test_a_databricks_query_past_its_budget_is_cancelled_and_the_signal_times_out(
    warehouses: dict[str, FakeWarehouse],
) -> None:
    warehouse = warehouses["bank"]
    warehouse.hang = True
    release = load_releases()["bank"]
    source = await DatabricksSource.open("lakehouse", {}, connect=warehouse.connect)
    activator = Activator({"bank": release}, {"bank": {"lakehouse": source}}, clock=ManualClock())
    learns = await activator.for_trigger("bank", Trigger.intent("balance", VERIFIED), {"customer": "C-1001"}, "bot")
    assert [(f.name, f.value["status"]) for f in learns] == [(STATUS_FACT, "timeout")]
    await activator.close()  # waits for the worker: it returns only once cancel() reached the cursor
    assert warehouse.cancelled == 1


async def test_a_databricks_error_is_a_failed_signal_and_the_conversation_goes_on(
    warehouses: dict[str, FakeWarehouse],
) -> None:
    def broken() -> Any:
        raise FakeWarehouseError("Invalid access token")

    release = load_releases()["bank"]
    source = await DatabricksSource.open("lakehouse", {}, connect=broken)
    activator = Activator({"bank": release}, {"bank": {"lakehouse": source}}, clock=ManualClock())
    learns = await activator.for_trigger("bank", Trigger.intent("balance", VERIFIED), {"customer": "C-1001"}, "bot")
    assert learns[0].value["status"] == "failed" and "Invalid access token" in learns[0].value["error"]
    await activator.close()


async def test_without_the_connector_installed_a_databricks_source_says_which_extra_to_install() -> None:
    # The connector is not installed here; where it is, the same call must name the missing settings.
    try:
        import databricks.sql  # noqa: F401
    except ImportError:
        with pytest.raises(SourceError, match=r"tandem\[databricks\]"):
            await DatabricksSource.open("w", {"server_hostname": "h", "http_path": "/p", "token": "t"})
    else:
        with pytest.raises(SourceError, match="needs server_hostname"):
            await DatabricksSource.open("w", {"server_hostname_env": "TANDEM_NOT_SET_HOST"})


# -- Delta snapshots ----------------------------------------------------------------------------------------
HOLD_SQL = "SELECT card_last4, status FROM holds WHERE customer_id = :key AND status = 'held'"


def _delta_copy(lakehouse: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "bank" / "holds.delta"
    shutil.copytree(lakehouse / "bank" / "holds.delta", target)
    return target


def _release_marias_hold(path: Path) -> None:
    from deltalake import DeltaTable, write_deltalake

    table = DeltaTable(str(path)).to_pyarrow_table()
    status = [
        "released" if c == "C-1001" else s
        for c, s in zip(table["customer_id"].to_pylist(), table["status"].to_pylist(), strict=True)
    ]
    write_deltalake(str(path), table.set_column(table.schema.get_field_index("status"), "status", [status]),
                    mode="overwrite")  # fmt: skip


async def test_a_new_delta_version_replaces_the_snapshot_without_reopening_the_source(
    lakehouse: Path, tmp_path: Path
) -> None:
    path = _delta_copy(lakehouse, tmp_path)
    options = {"tables": {"holds": {"delta": "bank/holds.delta"}}, "delta_refresh": "0s"}
    source = DuckDBSource.connect("lake", options, tmp_path)
    try:
        assert await source.query(HOLD_SQL, {"key": "C-1001"}, 5) == [{"card_last4": "4242", "status": "held"}]
        first = source.delta_versions()["holds"]
        _release_marias_hold(path)
        # Each lookup may start a version check in the background and never waits for it: the hold is gone
        # once a check has replaced the snapshot (and then recorded its version).
        async with asyncio.timeout(30):
            while source.delta_versions()["holds"] == first:
                await source.query(HOLD_SQL, {"key": "C-1001"}, 5)
        assert source.delta_versions()["holds"] == first + 1
        assert await source.query(HOLD_SQL, {"key": "C-1001"}, 5) == []
    finally:
        await source.close()


async def test_a_delta_check_keeps_the_snapshot_when_the_table_cannot_be_read(lakehouse: Path, tmp_path: Path) -> None:
    import shutil

    path = _delta_copy(lakehouse, tmp_path)
    source = DuckDBSource.connect("lake", {"tables": {"holds": {"delta": "bank/holds.delta"}}}, tmp_path)
    try:
        assert await source.refresh() == []  # nothing new
        _release_marias_hold(path)
        assert await source.refresh() == ["holds"]
        assert await source.query(HOLD_SQL, {"key": "C-1001"}, 5) == []
        shutil.rmtree(path / "_delta_log")
        assert await source.refresh() == []  # unreadable: the lakehouse lags, lookups go on
        assert await source.query(HOLD_SQL, {"key": "C-1001"}, 5) == []
    finally:
        await source.close()


async def test_a_duckdb_source_refuses_a_bad_delta_refresh_or_batch_option(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="delta_refresh"):
        DuckDBSource.connect("lake", {"delta_refresh": "soon"}, tmp_path)
    with pytest.raises(SourceError, match="batch is true or false"):
        DuckDBSource.connect("lake", {"batch": "yes"}, tmp_path)
