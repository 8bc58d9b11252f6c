"""Champion/challenger gate: pure decision and the real MLflow registry, both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from loyalty_ml.tracking import (
    CHALLENGER,
    CHAMPION,
    gate,
    parent_run,
    register_and_gate,
    registered_model_name,
)


@pytest.mark.parametrize(
    ("new", "champion", "higher", "expected"),
    [
        (0.80, None, True, CHAMPION),
        (0.80, 0.79, True, CHAMPION),
        (0.794, 0.79, True, CHALLENGER),
        (0.78, 0.79, True, CHALLENGER),
        (0.10, 0.12, False, CHAMPION),
        (0.119, 0.12, False, CHALLENGER),
    ],
)
def test_gate_decision(new: float, champion: float | None, higher: bool, expected: str) -> None:
    decision = gate(new, champion, metric="m", margin=0.005, higher_is_better=higher)
    assert decision.alias == expected
    assert decision.reason


def test_registered_names_carry_the_dataset() -> None:
    assert registered_model_name("churn", "CDNOW data") == "churn-cdnow-data"
    assert registered_model_name("churn", "cdnow", override="Shop A") == "shop-a"


def _log_constant_model(score: float) -> str:
    import mlflow

    class Constant(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            return [score] * len(model_input)

    info = mlflow.pyfunc.log_model(name="model", python_model=Constant(), pip_requirements=[])
    return info.model_uri


def test_register_and_gate_moves_champion_only_when_better(loyalty_home: Path) -> None:
    import mlflow

    scores_by_uri: dict[str, float] = {}
    name = registered_model_name("churn", "fixture")

    def evaluate_champion(uri: str) -> float:
        client = mlflow.MlflowClient()
        version = client.get_model_version_by_alias(name, CHAMPION)
        return scores_by_uri[version.version]

    decisions = []
    for score in (0.70, 0.72, 0.721):
        with parent_run("test-gate", f"score-{score}"):
            uri = _log_constant_model(score)
            decision = register_and_gate(
                model_uri=uri,
                name=name,
                metric="auc",
                new_score=score,
                evaluate_champion=evaluate_champion,
                margin=0.005,
            )
        scores_by_uri[decision.version] = score
        decisions.append(decision)

    assert [d.alias for d in decisions] == [CHAMPION, CHAMPION, CHALLENGER]
    client = mlflow.MlflowClient()
    assert client.get_model_version_by_alias(name, CHAMPION).version == decisions[1].version
    assert client.get_model_version_by_alias(name, CHALLENGER).version == decisions[2].version
    assert "margin" in decisions[2].reason
