"""``ChurnScorer``: the serving/batch face of a trained churn model.

    scorer = ChurnScorer.from_registry("churn-cdnow")            # models:/churn-cdnow@champion
    scorer = ChurnScorer.from_path(".loyalty/models/churn-cdnow")  # a local artifact
    scores = scorer.score_frame(features)   # member_id, churn_probability, risk_band, value,
                                            # value_segment, value_at_risk
    reasons = scorer.reasons(features, top_k=3)  # per member [{"code", "weight"}, ...]

``features`` are the member feature rows (``member_id`` + ``<family>__<name>`` columns) as the
feature provider of training produced them (``scorer.provider``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loyalty_ml.churn.model import ChurnModel
from loyalty_ml.contract.io import Dataset
from loyalty_ml.timeutil import to_utc


class ChurnScorer:
    def __init__(self, model: ChurnModel, source: str = "") -> None:
        self.model = model
        self.source = source

    # ---- loading ---------------------------------------------------------------------------
    @classmethod
    def from_path(cls, path: Path | str) -> ChurnScorer:
        return cls(ChurnModel.load(path), str(path))

    @classmethod
    def from_registry(cls, name: str, alias: str = "champion") -> ChurnScorer:
        from loyalty_ml.churn.tracking_io import load_model_from_uri

        uri = name if name.startswith(("models:/", "runs:/")) else f"models:/{name}@{alias}"
        return cls(load_model_from_uri(uri), uri)

    @classmethod
    def load(cls, source: str | Path) -> ChurnScorer:
        """A local directory when it exists, else a registered model name or URI."""
        if Path(source).is_dir():
            return cls.from_path(source)
        return cls.from_registry(str(source))

    # ---- scoring ---------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        return self.model.feature_names

    @property
    def provider(self) -> str:
        return str(self.model.meta.get("provider", "auto"))

    def score_frame(self, features: pd.DataFrame) -> pd.DataFrame:
        return self.model.score_frame(features)

    def reasons(
        self, features: pd.DataFrame, top_k: int | None = None
    ) -> list[list[dict[str, Any]]]:
        return self.model.reasons(features, top_k)

    def features_for(self, dataset: Dataset, as_of: object | None = None) -> pd.DataFrame:
        from loyalty_ml.churn.features import resolve_provider

        t = to_utc(as_of) if as_of is not None else dataset.latest_timestamp()
        _, provider = resolve_provider(self.provider)
        return provider(dataset.as_of(t), t)

    def score_dataset(
        self,
        dataset: Dataset,
        as_of: object | None = None,
        *,
        reasons_top: int | None = 50_000,
        top_k: int | None = None,
        features: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """One row per member known at ``as_of``, sorted by value at risk; reason codes (a JSON
        list) for the ``reasons_top`` members with the highest value at risk (None: all).
        ``features``: this scorer's ``features_for(dataset, as_of)`` when the caller already
        built them (they are the expensive part at scale)."""
        if features is None:
            features = self.features_for(dataset, as_of)
        scores = self.score_frame(features)
        order = np.argsort(-scores["value_at_risk"].to_numpy(), kind="stable")
        scores = scores.iloc[order].reset_index(drop=True)
        features = features.iloc[order].reset_index(drop=True)
        n = len(scores) if reasons_top is None else min(reasons_top, len(scores))
        codes: list[str] = [""] * len(scores)
        if n:
            listed = self.reasons(features.iloc[:n], top_k)
            for i, row in enumerate(listed):
                codes[i] = json.dumps(row)
        scores["reasons"] = codes
        scores["top_reason"] = [
            (json.loads(c)[0]["code"] if c and c != "[]" else "") for c in codes
        ]
        return scores
