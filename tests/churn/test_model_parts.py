from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loyalty_ml.churn import bgnbd
from loyalty_ml.churn.calibration import fit_calibrator
from loyalty_ml.churn.config import ChurnConfig, load_churn_config
from loyalty_ml.churn.metrics import churn_metrics, expected_calibration_error, lift_capture
from loyalty_ml.churn.model import prepare_matrix, train_booster
from loyalty_ml.churn.reasons import (
    DEFAULT_REASON_CODES,
    grouped_contributions,
    map_features,
    top_reasons,
)
from loyalty_ml.churn.value import SegmentCuts, assign_segments, risk_bands
from loyalty_ml.errors import ConfigError


def _slice(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    true_p = rng.uniform(0.05, 0.95, n)
    y = (rng.random(n) < true_p).astype(int)
    return true_p**3, y  # badly calibrated, well ranked


def test_calibration_on_a_later_slice_improves_ece() -> None:
    rng = np.random.default_rng(0)
    p_early, y_early = _slice(rng, 4000)
    p_late, y_late = _slice(rng, 4000)
    for method in ("isotonic", "platt"):
        cal = fit_calibrator(p_early, y_early, method)
        before = expected_calibration_error(y_late, p_late)
        after = expected_calibration_error(y_late, cal(p_late))
        assert after < before / 3, (method, before, after)
        assert after < (0.03 if method == "isotonic" else 0.05)


def test_metrics_lift_and_capture() -> None:
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    score = np.arange(10)[::-1].astype(float)  # the two churners score highest
    lift, capture = lift_capture(y, score, 0.2)
    assert lift == pytest.approx(5.0) and capture == pytest.approx(1.0)
    m = churn_metrics(y, score / 10)
    assert m["auc"] == pytest.approx(1.0)
    assert {"pr_auc", "log_loss", "brier", "ece", "lift_5", "capture_20"} <= set(m)


def test_reason_codes_sum_with_base_to_raw_score() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    X = pd.DataFrame(
        {
            "rfm__days_since_last_order": rng.exponential(60, n),
            "rfm__orders_90d": rng.poisson(2, n).astype(float),
            "rfm__discount_share_90d": rng.random(n),
            "service__tickets_90d": rng.poisson(0.3, n).astype(float),
            "static__tenure_days": rng.uniform(0, 900, n),
        }
    )
    logit = 0.02 * X.iloc[:, 0] - 0.5 * X.iloc[:, 1] + 1.0 * X.iloc[:, 3] - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    booster = train_booster(X, y.to_numpy(), {"num_boost_round": 40, "num_leaves": 7})
    names = list(X.columns)
    contrib = booster.predict(prepare_matrix(X, names), pred_contrib=True)
    raw = booster.predict(prepare_matrix(X, names), raw_score=True)
    np.testing.assert_allclose(contrib.sum(axis=1), raw, atol=1e-6)
    patterns = list(load_churn_config().reasons.patterns)
    mapping = map_features(names, patterns, DEFAULT_REASON_CODES)
    assert mapping == {
        "rfm__days_since_last_order": "recency_decline",
        "rfm__orders_90d": "frequency_decline",
        "rfm__discount_share_90d": "price_sensitive",
        "service__tickets_90d": "service_issue",
        "static__tenure_days": "other",
    }
    groups, base = grouped_contributions(contrib, names, mapping, DEFAULT_REASON_CODES)
    np.testing.assert_allclose(groups.sum(axis=1) + base, raw, atol=1e-6)
    reasons = top_reasons(groups, DEFAULT_REASON_CODES, top_k=2)
    assert all(len(r) <= 2 and all(x["weight"] > 0 for x in r) for r in reasons)
    assert all(x["code"] in DEFAULT_REASON_CODES for r in reasons for x in r)


def test_bands_and_segments() -> None:
    assert list(
        risk_bands(np.array([0.1, 0.3, 0.59, 0.9]), [0.3, 0.6], ["low", "medium", "high"])
    ) == [
        "low",
        "medium",
        "medium",
        "high",
    ]
    cuts = SegmentCuts(low_cut=10, high_cut=100, potential_ratio=2)
    seg = assign_segments(np.array([150, 50, 50, 5, np.nan]), np.array([0, 10, 40, 0, 0]), cuts)
    assert list(seg) == ["high", "high_potential", "mid", "low", "low"]


def test_bgnbd_recovers_parameters_from_its_own_process() -> None:
    rng = np.random.default_rng(3)
    n, T = 4000, 40.0
    lam = rng.gamma(0.5, 1 / 5.0, n)
    p = rng.beta(1.0, 3.0, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < p[i]:
                break
    fit = bgnbd.fit_bgnbd(x, t_x, np.full(n, T))
    assert fit.r == pytest.approx(0.5, rel=0.3)
    assert fit.a / (fit.a + fit.b) == pytest.approx(0.25, abs=0.08)
    p0 = bgnbd.p_no_purchase(fit, 10.0, x, t_x, np.full(n, T))
    assert np.all((p0 >= 0) & (p0 <= 1))


def test_config_rejects_bad_values_with_the_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "churn.yaml"
    bad.write_text("bands:\n  thresholds: [0.6, 0.3]\n  labels: [a, b, c]\n")
    with pytest.raises(ConfigError, match="bands"):
        load_churn_config(bad)
    assert ChurnConfig().with_overrides(**{"label.horizon_days": 30}).label.horizon_days == 30
