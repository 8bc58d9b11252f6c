"""Churn benchmarks: CDNOW (headline, vs recency / RFM / BG/NBD in one run), the simulator
(AUC vs the true churn probability, reason-code agreement with the planted cause) and speed
(training on 1M member snapshots, batch scoring of 1M members, reason codes for the top 50k).

    python -m benchmarks churn                 # all parts
    python -m benchmarks churn --only=cdnow    # cdnow | sim | speed (comma-separated)
    python -m benchmarks churn --sim-members=200000
    python -m benchmarks churn --quick         # 5k simulator, 200k speed rows (a smoke run)
    python -m benchmarks churn --out=PATH      # write the report there (default results/churn.md)

Run under the shared lock: ``flock /tmp/loyalty-heavy.lock uv run python -m benchmarks churn``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import SHARED_DATA, markdown_table, peak_rss_mb, save, timed

RESULTS_MD = Path(__file__).resolve().parent / "results" / "churn.md"


def _arg(argv: list[str], name: str, default: str) -> str:
    for a in argv:
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return default


def _loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def _metric_rows(
    metrics: dict[str, dict[str, float]], keys: tuple[str, ...]
) -> list[dict[str, Any]]:
    rows = []
    for name, m in metrics.items():
        rows.append({"scorer": name, **{k: m.get(k, float("nan")) for k in keys}})
    return rows


KEYS = (
    "auc",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
    "lift_10",
    "capture_10",
    "lift_20",
    "capture_20",
)


def bench_cdnow(report: list[str], payload: dict[str, Any], trials: int = 0) -> None:
    from loyalty_ml.churn.baselines import BASELINES, PROBABILISTIC, baseline_scores
    from loyalty_ml.churn.cdnow import CUTOFF, HOLDOUT_END, read_cdnow_master
    from loyalty_ml.churn.config import load_churn_config
    from loyalty_ml.churn.job import train_churn
    from loyalty_ml.churn.labels import build_labels
    from loyalty_ml.churn.metrics import churn_metrics

    path = SHARED_DATA / "cdnow" / "CDNOW_master.txt"
    if not path.exists():
        report.append(f"CDNOW skipped: {path} not found")
        return
    full = read_cdnow_master(path)
    known = full.as_of(CUTOFF)  # the only data the model and the baselines see
    cfg = load_churn_config().with_overrides(
        **{"label.horizon_days": 90, "snapshots.spacing_days": 15, "snapshots.n_train": 6}
    )
    timings: dict[str, float] = {}
    with timed("train", timings):
        result = train_churn(known, CUTOFF, cfg, trials, provider="builtin", track=False)
    with timed("score", timings):
        model = result.model
        feats = model.meta  # noqa: F841 (documented in the artifact)
        from loyalty_ml.churn.features import rfm_features

        at_cutoff = rfm_features(known, CUTOFF)
        p = model.predict_proba(at_cutoff)
    labels = build_labels(full, CUTOFF, 273, data_end=HOLDOUT_END).frame
    frame = at_cutoff[["member_id"]].assign(model=p).merge(labels, on="member_id")
    base = baseline_scores(known, CUTOFF, 273)
    frame = frame.merge(base, on="member_id")
    y = frame["churned"].to_numpy()
    holdout = {
        "model (90-day probability)": churn_metrics(
            y, frame["model"].to_numpy(), probabilities=False
        )
    }
    for name in BASELINES:
        holdout[name] = churn_metrics(
            y, frame[name].to_numpy(), probabilities=name in PROBABILISTIC
        )
    strongest = max((holdout[n]["auc"], n) for n in BASELINES)
    payload["cdnow_holdout"] = holdout
    payload["cdnow_backtest_90d"] = result.backtest
    payload["cdnow_timings"] = timings
    report += [
        "## CDNOW (full cohort, 23,570 members)",
        "",
        "Protocol: features from data up to 1997-09-30 (inclusive); label = no purchase "
        "1997-10-01…1998-06-30 (273 days). The model is trained only on information available "
        "by 1997-09-30: a 90-day label at rolling origins 15 days apart "
        f"({', '.join(o[:10] for o in result.model.meta['train_origins'])}), isotonic "
        f"calibration on the later origin {result.model.meta['calibration_origin'][:10]} (label "
        "window ends 1997-09-30), then the members are ranked at 1997-09-30 for the 273-day "
        "holdout. Features: built-in RFM family + BG/NBD posterior summaries, each fitted point in "
        "time. Baselines are computed in the same run on the same members (BG/NBD fitted on the "
        "calibration period, horizon 273 days).",
        "",
        f"Optuna trials: {trials} (time-series folds over the training origins; best "
        f"{result.best_params or 'config defaults'}).",
        "",
        f"Churn rate in the holdout {y.mean():.3f}; training rows {result.n_rows['train']}; "
        f"train job {timings['train']:.1f} s, score {timings['score']:.1f} s (2 vCPU shared with "
        f"other jobs; load average {' '.join(_loadavg())} at the end).",
        "",
        "### 273-day holdout (ranking; the model's probability is for 90 days, so ECE is not "
        "judged here)",
        "",
        markdown_table(_metric_rows(holdout, KEYS)),
        "",
        f"Strongest baseline: {strongest[1]} (AUC {strongest[0]:.4f}); model − strongest = "
        f"{holdout['model (90-day probability)']['auc'] - strongest[0]:+.4f}.",
        "",
        *_value_check(full, known),
        "### Calibration where the label matches the trained horizon: 90-day label at the earlier "
        "cutoff 1997-07-02 (backtest: model trained and calibrated on data up to 1997-07-02 only)",
        "",
        markdown_table(_metric_rows(result.backtest, KEYS)),
        "",
    ]


def _value_check(full: Any, known: Any) -> list[str]:
    """Value model choice, measured: BG/NBD x Gamma-Gamma vs the naive past spend rate, against
    the actual holdout spend (273 days) of every member."""
    from scipy.stats import spearmanr

    from loyalty_ml.churn import bgnbd
    from loyalty_ml.churn.cdnow import CUTOFF, HOLDOUT_END
    from loyalty_ml.churn.features import _days, bgnbd_inputs, order_summary

    s = order_summary(known, CUTOFF)
    x, t_x, T = bgnbd_inputs(s, CUTOFF)
    params = bgnbd.fit_bgnbd(x, t_x, T)
    n_days = s["n_days"].to_numpy(float)
    avg = s["spend"].to_numpy(float) / np.maximum(s["n_orders"].to_numpy(float), 1)
    gg = bgnbd.fit_gamma_gamma(n_days, avg)
    model = bgnbd.expected_transactions(
        params, 39.0, x, t_x, T
    ) * bgnbd.expected_spend_per_transaction(gg, n_days, avg)
    span = np.maximum(_days(CUTOFF - s["first_order"]) + 1, 1)
    naive = s["spend"].to_numpy(float) / span * 273
    o = full.orders
    hold = o[(o["ordered_at"] > CUTOFF) & (o["ordered_at"] <= HOLDOUT_END)]
    actual = s["member_id"].map(hold.groupby("member_id")["amount"].sum()).fillna(0).to_numpy()
    rows = []
    for name, pred in (("BG/NBD x Gamma-Gamma", model), ("naive past spend rate", naive)):
        rows.append(
            {
                "value model": name,
                "spearman": float(spearmanr(pred, actual).statistic),
                "mae": float(np.mean(np.abs(pred - actual))),
                "total_pred/actual": float(pred.sum() / actual.sum()),
            }
        )
    return [
        "### Value model (273-day holdout spend per member, all members)",
        "",
        markdown_table(rows),
        "",
    ]


def _shift_to_rate(p: np.ndarray, rate: float) -> np.ndarray:
    """``p`` moved by one constant on the logit scale until its mean is ``rate`` (diagnostic)."""
    logit = np.log(np.clip(p, 1e-6, 1 - 1e-6)) - np.log1p(-np.clip(p, 1e-6, 1 - 1e-6))
    lo, hi = -5.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.mean(1 / (1 + np.exp(-(logit + mid)))) < rate else (lo, mid)
    return 1 / (1 + np.exp(-(logit + (lo + hi) / 2)))


def bench_sim(report: list[str], payload: dict[str, Any], members: int) -> None:
    from sklearn.metrics import roc_auc_score

    from loyalty_ml.churn.config import load_churn_config
    from loyalty_ml.churn.job import train_churn
    from loyalty_ml.churn.metrics import expected_calibration_error
    from loyalty_ml.simulate.api import simulate
    from loyalty_ml.simulate.config import load_config

    timings: dict[str, float] = {}
    with timed("simulate", timings):
        dataset, truth = simulate(load_config().model_copy(update={"members": members}))
    tr = truth.churn
    as_of = tr["as_of"].max()  # the simulator's last snapshot: data end
    cfg = load_churn_config().with_overrides(
        **{"label.horizon_days": 90, "snapshots.spacing_days": 30}
    )
    with timed("train", timings):
        result = train_churn(dataset, as_of, cfg, provider="auto", track=False)
    ev = result.eval_scores
    origin = pd.Timestamp(result.model.meta["calibration_origin"])
    t90 = tr[(tr["as_of"] == origin) & (tr["horizon_days"] == 90)][
        ["member_id", "p_churn", "cause"]
    ]
    ev = ev.merge(t90.astype({"member_id": "string"}), on="member_id", how="inner")
    y = ev["churned"].to_numpy()
    auc_truth = float(roc_auc_score(y, ev["p_churn"]))
    auc_model = float(roc_auc_score(y, ev["model"]))
    # Base rates: the backtest calibrates on the slice one horizon before the evaluation slice;
    # the truth says how much the churn rate itself moved between the two.
    cal_origin = origin - pd.Timedelta(days=90)
    t_cal = tr[(tr["as_of"] == cal_origin) & (tr["horizon_days"] == 90)]["p_churn"]
    base_rates = {
        "calibration_origin": str(cal_origin),
        "true_rate_calibration_slice": float(t_cal.mean()) if len(t_cal) else float("nan"),
        "true_rate_eval_slice": float(ev["p_churn"].mean()),
        "realised_rate_eval_slice": float(y.mean()),
        "model_mean_eval_slice": float(ev["model"].mean()),
        "ece_base_rate_known": float(
            expected_calibration_error(y, _shift_to_rate(ev["model"].to_numpy(), float(y.mean())))
        ),
    }
    payload_sim: dict[str, Any] = {
        "members": members,
        "eval_origin": str(origin),
        "n_eval": len(ev),
        "auc_true_probability": auc_truth,
        "auc_model_backtest": auc_model,
        "ratio": auc_model / auc_truth,
        "base_rates": base_rates,
        "backtest": result.backtest,
        "timings": timings,
        "provider": result.provider,
    }
    # Reason agreement: the final model's grouped SHAP on the evaluation slice vs planted cause.
    frame = result.eval_frame
    causes = t90.set_index("member_id")["cause"]
    known = frame[frame["member_id"].map(causes).notna()].reset_index(drop=True)
    with timed("reasons", timings):
        reasons = result.model.reasons(known, top_k=3)
    cause = known["member_id"].map(causes).to_numpy()
    p = result.model.predict_proba(known)
    top1 = np.array([r[0]["code"] if r else "" for r in reasons])
    in3 = np.array([c in {x["code"] for x in r} for c, r in zip(cause, reasons, strict=True)])
    at_risk = p >= 0.5
    agree = {
        "members_with_cause": len(known),
        "top1_agreement": float(np.mean(top1 == cause)),
        "top3_agreement": float(np.mean(in3)),
        "at_risk_members": int(at_risk.sum()),
        "top1_agreement_at_risk": float(np.mean((top1 == cause)[at_risk]))
        if at_risk.any()
        else float("nan"),
        "top3_agreement_at_risk": float(np.mean(in3[at_risk])) if at_risk.any() else float("nan"),
        "chance_top1": float(1 / 8),
    }
    per_cause = (
        pd.DataFrame({"cause": cause, "top1": top1 == cause, "top3": in3})
        .groupby("cause")
        .agg(n=("top1", "size"), top1=("top1", "mean"), top3=("top3", "mean"))
        .reset_index()
    )
    payload_sim["reason_agreement"] = agree
    payload[f"sim_{members}"] = payload_sim
    report += [
        f"## Simulator ({members:,} members, `simulate()` defaults)",
        "",
        f"Evaluation slice: origin {origin:%Y-%m-%d}, 90-day no-purchase label, {len(ev):,} members; "
        f"model = backtest model (trained/calibrated on data up to the origin only), features "
        f"provider `{result.provider}`. Simulate {timings['simulate']:.0f} s, train job "
        f"{timings['train']:.0f} s (2 vCPU shared; load average {' '.join(_loadavg())} at the end).",
        "",
        f"AUC of the true churn probability (truth/churn p_churn): **{auc_truth:.4f}**; model "
        f"**{auc_model:.4f}** = **{auc_model / auc_truth:.3f} ×** truth (bar ≥ 0.98).",
        "",
        markdown_table(_metric_rows(result.backtest, KEYS)),
        "",
        "Base rates (calibration is fitted on the slice one horizon earlier, origin "
        f"{cal_origin:%Y-%m-%d}): true churn rate there {base_rates['true_rate_calibration_slice']:.4f}, "
        f"at the evaluation origin {base_rates['true_rate_eval_slice']:.4f} (realised "
        f"{base_rates['realised_rate_eval_slice']:.4f}); the model's calibrated mean "
        f"{base_rates['model_mean_eval_slice']:.4f}. ECE after one logit shift to the realised "
        f"evaluation rate (diagnostic, uses the evaluation labels): "
        f"{base_rates['ece_base_rate_known']:.4f}.",
        "",
        "Reason codes vs the planted cause (members whose cause is known): "
        f"top-1 {agree['top1_agreement']:.3f}, top-3 {agree['top3_agreement']:.3f} "
        f"(chance top-1 0.125); among members with p ≥ 0.5: top-1 "
        f"{agree['top1_agreement_at_risk']:.3f}, top-3 {agree['top3_agreement_at_risk']:.3f} "
        f"(n = {agree['at_risk_members']:,}).",
        "",
        markdown_table(per_cause.to_dict("records")),
        "",
    ]


@contextmanager
def cpu_timed(label: str, sink: dict[str, float]) -> Iterator[None]:
    """Wall seconds under ``label`` and process CPU seconds (all threads) under ``label_cpu``:
    on a machine shared with other jobs the CPU time is the reproducible number."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    sink[label] = time.perf_counter() - wall
    sink[f"{label}_cpu"] = time.process_time() - cpu


def bench_speed(report: list[str], payload: dict[str, Any], n_rows: int, shop: int) -> None:
    """Real feature rows tiled to ``n_rows``: a ``shop``-member simulated shop, the churn job's
    own model and features (pipeline provider + BG/NBD), rows repeated under new member ids. The
    model's cost depends on rows x features x trees, not on where the rows came from."""
    import resource

    from loyalty_ml.churn.config import load_churn_config
    from loyalty_ml.churn.job import _lgb_params, train_churn
    from loyalty_ml.churn.model import prepare_matrix, train_booster
    from loyalty_ml.simulate.api import simulate
    from loyalty_ml.simulate.config import load_config

    cfg = load_churn_config()
    dataset, truth = simulate(load_config().model_copy(update={"members": shop}))
    as_of = truth.churn["as_of"].max()
    result = train_churn(
        dataset, as_of, cfg, provider="auto", track=False, backtest=False, plots=False
    )
    model = result.model
    rows = result.eval_frame  # features (+ label) of every member at the calibration origin
    reps = int(np.ceil(n_rows / len(rows)))
    take = np.tile(np.arange(len(rows)), reps)[:n_rows]
    del dataset, truth
    t: dict[str, float] = {}
    rss0 = peak_rss_mb()
    with cpu_timed("score_1m", t):
        frame = rows.iloc[take].reset_index(drop=True)
        frame["member_id"] = pd.array(np.arange(n_rows).astype(str), dtype="string")
        scored = model.score_frame(frame)
    rss_score = peak_rss_mb()
    top = np.argsort(-scored["value_at_risk"].to_numpy(), kind="stable")[:50_000]
    with cpu_timed("reasons_50k", t):
        model.reasons(frame.iloc[top])
    params = _lgb_params(cfg)
    params.pop("early_stopping_rounds", None)
    y = frame["churned"].to_numpy()
    with cpu_timed("train_1m", t):
        train_booster(prepare_matrix(frame, model.feature_names), y, params)
    rss = peak_rss_mb()
    load = _loadavg()
    payload["speed"] = {
        **t,
        "rows": n_rows,
        "shop_members": shop,
        "features": len(model.feature_names),
        "peak_rss_mb_after_scoring": rss_score,
        "peak_rss_mb_before_scoring": rss0,
        "peak_rss_mb": rss,
        "threads": params["num_threads"],
        "loadavg": load,
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    report += [
        f"## Speed ({n_rows:,} member snapshots; load average {' '.join(load)} at the end)",
        "",
        f"{len(rows):,} real feature rows of a {shop:,}-member simulated shop (pipeline features + "
        f"BG/NBD, {len(model.feature_names)} features) tiled {reps}x under new member ids; the "
        "churn job's model and LightGBM parameters (config/churn.yaml, "
        f"{params['num_boost_round']} rounds, {params['num_leaves']} leaves, "
        f"{params['num_threads']} threads, OMP_WAIT_POLICY={__import__('os').environ.get('OMP_WAIT_POLICY')}).",
        "",
        markdown_table(
            [
                {
                    "step": f"train, no tuning, {n_rows:,} snapshots",
                    "wall_s": t["train_1m"],
                    "cpu_s": t["train_1m_cpu"],
                    "bar": "≤ 60 s",
                },
                {
                    "step": f"batch score {n_rows:,} (probability, band, value, segment)",
                    "wall_s": t["score_1m"],
                    "cpu_s": t["score_1m_cpu"],
                    "bar": "≤ 60 s",
                },
                {
                    "step": "reason codes (pred_contrib), top 50k at risk",
                    "wall_s": t["reasons_50k"],
                    "cpu_s": t["reasons_50k_cpu"],
                    "bar": "≤ 60 s",
                },
            ]
        ),
        "",
        f"Peak RSS of the benchmark process: {rss0:,.0f} MB before scoring (simulation + job), "
        f"{rss_score:,.0f} MB after building and scoring the {n_rows:,} rows (bar ≤ 4 GB), "
        f"{rss:,.0f} MB after the {n_rows:,}-row training.",
        "",
    ]


def main(argv: list[str]) -> None:
    only = set(_arg(argv, "only", "cdnow,sim,speed").split(","))
    quick = "--quick" in argv
    sim_members = [
        int(x) for x in _arg(argv, "sim-members", "5000" if quick else "20000").split(",")
    ]
    report = [
        "# Churn benchmarks",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
    ]
    payload: dict[str, Any] = {}
    target = Path(_arg(argv, "out", str(RESULTS_MD)))
    target.parent.mkdir(parents=True, exist_ok=True)

    def flush() -> None:  # after every part, so a run cut short keeps what it measured
        target.write_text("\n".join(report) + "\n")

    if "speed" in only:
        rows = 200_000 if quick else 1_000_000
        bench_speed(
            report,
            payload,
            int(_arg(argv, "speed-rows", str(rows))),
            int(_arg(argv, "speed-shop", "5000")),
        )
        flush()
    if "cdnow" in only:
        bench_cdnow(report, payload, int(_arg(argv, "trials", "0")))
        flush()
    if "sim" in only:
        for n in sim_members:
            bench_sim(report, payload, n)
            flush()
    print("\n".join(report))
    flush()
    save("churn", payload)
