"""One-call monitoring for a batch churn scoring run: features and scores now vs the training
window, plus calibration of the cohort scored one label horizon ago (now matured)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from loyalty_ml.monitoring.report import MonitoringResult, run_monitoring


def scoring_report(
    dataset: Any,
    scorer: Any,
    as_of: object | None = None,
    *,
    reference_as_of: object | None = None,
    horizon_days: int = 90,
    out_dir: Path | str | None = None,
    campaigns: pd.DataFrame | None = None,
    contact_log: Any = None,
    name: str | None = None,
    log_to_mlflow: bool | None = None,
    current_features: pd.DataFrame | None = None,
) -> MonitoringResult:
    """``scorer`` is a ``ChurnScorer``. Reference = features/scores at ``reference_as_of``
    (default: the model's training cut-off when known, else one horizon before ``as_of``).
    ``contact_log``: campaign outcomes vs expected uplift come from its campaigns whose outcomes
    are attached (unless ``campaigns`` is given). ``current_features``: the scorer's features at
    ``as_of`` when the caller already built them (``loyalty score`` does), so they are not
    rebuilt."""
    from loyalty_ml.churn.labels import build_labels
    from loyalty_ml.timeutil import to_utc

    now = to_utc(as_of) if as_of is not None else dataset.latest_timestamp()
    ref_t = to_utc(reference_as_of) if reference_as_of is not None else None
    if ref_t is None:
        trained = getattr(getattr(scorer, "model", None), "as_of", None)
        ref_t = to_utc(trained) if trained is not None and to_utc(trained) < now else None
    if ref_t is None:
        ref_t = now - pd.Timedelta(days=horizon_days)
    ref_features = scorer.features_for(dataset, ref_t)
    cur_features = (
        current_features if current_features is not None else scorer.features_for(dataset, now)
    )
    ref_scores = scorer.score_frame(ref_features)
    cur_scores = scorer.score_frame(cur_features)
    matured = None
    cohort_t = now - pd.Timedelta(days=horizon_days)
    labels = build_labels(dataset, cohort_t, horizon_days).frame
    if len(labels):
        past = (
            ref_scores
            if cohort_t == ref_t
            else scorer.score_frame(scorer.features_for(dataset, cohort_t))
        )
        labels = labels.assign(member_id=labels["member_id"].astype("string"))
        matured = past.merge(labels[["member_id", "churned"]], on="member_id").rename(
            columns={"churn_probability": "score"}
        )
        matured["cohort"] = str(cohort_t.date())
    if campaigns is None and contact_log is not None:
        from loyalty_ml.monitoring.campaigns import campaign_outcomes_frame

        found = campaign_outcomes_frame(contact_log)
        campaigns = found if len(found) else None
    return run_monitoring(
        ref_features,
        cur_features,
        ref_scores["churn_probability"],
        cur_scores["churn_probability"],
        out_dir,
        matured=matured,
        campaigns=campaigns,
        title=f"Churn scoring {now.date()} vs reference {ref_t.date()}",
        name=name,
        log_to_mlflow=log_to_mlflow,
    )
