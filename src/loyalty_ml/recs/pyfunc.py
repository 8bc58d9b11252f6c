"""MLflow packaging: the serving bundle as a pyfunc model (``Recommender.load`` reads it back)."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import pandas as pd


class RecommenderPyfunc(mlflow.pyfunc.PythonModel):
    """``predict`` takes rows of member_id (and optional n, context) → member_id, rank, product_id,
    score."""

    def load_context(self, context) -> None:
        from loyalty_ml.recs.serving import Recommender

        self.recommender = Recommender.load(context.artifacts["bundle"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        params = params or {}
        n = int(params.get("n", 10))
        ctx = str(params.get("context", "home"))
        return self.recommender.recommend_batch(
            model_input["member_id"].astype(str).tolist(), n, ctx
        )


def log_recommender(bundle_dir: Path | str, artifact_path: str = "model") -> str:
    """Log the bundle under the active run; returns the model URI to register."""
    info = mlflow.pyfunc.log_model(
        name=artifact_path,
        python_model=RecommenderPyfunc(),
        artifacts={"bundle": str(bundle_dir)},
        pip_requirements=["loyalty-ml", "numpy", "scipy", "pandas"],
    )
    return info.model_uri
