"""Offline evaluation: metrics with hand-computed answers, leave-one-out splits, tuning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from loyalty_ml.recs.base import RecModel
from loyalty_ml.recs.evaluation import Sequences, Split, evaluate, leave_one_out
from loyalty_ml.recs.interactions import from_sequences, recency_ranks


class Fixed(RecModel):
    """Scores item j as ``-j`` (item 0 best) for everyone."""

    name = "_fixed_test"

    def fit(self, user_items, *, recency=None):
        self.n_items = user_items.shape[1]
        return self

    def score(self, user_items, *, recency=None, userids=None):
        return np.tile(-np.arange(self.n_items, dtype=np.float32), (user_items.shape[0], 1))


def _split(history: list[list[int]], targets: list[list[int]], n_items: int) -> Split:
    inter = from_sequences([np.array(h, np.int64) for h in history], n_items)
    rows = [u for u, t in enumerate(targets) for _ in t]
    cols = [i for t in targets for i in t]
    tgt = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(history), n_items)
    )
    return Split(inter, tgt)


def test_metrics_known_answers():
    # user 0: history {0}, target 1 -> ranked 1st (item 0 excluded); user 1: target 2 -> 3rd
    split = _split([[0], [5]], [[1], [2]], 10)
    model = Fixed().fit(split.train.user_items)
    m = evaluate(model, split, ks=[1, 3]).metrics
    assert m["hr@1"] == pytest.approx(0.5)
    assert m["hr@3"] == pytest.approx(1.0)
    assert m["ndcg@3"] == pytest.approx((1.0 + 1 / math.log2(4)) / 2)


def test_recall_with_several_targets():
    split = _split([[9]], [[0, 5]], 10)
    m = evaluate(Fixed().fit(split.train.user_items), split, ks=[2, 10]).metrics
    assert m["recall@2"] == pytest.approx(0.5)
    assert m["recall@10"] == pytest.approx(1.0)
    ideal = 1 + 1 / math.log2(3)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(7)) / ideal)


def test_leave_one_out_protocol():
    data = Sequences(
        [np.array([0, 1, 2, 3]), np.array([4, 5])], np.arange(6).astype(str), np.array(["a", "b"])
    )
    val = leave_one_out(data, 2)
    test = leave_one_out(data, 1)
    assert val.train.user_items[0].indices.tolist() == [0, 1]
    assert val.targets[0].indices.tolist() == [2]
    assert test.train.user_items[0].indices.tolist() == [0, 1, 2]
    assert test.targets[0].indices.tolist() == [3]
    assert test.train.user_items[1].indices.tolist() == [4]
    assert val.targets[1].nnz == 0  # too short for a validation target
    # recency: rank 0 = latest item
    assert dict(zip(test.train.recency[0].indices, test.train.recency[0].data, strict=True)) == {
        0: 2.0,
        1: 1.0,
        2: 0.0,
    }


def test_recency_ranks_dedupe_keeps_latest():
    rec = recency_ranks(np.array([0, 0, 0, 0]), np.array([3, 1, 3, 2]), 1, 4)
    assert dict(zip(rec[0].indices, rec[0].data, strict=True)) == {1: 2.0, 3: 1.0, 2: 0.0}


def test_tuning_improves_or_keeps_validation(blocks):
    from loyalty_ml.recs.config import RecsConfig
    from loyalty_ml.recs.tuning import tune

    user_items, recency = blocks
    # hold out one item per user as a validation target
    ui = user_items.tolil()
    rows, cols = [], []
    for u in range(ui.shape[0]):
        items = sp.csr_matrix(user_items[u]).indices
        ranks = sp.csr_matrix(recency[u]).data
        latest = items[np.argmin(ranks)]
        ui[u, latest] = 0
        rows.append(u)
        cols.append(latest)
    train_ui = sp.csr_matrix(ui)
    train_ui.eliminate_zeros()
    inter = from_sequences(
        [train_ui[u].indices for u in range(train_ui.shape[0])], train_ui.shape[1]
    )
    split = Split(inter, sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=ui.shape))
    cfg = RecsConfig(threads=1)
    cfg = cfg.model_copy(
        update={
            "blend": cfg.blend.model_copy(
                update={"weights": {"item_knn": 1.0, "transitions": 0.5, "popularity": 0.01}}
            )
        }
    )
    report = tune(cfg, split, trials=3)
    assert report.best["blend"] >= 0.0
    assert set(report.best) >= {"item_knn", "transitions", "blend"}
    assert report.config.blend.weights["item_knn"] >= 0


def test_rebuy_targets_count_only_when_seen_items_are_ranked():
    # user 0 bought item 0 and buys it again: a re-buy target
    split = _split([[0], [3]], [[0], [1]], 5)
    new_only = evaluate(Fixed().fit(split.train.user_items), split, ks=[1])
    assert new_only.metrics["hr@1"] == 0.0  # item 0 excluded for user 0; user 1 gets item 0
    split.exclude_seen = False
    with_rebuys = evaluate(Fixed().fit(split.train.user_items), split, ks=[1])
    assert with_rebuys.metrics["hr@1"] == 0.5  # user 0's re-buy of item 0 is now a hit


def test_temporal_targets_new_vs_all(shop):
    import pandas as pd

    from loyalty_ml.recs.config import RecsConfig
    from loyalty_ml.recs.train import make_splits

    cfg = RecsConfig()
    as_of = shop.latest_timestamp() + pd.Timedelta(seconds=1)
    splits = {}
    for targets in ("new", "all"):
        c = cfg.model_copy(update={"tuning": cfg.tuning.model_copy(update={"targets": targets})})
        splits[targets] = make_splits(shop, as_of, c)[1]
    new, every = splits["new"], splits["all"]
    assert new.exclude_seen and not every.exclude_seen
    bought = new.train.counts > 0
    assert new.targets.multiply(bought).nnz == 0  # new: nothing bought before
    assert every.targets.multiply(bought).nnz > 0  # all: re-buys (c0) are targets
    assert (every.targets - every.targets.multiply(new.targets)).nnz > 0
    assert new.targets.multiply(every.targets).nnz == new.targets.nnz  # new ⊂ all
