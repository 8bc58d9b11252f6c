"""Monitoring of batch scoring runs: feature drift (PSI), score shift, calibration of matured
cohorts, campaign outcomes vs expected uplift, written as an HTML report (``monitoring_report``).
"""

from loyalty_ml.monitoring.campaigns import campaign_outcomes_frame
from loyalty_ml.monitoring.config import MonitoringConfig, load_monitoring_config
from loyalty_ml.monitoring.drift import (
    calibration_summary,
    calibration_table,
    campaign_outcomes,
    drift_table,
    psi,
    psi_edges,
    score_shift,
)
from loyalty_ml.monitoring.report import MonitoringResult, monitoring_report, run_monitoring
from loyalty_ml.monitoring.scoring import scoring_report

__all__ = [
    "MonitoringConfig",
    "MonitoringResult",
    "calibration_summary",
    "calibration_table",
    "campaign_outcomes",
    "campaign_outcomes_frame",
    "drift_table",
    "load_monitoring_config",
    "monitoring_report",
    "psi",
    "psi_edges",
    "run_monitoring",
    "score_shift",
    "scoring_report",
]
