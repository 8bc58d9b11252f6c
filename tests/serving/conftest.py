"""API fixtures: the app with the in-test backend, known keys, an isolated LOYALTY_HOME."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from loyalty_ml.serving.app import create_app
from loyalty_ml.serving.config import ServingConfig
from loyalty_ml.serving.keys import KeyRing
from tests.serving.fake_backend import FakeBackend

KEYS = {
    "storefront": "sf-key-0123456789abcdef",
    "campaigns": "cp-key-0123456789abcdef",
    "admin": "ad-key-0123456789abcdef",
}


def headers(name: str) -> dict[str, str]:
    return {"x-api-key": KEYS[name]}


@pytest.fixture
def config() -> ServingConfig:
    return ServingConfig()


@pytest.fixture
def backend(config: ServingConfig) -> FakeBackend:
    return FakeBackend(config)


@pytest.fixture
def client(loyalty_home: Path, backend: FakeBackend, config: ServingConfig) -> Iterator[TestClient]:
    keyring = KeyRing.from_mapping(KEYS, config.auth.key_scopes)  # type: ignore[arg-type]
    app = create_app(backend=backend, config=config, keyring=keyring)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
