"""Drift statistics: PSI per feature, score distribution shift, calibration of matured cohorts,
campaign outcomes vs expected uplift. Pure functions over arrays and DataFrames."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Entity keys and row timestamps of feature frames (Feast's and the scorer's), never features.
ROW_KEY_COLUMNS: tuple[str, ...] = (
    "member_id",
    "as_of",
    "event_timestamp",
    "created_timestamp",
    "created",
)

# Empty bins get this share instead of 0 so PSI stays finite (log(0) otherwise).
_EPS = 1e-4


def _is_categorical(values: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values))


def _as_numeric_time(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = values.dt.tz_localize(None) if values.dt.tz is not None else values
        return (stamps - pd.Timestamp(0)).dt.total_seconds()
    if pd.api.types.is_timedelta64_dtype(values):
        return values.dt.total_seconds()
    return values


def _psi_from_shares(ref: np.ndarray, cur: np.ndarray) -> float:
    ref = np.clip(ref, _EPS, None)
    cur = np.clip(cur, _EPS, None)
    ref, cur = ref / ref.sum(), cur / cur.sum()
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def psi_edges(reference: np.ndarray, bins: int = 10) -> np.ndarray:
    """Cut points: reference min, inner quantiles, just above the max (duplicates dropped)."""
    finite = reference[np.isfinite(reference)]
    if finite.size == 0:
        return np.array([])
    qs = np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])
    # The reference range closes both ends, so values outside it (or any move of a constant
    # feature) get bins of their own instead of hiding in the outermost quantile bin.
    top = np.nextafter(finite.max(), np.inf)
    return np.unique(np.concatenate([[finite.min()], qs, [top]]))


def _numeric_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    nan = ~np.isfinite(values)
    # side="right": a value equal to a cut point goes above it, which keeps a heavy point mass
    # (e.g. many zeros) in one bin whatever the quantiles do.
    idx = np.searchsorted(edges, values[~nan], side="right")
    counts = np.bincount(idx, minlength=edges.size + 1).astype(float)
    counts = np.append(counts, nan.sum())  # missing values are their own bin
    return counts / max(values.size, 1)


def psi(
    reference: pd.Series | np.ndarray,
    current: pd.Series | np.ndarray,
    bins: int = 10,
    *,
    max_categories: int = 50,
) -> float:
    """Population stability index of ``current`` against ``reference``.

    Numeric: quantile bins of the reference (+ a missing bin). Categorical (object/category):
    one bin per level seen in the reference (top ``max_categories``), plus "other" and missing.
    0 = same distribution; >= 0.1 moderate, >= 0.25 major shift by convention.
    """
    ref = pd.Series(reference)
    cur = pd.Series(current)
    if ref.empty or cur.empty:
        return float("nan")
    # Timestamps drift as numbers (seconds), not as thousands of one-off categories.
    ref, cur = _as_numeric_time(ref), _as_numeric_time(cur)
    if _is_categorical(ref) or _is_categorical(cur):
        # Strings throughout (missing marked first) so levels compare by text, never by dtype.
        r = pd.Series(np.where(ref.isna(), "__missing__", ref.astype(str)))
        c = pd.Series(np.where(cur.isna(), "__missing__", cur.astype(str)))
        levels = [v for v in r.value_counts().index if v != "__missing__"][:max_categories]

        def shares(s: pd.Series) -> np.ndarray:
            known = s.where(s.isin(levels) | (s == "__missing__"), "__other__")
            keys = [*levels, "__other__", "__missing__"]
            return known.value_counts().reindex(keys, fill_value=0).to_numpy(float) / len(s)

        return _psi_from_shares(shares(r), shares(c))
    r = ref.to_numpy(dtype=float)
    c = cur.to_numpy(dtype=float)
    edges = psi_edges(r, bins)
    return _psi_from_shares(_numeric_shares(r, edges), _numeric_shares(c, edges))


def drift_table(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    bins: int = 10,
    *,
    warn: float = 0.1,
    alert: float = 0.25,
    max_categories: int = 50,
    exclude: tuple[str, ...] = ROW_KEY_COLUMNS,
) -> pd.DataFrame:
    """PSI per shared feature, worst first, with reference/current means and a status.

    ``exclude`` names columns that identify or timestamp a row rather than describe the member:
    they always "drift" between two windows and would bury the real shifts.
    """
    rows = []
    for col in [c for c in reference.columns if c in current.columns and c not in exclude]:
        ref, cur = reference[col], current[col]
        numeric = not (_is_categorical(ref) or _is_categorical(cur))
        rows.append(
            {
                "feature": col,
                "psi": psi(ref, cur, bins, max_categories=max_categories),
                "ref_mean": float(pd.to_numeric(ref, errors="coerce").mean()) if numeric else None,
                "cur_mean": float(pd.to_numeric(cur, errors="coerce").mean()) if numeric else None,
                "ref_missing": float(ref.isna().mean()),
                "cur_missing": float(cur.isna().mean()),
            }
        )
    table = pd.DataFrame(
        rows, columns=["feature", "psi", "ref_mean", "cur_mean", "ref_missing", "cur_missing"]
    )
    table["status"] = np.select(
        [table["psi"] >= alert, table["psi"] >= warn], ["alert", "warn"], "ok"
    )
    return table.sort_values("psi", ascending=False, na_position="last").reset_index(drop=True)


def score_shift(
    scores_ref: np.ndarray | pd.Series, scores_cur: np.ndarray | pd.Series, bins: int = 10
) -> dict[str, float]:
    """PSI, KS statistic and mean/quantile moves of the score distribution."""
    from scipy import stats

    ref = pd.Series(scores_ref, dtype=float).dropna().to_numpy()
    cur = pd.Series(scores_cur, dtype=float).dropna().to_numpy()
    ks = stats.ks_2samp(ref, cur)
    return {
        "psi": psi(ref, cur, bins),
        "ks": float(ks.statistic),
        "ks_p_value": float(ks.pvalue),
        "ref_mean": float(ref.mean()),
        "cur_mean": float(cur.mean()),
        "ref_p90": float(np.quantile(ref, 0.9)),
        "cur_p90": float(np.quantile(cur, 0.9)),
    }


def calibration_table(
    matured: pd.DataFrame,
    score_col: str = "score",
    label_col: str = "churned",
    cohort_col: str | None = "cohort",
    bins: int = 10,
) -> pd.DataFrame:
    """Predicted vs realised churn for cohorts whose label horizon has passed.

    One row per cohort (scoring date) and risk bin: n, mean predicted, realised rate, and a
    binomial 95% interval of the realised rate (a bin is off when its prediction is outside).
    """
    frame = matured.dropna(subset=[score_col, label_col])
    group = (
        frame[cohort_col] if cohort_col and cohort_col in frame else pd.Series("all", frame.index)
    )
    rows = []
    for cohort, part in frame.groupby(group, sort=True):
        ranks = part[score_col].rank(method="first")
        b = np.ceil(ranks / len(part) * bins).clip(1, bins).astype(int)
        for k, cell in part.groupby(b):
            n = len(cell)
            realised = float(cell[label_col].mean())
            half = 1.96 * np.sqrt(max(realised * (1 - realised), 1e-12) / n)
            rows.append(
                {
                    "cohort": cohort,
                    "bin": int(k),
                    "n": n,
                    "predicted": float(cell[score_col].mean()),
                    "realised": realised,
                    "realised_low": max(0.0, realised - half),
                    "realised_high": min(1.0, realised + half),
                }
            )
    table = pd.DataFrame(rows)
    if not table.empty:
        table["gap"] = table["predicted"] - table["realised"]
    return table


def calibration_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per cohort: n-weighted mean predicted vs realised, and expected calibration error."""
    if table.empty:
        return pd.DataFrame(columns=["cohort", "n", "predicted", "realised", "ece"])
    g = table.assign(wp=table["predicted"] * table["n"], wr=table["realised"] * table["n"])
    g["wabs"] = (table["predicted"] - table["realised"]).abs() * table["n"]
    s = g.groupby("cohort")[["n", "wp", "wr", "wabs"]].sum()
    return pd.DataFrame(
        {
            "cohort": s.index,
            "n": s["n"].to_numpy(),
            "predicted": (s["wp"] / s["n"]).to_numpy(),
            "realised": (s["wr"] / s["n"]).to_numpy(),
            "ece": (s["wabs"] / s["n"]).to_numpy(),
        }
    )


def campaign_outcomes(
    frame: pd.DataFrame,
    *,
    campaign_col: str = "campaign",
    treated_col: str = "treated",
    outcome_col: str = "outcome",
    expected_col: str = "expected_uplift",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Realised incremental effect (treated - holdout, with CI) vs the uplift the model expected
    for the treated members, per campaign."""
    from loyalty_ml.abtest.analyze import diff_stats

    rows = []
    for name, part in frame.groupby(campaign_col, sort=True):
        t = part.loc[part[treated_col].astype(bool), outcome_col].to_numpy(float)
        c = part.loc[~part[treated_col].astype(bool), outcome_col].to_numpy(float)
        if len(t) < 2 or len(c) < 2:
            continue
        res = diff_stats(
            t.mean(), t.var(ddof=1), len(t), c.mean(), c.var(ddof=1), len(c), alpha=alpha
        )
        expected = float(part.loc[part[treated_col].astype(bool), expected_col].mean())
        lo, hi = float(res["ci_low"]), float(res["ci_high"])
        rows.append(
            {
                "campaign": name,
                "n_treated": len(t),
                "n_holdout": len(c),
                "expected_uplift": expected,
                "realised_uplift": float(res["diff"]),
                "ci_low": lo,
                "ci_high": hi,
                # Lists without a per-member expectation still get their realised effect.
                "consistent": bool(lo <= expected <= hi) if np.isfinite(expected) else None,
            }
        )
    return pd.DataFrame(rows)
