"""The recommender's oracle: each member's true per-order purchase propensity for every product.

Score of product p for member i = expected units of p in i's next order under the generative
model: main items (items per order × category affinity × popularity within the category), plus
complements of those items, plus the member's staples (consumables re-bought regularly), zero for
products not yet launched at ``as_of`` or above the member's simulated tier. Ranking by it gives
the oracle recall@k; it leaves out successors (they depend on the member's last order).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from scipy import sparse

from loyalty_ml.simulate.api import Truth
from loyalty_ml.simulate.config import TIERS
from loyalty_ml.timeutil import to_utc


def oracle_scores(
    truth: Truth, member_ids: list[str] | np.ndarray, as_of: object | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(scores float32 [len(member_ids), n_products], product_ids) from an in-memory ``Truth``."""
    return _scores(
        truth.members, truth.preferences, truth.staples, truth.items, truth.meta, member_ids, as_of
    )


def oracle_item_scores(
    truth_dir: Path | str, member_ids: list[str] | np.ndarray, as_of: object | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Same as :func:`oracle_scores`, reading only the requested members from ``truth_dir``."""
    truth_dir = Path(truth_dir)
    wanted = [str(m) for m in member_ids]
    flt = [("member_id", "in", wanted)]

    def read(name: str) -> pd.DataFrame:
        return pq.read_table(truth_dir / f"{name}.parquet", filters=flt).to_pandas()

    meta = json.loads((truth_dir / "meta.json").read_text())
    items = pd.read_parquet(truth_dir / "items.parquet")
    return _scores(
        read("members"), read("preferences"), read("staples"), items, meta, wanted, as_of
    )


def _scores(
    members: pd.DataFrame,
    prefs: pd.DataFrame,
    staples: pd.DataFrame,
    items: pd.DataFrame,
    meta: dict,
    member_ids: list[str] | np.ndarray,
    as_of: object | None,
) -> tuple[np.ndarray, np.ndarray]:
    ids = pd.Index([str(m) for m in member_ids])
    m_info = members.set_index("member_id").reindex(ids)
    if m_info["tier"].isna().any():
        missing = list(ids[m_info["tier"].isna()][:5])
        raise KeyError(f"unknown member id(s) in truth: {missing}")
    categories = pd.Index(sorted(items["category"].unique()))
    n, n_items = len(ids), len(items)
    aff = np.zeros((n, len(categories)))
    rows = ids.get_indexer(prefs["member_id"].astype(str))
    keep = rows >= 0
    aff[rows[keep], categories.get_indexer(prefs["category"][keep])] = prefs["affinity"][keep]
    item_cat = categories.get_indexer(items["category"])
    per_order = m_info["items_per_order"].to_numpy()[:, None]
    draw = per_order * aff[:, item_cat] * items["popularity"].to_numpy()[None, :]
    # Complements: each drawn item brings its complement with probability complement_prob.
    pid = pd.Index(items["product_id"])
    comp = pid.get_indexer(items["complement_id"])
    cmat = sparse.csr_matrix((np.ones(n_items), (np.arange(n_items), comp)), (n_items, n_items))
    p_comp = meta["config"]["baskets"]["complement_prob"]
    scores = draw + p_comp * (sparse.csr_matrix(draw) @ cmat).toarray()
    # Staples ride on a share (1 - exp(-x)) / x of orders, x = orders per re-buy interval.
    srow = ids.get_indexer(staples["member_id"].astype(str))
    ok = srow >= 0
    if ok.any():
        st = staples[ok]
        x = m_info["activity_per_year"].to_numpy()[srow[ok]] * st["interval_days"].to_numpy() / 365
        share = np.where(x > 0, -np.expm1(-x) / np.maximum(x, 1e-12), 1.0)
        np.add.at(scores, (srow[ok], pid.get_indexer(st["product_id"])), share)
    cutoff = to_utc(as_of if as_of is not None else meta["end_exclusive"])
    launched = (pd.to_datetime(items["launched_at"], utc=True) <= cutoff).to_numpy()
    tier_rank = pd.Index(TIERS)
    allowed = (
        tier_rank.get_indexer(items["min_tier"])[None, :]
        <= tier_rank.get_indexer(m_info["tier"])[:, None]
    )
    scores = np.where(launched[None, :] & allowed, scores, 0.0)
    return scores.astype(np.float32), items["product_id"].to_numpy()
