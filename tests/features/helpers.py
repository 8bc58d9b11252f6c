"""Comparison helpers shared by the store tests."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd


def py(value: Any) -> Any:
    """Python scalar with every kind of missing value as None (Feast's online null)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


def frame_as_online(frame: pd.DataFrame, key: str, ids: list[str], features: list[str]) -> dict:
    """The offline rows of ``ids`` in the shape of Feast's ``get_online_features().to_dict()``."""
    indexed = frame.set_index(key)
    out: dict[str, list[Any]] = {key: list(ids)}
    for name in features:
        out[name] = [py(indexed.at[i, name]) if i in indexed.index else None for i in ids]
    return out


def assert_same_values(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same columns, same rows; floats equal exactly, NaN equal to NaN/None."""
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for col in got.columns:
        if col == "event_timestamp":
            assert (pd.to_datetime(got[col], utc=True) == pd.to_datetime(want[col], utc=True)).all()
            continue
        a = [py(v) for v in got[col].tolist()]
        b = [py(v) for v in want[col].tolist()]
        assert a == b, f"{col}: {a} != {b}"
