"""The training job's speed measures keep results: batch features equal per-origin features,
monotone constraints bind, thread count follows the configuration."""

from __future__ import annotations

import numpy as np
import pandas as pd

from loyalty_ml.churn.config import load_churn_config
from loyalty_ml.churn.features import provider_batch, resolve_provider
from loyalty_ml.churn.job import Slices, _lgb_params
from loyalty_ml.churn.model import monotone_vector, resolve_threads, train_booster
from loyalty_ml.contract.io import Dataset

AS_OF = pd.Timestamp("2025-06-01", tz="UTC")


def test_prefetched_slices_equal_per_origin_slices(tiny_shop: Dataset) -> None:
    origins = [AS_OF - pd.Timedelta(days=60 + 30 * k) for k in range(3)]
    _, single = resolve_provider("builtin")
    plain = Slices(tiny_shop, single, 60, "no_purchase", AS_OF)
    fetched = Slices(tiny_shop, single, 60, "no_purchase", AS_OF)
    fetched.prefetch(origins, provider_batch("builtin"))
    assert set(fetched._feats) == set(origins)
    for origin in origins:
        pd.testing.assert_frame_equal(plain.get(origin), fetched.get(origin))
    # an origin whose horizon is not complete is not fetched
    late = Slices(tiny_shop, single, 60, "no_purchase", AS_OF)
    late.prefetch([AS_OF - pd.Timedelta(days=10)], provider_batch("builtin"))
    assert not late._feats


def test_monotone_vector_first_match_wins() -> None:
    names = ["rfm__recency_days", "rfm__orders_90d", "bgnbd__p_alive", "rfm__spend_90d"]
    patterns = [("^rfm__recency_days$", 1), ("orders_90d|p_alive", -1), ("^rfm__", 1)]
    assert monotone_vector(names, patterns) == [1, -1, -1, 1]
    assert monotone_vector(names, []) == [0, 0, 0, 0]


def test_monotone_constraint_binds_against_the_data() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 4000)
    y = (rng.random(4000) < np.where(x < 0.5, 0.2, 0.8) - 0.6 * (x > 0.9)).astype(int)
    X = pd.DataFrame({"rfm__recency_days": x, "noise__z": rng.normal(size=4000)})
    params = {"objective": "binary", "num_boost_round": 50, "min_data_in_leaf": 20}
    grid = pd.DataFrame({"rfm__recency_days": np.linspace(0, 1, 101), "noise__z": 0.0})
    free = train_booster(X, y, params).predict(grid)
    bound = train_booster(
        X, y, {**params, "monotone_patterns": [["^rfm__recency_days$", 1]]}
    ).predict(grid)
    assert np.any(np.diff(free) < -1e-6)  # the data itself turns down after 0.9
    assert np.all(np.diff(bound) >= -1e-12)


def test_threads_follow_config_or_affinity() -> None:
    assert resolve_threads(3) == 3
    assert resolve_threads(0) >= 1 and resolve_threads(None) == resolve_threads(0)
    params = _lgb_params(load_churn_config().with_overrides(**{"lightgbm.num_threads": 1}))
    assert params["num_threads"] == 1
    assert params["monotone_patterns"]  # churn.yaml ships recency/frequency constraints
