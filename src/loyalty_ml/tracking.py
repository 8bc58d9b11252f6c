"""MLflow conventions shared by every training job: where runs go, how models are named,
and the champion/challenger gate that decides whether a new model serves.

- One parent run per training job, one nested child per tuning trial (``child_run``).
- Registered model names carry the data set's name: ``<kind>-<dataset>`` (or ``--name``), so
  models trained on different shops never gate each other.
- A new version becomes ``champion`` only when it beats the current champion on the *same*
  evaluation slice by ``margin``; otherwise it becomes ``challenger`` and the decision says why.
  Nothing hard-codes a version: serving loads ``models:/<name>@champion``.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from loyalty_ml.settings import get_settings

CHAMPION = "champion"
CHALLENGER = "challenger"
log = logging.getLogger(__name__)


# Notices MLflow and its dependencies print on every model log that ask nothing of our users: the
# models are Python-object pyfuncs on purpose (their code ships with the package), their pip
# requirements are explicit (so MLflow's own pip lookup is unused), signatures are given where a
# frame goes in, and the deprecations are inside MLflow's and ibis' own code.
_BENIGN_MESSAGES = (
    "Passing a Python object as `python_model`",
    "Failed to resolve installed pip version",
    "An input example was not provided",
)


class _DropBenign(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in _BENIGN_MESSAGES)


def _quiet_benign_notices() -> None:
    for name in ("mlflow.pyfunc", "mlflow.utils.environment"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropBenign) for f in logger.filters):
            logger.addFilter(_DropBenign())
    warnings.filterwarnings("ignore", message="An input example was not provided")
    warnings.filterwarnings(
        "ignore", category=DeprecationWarning, module=r"(mlflow|ibis|sqlalchemy)(\.|$)"
    )


def configure_mlflow() -> str:
    """Point MLflow at this LOYALTY_HOME's tracking store; returns the tracking URI."""
    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_DESTINATION_CHECK", "false")
    # Progress bars and INFO chatter from MLflow drown the CLI's own progress and summaries.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for noisy in ("mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _quiet_benign_notices()
    uri = get_settings().tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def use_experiment(name: str) -> str:
    """Create (with artifacts under LOYALTY_HOME) or reuse an experiment; returns its id."""
    import mlflow

    configure_mlflow()
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        experiment_id = existing.experiment_id
    else:
        location = (get_settings().artifact_root / safe_name(name)).as_uri()
        experiment_id = mlflow.create_experiment(name, artifact_location=location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-").lower() or "dataset"


def registered_model_name(kind: str, dataset: str, override: str | None = None) -> str:
    """``churn-cdnow``; ``override`` (``--name``) wins."""
    return safe_name(override) if override else f"{kind}-{safe_name(dataset)}"


@contextmanager
def parent_run(experiment: str, run_name: str, tags: dict[str, str] | None = None) -> Iterator[Any]:
    import mlflow

    use_experiment(experiment)
    with mlflow.start_run(run_name=run_name, tags=tags or {}) as run:
        yield run


@contextmanager
def child_run(run_name: str, tags: dict[str, str] | None = None) -> Iterator[Any]:
    import mlflow

    with mlflow.start_run(run_name=run_name, nested=True, tags=tags or {}) as run:
        yield run


@dataclass(frozen=True)
class GateDecision:
    alias: str  # "champion" or "challenger"
    reason: str
    new_score: float
    champion_score: float | None
    version: str | None = None


def gate(
    new_score: float,
    champion_score: float | None,
    *,
    metric: str,
    margin: float,
    higher_is_better: bool = True,
) -> GateDecision:
    """Pure decision: does the new model beat the champion by at least ``margin``?"""
    if champion_score is None:
        return GateDecision(CHAMPION, "no current champion", new_score, None)
    delta = new_score - champion_score if higher_is_better else champion_score - new_score
    if delta >= margin:
        return GateDecision(
            CHAMPION,
            f"{metric} {new_score:.4f} beats champion {champion_score:.4f} by {delta:+.4f} (margin {margin})",
            new_score,
            champion_score,
        )
    return GateDecision(
        CHALLENGER,
        f"{metric} {new_score:.4f} vs champion {champion_score:.4f}: {delta:+.4f} < margin {margin}",
        new_score,
        champion_score,
    )


def register_and_gate(
    *,
    model_uri: str,
    name: str,
    metric: str,
    new_score: float,
    evaluate_champion: Callable[[str], float],
    margin: float,
    higher_is_better: bool = True,
    tags: dict[str, str] | None = None,
) -> GateDecision:
    """Register ``model_uri`` under ``name`` and set the alias the gate decides.

    ``evaluate_champion(model_uri)`` scores the current champion on the same evaluation slice the
    new model was scored on, so the comparison is like for like.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    configure_mlflow()
    client = mlflow.MlflowClient()
    champion_score: float | None = None
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        current = None
    if current is not None:
        champion_score = float(evaluate_champion(f"models:/{name}@{CHAMPION}"))
    decision = gate(
        new_score, champion_score, metric=metric, margin=margin, higher_is_better=higher_is_better
    )
    version = mlflow.register_model(model_uri, name, tags={**(tags or {}), metric: f"{new_score}"})
    client.set_registered_model_alias(name, decision.alias, version.version)
    client.set_model_version_tag(name, version.version, "gate_decision", decision.reason)
    log.info("model %s v%s -> %s: %s", name, version.version, decision.alias, decision.reason)
    return GateDecision(
        decision.alias, decision.reason, new_score, champion_score, version=version.version
    )


def champion_uri(name: str) -> str:
    return f"models:/{name}@{CHAMPION}"
