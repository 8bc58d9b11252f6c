"""Churn labels at rolling origins (pure functions, no I/O).

churn(member, origin, H) = 1 when the member has **no completed order** in ``(origin, origin + H]``
(definition ``no_purchase``), or no completed order *and* no member-initiated event of any kind
(definition ``no_activity``; shop-initiated ``message_sent`` does not count as activity).
Returned and cancelled orders are not purchases. Members who joined after ``origin`` are excluded,
and so is every member of an origin whose horizon ends after ``data_end`` (incomplete horizon).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from loyalty_ml.contract.io import Dataset
from loyalty_ml.timeutil import to_utc

SHOP_INITIATED_EVENTS = ("message_sent",)


@dataclass
class LabelResult:
    """Labels of one or more origins plus how many member-origins were excluded and why."""

    frame: pd.DataFrame  # member_id, origin, horizon_days, churned (int8)
    excluded: dict[str, int] = field(default_factory=dict)

    def merge(self, other: LabelResult) -> LabelResult:
        frame = pd.concat([self.frame, other.frame], ignore_index=True)
        excluded = dict(self.excluded)
        for key, n in other.excluded.items():
            excluded[key] = excluded.get(key, 0) + n
        return LabelResult(frame, excluded)


def snapshot_origins(
    last_origin: object, spacing_days: int, n: int, earliest: object | None = None
) -> list[pd.Timestamp]:
    """``n`` origins ending at ``last_origin``, ``spacing_days`` apart, oldest first; origins
    before ``earliest`` are dropped."""
    last = to_utc(last_origin)
    origins = [last - pd.Timedelta(days=spacing_days * k) for k in range(n)][::-1]
    if earliest is not None:
        lo = to_utc(earliest)
        origins = [o for o in origins if o >= lo]
    return origins


def active_member_ids(
    dataset: Dataset, start: pd.Timestamp, end: pd.Timestamp, definition: str
) -> np.ndarray:
    """Members with a completed order (or, for ``no_activity``, any member event) in (start, end]."""
    orders = dataset.orders
    in_window = (orders["ordered_at"] > start) & (orders["ordered_at"] <= end)
    completed = orders["status"].fillna("completed") == "completed"
    ids = orders.loc[in_window & completed, "member_id"].unique()
    if definition == "no_activity" and dataset.events is not None and len(dataset.events):
        ev = dataset.events
        mask = (
            (ev["occurred_at"] > start)
            & (ev["occurred_at"] <= end)
            & ~ev["event_type"].isin(SHOP_INITIATED_EVENTS)
        )
        ids = np.union1d(np.asarray(ids, dtype=object), ev.loc[mask, "member_id"].unique())
    elif definition not in ("no_purchase", "no_activity"):
        raise ValueError(f"unknown label definition {definition!r}")
    return np.asarray(ids, dtype=object)


def build_labels(
    dataset: Dataset,
    origin: object,
    horizon_days: int,
    *,
    definition: str = "no_purchase",
    data_end: object | None = None,
    min_tenure_days: int = 0,
) -> LabelResult:
    """Labels for one origin. ``data_end`` (default: the data's latest timestamp) is the last
    instant whose outcome is known; an origin whose horizon ends later yields no rows."""
    t0 = to_utc(origin)
    t1 = t0 + pd.Timedelta(days=horizon_days)
    end = to_utc(data_end) if data_end is not None else dataset.latest_timestamp()
    members = dataset.members
    eligible_join = members["joined_at"] <= t0 - pd.Timedelta(days=min_tenure_days)
    n_joined_late = int((~eligible_join).sum())
    empty = pd.DataFrame(
        {
            "member_id": pd.Series(dtype="string"),
            "origin": pd.Series(dtype="datetime64[ns, UTC]"),
            "horizon_days": pd.Series(dtype="int32"),
            "churned": pd.Series(dtype="int8"),
        }
    )
    if t1 > end:
        return LabelResult(
            empty,
            {"joined_after_origin": n_joined_late, "horizon_incomplete": int(eligible_join.sum())},
        )
    ids = members.loc[eligible_join, "member_id"].astype("string").reset_index(drop=True)
    active = active_member_ids(dataset, t0, t1, definition)
    churned = (~ids.isin(active)).astype("int8").to_numpy()
    frame = pd.DataFrame(
        {
            "member_id": ids,
            "origin": pd.Series(t0, index=ids.index).astype("datetime64[ns, UTC]"),
            "horizon_days": np.full(len(ids), horizon_days, dtype="int32"),
            "churned": churned,
        }
    )
    return LabelResult(frame, {"joined_after_origin": n_joined_late, "horizon_incomplete": 0})


def build_label_snapshots(
    dataset: Dataset,
    origins: list[pd.Timestamp],
    horizon_days: int,
    *,
    definition: str = "no_purchase",
    data_end: object | None = None,
    min_tenure_days: int = 0,
) -> LabelResult:
    result: LabelResult | None = None
    for origin in origins:
        one = build_labels(
            dataset,
            origin,
            horizon_days,
            definition=definition,
            data_end=data_end,
            min_tenure_days=min_tenure_days,
        )
        result = one if result is None else result.merge(one)
    if result is None:
        raise ValueError("no origins given")
    return result
