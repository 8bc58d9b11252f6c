"""A running service drops an erased member: ``loyalty member erase`` appends to the erasure
log, the backend re-reads it (``privacy.erasure_poll_s``) and answers that member as unknown."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pandas as pd
import pytest

from loyalty_ml.campaigns import erasure
from loyalty_ml.campaigns.contact_log import member_hash
from loyalty_ml.serving.adapters import Loaded
from loyalty_ml.serving.champion import ERASED_ID, ChampionBackend, ChurnCache, Erasures, _State
from loyalty_ml.serving.config import PrivacyConfig, ServingConfig
from loyalty_ml.serving.schemas import RecommendRequest
from loyalty_ml.serving.snapshot import BatchSnapshot


class _Churn:
    def reasons(self, frame: pd.DataFrame, top_k: int = 3) -> list[list[dict[str, float]]]:
        return [[{"code": "recency", "weight": 0.5}] for _ in range(len(frame))]


class _Recs:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def recommend(self, member_id, n, **_):  # type: ignore[no-untyped-def]
        self.asked.append(member_id)
        return [{"product_id": f"p{i}", "score": 1.0, "reason": "test"} for i in range(n)], None

    def popular(self, n):  # type: ignore[no-untyped-def]
        return []


def _snapshot(ids: list[str]) -> BatchSnapshot:
    features = pd.DataFrame({"member_id": ids, "x": range(len(ids))}).set_index(
        "member_id", drop=False
    )
    scores = pd.DataFrame(
        {
            "member_id": ids,
            "churn_probability": [0.9] * len(ids),
            "risk_band": ["high"] * len(ids),
            "value_segment": ["top"] * len(ids),
            "value_at_risk": [1.0] * len(ids),
        }
    )
    return BatchSnapshot("t", "/nowhere", pd.Timestamp("2026-01-01", tz="UTC"), features,
                         scores, features, None)  # fmt: skip


def test_erasure_log_is_read_when_it_changes(tmp_path: Path) -> None:
    log = Erasures(tmp_path / "erasures.jsonl")
    assert not log.refresh() and not log.erased("m1")
    (tmp_path / "erasures.jsonl").write_text(json.dumps({"member_hash": member_hash("m1")}) + "\n")
    assert log.refresh() and not log.refresh()  # read once per change
    assert log.erased("m1") and not log.erased("m2")
    assert log.among(["m1", "m2", "m3"]) == frozenset({"m1"})


def test_running_service_stops_answering_for_an_erased_member(
    loyalty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = ["m1", "m2", "m3"]
    snap, churn, recs = _snapshot(ids), _Churn(), _Recs()
    cache = ChurnCache(snap, churn)

    def fake_load(self: ChampionBackend, generation: int) -> _State:
        return _State(
            generation,
            churn=Loaded(churn, "churn/1"),
            recs=Loaded(recs, "recs/1"),
            benefits=Loaded(object(), "benefits/1"),
            snapshot=snap,
            churn_cache=cache,
        )

    monkeypatch.setattr(ChampionBackend, "_load", fake_load)
    monkeypatch.setattr(erasure, "ERASERS", ())  # the feature store / recs erasers: not here
    backend = ChampionBackend(ServingConfig(privacy=PrivacyConfig(erasure_poll_s=0.05)))

    async def scenario() -> None:
        await backend.start()
        before = await backend.churn_score(["m1", "m2"])
        assert [s.member_id for s in before.scores] == ["m1", "m2"]
        assert "m1" in cache.reasons
        await backend.recommend(RecommendRequest(member_id="m1", n=2))
        assert recs.asked == ["m1"]

        erasure.erase_member("m1")  # what `loyalty member erase m1` runs
        await asyncio.sleep(0.3)  # > erasure_poll_s

        after = await backend.churn_score(["m1", "m2"])
        assert [s.member_id for s in after.scores] == ["m2"]
        assert after.unknown == ["m1"]
        assert "m1" not in cache.reasons and not cache.known("m1")
        answer = await backend.recommend(RecommendRequest(member_id="m1", n=2))
        assert answer.fallback == "cold_start" and answer.member_id == "m1"
        assert recs.asked[-1] == ERASED_ID  # nothing of m1's history was asked for
        with pytest.raises(Exception, match="unknown member"):
            await backend.benefits("m1", None)
        assert backend._erased_ids == frozenset({"m1"})  # at-risk lists filter these out
        await backend.stop()

    asyncio.run(scenario())
    assert (loyalty_home / "privacy" / "erasures.jsonl").is_file()
    assert "m1" not in (loyalty_home / "privacy" / "erasures.jsonl").read_text()


def test_champions_resolved_by_the_parent_load_locally_or_say_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loyalty_ml.serving import adapters

    loaded: list[Path] = []

    class _Loader:
        @staticmethod
        def load(source: Path) -> str:
            loaded.append(source)
            return "model"

    def no_mlflow(name: str) -> str:
        raise AssertionError("workers must not ask MLflow when the parent resolved")

    monkeypatch.setattr(adapters, "_attr", lambda module, name: _Loader)
    monkeypatch.setattr(adapters, "_champion_version", no_mlflow)
    (tmp_path / "a" / "artifacts").mkdir(parents=True)
    (tmp_path / "a" / "artifacts" / "churn_model.json").write_text("{}")
    resolved = {
        "dataset": "demo",
        "champions": {
            "churn-demo": {"version": "churn-demo/3", "path": str(tmp_path / "a")},
            "recs-demo": {"error": "no champion for 'recs-demo': train one"},
        },
    }
    churn = adapters.load_churn("demo", resolved)
    assert churn.version == "churn-demo/3" and loaded == [tmp_path / "a" / "artifacts"]
    with pytest.raises(adapters.AdapterMissing, match="no champion for 'recs-demo'"):
        adapters.load_recommender("demo", resolved)


def test_no_tracking_store_means_no_champion_without_asking_mlflow(
    loyalty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loyalty_ml.serving import adapters
    from loyalty_ml.serving.resolve import resolve_champions
    from loyalty_ml.settings import get_settings

    if not str(get_settings().tracking_uri).startswith("sqlite:///"):
        pytest.skip("the local profile's SQLite tracking store is not configured")
    resolved = resolve_champions("demo", loyalty_home / "champions")
    assert resolved["via"] == "sqlite"
    assert resolved["champions"]["churn-demo"] == {
        "error": "no champion for 'churn-demo': train one (`loyalty train ...`) so it gets the alias"
    }
    with pytest.raises(adapters.AdapterMissing, match="no champion for 'benefits-demo'"):
        adapters.load_benefits("demo", resolved)
