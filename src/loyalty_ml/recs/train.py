"""``train_recs``: contract data → tuned blend → serving bundle, tracked and gated in MLflow.

Protocol (never tunes on the test targets):

* ``temporal`` (default): validation targets = purchases in the period before the last
  ``holdout_days``; test targets = purchases in the last ``holdout_days`` before ``as_of``; each
  scored by models trained on everything before its period. ``tuning.targets="new"`` (default):
  items the member already bought are excluded from every ranking and from the targets (what
  ``home`` serves); ``"all"``: every purchase of the period is a target, re-buys included, and
  nothing is excluded (replenishment view; the repeat source joins the tuning).
* ``leave_one_out``: each member's last *new* product (first purchase) is the test target and the
  one before the validation target (the Amazon Beauty protocol on contract data).

Optuna tunes on validation; every source alone and the blend are reported on test; the final model
is refitted on everything up to ``as_of`` and packaged as a :class:`Recommender` bundle.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from loyalty_ml.errors import MissingDataError
from loyalty_ml.recs.config import RecsConfig, load_recs_config
from loyalty_ml.recs.evaluation import Split, evaluate
from loyalty_ml.recs.interactions import from_log, interaction_log, universe
from loyalty_ml.recs.serving import Recommender, build_recommender
from loyalty_ml.recs.tuning import fit_blend, fit_component, tune
from loyalty_ml.settings import get_settings
from loyalty_ml.timeutil import to_utc

log = logging.getLogger(__name__)
SOURCES = ("popularity", "item_knn", "transitions", "als", "bpr", "category_popularity", "repeat")


@dataclass
class RecsTrainResult:
    bundle_dir: Path
    config: RecsConfig
    metrics: dict[str, dict[str, float]]  # method -> test metrics
    validation: dict[str, float]
    as_of: str
    run_id: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    gate_decision: str | None = None
    gate_alias: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    recommender: Recommender | None = field(default=None, repr=False)

    def summary(self) -> dict[str, Any]:
        return {
            "bundle_dir": str(self.bundle_dir),
            "as_of": self.as_of,
            "run_id": self.run_id,
            "model": self.model_name,
            "version": self.model_version,
            "alias": self.gate_alias,
            "gate": self.gate_decision,
            "test": self.metrics,
            "validation": self.validation,
            "seconds": self.seconds,
        }


def _targets(rows: pd.DataFrame, user_ids, item_ids, exclude: sp.csr_matrix) -> sp.csr_matrix:
    u = pd.Index(user_ids).get_indexer(rows["member_id"])
    i = pd.Index(item_ids).get_indexer(rows["product_id"])
    ok = (u >= 0) & (i >= 0)
    t = sp.csr_matrix(
        (np.ones(ok.sum(), np.float32), (u[ok], i[ok])), shape=(len(user_ids), len(item_ids))
    )
    t.sum_duplicates()
    t.data[:] = 1.0
    t = t - t.multiply(exclude > 0)
    t = sp.csr_matrix(t)
    t.eliminate_zeros()
    return t


def make_splits(dataset, as_of, config: RecsConfig) -> tuple[Split, Split, pd.DataFrame]:
    """(validation split, test split, the full log up to ``as_of``)."""
    cut = dataset.as_of(as_of)
    full = interaction_log(cut, config.interactions)
    user_ids, item_ids = universe(cut, full)
    ic = config.interactions
    if config.tuning.protocol == "temporal":
        h = pd.Timedelta(days=config.tuning.holdout_days)
        splits = []
        for start, stop, name in (
            (as_of - 2 * h, as_of - h, "validation"),
            (as_of - h, as_of, "test"),
        ):
            train = from_log(full[full["at"] <= start], user_ids, item_ids, start, ic)
            period = full[(full["at"] > start) & (full["at"] <= stop) & full["is_purchase"]]
            new_only = config.tuning.targets == "new"
            seen = train.counts if new_only else sp.csr_matrix(train.user_items.shape)
            splits.append(Split(train, _targets(period, user_ids, item_ids, seen), name, new_only))
        return splits[0], splits[1], full
    # leave_one_out over each member's purchase rows, in time order
    order = full.reset_index(drop=True)
    order["_pos"] = np.arange(len(order))
    # first purchases only: a target is a product new to the member
    purchases = order[order["is_purchase"]].drop_duplicates(["member_id", "product_id"])
    rank_from_end = purchases.groupby("member_id").cumcount(ascending=False)
    splits = []
    for k, name in ((1, "validation"), (0, "test")):
        tgt = purchases[rank_from_end == k]
        cut_pos = order["member_id"].map(dict(zip(tgt["member_id"], tgt["_pos"], strict=True)))
        keep = cut_pos.isna() | (order["_pos"] < cut_pos)
        # members with no target keep only rows before their earliest removed purchase
        if k == 1:
            last = purchases[rank_from_end == 0]
            last_pos = order["member_id"].map(
                dict(zip(last["member_id"], last["_pos"], strict=True))
            )
            keep &= last_pos.isna() | (order["_pos"] < last_pos)
        train_rows = order[keep]
        ref = train_rows["at"].max() if len(train_rows) else as_of
        train = from_log(train_rows, user_ids, item_ids, ref, ic)
        splits.append(Split(train, _targets(tgt, user_ids, item_ids, train.user_items), name))
    return splits[0], splits[1], full


def _categories(dataset, item_ids: np.ndarray) -> np.ndarray | None:
    products = getattr(dataset, "products", None)
    if products is None or not len(products):
        return None
    prod = products.drop_duplicates("product_id")
    cats = prod.set_index(prod["product_id"].astype(str))["category"].astype("string")
    codes, _ = pd.factorize(cats.fillna(""))
    code_map = pd.Series(np.where(cats.fillna("").to_numpy() == "", -1, codes), index=cats.index)
    return code_map.reindex(item_ids).fillna(-1).to_numpy(np.int64)


def evaluate_methods(
    config: RecsConfig, split: Split, item_categories=None, *, keep_lists: bool = False
) -> dict[str, dict[str, float]]:
    """Every source alone (popularity, ALS, item-kNN, transitions, BPR…) and the blend."""
    ks = config.tuning.ks
    pop = np.asarray((split.train.counts > 0).sum(axis=0)).ravel()
    out: dict[str, dict[str, float]] = {}
    names = [
        n
        for n in SOURCES
        if n in ("popularity", "item_knn", "transitions", "als")
        or config.blend.weights.get(n, 0) > 0
    ]
    for name in names:
        model = fit_component(name, config, split, item_categories)
        out[name] = evaluate(model, split, ks, popularity=pop).metrics
    blend = fit_blend(config, split, item_categories)
    out["blend"] = evaluate(blend, split, ks, popularity=pop).metrics
    return out


def _plots(metrics: dict[str, dict[str, float]], ks, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, m in metrics.items():
        axes[0].plot(ks, [m[f"recall@{k}"] for k in ks], marker="o", label=name)
        axes[1].plot(ks, [m[f"ndcg@{k}"] for k in ks], marker="o", label=name)
    axes[0].set_title("recall@K (test)")
    axes[1].set_title("NDCG@K (test)")
    for ax in axes:
        ax.set_xlabel("K")
        ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(out_dir / "metric_at_k.png")
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    names = list(metrics)
    axes[0].bar(names, [metrics[n].get("coverage@10", 0) for n in names])
    axes[0].set_title("catalogue coverage of top-10 lists")
    axes[1].bar(names, [metrics[n].get("pop_percentile@10", 0) for n in names])
    axes[1].set_title("popularity bias: mean popularity percentile @10")
    for ax in axes:
        ax.tick_params(axis="x", rotation=45, labelsize=7)
    fig.tight_layout()
    paths.append(out_dir / "coverage_popularity_bias.png")
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)
    return paths


def train_recs(
    dataset,
    as_of: Any = None,
    config: RecsConfig | None = None,
    trials: int | None = None,
    name: str | None = None,
    *,
    track: bool = True,
    register: bool = True,
    out_dir: Path | None = None,
) -> RecsTrainResult:
    """Tune on validation, report on test, refit on all data, build the serving bundle and
    (``track``) log runs, plots and a registered model with the champion/challenger gate."""
    config = config or load_recs_config()
    dataset.require("orders", purpose="recommendations")
    if dataset.order_items is None and dataset.events is None:
        raise MissingDataError(
            f"recommendations need order_items or events, absent in {dataset.name}"
        )
    as_of = to_utc(as_of) if as_of is not None else dataset.latest_timestamp()
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    val, test, full_log = make_splits(dataset, as_of, config)
    if test.targets.nnz == 0:
        raise MissingDataError(
            f"no test targets for the {config.tuning.protocol} protocol before {as_of} "
            "(too little history: lower tuning.holdout_days or use leave_one_out)"
        )
    item_ids = val.train.item_ids
    cats = _categories(dataset, item_ids)
    seconds["split"] = time.perf_counter() - started

    from loyalty_ml.tracking import child_run, parent_run, registered_model_name

    model_name = registered_model_name("recs", dataset.name, name)
    run_ctx = (
        parent_run(config.experiment, f"recs-{dataset.name}", {"dataset": dataset.name})
        if track
        else None
    )
    run = run_ctx.__enter__() if run_ctx else None
    try:

        def on_trial(stage: str, number: int, params: dict, metrics: dict) -> None:
            if not track:
                return
            import mlflow

            with child_run(f"{stage}-{number}", {"stage": stage}):
                mlflow.log_params({k: v for k, v in params.items()})
                mlflow.log_metrics({k.replace("@", "_at_"): v for k, v in metrics.items()})

        t = time.perf_counter()
        if val.targets.nnz > 0 and (trials is None or trials > 0):
            report = tune(config, val, trials, item_categories=cats, on_trial=on_trial)
            tuned, validation = report.config, report.best
        else:
            tuned, validation = config, {}
        seconds["tune"] = time.perf_counter() - t
        t = time.perf_counter()
        metrics = evaluate_methods(tuned, test, cats)
        seconds["evaluate"] = time.perf_counter() - t
        t = time.perf_counter()
        final = from_log(full_log, val.train.user_ids, item_ids, as_of, tuned.interactions)
        final_split = Split(final, sp.csr_matrix(final.user_items.shape, dtype=np.float32))
        blend = fit_blend(tuned, final_split, cats)
        seconds["fit_final"] = time.perf_counter() - t
        t = time.perf_counter()
        meta = {"as_of": str(as_of), "dataset": dataset.name, "test_metrics": metrics["blend"]}
        rec = build_recommender(
            blend, final, tuned, dataset=dataset.as_of(as_of), item_categories=cats, meta=meta
        )
        seconds["build"] = time.perf_counter() - t
        bundle = out_dir or get_settings().path("recs", model_name, "bundle", ".keep").parent
        rec.save(bundle)
        blend.save(Path(bundle) / "blend.npz")
        (Path(bundle) / "metrics.json").write_text(
            json.dumps({"test": metrics, "validation": validation}, indent=2)
        )
        result = RecsTrainResult(
            bundle_dir=Path(bundle),
            config=tuned,
            metrics=metrics,
            validation=validation,
            as_of=str(as_of),
            model_name=model_name,
            seconds=seconds,
            recommender=rec,
        )
        if track:
            _track(result, tuned, test, cats, register)
            result.run_id = run.info.run_id
        return result
    finally:
        if run_ctx:
            run_ctx.__exit__(None, None, None)


def _track(result: RecsTrainResult, config: RecsConfig, test: Split, cats, register: bool) -> None:
    import mlflow

    from loyalty_ml.recs.pyfunc import log_recommender
    from loyalty_ml.tracking import register_and_gate

    flat = {}
    for section in ("als", "bpr", "item_knn", "transitions"):
        for k, v in getattr(config, section).model_dump().items():
            flat[f"{section}.{k}"] = v
    for k, v in config.blend.weights.items():
        flat[f"blend.{k}"] = v
    flat["protocol"] = config.tuning.protocol
    mlflow.log_params(flat)
    for method, m in result.metrics.items():
        mlflow.log_metrics({f"test_{method}_{k.replace('@', '_at_')}": v for k, v in m.items()})
    mlflow.log_metrics({f"val_{k}": v for k, v in result.validation.items()})
    mlflow.log_metrics({f"seconds_{k}": v for k, v in result.seconds.items()})
    with tempfile.TemporaryDirectory() as tmp:
        for path in _plots(result.metrics, config.tuning.ks, Path(tmp)):
            mlflow.log_artifact(str(path), "plots")
    mlflow.log_dict(config.model_dump(mode="json"), "tuned_config.json")
    model_uri = log_recommender(result.bundle_dir)
    if not register:
        return
    metric = config.gate.metric

    def evaluate_champion(uri: str) -> float:
        champ = Recommender.load(uri)
        champ_cfg = RecsConfig.model_validate(champ.meta["config"])
        champ_cfg = champ_cfg.model_copy(
            update={"blend": champ_cfg.blend.model_copy(update={"weights": champ.weights})}
        )
        blend = fit_blend(champ_cfg, test, cats)
        return evaluate(blend, test, config.tuning.ks).metrics[metric]

    decision = register_and_gate(
        model_uri=model_uri,
        name=result.model_name,
        metric=metric.replace("@", "_at_"),
        new_score=result.metrics["blend"][metric],
        evaluate_champion=evaluate_champion,
        margin=config.gate.margin,
        tags={"as_of": result.as_of},
    )
    result.model_version, result.gate_alias, result.gate_decision = (
        decision.version,
        decision.alias,
        decision.reason,
    )
