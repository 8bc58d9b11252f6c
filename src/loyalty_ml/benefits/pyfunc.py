"""MLflow pyfunc wrapper: ``predict(features)`` returns ``BenefitMatcher.score`` rows."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd


class MatcherModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    def load_context(self, context: Any) -> None:
        from loyalty_ml.benefits.matcher import BenefitMatcher

        self.matcher = BenefitMatcher.load(context.artifacts["matcher"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return self.matcher.score(model_input)
