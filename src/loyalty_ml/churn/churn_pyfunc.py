"""MLflow pyfunc wrapper: ``predict(features_frame)`` -> the batch score frame."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd


class ChurnPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        from loyalty_ml.churn.model import ChurnModel

        self.model = ChurnModel.load(context.artifacts["churn_model"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return self.model.score_frame(model_input)
