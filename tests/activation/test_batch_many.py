"""A signal's own statement for many keys (``query_many``): the DuckDB source answers queued lookups of that
signal with it, each key getting exactly what it would get alone, and falls back to one key at a time when the
statement fails."""

from __future__ import annotations

from pathlib import Path

from tandem.activation.activator import Activator
from tandem.activation.batch import batch_size
from tandem.activation.duckdb import DuckDBSource
from tandem.release.signals import load_releases
from tests.activation.test_batch import TODAY, _behind_a_blocker, answered_alone


async def test_every_shipped_many_keys_query_answers_each_key_exactly_as_alone(lakehouse: Path) -> None:
    async with answered_alone(lakehouse, "health") as (together, cases):
        many = [(signal, keys, expected) for signal, keys, expected in cases if signal.query_many]
        assert {signal.name for signal, _, _ in many} == {"statement", "claim_lines", "payment_plan"}
        for signal, _, _ in many:
            assert signal.query_many is not None
            together.add_many_form(signal.query, signal.query_many)
        for signal, keys, expected in many:
            before = together.statements
            # The same member asked twice at once (two interactions): each lookup gets the rows.
            answers = await _behind_a_blocker(together, signal.query, [*keys, keys[0]])
            assert answers == [*expected, expected[0]], signal.name
            assert together.statements - before <= 3, signal.name  # the blocker and one statement per share
            assert together.uses_many_form(signal.query), signal.name  # it answered: not dropped for a failure


async def test_a_many_keys_query_that_fails_is_dropped_and_the_keys_are_answered_one_by_one(lakehouse: Path) -> None:
    source = DuckDBSource.connect("lake", {}, lakehouse, workers=1)
    query = "SELECT :key AS k"
    try:
        source.add_many_form(query, "SELECT key FROM no_such_table WHERE key IN (SELECT unnest(:keys))")
        answers = await _behind_a_blocker(source, query, ["a", "b", "c", "d"])
        assert answers == [[{"k": k}] for k in "abcd"]
        assert not source.uses_many_form(query)
        # Left for good: the next batch goes the usual way, and still answers right.
        assert await _behind_a_blocker(source, query, ["e", "f"]) == [[{"k": "e"}], [{"k": "f"}]]
    finally:
        await source.close()


async def test_rows_for_keys_nobody_asked_about_are_nobodys_answer(lakehouse: Path) -> None:
    source = DuckDBSource.connect("lake", {}, lakehouse, workers=1)
    query = "SELECT :key AS k, :today AS d"
    try:
        stranger = "SELECT key, key AS k, :today AS d FROM (SELECT unnest(list_append(:keys, 'stranger')) AS key)"
        source.add_many_form(query, stranger)
        answers = await _behind_a_blocker(source, query, ["a", "b", "c"])
        assert answers == [[{"k": k, "d": TODAY}] for k in "abc"]
        assert source.uses_many_form(query)  # answered by it, not by the fallback
    finally:
        await source.close()


def test_many_keys_batches_are_shared_among_the_workers_up_to_the_lateral_size() -> None:
    assert batch_size("many", 50, 2) == 25
    assert batch_size("many", 200, 2) == 64
    assert batch_size("many", 3, 2) == 3


async def test_the_activator_hands_each_duckdb_source_the_many_keys_queries_of_its_signals(lakehouse: Path) -> None:
    releases = load_releases()
    activator = await Activator.open(releases, lakehouse)
    try:
        source = activator.sources["health"]["lakehouse"]
        assert isinstance(source, DuckDBSource)
        shipped = {s.query for s in releases["health"].signals.values() if s.query_many}
        assert len(shipped) == 3 and all(source.uses_many_form(query) for query in shipped)
    finally:
        await activator.close()
