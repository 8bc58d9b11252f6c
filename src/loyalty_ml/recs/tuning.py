"""Optuna tuning on the validation targets only: each candidate source alone, then the blend.

Components are fitted on the split's training interactions and scored on a sample of validation
members; the blend weights are searched over cached component scores (cheap trials).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import scipy.sparse as sp

from loyalty_ml.recs.base import RecModel
from loyalty_ml.recs.config import RecsConfig
from loyalty_ml.recs.evaluation import Split, evaluate
from loyalty_ml.recs.models import BlendModel, _row_max_normalise, build_model

log = logging.getLogger(__name__)
TrialHook = Callable[[str, int, dict[str, Any], dict[str, float]], None]

TUNABLE = ("transitions", "item_knn", "als", "bpr", "category_popularity", "repeat")


def _space(name: str, trial: optuna.Trial, current: dict[str, Any]) -> dict[str, Any]:
    """Search space of one source; the current value is always one of the categorical choices
    (so the configured defaults can be the first trial)."""
    f, i = trial.suggest_float, trial.suggest_int

    def cat(key: str, choices: list[Any]) -> Any:
        return trial.suggest_categorical(key, sorted({*choices, current[key]}))

    if name == "transitions":
        return {
            "window": i("window", 1, 8),
            "distance_decay": f("distance_decay", 0.1, 1.0),
            "backward_weight": f("backward_weight", 0.0, 1.0),
            "alpha": f("alpha", 0.0, 1.0),
            "shrink": f("shrink", 0.0, 20.0),
            "history_decay": f("history_decay", 0.05, 1.0),
            "max_history": i("max_history", 1, 30),
            "neighbours": cat("neighbours", [50, 100, 200]),
        }
    if name == "item_knn":
        return {
            "alpha": f("alpha", 0.0, 1.0),
            "shrink": f("shrink", 0.0, 20.0),
            "history_decay": f("history_decay", 0.05, 1.0),
            "max_history": i("max_history", 1, 50),
            "neighbours": cat("neighbours", [50, 100, 200]),
        }
    if name == "category_popularity":
        return {
            "history_decay": f("history_decay", 0.3, 1.0),
            "max_history": i("max_history", 5, 100),
            "prior": f("prior", 0.0, 5.0),
            "within": cat("within", ["max", "share"]),
        }
    if name == "repeat":
        return {
            "history_decay": f("history_decay", 0.3, 1.0),
            "profile": cat("profile", ["history", "weights"]),
            "smoothing": f("smoothing", 0.0, 20.0),
        }
    if name == "als":
        return {
            "factors": cat("factors", [32, 64, 128]),
            "regularization": f("regularization", 1e-3, 10.0, log=True),
            "alpha": f("alpha", 0.5, 100.0, log=True),
            "iterations": i("iterations", 5, 25),
        }
    if name == "bpr":
        return {
            "factors": cat("factors", [32, 64, 128]),
            "learning_rate": f("learning_rate", 1e-3, 0.2, log=True),
            "regularization": f("regularization", 1e-4, 0.1, log=True),
            "iterations": cat("iterations", [50, 100, 200]),
        }
    raise KeyError(name)


def with_params(config: RecsConfig, name: str, params: dict[str, Any]) -> RecsConfig:
    section = getattr(config, name).model_copy(update=params)
    return config.model_copy(update={name: section})


def _sampler(seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)


@dataclass
class TuningReport:
    config: RecsConfig
    best: dict[str, float] = field(default_factory=dict)  # stage -> best validation metric
    trials: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


def sample_users(split: Split, config: RecsConfig, cells: int = 60_000_000) -> np.ndarray:
    users = split.eval_users
    n_items = split.train.user_items.shape[1]
    cap = min(config.tuning.max_tuning_members, max(200, cells // max(n_items, 1)))
    if len(users) <= cap:
        return users
    rng = np.random.default_rng(config.seed)
    return np.sort(rng.choice(users, size=cap, replace=False))


def fit_component(name: str, config: RecsConfig, split: Split, item_categories=None) -> RecModel:
    model = build_model(name, config)
    if name == "category_popularity":
        model.set_item_categories(  # type: ignore[attr-defined]
            item_categories if item_categories is not None else np.zeros(split.train.shape[1])
        )
    matrix = split.train.counts if name == "repeat" else split.train.user_items
    return model.fit(matrix, recency=split.train.recency)


class _CachedBlend(RecModel):
    name = "_cached_blend"

    def __init__(self, cache: dict[str, np.ndarray], rows: np.ndarray, weights: dict[str, float]):
        super().__init__()
        self.cache, self.weights = cache, weights
        self.pos = {int(u): j for j, u in enumerate(rows)}
        self.n_items = next(iter(cache.values())).shape[1]

    def fit(self, user_items, *, recency=None):  # pragma: no cover - never fitted
        return self

    def score(self, user_items, *, recency=None, userids=None):
        idx = np.array([self.pos[int(u)] for u in userids])
        total = np.zeros((len(idx), self.n_items), np.float32)
        for name, w in self.weights.items():
            if w > 0:
                total += w * self.cache[name][idx].toarray()
        return total


def tune(
    config: RecsConfig,
    split: Split,
    trials: int | None = None,
    *,
    components: tuple[str, ...] | None = None,
    item_categories: np.ndarray | None = None,
    on_trial: TrialHook | None = None,
) -> TuningReport:
    """Tune each source alone, then the blend weights; returns the tuned config."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = config.tuning.trials if trials is None else trials
    metric = config.tuning.metric
    ks = config.tuning.ks
    users = sample_users(split, config)
    weights = config.blend.weights
    components = components or tuple(n for n, w in weights.items() if w > 0)
    if not split.exclude_seen and "repeat" not in components:
        components = (*components, "repeat")  # re-buys count: the replenishment source joins
    report = TuningReport(config=config)
    for name in components:
        if name not in TUNABLE or trials <= 0:
            continue
        started = time.perf_counter()
        study = optuna.create_study(direction="maximize", sampler=_sampler(config.seed))
        current = getattr(report.config, name).model_dump()
        study.enqueue_trial(current, skip_if_exists=True)

        def objective(trial: optuna.Trial, name: str = name, current=current) -> float:
            params = _space(name, trial, current)
            cfg = with_params(report.config, name, params)
            model = fit_component(name, cfg, split, item_categories)
            metrics = evaluate(model, split, ks, users).metrics
            if on_trial:
                on_trial(name, trial.number, params, metrics)
            report.history.append({"stage": name, "trial": trial.number, **params, **metrics})
            return metrics[metric]

        study.optimize(objective, n_trials=trials, timeout=config.tuning.timeout_s)
        report.config = with_params(report.config, name, study.best_params)
        report.best[name] = float(study.best_value)
        report.trials[name] = len(study.trials)
        report.seconds[name] = time.perf_counter() - started
        log.info("tuned %s: %s=%.4f %s", name, metric, study.best_value, study.best_params)

    # Blend weights over cached, row-normalised component scores: each source's top
    # ``blend_candidates`` per member (sparse), for every validation member up to the cap.
    started = time.perf_counter()
    cache = {}
    train = split.train
    users = sample_users(split, config, cells=10**12)
    k = config.tuning.blend_candidates
    for name in components:
        model = fit_component(name, report.config, split, item_categories)
        parts = []
        for lo in range(0, len(users), 2048):
            rows = users[lo : lo + 2048]
            s = model.score(train.user_items[rows], recency=train.recency[rows], userids=rows)
            s = _row_max_normalise(s)
            kk = min(k, s.shape[1])
            idx = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
            val = np.take_along_axis(s, idx, axis=1)
            parts.append(
                sp.csr_matrix(
                    (val.ravel(), idx.ravel(), np.arange(len(rows) + 1) * kk), shape=s.shape
                )
            )
        cache[name] = sp.vstack(parts, format="csr")
        del model
    if trials > 0 and len(components) > 1:
        anchor = max(components, key=lambda n: report.best.get(n, -1.0))
        study = optuna.create_study(direction="maximize", sampler=_sampler(config.seed))
        study.enqueue_trial({n: float(weights.get(n, 0.0)) for n in components if n != anchor})
        # the best single source alone is always a candidate: the blend never loses to it on
        # validation
        study.enqueue_trial({n: 0.0 for n in components if n != anchor})

        def blend_objective(trial: optuna.Trial) -> float:
            w = {anchor: 1.0}
            for n in components:
                if n != anchor:
                    hi = 0.3 if n == "popularity" else 1.5
                    w[n] = trial.suggest_float(n, 0.0, hi)
            metrics = evaluate(_CachedBlend(cache, users, w), split, ks, users).metrics
            if on_trial:
                on_trial("blend", trial.number, w, metrics)
            report.history.append({"stage": "blend", "trial": trial.number, **w, **metrics})
            return metrics[metric]

        study.optimize(
            blend_objective, n_trials=max(trials * 2, 10), timeout=config.tuning.timeout_s
        )
        best_w = {anchor: 1.0, **study.best_params}
        full = {n: float(best_w.get(n, 0.0)) for n in weights}
        full.update(best_w)
        report.config = report.config.model_copy(
            update={"blend": report.config.blend.model_copy(update={"weights": full})}
        )
        report.best["blend"] = float(study.best_value)
        report.trials["blend"] = len(study.trials)
    else:
        w = {n: float(weights.get(n, 0.0)) for n in components}
        report.best["blend"] = evaluate(_CachedBlend(cache, users, w), split, ks, users).metrics[
            metric
        ]
    report.seconds["blend"] = time.perf_counter() - started
    return report


def fit_blend(
    config: RecsConfig, split_or_train, item_categories: np.ndarray | None = None
) -> BlendModel:
    """All components with weight > 0 (plus repeat and popularity, used by serving) fitted."""
    split = split_or_train if isinstance(split_or_train, Split) else Split(split_or_train, None)  # type: ignore[arg-type]
    blend = BlendModel(config.blend.weights)
    names = [n for n, w in config.blend.weights.items() if w > 0]
    for extra in ("popularity", "repeat"):
        if extra not in names:
            names.append(extra)
    for name in names:
        blend.add(fit_component(name, config, split, item_categories))
    return blend
