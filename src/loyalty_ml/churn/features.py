"""Feature providers for the churn job: ``provider(dataset, as_of) -> DataFrame`` with
``member_id``, ``event_timestamp`` and ``<family>__<name>`` columns, computed only from data at or
before ``as_of`` (point in time).

- ``builtin``: the RFM family below (members + orders only — all CDNOW supports), plus BG/NBD
  posterior summaries (``bgnbd__*``) fitted on the same point-in-time data.
- ``pipeline``: ``loyalty_ml.features.pipeline.build_member_features`` (the shared feature
  pipeline; the offline twin of the Feast feature service ``churn_v1``), joined with ``bgnbd__*``.
- ``feast``: Feast ``churn_v1`` ``get_historical_features`` (when the feature repo exists).
- ``auto``: ``pipeline`` when the module is importable, else ``builtin``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np
import pandas as pd

from loyalty_ml.churn import bgnbd
from loyalty_ml.contract.io import Dataset
from loyalty_ml.errors import ConfigError
from loyalty_ml.timeutil import to_utc

FeatureProvider = Callable[[Dataset, pd.Timestamp], pd.DataFrame]
DAY_NS = 86_400 * 10**9
KEYS = ("member_id", "event_timestamp")


def _days(delta: pd.Series | np.ndarray) -> np.ndarray:
    return np.asarray(delta, dtype="timedelta64[ns]").astype("int64") / DAY_NS


def order_summary(dataset: Dataset, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per member (all members joined by ``as_of``): join date, completed-order stats."""
    t = to_utc(as_of)
    members = dataset.members.loc[dataset.members["joined_at"] <= t, ["member_id", "joined_at"]]
    orders = dataset.orders
    orders = orders[orders["ordered_at"] <= t]
    status = orders["status"].fillna("completed")
    done = orders[status == "completed"]
    day = done["ordered_at"].dt.floor("D")
    g = done.assign(_day=day).groupby("member_id", sort=False)
    summary = pd.DataFrame(
        {
            "first_order": g["ordered_at"].min(),
            "last_order": g["ordered_at"].max(),
            "n_orders": g.size(),
            "n_days": g["_day"].nunique(),
            "spend": g["amount"].sum(),
            "discount": g["discount"].sum(),
        }
    )
    out = members.merge(summary, left_on="member_id", right_index=True, how="left")
    by_status = orders.assign(_s=status).groupby(["member_id", "_s"]).size().unstack(fill_value=0)
    for col in ("returned", "cancelled"):
        counts = by_status[col] if col in by_status.columns else pd.Series(dtype="int64")
        out[col] = out["member_id"].map(counts).fillna(0).to_numpy()
    out["n_orders"] = out["n_orders"].fillna(0)
    out["n_days"] = out["n_days"].fillna(0)
    out["spend"] = out["spend"].fillna(0.0)
    out["discount"] = out["discount"].fillna(0.0)
    return out.reset_index(drop=True)


def _window_counts(
    dataset: Dataset, t: pd.Timestamp, days: int, member_ids: pd.Series
) -> tuple[np.ndarray, np.ndarray]:
    orders = dataset.orders
    mask = (
        (orders["ordered_at"] <= t)
        & (orders["ordered_at"] > t - pd.Timedelta(days=days))
        & (orders["status"].fillna("completed") == "completed")
    )
    sub = orders.loc[mask]
    g = sub.groupby("member_id", sort=False)
    n = member_ids.map(g.size()).fillna(0).to_numpy(dtype=float)
    s = member_ids.map(g["amount"].sum()).fillna(0).to_numpy(dtype=float)
    return n, s


def _last_gap_days(dataset: Dataset, t: pd.Timestamp, member_ids: pd.Series) -> np.ndarray:
    """Days between a member's last two distinct purchase days (NaN with fewer than two)."""
    orders = dataset.orders
    mask = (orders["ordered_at"] <= t) & (orders["status"].fillna("completed") == "completed")
    sub = orders.loc[mask, ["member_id", "ordered_at"]]
    days = pd.DataFrame(
        {
            "m": sub["member_id"].to_numpy(),
            "d": sub["ordered_at"].dt.floor("D").astype("int64").to_numpy(),
        }
    ).drop_duplicates()
    days = days.sort_values(["m", "d"], kind="stable")
    same = days["m"].to_numpy()[1:] == days["m"].to_numpy()[:-1]
    gap = np.diff(days["d"].to_numpy()) / DAY_NS
    last_of_member = np.append(days["m"].to_numpy()[1:] != days["m"].to_numpy()[:-1], True)
    rows = np.flatnonzero(last_of_member[1:] & same) + 1  # last row of members with >= 2 days
    gaps = pd.Series(gap[rows - 1], index=days["m"].to_numpy()[rows])
    return member_ids.map(gaps).to_numpy(dtype=float)


def bgnbd_inputs(
    summary: pd.DataFrame, t: pd.Timestamp
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) in weeks from an ``order_summary``; members without orders: zeros."""
    first = summary["first_order"].dt.floor("D")
    last = summary["last_order"].dt.floor("D")
    x = np.maximum(summary["n_days"].to_numpy(dtype=float) - 1, 0)
    t_x = np.nan_to_num(_days(last - first) / 7.0)
    T = np.nan_to_num(_days(t.floor("D") - first) / 7.0)
    return x, t_x, T


def rfm_features(dataset: Dataset, as_of: object, *, with_bgnbd: bool = True) -> pd.DataFrame:
    """The built-in RFM family (members + orders only) at ``as_of``."""
    t = to_utc(as_of)
    s = order_summary(dataset, t)
    ids = s["member_id"]
    tenure = _days(t - s["joined_at"])
    recency = _days(t - s["last_order"])
    recency = np.where(np.isnan(recency), tenure, recency)
    span = _days(s["last_order"].dt.floor("D") - s["first_order"].dt.floor("D"))
    n_days = s["n_days"].to_numpy(dtype=float)
    avg_gap = np.where(n_days > 1, span / np.maximum(n_days - 1, 1), np.nan)
    feats = {
        "rfm__tenure_days": tenure,
        "rfm__recency_days": recency,
        "rfm__n_orders": s["n_orders"].to_numpy(dtype=float),
        "rfm__n_order_days": n_days,
        "rfm__active_span_days": np.nan_to_num(span),
        "rfm__avg_gap_days": avg_gap,
        "rfm__last_gap_days": _last_gap_days(dataset, t, ids),
        "rfm__recency_over_gap": recency / avg_gap,
        "rfm__orders_per_30d": n_days / np.maximum(tenure, 1.0) * 30.0,
        "rfm__monetary_total": s["spend"].to_numpy(dtype=float),
        "rfm__monetary_avg": np.where(
            s["n_orders"] > 0, s["spend"] / np.maximum(s["n_orders"], 1), np.nan
        ),
        "rfm__returned_orders": s["returned"].to_numpy(dtype=float),
        "rfm__cancelled_orders": s["cancelled"].to_numpy(dtype=float),
        "rfm__discount_share": np.where(
            s["spend"] + s["discount"] > 0, s["discount"] / (s["spend"] + s["discount"]), 0.0
        ),
    }
    for window in (30, 90, 180, 365):
        n, spent = _window_counts(dataset, t, window, ids)
        feats[f"rfm__orders_{window}d"] = n
        if window in (90, 365):
            feats[f"rfm__spend_{window}d"] = spent
    frame = pd.DataFrame(feats)
    frame.insert(
        0, "event_timestamp", pd.Series(t, index=frame.index).astype("datetime64[ns, UTC]")
    )
    frame.insert(0, "member_id", ids.astype("string").to_numpy())
    if with_bgnbd:
        frame = frame.merge(bgnbd_features(dataset, t, s), on="member_id", how="left")
    return frame


def history_start(dataset: Dataset) -> pd.Timestamp | None:
    """The first order or event anywhere in the data: where the observation window opens (an
    extract, or a shop that started recording late). None when there is no activity at all."""
    stamps = [dataset.orders["ordered_at"].min()]
    if dataset.events is not None and len(dataset.events):
        stamps.append(dataset.events["occurred_at"].min())
    stamps = [s for s in stamps if pd.notna(s)]
    return min(stamps) if stamps else None


def observed_days(dataset: Dataset, t: pd.Timestamp, joined_at: pd.Series) -> np.ndarray | None:
    """Days of a member's history the data can show at ``t``: since joining, or since the data's
    first record for members who joined before it. "No order in 30 observed days" and "no order
    in 300" differ, and tenure alone cannot tell them apart when the data start after many
    members joined (rolling origins early in the data then see short histories). None when no
    member joined before the data start: the value would equal tenure (a duplicate column)."""
    start = history_start(dataset)
    if start is None or not (joined_at < start).any():
        return None
    return np.maximum(_days(t - joined_at.clip(lower=start)), 0.0)


def bgnbd_features(
    dataset: Dataset, as_of: object, summary: pd.DataFrame | None = None
) -> pd.DataFrame:
    """BG/NBD posterior summaries and the Gamma-Gamma expected 12-month spend (the value model),
    both fitted on the point-in-time data itself; plus the past 12 months' spend and, where the
    data start after members joined, the observed history length (``window__observed_days``:
    context, never a reason code). Every provider joins this frame."""
    t = to_utc(as_of)
    s = summary if summary is not None else order_summary(dataset, t)
    x, t_x, T = bgnbd_inputs(s, t)
    n_days = s["n_days"].to_numpy(dtype=float)
    n_orders = s["n_orders"].to_numpy(dtype=float)
    avg = np.where(n_orders > 0, s["spend"].to_numpy(dtype=float) / np.maximum(n_orders, 1), 0.0)
    params = bgnbd.fit_bgnbd(x, t_x, T)
    gg = bgnbd.fit_gamma_gamma(n_days, avg)
    orders_52w = bgnbd.expected_transactions(params, 365.0 / 7.0, x, t_x, T)
    _, past = _window_counts(dataset, t, 365, s["member_id"])
    observed = observed_days(dataset, t, s["joined_at"])
    frame = pd.DataFrame(
        {
            "member_id": s["member_id"].astype("string").to_numpy(),
            "bgnbd__p_alive": bgnbd.p_alive(params, x, t_x, T),
            "bgnbd__expected_orders_13w": bgnbd.expected_transactions(params, 13.0, x, t_x, T),
            "bgnbd__expected_orders_52w": orders_52w,
            "value__expected_spend_365d": orders_52w
            * bgnbd.expected_spend_per_transaction(gg, n_days, avg),
            "value__past_spend_365d": past,
        }
    )
    if observed is not None:
        frame["window__observed_days"] = observed
    return frame


def builtin_provider(dataset: Dataset, as_of: pd.Timestamp) -> pd.DataFrame:
    return rfm_features(dataset, as_of)


def pipeline_provider(dataset: Dataset, as_of: pd.Timestamp) -> pd.DataFrame:
    pipeline = importlib.import_module("loyalty_ml.features.pipeline")
    frame = pipeline.build_member_features(dataset, to_utc(as_of))
    frame = frame.copy()
    frame["member_id"] = frame["member_id"].astype("string")
    return frame.merge(bgnbd_features(dataset, as_of), on="member_id", how="left")


def feast_provider(dataset: Dataset, as_of: pd.Timestamp) -> pd.DataFrame:
    """Feast ``churn_v1`` through ``get_historical_features`` (feature repo under LOYALTY_HOME)."""
    training = importlib.import_module("loyalty_ml.features.training")
    frame, _unavailable = training.training_set(dataset, "churn_v1", as_of=to_utc(as_of))
    frame = frame.copy()
    frame["member_id"] = frame["member_id"].astype("string")
    return frame.merge(bgnbd_features(dataset, as_of), on="member_id", how="left")


def _pipeline_available() -> bool:
    try:
        module = importlib.import_module("loyalty_ml.features.pipeline")
    except ModuleNotFoundError:
        return False
    return hasattr(module, "build_member_features")


def resolve_provider(name: str = "auto") -> tuple[str, FeatureProvider]:
    if name == "auto":
        name = "pipeline" if _pipeline_available() else "builtin"
    if name == "builtin":
        return name, builtin_provider
    if name == "pipeline":
        return name, pipeline_provider
    if name == "feast":
        return name, feast_provider
    raise ConfigError(f"unknown feature provider {name!r} (auto | builtin | pipeline | feast)")


def provider_batch(name: str) -> Callable[[Dataset, list[pd.Timestamp]], dict]:
    """``batch(dataset, origins) -> {origin: frame}``, equal to calling the provider on
    ``dataset.as_of(origin)`` per origin. The pipeline provider builds every origin in one pass
    (``build_member_snapshots``: one context, shared sorting/indexing; 8 origins of a 5k shop
    1.6 s instead of 4.5 s, identical values); the others loop."""
    _, single = resolve_provider(name)

    def loop(dataset: Dataset, origins: list[pd.Timestamp]) -> dict:
        return {o: single(dataset.as_of(o), o) for o in origins}

    if name != "pipeline":
        return loop

    def batch(dataset: Dataset, origins: list[pd.Timestamp]) -> dict:
        if not origins:
            return {}
        pipeline = importlib.import_module("loyalty_ml.features.pipeline")
        stacked = pipeline.build_member_snapshots(dataset, origins)
        stamps = stacked["event_timestamp"]
        out = {}
        for origin in origins:
            frame = stacked.loc[stamps == origin].reset_index(drop=True)
            frame["member_id"] = frame["member_id"].astype("string")
            cut = dataset.as_of(origin)
            out[origin] = frame.merge(bgnbd_features(cut, origin), on="member_id", how="left")
        return out

    return batch


def features_at_origins(
    provider: FeatureProvider, dataset: Dataset, origins: list[pd.Timestamp]
) -> pd.DataFrame:
    """Point-in-time features for every origin (the data is cut at each origin first)."""
    frames = []
    for origin in origins:
        cut = dataset.as_of(origin)
        frame = provider(cut, origin)
        frame = frame.assign(
            origin=pd.Series(origin, index=frame.index).astype("datetime64[ns, UTC]")
        )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if "__" in c and pd.api.types.is_numeric_dtype(frame[c])]
