"""Monitoring: PSI on known shifts, drift table, calibration, campaign outcomes, HTML report."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loyalty_ml.monitoring import (
    calibration_summary,
    calibration_table,
    campaign_outcomes,
    drift_table,
    load_monitoring_config,
    monitoring_report,
    psi,
    run_monitoring,
    score_shift,
)

RNG = np.random.default_rng(0)
REF = RNG.normal(0, 1, 50_000)


def test_psi_zero_for_same_distribution() -> None:
    same = np.random.default_rng(1).normal(0, 1, 50_000)
    assert psi(REF, REF) == pytest.approx(0.0, abs=1e-12)
    assert psi(REF, same) < 0.005


def test_psi_known_value_for_mean_shift_and_monotone() -> None:
    # Theory for N(0,1) -> N(d,1): PSI -> d^2 with fine bins (KL both ways); 10 deciles give a
    # bit less. d = 0.5 -> ~0.23, d = 1 -> ~0.9.
    values = [psi(REF, REF + d) for d in (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in itertools.pairwise(values))
    assert 0.18 < values[3] < 0.28
    assert 0.75 < values[4] < 1.1
    assert values[1] < 0.02


def test_psi_constants_nan_and_categoricals() -> None:
    const = np.zeros(1000)
    assert psi(const, const) == pytest.approx(0.0)
    assert psi(const, np.ones(1000)) > 1.0  # everything moved above the only cut: none -> all
    with_nan = np.where(np.arange(1000) % 10 == 0, np.nan, REF[:1000])
    assert psi(with_nan, with_nan) == pytest.approx(0.0)
    more_nan = np.where(np.arange(1000) % 2 == 0, np.nan, REF[:1000])
    assert psi(with_nan, more_nan) > 0.25  # 10% -> 50% missing is a major shift
    cats = pd.Series(["a"] * 500 + ["b"] * 500)
    assert psi(cats, cats) == pytest.approx(0.0)
    assert psi(cats, pd.Series(["a"] * 900 + ["b"] * 100)) > 0.25
    assert psi(cats, pd.Series(["c"] * 1000)) > 1.0  # unseen level lands in "other"
    assert np.isnan(psi(np.array([]), REF))
    stamps = pd.Series(pd.date_range("2026-01-01", periods=1000, freq="h", tz="UTC"))
    assert psi(stamps, stamps) == pytest.approx(0.0)
    assert psi(stamps, stamps + pd.Timedelta(days=60)) > 1.0
    assert psi(pd.Series(["a", None] * 50), pd.Series(["a", None] * 50)) == pytest.approx(0.0)


def test_drift_table_orders_and_flags() -> None:
    rng = np.random.default_rng(2)
    ref = pd.DataFrame({"member_id": range(5000), "x": rng.normal(size=5000)})
    ref["y"] = rng.exponential(size=5000)
    ref["tier"] = rng.choice(["silver", "gold"], 5000)
    cur = ref.copy()
    cur["x"] = cur["x"] + 1.0
    cur["y"] = rng.exponential(size=5000)
    table = drift_table(ref, cur)
    assert table.loc[0, "feature"] == "x" and table.loc[0, "status"] == "alert"
    assert set(table["feature"]) == {"x", "y", "tier"}
    assert (table.set_index("feature").loc[["y", "tier"], "status"] == "ok").all()


def test_drift_table_leaves_out_keys_and_row_timestamps() -> None:
    # Two scoring windows always differ in their row timestamps; that is not feature drift.
    ref = pd.DataFrame(
        {
            "member_id": ["a", "b", "c", "d"] * 50,
            "event_timestamp": pd.Timestamp("2026-01-01", tz="UTC"),
            "x": np.arange(200.0),
        }
    )
    cur = ref.assign(event_timestamp=pd.Timestamp("2026-06-01", tz="UTC"))
    assert drift_table(ref, cur)["feature"].tolist() == ["x"]
    assert drift_table(ref, cur, exclude=("member_id", "x"))["feature"].tolist() == [
        "event_timestamp"
    ]


def test_score_shift_and_calibration_matured_cohorts() -> None:
    rng = np.random.default_rng(3)
    p = rng.beta(2, 5, 8000)
    y = rng.random(8000) < p
    shift = score_shift(p, np.clip(p + 0.1, 0, 1))
    assert shift["psi"] > 0.1 and shift["cur_mean"] > shift["ref_mean"]
    matured = pd.DataFrame({"cohort": "2026-01", "score": p, "churned": y.astype(float)})
    # A second cohort whose model over-predicts by 0.15.
    over = matured.assign(cohort="2026-02", score=np.clip(p + 0.15, 0, 1))
    table = calibration_table(pd.concat([matured, over]))
    summary = calibration_summary(table).set_index("cohort")
    assert summary.loc["2026-01", "ece"] < 0.02
    assert summary.loc["2026-02", "ece"] > 0.12
    good = table[table["cohort"] == "2026-01"]
    inside = (good["realised_low"] <= good["predicted"]) & (
        good["predicted"] <= good["realised_high"]
    )
    assert inside.mean() >= 0.7


def test_campaign_outcomes_vs_expected() -> None:
    rng = np.random.default_rng(4)
    n = 20_000
    treated = rng.random(n) < 0.8
    outcome = rng.random(n) < 0.10 + 0.03 * treated
    frame = pd.DataFrame(
        {
            "campaign": np.where(np.arange(n) % 2 == 0, "recall", "winback"),
            "treated": treated,
            "outcome": outcome.astype(float),
            "expected_uplift": np.where(np.arange(n) % 2 == 0, 0.03, 0.10),
        }
    )
    table = campaign_outcomes(frame).set_index("campaign")
    assert table.loc["recall", "consistent"]
    assert not table.loc["winback", "consistent"]  # promised 10 points, delivered 3


def test_report_html_with_plots(loyalty_home: Path) -> None:
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"a": rng.normal(size=3000), "b": rng.choice(["x", "y"], 3000)})
    cur = ref.assign(a=ref["a"] + 0.8)
    matured = pd.DataFrame({"cohort": "c1", "score": rng.random(3000)})
    matured["churned"] = (rng.random(3000) < matured["score"]).astype(float)
    camp = pd.DataFrame(
        {
            "campaign": "recall",
            "treated": rng.random(3000) < 0.8,
            "outcome": rng.random(3000),
            "expected_uplift": 0.0,
        }
    )
    result = run_monitoring(
        ref, cur, rng.random(3000), rng.random(3000) ** 2, matured=matured, campaigns=camp, name="t"
    )
    assert result.path == loyalty_home.resolve() / "reports" / "t.html"
    page = result.path.read_text()
    assert page.count("data:image/png;base64,") == 4
    assert "Feature drift" in page and "Campaign outcomes" in page
    assert result.alerts == ["a"]
    assert result.path.with_suffix(".drift.csv").exists()
    path = monitoring_report(ref, ref, out_dir=loyalty_home / "r2", name="plain")
    assert path.exists() and "Score distribution" not in path.read_text()


@pytest.mark.slow  # MLflow's SQLite store setup dominates (tens of seconds on a busy box)
def test_report_logs_to_mlflow(loyalty_home: Path) -> None:
    import mlflow

    ref = pd.DataFrame({"a": np.arange(200.0)})
    result = run_monitoring(ref, ref + 50, name="logged", log_to_mlflow=True)
    assert result.run_id
    run = mlflow.get_run(result.run_id)
    assert run.data.metrics["n_alert"] == 1.0
    assert load_monitoring_config().psi.alert == 0.25


@pytest.mark.slow  # trains a small churn model first
def test_scoring_report_on_simulator(loyalty_home: Path) -> None:
    from loyalty_ml.churn.config import load_churn_config
    from loyalty_ml.churn.job import train_churn
    from loyalty_ml.churn.scorer import ChurnScorer
    from loyalty_ml.monitoring import scoring_report
    from loyalty_ml.simulate import load_config, simulate

    dataset, _ = simulate(load_config(members=600, days=240, seed=2))
    cfg = load_churn_config().with_overrides(
        **{"snapshots.n_train": 2, "lightgbm.num_boost_round": 30, "label.horizon_days": 60}
    )
    res = train_churn(
        dataset,
        None,
        cfg,
        provider="builtin",
        track=False,
        register=False,
        backtest=False,
        plots=False,
    )
    scorer = ChurnScorer(res.model)
    result = scoring_report(dataset, scorer, horizon_days=60, name="batch")
    page = result.path.read_text()
    assert "Realised vs predicted churn" in page and "Score distribution" in page
    assert not result.calibration.empty and result.score is not None

    # `loyalty score` hands over the features it already built: same report, built once.
    built = scorer.features_for(dataset)
    calls: list[object] = []
    original = scorer.features_for

    def counting(ds: object, at: object = None) -> pd.DataFrame:
        calls.append(at)
        return original(ds, at)

    scorer.features_for = counting  # type: ignore[method-assign]
    reused = scoring_report(
        dataset, scorer, horizon_days=60, name="batch-reused", current_features=built
    )
    assert dataset.latest_timestamp() not in calls
    pd.testing.assert_frame_equal(reused.drift, result.drift)
    assert reused.score == result.score
