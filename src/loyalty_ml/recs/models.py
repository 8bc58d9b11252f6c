"""Candidate models: popularity, category popularity, implicit ALS/BPR, item-kNN (co-purchase),
last-item transitions (what is bought next), repeat purchase, and their weighted blend.

Every class follows :class:`loyalty_ml.recs.base.RecModel`; the item-item models keep a sparse
top-K neighbour matrix ``similarity`` (rows = source item, columns = candidate item).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import numpy as np
import scipy.sparse as sp

from loyalty_ml.recs.base import RecModel, as_csr, history_profile, model_class

# Dense work blocks stay below ~this many float32 cells (memory bound, ~80 MB).
_BLOCK_CELLS = 20_000_000
# Blocks with fewer stored co-occurrences than this share of their cells skip the dense pass.
_SPARSE_SHARE = 0.05


def _binary(user_items: sp.csr_matrix) -> sp.csr_matrix:
    out = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
    out.data = np.ones_like(out.data)
    return out


def _normalised_topk(
    cooc_rows: sp.csr_matrix,
    row_ids: np.ndarray,
    counts: np.ndarray,
    *,
    k: int,
    alpha: float,
    shrink: float,
) -> sp.csr_matrix:
    """Top ``k`` per row of ``c_ij / (n_i^alpha * n_j^(1-alpha) + shrink)`` (diagonal removed)."""
    dense = cooc_rows.toarray()
    dense[np.arange(len(row_ids)), row_ids] = 0.0
    left = np.power(np.maximum(counts[row_ids], 1.0), alpha)[:, None]
    right = np.power(np.maximum(counts, 1.0), 1.0 - alpha)[None, :]
    dense /= left * right + shrink
    n_items = dense.shape[1]
    k = min(k, n_items)
    if k < n_items:
        idx = np.argpartition(-dense, k - 1, axis=1)[:, :k]
    else:
        idx = np.tile(np.arange(n_items), (len(row_ids), 1))
    vals = np.take_along_axis(dense, idx, axis=1)
    keep = vals > 0
    rows = np.repeat(np.arange(len(row_ids)), keep.sum(axis=1))
    return sp.csr_matrix(
        (vals[keep].astype(np.float32), (rows, idx[keep])), shape=(len(row_ids), n_items)
    )


def _normalised_topk_sparse(
    cooc: sp.csr_matrix,
    row_ids: np.ndarray,
    counts: np.ndarray,
    *,
    k: int,
    alpha: float,
    shrink: float,
) -> sp.csr_matrix:
    """:func:`_normalised_topk` on the stored entries only (large, sparse catalogues): the same
    values; among equal values at the K-th place the lower item index is kept."""
    cooc = sp.csr_matrix(cooc, dtype=np.float32)
    cooc.sum_duplicates()
    rows = np.repeat(np.arange(cooc.shape[0]), np.diff(cooc.indptr))
    cols = cooc.indices.astype(np.int64)
    left = np.power(np.maximum(counts[row_ids], 1.0), alpha)[rows]
    right = np.power(np.maximum(counts, 1.0), 1.0 - alpha)[cols]
    vals = (cooc.data / (left * right + shrink)).astype(np.float32)
    keep = (cols != row_ids[rows]) & (vals > 0)
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    order = np.lexsort((cols, -vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    starts = np.searchsorted(rows, np.arange(cooc.shape[0]))
    rank = np.arange(len(rows)) - starts[rows]
    sel = rank < k
    return sp.csr_matrix((vals[sel], (rows[sel], cols[sel])), shape=(len(row_ids), cooc.shape[1]))


def _blocked_similarity(
    items_by_row: sp.csr_matrix, right: sp.csr_matrix, counts: np.ndarray, **kw: Any
) -> sp.csr_matrix:
    """``(items_by_row @ right)`` normalised and pruned, a block of source items at a time."""
    n_items = items_by_row.shape[0]
    block = max(1, _BLOCK_CELLS // max(right.shape[1], 1))
    parts = []
    for start in range(0, n_items, block):
        stop = min(start + block, n_items)
        cooc = sp.csr_matrix(items_by_row[start:stop] @ right)
        rows = np.arange(start, stop)
        if cooc.nnz < _SPARSE_SHARE * cooc.shape[0] * cooc.shape[1]:
            parts.append(_normalised_topk_sparse(cooc, rows, counts, **kw))
        else:
            parts.append(_normalised_topk(cooc, rows, counts, **kw))
    return sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, n_items))


def sequences_from_recency(recency: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(user row, item) of every history entry, each user's items oldest → newest."""
    coo = recency.tocoo()
    order = np.lexsort((-coo.data, coo.row))
    return coo.row[order].astype(np.int64), coo.col[order].astype(np.int64)


def _row_max_normalise(scores: np.ndarray) -> np.ndarray:
    peak = scores.max(axis=1, keepdims=True)
    np.maximum(peak, 1e-12, out=peak)
    scores /= peak
    return scores


class PopularityModel(RecModel):
    """Most-bought items (number of distinct buyers), the same list for everyone."""

    name = "popularity"

    def fit(self, user_items, *, recency=None):
        user_items = as_csr(user_items)
        self.n_users, self.n_items = user_items.shape
        counts = np.asarray(_binary(user_items).sum(axis=0)).ravel()
        self.counts = counts.astype(np.float32)
        return self

    def score(self, user_items, *, recency=None, userids=None):
        peak = max(float(self.counts.max(initial=0.0)), 1.0)
        return np.tile(self.counts / peak, (user_items.shape[0], 1)).astype(np.float32)

    def item_neighbours(self, itemids):
        return self.score(sp.csr_matrix((len(itemids), self.n_items)))

    def _state(self):
        return {"counts": self.counts}

    def _set_state(self, state):
        self.counts = state["counts"].astype(np.float32)


class CategoryPopularityModel(RecModel):
    """Popular items within the categories of the member's recent history.

    Call ``set_item_categories(codes)`` (one integer code per item, −1 = unknown) before ``fit``.
    """

    name = "category_popularity"
    uses_recency = True

    def set_item_categories(self, codes: np.ndarray) -> CategoryPopularityModel:
        self.item_categories = np.asarray(codes, dtype=np.int64)
        return self

    def fit(self, user_items, *, recency=None):
        user_items = as_csr(user_items)
        self.n_users, self.n_items = user_items.shape
        if getattr(self, "item_categories", None) is None:
            self.item_categories = np.zeros(self.n_items, dtype=np.int64)
        counts = np.asarray(_binary(user_items).sum(axis=0)).ravel().astype(np.float32)
        self.within, self.category_share = _within_category(
            counts, self.item_categories, self.params.get("within", "max")
        )
        return self

    def score(self, user_items, *, recency=None, userids=None):
        p = self.params
        prof = history_profile(
            as_csr(user_items, self.n_items),
            recency,
            p.get("history_decay", 0.8),
            p.get("max_history", 20),
        )
        cats = np.where(self.item_categories < 0, 0, self.item_categories)
        n_cats = cats.max(initial=0) + 1
        onehot = sp.csr_matrix(
            (np.ones(self.n_items, np.float32), (np.arange(self.n_items), cats)),
            shape=(self.n_items, n_cats),
        )
        pref = np.asarray((prof @ onehot).todense(), dtype=np.float32)
        prior = float(p.get("prior", 0.0))
        if prior > 0:  # Dirichlet smoothing towards the catalogue-wide category shares
            pref += prior * self.category_share[None, : pref.shape[1]]
        pref /= np.maximum(pref.sum(axis=1, keepdims=True), 1e-12)
        return (pref[:, cats] * self.within[None, :]).astype(np.float32)

    def _state(self):
        return {
            "item_categories": self.item_categories,
            "within": self.within,
            "category_share": self.category_share,
        }

    def _set_state(self, state):
        self.item_categories = state["item_categories"]
        self.within = state["within"]
        cats = np.where(self.item_categories < 0, 0, self.item_categories)
        default = np.zeros(cats.max(initial=0) + 1, np.float32)
        self.category_share = state.get("category_share", default)


def _within_category(
    counts: np.ndarray, item_categories: np.ndarray, within: str
) -> tuple[np.ndarray, np.ndarray]:
    """(item weight within its category, share of all buyers per category). ``within``: "max" =
    buyers / the category's top item's buyers; "share" = buyers / the category's buyers (an
    estimate of P(item | category))."""
    cats = np.where(item_categories < 0, 0, item_categories)
    n_cats = cats.max(initial=0) + 1
    if within == "share":
        denom = np.bincount(cats, weights=counts, minlength=n_cats).astype(np.float32)
    else:
        denom = np.zeros(n_cats, np.float32)
        np.maximum.at(denom, cats, counts)
    out = (counts / np.maximum(denom[cats], 1.0)).astype(np.float32)
    out[item_categories < 0] = 0.0
    known = item_categories >= 0
    share = np.bincount(cats[known], weights=counts[known], minlength=n_cats).astype(np.float32)
    share /= max(float(share.sum()), 1e-12)
    return out, share


class _ItemItemModel(RecModel):
    """Shared scoring for models with a sparse item → item matrix ``similarity``."""

    uses_recency = True

    def score(self, user_items, *, recency=None, userids=None):
        p = self.params
        prof = history_profile(
            as_csr(user_items, self.n_items), recency, p["history_decay"], p["max_history"]
        )
        return np.asarray((prof @ self.similarity).todense(), dtype=np.float32)

    def item_neighbours(self, itemids):
        return np.asarray(self.similarity[np.asarray(itemids)].todense(), dtype=np.float32)

    def _state(self):
        s = self.similarity
        return {"indptr": s.indptr, "indices": s.indices, "data": s.data}

    def _set_state(self, state):
        self.similarity = sp.csr_matrix(
            (state["data"], state["indices"], state["indptr"]), shape=(self.n_items, self.n_items)
        )


class ItemKNNModel(_ItemItemModel):
    """Co-purchase similarity ``c_ij / (n_i^alpha n_j^(1-alpha) + shrink)``, top-K neighbours."""

    name = "item_knn"

    def __init__(self, neighbours=100, alpha=0.5, shrink=0.0, history_decay=0.8, max_history=50):
        super().__init__(
            neighbours=neighbours,
            alpha=alpha,
            shrink=shrink,
            history_decay=history_decay,
            max_history=max_history,
        )

    def fit(self, user_items, *, recency=None):
        x = _binary(as_csr(user_items))
        self.n_users, self.n_items = x.shape
        counts = np.asarray(x.sum(axis=0)).ravel().astype(np.float32)
        xt = x.T.tocsr()
        p = self.params
        self.similarity = _blocked_similarity(
            xt, x, counts, k=p["neighbours"], alpha=p["alpha"], shrink=p["shrink"]
        )
        return self


class TransitionModel(_ItemItemModel):
    """What is bought next: item pairs up to ``window`` steps apart in each history.

    Pair weight ``distance_decay ** (d - 1)`` forward, times ``backward_weight`` backward, then the
    same normalisation and pruning as item-kNN. Needs ``recency`` (falls back to column order).
    """

    name = "transitions"

    def __init__(
        self,
        window=3,
        distance_decay=0.5,
        backward_weight=0.3,
        neighbours=100,
        alpha=0.5,
        shrink=0.0,
        history_decay=0.4,
        max_history=10,
    ):
        super().__init__(
            window=window,
            distance_decay=distance_decay,
            backward_weight=backward_weight,
            neighbours=neighbours,
            alpha=alpha,
            shrink=shrink,
            history_decay=history_decay,
            max_history=max_history,
        )

    def fit(self, user_items, *, recency=None):
        user_items = as_csr(user_items)
        self.n_users, self.n_items = user_items.shape
        if recency is None:  # order unknown: column order stands in for time
            recency = user_items.copy()
            counts_per_row = np.diff(recency.indptr)
            recency.data = (
                np.repeat(counts_per_row + recency.indptr[:-1], counts_per_row)
                - np.arange(recency.nnz)
                - 1
            ).astype(np.float32)
        rows, items = sequences_from_recency(as_csr(recency))
        p = self.params
        src, dst, wts = [], [], []
        for d in range(1, p["window"] + 1):
            same = rows[:-d] == rows[d:]
            src.append(items[:-d][same])
            dst.append(items[d:][same])
            wts.append(np.full(len(src[-1]), p["distance_decay"] ** (d - 1), np.float32))
        n = self.n_items
        if src:  # forward pairs; backward pairs are their transpose
            forward = sp.csr_matrix(
                (np.concatenate(wts), (np.concatenate(src), np.concatenate(dst))),
                shape=(n, n),
                dtype=np.float32,
            )
            forward.sum_duplicates()
            trans = forward
            if p["backward_weight"] > 0:
                trans = sp.csr_matrix(forward + p["backward_weight"] * forward.T.tocsr())
        else:
            trans = sp.csr_matrix((n, n), dtype=np.float32)
        trans.sum_duplicates()
        counts = np.asarray(_binary(user_items).sum(axis=0)).ravel().astype(np.float32)
        eye = sp.identity(n, dtype=np.float32, format="csr")
        self.similarity = _blocked_similarity(
            trans, eye, counts, k=p["neighbours"], alpha=p["alpha"], shrink=p["shrink"]
        )
        return self


class RepeatModel(RecModel):
    """Replenishment: items a member bought before that buyers often buy again.

    ``fit(user_items)`` reads ``user_items`` as purchase *counts*; ``repeat_rate[i]`` is the share
    of an item's buyers who bought it at least twice (0 below ``min_buyers``/``min_repeat_rate``).
    Scores only the member's own history: ``history_decay ** rank`` (newest first) or, with
    ``profile="weights"``, the time-decayed interaction weights; times the re-buy rate (with
    ``smoothing`` > 0 every item's rate, shrunk towards the overall rate, not only the gated
    ``repeat_rate`` that serving uses to allow re-buys).
    """

    name = "repeat"
    uses_recency = True

    def __init__(
        self,
        min_buyers=5,
        min_repeat_rate=0.15,
        history_decay=0.7,
        profile="history",
        smoothing=0.0,
    ):
        super().__init__(
            min_buyers=min_buyers,
            min_repeat_rate=min_repeat_rate,
            history_decay=history_decay,
            profile=profile,
            smoothing=smoothing,
        )

    def fit(self, user_items, *, recency=None):
        counts = as_csr(user_items)
        self.n_users, self.n_items = counts.shape
        buyers = np.asarray((counts > 0).sum(axis=0)).ravel().astype(np.float32)
        repeaters = np.asarray((counts >= 2).sum(axis=0)).ravel().astype(np.float32)
        rate = repeaters / np.maximum(buyers, 1.0)
        ok = (buyers >= self.params["min_buyers"]) & (rate >= self.params["min_repeat_rate"])
        self.repeat_rate = np.where(ok, rate, 0.0).astype(np.float32)
        a = float(self.params.get("smoothing", 0.0))
        if a > 0:  # every item, rate shrunk towards the overall re-buy rate by `a` pseudo-buyers
            overall = float(repeaters.sum() / max(buyers.sum(), 1.0))
            self.score_rate = ((repeaters + a * overall) / (buyers + a)).astype(np.float32)
        else:
            self.score_rate = self.repeat_rate
        return self

    def score(self, user_items, *, recency=None, userids=None):
        user_items = as_csr(user_items, self.n_items)
        if self.params.get("profile", "history") == "weights":
            prof = user_items  # time-decayed interaction weights (units bought, events lower)
        else:
            prof = history_profile(user_items, recency, self.params["history_decay"], 10**9)
        rate = getattr(self, "score_rate", self.repeat_rate)
        prof = prof.multiply(rate[None, :]).tocsr()
        return np.asarray(prof.todense(), dtype=np.float32)

    def item_neighbours(self, itemids):
        return np.zeros((len(itemids), self.n_items), np.float32)

    def _state(self):
        return {"repeat_rate": self.repeat_rate, "score_rate": self.score_rate}

    def _set_state(self, state):
        self.repeat_rate = state["repeat_rate"]
        self.score_rate = state.get("score_rate", self.repeat_rate)


class _FactorModel(RecModel):
    """Scores are ``user_factors @ item_factors.T``; unknown users are folded in."""

    def score(self, user_items, *, recency=None, userids=None):
        user_items = as_csr(user_items, self.n_items)
        n = user_items.shape[0]
        userids = np.full(n, -1) if userids is None else np.asarray(userids, dtype=np.int64)
        known = (userids >= 0) & (userids < len(self.user_factors))
        factors = np.empty((n, self.item_factors.shape[1]), np.float32)
        factors[known] = self.user_factors[userids[known]]
        for row in np.flatnonzero(~known):
            factors[row] = self._fold_in(user_items[row])
        return factors @ self.item_factors.T

    def item_neighbours(self, itemids):
        v = self.item_factors
        norms = np.linalg.norm(v, axis=1) + 1e-9
        return (v[np.asarray(itemids)] / norms[np.asarray(itemids), None]) @ (v / norms[:, None]).T

    def _fold_in(self, row: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError

    def _state(self):
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def _set_state(self, state):
        self.user_factors = state["user_factors"].astype(np.float32)
        self.item_factors = state["item_factors"].astype(np.float32)


def _dense_factors(model: Any) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(model, "to_cpu"):
        with contextlib.suppress(AttributeError, NotImplementedError):
            model = model.to_cpu()
    return np.asarray(model.user_factors, np.float32), np.asarray(model.item_factors, np.float32)


def _fit_implicit(recommender, user_items, make_model):
    """Fit an implicit factor model built by ``make_model`` and keep its dense factors.

    BLAS stays single-threaded: implicit parallelises itself (field notes).
    """
    from threadpoolctl import threadpool_limits

    user_items = as_csr(user_items)
    recommender.n_users, recommender.n_items = user_items.shape
    with threadpool_limits(1, "blas"):
        model = make_model()
        model.fit(user_items, show_progress=False)
    recommender.user_factors, recommender.item_factors = _dense_factors(model)
    return recommender


class ALSModel(_FactorModel):
    """implicit's ALS (confidence ``1 + alpha * weight``)."""

    name = "als"

    def __init__(
        self, factors=64, regularization=0.05, alpha=10.0, iterations=15, seed=42, threads=0
    ):
        super().__init__(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            seed=seed,
            threads=threads,
        )

    def fit(self, user_items, *, recency=None):
        from implicit.cpu.als import AlternatingLeastSquares

        p = self.params
        return _fit_implicit(
            self,
            user_items,
            lambda: AlternatingLeastSquares(
                factors=p["factors"],
                regularization=p["regularization"],
                alpha=p["alpha"],
                iterations=p["iterations"],
                random_state=p["seed"],
                num_threads=p["threads"],
            ),
        )

    def _fold_in(self, row):
        v = self.item_factors
        k = v.shape[1]
        reg = self.params["regularization"] * np.eye(k, dtype=np.float32)
        if row.nnz == 0:
            return np.zeros(k, np.float32)
        idx, w = row.indices, row.data
        conf = 1.0 + self.params["alpha"] * w
        vi = v[idx]
        if not hasattr(self, "_yty"):
            self._yty = v.T @ v
        a = self._yty + (vi.T * (conf - 1.0)) @ vi + reg
        b = (vi * conf[:, None]).sum(axis=0)
        return np.linalg.solve(a, b).astype(np.float32)


class BPRModel(_FactorModel):
    """implicit's BPR (last factor column is the item bias)."""

    name = "bpr"

    def __init__(
        self,
        factors=64,
        learning_rate=0.05,
        regularization=0.01,
        iterations=100,
        seed=42,
        threads=0,
    ):
        super().__init__(
            factors=factors,
            learning_rate=learning_rate,
            regularization=regularization,
            iterations=iterations,
            seed=seed,
            threads=threads,
        )

    def fit(self, user_items, *, recency=None):
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        p = self.params
        return _fit_implicit(
            self,
            user_items,
            lambda: BayesianPersonalizedRanking(
                factors=p["factors"],
                learning_rate=p["learning_rate"],
                regularization=p["regularization"],
                iterations=p["iterations"],
                random_state=p["seed"],
                num_threads=p["threads"],
            ),
        )

    def _fold_in(self, row):
        k = self.item_factors.shape[1]
        out = np.zeros(k, np.float32)
        if row.nnz:
            out[:] = self.item_factors[row.indices].mean(axis=0)
        out[-1] = 1.0  # the bias column
        return out


class BlendModel(RecModel):
    """Weighted sum of row-max-normalised component scores (weights ≤ 0 are skipped)."""

    name = "blend"
    uses_recency = True

    def __init__(self, weights: dict[str, float] | None = None, **_: Any):
        super().__init__(weights=dict(weights or {}))
        self.components: dict[str, RecModel] = {}

    def add(self, model: RecModel) -> BlendModel:
        self.components[model.name] = model
        self.n_items = model.n_items
        self.n_users = max(self.n_users, model.n_users)
        return self

    def active(self) -> dict[str, float]:
        w = self.params["weights"]
        return {n: float(w.get(n, 0.0)) for n in self.components if w.get(n, 0.0) > 0}

    def fit(self, user_items, *, recency=None):
        for model in self.components.values():
            model.fit(user_items, recency=recency)
        self.n_users, self.n_items = user_items.shape
        return self

    def score(self, user_items, *, recency=None, userids=None):
        total = np.zeros((user_items.shape[0], self.n_items), np.float32)
        for name, weight in self.active().items():
            part = self.components[name].score(user_items, recency=recency, userids=userids)
            total += weight * _row_max_normalise(part)
        return total

    def item_neighbours(self, itemids):
        total = np.zeros((len(itemids), self.n_items), np.float32)
        for name, weight in self.active().items():
            part = np.asarray(self.components[name].item_neighbours(itemids), np.float32)
            total += weight * _row_max_normalise(np.maximum(part, 0))
        return total

    def _state(self):
        out: dict[str, np.ndarray] = {}
        metas = {}
        for name, model in self.components.items():
            metas[name] = {
                "params": model.params,
                "n_items": model.n_items,
                "n_users": model.n_users,
            }
            for key, value in model._state().items():
                out[f"{name}::{key}"] = value
        out["components"] = np.array(json.dumps(metas))
        return out

    def _set_state(self, state):
        metas = json.loads(str(state["components"]))
        self.components = {}
        for name, meta in metas.items():
            model = model_class(name)(**meta["params"])
            model.n_items, model.n_users = meta["n_items"], meta["n_users"]
            prefix = f"{name}::"
            model._set_state(
                {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            )
            self.components[name] = model


def build_model(name: str, config: Any) -> RecModel:
    """A component model from its ``config/recs.yaml`` section (``RecsConfig``)."""
    if name == "popularity":
        return PopularityModel()
    if name == "category_popularity":
        return CategoryPopularityModel(**config.category_popularity.model_dump())
    if name == "als":
        return ALSModel(**config.als.model_dump(), seed=config.seed, threads=config.threads)
    if name == "bpr":
        return BPRModel(**config.bpr.model_dump(), seed=config.seed, threads=config.threads)
    if name == "item_knn":
        return ItemKNNModel(**config.item_knn.model_dump())
    if name == "transitions":
        return TransitionModel(**config.transitions.model_dump())
    if name == "repeat":
        return RepeatModel(**config.repeat.model_dump())
    raise KeyError(f"unknown recommendation model {name!r}")
