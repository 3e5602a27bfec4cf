"""Batches: concurrent lookups of one signal, for different keys, answered by one DuckDB statement.

With many interactions at once, most of a DuckDB lookup's CPU is the statement's own cost (parsing, planning,
starting the scan), not the rows: fifty ``fraud_score`` lookups one by one cost some fifty times what one
statement for the fifty keys costs. A source queues lookups while its threads are busy; a free thread takes
every queued lookup of the oldest waiting query and runs them together, written one of two ways:

* **union**: the query once per key, ``SELECT 0 AS __batch, * FROM (<query for key 0>) UNION ALL ...``: each
  branch is exactly the signal's query, so each key's rows are exactly what it alone would return, in the
  same order; one statement instead of many (about 2x less CPU at 50 keys on 10 million rows);
* **lateral**: the keys as a table and the query as a ``LATERAL`` subquery over it, which DuckDB decorrelates
  into one join: one scan for all the keys, and one plan. Far cheaper on small tables (15x on the fraud alerts,
  7x on the travel notices), far dearer on big ones (a join over 10 million transactions). Its rows come back
  in no particular order: a query with an ``ORDER BY`` of its own at the top gets its order back by a sort of
  each key's rows on the same output columns, the same way (``top_order``); a query whose order cannot be
  read off its output (an expression, a position, a column it does not return) is batched as a union only.

A signal may also bring its own statement for many keys (``query_many`` in the release): the **many** form,
used for every batch of that query, no trial. Its author knows the data and can write what no rewriting of the
single query can: the keys as an ``IN`` list that DuckDB checks against each row group's min and max, and a
window where the single query has a ``LIMIT`` (about half the union's CPU per key for the bill set on 10
million card transactions). Like a union's, its keys are shared among the workers.

Which of the first two a query gets is measured, not guessed: the first batches of a query try the union,
then the lateral form if the query allows it, and the lateral form wins if its CPU per key is below the union's
divided by the workers (a lateral statement keeps all its keys on one thread, a union's are shared). The
lateral trial is cut off (interrupted) once it has cost that much for its keys, and its keys are answered by a
union: on a big table, where a lateral scan can cost seconds, trying it costs at most one union's worth. A lookup
alone (the usual case when the source is not busy) runs as the plain query, with no waiting: batching only
gathers what queues up anyway.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Form = Literal["union", "lateral", "many"]
BATCH_COLUMN = "__batch"
LATERAL_MAX = 64  # keys per lateral statement: one scan whatever the count, so as many as are waiting
UNION_MAX = 16  # keys per union statement: it costs per key, and a smaller one that misses the budget loses less
PROBE_MIN = 4  # a batch this size or more may be timed to choose the form
TRIAL_FLOOR_MS = 2.0  # a lateral trial is never cut off sooner: below it, a timer's own jitter decides
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


@dataclass(frozen=True, slots=True)
class SortKey:
    """One term of a query's top-level ORDER BY, as a column of its output."""

    column: str  # lower case: DuckDB's names are case-insensitive
    descending: bool
    nulls_first: bool


class OrderLost(Exception):
    """A lateral batch's rows cannot be put back in the query's order (a sort column missing or ambiguous, values
    Python cannot order as DuckDB does): the keys are answered one by one instead."""


def top_order(ast: Mapping[str, Any], default_order: str, default_nulls: str) -> tuple[SortKey, ...] | None:
    """How a query's top-level ORDER BY sorts its output, from DuckDB's own parse of it (``json_serialize_sql``);
    ``()`` when it has none, None when the order cannot be restored from its output columns. The defaults are
    DuckDB's ``default_order`` and ``default_null_order`` settings, which an ORDER BY term without its own uses."""
    statements = ast.get("statements") or []
    if ast.get("error") or len(statements) != 1:
        return None
    node = statements[0].get("node") or {}
    orders = [o for m in node.get("modifiers") or [] if m.get("type") == "ORDER_MODIFIER" for o in m["orders"]]
    if not orders:
        return ()
    if node.get("type") != "SELECT_NODE":
        return None  # a UNION's output names are its first branch's: not worth reading here
    outputs: dict[str, list[Mapping[str, Any]]] = {}
    star = False
    for item in node.get("select_list") or []:
        if item.get("class") == "STAR":
            star = True  # its columns are known only when it runs: checked then (OrderLost)
            continue
        name = item.get("alias") or (item["column_names"][-1] if item.get("class") == "COLUMN_REF" else "")
        outputs.setdefault(name.lower(), []).append(item)
    keys = []
    for order in orders:
        expression = order.get("expression") or {}
        if expression.get("class") != "COLUMN_REF":
            return None  # an expression or a position: its values are not among the output columns
        path = [str(part).lower() for part in expression["column_names"]]
        named = outputs.get(path[-1], [])
        if len(named) > 1:
            return None
        if named:
            item = named[0]
            # ``ORDER BY t.c`` sorts on the table's column: the output column of that name must be that column.
            same = item.get("class") == "COLUMN_REF" and [str(p).lower() for p in item["column_names"]] == path
            if len(path) > 1 and not same:
                return None
        elif not star:
            return None  # a column the query does not return
        descending = _descending(order.get("type", "ORDER_DEFAULT"), default_order)
        keys.append(SortKey(path[-1], descending, _nulls_first(order.get("null_order", ""), default_nulls, descending)))
    return tuple(keys)


def _descending(kind: str, default: str) -> bool:
    if kind == "ORDER_DEFAULT":
        kind = default
    return kind.upper().startswith("DESC")


def _nulls_first(kind: str, default: str, descending: bool) -> bool:
    word = (default if kind in ("", "ORDER_DEFAULT") else kind).upper().replace(" ", "_")
    if word in ("NULLS_FIRST_ON_ASC_LAST_ON_DESC", "NULLS_LAST_ON_ASC_FIRST_ON_DESC"):
        return (word.startswith("NULLS_FIRST")) != descending
    return word == "NULLS_FIRST"


def sort_rows(rows: list[tuple[Any, ...]], order: Sequence[SortKey], names: Sequence[str]) -> list[tuple[Any, ...]]:
    """One key's rows in the query's order: stable sorts from the last ORDER BY term to the first."""
    lowered = [name.lower() for name in names]
    for key in reversed(order):
        if lowered.count(key.column) != 1:
            raise OrderLost(f"the output has {lowered.count(key.column)} columns named {key.column!r}")
        at = lowered.index(key.column)
        present = [row for row in rows if row[at] is not None]
        missing = [row for row in rows if row[at] is None]
        if any(isinstance(row[at], float) and math.isnan(row[at]) for row in present):
            raise OrderLost("NaN sorts after every number in DuckDB, nowhere in particular in Python")
        try:
            present.sort(key=lambda row: row[at], reverse=key.descending)
        except TypeError as exc:  # values Python cannot compare (structs, mixed types)
            raise OrderLost(str(exc)) from exc
        rows = missing + present if key.nulls_first else present + missing
    return rows


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
    share = max(PROBE_MIN, -(-waiting // workers))
    return min(LATERAL_MAX if form == "many" else UNION_MAX, waiting, share)


def batch_params(form: Form, keys: list[str], shared: Mapping[str, Any]) -> dict[str, Any]:
    if form == "lateral":
        return {**shared, "__keys": keys}
    if form == "many":
        return {**shared, "keys": keys}
    return {**shared, **{f"key_{i}": key for i, key in enumerate(keys)}}


@dataclass
class FormChoice:
    """What each form of one query has cost, per key; the form to use next."""

    lateral_ok: bool
    order: tuple[SortKey, ...] = ()  # the query's own order, put back on a lateral batch's rows
    # The workers a union's keys are shared among (``batch_size``): a lateral statement takes every key onto one
    # thread, so it wins only when it costs less per key than the union's share of one worker. On 10 million
    # rows the statement signal's lateral form cost 1.9 ms per key against the union's 2.2: one statement for 50
    # keys, on one thread, made every lookup of the burst miss its budget on a busy machine.
    workers: int = 1
    ms_per_key: dict[Form, float] = field(default_factory=dict)

    def next(self, size: int) -> Form:
        forms: list[Form] = ["union", "lateral"] if self.lateral_ok else ["union"]
        untried = [f for f in forms if f not in self.ms_per_key]
        if untried and size >= PROBE_MIN:
            return untried[0]  # the union first: its cost bounds the lateral trial (``trial_cap_ms``)
        lateral, union = self.ms_per_key.get("lateral"), self.ms_per_key.get("union")
        if "lateral" in forms and lateral is not None and (union is None or lateral * self.workers < union):
            return "lateral"
        return "union"

    def record(self, form: Form, size: int, cpu_ms: float) -> None:
        if size < PROBE_MIN:
            return  # too few keys to say what the form costs per key
        per_key = cpu_ms / size
        before = self.ms_per_key.get(form)
        self.ms_per_key[form] = per_key if before is None else 0.8 * before + 0.2 * per_key

    def trial_cap_ms(self, size: int) -> float | None:
        """The CPU a first lateral statement for ``size`` keys may use before it is cut off: what the union
        costs for as many keys, per worker (past that it cannot win). None once the lateral form has been timed."""
        if "lateral" in self.ms_per_key or "union" not in self.ms_per_key:
            return None
        return max(TRIAL_FLOOR_MS, self.ms_per_key["union"] * size / self.workers)

    def refuse_lateral(self) -> None:
        self.lateral_ok = False
        self.ms_per_key.pop("lateral", None)
