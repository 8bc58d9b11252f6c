"""Contact-log fixtures: every store runs the same tests (PostgreSQL in a throw-away schema)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from loyalty_ml.campaigns.contact_log import ContactLog
from tests.conftest import require_service

PG_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def make_sqlite(tmp_path: Path) -> ContactLog:
    from loyalty_ml.campaigns.store_sqlite import SqliteContactLog

    return SqliteContactLog(tmp_path / "contact_log.sqlite")


@pytest.fixture
def pg_schema() -> Iterator[str]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    schema = f"loyalty_test_{uuid.uuid4().hex[:10]}"
    yield schema
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path):
    """A callable opening (another handle on) the same store, for both backends."""
    opened: list[ContactLog] = []
    if request.param == "sqlite":

        def factory() -> ContactLog:
            log = make_sqlite(tmp_path)
            opened.append(log)
            return log

    else:
        schema = request.getfixturevalue("pg_schema")

        def factory() -> ContactLog:
            from loyalty_ml.campaigns.store_postgres import PostgresContactLog

            log = PostgresContactLog(PG_DSN, schema=schema, pool_size=8)
            opened.append(log)
            return log

    yield factory
    for log in opened:
        log.close()


@pytest.fixture
def store(store_factory) -> ContactLog:
    return store_factory()
