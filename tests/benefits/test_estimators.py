"""Off-policy estimators and uplift metrics against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from loyalty_ml.benefits import estimators as est
from loyalty_ml.benefits.evaluation import baseline_policies, evaluate_policies
from loyalty_ml.benefits.metrics import qini_auc_score, qini_curve, uplift_at_k, uplift_curve
from loyalty_ml.errors import LoyaltyError

R = np.array([1.0, 0.0, 1.0, 0.0])
P = np.array([0.5, 0.5, 0.25, 1.0])
PI = np.array([1.0, 1.0, 0.0, 1.0])


def test_ips_hand_computed() -> None:
    e = est.ips(R, P, PI)
    # contributions 1/0.5, 0, 0 (policy disagrees), 0 -> [2, 0, 0, 0]
    assert e.value == pytest.approx(0.5)
    # sd (ddof=1) of [2,0,0,0] = 1 -> se = 1/sqrt(4)
    assert e.se == pytest.approx(0.5)
    assert e.ci == pytest.approx((0.5 - 1.959964 * 0.5, 0.5 + 1.959964 * 0.5), rel=1e-5)


def test_snips_hand_computed() -> None:
    # weights pi/p = [2, 2, 0, 1]; sum(w r) = 2, sum(w) = 5
    assert est.snips(R, P, PI).value == pytest.approx(0.4)


def test_dr_hand_computed() -> None:
    ql = np.full(4, 0.5)
    qt = np.full(4, 0.6)
    # 0.6 + (1-0.5)/0.5 = 1.6; 0.6 + (0-0.5)/0.5 = -0.4; 0.6 (pi=0); 0.6 + (0-0.5)/1 = 0.1
    assert est.dr(R, P, PI, ql, qt).value == pytest.approx((1.6 - 0.4 + 0.6 + 0.1) / 4)


def test_dr_with_perfect_model_has_no_ips_noise() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    y = rng.random(n)
    p = np.full(n, 0.5)
    pi = rng.integers(0, 2, n).astype(float)
    # A perfect outcome model: the correction term is zero, value = mean(q_target).
    e = est.dr(y, p, pi, y, y)
    assert e.value == pytest.approx(y.mean())


def test_paired_difference_hand_computed() -> None:
    a = np.array([2.0, 0.0, 0.0, 0.0])
    b = np.array([1.0, 1.0, 0.0, 0.0])
    d = est.paired_difference(a, b)
    assert d.value == pytest.approx(0.0)
    # differences [1, -1, 0, 0]: sd = sqrt(2/3), se = sqrt(2/3)/2
    assert d.se == pytest.approx(np.sqrt(2 / 3) / 2)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, np.nan])
def test_propensity_outside_unit_interval_is_refused(bad: float) -> None:
    with pytest.raises(LoyaltyError, match=r"outside \(0, 1\]"):
        est.ips(R, np.array([0.5, bad, 0.5, 0.5]), PI)


def test_ips_unbiased_under_nonuniform_logging() -> None:
    """Logging favours arm 1 for high-x members; IPS recovers the value of 'everyone arm 0'."""
    rng = np.random.default_rng(1)
    n = 200_000
    x = rng.random(n)
    p1 = np.where(x > 0.5, 0.9, 0.2)
    a = (rng.random(n) < p1).astype(int)
    y0 = 0.1 + 0.5 * x  # outcome under arm 0
    y1 = y0 + 0.1
    y = np.where(a == 1, y1, y0)
    prop = np.where(a == 1, p1, 1 - p1)
    value0 = est.ips(y, prop, (a == 0).astype(float)).value
    naive = y[a == 0].mean()
    assert value0 == pytest.approx(y0.mean(), abs=0.005)
    assert abs(naive - y0.mean()) > 0.02  # the naive mean is biased


def test_evaluate_policies_table_and_paired_reference() -> None:
    rng = np.random.default_rng(2)
    n = 30_000
    arm = rng.integers(0, 3, n)
    prop = np.full(n, 1 / 3)
    reward = (rng.random(n) < np.array([0.1, 0.2, 0.15])[arm]).astype(float)
    pols = baseline_policies(n, ["none", "a", "b"])
    pols["learned"] = np.full(n, 1)
    table = evaluate_policies(pols, arm, prop, reward)
    assert set(table["policy"]) == {
        "no contact (none)",
        "everyone: a",
        "everyone: b",
        "random",
        "learned",
    }
    assert table.attrs["reference"] == "everyone: a"
    learned = table.set_index("policy").loc["learned"]
    assert learned["ips_diff"] == pytest.approx(0.0)  # identical policy: paired diff exactly 0
    assert learned["ips_diff_lo"] == pytest.approx(0.0)
    rnd = table.set_index("policy").loc["random"]
    assert rnd["ips"] == pytest.approx(reward.mean())  # random = uniform logging policy


# --------------------------------------------------------------------------- uplift metrics

Y = np.array([1, 0, 1, 0, 0, 1, 0, 0, 1, 0], dtype=float)
T = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 0])
U = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])


def test_uplift_at_k_overall_hand_computed() -> None:
    # top 30% overall = rows 0..2: treated y [1, 1] -> 1.0; control y [0] -> 0.0
    assert uplift_at_k(Y, U, T, 0.3, "overall") == pytest.approx(1.0)
    # top 50% = rows 0..4: treated [1,1,0] -> 2/3; control [0, 0] -> 0
    assert uplift_at_k(Y, U, T, 0.5, "overall") == pytest.approx(2 / 3)


def test_uplift_at_k_truncates_like_scikit_uplift() -> None:
    # scikit-uplift: n = int(len * k) (truncation), stable descending order (ties: later rows
    # first). 7 rows, k = 0.3 -> int(2.1) = 2 rows; rows 5 and 4 tie at the top score.
    y = np.array([0, 1, 0, 1, 1, 0, 0])
    u = np.array([0.1, 0.5, 0.2, 0.3, 0.9, 0.9, 0.0])
    t = np.array([1, 1, 0, 0, 1, 0, 1])
    # order: 5 (t0, y0), 4 (t1, y1) -> treated 1.0 - control 0.0
    assert uplift_at_k(y, u, t, 0.3, "overall") == pytest.approx(1.0)


def test_uplift_at_k_by_group_hand_computed() -> None:
    # treated rows (in score order) y = [1,1,0,0,1]; 5*0.4 = 2 -> [1,1] -> 1.0
    # control rows y = [0,0,1,0,0]; 5*0.4 = 2 -> [0,0] -> 0.0
    assert uplift_at_k(Y, U, T, 0.4, "by_group") == pytest.approx(1.0)
    # k=0.6: treated top 3 [1,1,0] -> 2/3; control top 3 [0,0,1] -> 1/3
    assert uplift_at_k(Y, U, T, 0.6, "by_group") == pytest.approx(1 / 3)


def test_qini_and_uplift_curves_hand_computed() -> None:
    x, q = qini_curve(Y, U, T)
    assert x[0] == 0 and q[0] == 0 and x[-1] == len(Y)
    # after 3 rows: Yt=2, Nt=2, Yc=0 -> 2 ; at the end: Yt=3 (Nt=5), Yc=1 (Nc=5) -> 3 - 1 = 2
    assert q[3] == pytest.approx(2.0)
    assert q[-1] == pytest.approx(2.0)
    _x2, u2 = uplift_curve(Y, U, T)
    # end: (3/5 - 1/5) * 10 = 4
    assert u2[-1] == pytest.approx(4.0)
    # a perfect ranking has coefficient 1, the reversed perfect ranking is negative
    perfect = Y * T - Y * (1 - T)
    assert qini_auc_score(Y, perfect, T) == pytest.approx(1.0)
    assert qini_auc_score(Y, -perfect, T) < 0
