"""Net-value calibration and the confidence gate of the decision layer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loyalty_ml.benefits.decision import (
    confident_net,
    dr_net_pseudo_outcomes,
    fit_net_calibration,
)
from loyalty_ml.benefits.learners import fit_learner, lgbm_params
from tests.benefits.fixtures import ARMS, BEST, RATES, planted_log


def test_dr_net_pseudo_outcomes_hand_computed() -> None:
    q = np.array([[1.0, 3.0], [2.0, 2.5]])  # rows: members; columns: control, benefit
    arm = np.array([1, 0])
    p = np.array([0.5, 0.25])
    r = np.array([4.0, 1.0])
    phi = dr_net_pseudo_outcomes(q, arm, p, r)
    # row 0 got the benefit: (3 - 1) + (4 - 3)/0.5 = 4; row 1 control: 0.5 - (1 - 2)/0.25 = 4.5
    np.testing.assert_allclose(phi, [[0.0, 4.0], [0.0, 4.5]])


def _world(signal: float, n: int = 20000, seed: int = 0):
    rng = np.random.default_rng(seed)
    pred = rng.normal(size=n)
    true_net = signal * pred - 0.1  # net effect per member (benefit minus its cost)
    phi = true_net + rng.normal(scale=1.0, size=n)  # unbiased, noisy pseudo-outcomes
    effect = np.c_[np.zeros(n), pred]
    return effect, np.c_[np.zeros(n), phi], true_net


def test_no_signal_calibrates_to_the_average() -> None:
    effect, phi, _ = _world(0.0)
    cal = fit_net_calibration(effect, phi, bins=10, min_rows=500, z=1.0)
    net = cal.net(effect)[:, 1]
    idx = np.digitize(effect[:, 1], np.quantile(effect[:, 1], np.linspace(0, 1, 11)[1:-1]))
    raw_bins = np.array([phi[idx == i, 1].mean() for i in range(10)])
    # bins shrunk to (nearly) the grand mean: a fraction of the raw bin-to-bin noise
    assert np.ptp(net) < 0.3 * np.ptp(raw_bins)
    assert abs(net.mean() - phi[:, 1].mean()) < 0.01
    # the average is -0.1 and confidently negative: nobody is given the benefit
    assert (cal.lower(effect)[:, 1] < 0).all()


def test_signal_is_kept_and_negative_members_are_gated() -> None:
    effect, phi, true_net = _world(0.5)
    cal = fit_net_calibration(effect, phi, bins=10, min_rows=500, z=1.0)
    net = cal.net(effect)[:, 1]
    assert np.corrcoef(net, true_net)[0, 1] > 0.95  # ranking kept, scale close to the truth
    assert abs(np.polyfit(true_net, net, 1)[0] - 1.0) < 0.25
    raw_net = np.c_[np.zeros(len(net)), net]
    gated = confident_net(raw_net, effect, cal)
    given = gated[:, 1] > 0
    assert 0.2 < given.mean() < 0.6
    # Members given the benefit: almost none with a negative true net value.
    assert (true_net[given] < 0).mean() < 0.05


def test_gate_is_stricter_than_the_point_estimate_when_bins_are_noisy() -> None:
    effect, phi, true_net = _world(0.2, n=6000)
    phi[:, 1] += np.random.default_rng(1).normal(scale=4.0, size=len(phi))
    cal = fit_net_calibration(effect, phi, bins=10, min_rows=500, z=1.0)
    net = np.c_[np.zeros(len(phi)), cal.net(effect)[:, 1]]
    given = confident_net(net, effect, cal)[:, 1] > 0
    assert given.sum() < (net[:, 1] > 0).sum()
    assert (true_net[given] < 0).mean() <= (true_net[net[:, 1] > 0] < 0).mean()


@pytest.mark.parametrize("kind", ["t", "x", "dr", "to"])
def test_every_learner_recovers_planted_effects(kind: str) -> None:
    """Non-uniform logging; IPW makes each learner's effects close to the planted ones."""
    log = planted_log(6000, seed=5)
    X = pd.DataFrame({"segment": log["segment"].astype("category"), "noise": log["noise"]})
    params = lgbm_params(
        {"n_estimators": 60, "num_leaves": 4, "min_child_samples": 100, "learning_rate": 0.1},
        0,
        1,
    )
    model = fit_learner(
        kind,  # type: ignore[arg-type]
        X,
        log["benefit_id"].to_numpy(),
        log["converted"].to_numpy(float),
        log["propensity"].to_numpy(float),
        list(ARMS),
        params,
        folds=2,
    )
    up = model.predict_uplift(X)
    for seg, rates in RATES.items():
        rows = (log["segment"] == seg).to_numpy()
        for j in (1, 2):
            truth = rates[j] - rates[0]
            assert abs(up[rows, j].mean() - truth) < 0.06, (kind, seg, j)
        if BEST[seg]:
            # the right benefit for most members of the segment
            assert (up[rows].argmax(axis=1) == BEST[seg]).mean() > 0.8, (kind, seg)
