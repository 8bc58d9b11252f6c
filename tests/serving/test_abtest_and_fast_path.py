"""A/B tagging (variant per member, exposures flushed off the request path) and the lean hot path
(same answers as FastAPI's path, errors handed to FastAPI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from loyalty_ml.abtest import assign_variant, load_ab_config, read_exposures
from loyalty_ml.errors import ConfigError
from loyalty_ml.serving.app import SLOW_PATH_HEADER, create_app
from loyalty_ml.serving.config import AbTestServing, ServingConfig
from loyalty_ml.serving.keys import KeyRing
from tests.serving.conftest import KEYS, headers
from tests.serving.fake_backend import FakeBackend

EXPERIMENT = "recs-blend-vs-als"  # shipped in config/abtest.yaml
SF, CP = headers("storefront"), headers("campaigns")
SLOW = {SLOW_PATH_HEADER.decode(): "1"}


def _client(config: ServingConfig, backend: FakeBackend | None = None) -> TestClient:
    keyring = KeyRing.from_mapping(KEYS, config.auth.key_scopes)  # type: ignore[arg-type]
    app = create_app(backend=backend or FakeBackend(config), config=config, keyring=keyring)
    return TestClient(app, raise_server_exceptions=False)


def test_recommend_tagged_with_the_hash_variant_and_exposures_logged(loyalty_home: Path) -> None:
    config = ServingConfig(abtest=AbTestServing(endpoints={"recommend": EXPERIMENT}, flush_s=0.05))
    splits = load_ab_config().experiments[EXPERIMENT].splits
    members = [f"m{i}" for i in range(300)]
    seen: dict[str, str] = {}
    backend = FakeBackend(config)
    with _client(config, backend) as client:
        for i, member in enumerate(members):
            if i == 150:
                backend.fail_recommend = ConnectionError("down")  # degraded answers too
            body = client.post("/recommend", json={"member_id": member}, headers=SF).json()
            assert body["experiment"] == EXPERIMENT
            assert body["variant"] == assign_variant(EXPERIMENT, member, splits)
            seen[member] = body["variant"]
        assert body["fallback"] == "degraded"
        again = client.post("/recommend", json={"member_id": "m7"}, headers=SF).json()
        assert again["variant"] == seen["m7"]  # stable
    assert set(seen.values()) == set(splits)  # both arms occur in 300 members
    log = read_exposures(load_ab_config().exposures_path())  # flushed, at the latest at shutdown
    assert len(log) == len(members) + 1
    assert (log["experiment"] == EXPERIMENT).all()
    assert dict(zip(log["member_id"], log["variant"], strict=True)) == seen
    assert log["exposed_at"].notna().all()


def test_untagged_without_configuration_and_no_log(loyalty_home: Path) -> None:
    with _client(ServingConfig()) as client:
        body = client.post("/recommend", json={"member_id": "m1"}, headers=SF).json()
        assert body["experiment"] is None and body["variant"] is None
    assert not load_ab_config().exposures_path().exists()


def test_unknown_experiment_refuses_to_start(loyalty_home: Path) -> None:
    config = ServingConfig(abtest=AbTestServing(endpoints={"recommend": "no-such-experiment"}))
    with pytest.raises(ConfigError, match="no-such-experiment"), _client(config):
        pass


@pytest.mark.parametrize(
    ("path", "body", "key"),
    [
        ("/recommend", {"member_id": "m1", "n": 4, "context": "cart", "cart": ["p1"]}, SF),
        ("/recommend", {"member_id": 42}, SF),
        ("/churn_score", {"member_ids": ["m1", "ghost", "m1"]}, CP),
    ],
)
def test_fast_path_answers_like_fastapi(
    client: TestClient, path: str, body: dict, key: dict
) -> None:
    fast = client.post(path, json=body, headers=key)
    slow = client.post(path, json=body, headers={**key, **SLOW})
    assert fast.status_code == slow.status_code == 200
    assert fast.json() == slow.json()


@pytest.mark.parametrize(
    ("path", "raw", "key"),
    [
        ("/recommend", b'{"member_id": "m1", "n": 0}', SF),
        ("/recommend", b'{"member_id": "m1", "n": "3"}', SF),
        ("/recommend", b'{"member_id": "m1", "context": "similar"}', SF),
        ("/recommend", b"{not json", SF),
        ("/recommend", b"", SF),
        ("/churn_score", b'{"member_ids": []}', CP),
        ("/churn_score", b'{"member_ids": [true]}', CP),
    ],
)
def test_fast_path_errors_are_fastapis(
    client: TestClient, path: str, raw: bytes, key: dict
) -> None:
    ctype = {"content-type": "application/json"}
    fast = client.post(path, content=raw, headers={**key, **ctype})
    slow = client.post(path, content=raw, headers={**key, **ctype, **SLOW})
    assert 400 <= fast.status_code < 500
    assert (fast.status_code, fast.json()) == (slow.status_code, slow.json())
