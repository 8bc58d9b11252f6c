"""Reason codes from LightGBM's own SHAP contributions (``pred_contrib``), grouped into the
shared codes of ``config/policy.yaml`` (``reasons``).

For each member the raw score (log-odds of churn) equals ``base + sum(contributions)``; grouping
adds the contributions of the features mapped to one code, so ``base + sum(groups) + other``
is still the raw score. Only groups pushing towards churn (positive weight) are reported.
"""

from __future__ import annotations

import re

import numpy as np

DEFAULT_REASON_CODES = (
    "recency_decline",
    "frequency_decline",
    "price_sensitive",
    "service_issue",
    "message_fatigue",
    "points_expiring",
    "downgrade_risk",
    "assortment_mismatch",
)
OTHER = "other"


def shared_reason_codes() -> tuple[str, ...]:
    """The policy's reason codes when the policy file loads, else the documented default list."""
    try:
        from loyalty_ml.policy.config import load_policy

        codes = tuple(load_policy().reason_codes)
        return codes or DEFAULT_REASON_CODES
    except Exception:  # policy file absent or invalid: reasons still work with the default list
        return DEFAULT_REASON_CODES


def map_features(
    feature_names: list[str], patterns: list[tuple[str, str]], codes: tuple[str, ...]
) -> dict[str, str]:
    """feature -> reason code (first matching pattern); unknown codes or no match -> ``other``."""
    compiled = [(re.compile(p, re.IGNORECASE), code) for p, code in patterns]
    mapping = {}
    for name in feature_names:
        code = OTHER
        for rx, target in compiled:
            if rx.search(name):
                code = target if target in codes else OTHER
                break
        mapping[name] = code
    return mapping


def group_matrix(
    feature_names: list[str], mapping: dict[str, str], codes: tuple[str, ...]
) -> np.ndarray:
    """(n_features, n_codes + 1) 0/1 matrix; the last column is ``other``."""
    index = {c: i for i, c in enumerate(codes)}
    m = np.zeros((len(feature_names), len(codes) + 1))
    for j, name in enumerate(feature_names):
        m[j, index.get(mapping.get(name, OTHER), len(codes))] = 1.0
    return m


def grouped_contributions(
    contrib: np.ndarray, feature_names: list[str], mapping: dict[str, str], codes: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """``contrib`` from ``booster.predict(X, pred_contrib=True)`` (n, f + 1, base last) ->
    (groups (n, len(codes) + 1) with ``other`` last, base (n,))."""
    contrib = np.asarray(contrib, dtype=float)
    groups = contrib[:, :-1] @ group_matrix(feature_names, mapping, codes)
    return groups, contrib[:, -1]


def top_reasons(
    groups: np.ndarray, codes: tuple[str, ...], top_k: int = 3, min_weight: float = 0.0
) -> list[list[dict[str, float | str]]]:
    """Per member, up to ``top_k`` codes with the largest positive weight (``other`` excluded)."""
    named = groups[:, : len(codes)]
    k = min(top_k, len(codes))
    order = np.argsort(-named, axis=1)[:, :k]
    out: list[list[dict[str, float | str]]] = []
    for i in range(named.shape[0]):
        row = []
        for j in order[i]:
            weight = round(float(named[i, j]), 4)
            if weight > min_weight:
                row.append({"code": codes[j], "weight": weight})
        out.append(row)
    return out
