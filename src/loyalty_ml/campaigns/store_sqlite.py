"""Contact log in SQLite (local profile): one file under LOYALTY_HOME, WAL, ``BEGIN IMMEDIATE``.

``BEGIN IMMEDIATE`` takes SQLite's single write lock up front, so campaign creation is serialised
across threads and processes; readers keep reading the last committed state (WAL).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loyalty_ml.campaigns.store_sql import SqlContactLog


class SqliteContactLog(SqlContactLog):
    backend_name = "sqlite"

    def __init__(self, path: Path | str, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_s = busy_timeout_s
        with self._connection() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            for statement in self._schema_statements():
                conn.execute(statement)

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        try:
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            yield conn
        finally:
            conn.close()

    def _begin_write(self, cur: Any) -> None:
        cur.execute("BEGIN IMMEDIATE")

    def __repr__(self) -> str:
        return f"SqliteContactLog({self.path.name})"
