"""Batches: concurrent lookups of one signal, for different keys, answered by one DuckDB statement.

With many interactions at once, most of a DuckDB lookup's CPU is the statement's own cost (parsing, planning,
starting the scan), not the rows: fifty ``fraud_score`` lookups one by one cost some fifty times what one
statement for the fifty keys costs. A source queues lookups while its threads are busy; a free thread takes
every queued lookup of the oldest waiting query and runs them together, written one of two ways:

* **union**: the query once per key, ``SELECT 0 AS __batch, * FROM (<query for key 0>) UNION ALL ...``: each
  branch is exactly the signal's query, so each key's rows are exactly what it alone would return, in the
  same order; one statement instead of many (about 2x less CPU at 50 keys on 10 million rows);
* **lateral**: the keys as a table and the query as a ``LATERAL`` subquery over it, which DuckDB decorrelates
  into one join: one scan for all the keys. Far cheaper on small tables (15x on the fraud alerts), far dearer
  on big ones (a join over 10 million transactions), and its rows come back in no particular order, so it is
  only used for queries without an ``ORDER BY`` of their own at the top.

Which one a query gets is measured, not guessed: the first batches of a query try each eligible form, and the
one with the least CPU per key wins from then on. A lookup alone (the usual case when the source is not busy)
runs as the plain query, with no waiting: batching only gathers what queues up anyway.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Form = Literal["union", "lateral"]
BATCH_COLUMN = "__batch"
LATERAL_MAX = 64  # keys per lateral statement: one scan whatever the count, so as many as are waiting
UNION_MAX = 16  # keys per union statement: it costs per key, and a smaller one that misses the budget loses less
PROBE_MIN = 4  # a batch this size or more may be timed to choose the form
_KEY = re.compile(r"\$key\b")
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|[()]|\bORDER\s+BY\b", re.I | re.S)


def ordered_at_top(sql: str) -> bool:
    """Whether the query has an ORDER BY outside every parenthesis (its rows' order is part of its answer)."""
    depth = 0
    for match in _TOKENS.finditer(sql):
        token = match.group(0)
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif token[0] not in "'\"-/" and depth == 0:
            return True
    return False


def union_sql(sql: str, size: int) -> str:
    """``sql`` (with ``$key``) once per key, each branch tagged with its position; keys are ``$key_<i>``."""
    return " UNION ALL ".join(
        f"SELECT {i} AS {BATCH_COLUMN}, * FROM ({_KEY.sub(f'$key_{i}', sql)}) __b{i}" for i in range(size)
    )


def lateral_sql(sql: str) -> str:
    """``sql`` as a LATERAL subquery over the keys (``$__keys``, a list), each row tagged with its key's position."""
    keys = f"SELECT i AS {BATCH_COLUMN}, $__keys[i + 1] AS __key FROM range(len($__keys)) __r(i)"
    return f"SELECT __k.{BATCH_COLUMN}, __q.* FROM ({keys}) __k, LATERAL ({_KEY.sub('__k.__key', sql)}) __q"


def batch_size(form: Form, waiting: int, workers: int) -> int:
    """How many of the waiting lookups one statement takes. A union costs per key, so a long queue is shared
    among the workers (halves on two cores answer in half the time); a lateral costs per scan, so it takes all."""
    if form == "lateral":
        return min(LATERAL_MAX, waiting)
    return min(UNION_MAX, waiting, max(PROBE_MIN, -(-waiting // workers)))


def batch_params(form: Form, keys: list[str], shared: Mapping[str, Any]) -> dict[str, Any]:
    if form == "lateral":
        return {**shared, "__keys": keys}
    return {**shared, **{f"key_{i}": key for i, key in enumerate(keys)}}


@dataclass
class FormChoice:
    """What each form of one query has cost, per key; the form to use next."""

    lateral_ok: bool
    ms_per_key: dict[Form, float] = field(default_factory=dict)

    def next(self, size: int) -> Form:
        forms: list[Form] = ["union", "lateral"] if self.lateral_ok else ["union"]
        untried = [f for f in forms if f not in self.ms_per_key]
        if untried and size >= PROBE_MIN:
            return untried[-1]
        measured = {f: ms for f, ms in self.ms_per_key.items() if f in forms}
        return min(measured, key=measured.__getitem__) if measured else "union"

    def record(self, form: Form, size: int, cpu_ms: float) -> None:
        if size < PROBE_MIN:
            return  # too few keys to say what the form costs per key
        per_key = cpu_ms / size
        before = self.ms_per_key.get(form)
        self.ms_per_key[form] = per_key if before is None else 0.8 * before + 0.2 * per_key

    def refuse_lateral(self) -> None:
        self.lateral_ok = False
        self.ms_per_key.pop("lateral", None)
