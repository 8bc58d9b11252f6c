"""The shared contract every candidate model must honour, on data with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from loyalty_ml.recs.base import RecModel
from loyalty_ml.recs.models import (
    ALSModel,
    BlendModel,
    BPRModel,
    CategoryPopularityModel,
    ItemKNNModel,
    PopularityModel,
    RepeatModel,
    TransitionModel,
)
from tests.recs.conftest import ITEMS_PER_BLOCK, N_BLOCKS, USERS_PER_BLOCK, block_of


class ModelContract:
    """Mixin: every model fits, recommends within the user's block, filters, saves/loads."""

    min_in_block = 0.9  # share of top-4 items that must come from the user's own block

    def make(self) -> RecModel:
        raise NotImplementedError

    @pytest.fixture
    def fitted(self, blocks):
        user_items, recency = blocks
        return self.make().fit(user_items, recency=recency), user_items, recency

    def test_recommends_own_block(self, fitted):
        model, user_items, recency = fitted
        users = np.arange(user_items.shape[0])
        ids, _ = model.recommend(users, user_items[users], N=4, recency=recency[users])
        in_block = [
            block_of(i) == u // USERS_PER_BLOCK
            for u, row in zip(users, ids, strict=True)
            for i in row
        ]
        assert np.mean(in_block) >= self.min_in_block

    def test_excludes_history_filters_and_no_repeats(self, fitted):
        model, user_items, recency = fitted
        ids, scores = model.recommend(
            0, user_items[0], N=10, filter_items=np.array([1, 2]), recency=recency[0]
        )
        valid = ids[ids >= 0]
        assert len(set(valid.tolist())) == len(valid)
        assert not set(valid.tolist()) & set(user_items[0].indices.tolist())
        assert not set(valid.tolist()) & {1, 2}
        assert np.all(np.diff(scores[ids >= 0]) <= 1e-6)

    def test_can_keep_history(self, fitted):
        model, user_items, recency = fitted
        n = user_items.shape[1]
        ids, _ = model.recommend(
            0, user_items[0], N=n, filter_already_liked_items=False, recency=recency[0]
        )
        assert len(ids) == n

    def test_save_load_roundtrip(self, fitted, tmp_path):
        model, user_items, recency = fitted
        path = model.save(tmp_path / "m.npz")
        with np.load(path, allow_pickle=False):
            pass  # readable without pickle
        loaded = RecModel.load(path)
        users = np.arange(5)
        a = model.score(user_items[users], recency=recency[users], userids=users)
        b = loaded.score(user_items[users], recency=recency[users], userids=users)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    def test_deterministic_for_seed(self, blocks):
        user_items, recency = blocks
        a = (
            self.make()
            .fit(user_items, recency=recency)
            .score(user_items[:5], recency=recency[:5], userids=np.arange(5))
        )
        b = (
            self.make()
            .fit(user_items, recency=recency)
            .score(user_items[:5], recency=recency[:5], userids=np.arange(5))
        )
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    def test_unknown_user_scored_from_history(self, fitted):
        model, user_items, recency = fitted
        row = user_items[[0]]
        scores = model.score(row, recency=recency[[0]], userids=np.array([-1]))
        assert scores.shape == (1, user_items.shape[1])
        assert np.isfinite(scores).all()


class TestItemKNN(ModelContract):
    def make(self):
        return ItemKNNModel(neighbours=20)

    def test_similar_items_same_block(self, fitted):
        model, *_ = fitted
        ids, _ = model.similar_items(12, N=5)
        assert 12 not in ids.tolist()
        assert all(block_of(i) == 1 for i in ids)


class TestTransitions(ModelContract):
    def make(self):
        return TransitionModel(window=3, neighbours=20)

    def test_learns_what_comes_next(self):
        # every user buys 0 -> 1 -> 2 (and 3 -> 4 elsewhere): after 1, item 2 is next
        rows = np.repeat(np.arange(20), 3)
        cols = np.tile([0, 1, 2], 20)
        ranks = np.tile([2, 1, 0], 20)
        ui = sp.csr_matrix((np.ones(60, np.float32), (rows, cols)), shape=(20, 6))
        rec = sp.csr_matrix((ranks.astype(np.float32), (rows, cols)), shape=(20, 6))
        model = TransitionModel(window=1, backward_weight=0.0).fit(ui, recency=rec)
        hist = sp.csr_matrix(([1.0], ([0], [1])), shape=(1, 6), dtype=np.float32)
        hist_rec = sp.csr_matrix(([0.0], ([0], [1])), shape=(1, 6), dtype=np.float32)
        hist_rec.data[:] = 0
        ids, _ = model.recommend(-1, hist, N=1, recency=hist_rec)
        assert ids[0] == 2


class TestALS(ModelContract):
    def make(self):
        return ALSModel(factors=4, iterations=10, regularization=0.1, alpha=5.0, threads=1)


class TestBPR(ModelContract):
    min_in_block = 0.75

    def make(self):
        return BPRModel(factors=8, iterations=200, learning_rate=0.05, threads=1)


class TestBlend(ModelContract):
    def make(self):
        blend = BlendModel({"item_knn": 1.0, "transitions": 0.5, "popularity": 0.01})
        blend.add(ItemKNNModel(neighbours=20)).add(TransitionModel(neighbours=20)).add(
            PopularityModel()
        )
        return blend


class TestCategoryPopularity(ModelContract):
    def make(self):
        cats = np.arange(N_BLOCKS * ITEMS_PER_BLOCK) // ITEMS_PER_BLOCK
        return CategoryPopularityModel().set_item_categories(cats)

    def test_save_load_roundtrip(self, fitted, tmp_path):
        super().test_save_load_roundtrip(fitted, tmp_path)


def test_popularity_known_order():
    ui = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 1]], np.float32))
    ui[3, 2] = 0
    ui.eliminate_zeros()
    model = PopularityModel().fit(ui)
    ids, _ = model.recommend(-1, sp.csr_matrix((1, 3), dtype=np.float32), N=3)
    assert ids.tolist() == [0, 1, 2]


def test_repeat_model_scores_rebought_items_only():
    counts = sp.csr_matrix(np.array([[3, 1, 0], [2, 1, 0], [2, 0, 1], [1, 1, 1]], np.float32))
    model = RepeatModel(min_buyers=2, min_repeat_rate=0.5).fit(counts)
    assert model.repeat_rate[0] == pytest.approx(0.75)
    assert model.repeat_rate[1] == 0 and model.repeat_rate[2] == 0
    scores = model.score(counts[[3]], recency=None)
    assert scores[0, 0] > 0 and scores[0, 1] == 0


def test_repeat_smoothing_scores_every_bought_item_by_its_rate():
    counts = sp.csr_matrix(np.array([[3, 1, 0], [2, 1, 0], [2, 0, 1], [1, 1, 1]], np.float32))
    model = RepeatModel(min_buyers=2, min_repeat_rate=0.5, smoothing=2.0, profile="weights").fit(
        counts
    )
    # serving's gate is unchanged; the offline score now ranks item 1 (rate 0) below item 0
    assert model.repeat_rate[1] == 0
    scores = model.score(counts[[3]], recency=None)
    assert scores[0, 0] > scores[0, 1] > 0 and scores[0, 2] > 0


def test_category_popularity_prior_reaches_unseen_categories():
    cats = np.array([0, 0, 1, 1])
    ui = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 1], [1, 0, 1, 1]], np.float32))
    user = sp.csr_matrix(np.array([[0, 1, 0, 0]], np.float32))  # history in category 0 only
    # recency rank 0 (latest) of item 1, stored explicitly
    user_rec = sp.csr_matrix((np.zeros(1, np.float32), (np.array([0]), np.array([1]))), (1, 4))
    plain = CategoryPopularityModel().set_item_categories(cats).fit(ui)
    assert plain.score(user, recency=user_rec)[0, 2:].max() == 0
    smooth = CategoryPopularityModel(prior=1.0, within="share").set_item_categories(cats).fit(ui)
    s = smooth.score(user, recency=user_rec)[0]
    assert s[2] > 0 and s[3] > 0  # other category reached through the prior
    assert min(s[0], s[1]) > max(s[2], s[3])  # the member's own category still first
    # P(category 0) = (1 + 1.0 x 0.5) / (1 + 1.0) = 0.75, items share it equally (within=share)
    assert s[0] + s[1] == pytest.approx(0.75, rel=1e-5)
    assert s[2] == pytest.approx(0.125, rel=1e-5)


def test_sparse_and_dense_similarity_agree():
    """Large sparse catalogues skip the dense pass: same neighbour values per row."""
    import loyalty_ml.recs.models as models

    rng = np.random.default_rng(3)
    ui = sp.random(300, 120, density=0.05, random_state=rng, format="csr", dtype=np.float32)
    ui.data[:] = 1
    fitted = {}
    for share in (0.0, 2.0):  # 0: always sparse path, 2: always dense
        old = models._SPARSE_SHARE
        models._SPARSE_SHARE = share
        try:
            fitted[share] = models.ItemKNNModel(neighbours=10, shrink=2.0).fit(ui).similarity
        finally:
            models._SPARSE_SHARE = old
    a, b = fitted[0.0], fitted[2.0]
    for r in range(a.shape[0]):
        va = np.sort(a[r].data)[::-1]
        vb = np.sort(b[r].data)[::-1]
        np.testing.assert_allclose(va, vb, rtol=1e-5)
