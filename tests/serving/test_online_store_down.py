"""Production profile, real Redis online store: the test starts its own ``redis-server`` on a free
port, materializes a tiny shop's features into it (PostgreSQL registry, a project of its own),
serves ``/recommend`` through the app with ``ChampionBackend``'s real online reader, kills Redis
(SIGKILL), checks the degraded answers and readiness, starts Redis again on the same port and
checks that the service recovers by itself. The recommender is a stub (no champion needed)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from loyalty_ml.serving import champion
from loyalty_ml.serving.adapters import Loaded
from loyalty_ml.serving.app import create_app
from loyalty_ml.serving.champion import ChampionBackend, _State
from loyalty_ml.serving.config import OnlineStoreConfig, ServingConfig
from loyalty_ml.serving.keys import KeyRing
from loyalty_ml.settings import reset_settings_cache
from tests.conftest import require_service
from tests.serving.conftest import KEYS, headers

pytestmark = pytest.mark.services
REDIS = shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_redis(port: int, workdir: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


class _Recs:
    """Echoes the tier it was given, so the test sees the online read working."""

    def recommend(self, member_id, n, *, context, cart, product_id, member_tier, now):  # type: ignore[no-untyped-def]
        tier = "none" if member_tier is None else str(member_tier)
        items = [
            {"product_id": f"p{i}", "score": 1.0, "reason": f"tier:{tier}", "points_to_earn": 1}
            for i in range(n)
        ]
        return items, None

    def popular(self, n):  # type: ignore[no-untyped-def]
        return [
            {"product_id": f"top{i}", "score": 1.0, "reason": "popular", "points_to_earn": 1}
            for i in range(n)
        ]


@pytest.fixture
def own_redis(
    loyalty_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[int, Path, dict[str, subprocess.Popen]]]:
    if REDIS is None:
        pytest.skip("redis-server is not installed")
    require_service("PostgreSQL", "127.0.0.1", 5432)  # the production profile's registry
    port = _free_port()
    proc = _start_redis(port, tmp_path)
    project = "t" + uuid.uuid4().hex[:12]
    monkeypatch.setenv("LOYALTY_PROFILE", "production")
    monkeypatch.setenv("LOYALTY_REDIS_PORT", str(port))
    monkeypatch.setenv("LOYALTY_FEAST_PROJECT", project)
    reset_settings_cache()
    holder = {"proc": proc}
    try:
        yield port, tmp_path, holder
    finally:
        from loyalty_ml.features.store import teardown_project

        if holder["proc"].poll() is None:
            holder["proc"].kill()
            holder["proc"].wait(5)
        restarted = _start_redis(port, tmp_path)  # the project's registry rows go too
        try:
            with suppress(Exception):
                teardown_project(project=project)
        finally:
            restarted.kill()
            restarted.wait(5)
        proc.kill()
        proc.wait(5)


def test_redis_killed_degrades_reports_and_recovers(
    own_redis: tuple[int, Path, dict[str, subprocess.Popen]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from loyalty_ml.features.materialize import materialize
    from loyalty_ml.features.store import open_store
    from loyalty_ml.features.training import training_set
    from tests.features.fixtures import T, tiny_dataset

    port, workdir, redis_proc = own_redis
    training_set(tiny_dataset(with_items=False), "churn_v1", as_of=T)
    report = materialize(open_store(), T, engine="fast")
    assert report.online_store == "redis"

    def load(self: ChampionBackend, generation: int) -> _State:
        online = champion.adapters.open_online_store()
        assert online.reader.backend == "redis"
        return _State(generation, recs=Loaded(_Recs(), "recs/1"), online=online)

    monkeypatch.setattr(ChampionBackend, "_load", load)
    monkeypatch.setattr(champion, "LOG_RETRY_S", 3600.0)
    config = ServingConfig(online_store=OnlineStoreConfig(retry_after_s=0.2))
    keyring = KeyRing.from_mapping(KEYS, config.auth.key_scopes)  # type: ignore[arg-type]
    app = create_app(backend=ChampionBackend(config), config=config, keyring=keyring)
    sf = headers("storefront")
    with TestClient(app, raise_server_exceptions=False) as client:
        up = client.post("/recommend", json={"member_id": "m1", "n": 3}, headers=sf).json()
        assert up["fallback"] is None and len(up["items"]) == 3
        ready = client.get("/readyz").json()
        assert ready["components"]["online_store"]["ready"], ready

        redis_proc["proc"].send_signal(signal.SIGKILL)  # our own Redis, killed hard
        redis_proc["proc"].wait(5)
        started = time.monotonic()
        for _ in range(20):
            down = client.post("/recommend", json={"member_id": "m1", "n": 3}, headers=sf)
            assert down.status_code == 200
            body = down.json()
            assert body["fallback"] == "degraded" and len(body["items"]) == 3, body
            time.sleep(0.02)  # some calls skip the store, some try it again and fail fast
        assert time.monotonic() - started < 5  # a failed read is bounded, not redis-py's retries
        online = client.get("/readyz").json()["components"]["online_store"]
        assert not online["ready"] and "Connection" in online["message"], online

        restarted = _start_redis(port, workdir)  # empty: recovery must not need a restart
        try:
            time.sleep(0.3)  # past retry_after_s
            back = client.post("/recommend", json={"member_id": "m1", "n": 3}, headers=sf).json()
            assert back["fallback"] is None and back["items"][0]["reason"] == "tier:none"
            assert client.get("/readyz").json()["components"]["online_store"]["ready"]
        finally:
            restarted.kill()
            restarted.wait(5)
