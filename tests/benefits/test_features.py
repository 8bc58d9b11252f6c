"""Offer features through Feast's ``benefits_v1`` service (point-in-time at ``offered_at``), with
the pure pipeline as the fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loyalty_ml.benefits.config import BenefitsConfig
from loyalty_ml.benefits.data import (
    FeatureSource,
    offer_features,
    pipeline_features,
    validate_offer_log,
)
from loyalty_ml.errors import MissingDataError
from tests.benefits.fixtures import planted_dataset

SMALL = {"min_observations_per_arm": 10, "min_conversions_per_arm": 1}


@pytest.fixture
def local_profile(loyalty_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from loyalty_ml.settings import reset_settings_cache

    monkeypatch.setenv("LOYALTY_PROFILE", "local")
    reset_settings_cache()
    return loyalty_home


def _text(values: pd.Series) -> list[str | None]:
    return [None if pd.isna(v) else str(v) for v in values]


def _log_and_data(n: int = 240):
    ds = planted_dataset(n, seed=4)
    # Two offer dates, so the point-in-time join has to pick the right snapshot per row.
    offers = ds.offers.copy()
    offers.loc[offers.index % 2 == 1, "offered_at"] += pd.Timedelta(days=20)
    ds.offers = offers
    return ds, validate_offer_log(ds.offers, BenefitsConfig.model_validate(SMALL))


def test_feast_service_matches_pipeline_at_offered_at(local_profile: Path) -> None:
    ds, log = _log_and_data()
    source = FeatureSource("feast")
    feast = offer_features(ds, log, source)
    assert source.used == "feast:benefits_v1"
    assert "Feast service benefits_v1" in source.describe()
    pipe = offer_features(ds, log, pipeline_features)
    assert len(feast) == len(log.frame)
    assert feast["member_id"].astype(str).tolist() == log.frame["member_id"].tolist()
    cols = [c for c in feast.columns if c not in ("member_id", "event_timestamp")]
    # benefits_v1 = rfm, engagement, service, static, loyalty: a subset of the pipeline's columns.
    assert cols and set(cols) <= set(pipe.columns)
    assert not any(c.startswith("preferences__") for c in cols)
    # The planted member column and a time-dependent feature come back with the pipeline values.
    assert "static__segment" in cols and "static__tenure_days" in cols
    for col in cols:
        a, b = feast[col], pipe[col]
        if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
            np.testing.assert_allclose(
                pd.to_numeric(a, errors="coerce").to_numpy(float),
                pd.to_numeric(b, errors="coerce").to_numpy(float),
                rtol=1e-6,
                equal_nan=True,
                err_msg=col,
            )
        else:
            assert _text(a) == _text(b), col
    # Offers 20 days later have 20 more days of tenure: the join is per row, not per member.
    tenure = feast["static__tenure_days"].to_numpy(float)
    assert np.allclose(tenure[1::2] - tenure[0::2][: len(tenure[1::2])], 20.0)


def test_auto_falls_back_to_pipeline_when_feast_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    import loyalty_ml.features.training as training

    def broken(*_a: object, **_k: object) -> None:
        raise MissingDataError("feature service benefits_v1 has no available features")

    monkeypatch.setattr(training, "training_set", broken)
    ds, log = _log_and_data(60)
    auto = FeatureSource("auto")
    frame = offer_features(ds, log, auto)
    assert auto.used == "pipeline" and "no available features" in (auto.fallback_reason or "")
    assert "fallback" in auto.describe()
    pd.testing.assert_frame_equal(frame, offer_features(ds, log, pipeline_features))
    with pytest.raises(MissingDataError, match="no available features"):
        offer_features(ds, log, FeatureSource("feast"))


def test_pipeline_source_never_touches_feast(monkeypatch: pytest.MonkeyPatch) -> None:
    import loyalty_ml.features.training as training

    def forbidden(*_a: object, **_k: object) -> None:
        raise AssertionError("Feast called")

    monkeypatch.setattr(training, "training_set", forbidden)
    ds, log = _log_and_data(60)
    source = FeatureSource("pipeline")
    offer_features(ds, log, source)
    assert source.used == "pipeline" and source.fallback_reason is None
