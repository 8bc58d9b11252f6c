"""A minimal reader of the CDNOW master file into the data contract, used by the churn benchmark
and tests when the contract adapter (``loyalty data import cdnow``) output is not at hand."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from loyalty_ml.contract.io import Dataset

CUTOFF = pd.Timestamp("1997-09-30", tz="UTC")  # features up to and including this day
HOLDOUT_END = pd.Timestamp("1998-06-30", tz="UTC")  # label window (cutoff, holdout_end]


def read_cdnow_master(path: Path | str) -> Dataset:
    """``CDNOW_master.txt`` -> members (joined at the first purchase) and completed orders."""
    path = Path(path)
    if path.is_dir():
        path = path / "CDNOW_master.txt"
    raw = pd.read_csv(path, sep=r"\s+", dtype={"customer_id": str, "date": str})
    orders = pd.DataFrame(
        {
            "order_id": pd.Series(range(len(raw))).astype(str).astype("string"),
            "member_id": raw["customer_id"].str.lstrip("0").astype("string"),
            "ordered_at": pd.to_datetime(raw["date"], format="%Y%m%d", utc=True),
            "amount": raw["dollar_value"].astype(float),
            "discount": 0.0,
            "status": pd.Series(["completed"] * len(raw), dtype="string"),
            "quantity": raw["number_of_cds"].astype(int),
        }
    )
    members = (
        orders.groupby("member_id", as_index=False)["ordered_at"]
        .min()
        .rename(columns={"ordered_at": "joined_at"})
    )
    return Dataset(members=members, orders=orders, name="cdnow")
