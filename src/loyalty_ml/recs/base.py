"""The one contract every candidate model follows (implicit-style).

Orientation is in the names: ``user_items`` is a CSR matrix, rows = users, columns = items, values =
interaction strength. ``recency`` (optional) has the same sparsity pattern and holds each item's
*rank from the latest* in the user's history (0 = most recent distinct item); sequence-aware models
use it, the others ignore it.

A model scores a block of users at once (``score``); ``recommend`` and ``similar_items`` are built
on top in this base class so every model filters and ranks identically. ``save``/``load`` write one
``.npz`` file with ``allow_pickle=False``: parameters are stored as a JSON string array.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

_REGISTRY: dict[str, type[RecModel]] = {}


def as_csr(matrix: Any, n_items: int | None = None) -> sp.csr_matrix:
    out = matrix if sp.issparse(matrix) else sp.csr_matrix(np.atleast_2d(matrix))
    out = sp.csr_matrix(out, dtype=np.float32)
    if n_items is not None and out.shape[1] != n_items:
        raise ValueError(f"user_items has {out.shape[1]} columns, model knows {n_items} items")
    return out


def top_n(
    scores: np.ndarray, n: int, exclude: sp.csr_matrix | None = None, filter_items: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top ``n`` (ids, scores) of a dense score block, best first; ties by item id.

    ``exclude`` rows (a user_items block) and ``filter_items`` (ids) are removed. Removed items are
    never returned; when fewer than ``n`` remain, ids are padded with -1 and scores with -inf.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    if scores.ndim == 1:
        scores = scores[None, :]
    if exclude is not None and exclude.nnz:
        coo = exclude.tocoo()
        scores[coo.row, coo.col] = -np.inf
    if filter_items is not None and len(filter_items):
        scores[:, np.asarray(filter_items, dtype=np.int64)] = -np.inf
    n_items = scores.shape[1]
    n_eff = min(n, n_items)
    if n_eff <= 0:
        return np.empty((len(scores), 0), np.int64), np.empty((len(scores), 0), np.float32)
    if n_eff < n_items:
        part = np.argpartition(-scores, n_eff - 1, axis=1)[:, :n_eff]
    else:
        part = np.tile(np.arange(n_items), (len(scores), 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    ids = np.take_along_axis(part, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(part_scores, order, axis=1)
    ids[~np.isfinite(vals)] = -1
    if n_eff < n:
        pad = n - n_eff
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
        vals = np.pad(vals, ((0, 0), (0, pad)), constant_values=-np.inf)
    return ids, vals


def history_profile(
    user_items: sp.csr_matrix, recency: sp.csr_matrix | None, decay: float, max_history: int
) -> sp.csr_matrix:
    """Per-user weights of history items: ``decay ** rank`` for the latest ``max_history``.

    Without ``recency`` every history item weighs 1 (order unknown).
    """
    if recency is None:
        prof = user_items.copy()
        prof.data = np.ones_like(prof.data)
        return prof
    prof = sp.csr_matrix(recency, dtype=np.float32, copy=True)
    keep = prof.data < max_history
    prof.data = np.where(keep, np.power(np.float32(decay), prof.data), 0).astype(np.float32)
    prof.eliminate_zeros()
    return prof


class RecModel(ABC):
    """Base class: ``fit`` → ``score`` (dense block) → ``recommend`` / ``similar_items``."""

    name: ClassVar[str] = "base"
    uses_recency: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = dict(params)
        self.n_items = 0
        self.n_users = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name != "base":
            _REGISTRY[cls.name] = cls

    # --- contract -------------------------------------------------------------------------
    @abstractmethod
    def fit(self, user_items: sp.csr_matrix, *, recency: sp.csr_matrix | None = None) -> RecModel:
        """Learn from a users × items matrix; returns self."""

    @abstractmethod
    def score(
        self,
        user_items: sp.csr_matrix,
        *,
        recency: sp.csr_matrix | None = None,
        userids: np.ndarray | None = None,
    ) -> np.ndarray:
        """Dense scores (len(rows) × n_items, float32) for the given user rows.

        ``userids`` are the training row ids of those users (−1 = unknown user); factor models use
        them to look up learned factors, history-based models only need ``user_items``.
        """

    def item_neighbours(self, itemids: np.ndarray) -> np.ndarray:
        """Dense item → item scores (len(itemids) × n_items); default: score a one-item history."""
        itemids = np.asarray(itemids, dtype=np.int64)
        rows = sp.csr_matrix(
            (np.ones(len(itemids), np.float32), (np.arange(len(itemids)), itemids)),
            shape=(len(itemids), self.n_items),
        )
        rec = rows.copy()
        rec.data = np.zeros_like(rec.data)
        unknown = np.full(len(itemids), -1, dtype=np.int64)
        return self.score(rows, recency=rec, userids=unknown)

    def _state(self) -> dict[str, np.ndarray]:
        return {}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        return None

    # --- shared behaviour -----------------------------------------------------------------
    def recommend(
        self,
        userid: int | np.ndarray,
        user_items: sp.csr_matrix,
        N: int = 10,
        filter_already_liked_items: bool = True,
        filter_items: np.ndarray | None = None,
        *,
        recency: sp.csr_matrix | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``N`` (ids, scores) for one user (1-D result) or an array of users (2-D).

        As in implicit ≥ 0.5, ``user_items`` holds only the rows of the requested users.
        """
        single = np.isscalar(userid)
        userids = np.atleast_1d(np.asarray(userid, dtype=np.int64))
        user_items = as_csr(user_items, self.n_items)
        if user_items.shape[0] != len(userids):
            raise ValueError("user_items must hold exactly the rows of the requested users")
        scores = self.score(user_items, recency=recency, userids=userids)
        ids, vals = top_n(
            scores, N, user_items if filter_already_liked_items else None, filter_items
        )
        return (ids[0], vals[0]) if single else (ids, vals)

    def similar_items(self, itemid: int, N: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Items most similar to ``itemid`` (itself excluded)."""
        scores = self.item_neighbours(np.array([itemid]))
        return tuple(a[0] for a in top_n(scores, N, filter_items=[itemid]))  # type: ignore[return-value]

    def save(self, path: Path | str) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "name": self.name,
            "params": self.params,
            "n_items": self.n_items,
            "n_users": self.n_users,
        }
        arrays = {f"state__{k}": v for k, v in self._state().items()}
        with path.open("wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)
        return path

    @staticmethod
    def load(path: Path | str) -> RecModel:
        with np.load(Path(path), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            state = {k.removeprefix("state__"): data[k] for k in data.files if k != "meta"}
        model = _REGISTRY[meta["name"]](**meta["params"])
        model.n_items, model.n_users = int(meta["n_items"]), int(meta["n_users"])
        model._set_state(state)
        return model

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"


def model_class(name: str) -> type[RecModel]:
    return _REGISTRY[name]
