"""PostgreSQL as a signal source, through an asyncpg pool.

    accounts_db:
      kind: postgres
      dsn_env: TANDEM_BANK_PG_DSN     # or dsn: postgresql://... (prefer the environment for credentials)
      schema: banking                 # optional search_path
      pool_size: 10                   # optional

``:key`` and ``:today`` become ``$1``, ``$2``; a query past its budget is cancelled on the server by asyncpg.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from tandem.activation.sources import Row, SourceError, positional_placeholders


class PostgresSource:
    kind = "postgres"

    def __init__(self, name: str, pool: Any) -> None:
        self.name = name
        self._pool = pool

    @classmethod
    async def open(cls, name: str, options: Mapping[str, Any]) -> PostgresSource:
        unknown = set(options) - {"dsn", "dsn_env", "schema", "pool_size"}
        if unknown:
            raise SourceError(f"source {name}: unknown options {sorted(unknown)}; use dsn, dsn_env, schema, pool_size")
        dsn = options.get("dsn") or (os.environ.get(str(options["dsn_env"])) if options.get("dsn_env") else None)
        if not dsn:
            raise SourceError(f"source {name}: no DSN (set {options.get('dsn_env') or 'dsn_env'} or give dsn)")
        try:
            import asyncpg
        except ImportError as exc:  # the [postgres] extra
            raise SourceError("PostgreSQL sources need asyncpg: pip install 'tandem[postgres]'") from exc
        pool_size = options.get("pool_size", 10)
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise SourceError(
                f"source {name}: pool_size must be a whole number of connections, at least 1, not {pool_size!r} "
                "(about two per core of the database server)"
            )
        settings = {"search_path": str(options["schema"])} if options.get("schema") else None
        try:
            pool = await asyncpg.create_pool(str(dsn), min_size=1, max_size=pool_size, server_settings=settings)
        except (OSError, asyncpg.PostgresError) as exc:
            raise SourceError(f"source {name}: cannot connect: {exc}") from exc
        return cls(name, pool)

    async def query(self, sql: str, params: Mapping[str, Any], timeout_s: float) -> list[Row]:
        import asyncpg

        text, order = positional_placeholders(sql)
        try:
            async with self._pool.acquire() as conn:
                records = await conn.fetch(text, *(params[n] for n in order), timeout=timeout_s)
        except asyncpg.PostgresError as exc:
            raise SourceError(f"source {self.name}: {exc}") from exc
        return [dict(r) for r in records]

    async def close(self) -> None:
        await self._pool.close()
