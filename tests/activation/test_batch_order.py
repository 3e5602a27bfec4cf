"""A lateral batch brings back a query's rows in no particular order: a query with an ORDER BY of its own gets
that order back by a sort on its output columns, and a query whose order its output cannot show is never
batched that way."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import duckdb
import pytest

from tandem.activation.batch import FormChoice, OrderLost, SortKey, sort_rows, top_order
from tandem.activation.duckdb import DuckDBSource
from tandem.activation.sources import named_placeholders
from tests.activation.test_batch import _behind_a_blocker, answered_alone


def _order(sql: str) -> tuple[SortKey, ...] | None:
    con = duckdb.connect()
    try:
        raw = con.execute("SELECT json_serialize_sql($sql)", {"sql": sql}).fetchall()[0][0]
    finally:
        con.close()
    return top_order(json.loads(raw), "ASCENDING", "NULLS_LAST")


def test_an_order_on_returned_columns_is_read_with_its_directions_and_nulls() -> None:
    assert _order("SELECT a, b FROM t WHERE k = $key") == ()
    assert _order("SELECT a, b FROM t ORDER BY b DESC, a") == (SortKey("b", True, False), SortKey("a", False, False))
    assert _order("SELECT t.a FROM t ORDER BY t.a NULLS FIRST") == (SortKey("a", False, True),)
    assert _order("SELECT x AS y FROM t ORDER BY y DESC NULLS LAST") == (SortKey("y", True, False),)
    assert _order("SELECT * FROM t ORDER BY a") == (SortKey("a", False, False),)  # checked against the output later


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT a FROM t ORDER BY ts DESC",  # a column it does not return
        "SELECT a, b FROM t ORDER BY 1",  # a position
        "SELECT a FROM t ORDER BY a + 1",  # an expression
        "SELECT u.a FROM t, u ORDER BY t.a",  # the output's a is another table's
        "SELECT x AS a FROM t ORDER BY t.a",  # the output's a is not the column t.a
        "SELECT a, b AS a FROM t ORDER BY a",  # two outputs named a
        "SELECT a FROM t UNION ALL SELECT a FROM u ORDER BY a",
    ],
)
def test_an_order_the_output_cannot_show_rules_the_lateral_form_out(sql: str) -> None:
    assert _order(sql) is None


def test_rows_are_sorted_as_duckdb_sorts_them_nulls_included() -> None:
    rows = [(1, "b", None), (2, "a", 3), (3, "b", 1), (4, None, 2), (5, "a", None)]
    order = (SortKey("name", False, False), SortKey("n", True, True))
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE t (id INTEGER, name VARCHAR, n INTEGER)")
        con.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
        expected = con.execute("SELECT * FROM t ORDER BY name ASC NULLS LAST, n DESC NULLS FIRST").fetchall()
    finally:
        con.close()
    assert sort_rows(rows, order, ["id", "NAME", "n"]) == expected


def test_an_order_python_cannot_reproduce_is_refused_not_guessed() -> None:
    with pytest.raises(OrderLost):
        sort_rows([(1.0,), (math.nan,)], (SortKey("x", False, False),), ["x"])
    with pytest.raises(OrderLost):
        sort_rows([(1, 2)], (SortKey("x", False, False),), ["x", "X"])
    with pytest.raises(OrderLost):
        sort_rows([({"a": 1},), ({"a": 2},)], (SortKey("x", False, False),), ["x"])


@pytest.mark.parametrize("tenant", ["bank", "health"])
async def test_every_shipped_signal_answers_each_key_in_a_lateral_batch_exactly_as_alone(
    lakehouse: Path, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lateral form whenever the query allows it, without a trial: what each key gets from it is the point.
    monkeypatch.setattr(FormChoice, "next", lambda self, size: "lateral" if self.lateral_ok else "union")
    monkeypatch.setattr(FormChoice, "trial_cap_ms", lambda self, size: None)
    ordered = 0
    async with answered_alone(lakehouse, tenant) as (together, cases):
        for signal, keys, expected in cases:  # keys with rows, and an unknown key, which has none
            assert await _behind_a_blocker(together, signal.query, keys) == expected, signal.name
            choice = together._forms.get(named_placeholders(signal.query, "dollar"))
            ordered += 1 if choice is not None and choice.lateral_ok and choice.order else 0
    assert ordered >= 2  # the ordered signals (travel notices, appointments...) did go through the lateral form


async def test_a_lateral_trial_that_costs_more_than_the_union_is_cut_off_and_the_union_answers(
    lakehouse: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="tandem.activation.duckdb")
    source = DuckDBSource.connect("lake", {}, lakehouse, workers=1)
    sql = "SELECT count(*) AS n, :key AS k FROM range(20000000) t(i) WHERE i % 7 = 3"
    # The union has been timed as nearly free: the lateral trial may use only the floor, and needs far more.
    source._forms[named_placeholders(sql, "dollar")] = FormChoice(lateral_ok=True, ms_per_key={"union": 1e-6})
    try:
        keys = ["a", "b", "c", "d"]
        answers = await asyncio.wait_for(_behind_a_blocker(source, sql, keys), 60)
        assert answers == [[{"n": 2857143, "k": k}] for k in keys]
        choice = source._forms[named_placeholders(sql, "dollar")]
        assert not choice.lateral_ok and choice.next(10) == "union"
        assert "cut off" in caplog.text  # interrupted for its cost, not refused by DuckDB
    finally:
        await source.close()
