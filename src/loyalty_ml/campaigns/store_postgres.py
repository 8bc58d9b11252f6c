"""Contact log in PostgreSQL (production profile), psycopg 3 with a small connection pool.

Campaign creation takes a transaction-scoped advisory lock, so creations are serialised across
workers and hosts (a later campaign sees earlier contacts); the primary key on ``campaign_id``
backs idempotency even without it. Tables live in one schema (default ``loyalty``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from loyalty_ml.campaigns.store_sql import SqlContactLog
from loyalty_ml.errors import ConfigError

# A fixed 64-bit key for pg_advisory_xact_lock: "loyalty campaigns".
CAMPAIGN_LOCK_KEY = 0x4C4F59414C5459


class PostgresContactLog(SqlContactLog):
    backend_name = "postgres"
    paramstyle = "format"
    ts_type = "TIMESTAMPTZ"

    def __init__(
        self,
        dsn: str,
        schema: str = "loyalty",
        pool_size: int = 4,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 5.0,
    ) -> None:
        from psycopg_pool import ConnectionPool

        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
            raise ConfigError(f"contact log schema must be a plain identifier, got {schema!r}")
        self.schema = schema
        self._pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_size,
            timeout=timeout_s,
            kwargs={"autocommit": True, "options": f"-c search_path={schema}"},
            open=True,
        )
        try:
            self._pool.wait(timeout=connect_timeout_s)  # fail fast when PostgreSQL is down
        except Exception:
            self._pool.close()
            raise
        with self._pool.connection() as conn:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            conn.execute("SELECT pg_advisory_lock(%s)", (CAMPAIGN_LOCK_KEY,))
            try:
                for statement in self._schema_statements():
                    conn.execute(statement)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (CAMPAIGN_LOCK_KEY,))

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        with self._pool.connection() as conn:
            yield conn

    def _begin_write(self, cur: Any) -> None:
        cur.execute("BEGIN")
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (CAMPAIGN_LOCK_KEY,))

    def _ts(self, value: datetime) -> Any:
        return value

    def drop_schema(self) -> None:
        """Tests only: remove every table of this store."""
        with self._pool.connection() as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")

    def close(self) -> None:
        self._pool.close()

    def __repr__(self) -> str:
        return f"PostgresContactLog(schema={self.schema})"
