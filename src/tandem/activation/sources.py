"""Sources: where signals read enterprise data. One protocol, three backends (DuckDB, PostgreSQL, Databricks).

A source runs a signal's query with two parameters, ``key`` and ``today``, and returns the rows as mappings.
Queries are written with ``:key`` and ``:today``; each backend turns them into its own placeholders, so one
release can move from the embedded lakehouse to a warehouse without rewriting its queries (as long as the SQL
itself is common ground: the shipped examples avoid dialect-only syntax).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tandem.release.signals import PLACEHOLDER, SourceSpec

Row = dict[str, Any]


class SourceError(Exception):
    """A source could not be opened or could not answer (not a timeout: that is the budget's business)."""


class Source(Protocol):
    name: str
    kind: str

    async def query(self, sql: str, params: Mapping[str, Any], timeout_s: float) -> list[Row]:
        """Run ``sql`` (with ``:key`` / ``:today``) and return its rows; give up after ``timeout_s``."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class ManyKeys(Protocol):
    """A source that answers lookups queued together in one statement, and takes a signal's own statement for
    many keys (``query_many``) in place of the forms it writes itself."""

    def add_many_form(self, query: str, many: str) -> None:
        """Answer batches of ``query`` (with ``:key``) with ``many`` (with ``:keys``, the key first in each row)."""
        ...


def named_placeholders(sql: str, style: str) -> str:
    """``:key`` -> ``$key`` (DuckDB) or unchanged (Databricks' native named parameters)."""
    if style == "colon":
        return sql
    return PLACEHOLDER.sub(lambda m: "$" + m.group(1), sql)


def positional_placeholders(sql: str) -> tuple[str, list[str]]:
    """``:key ... :today ... :key`` -> ``$1 ... $2 ... $1`` and the names in order (asyncpg)."""
    order: list[str] = []

    def number(m: Any) -> str:
        name = m.group(1)
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    return PLACEHOLDER.sub(number, sql), order


async def open_source(spec: SourceSpec, data_dir: Path) -> Source:
    """Open the source a release names, bound as its spec says (paths relative to ``data_dir``)."""
    if spec.kind == "duckdb":
        from tandem.activation.duckdb import DuckDBSource

        return await DuckDBSource.open(spec.name, spec.options, data_dir)
    if spec.kind == "postgres":
        from tandem.activation.postgres import PostgresSource

        return await PostgresSource.open(spec.name, spec.options)
    if spec.kind == "databricks":
        from tandem.activation.databricks import DatabricksSource

        return await DatabricksSource.open(spec.name, spec.options)
    raise SourceError(f"source {spec.name}: unknown kind {spec.kind!r}")
