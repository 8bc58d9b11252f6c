"""Serving-time recommender: every list the request path needs is precomputed at build time.

Per request the work is proportional to the member's history and the neighbour lists, never to the
catalogue size: item → item neighbour lists (transitions, co-purchase, similar items), each
member's factor-model top list, popularity (global, per segment, per category), repeat rates,
product price/tier/catalogue flags. Scores of a source are divided by their maximum (as in the
offline blend) and summed with the blend weights; ties break on item index, so results are
deterministic.

``home`` for a known member goes further: the final list (top ``serving.precomputed_home`` after
the catalogue and purchase filters, with reasons) is computed for every member at build time by the
vectorised batch scorer, so a request only slices a row, applies the tier filter and attaches
points; it is scored live when the row cannot answer exactly (more items asked, too few left after
the tier filter, another ``include_purchased`` policy, a tier boost, or after ``with_members``).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from loyalty_ml.errors import LoyaltyError
from loyalty_ml.recs.config import RecsConfig
from loyalty_ml.recs.interactions import Interactions
from loyalty_ml.recs.models import BlendModel, _FactorModel, _ItemItemModel

log = logging.getLogger(__name__)
Context = Literal["home", "cart", "post_purchase", "similar"]
CONTEXTS: tuple[str, ...] = ("home", "cart", "post_purchase", "similar")
BUNDLE_FILE = "recommender.npz"
REASONS = {
    "transitions": "bought_next",
    "item_knn": "bought_together",
    "als": "for_you",
    "bpr": "for_you",
    "category_popularity": "popular_in_your_categories",
    "popularity": "popular",
    "repeat": "buy_again",
    "segment": "popular_in_segment",
    "similar": "similar_item",
    "complement": "goes_with",
}


class RecommendationResult(tuple):
    """``items`` (product_id, score, reason, points_to_earn), ``fallback`` (None, "cold_start",
    "popular", "home") and ``notes``. Also unpacks as the pair ``(items, fallback)``."""

    def __new__(
        cls,
        member_id: str,
        context: str,
        items: list[dict[str, Any]],
        fallback: str | None = None,
        notes: list[str] | None = None,
    ) -> RecommendationResult:
        obj = super().__new__(cls, (items, fallback))
        obj.member_id, obj.context = member_id, context
        obj.notes = list(notes or [])
        return obj

    @property
    def items(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return self[0]

    @property
    def fallback(self) -> str | None:
        return self[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "member_id": self.member_id,
            "context": self.context,
            "items": self.items,
            "fallback": self.fallback,
            "notes": self.notes,
        }

    @property
    def product_ids(self) -> list[str]:
        return [i["product_id"] for i in self.items]

    def __repr__(self) -> str:
        return f"RecommendationResult({self.to_dict()!r})"


def _csr_from_lists(lists: list[np.ndarray], vals: list[np.ndarray] | None, n_cols: int):
    indptr = np.zeros(len(lists) + 1, np.int64)
    indptr[1:] = np.cumsum([len(x) for x in lists])
    indices = np.concatenate(lists).astype(np.int32) if lists else np.zeros(0, np.int32)
    data = np.concatenate(vals).astype(np.float32) if vals else np.ones(len(indices), np.float32)
    return indptr, indices, data


class _Rows:
    """A CSR-like list of (index, value) rows with fast row slicing (no scipy per request)."""

    __slots__ = ("data", "indices", "indptr")

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray) -> None:
        self.indptr = np.asarray(indptr, np.int64)
        self.indices = np.asarray(indices, np.int32)
        self.data = np.asarray(data, np.float32)

    @classmethod
    def from_csr(cls, m: sp.csr_matrix, order_by_value: bool = True) -> _Rows:
        m = sp.csr_matrix(m)
        if order_by_value and m.nnz:
            rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
            order = np.lexsort((m.indices, -m.data, rows))
            return cls(m.indptr, m.indices[order], m.data[order])
        return cls(m.indptr, m.indices, m.data)

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.indptr[i], self.indptr[i + 1]
        return self.indices[lo:hi], self.data[lo:hi]

    def rows(self, ids: np.ndarray, weights: np.ndarray | None = None):
        if len(ids) == 1:
            idx, val = self.row(int(ids[0]))
            return idx, (val * weights[0] if weights is not None else val)
        parts = [self.row(int(i)) for i in ids]
        idx = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int32)
        if weights is None:
            val = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.float32)
        else:
            val = (
                np.concatenate([p[1] * w for p, w in zip(parts, weights, strict=True)])
                if parts
                else np.zeros(0, np.float32)
            )
        return idx, val

    def take(self, rows: np.ndarray) -> _Rows:
        """Rows in a new order; −1 gives an empty row."""
        rows = np.asarray(rows, np.int64)
        valid = rows >= 0
        lengths = np.zeros(len(rows), np.int64)
        lengths[valid] = self.indptr[rows[valid] + 1] - self.indptr[rows[valid]]
        indptr = np.zeros(len(rows) + 1, np.int64)
        indptr[1:] = np.cumsum(lengths)
        starts = np.repeat(np.where(valid, self.indptr[np.maximum(rows, 0)], 0), lengths)
        offsets = np.arange(indptr[-1]) - np.repeat(indptr[:-1], lengths)
        src = starts + offsets
        return _Rows(indptr, self.indices[src], self.data[src])

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}.indptr": self.indptr,
            f"{prefix}.indices": self.indices,
            f"{prefix}.data": self.data,
        }

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray], prefix: str) -> _Rows:
        return cls(state[f"{prefix}.indptr"], state[f"{prefix}.indices"], state[f"{prefix}.data"])


def _top_rows(dense_fn, n_rows: int, n_cols: int, k: int, exclude_self: bool) -> sp.csr_matrix:
    """Top ``k`` per row of a dense function computed in blocks."""
    block = max(1, 20_000_000 // max(n_cols, 1))
    parts = []
    for start in range(0, n_rows, block):
        ids = np.arange(start, min(start + block, n_rows))
        dense = np.asarray(dense_fn(ids), np.float32)
        if exclude_self:
            dense[np.arange(len(ids)), ids] = -np.inf
        kk = min(k, n_cols)
        idx = np.argpartition(-dense, kk - 1, axis=1)[:, :kk]
        val = np.take_along_axis(dense, idx, axis=1)
        keep = np.isfinite(val) & (val > 0)
        rows = np.repeat(np.arange(len(ids)), keep.sum(axis=1))
        parts.append(sp.csr_matrix((val[keep], (rows, idx[keep])), shape=(len(ids), n_cols)))
    return sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, n_cols))


class Recommender:
    """Answers ``recommend(member_id, n, context, ...)`` from precomputed arrays (see module doc)."""

    def __init__(self, state: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.meta = meta
        self.config = RecsConfig.model_validate(meta["config"])
        self.weights: dict[str, float] = {k: float(v) for k, v in meta["weights"].items()}
        self.item_ids = state["item_ids"].astype(str)
        self.member_ids = state["member_ids"].astype(str)
        self.item_index = {p: i for i, p in enumerate(self.item_ids.tolist())}
        self.member_index = {m: i for i, m in enumerate(self.member_ids.tolist())}
        self.n_items = len(self.item_ids)
        self.price = state["price"]
        self.min_tier = state["min_tier"].astype(np.int64)
        self.available = state["available"].astype(bool)
        self.category = state["category"].astype(np.int64)
        self._category_slots = int(self.category.max(initial=-1)) + 2
        self.popularity = state["popularity"]
        self.popular_top = state["popular_top"].astype(np.int64)
        self.repeat_rate = state["repeat_rate"]
        self.member_tier = state["member_tier"].astype(np.int64)
        self.member_birth_month = state["member_birth_month"].astype(np.int64)
        self.history = _Rows.from_state(state, "history")
        self.purchased = _Rows.from_state(state, "purchased")
        self.last_order = _Rows.from_state(state, "last_order")
        self.item_item = {name: _Rows.from_state(state, f"ii.{name}") for name in meta["item_item"]}
        self.decay = {k: tuple(v) for k, v in meta["decay"].items()}
        self.member_top = {name: _Rows.from_state(state, f"mt.{name}") for name in meta["factor"]}
        self.similar = _Rows.from_state(state, "similar")
        self.complement = _Rows.from_state(state, "complement")
        self.category_top = _Rows.from_state(state, "category_top")
        self.category_prior = (
            _Rows.from_state(state, "category_prior") if "category_prior.indptr" in state else None
        )
        self.segment_columns: list[str] = meta["segment_columns"]
        self.segment_member = {
            c: state[f"seg.{c}.member"].astype(np.int64) for c in self.segment_columns
        }
        self.segment_values = {c: list(meta["segment_values"][c]) for c in self.segment_columns}
        self.segment_top = {c: _Rows.from_state(state, f"seg.{c}") for c in self.segment_columns}
        self._policy = None
        self._policy_loaded = False
        self.tier_names: list[str] = list(meta.get("tier_names") or [])
        # Precomputed ``home`` candidates per member (absent in older bundles: computed live).
        self.home: _Rows | None = None
        self.home_reason: np.ndarray | None = None
        self.home_k = 0
        if "home.indptr" in state and len(state["home.indptr"]) == len(self.member_ids) + 1:
            self.home = _Rows.from_state(state, "home")
            self.home_reason = state["home.reason"].astype(np.int8)
            self.home_k = int(meta.get("home_k", 0))

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path | str) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / BUNDLE_FILE
        with path.open("wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(self.meta, default=str)), **self._state)
        return path

    @classmethod
    def load(cls, path_or_uri: Path | str) -> Recommender:
        """From a bundle directory, a ``recommender.npz`` file, or an MLflow URI
        (``models:/recs-beauty@champion``, ``runs:/<id>/recommender``)."""
        text = str(path_or_uri)
        if "://" in text or text.startswith(("models:/", "runs:/")):
            from loyalty_ml.tracking import configure_mlflow

            configure_mlflow()
            import mlflow

            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=text))
            found = sorted(local.rglob(BUNDLE_FILE))
            if not found:
                raise LoyaltyError(f"no {BUNDLE_FILE} in {text}")
            path = found[0]
        else:
            path = Path(text)
            if path.is_dir():
                path = path / BUNDLE_FILE
            if not path.is_file():
                raise LoyaltyError(f"recommender bundle not found: {path}")
        with np.load(path, allow_pickle=False) as data:
            state = {k: data[k] for k in data.files if k != "meta"}
            meta = json.loads(str(data["meta"]))
        rec = cls(state, meta)
        rec._state = state
        return rec

    def with_members(self, dataset: Any, as_of: Any) -> Recommender:
        """The same models with member state (history, purchases, last order, tiers, segments)
        re-read from ``dataset`` as of ``as_of``: batch lists reflect the data given."""
        from loyalty_ml.recs.interactions import from_log, interaction_log
        from loyalty_ml.timeutil import to_utc

        as_of = to_utc(as_of)
        cut = dataset.as_of(as_of)
        try:
            log_rows = interaction_log(cut, self.config.interactions)
        except LoyaltyError:
            log_rows = pd.DataFrame(
                {
                    "member_id": [],
                    "product_id": [],
                    "at": pd.to_datetime([], utc=True),
                    "weight": [],
                    "is_purchase": [],
                }
            )
        ids = sorted(set(cut.members["member_id"].astype(str)) | set(log_rows["member_id"]))
        inter = from_log(
            log_rows, np.array(ids, dtype=str), self.item_ids, as_of, self.config.interactions
        )
        member_state, _ = _member_state(
            inter, cut, self.config, self.tier_names or _default_tiers(), self.segment_values
        )
        state = {k: v for k, v in self._state.items() if not k.startswith("home.")}
        state.update(member_state)
        old = pd.Index(self.member_ids).get_indexer(member_state["member_ids"])
        for name in self.meta["factor"]:
            state.update(self.member_top[name].take(old).state(f"mt.{name}"))
        meta = {k: v for k, v in self.meta.items() if k not in ("home_k", "home_sources")}
        rec = Recommender(state, meta)
        rec._state = state
        return rec

    # ------------------------------------------------------------------ policy
    @property
    def policy(self):
        if not self._policy_loaded:
            self._policy_loaded = True
            try:
                from loyalty_ml.policy import load_policy

                self._policy = load_policy()
                self.tier_names = list(self._policy.tier_names)
            except Exception as exc:  # policy optional: points are then omitted
                log.warning("policy unavailable, points_to_earn omitted: %s", exc)
                self._policy = None
        return self._policy

    def _tier(self, member: int, member_tier: str | None, notes: list[str]) -> int:
        _ = self.policy
        if member_tier is not None:
            if member_tier in self.tier_names:
                return self.tier_names.index(member_tier)
            notes.append(f"unknown tier {member_tier!r}: treated as the lowest tier")
            return 0
        if member >= 0 and self.member_tier[member] >= 0:
            return int(self.member_tier[member])
        return 0

    def _points(self, ids: np.ndarray, tier: int, now: Any, member: int) -> list[int | None]:
        """``points_to_earn`` from the policy engine, tabulated once per (tier, birthday month
        or not) over every product price, then looked up per request."""
        pol = self.policy
        if pol is None or not len(ids):
            return [None] * len(ids)
        month = now.month if hasattr(now, "month") else pd.Timestamp(now).month
        birthday = member >= 0 and int(self.member_birth_month[member]) == month
        table = self.__dict__.setdefault("_points_table", {})
        key = (tier, birthday)
        if key not in table:
            from loyalty_ml.policy import points_to_earn

            at = pd.Timestamp(year=2000, month=month, day=1, tz="UTC")
            table[key] = np.asarray(
                points_to_earn(
                    np.full(self.n_items, tier),
                    self.price.astype(float),
                    at,
                    pol,
                    birth_month=np.full(self.n_items, month) if birthday else None,
                ),
                np.int64,
            )
        return table[key][ids].tolist()

    # ------------------------------------------------------------------ scoring helpers
    def _member_history(self, member: int) -> np.ndarray:
        return self.history.row(member)[0] if member >= 0 else np.zeros(0, np.int32)

    def _history_sources(self, hist: np.ndarray, sources: list) -> None:
        """Item → item sources scored from the member's history (newest first)."""
        for name, rows in self.item_item.items():
            w = self.weights.get(name, 0.0)
            if w <= 0 or not len(hist):
                continue
            decay, max_history = self.decay[name]
            h = hist[:max_history]
            idx, val = rows.rows(h, np.power(decay, np.arange(len(h), dtype=np.float32)))
            sources.append((name, idx, val, w))

    def _category_scores(self, hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Popular items of the member's categories: category weights = decay^rank over the
        latest ``max_history`` items, plus ``prior`` x the overall category shares."""
        cp = self.config.category_popularity
        h = hist[: cp.max_history]
        cats = self.category[h]
        ok = cats >= 0
        if not ok.any():
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        weights = np.power(np.float32(cp.history_decay), np.arange(len(h), dtype=np.float32))
        c, inv = np.unique(cats[ok], return_inverse=True)
        idx, val = self.category_top.rows(c, np.bincount(inv, weights=weights[ok]))
        if cp.prior > 0 and self.category_prior is not None:
            p_idx, p_val = self.category_prior.row(0)
            idx = np.concatenate([idx, p_idx])
            val = np.concatenate([val, p_val * cp.prior])
        return idx, val

    @staticmethod
    def _combine(sources: list, n_items: int):
        """Per source: values summed per item, divided by the source's maximum (as the offline
        blend does), times the weight; summed over sources → (ids, scores, best source per id)."""
        sources = [s for s in sources if len(s[1])]
        if not sources:
            return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64)
        all_idx = np.concatenate([s[1] for s in sources]).astype(np.int64)
        uniq, inv = np.unique(all_idx, return_inverse=True)
        contrib = np.zeros((len(sources), len(uniq)), np.float32)
        start = 0
        for j, (_, idx, _val, w) in enumerate(sources):
            stop = start + len(idx)
            agg = np.bincount(inv[start:stop], weights=_val, minlength=len(uniq))
            peak = float(agg.max()) if len(agg) else 0.0
            contrib[j] = agg * (w / peak) if peak > 0 else 0.0
            start = stop
        return uniq, contrib.sum(axis=0), contrib.argmax(axis=0)

    def _segment_sources(self, member: int, tier: int, sources: list) -> None:
        """Cold start: popularity within the member's segments (region, tier, channel…)."""
        for col in self.segment_columns:
            code = -1
            if col == "tier":
                name = self.tier_names[tier] if tier < len(self.tier_names) else None
                values = self.segment_values[col]
                code = values.index(name) if name in values else -1
            elif member >= 0:
                code = int(self.segment_member[col][member])
            if code >= 0:
                idx, val = self.segment_top[col].row(code)
                sources.append(("segment", idx, val, 1.0))
        top = self.popular_top
        sources.append(("popularity", top, self.popularity[top], 0.1))

    # ------------------------------------------------------------------ public API
    def recommend(
        self,
        member_id: str,
        n: int = 10,
        context: str = "home",
        cart: list[str] | None = None,
        product_id: str | None = None,
        member_tier: str | None = None,
        now: Any = None,
        *,
        include_purchased: bool | None = None,
        with_points: bool = True,
    ) -> RecommendationResult:
        """Top ``n`` products for one member in a request context (never raises on a
        well-formed request: unknown members/products fall back with a note)."""
        notes: list[str] = []
        fallback: str | None = None
        member_id = str(member_id)
        if context not in CONTEXTS:
            notes.append(f"unknown context {context!r}: served as 'home'")
            context = "home"
        n = max(int(n), 0)
        member = self.member_index.get(member_id, -1)
        tier = self._tier(member, member_tier, notes)
        exclude_bought = (
            self.config.serving.exclude_purchased
            if include_purchased is None
            else not include_purchased
        )
        if (
            context == "home"
            and self.home is not None
            and exclude_bought == self.config.serving.exclude_purchased
        ):
            got = self._serve_precomputed_home(member, tier, n)
            if got is not None:
                return self._result(
                    member_id, context, *got, tier, now, member, with_points, None, notes
                )
        hist = self._member_history(member)
        sources: list = []
        blocked: list[np.ndarray] = []  # never recommended in this request (cart items, anchor)
        allow_repeat = False
        blocked_categories: np.ndarray | None = None  # cart substitutes

        if context == "similar":
            anchor = self.item_index.get(str(product_id)) if product_id is not None else None
            if anchor is None:
                notes.append(
                    "no product_id given"
                    if product_id is None
                    else f"unknown product {product_id!r}: served popular items"
                )
                fallback = "popular"
            else:
                idx, val = self.similar.row(anchor)
                sources.append(("similar", idx, val, 1.0))
                blocked.append(np.array([anchor]))
        elif context in ("cart", "post_purchase"):
            if context == "cart":
                seeds_raw = [str(p) for p in (cart or [])]
                known = [self.item_index[p] for p in seeds_raw if p in self.item_index]
                unknown = [p for p in seeds_raw if p not in self.item_index]
                if unknown:
                    notes.append(f"ignored unknown product(s) in cart: {', '.join(unknown[:5])}")
                seeds = np.array(sorted(set(known)), np.int64)
                blocked.append(seeds)
            else:
                seeds = (
                    self.last_order.row(member)[0].astype(np.int64)
                    if member >= 0
                    else np.zeros(0, np.int64)
                )
                allow_repeat = True
                rep = self.purchased.row(member)[0] if member >= 0 else np.zeros(0, np.int32)
                rate = self.repeat_rate[rep] if len(rep) else np.zeros(0, np.float32)
                keep = rate > 0
                if keep.any():
                    w = self.config.serving.post_purchase_repeat_weight
                    sources.append(("repeat", rep[keep], rate[keep], w))
            if len(seeds):
                idx, val = self.complement.rows(seeds)
                penalty = self.config.serving.cart_substitute_penalty
                if penalty > 0:
                    seed_cats = self.category[seeds]
                    seed_cats = seed_cats[seed_cats >= 0]
                    if len(seed_cats) and penalty >= 1 and context == "cart":
                        blocked_categories = seed_cats
                    if len(seed_cats):
                        same = self._in_categories(idx, seed_cats)
                        val = np.where(
                            same, val * (1 - self.config.serving.cart_substitute_penalty), val
                        )
                sources.append(("complement", idx, val, 1.0))
            elif context == "cart":
                notes.append("no known product in the cart: served home recommendations")
                fallback = "home"
            if not len(seeds) and context == "post_purchase" and not sources:
                notes.append("no previous order: served home recommendations")
                fallback = "home"
            context_scored = "home" if fallback == "home" else context
        else:
            context_scored = "home"

        if context == "home" or (context in ("cart", "post_purchase") and context_scored == "home"):
            self._history_sources(hist, sources)
            if member >= 0:
                for name, rows in self.member_top.items():
                    w = self.weights.get(name, 0.0)
                    if w > 0:
                        idx, val = rows.row(member)
                        sources.append((name, idx, np.maximum(val, 0), w))
                if self.weights.get("category_popularity", 0) > 0 and len(hist):
                    sources.append(
                        (
                            "category_popularity",
                            *self._category_scores(hist),
                            self.weights["category_popularity"],
                        )
                    )
            if not sources:
                fallback = "cold_start"
                notes.append(
                    "unknown member: popular items in segment"
                    if member < 0
                    else "no purchase history: popular items in segment"
                )
            elif self.weights.get("popularity", 0) > 0:
                top = self.popular_top
                sources.append(
                    ("popularity", top, self.popularity[top], self.weights["popularity"])
                )
        if fallback in ("cold_start", "popular"):
            self._segment_sources(member, tier, sources)

        ids, scores, best = self._combine(sources, self.n_items)
        names = [s[0] for s in sources if len(s[1])]
        result_ids, result_scores, result_reasons = self._filter_rank(
            ids,
            scores,
            best,
            names,
            member,
            tier,
            n,
            exclude_bought,
            allow_repeat,
            blocked,
            blocked_categories,
        )
        if len(result_ids) < n:
            extra: list = []
            self._segment_sources(member, tier, extra)
            eids, escores, ebest = self._combine(extra, self.n_items)
            taken = np.concatenate([result_ids, *blocked]) if blocked else result_ids
            more_ids, more_scores, more_reasons = self._filter_rank(
                eids,
                escores,
                ebest,
                [s[0] for s in extra if len(s[1])],
                member,
                tier,
                n - len(result_ids),
                exclude_bought,
                False,
                [taken],
                blocked_categories,
            )
            if len(more_ids):
                if fallback is None:
                    notes.append(f"{len(more_ids)} item(s) backfilled with popular items")
                floor = float(result_scores[-1]) if len(result_scores) else 1.0
                more_scores = (
                    np.minimum(more_scores, floor) * 0.999 if len(result_scores) else more_scores
                )
                result_ids = np.concatenate([result_ids, more_ids])
                result_scores = np.concatenate([result_scores, more_scores])
                result_reasons = result_reasons + more_reasons
        return self._result(
            member_id,
            context,
            result_ids,
            result_scores,
            result_reasons,
            tier,
            now,
            member,
            with_points,
            fallback,
            notes,
        )

    def _result(
        self,
        member_id: str,
        context: str,
        result_ids: np.ndarray,
        result_scores: np.ndarray,
        result_reasons: list[str],
        tier: int,
        now: Any,
        member: int,
        with_points: bool,
        fallback: str | None,
        notes: list[str],
    ) -> RecommendationResult:
        points = (
            self._points(result_ids, tier, now if now is not None else datetime.now(UTC), member)
            if with_points
            else [None] * len(result_ids)
        )
        items = [
            {
                "product_id": str(self.item_ids[i]),
                "score": round(float(s), 6),
                "reason": r,
                "points_to_earn": p,
            }
            for i, s, r, p in zip(
                result_ids.tolist(),
                np.asarray(result_scores).tolist(),
                result_reasons,
                points,
                strict=True,
            )
        ]
        return RecommendationResult(member_id, context, items, fallback, notes)

    def popular(self, n: int = 10, member_tier: str | None = None) -> list[dict[str, Any]]:
        """Most popular available items for a tier (lowest tier by default), no history."""
        return list(self.recommend("", n, "home", member_tier=member_tier).items)

    def _member_of(self, ids: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``np.isin(ids, values)`` for item indices, via a catalogue-sized mask (faster)."""
        mask = np.zeros(self.n_items, bool)
        mask[values] = True
        return mask[ids]

    def _in_categories(self, ids: np.ndarray, categories: np.ndarray) -> np.ndarray:
        """Whether each item's category is one of ``categories`` (codes >= 0)."""
        mask = np.zeros(self._category_slots, bool)  # last slot: code -1
        mask[categories[categories >= 0]] = True
        return mask[self.category[ids]]

    def _filter_rank(
        self,
        ids,
        scores,
        best,
        names,
        member,
        tier,
        n,
        exclude_bought,
        allow_repeat,
        blocked,
        blocked_categories=None,
    ):
        if not len(ids) or n <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32), []
        keep = self.available[ids] & (self.min_tier[ids] <= tier)
        if exclude_bought and member >= 0:
            bought = self.purchased.row(member)[0]
            if len(bought):
                hit = self._member_of(ids, bought)
                if allow_repeat:
                    hit &= self.repeat_rate[ids] <= 0
                keep &= ~hit
        for b in blocked:
            if len(b):
                keep &= ~self._member_of(ids, b)
        if blocked_categories is not None and len(blocked_categories):
            keep &= ~self._in_categories(ids, blocked_categories)
        ids, scores, best = ids[keep], scores[keep], best[keep]
        boost = self.config.serving.tier_exclusive_boost
        if boost > 0 and tier > 0:
            scores = np.where(self.min_tier[ids] > 0, scores * (1 + boost), scores)
        if len(ids) > n:
            part = np.argpartition(-scores, n - 1)[:n]
            ids, scores, best = ids[part], scores[part], best[part]
        order = np.lexsort((ids, -scores))
        ids, scores, best = ids[order], scores[order], best[order]
        reasons = [REASONS.get(names[b], names[b]) for b in best.tolist()]
        return ids, scores, reasons

    def recommend_batch(
        self,
        member_ids: list[str] | np.ndarray,
        n: int = 10,
        context: str = "home",
        *,
        member_tiers: dict[str, str] | None = None,
        include_purchased: bool | None = None,
        now: Any = None,
        block_size: int = 2000,
    ) -> pd.DataFrame:
        """The same filters as :meth:`recommend` for many members: member_id, rank, product_id,
        score (rank 1 = best). ``home`` for known members runs vectorised (sparse products over
        member blocks); other contexts, cold-start members and lists short of ``n`` go through
        :meth:`recommend` one by one."""
        member_ids = [str(m) for m in member_ids]
        exclude_bought = (
            self.config.serving.exclude_purchased
            if include_purchased is None
            else not include_purchased
        )
        idx = np.array([self.member_index.get(m, -1) for m in member_ids], np.int64)
        results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if context == "home":
            tiers = np.array(
                [
                    self._tier(int(i), (member_tiers or {}).get(m), [])
                    for m, i in zip(member_ids, idx, strict=True)
                ],
                np.int64,
            )
            todo = np.flatnonzero(idx >= 0)
            if self.home is not None and exclude_bought == self.config.serving.exclude_purchased:
                left = []
                for p in todo.tolist():
                    got = self._serve_precomputed_home(int(idx[p]), int(tiers[p]), n)
                    if got is None:
                        left.append(p)
                    else:
                        results[p] = (got[0], got[1])
                todo = np.asarray(left, np.int64)
            for start in range(0, len(todo), block_size):
                pos = todo[start : start + block_size]
                ids, scores, counts = self._batch_home(idx[pos], tiers[pos], n, exclude_bought)
                for j, p in enumerate(pos.tolist()):
                    if counts[j] >= n:
                        results[p] = (ids[j, :n], scores[j, :n])
        out_m, out_r, out_p, out_s = [], [], [], []
        for p, m in enumerate(member_ids):
            if p in results:
                ids, scores = results[p]
                products = self.item_ids[ids].tolist()
                score_list = scores.tolist()
            else:
                res = self.recommend(
                    m,
                    n,
                    context,
                    member_tier=(member_tiers or {}).get(m),
                    now=now,
                    include_purchased=include_purchased,
                    with_points=False,
                )
                products = [it["product_id"] for it in res.items]
                score_list = [it["score"] for it in res.items]
            k = len(products)
            out_m += [m] * k
            out_r += list(range(1, k + 1))
            out_p += products
            out_s += score_list
        return pd.DataFrame(
            {
                "member_id": out_m,
                "rank": np.asarray(out_r, np.int64),
                "product_id": out_p,
                "score": np.round(np.asarray(out_s, np.float64), 6),
            }
        )

    def _csr(self, rows: _Rows, n_cols: int) -> sp.csr_matrix:
        return sp.csr_matrix(
            (rows.data, rows.indices, rows.indptr), shape=(len(rows.indptr) - 1, n_cols)
        )

    def _batch_home(
        self,
        members: np.ndarray,
        tiers: np.ndarray,
        n: int,
        exclude_bought: bool,
        *,
        boost: bool = True,
        with_reasons: bool = False,
    ):
        """Vectorised ``home`` scores for a block of known members → top-``n`` ids, scores, the
        number of valid entries per row (and, ``with_reasons``, the index of each entry's best
        source in :meth:`_home_source_names`). The same sources, weights and filters as
        :meth:`recommend`; sums may differ from it in the last float32 bit."""
        n_items = self.n_items
        cache = self.__dict__.setdefault("_batch_cache", {})
        hist = self.history.take(members)
        lengths = np.diff(hist.indptr)
        position = (np.arange(hist.indptr[-1]) - np.repeat(hist.indptr[:-1], lengths)).astype(
            np.float32
        )
        rows_of = np.repeat(np.arange(len(members)), lengths)
        parts: list[sp.csr_matrix] = []  # weighted, row-max-scaled, one per source (serving order)

        def scaled(m: sp.csr_matrix) -> sp.csr_matrix:
            # inputs hold no duplicate entries (products, rows of stored lists): no sort needed
            return _row_max_scaled(sp.csr_matrix(m, dtype=np.float32))

        for name, rows in self.item_item.items():
            w = self.weights.get(name, 0.0)
            if w <= 0:
                continue
            decay, max_history = self.decay[name]
            keep = position < max_history
            profile = sp.csr_matrix(
                (
                    np.power(np.float32(decay), position[keep]),
                    (rows_of[keep], hist.indices[keep]),
                ),
                shape=(len(members), n_items),
            )
            if name not in cache:
                cache[name] = self._csr(rows, n_items)
            parts.append(w * scaled(profile @ cache[name]))
        for name, rows in self.member_top.items():
            w = self.weights.get(name, 0.0)
            if w > 0:
                top = self._csr(rows.take(members), n_items)
                top.data = np.maximum(top.data, 0)
                parts.append(w * scaled(top))
        w_cat = self.weights.get("category_popularity", 0.0)
        if w_cat > 0:
            cp = self.config.category_popularity
            keep = position < cp.max_history
            cats = self.category[hist.indices[keep]]
            ok = cats >= 0
            n_cats = len(self.category_top.indptr) - 1
            r = rows_of[keep][ok]
            vals = np.power(np.float32(cp.history_decay), position[keep][ok])
            cols = cats[ok]
            use_prior = cp.prior > 0 and self.category_prior is not None
            if use_prior:  # one extra "category": the prior's list, for members with categories
                with_cats = np.unique(r)
                r = np.concatenate([r, with_cats])
                cols = np.concatenate([cols, np.full(len(with_cats), n_cats)])
                vals = np.concatenate([vals, np.full(len(with_cats), cp.prior, np.float32)])
            profile = sp.csr_matrix(
                (vals, (r, cols)), shape=(len(members), n_cats + int(use_prior))
            )
            key = f"_category_top.{use_prior}"
            if key not in cache:
                ct = self._csr(self.category_top, n_items)
                if use_prior:
                    ct = sp.vstack([ct, self._csr(self.category_prior, n_items)], format="csr")
                cache[key] = ct
            parts.append(w_cat * scaled(profile @ cache[key]))
        total = sp.csr_matrix((len(members), n_items), dtype=np.float32)
        for part in parts:
            total = total + part
        w_pop = self.weights.get("popularity", 0.0)
        if w_pop > 0:
            top = self.popular_top
            # popularity counts only for members that have another source (like recommend())
            has_source = np.diff(sp.csr_matrix(total).indptr) > 0
            with_src = np.flatnonzero(has_source)
            pop = sp.csr_matrix(
                (
                    np.tile(
                        self.popularity[top] / max(float(self.popularity[top].max()), 1e-12),
                        len(with_src),
                    ).astype(np.float32),
                    (np.repeat(with_src, len(top)), np.tile(top, len(with_src))),
                ),
                shape=(len(members), n_items),
            )
            parts.append(w_pop * pop)
            total = total + parts[-1]
        total = sp.csr_matrix(total)  # sums of duplicate-free matrices: no duplicates
        row = np.repeat(np.arange(len(members)), np.diff(total.indptr))
        col = total.indices
        ok = self.available[col] & (self.min_tier[col] <= tiers[row])
        if exclude_bought:
            bought = self._csr(self.purchased.take(members), n_items)
            bought.data = np.ones_like(bought.data)
            bought.sum_duplicates()
            ok &= ~_contains(bought, row, col, n_items)
        data = total.data.astype(np.float32)
        tier_boost = self.config.serving.tier_exclusive_boost
        if boost and tier_boost > 0:
            data = np.where(
                (self.min_tier[col] > 0) & (tiers[row] > 0), data * (1 + tier_boost), data
            )
        ok &= data > 0
        row, col, data = row[ok], col[ok], data[ok]
        counts = np.bincount(row, minlength=len(members))
        row, col, data = _row_top_candidates(row, col, data, counts, n)
        order = np.lexsort((col, -data, row))
        row, col, data = row[order], col[order], data[order]
        starts = np.searchsorted(row, np.arange(len(members)))
        rank = np.arange(len(row)) - starts[row]
        sel = rank < n
        ids = np.full((len(members), n), -1, np.int64)
        scores = np.zeros((len(members), n), np.float32)
        ids[row[sel], rank[sel]] = col[sel]
        scores[row[sel], rank[sel]] = data[sel]
        if not with_reasons:
            return ids, scores, np.minimum(counts, n)
        r_sel, c_sel = row[sel], col[sel]
        values = np.zeros((max(len(parts), 1), len(r_sel)), np.float32)
        for j, part in enumerate(parts):
            values[j] = _lookup(sp.csr_matrix(part), r_sel, c_sel, n_items)
        reasons = np.zeros((len(members), n), np.int8)
        reasons[r_sel, rank[sel]] = values.argmax(axis=0).astype(np.int8)
        return ids, scores, np.minimum(counts, n), reasons

    def _home_source_names(self) -> list[str]:
        """Sources of ``home`` in the order :meth:`recommend` adds them (reason codes)."""
        names = [n for n in self.item_item if self.weights.get(n, 0.0) > 0]
        names += [n for n in self.member_top if self.weights.get(n, 0.0) > 0]
        for name in ("category_popularity", "popularity"):
            if self.weights.get(name, 0.0) > 0:
                names.append(name)
        return names

    def precompute_home(self, k: int | None = None, block_size: int = 2000) -> None:
        """Store every known member's ``home`` candidates (top ``k`` after the catalogue and
        purchase filters, before the tier filter) so a request only slices a row."""
        k = self.config.serving.precomputed_home if k is None else k
        if k <= 0 or not len(self.member_ids):
            return
        n_members = len(self.member_ids)
        big_tier = np.full(block_size, np.iinfo(np.int64).max // 2, np.int64)
        ids_parts, score_parts, reason_parts, counts = [], [], [], []
        for start in range(0, n_members, block_size):
            block = np.arange(start, min(start + block_size, n_members))
            ids, scores, cnt, reasons = self._batch_home(
                block,
                big_tier[: len(block)],
                k,
                self.config.serving.exclude_purchased,
                boost=False,
                with_reasons=True,
            )
            valid = np.arange(k)[None, :] < cnt[:, None]
            ids_parts.append(ids[valid])
            score_parts.append(scores[valid])
            reason_parts.append(reasons[valid])
            counts.append(cnt)
        cnt = np.concatenate(counts)
        indptr = np.zeros(n_members + 1, np.int64)
        indptr[1:] = np.cumsum(cnt)
        self.home = _Rows(indptr, np.concatenate(ids_parts), np.concatenate(score_parts))
        self.home_reason = np.concatenate(reason_parts).astype(np.int8)
        self.home_k = k
        self.meta["home_sources"] = self._home_source_names()
        self.meta["home_k"] = k
        state = self.__dict__.get("_state")
        if state is not None:
            state.update(self.home.state("home"))
            state["home.reason"] = self.home_reason

    def _serve_precomputed_home(self, member: int, tier: int, n: int):
        """(ids, scores, reasons) from the precomputed ``home`` row, or None when the row cannot
        answer exactly (too few items left after the tier filter, a tier boost applies)."""
        home = self.home
        if home is None or member < 0 or n > self.home_k:
            return None
        if tier > 0 and self.config.serving.tier_exclusive_boost > 0:
            return None
        lo, hi = home.indptr[member], home.indptr[member + 1]
        ids = home.indices[lo:hi]
        keep = self.min_tier[ids] <= tier
        if int(keep.sum()) < n:
            return None
        pos = np.flatnonzero(keep)[:n] + lo
        names = self.meta["home_sources"]
        reasons = [REASONS.get(names[r], names[r]) for r in self.home_reason[pos].tolist()]
        return home.indices[pos].astype(np.int64), home.data[pos], reasons


def _row_top_candidates(row, col, data, counts, n: int):
    """Entries (grouped by row, as CSR order gives them) that can be in their row's top ``n``:
    values at least the row's ``n``-th largest (ties kept), found on a padded dense block."""
    width = int(counts.max(initial=0))
    if width <= n or not len(row):
        return row, col, data
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(len(row)) - starts[row]
    padded = np.full((len(counts), width), -np.inf, np.float32)
    padded[row, pos] = data
    kth = -np.partition(-padded, n - 1, axis=1)[:, n - 1]
    keep = data >= kth[row]
    return row[keep], col[keep], data[keep]


def _contains(m: sp.csr_matrix, row: np.ndarray, col: np.ndarray, n_cols: int) -> np.ndarray:
    """Whether each (row, col) is stored in canonical CSR ``m`` (vectorised binary search)."""
    return _lookup(m, row, col, n_cols) != 0


def _lookup(m: sp.csr_matrix, row: np.ndarray, col: np.ndarray, n_cols: int) -> np.ndarray:
    """``m[row, col]`` for many pairs of a canonical CSR matrix (0 where absent)."""
    m.sum_duplicates()
    if not m.nnz or not len(row):
        return np.zeros(len(row), np.float32)
    m_rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    keys = m_rows * n_cols + m.indices
    want = np.asarray(row, np.int64) * n_cols + np.asarray(col, np.int64)
    pos = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    found = keys[pos] == want
    return np.where(found, m.data[pos], 0).astype(np.float32)


# ---------------------------------------------------------------------------- building


def _row_max_scaled(m: sp.csr_matrix) -> sp.csr_matrix:
    m = sp.csr_matrix(m, dtype=np.float32, copy=True)
    peak = np.maximum.reduceat(m.data, m.indptr[:-1][np.diff(m.indptr) > 0]) if m.nnz else []
    if m.nnz:
        scale = np.ones(m.shape[0], np.float32)
        scale[np.diff(m.indptr) > 0] = 1.0 / np.maximum(peak, 1e-12)
        m.data *= np.repeat(scale, np.diff(m.indptr))
    return m


def _top_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    m = sp.csr_matrix(m)
    if not m.nnz:
        return m
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((m.indices, -m.data, rows))
    rank = np.arange(m.nnz) - m.indptr[rows[order]]
    sel = order[rank < k]
    return sp.csr_matrix((m.data[sel], (rows[sel], m.indices[sel])), shape=m.shape)


def _default_tiers() -> list[str]:
    try:
        from loyalty_ml.policy import load_policy

        return list(load_policy().tier_names)
    except Exception:  # policy optional at build time
        return ["normal", "silver", "gold", "diamond"]


def build_recommender(
    blend: BlendModel,
    inter: Interactions,
    config: RecsConfig,
    *,
    dataset: Any = None,
    item_categories: np.ndarray | None = None,
    meta: dict[str, Any] | None = None,
) -> Recommender:
    """Precompute every serving list from a fitted blend and its training interactions."""
    started = time.perf_counter()
    sc = config.serving
    n_users, n_items = inter.user_items.shape
    tiers = _default_tiers()
    state: dict[str, np.ndarray] = {
        "item_ids": np.asarray(inter.item_ids).astype(str),
        "member_ids": np.asarray(inter.user_ids).astype(str),
    }
    price = np.zeros(n_items, np.float32)
    min_tier = np.zeros(n_items, np.int8)
    available = np.ones(n_items, bool)
    category = np.full(n_items, -1, np.int64)
    if item_categories is not None:
        category = np.asarray(item_categories, np.int64)
    products = getattr(dataset, "products", None)
    if products is not None and len(products):
        prod = products.drop_duplicates("product_id").set_index(
            products.drop_duplicates("product_id")["product_id"].astype(str)
        )
        pos = pd.Index(prod.index).get_indexer(state["item_ids"])
        found = pos >= 0
        available = found.copy()
        price[found] = prod["price"].to_numpy(float)[pos[found]]
        tier_map = {t: i for i, t in enumerate(tiers)}
        mt = prod["min_tier"].astype("string").fillna("").map(lambda t: tier_map.get(t, 0))
        min_tier[found] = mt.to_numpy(np.int64)[pos[found]]
        cats = prod["category"].astype("string").fillna("")
        codes, _ = pd.factorize(cats)
        codes = np.where(cats.to_numpy() == "", -1, codes)
        category[found] = codes[pos[found]]
        if "launched_at" in prod and meta and meta.get("as_of"):
            launched = prod["launched_at"].to_numpy()[pos[found]]
            later = pd.notna(launched) & (
                pd.to_datetime(launched, utc=True) > pd.Timestamp(meta["as_of"])
            )
            available[np.flatnonzero(found)[np.asarray(later)]] = False
    state.update(price=price, min_tier=min_tier, available=available, category=category)

    pop_model = blend.components.get("popularity")
    counts = (
        pop_model.counts
        if pop_model is not None
        else np.asarray((inter.counts > 0).sum(axis=0)).ravel().astype(np.float32)
    )
    popularity = (counts / max(float(counts.max(initial=0)), 1.0)).astype(np.float32)
    top_p = min(sc.popular_per_segment, n_items)
    state["popularity"] = popularity
    state["popular_top"] = np.lexsort((np.arange(n_items), -popularity))[:top_p].astype(np.int32)
    rep = blend.components.get("repeat")
    state["repeat_rate"] = rep.repeat_rate if rep is not None else np.zeros(n_items, np.float32)

    member_state, mem_info = _member_state(inter, dataset, config, tiers, None)
    state.update(member_state)
    _, _, _, mem = mem_info

    # Item → item lists.
    item_item, decay = [], {}
    for name, model in blend.components.items():
        if isinstance(model, _ItemItemModel):
            item_item.append(name)
            decay[name] = (float(model.params["history_decay"]), int(model.params["max_history"]))
            state.update(_Rows.from_csr(model.similarity).state(f"ii.{name}"))
    w = blend.params["weights"]
    comp = sp.csr_matrix((n_items, n_items), dtype=np.float32)
    for name in ("transitions", "item_knn"):
        if name in blend.components:
            comp = comp + max(w.get(name, 0.0), 0.1) * _row_max_scaled(
                blend.components[name].similarity
            )
    state.update(_Rows.from_csr(_top_per_row(comp, sc.candidates_per_item)).state("complement"))
    sim_parts = [n for n in sc.similar_sources if n in blend.components and w.get(n, 0) > 0]
    if not sim_parts:
        sim_parts = [n for n in ("item_knn", "transitions") if n in blend.components]

    def sim_fn(ids: np.ndarray) -> np.ndarray:
        total = np.zeros((len(ids), n_items), np.float32)
        for name in sim_parts:
            part = np.maximum(np.asarray(blend.components[name].item_neighbours(ids)), 0)
            peak = np.maximum(part.max(axis=1, keepdims=True), 1e-12)
            total += max(w.get(name, 0.0), 0.1) * part / peak
        return total

    if all(isinstance(blend.components[n], _ItemItemModel) for n in sim_parts):
        # sparse sources only: combine the neighbour lists directly (no items x items pass)
        sim = sp.csr_matrix((n_items, n_items), dtype=np.float32)
        for name in sim_parts:
            sim = sim + max(w.get(name, 0.0), 0.1) * _row_max_scaled(
                blend.components[name].similarity
            )
        sim = sp.csr_matrix(sim)
        sim.setdiag(0)
        sim.eliminate_zeros()
        similar = _top_per_row(sim, sc.candidates_per_item)
    else:
        similar = _top_rows(sim_fn, n_items, n_items, sc.candidates_per_item, exclude_self=True)
    state.update(_Rows.from_csr(similar).state("similar"))

    # Member top lists of factor models.
    factor = []
    for name, model in blend.components.items():
        if isinstance(model, _FactorModel) and w.get(name, 0) > 0 and sc.precomputed_per_member:
            factor.append(name)
            uf, vf = model.user_factors, model.item_factors
            top = _top_rows(
                lambda ids, uf=uf, vf=vf: uf[ids] @ vf.T,
                len(uf),
                n_items,
                sc.precomputed_per_member,
                exclude_self=False,
            )
            if top.shape[0] < n_users:
                top = sp.vstack([top, sp.csr_matrix((n_users - top.shape[0], n_items))]).tocsr()
            state.update(_Rows.from_csr(top, order_by_value=False).state(f"mt.{name}"))

    # Popularity per category and per member segment.
    binary = sp.csr_matrix(inter.counts > 0, dtype=np.float32)
    if not binary.nnz:
        binary = sp.csr_matrix(inter.user_items > 0, dtype=np.float32)
    n_cats = int(category.max(initial=-1)) + 1
    cp_model = blend.components.get("category_popularity")
    if n_cats > 0:
        has = category >= 0
        if cp_model is not None and len(getattr(cp_model, "within", [])) == n_items:
            within = np.asarray(cp_model.within, np.float32)  # as the offline model weighs items
        else:
            within = np.asarray(
                _row_max_scaled(
                    sp.csr_matrix(
                        (popularity[has] + 1e-6, (category[has], np.flatnonzero(has))),
                        shape=(n_cats, n_items),
                    )
                ).sum(axis=0)
            ).ravel()
        cat_items = sp.csr_matrix(
            (within[has] + 1e-9, (category[has], np.flatnonzero(has))), shape=(n_cats, n_items)
        )
        state.update(_Rows.from_csr(_top_per_row(cat_items, top_p)).state("category_top"))
        # prior list: overall category share x weight within the category
        share = np.bincount(category[has], weights=counts[has], minlength=n_cats)
        share = share / max(float(share.sum()), 1e-12)
        prior = np.zeros(n_items, np.float32)
        prior[has] = (share[category[has]] * within[has]).astype(np.float32)
        prior_top = np.lexsort((np.arange(n_items), -prior))[:top_p]
        prior_top = prior_top[prior[prior_top] > 0]
        state.update(
            _Rows(np.array([0, len(prior_top)]), prior_top, prior[prior_top]).state(
                "category_prior"
            )
        )
    else:
        state.update(_Rows.from_csr(sp.csr_matrix((1, n_items))).state("category_top"))
    seg_cols, seg_values = [], {}
    for col, vals in _segment_values(mem, sc.segment_columns).items():
        member_code = state[f"seg.{col}.member"]
        ok = member_code >= 0
        onehot = sp.csr_matrix(
            (np.ones(ok.sum(), np.float32), (member_code[ok], np.flatnonzero(ok))),
            shape=(len(vals), n_users),
        )
        seg = _row_max_scaled(onehot @ binary)
        state.update(_Rows.from_csr(_top_per_row(seg, top_p)).state(f"seg.{col}"))
        seg_cols.append(col)
        seg_values[col] = vals
    for key in [k for k in state if k.startswith("seg.") and k.endswith(".member")]:
        if key.split(".")[1] not in seg_cols:
            del state[key]
    info = {
        "config": config.model_dump(mode="json"),
        "weights": {k: float(v) for k, v in w.items()},
        "item_item": item_item,
        "decay": decay,
        "factor": factor,
        "segment_columns": seg_cols,
        "segment_values": seg_values,
        "tier_names": tiers,
        "build_seconds": time.perf_counter() - started,
        **(meta or {}),
    }
    recommender = Recommender(state, info)
    recommender._state = state
    home_started = time.perf_counter()
    recommender.precompute_home()
    recommender.meta["home_seconds"] = time.perf_counter() - home_started
    recommender.meta["build_seconds"] = time.perf_counter() - started
    return recommender


def _order_ascending(hist: sp.csr_matrix) -> sp.csr_matrix:
    """Reorder each row's entries by value (rank + 1) so rows read newest first."""
    hist = sp.csr_matrix(hist)
    rows = np.repeat(np.arange(hist.shape[0]), np.diff(hist.indptr))
    order = np.lexsort((hist.data, rows))
    out = sp.csr_matrix(hist.shape, dtype=np.float32)
    out.indptr, out.indices, out.data = hist.indptr.copy(), hist.indices[order], hist.data[order]
    out.has_sorted_indices = False
    return out


def _last_orders(inter: Interactions, dataset: Any) -> sp.csr_matrix:
    """Items of each member's most recent order (or most recent purchase without orders)."""
    n_users, n_items = inter.user_items.shape
    if dataset is not None and getattr(dataset, "order_items", None) is not None:
        orders = dataset.orders.sort_values(["ordered_at", "order_id"])
        last = orders.drop_duplicates("member_id", keep="last")[["order_id", "member_id"]]
        lines = dataset.order_items.merge(last, on="order_id")
        u = pd.Index(inter.user_ids).get_indexer(lines["member_id"].astype(str))
        i = pd.Index(inter.item_ids).get_indexer(lines["product_id"].astype(str))
        ok = (u >= 0) & (i >= 0)
        out = sp.csr_matrix(
            (np.ones(ok.sum(), np.float32), (u[ok], i[ok])), shape=(n_users, n_items)
        )
    else:
        rec = sp.csr_matrix(inter.recency)
        bought = sp.csr_matrix(inter.counts) > 0
        latest = rec.copy()
        latest.data = (rec.data == 0).astype(np.float32)
        out = sp.csr_matrix(latest.multiply(bought))
    out.eliminate_zeros()
    out.data[:] = 1.0
    out.sort_indices()
    return out


def _segment_values(mem: pd.DataFrame | None, columns: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if mem is None:
        return out
    for col in columns:
        if col in mem:
            vals = sorted(
                v for v in mem[col].astype("string").dropna().unique().tolist() if v != ""
            )
            if vals:
                out[col] = vals
    return out


def _member_state(
    inter: Interactions,
    dataset: Any,
    config: RecsConfig,
    tiers: list[str],
    segment_values: dict[str, list[str]] | None,
):
    """Per-member arrays: tier, birth month, history (newest first), purchases, last order,
    segment codes. ``segment_values`` None = derive the values from the members table."""
    n_users, n_items = inter.user_items.shape
    state: dict[str, np.ndarray] = {"member_ids": np.asarray(inter.user_ids).astype(str)}
    member_tier = np.full(n_users, -1, np.int64)
    birth_month = np.zeros(n_users, np.int64)
    members = getattr(dataset, "members", None)
    mem, found, pos = None, np.zeros(n_users, bool), np.full(n_users, -1)
    if members is not None and len(members):
        uniq = members.drop_duplicates("member_id")
        mem = uniq.set_index(uniq["member_id"].astype(str))
        pos = pd.Index(mem.index).get_indexer(state["member_ids"])
        found = pos >= 0
        if "tier" in mem:
            tmap = {t: i for i, t in enumerate(tiers)}
            codes = mem["tier"].astype("string").map(lambda t: tmap.get(t, -1)).to_numpy()
            member_tier[found] = np.asarray(codes, np.int64)[pos[found]]
        if "birth_date" in mem:
            months = pd.to_datetime(mem["birth_date"], utc=True, errors="coerce").dt.month
            birth_month[found] = months.fillna(0).to_numpy(np.int64)[pos[found]]
    state["member_tier"], state["member_birth_month"] = member_tier, birth_month
    keep_hist = max(
        [
            50,
            config.item_knn.max_history,
            config.transitions.max_history,
            config.category_popularity.max_history,
        ]
    )
    rec = sp.csr_matrix(inter.recency)
    rows = np.repeat(np.arange(n_users), np.diff(rec.indptr))
    order = np.lexsort((rec.data, rows))  # per member: newest (rank 0) first
    rank_in_row = np.arange(rec.nnz) - rec.indptr[rows[order]]
    sel = order[rank_in_row < keep_hist]
    hist = sp.csr_matrix(
        (
            (rank_in_row[rank_in_row < keep_hist] + 1).astype(np.float32),
            (rows[sel], rec.indices[sel]),
        ),
        shape=(n_users, n_items),
    )
    state.update(_Rows.from_csr(_order_ascending(hist), order_by_value=False).state("history"))
    bought = sp.csr_matrix(inter.counts)
    bought.sort_indices()
    state.update(_Rows.from_csr(bought, order_by_value=False).state("purchased"))
    state.update(
        _Rows.from_csr(_last_orders(inter, dataset), order_by_value=False).state("last_order")
    )
    values = (
        segment_values
        if segment_values is not None
        else _segment_values(mem, config.serving.segment_columns)
    )
    for col, vals in values.items():
        code = np.full(n_users, -1, np.int64)
        if mem is not None and col in mem:
            vmap = {v: i for i, v in enumerate(vals)}
            codes = mem[col].astype("string").map(lambda v, vmap=vmap: vmap.get(v, -1)).to_numpy()
            code[found] = np.asarray(codes, np.int64)[pos[found]]
        state[f"seg.{col}.member"] = code
    return state, (members, found, pos, mem)
