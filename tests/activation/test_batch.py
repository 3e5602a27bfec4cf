"""Lookups that queue up while the DuckDB source is busy are answered together, one statement for many keys,
and each key gets exactly what it would have got alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tandem.activation.batch import FormChoice, batch_size, lateral_sql, ordered_at_top, union_sql
from tandem.activation.duckdb import DuckDBSource
from tandem.release.signals import SignalDef, load_releases

TODAY = date(2026, 12, 3)
# Long enough for the lookups behind it to queue up on a one-thread source, short enough for a test.
BLOCKER = "SELECT count(*) AS n FROM range(20000000) t(i) WHERE i % 7 = 3 AND :key IS NOT NULL"
ENDLESS = "SELECT count(*) AS n FROM range(1000000000000) t(i) WHERE i % 7 = 3 AND :key IS NOT NULL"


# key kind -> (column, tenant, the table of everyone, tables with rare records)
PEOPLE = {
    "customer": ("customer_id", "bank", "customers", ["holds", "travel_notices", "fraud_alerts"]),
    "member": ("member_id", "health", "members", ["statements", "appointments"]),
}


def _keys(lakehouse: Path, kind: str) -> list[str]:
    """Every hundredth person (the reference people among them), some with the rare records (holds, travel
    notices, open statements) and an unknown one: every signal has keys with rows and keys without."""
    if kind not in PEOPLE:
        return []
    column, tenant, everyone, rare = PEOPLE[kind]
    con = duckdb.connect()
    try:
        chosen: set[str] = set()
        for table, limit in [(everyone, 12), *((t, 3) for t in rare)]:
            path = lakehouse / tenant / f"{table}.parquet"
            sql = f"SELECT DISTINCT {column} FROM read_parquet('{path}') ORDER BY 1"
            rows = [row[0] for row in con.execute(sql).fetchall()]
            chosen.update(rows[:: max(1, len(rows) // limit)][:limit] if table == everyone else rows[:limit])
    finally:
        con.close()
    return [*sorted(chosen), "C-404" if kind == "customer" else "MBR-404"]


async def _behind_a_blocker(source: DuckDBSource, sql: str, keys: list[str]) -> list[list[dict[str, Any]]]:
    """Every lookup queued while the only thread is busy, so they are taken together."""
    blocker = asyncio.ensure_future(source.query(BLOCKER, {"key": "x"}, 30))
    answers = await asyncio.gather(*(source.query(sql, {"key": k, "today": TODAY}, 30) for k in keys))
    await blocker
    return answers


Answers = list[list[dict[str, Any]]]


@asynccontextmanager
async def answered_alone(
    lakehouse: Path, tenant: str
) -> AsyncIterator[tuple[DuckDBSource, list[tuple[SignalDef, list[str], Answers]]]]:
    """A batching one-thread source over the tenant's lakehouse, and each shipped signal with its keys and
    what each key gets from a source that never batches: the answers a batch must give."""
    release = load_releases()[tenant]
    options = release.sources["lakehouse"].options
    alone = DuckDBSource.connect("alone", {**options, "batch": False}, lakehouse)
    together = DuckDBSource.connect("together", options, lakehouse, workers=1)
    try:
        cases = []
        for signal in release.signals.values():
            keys = _keys(lakehouse, signal.key)
            if not keys:
                continue
            expected = [await alone.query(signal.query, {"key": k, "today": TODAY}, 30) for k in keys]
            assert any(expected), signal.name  # the keys do have records: the comparison is not empty
            cases.append((signal, keys, expected))
        yield together, cases
    finally:
        await alone.close()
        await together.close()


@pytest.mark.parametrize("tenant", ["bank", "health"])
async def test_every_shipped_signal_answers_each_key_in_a_batch_exactly_as_alone(lakehouse: Path, tenant: str) -> None:
    async with answered_alone(lakehouse, tenant) as (together, cases):
        for signal, keys, expected in cases:
            # Three rounds: the first batches try each form the query allows, the last uses the cheaper.
            for _ in range(3):
                assert await _behind_a_blocker(together, signal.query, keys) == expected, signal.name
        assert together.statements < together.lookups / 4  # they were batched, not answered one by one


async def test_a_query_the_batch_forms_cannot_hold_is_answered_key_by_key(lakehouse: Path) -> None:
    source = DuckDBSource.connect("lake", {}, lakehouse, workers=1)
    try:
        # A trailing semicolon cannot sit inside a subquery: the batch is refused, each key answered alone.
        answers = await _behind_a_blocker(source, "SELECT :key AS k;", ["a", "b", "c", "d", "e"])
        assert answers == [[{"k": k}] for k in "abcde"]
    finally:
        await source.close()


async def test_a_batch_whose_lookups_all_gave_up_is_interrupted_and_frees_the_thread(lakehouse: Path) -> None:
    source = DuckDBSource.connect("lake", {}, lakehouse, workers=1)
    try:
        lookups = [source.query(ENDLESS, {"key": k}, 0.2) for k in ("a", "b", "c")]
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await asyncio.gather(*lookups)
        # One worker: this answers only because the endless statement was interrupted, not left running.
        assert await asyncio.wait_for(source.query("SELECT :key AS k", {"key": "x"}, 5), 10) == [{"k": "x"}]
    finally:
        await source.close()


async def test_a_closed_source_refuses_lookups_with_a_clear_error(lakehouse: Path) -> None:
    source = DuckDBSource.connect("lake", {}, lakehouse, workers=1)
    await source.close()
    with pytest.raises(Exception, match="closed"):
        await source.query("SELECT :key AS k", {"key": "x"}, 5)


def test_only_a_query_without_its_own_top_level_order_may_come_back_in_any_order() -> None:
    assert ordered_at_top("SELECT a FROM t WHERE k = $key ORDER BY a")
    assert not ordered_at_top("SELECT a FROM (SELECT a, row_number() OVER (ORDER BY b) AS n FROM t) x WHERE n = 1")
    assert not ordered_at_top("SELECT 'ORDER BY' AS a FROM t -- ORDER BY a\n WHERE k = $key")
    assert not ordered_at_top('SELECT "order by" FROM t /* ORDER BY */')


def test_the_batch_forms_tag_each_row_with_its_keys_position() -> None:
    union = union_sql("SELECT a FROM t WHERE k = $key AND d >= $today", 2)
    assert "$key_0" in union and "$key_1" in union and union.count("$today") == 2 and "$key " not in union
    lateral = lateral_sql("SELECT a FROM t WHERE k = $key")
    assert "LATERAL" in lateral and "__k.__key" in lateral and "$key" not in lateral.replace("$__keys", "")


def test_the_cheaper_form_wins_once_each_has_been_timed() -> None:
    choice = FormChoice(lateral_ok=True)
    assert choice.next(2) == "union"  # too few keys to time anything: the form that is always sound
    first = choice.next(10)
    choice.record(first, 10, 50.0 if first == "union" else 5.0)
    second = choice.next(10)
    assert second != first
    choice.record(second, 10, 50.0 if second == "union" else 5.0)
    assert choice.next(10) == "lateral"
    choice.refuse_lateral()
    assert choice.next(10) == "union"
    assert FormChoice(lateral_ok=False).next(10) == "union"


def test_a_union_shares_a_long_queue_among_the_workers_and_a_lateral_takes_it_whole() -> None:
    assert batch_size("union", 50, 2) == 16
    assert batch_size("union", 10, 2) == 5
    assert batch_size("union", 3, 2) == 3
    assert batch_size("lateral", 50, 2) == 50
    assert batch_size("lateral", 100, 2) == 64


def test_the_union_is_timed_first_and_bounds_what_a_lateral_trial_may_cost() -> None:
    choice = FormChoice(lateral_ok=True, workers=2)
    assert choice.trial_cap_ms(10) is None  # nothing to bound a trial by yet
    assert choice.next(10) == "union"
    choice.record("union", 10, 30.0)
    assert choice.next(10) == "lateral"
    assert choice.trial_cap_ms(20) == 30.0  # the union's cost for as many keys, shared by two workers
    choice.record("lateral", 20, 4.0)
    assert choice.trial_cap_ms(20) is None and choice.next(20) == "lateral"


def test_a_lateral_form_must_beat_the_unions_share_of_one_worker_to_win() -> None:
    # 2.0 ms per key against the union's 3.0: cheaper, but one thread would hold every key while two share a union.
    choice = FormChoice(lateral_ok=True, workers=2, ms_per_key={"union": 3.0, "lateral": 2.0})
    assert choice.next(50) == "union"
    assert FormChoice(lateral_ok=True, workers=2, ms_per_key={"union": 3.0, "lateral": 1.0}).next(50) == "lateral"
