"""The monitoring report: one self-contained HTML file (plots embedded as base64 PNG) per batch
scoring run, under ``LOYALTY_HOME/reports/``, optionally logged to MLflow.

Plain string templates on purpose: no template engine dependency, and every value is escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loyalty_ml.monitoring.config import MonitoringConfig, load_monitoring_config
from loyalty_ml.monitoring.drift import (
    ROW_KEY_COLUMNS,
    calibration_summary,
    calibration_table,
    campaign_outcomes,
    drift_table,
    score_shift,
)


@dataclass
class MonitoringResult:
    path: Path
    drift: pd.DataFrame
    score: dict[str, float] | None
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)
    campaigns: pd.DataFrame = field(default_factory=pd.DataFrame)
    run_id: str | None = None

    @property
    def alerts(self) -> list[str]:
        return self.drift.loc[self.drift["status"] == "alert", "feature"].tolist()


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float = 7.0, height: float = 3.6) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")  # headless: reports are written by batch jobs and CI
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _drift_plot(table: pd.DataFrame, cfg: MonitoringConfig) -> str:
    top = table.dropna(subset=["psi"]).head(cfg.report.top_features).iloc[::-1]
    fig, ax = _figure(7.0, max(2.0, 0.28 * len(top) + 1))
    colors = top["status"].map({"ok": "#4c9a2a", "warn": "#e0a800", "alert": "#c0392b"})
    ax.barh(top["feature"].to_numpy(), top["psi"].to_numpy(), color=colors.tolist())
    ax.axvline(cfg.psi.warn, ls="--", c="#e0a800", lw=1)
    ax.axvline(cfg.psi.alert, ls="--", c="#c0392b", lw=1)
    ax.set_xlabel("PSI vs reference window")
    ax.set_title("Feature drift (worst first)")
    return _png(fig)


def _score_plot(ref: np.ndarray, cur: np.ndarray) -> str:
    fig, ax = _figure()
    edges = np.linspace(min(ref.min(), cur.min()), max(ref.max(), cur.max()), 31)
    ax.hist(ref, bins=edges, alpha=0.5, density=True, label="reference")
    ax.hist(cur, bins=edges, alpha=0.5, density=True, label="current")
    ax.set_xlabel("score")
    ax.set_ylabel("density")
    ax.legend()
    ax.set_title("Score distribution")
    return _png(fig)


def _calibration_plot(table: pd.DataFrame) -> str:
    fig, ax = _figure(5.0, 4.5)
    for cohort, part in table.groupby("cohort"):
        ax.errorbar(
            part["predicted"],
            part["realised"],
            yerr=[
                part["realised"] - part["realised_low"],
                part["realised_high"] - part["realised"],
            ],
            marker="o",
            ms=4,
            lw=1,
            capsize=2,
            label=str(cohort),
        )
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    ax.set_xlabel("mean predicted churn")
    ax.set_ylabel("realised churn")
    ax.set_title("Matured cohorts: predicted vs realised")
    ax.legend(fontsize=7)
    return _png(fig)


def _campaign_plot(table: pd.DataFrame) -> str:
    fig, ax = _figure()
    x = np.arange(len(table))
    mid = table["realised_uplift"].to_numpy()
    err = np.vstack([mid - table["ci_low"].to_numpy(), table["ci_high"].to_numpy() - mid])
    ax.errorbar(x, mid, yerr=err, fmt="o", capsize=3, label="realised (95% CI)")
    ax.scatter(x, table["expected_uplift"].to_numpy(), marker="x", c="#c0392b", label="expected")
    ax.axhline(0, c="grey", lw=1)
    ax.set_xticks(x, table["campaign"].astype(str), rotation=20)
    ax.set_ylabel("incremental outcome")
    ax.legend()
    ax.set_title("Campaign outcomes vs expected uplift")
    return _png(fig)


def _html_table(frame: pd.DataFrame, max_rows: int = 50) -> str:
    shown = frame.head(max_rows).copy()
    for col in shown.select_dtypes("float").columns:
        shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in shown.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px}"
    "th{background:#f4f4f4}.alert{color:#c0392b;font-weight:bold}.ok{color:#4c9a2a}"
)


def run_monitoring(
    reference_features: pd.DataFrame,
    current_features: pd.DataFrame,
    scores_ref: pd.Series | np.ndarray | None = None,
    scores_cur: pd.Series | np.ndarray | None = None,
    out_dir: Path | str | None = None,
    *,
    matured: pd.DataFrame | None = None,
    campaigns: pd.DataFrame | None = None,
    title: str = "Batch scoring monitoring",
    name: str | None = None,
    config: MonitoringConfig | None = None,
    log_to_mlflow: bool | None = None,
) -> MonitoringResult:
    """Write the HTML report and return where it is plus the tables behind it.

    ``matured``: rows (cohort, score, churned) of members scored at least one label horizon ago;
    ``campaigns``: rows (campaign, treated, outcome, expected_uplift). Both optional.
    ``result.path`` is the HTML file; ``monitoring_report`` returns just that path.
    """
    from loyalty_ml.settings import get_settings

    cfg = config or load_monitoring_config()
    drift = drift_table(
        reference_features,
        current_features,
        cfg.psi.bins,
        warn=cfg.psi.warn,
        alert=cfg.psi.alert,
        max_categories=cfg.psi.max_categories,
        exclude=(*ROW_KEY_COLUMNS, *cfg.psi.exclude),
    )
    sections: list[str] = []
    n_alert = int((drift["status"] == "alert").sum())
    n_warn = int((drift["status"] == "warn").sum())
    sections.append(
        f"<h2>Feature drift</h2><p>{len(drift)} features; "
        f"<span class='alert'>{n_alert} alert</span> (PSI &ge; {cfg.psi.alert}), "
        f"{n_warn} warn (PSI &ge; {cfg.psi.warn}). Reference rows {len(reference_features)}, "
        f"current rows {len(current_features)}.</p>"
    )
    if not drift.empty:
        sections.append(f"<img src='data:image/png;base64,{_drift_plot(drift, cfg)}'>")
        sections.append(_html_table(drift))
    score = None
    if scores_ref is not None and scores_cur is not None:
        score = score_shift(scores_ref, scores_cur, cfg.psi.bins)
        ref = pd.Series(scores_ref, dtype=float).dropna().to_numpy()
        cur = pd.Series(scores_cur, dtype=float).dropna().to_numpy()
        sections.append("<h2>Score distribution shift</h2>")
        sections.append(_html_table(pd.DataFrame([score])))
        sections.append(f"<img src='data:image/png;base64,{_score_plot(ref, cur)}'>")
    cal = pd.DataFrame()
    if matured is not None and not matured.empty:
        cal = calibration_table(matured, bins=cfg.calibration.bins)
        summary = calibration_summary(cal)
        summary["off"] = (
            summary["predicted"] - summary["realised"]
        ).abs() > cfg.calibration.max_gap
        sections.append("<h2>Realised vs predicted churn (matured cohorts)</h2>")
        sections.append(_html_table(summary))
        sections.append(f"<img src='data:image/png;base64,{_calibration_plot(cal)}'>")
    camp = pd.DataFrame()
    if campaigns is not None and not campaigns.empty:
        camp = campaign_outcomes(campaigns)
        if not camp.empty:
            sections.append("<h2>Campaign outcomes vs expected uplift</h2>")
            sections.append(_html_table(camp))
            sections.append(f"<img src='data:image/png;base64,{_campaign_plot(camp)}'>")
    stamp = pd.Timestamp.now(tz="UTC")
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>Generated {stamp.isoformat(timespec='seconds')}</p>{''.join(sections)}</body></html>"
    )
    folder = Path(out_dir) if out_dir else get_settings().path(cfg.report.dir, ".keep").parent
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name or 'monitoring-' + stamp.strftime('%Y%m%dT%H%M%S')}.html"
    path.write_text(page, encoding="utf-8")
    drift.to_csv(path.with_suffix(".drift.csv"), index=False)
    result = MonitoringResult(path, drift, score, cal, camp)
    if log_to_mlflow if log_to_mlflow is not None else cfg.report.log_to_mlflow:
        result.run_id = _log(result, cfg)
    return result


def _log(result: MonitoringResult, cfg: MonitoringConfig) -> str:
    import mlflow

    from loyalty_ml.tracking import use_experiment

    use_experiment(cfg.report.experiment)
    with mlflow.start_run(run_name=result.path.stem) as run:
        mlflow.log_metric("psi_max", float(result.drift["psi"].max()) if len(result.drift) else 0.0)
        mlflow.log_metric("n_alert", float(len(result.alerts)))
        if result.score:
            mlflow.log_metrics({f"score_{k}": float(v) for k, v in result.score.items()})
        mlflow.log_artifact(str(result.path), "monitoring")
        mlflow.log_text(json.dumps(result.alerts), "monitoring/alerts.json")
        return str(run.info.run_id)


def monitoring_report(
    reference_features: pd.DataFrame,
    current_features: pd.DataFrame,
    scores_ref: pd.Series | np.ndarray | None = None,
    scores_cur: pd.Series | np.ndarray | None = None,
    out_dir: Path | str | None = None,
    **kwargs: Any,
) -> Path:
    """``run_monitoring(...)`` returning only the HTML path (what the demo prints)."""
    return run_monitoring(
        reference_features, current_features, scores_ref, scores_cur, out_dir, **kwargs
    ).path
