"""``loyalty pipeline``: features + every model the data supports, in one tracked run.

Wiring only: each stage calls the job that owns it (features, churn, recs, benefits). A stage the
data cannot support (e.g. no ``offers`` for benefit matching) is skipped with the reason; a stage
that fails is reported and the others still run, so one bad table never hides the rest.
The manifest it writes (``LOYALTY_HOME/pipeline.json``) is what ``loyalty serve`` starts from.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loyalty_ml.errors import LoyaltyError, MissingDataError
from loyalty_ml.settings import get_settings

if TYPE_CHECKING:  # not at import: `loyalty serve` reads the manifest without loading pandas
    import pandas as pd

    from loyalty_ml.contract.io import Dataset

STAGES = ("features", "churn", "recs", "benefits")
MANIFEST_NAME = "pipeline.json"


@dataclass
class StageResult:
    stage: str
    status: str  # "done", "skipped" or "failed"
    detail: str = ""
    seconds: float = 0.0
    model_name: str | None = None
    model_version: str | None = None
    alias: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class PipelineResult:
    dataset: str
    data_dir: str
    as_of: str
    stages: list[StageResult]
    finished_at: str = ""

    @property
    def ok(self) -> bool:
        return all(s.status != "failed" for s in self.stages)

    def stage(self, name: str) -> StageResult | None:
        return next((s for s in self.stages if s.stage == name), None)

    def models(self) -> dict[str, str]:
        return {s.stage: s.model_name for s in self.stages if s.model_name and s.status == "done"}


def manifest_path() -> Path:
    return get_settings().path(MANIFEST_NAME)


def read_manifest() -> dict[str, Any] | None:
    """The last pipeline run under LOYALTY_HOME, or None."""
    path = manifest_path()
    return json.loads(path.read_text()) if path.is_file() else None


def write_manifest(result: PipelineResult) -> Path:
    path = manifest_path()
    payload = asdict(result)
    payload["models"] = result.models()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    tmp.replace(path)  # atomic: a reader never sees half a manifest
    return path


def _stage_features(dataset: Dataset, as_of: pd.Timestamp, **_: Any) -> StageResult:
    from loyalty_ml.features.materialize import materialize
    from loyalty_ml.features.store import apply_repo, open_store
    from loyalty_ml.features.tables import write_feature_tables

    manifest = write_feature_tables(dataset, [as_of])
    apply_repo()
    report = materialize(open_store(), as_of, engine="fast")
    absent = f"; absent: {', '.join(manifest.absent)}" if manifest.absent else ""
    return StageResult(
        "features",
        "done",
        f"{len(manifest.tables)} feature views, online store {report.online_store}{absent}",
        metrics={k: float(v) for k, v in report.rows.items()},
    )


def _stage_churn(
    dataset: Dataset, as_of: pd.Timestamp, trials: int | None, name: str | None
) -> StageResult:
    from loyalty_ml.churn.job import train_churn

    result = train_churn(dataset, as_of, trials=trials or 0, name=name and f"churn-{name}")
    return StageResult(
        "churn",
        "done",
        result.gate_reason or "",
        model_name=result.model_name,
        model_version=result.model_version,
        alias=result.gate_alias,
        metrics={k: float(v) for k, v in result.gate_metrics.items() if v is not None},
    )


def _stage_recs(
    dataset: Dataset, as_of: pd.Timestamp, trials: int | None, name: str | None
) -> StageResult:
    from loyalty_ml.recs.train import train_recs

    if dataset.order_items is None and dataset.events is None:
        raise MissingDataError("recommendations need order_items or events")
    result = train_recs(dataset, as_of, trials=trials, name=name and f"recs-{name}")
    blend = result.metrics.get("blend") or next(iter(result.metrics.values()), {})
    return StageResult(
        "recs",
        "done",
        result.gate_decision or "",
        model_name=result.model_name,
        model_version=result.model_version,
        alias=result.gate_alias,
        metrics={k: float(v) for k, v in blend.items()},
    )


def _stage_benefits(
    dataset: Dataset, as_of: pd.Timestamp, trials: int | None, name: str | None
) -> StageResult:
    from loyalty_ml.benefits.train import train_benefits

    if dataset.offers is None:
        raise MissingDataError("benefit matching needs the offers table")
    result = train_benefits(dataset, as_of, trials=trials, name=name and f"benefits-{name}")
    gate = result.gate
    return StageResult(
        "benefits",
        "done",
        f"{result.objective_reason}; learner {result.learner}"
        + (f"; {gate.reason}" if gate is not None else ""),
        model_name=result.model_name,
        model_version=getattr(gate, "version", None),
        alias=getattr(gate, "alias", None),
        metrics={k: float(v) for k, v in result.metrics.items()},
    )


STAGE_FUNCTIONS: dict[str, Callable[..., StageResult]] = {
    "features": _stage_features,
    "churn": _stage_churn,
    "recs": _stage_recs,
    "benefits": _stage_benefits,
}


def run_pipeline(
    dataset: Dataset,
    data_dir: Path | str,
    *,
    as_of: object | None = None,
    trials: int | None = None,
    name: str | None = None,
    stages: tuple[str, ...] = STAGES,
    on_stage: Callable[[str], None] | None = None,
) -> PipelineResult:
    """Run ``stages`` in order on a validated ``dataset`` and write the serving manifest."""
    from loyalty_ml.timeutil import to_utc

    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise LoyaltyError(f"unknown pipeline stage(s) {', '.join(unknown)}; known: {STAGES}")
    t = to_utc(as_of) if as_of is not None else dataset.latest_timestamp()
    results: list[StageResult] = []
    for stage in stages:
        if on_stage:
            on_stage(stage)
        started = time.perf_counter()
        try:
            outcome = STAGE_FUNCTIONS[stage](dataset, t, trials=trials, name=name)
        except MissingDataError as exc:
            outcome = StageResult(stage, "skipped", str(exc))
        except LoyaltyError as exc:
            outcome = StageResult(stage, "failed", str(exc))
        except Exception as exc:  # a bug in one stage must not hide the others' results
            outcome = StageResult(
                stage, "failed", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"
            )
        outcome.seconds = time.perf_counter() - started
        results.append(outcome)
    result = PipelineResult(
        dataset=dataset.name,
        data_dir=str(Path(data_dir).resolve()),
        as_of=t.isoformat(),
        stages=results,
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    write_manifest(result)
    return result
