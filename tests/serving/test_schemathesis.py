"""Property-based tests over the OpenAPI document: no 5xx, responses conform to the schema.

Runs against the ASGI app with the in-test backend (campaigns recorded in a throw-away SQLite
log). Bounded by ``max_examples`` so the whole module takes seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from loyalty_ml.serving.app import create_app
from loyalty_ml.serving.config import ServingConfig
from loyalty_ml.serving.keys import KeyRing
from tests.serving.conftest import KEYS
from tests.serving.fake_backend import FakeBackend

CONFIG = ServingConfig()
APP = create_app(
    backend=FakeBackend(CONFIG),
    config=CONFIG,
    keyring=KeyRing.from_mapping(KEYS, CONFIG.auth.key_scopes),  # type: ignore[arg-type]
)
# Loaded from the app object, not ``from_asgi``: that would start the app's lifespan at import,
# before LOYALTY_HOME points at a temporary folder. Schemathesis starts it on the first call.
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP


@pytest.fixture(scope="module", autouse=True)
def started_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A temporary LOYALTY_HOME for the lifespan schemathesis starts (contact log, fallback file)."""
    from loyalty_ml.settings import reset_settings_cache

    home: Path = tmp_path_factory.mktemp("st-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOYALTY_HOME", str(home))
        reset_settings_cache()
        yield
    reset_settings_cache()


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_and_never_5xx(case) -> None:
    case.call_and_validate(headers={"x-api-key": KEYS["admin"]})
