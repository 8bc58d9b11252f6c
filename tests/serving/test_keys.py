"""API keys: generated once (0600, exclusive), read from env or file, never accepted when wrong."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest

from loyalty_ml.errors import ConfigError
from loyalty_ml.serving.config import AuthConfig, ServingConfig
from loyalty_ml.serving.keys import KeyRing, ensure_local_keys, load_keyring
from loyalty_ml.serving.runner import prepare_keys


def test_generated_once_with_mode_0600_even_when_racing(tmp_path: Path) -> None:
    path = tmp_path / "api_keys.json"
    created: list[bool] = []
    threads = [
        threading.Thread(target=lambda: created.append(ensure_local_keys(path))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert created.count(True) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = json.loads(path.read_text())
    assert set(keys) == {"storefront", "campaigns", "admin"} and len(set(keys.values())) == 3


def test_env_wins_and_scopes_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = AuthConfig(keys_file=tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="no API keys"):
        load_keyring(auth)
    monkeypatch.setenv("LOYALTY_API_KEYS", json.dumps({"storefront": ["a" * 20, "b" * 20]}))
    ring = load_keyring(auth)
    assert ring.scopes("a" * 20) == {"storefront"} and ring.scopes("b" * 20) == {"storefront"}
    assert ring.scopes("c" * 20) is None and ring.scopes(None) is None
    with pytest.raises(ConfigError):
        KeyRing.from_mapping({"storefront": "short"}, auth.key_scopes)


def test_prepare_keys_local_generates_production_refuses(
    loyalty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOYALTY_API_KEYS", raising=False)
    message = prepare_keys(ServingConfig())
    assert "generated" in message and str(loyalty_home) in message
    assert "lml_" not in message  # never the keys themselves
    assert "generated" not in prepare_keys(ServingConfig())  # second start reuses the file

    from loyalty_ml.settings import reset_settings_cache

    monkeypatch.setenv("LOYALTY_PROFILE", "production")
    monkeypatch.setenv("LOYALTY_HOME", str(loyalty_home / "elsewhere"))
    reset_settings_cache()
    with pytest.raises(ConfigError, match="production"):
        prepare_keys(ServingConfig())
