"""The real backend before any model exists (clear readiness, degraded /recommend) and its
atomic reload (requests in flight keep the snapshot they started with)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from loyalty_ml.serving import champion
from loyalty_ml.serving.adapters import Loaded
from loyalty_ml.serving.app import create_app
from loyalty_ml.serving.champion import ChampionBackend, _State
from loyalty_ml.serving.config import OnlineStoreConfig, ServingConfig
from loyalty_ml.serving.keys import KeyRing
from loyalty_ml.serving.schemas import RecommendRequest
from tests.serving.conftest import KEYS, headers


@pytest.mark.slow  # imports the model stack (lightgbm, mlflow, feast): ~10 s cold
def test_no_champion_means_not_ready_with_reasons_and_degraded_recommend(
    loyalty_home: Path,
) -> None:
    config = ServingConfig()
    app = create_app(
        backend=ChampionBackend(config, dataset="nothing"),
        config=config,
        keyring=KeyRing.from_mapping(KEYS, config.auth.key_scopes),  # type: ignore[arg-type]
    )
    with TestClient(app) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        components = ready.json()["components"]
        assert not components["churn_model"]["ready"]
        assert "no champion for 'churn-nothing'" in components["churn_model"]["message"]
        assert components["contact_log"]["ready"]
        rec = client.post("/recommend", json={"member_id": "m1"}, headers=headers("storefront"))
        assert rec.status_code == 200 and rec.json()["fallback"] == "degraded"
        churn = client.post(
            "/churn_score", json={"member_ids": ["m1"]}, headers=headers("campaigns")
        )
        assert churn.status_code == 503 and churn.json()["error"] == "not_ready"
        at_risk = client.post(
            "/campaigns/at_risk",
            json={"campaign_id": "c", "limit": 1},
            headers=headers("campaigns"),
        )
        assert at_risk.status_code == 503


class _Recs:
    def __init__(self, tag: str) -> None:
        self.tag = tag

    def recommend(self, member_id, n, **_):
        return [
            {"product_id": f"{self.tag}-{i}", "score": 1.0, "reason": "test"} for i in range(n)
        ], None

    def popular(self, n):
        return []


def test_reload_swaps_atomically(loyalty_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()

    def fake_load(self: ChampionBackend, generation: int) -> _State:
        if generation > 1:
            gate.wait(5)  # the new champions take a while to load
        return _State(generation, recs=Loaded(_Recs(f"g{generation}"), f"recs/{generation}"))

    monkeypatch.setattr(ChampionBackend, "_load", fake_load)
    backend = ChampionBackend(ServingConfig())

    async def scenario() -> None:
        await backend.start()
        request = RecommendRequest(member_id="m1", n=1)
        assert (await backend.recommend(request)).model_version == "recs/1"
        started = await backend.reload()
        assert started.status == "started" and started.generation == 2
        assert (await backend.reload()).status == "already_running"
        # while generation 2 loads, requests are served by generation 1
        assert (await backend.recommend(request)).items[0].product_id == "g1-0"
        gate.set()
        for _ in range(100):
            await asyncio.sleep(0.02)
            if backend._state.generation == 2:
                break
        assert (await backend.recommend(request)).model_version == "recs/2"
        await backend.stop()

    asyncio.run(scenario())
    assert champion.ChampionBackend is ChampionBackend


class _Online:
    def __init__(self) -> None:
        self.down = False

    def get(self, member_ids):  # type: ignore[no-untyped-def]
        if self.down:
            raise ConnectionError("redis down")
        import pandas as pd

        return pd.DataFrame({"member_id": member_ids, "tier": "gold"}).set_index(
            "member_id", drop=False
        )

    def ping(self) -> None:
        if self.down:
            raise ConnectionError("redis down")


def test_online_store_down_degrades_and_recovers(
    loyalty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    online = _Online()

    def fake_load(self: ChampionBackend, generation: int) -> _State:
        return _State(generation, recs=Loaded(_Recs("g"), "recs/1"), online=online)

    monkeypatch.setattr(ChampionBackend, "_load", fake_load)
    retry = OnlineStoreConfig(retry_after_s=0.2)  # after a failure the store is skipped 0.2 s
    backend = ChampionBackend(ServingConfig(online_store=retry))

    async def scenario() -> None:
        await backend.start()
        request = RecommendRequest(member_id="m1", n=2)
        assert (await backend.recommend(request)).fallback is None
        online.down = True
        answer = await backend.recommend(request)
        assert answer.fallback == "degraded" and len(answer.items) == 2
        ready = await backend.readiness()
        assert not ready.components["online_store"].ready
        assert "redis down" in ready.components["online_store"].message
        online.down = False  # recovery needs nothing but the store coming back
        assert (await backend.recommend(request)).fallback == "degraded"  # still skipped
        await asyncio.sleep(0.25)
        assert (await backend.recommend(request)).fallback is None
        assert (await backend.readiness()).components["online_store"].ready
        await backend.stop()

    asyncio.run(scenario())


def test_contact_log_down_at_start_is_retried(
    loyalty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loyalty_ml.campaigns.contact_log import open_contact_log

    calls: list[int] = []

    def flaky_open(profile: object = None, schema: str = "loyalty") -> object:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("postgres down")
        return open_contact_log(None, schema)

    monkeypatch.setattr(champion, "open_contact_log", flaky_open)
    monkeypatch.setattr(champion, "LOG_RETRY_S", 0.0)
    monkeypatch.setattr(ChampionBackend, "_load", lambda self, generation: _State(generation))
    backend = ChampionBackend(ServingConfig())

    async def scenario() -> None:
        await backend.start()
        assert backend._log is None
        ready = await backend.readiness()  # retries, and this time the log opens
        assert ready.components["contact_log"].ready
        await backend.stop()

    asyncio.run(scenario())
    assert len(calls) == 2
