"""Baselines scored in the same run as the model, on the same members and labels:
the recency rule, an RFM score, and BG/NBD (expected transactions and P(no purchase))."""

from __future__ import annotations

import numpy as np
import pandas as pd

from loyalty_ml.churn import bgnbd
from loyalty_ml.churn.features import _days, bgnbd_inputs, order_summary
from loyalty_ml.contract.io import Dataset
from loyalty_ml.timeutil import to_utc

BASELINES = ("recency_rule", "rfm_score", "bgnbd_expected", "bgnbd_p_no_purchase")
PROBABILISTIC = {"bgnbd_p_no_purchase"}


def _quintile(values: np.ndarray) -> np.ndarray:
    """1..5 by rank (ties share the average rank)."""
    ranks = pd.Series(values).rank(pct=True, method="average").to_numpy()
    return np.ceil(ranks * 5).clip(1, 5)


def rfm_score(recency_days: np.ndarray, frequency: np.ndarray, monetary: np.ndarray) -> np.ndarray:
    """Classic RFM quintile score turned into a churn score (3..15, higher = riskier):
    long recency, low frequency and low spend each add points."""
    return _quintile(recency_days) + (6 - _quintile(frequency)) + (6 - _quintile(monetary))


def baseline_scores(dataset: Dataset, origin: object, horizon_days: int) -> pd.DataFrame:
    """Churn scores (higher = more likely to churn) per member known at ``origin``, using only
    data up to ``origin``."""
    t = to_utc(origin)
    cut = dataset.as_of(t)
    s = order_summary(cut, t)
    tenure = _days(t - s["joined_at"])
    recency = _days(t - s["last_order"])
    recency = np.where(np.isnan(recency), tenure, recency)
    x, t_x, T = bgnbd_inputs(s, t)
    params = bgnbd.fit_bgnbd(x, t_x, T)
    weeks = horizon_days / 7.0
    return pd.DataFrame(
        {
            "member_id": s["member_id"].astype("string").to_numpy(),
            "recency_rule": recency,
            "rfm_score": rfm_score(
                recency, s["n_days"].to_numpy(float), s["spend"].to_numpy(float)
            ),
            "bgnbd_expected": -bgnbd.expected_transactions(params, weeks, x, t_x, T),
            "bgnbd_p_no_purchase": bgnbd.p_no_purchase(params, weeks, x, t_x, T),
        }
    )
