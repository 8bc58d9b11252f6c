"""The churn model artifact: LightGBM booster + calibrator + bands + value segments + reason
mapping, saved as plain files (``model.txt`` + ``churn_model.json``) so it loads without pickle."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loyalty_ml.churn.calibration import Calibrator
from loyalty_ml.churn.reasons import grouped_contributions, map_features, top_reasons
from loyalty_ml.churn.value import (
    PAST_COLUMN,
    VALUE_COLUMN,
    SegmentCuts,
    assign_segments,
    risk_bands,
)

MODEL_FILE = "model.txt"
META_FILE = "churn_model.json"


def prepare_matrix(frame: pd.DataFrame, feature_names: list[str]) -> pd.DataFrame:
    """The model's columns in order; absent ones are NaN; categoricals become codes."""
    out = pd.DataFrame(index=frame.index)
    for name in feature_names:
        if name in frame.columns:
            col = frame[name]
            if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
                col = pd.to_numeric(col, errors="coerce")
            out[name] = col.astype("float64")
        else:
            out[name] = np.nan
    return out


def resolve_threads(configured: int | None) -> int:
    """LightGBM threads: the configured number, or every core this process may use when it is
    0/None (LightGBM's own 0 means OpenMP's default, which ignores CPU affinity)."""
    if configured and int(configured) > 0:
        return int(configured)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def monotone_vector(feature_names: list[str], patterns: list[tuple[str, int]]) -> list[int]:
    """LightGBM ``monotone_constraints`` from [regex, sign] pairs (first match wins, else 0)."""
    compiled = [(re.compile(p), int(np.sign(sign))) for p, sign in patterns]
    out = []
    for name in feature_names:
        out.append(next((sign for rx, sign in compiled if rx.search(name)), 0))
    return out


def train_booster(
    X: pd.DataFrame,
    y: np.ndarray,
    params: dict[str, Any],
    *,
    valid: tuple[pd.DataFrame, np.ndarray] | None = None,
    callbacks: list[Any] | None = None,
) -> Any:
    import lightgbm as lgb

    params = dict(params)
    rounds = int(params.pop("num_boost_round", 300))
    patterns = params.pop("monotone_patterns", None)
    if patterns:
        vector = monotone_vector(list(X.columns), [tuple(p) for p in patterns])
        if any(vector):
            params["monotone_constraints"] = vector
    early = int(params.pop("early_stopping_rounds", 0))
    params["num_threads"] = resolve_threads(params.get("num_threads"))
    params.setdefault("verbose", -1)
    train_set = lgb.Dataset(X, label=y, free_raw_data=True)
    cbs = list(callbacks or [])
    valid_sets = []
    if valid is not None:
        valid_sets = [lgb.Dataset(valid[0], label=valid[1], reference=train_set)]
        params.setdefault("metric", "auc")
        if early:
            cbs.append(lgb.early_stopping(early, verbose=False))
    return lgb.train(params, train_set, rounds, valid_sets=valid_sets or None, callbacks=cbs)


@dataclass
class ChurnModel:
    booster: Any
    feature_names: list[str]
    calibrator: Calibrator
    horizon_days: int
    definition: str
    band_thresholds: list[float]
    band_labels: list[str]
    segment_cuts: SegmentCuts
    reason_codes: tuple[str, ...]
    reason_map: dict[str, str]
    top_k: int = 3
    meta: dict[str, Any] = field(default_factory=dict)

    # ---- scoring -------------------------------------------------------------------------
    def raw_score(self, frame: pd.DataFrame) -> np.ndarray:
        X = prepare_matrix(frame, self.feature_names)
        return self.booster.predict(X, raw_score=True)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        raw = self.raw_score(frame)
        return self.calibrator(1.0 / (1.0 + np.exp(-raw)))

    def score_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """member_id, churn_probability, risk_band, value, value_segment, value_at_risk."""
        p = self.predict_proba(frame)
        n = len(frame)
        value = (
            frame[VALUE_COLUMN].to_numpy(dtype=float)
            if VALUE_COLUMN in frame.columns
            else np.full(n, np.nan)
        )
        past = (
            frame[PAST_COLUMN].to_numpy(dtype=float)
            if PAST_COLUMN in frame.columns
            else np.zeros(n)
        )
        return pd.DataFrame(
            {
                "member_id": frame["member_id"].astype("string").to_numpy(),
                "churn_probability": p,
                "risk_band": risk_bands(p, self.band_thresholds, self.band_labels),
                "value": value,
                "value_segment": assign_segments(value, past, self.segment_cuts),
                "value_at_risk": p * np.nan_to_num(value),
            }
        )

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        X = prepare_matrix(frame, self.feature_names)
        return np.asarray(self.booster.predict(X, pred_contrib=True))

    def reason_groups(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return grouped_contributions(
            self.contributions(frame), self.feature_names, self.reason_map, self.reason_codes
        )

    def reasons(self, frame: pd.DataFrame, top_k: int | None = None) -> list[list[dict[str, Any]]]:
        groups, _ = self.reason_groups(frame)
        return top_reasons(groups, self.reason_codes, top_k or self.top_k)

    # ---- persistence ---------------------------------------------------------------------
    def save(self, directory: Path | str) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(directory / MODEL_FILE))
        meta = {
            "feature_names": self.feature_names,
            "calibrator": self.calibrator.to_dict(),
            "horizon_days": self.horizon_days,
            "definition": self.definition,
            "band_thresholds": self.band_thresholds,
            "band_labels": self.band_labels,
            "segment_cuts": self.segment_cuts.to_dict(),
            "reason_codes": list(self.reason_codes),
            "reason_map": self.reason_map,
            "top_k": self.top_k,
            "meta": self.meta,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=1, default=str))
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> ChurnModel:
        import lightgbm as lgb

        directory = Path(directory)
        meta = json.loads((directory / META_FILE).read_text())
        booster = lgb.Booster(model_file=str(directory / MODEL_FILE))
        return cls(
            booster=booster,
            feature_names=meta["feature_names"],
            calibrator=Calibrator.from_dict(meta["calibrator"]),
            horizon_days=meta["horizon_days"],
            definition=meta["definition"],
            band_thresholds=meta["band_thresholds"],
            band_labels=meta["band_labels"],
            segment_cuts=SegmentCuts(**meta["segment_cuts"]),
            reason_codes=tuple(meta["reason_codes"]),
            reason_map=meta["reason_map"],
            top_k=meta.get("top_k", 3),
            meta=meta.get("meta", {}),
        )


def build_reason_map(
    feature_names: list[str], patterns: list[tuple[str, str]], codes: tuple[str, ...]
) -> dict[str, str]:
    return map_features(feature_names, patterns, codes)
