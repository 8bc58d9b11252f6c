"""Offline evaluation: leave-one-out (Amazon Beauty protocol) and next-period holdouts.

Full ranking over all items, each member's training items excluded. Metrics for each K: HR@K (a
target in the top K), recall@K, NDCG@K (binary gains), plus catalogue coverage and popularity bias
of the top-10 lists. Ties are broken by item index (deterministic).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from loyalty_ml.errors import MissingDataError
from loyalty_ml.recs.base import RecModel, top_n
from loyalty_ml.recs.interactions import Interactions, from_sequences

DEFAULT_KS = (5, 10, 20, 50)


@dataclass
class Sequences:
    """Chronological item-index sequences, one per user (``Beauty.txt`` style)."""

    sequences: list[np.ndarray]
    item_ids: np.ndarray
    user_ids: np.ndarray
    item_categories: np.ndarray | None = None

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


def load_beauty(path: Path | str) -> Sequences:
    """Read ``Beauty.txt`` (``user item item …``, chronological) and its attribute file.

    The item's category code is its first attribute id in ``Beauty_item2attributes.json``.
    """
    path = Path(path)
    text_file = path / "Beauty.txt" if path.is_dir() else path
    if not text_file.is_file():
        raise MissingDataError(f"Amazon Beauty file not found: {text_file}")
    index: dict[str, int] = {}
    users, seqs = [], []
    with text_file.open() as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 2:
                continue
            users.append(parts[0])
            seqs.append(np.array([index.setdefault(x, len(index)) for x in parts[1:]], np.int64))
    item_ids = np.array(list(index), dtype=str)
    cats = None
    attr_file = text_file.parent / "Beauty_item2attributes.json"
    if attr_file.is_file():
        attrs = json.loads(attr_file.read_text())
        cats = np.array([(attrs.get(i) or [-1])[0] for i in item_ids.tolist()], dtype=np.int64)
    return Sequences(seqs, item_ids, np.array(users, dtype=str), cats)


@dataclass
class Split:
    """Training interactions and held-out targets (users × items, 1 = relevant)."""

    train: Interactions
    targets: sp.csr_matrix
    name: str = "split"
    #: True: the member's purchased training items are removed from the ranking (and the targets
    #: hold only items new to the member), as serving's ``home`` does; False: every item is ranked
    #: and targets may be re-buys (replenishment view).
    exclude_seen: bool = True

    @property
    def eval_users(self) -> np.ndarray:
        return np.flatnonzero(np.diff(self.targets.indptr) > 0)


def leave_one_out(data: Sequences, holdout: int, *, full_popularity: bool = False) -> Split:
    """``holdout=2``: train on all but the last two items, target the second-to-last
    (validation); ``holdout=1``: train on all but the last, target the last (test)."""
    train, rows, cols = [], [], []
    for u, seq in enumerate(data.sequences):
        if len(seq) > holdout:
            train.append(seq[:-holdout])
            rows.append(u)
            cols.append(seq[-holdout])
        else:
            train.append(seq[: max(len(seq) - holdout, 0)])
    inter = from_sequences(train, data.n_items, data.user_ids, data.item_ids)
    targets = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(data.sequences), data.n_items)
    )
    return Split(inter, targets, name="validation" if holdout == 2 else "test")


@dataclass
class EvalResult:
    metrics: dict[str, float]
    n_users: int
    top10: np.ndarray | None = field(default=None, repr=False)


def evaluate(
    model: RecModel,
    split: Split,
    ks: Sequence[int] = DEFAULT_KS,
    users: np.ndarray | None = None,
    *,
    popularity: np.ndarray | None = None,
    keep_lists: bool = False,
    exclude_seen: bool | None = None,
) -> EvalResult:
    """Full-ranking metrics of ``model`` on ``split`` (training items excluded unless
    ``exclude_seen`` — default ``split.exclude_seen`` — is False)."""
    exclude_seen = split.exclude_seen if exclude_seen is None else exclude_seen
    users = split.eval_users if users is None else np.asarray(users)
    ks = sorted(set(ks))
    kmax = max(ks)
    train = split.train
    n_items = train.user_items.shape[1]
    batch = max(64, min(4096, 20_000_000 // max(n_items, 1)))
    hits = {k: 0.0 for k in ks}
    recall = {k: 0.0 for k in ks}
    ndcg = {k: 0.0 for k in ks}
    discounts = 1.0 / np.log2(np.arange(kmax) + 2.0)
    lists = []
    for start in range(0, len(users), batch):
        rows = users[start : start + batch]
        ui = train.user_items[rows]
        scores = model.score(ui, recency=train.recency[rows], userids=rows)
        # exclusion = what serving's `home` excludes: purchased items (all interactions when the
        # data hold no purchase counts, e.g. plain sequences)
        seen = train.counts[rows] if train.counts.nnz else ui
        ids, _ = top_n(scores, kmax, exclude=seen if exclude_seen else None)
        tgt = split.targets[rows]
        rel = np.zeros(ids.shape, dtype=bool)
        for r in range(len(rows)):
            lo, hi = tgt.indptr[r], tgt.indptr[r + 1]
            rel[r] = np.isin(ids[r], tgt.indices[lo:hi])
        n_rel = np.diff(tgt.indptr)
        for k in ks:
            got = rel[:, :k]
            n_hit = got.sum(axis=1)
            hits[k] += float((n_hit > 0).sum())
            recall[k] += float((n_hit / np.maximum(n_rel, 1)).sum())
            dcg = (got * discounts[:k]).sum(axis=1)
            ideal = np.cumsum(discounts[:k])[np.minimum(n_rel, k) - 1]
            ndcg[k] += float((dcg / ideal).sum())
        if keep_lists or popularity is not None:
            lists.append(ids[:, :10])
    n = max(len(users), 1)
    metrics: dict[str, float] = {}
    for k in ks:
        metrics[f"hr@{k}"] = hits[k] / n
        metrics[f"recall@{k}"] = recall[k] / n
        metrics[f"ndcg@{k}"] = ndcg[k] / n
    top10 = np.vstack(lists) if lists else None
    if top10 is not None:
        valid = top10[top10 >= 0]
        metrics["coverage@10"] = float(len(np.unique(valid)) / max(n_items, 1))
        if popularity is not None and len(valid):
            pct = np.argsort(np.argsort(popularity)) / max(len(popularity) - 1, 1)
            metrics["pop_percentile@10"] = float(pct[valid].mean())
    return EvalResult(metrics, len(users), top10 if keep_lists else None)
