"""Member erasure for recommendation bundles: a trained recommender keeps per-member state
(purchase history rows, the member's tier, ALS user factors) until the next training.

``erase_member(member_id)`` rewrites every bundle under ``LOYALTY_HOME`` (the training output in
``recs/`` and the copies MLflow logged under ``mlflow/``): the member's id becomes a tombstone, so
the recommender no longer knows them (a later request is answered as ``cold_start``), and every
per-member row (sparse history rows, dense per-member arrays, user factors) is zeroed or emptied.
Item-level state (popularity, item-item similarities) is aggregate and kept; it disappears from
the next model trained on data without the member. A running server picks the rewritten bundle up
on ``POST /admin/reload``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from loyalty_ml.settings import get_settings

log = logging.getLogger(__name__)
BUNDLE = "recommender.npz"
BLEND = "blend.npz"
TOMBSTONE = "__erased__"


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(path.name + ".erasing.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def _empty_row(arrays: dict[str, np.ndarray], prefix: str, row: int) -> None:
    """Remove one row's entries from a CSR matrix stored as ``prefix.indptr/indices/data``."""
    indptr = arrays[f"{prefix}.indptr"]
    start, end = int(indptr[row]), int(indptr[row + 1])
    if end == start:
        return
    for part in ("indices", "data"):
        key = f"{prefix}.{part}"
        arrays[key] = np.delete(arrays[key], np.s_[start:end])
    new = indptr.copy()
    new[row + 1 :] -= end - start
    arrays[f"{prefix}.indptr"] = new


def erase_bundle(directory: Path, member_id: str) -> int:
    """Erase the member from one bundle directory; 1 if they were in it, else 0."""
    path = directory / BUNDLE
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    members = arrays.get("member_ids")
    if members is None:
        return 0
    hits = np.flatnonzero(members.astype(str) == member_id)
    if not len(hits):
        return 0
    n = len(members)
    row = int(hits[0])
    ids = members.astype(object)
    ids[row] = f"{TOMBSTONE}{row}"
    arrays["member_ids"] = ids.astype(str)
    for key in list(arrays):
        value = arrays[key]
        if key.endswith(".indptr") and value.shape == (n + 1,):
            _empty_row(arrays, key[: -len(".indptr")], row)
        elif key != "member_ids" and value.ndim >= 1 and value.shape[0] == n and "member" in key:
            value = value.copy()
            value[row] = 0
            arrays[key] = value
    _save(path, arrays)
    blend = directory / BLEND
    if blend.is_file():
        with np.load(blend, allow_pickle=False) as z:
            parts = {k: z[k] for k in z.files}
        changed = False
        for key, value in parts.items():
            if key.endswith("user_factors") and value.ndim == 2 and value.shape[0] == n:
                value = value.copy()
                value[row] = 0
                parts[key] = value
                changed = True
        if changed:
            _save(blend, parts)
    return 1


def erase_member(member_id: str, home: Path | None = None) -> dict[str, Any]:
    """Erase ``member_id`` from every recommender bundle under ``LOYALTY_HOME``."""
    root = home or get_settings().home_dir
    member_id = str(member_id)
    bundles = sorted({p.parent for p in root.rglob(BUNDLE)}) if root.is_dir() else []
    erased = 0
    for directory in bundles:
        try:
            erased += erase_bundle(directory, member_id)
        except Exception as exc:  # one unreadable bundle must not stop the others
            log.warning("could not erase from %s: %s", directory, type(exc).__name__)
    return {"bundles_scanned": len(bundles), "bundles_erased": erased}
