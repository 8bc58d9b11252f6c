"""Settings: one source of defaults, environment overrides, no side effects at import."""

from __future__ import annotations

from pathlib import Path

import pytest

from loyalty_ml.settings import get_settings, reset_settings_cache


def test_home_from_environment(loyalty_home: Path) -> None:
    settings = get_settings()
    assert settings.home_dir == loyalty_home.resolve()
    assert not loyalty_home.exists(), "settings must not create folders at import or load"
    target = settings.path("mlflow", "mlflow.db")
    assert target.parent.is_dir()
    assert settings.tracking_uri == f"sqlite:///{target}"


def test_profile_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALTY_PROFILE", "staging")
    reset_settings_cache()
    with pytest.raises(ValueError, match="profile"):
        get_settings()
    reset_settings_cache()


def test_default_config_dir_has_policy() -> None:
    reset_settings_cache()
    assert get_settings().config_dir.name in ("config", "_config")
