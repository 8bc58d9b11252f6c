"""Contact log under real process concurrency and a real crash (``os._exit`` mid-transaction)."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loyalty_ml.campaigns.contact_log import BuiltCampaign, ContactRow, ContactView
from tests.campaigns.conftest import PG_DSN

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MEMBERS = [f"m{j}" for j in range(40)]


def _open(kind: str, where: str):
    if kind == "sqlite":
        from loyalty_ml.campaigns.store_sqlite import SqliteContactLog

        return SqliteContactLog(Path(where) / "contact_log.sqlite")
    from loyalty_ml.campaigns.store_postgres import PostgresContactLog

    return PostgresContactLog(PG_DSN, schema=where, pool_size=5)


def _build(view: ContactView) -> BuiltCampaign:
    taken = set(view.contacts["member_id"])
    chosen = [m for m in MEMBERS if m not in taken]
    return BuiltCampaign(
        {"members": [{"member_id": m} for m in chosen], "pid": os.getpid()},
        [ContactRow(m, "email", "v", 1.0, 0.9) for m in chosen],
    )


def _creator(kind: str, where: str, queue: mp.Queue) -> None:
    log = _open(kind, where)
    results: list[int] = []

    def one() -> None:
        results.append(log.create_campaign("c1", {"id": 1}, _build, now=NOW).payload["pid"])

    threads = [threading.Thread(target=one) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    queue.put(results)


def _crasher(kind: str, where: str) -> None:
    log = _open(kind, where)

    class DiesMidway(list):
        def __iter__(self):
            yield ContactRow("a", "email", "v", 1.0, 0.5)
            yield ContactRow("b", "email", "v", 1.0, 0.5)
            os._exit(9)  # the process dies inside the open transaction

    log.create_campaign("c1", {"id": 1}, lambda v: BuiltCampaign({"members": []}, DiesMidway()))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return ("sqlite", str(tmp_path))
    return ("postgres", request.getfixturevalue("pg_schema"))


def test_four_processes_of_five_threads_produce_one_list(where: tuple[str, str]) -> None:
    kind, location = where
    _open(kind, location).close()  # create the schema before the race
    ctx = mp.get_context("fork")
    queue: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_creator, args=(kind, location, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    pids = [pid for _ in procs for pid in queue.get(timeout=60)]
    for p in procs:
        p.join(timeout=60)
    assert len(pids) == 20 and len(set(pids)) == 1  # every caller got the one recorded list
    log = _open(kind, location)
    assert len(log.contacts()) == len(MEMBERS)
    log.close()


def test_process_killed_mid_write_leaves_nothing(where: tuple[str, str]) -> None:
    kind, location = where
    _open(kind, location).close()
    proc = mp.get_context("fork").Process(target=_crasher, args=(kind, location))
    proc.start()
    proc.join(timeout=60)
    assert proc.exitcode == 9
    log = _open(kind, location)
    assert log.contacts().empty
    result = log.create_campaign("c1", {"id": 1}, _build, now=NOW)
    assert len(result.payload["members"]) == len(MEMBERS)
    log.close()
