"""Shared fixtures: an isolated LOYALTY_HOME, the public data sets, and the local services.

Tests that need Redis/PostgreSQL skip with a loud message when those are unreachable, except under
``CI=true`` where an unreachable service is a failure (CI must exercise the production profile).
"""

from __future__ import annotations

import os
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from loyalty_ml.settings import reset_settings_cache

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("LOYALTY_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# CI explores the same examples every run, so a red build always reproduces locally; developers
# keep the random exploration that finds new counterexamples.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if IN_CI:
    hypothesis_settings.load_profile("ci")


@pytest.fixture
def loyalty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh LOYALTY_HOME for one test."""
    home = tmp_path / "home"
    monkeypatch.setenv("LOYALTY_HOME", str(home))
    reset_settings_cache()
    yield home
    reset_settings_cache()


def shared_dataset(name: str) -> Path:
    """Path of a public data set in ../shared/data; skips (or fails in CI) when absent."""
    path = SHARED_DATA / name
    if not path.exists():
        message = f"public data set {name!r} not found at {path} (see ../shared/data/README.md)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} at {host}:{port} is unreachable: production-profile tests NOT RUN"
    if IN_CI:
        pytest.fail(message + " (CI=true requires it; .ci/run starts it)")
    warnings.warn(message, stacklevel=2)
    pytest.skip("!!! " + message)


@pytest.fixture
def redis_service() -> tuple[str, int]:
    require_service("Redis", "127.0.0.1", 6379)
    return ("127.0.0.1", 6379)


@pytest.fixture
def postgres_service() -> str:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    return "postgresql://postgres@127.0.0.1:5432/postgres"
