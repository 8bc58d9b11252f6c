"""20 concurrent POST /campaigns/at_risk with one campaign_id → one list, one set of contacts,
against the SQLite log (local profile) and PostgreSQL (production profile)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from loyalty_ml.campaigns.contact_log import open_contact_log
from loyalty_ml.serving.app import create_app
from loyalty_ml.serving.config import CampaignConfig, ServingConfig
from loyalty_ml.serving.keys import KeyRing
from loyalty_ml.settings import reset_settings_cache
from tests.conftest import require_service
from tests.serving.conftest import KEYS, headers
from tests.serving.fake_backend import FakeBackend


@pytest.fixture(params=["local", pytest.param("production", marks=pytest.mark.services)])
def profile_config(
    request: pytest.FixtureRequest, loyalty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServingConfig]:
    schema = f"loyalty_test_{uuid.uuid4().hex[:10]}"
    if request.param == "production":
        require_service("PostgreSQL", "127.0.0.1", 5432)
        monkeypatch.setenv("LOYALTY_PROFILE", "production")
        reset_settings_cache()
    yield ServingConfig(campaigns=CampaignConfig(postgres_schema=schema, holdout_share=0.2))
    if request.param == "production":
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
            c.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_twenty_concurrent_callers_one_list(profile_config: ServingConfig) -> None:
    keyring = KeyRing.from_mapping(KEYS, profile_config.auth.key_scopes)  # type: ignore[arg-type]
    app = create_app(backend=FakeBackend(profile_config), config=profile_config, keyring=keyring)
    body = {"campaign_id": "race-1", "limit": 12, "budget": 400}
    with TestClient(app) as client, ThreadPoolExecutor(20) as pool:
        responses = list(
            pool.map(
                lambda _: client.post(
                    "/campaigns/at_risk", json=body, headers=headers("campaigns")
                ),
                range(20),
            )
        )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    lists = [r.json()["members"] for r in responses]
    assert all(m == lists[0] for m in lists)
    assert sum(not r.json()["replayed"] for r in responses) == 1  # one recorded, 19 replays
    log = open_contact_log(schema=profile_config.campaigns.postgres_schema)
    try:
        contacts = log.contacts()
        offers = log.offers("race-1")
    finally:
        log.close()
    assert len(contacts) == len(lists[0]) == len(offers)
    holdout = [m for m in lists[0] if m["holdout"]]
    assert all(m["benefit_id"] == "none" for m in holdout)
