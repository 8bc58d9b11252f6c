"""Benefit matching on Hillstrom (randomised, 3 arms): (a) uplift@30% Womens vs control on visit,
(b) IPS/DR policy value of the learned 3-arm assignment vs the best single arm on visit, (c) the
same on spend net of a per-e-mail cost. Held-out halves, several seeds, paired 95% CIs.

``python -m benchmarks benefits [--seeds=N] [--quick] [--sim | --sim-only] [--members=N]``; writes bench-results/benefits.json and
prints the markdown kept in benchmarks/results/benefits.md.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import SHARED_DATA, markdown_table, save

FEATURES = [
    "recency",
    "history_segment",
    "history",
    "mens",
    "womens",
    "zip_code",
    "newbie",
    "channel",
]
CATEGORICAL = ["history_segment", "zip_code", "channel"]
ARM_OF = {"No E-Mail": "none", "Mens E-Mail": "mens_email", "Womens E-Mail": "womens_email"}
EMAIL_COST = 0.5  # (c): cost per e-mail sent, in spend units


def load() -> pd.DataFrame:
    path = SHARED_DATA / "hillstrom" / "hillstrom.csv"
    if not path.is_file():
        raise SystemExit(f"Hillstrom not found at {path} (see ../shared/data/README.md)")
    return pd.read_csv(path)


def features(df: pd.DataFrame) -> pd.DataFrame:
    X = df[FEATURES].copy().reset_index(drop=True)
    for c in CATEGORICAL:
        X[c] = X[c].astype("category")
    return X


def split(strata: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(strata))
    tr, te = train_test_split(idx, test_size=0.5, random_state=seed, stratify=strata)
    return np.sort(tr), np.sort(te)


def _uplift_a(
    kind: str, X: Any, arm: Any, y: Any, params: dict[str, Any], seed: int, Xte: Any
) -> Any:
    """Predicted Womens effect of one learner (or the mean of several, ``a+b``) on ``Xte``."""
    from loyalty_ml.benefits.learners import fit_learner

    kinds = kind.split("+")
    p = np.full(len(y), 0.5)
    preds = [
        fit_learner(k, X, arm, y, p, ["none", "womens_email"], params, seed=seed).predict_uplift(
            Xte
        )[:, 1]
        for k in kinds  # type: ignore[misc]
    ]
    return np.mean(preds, axis=0)


def tune_a(
    X: pd.DataFrame, arm: np.ndarray, y: np.ndarray, kind: str, trials: int, seed: int, cfg: Any
) -> tuple[dict[str, Any], float]:
    """Optuna on the TRAINING half only: LightGBM knobs maximising the mean uplift@30% over an
    inner 3-fold cross-validation (stratified on treatment x visit). The test half is never seen."""
    import optuna
    from sklearn.model_selection import StratifiedKFold

    from loyalty_ml.benefits.learners import lgbm_params
    from loyalty_ml.benefits.metrics import uplift_at_k

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t = (arm == "womens_email").astype(int)
    folds = list(
        StratifiedKFold(3, shuffle=True, random_state=seed).split(X, t * 2 + y.astype(int))
    )

    def objective(trial: Any) -> float:
        params = {
            **dict(cfg.lightgbm),
            "num_leaves": trial.suggest_int("num_leaves", 2, 16),
            "min_child_samples": trial.suggest_int("min_child_samples", 100, 3000, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.005, 0.1, log=True),
            "n_estimators": trial.suggest_int("n_estimators", 50, 800, log=True),
            "reg_lambda": trial.suggest_float("reg_lambda", 0.0, 50.0),
        }
        prm = lgbm_params(params, seed, cfg.num_threads)
        scores = [
            uplift_at_k(
                y[b],
                _uplift_a(kind, X.iloc[a], arm[a], y[a], prm, seed, X.iloc[b]),
                t[b],
                0.3,
                "overall",
            )
            for a, b in folds
        ]
        return float(np.mean(scores))

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials)
    return {**dict(cfg.lightgbm), **study.best_params}, float(study.best_value)


A_LEARNERS = ("t", "x", "dr", "to", "t+x+dr")


def bench_a(
    df: pd.DataFrame, seeds: int, cfg: Any, trials: int = 0
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every learner side by side with the config's LightGBM knobs and (``trials`` > 0) with the
    knobs Optuna found for the T-learner by inner CV on the training half of each seed."""
    from loyalty_ml.benefits.learners import lgbm_params
    from loyalty_ml.benefits.metrics import qini_auc_score, uplift_at_k

    sub = df[df["segment"].isin(["Womens E-Mail", "No E-Mail"])].reset_index(drop=True)
    X = features(sub)
    arm = sub["segment"].map(ARM_OF).to_numpy(dtype=object)
    y = sub["visit"].to_numpy(dtype=float)
    t = (arm == "womens_email").astype(int)
    res: dict[str, dict[str, list[float]]] = {}
    tuned: dict[str, list[Any]] = {}
    for seed in range(seeds):
        tr, te = split(t * 2 + y.astype(int), seed)
        params = lgbm_params(cfg.lightgbm, seed, cfg.num_threads)
        runs = {k: (k, params) for k in A_LEARNERS}
        if trials > 0:  # knobs tuned per learner (T and TO); X, DR reuse the T-learner's
            found = {}
            for kind in ("t", "to"):
                best, inner = tune_a(X.iloc[tr], arm[tr], y[tr], kind, trials, seed, cfg)
                tuned.setdefault(kind, []).append({"params": best, "inner_cv_uplift30": inner})
                found[kind] = lgbm_params(best, seed, cfg.num_threads)
            for kind in ("t", "x", "dr", "to"):
                runs[f"{kind} (Optuna knobs)"] = (kind, found.get(kind, found["t"]))
            runs["mean of t, x, dr, to (Optuna knobs)"] = ("ens", found)
        for name, (kind, prm) in runs.items():
            if kind == "ens":  # each member with its own knobs
                u = np.mean(
                    [
                        _uplift_a(
                            k, X.iloc[tr], arm[tr], y[tr], prm.get(k, prm["t"]), seed, X.iloc[te]
                        )
                        for k in ("t", "x", "dr", "to")
                    ],
                    axis=0,
                )
            else:
                u = _uplift_a(kind, X.iloc[tr], arm[tr], y[tr], prm, seed, X.iloc[te])
            r = res.setdefault(name, {"overall": [], "by_group": [], "qini": []})
            r["overall"].append(uplift_at_k(y[te], u, t[te], 0.3, "overall"))
            r["by_group"].append(uplift_at_k(y[te], u, t[te], 0.3, "by_group"))
            r["qini"].append(qini_auc_score(y[te], u, t[te]))
        print(seed, {k: round(v["overall"][-1], 4) for k, v in res.items()}, flush=True)
    rows = [
        {
            "learner": name,
            "uplift@30% overall": float(np.mean(r["overall"])),
            "sd over seeds": float(np.std(r["overall"], ddof=1)) if seeds > 1 else float("nan"),
            "uplift@30% by_group": float(np.mean(r["by_group"])),
            "qini coefficient": float(np.mean(r["qini"])),
            "per seed": " ".join(f"{v:.4f}" for v in r["overall"]),
        }
        for name, r in res.items()
    ]
    raw = {k: {kk: list(map(float, vv)) for kk, vv in v.items()} for k, v in res.items()}
    raw["tuned"] = tuned  # type: ignore[assignment]
    return rows, raw


def bench_policy(
    df: pd.DataFrame, seeds: int, cfg: Any, outcome: str, cost: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(b)/(c): train on one half (internal validation + out-of-fold tuning inside it), evaluate
    the learned assignment and the baselines on the other half by IPS and DR."""
    from loyalty_ml.benefits.core import (
        fit_benefit_model,
        fit_model,
        prepared_from_arrays,
        q_matrix,
    )
    from loyalty_ml.benefits.data import FeatureSchema
    from loyalty_ml.benefits.decision import DecisionParams
    from loyalty_ml.benefits.evaluation import baseline_policies, evaluate_policies

    X = features(df)
    arm = df["segment"].map(ARM_OF).to_numpy(dtype=object)
    arms = ["none", "mens_email", "womens_email"]
    objective = "conversion" if outcome == "visit" else "revenue"
    costs = {"none": 0.0, "mens_email": cost, "womens_email": cost}
    y = df[outcome].to_numpy(dtype=float)
    data = prepared_from_arrays(
        X,
        arm,
        np.full(len(df), 1 / 3),
        df["visit" if outcome == "visit" else "conversion"].to_numpy(dtype=float),
        y if outcome == "spend" else None,
        arms,
        costs,
        objective,  # type: ignore[arg-type]
        conversion_value=None,
        member_id=np.arange(len(df)).astype(str),
    )
    schema = FeatureSchema(FEATURES, {c: sorted(map(str, df[c].unique())) for c in CATEGORICAL})
    per_seed: list[dict[str, Any]] = []
    tables = []
    for seed in range(seeds):
        strata = data.arm * 2 + (y > 0).astype(int)
        tr, te = split(strata, seed)
        train, test = data.subset(tr), data.subset(te)
        c = cfg.model_copy(update={"seed": seed})
        started = time.perf_counter()
        core = fit_benefit_model(train, schema, c, trials=0)
        m = core.matcher
        feats_te = df.iloc[te][FEATURES].reset_index(drop=True).assign(member_id=test.member_id)
        assigned = m.assign(feats_te)
        index = {a: i for i, a in enumerate(arms)}
        learned = assigned["benefit_id"].map(index).to_numpy(dtype=np.int64)
        t_model = fit_model("t", train, train.primary, dict(c.lightgbm), c, seed)
        q = q_matrix(t_model, test.X, test)
        greedy = m.choose_arms(
            pd.Series(test.member_id),
            _greedy_net(m, feats_te),
            None,
            None,
            params=DecisionParams(1.0, 0.0, m.decision.default_arm),
        )
        pols = {"learned": learned, "learned greedy (no shrinkage, no margin)": greedy}
        pols.update(baseline_policies(len(test), arms))
        ref = "everyone: mens_email"
        table = evaluate_policies(pols, test.arm, test.propensity, test.reward(), q, reference=ref)
        table.insert(0, "seed", seed)
        tables.append(table)
        ev = table.set_index("policy")
        per_seed.append(
            {
                "seed": seed,
                "learner": core.learner,
                "shrinkage": m.decision.shrinkage,
                "switch_margin": round(m.decision.switch_margin, 5),
                "share_personalised": float((learned != index["mens_email"]).mean()),
                "share_no_email": float((learned == 0).mean()),
                "net_value_gate": m.calibration is not None,
                "learned_ips": float(ev.loc["learned", "ips"]),
                "best_single_ips": float(ev.loc[ref, "ips"]),
                "ratio_ips": float(ev.loc["learned", "ips"] / ev.loc[ref, "ips"]),
                "diff_ips": float(ev.loc["learned", "ips_diff"]),
                "diff_ips_lo": float(ev.loc["learned", "ips_diff_lo"]),
                "diff_ips_hi": float(ev.loc["learned", "ips_diff_hi"]),
                "diff_dr": float(ev.loc["learned", "dr_diff"]),
                "diff_dr_lo": float(ev.loc["learned", "dr_diff_lo"]),
                "diff_dr_hi": float(ev.loc["learned", "dr_diff_hi"]),
                "greedy_ratio_ips": float(ev.loc[pols_key(), "ips"] / ev.loc[ref, "ips"]),
                "seconds": time.perf_counter() - started,
            }
        )
        print(per_seed[-1], flush=True)
    allt = pd.concat(tables)
    summary = (
        allt.groupby("policy", sort=False)[
            ["ips", "ips_lo", "ips_hi", "dr", "ips_diff", "ips_diff_lo", "ips_diff_hi"]
        ]
        .mean()
        .reset_index()
    )
    return per_seed, summary.to_dict("records")


def pols_key() -> str:
    return "learned greedy (no shrinkage, no margin)"


def _greedy_net(m: Any, feats: pd.DataFrame) -> np.ndarray:
    from loyalty_ml.benefits.decision import net_values, objective_uplift

    effects = m.uplift(feats)
    raw = objective_uplift(
        m.objective, effects["conversion"], effects.get("revenue"), m.margin_rate
    )
    return net_values(raw, m.centers, 1.0, m._unit_costs())


def main(argv: list[str]) -> None:
    from loyalty_ml.benefits.config import load_benefits_config

    seeds, members, trials = 5, 20000, 0
    parts = {"a", "b", "c"}
    for a in argv:  # the runner forwards only dash arguments: --seeds=N, --members=N
        if a.startswith("--seeds="):
            seeds = int(a.split("=", 1)[1])
        if a.startswith("--trials="):  # Optuna trials per seed for (a), inner CV on the train half
            trials = int(a.split("=", 1)[1])
        if a.startswith("--parts="):
            parts = set(a.split("=", 1)[1].split(","))
        if a.startswith("--members="):
            members = int(a.split("=", 1)[1])
    cfg = load_benefits_config()
    for a in argv:
        if a.startswith("--threads="):  # LightGBM threads (config: null = all available cores)
            cfg = cfg.model_copy(update={"num_threads": int(a.split("=", 1)[1])})
    if "--quick" in argv:
        cfg = cfg.model_copy(update={"learners": ["t"], "ensemble": False})
    if "--sim" in argv or "--sim-only" in argv:
        import os
        import tempfile

        from loyalty_ml.settings import reset_settings_cache

        # Training reads features through Feast (benefits_v1): keep its repo and tables in a
        # throw-away LOYALTY_HOME, never in the checkout's or the user's.
        with tempfile.TemporaryDirectory(prefix="bench-benefits-") as home:
            saved = os.environ.get("LOYALTY_HOME")
            os.environ["LOYALTY_HOME"] = home
            reset_settings_cache()
            try:
                row = bench_simulator(members, 42, cfg)
            finally:
                if saved is None:
                    os.environ.pop("LOYALTY_HOME", None)
                else:
                    os.environ["LOYALTY_HOME"] = saved
                reset_settings_cache()
        print("## simulator")
        print(markdown_table([row]), flush=True)
        save("benefits_simulator", {"simulator": row})
        if "--sim-only" in argv:
            return
    df = load()
    payload: dict[str, Any] = {"seeds": seeds, "email_cost_c": EMAIL_COST}
    started = time.perf_counter()
    if "a" in parts:
        rows_a, raw_a = bench_a(df, seeds, cfg, trials)
        payload["a"] = {"rows": rows_a, "raw": raw_a, "seconds": time.perf_counter() - started}
        print(f"## (a) Womens vs control, visit, uplift@30% (mean of {seeds} seeds)")
        print(markdown_table(rows_a), flush=True)
    for label, outcome, cost in (("b", "visit", 0.0), ("c", "spend", EMAIL_COST)):
        if label not in parts:
            continue
        started = time.perf_counter()
        per_seed, summary = bench_policy(df, seeds, cfg, outcome, cost)
        payload[label] = {
            "per_seed": per_seed,
            "summary": summary,
            "seconds": time.perf_counter() - started,
        }
        ratio = np.mean([r["ratio_ips"] for r in per_seed])
        print(
            f"## ({label}) three arms, {outcome}, cost per e-mail {cost}: mean ratio learned/best single (IPS) {ratio:.4f}"
        )
        print(markdown_table(per_seed))
        print(markdown_table(summary), flush=True)
    path = save("benefits_" + "".join(sorted(parts)), payload)
    print(f"saved {path}")


if __name__ == "__main__":
    main(sys.argv[1:])


# --------------------------------------------------------------------------------- simulator


def bench_simulator(members: int, seed: int, cfg: Any) -> dict[str, Any]:
    """Train on every campaign but the last, assign for the members offered in the last one, and
    score each policy with the simulator's true per-member, per-benefit net effects
    (truth/uplift ``uplift_profit`` = margin uplift - expected cost)."""
    from loyalty_ml.benefits.assign import member_states
    from loyalty_ml.benefits.data import BEFORE_OFFER, FeatureSource, pipeline_features
    from loyalty_ml.benefits.train import train_benefits
    from loyalty_ml.policy import allocate, eligible_matrix, load_policy
    from loyalty_ml.simulate import load_config, simulate

    t0 = time.perf_counter()
    ds, truth = simulate(load_config().with_overrides(members=members, seed=seed))
    up = truth.uplift
    last_campaign = up["campaign_id"].max()
    test = up[up["campaign_id"] == last_campaign]
    start = test["offered_at"].min()
    # Expected cost per offer of each benefit = mean logged cost (the catalogue's face values
    # overstate coupons that are mostly not redeemed); the truth's uplift_profit nets the same.
    seen = ds.offers[ds.offers["offered_at"] < start]
    log_costs = seen.groupby(seen["benefit_id"].astype(str))["cost"].mean().fillna(0.0).to_dict()
    cfg = cfg.model_copy(update={"cost_overrides": {k: float(v) for k, v in log_costs.items()}})
    src = FeatureSource(cfg.feature_source, cfg.feature_service)
    res = train_benefits(
        ds,
        as_of=start - pd.Timedelta(seconds=1),
        config=cfg,
        trials=0,
        track=False,
        feature_provider=src,
    )
    m = res.matcher
    first = test.drop_duplicates("member_id").sort_values("member_id")
    ids = first["member_id"].astype(str).reset_index(drop=True)
    last = test["offered_at"].max()
    cut = ds.as_of(last)
    feats = pipeline_features(
        cut,
        pd.DataFrame(
            {"member_id": ids, "event_timestamp": first["offered_at"].to_numpy() - BEFORE_OFFER}
        ),
    )
    policy = load_policy()
    states = member_states(ds.as_of(start), start, policy)
    states = states.set_index(states["member_id"].astype(str)).loc[ids].reset_index(drop=True)
    arms = m.arms
    true_net = (
        test.pivot_table(
            index="member_id", columns="benefit_id", values="uplift_profit", aggfunc="mean"
        )
        .reindex(index=ids, columns=arms)
        .fillna(0.0)
    )
    true_net[arms[0]] = 0.0
    elig = eligible_matrix(states, arms, start, policy).to_numpy() & np.isfinite(
        test.pivot_table(
            index="member_id", columns="benefit_id", values="uplift_profit", aggfunc="mean"
        )
        .reindex(index=ids, columns=arms)
        .to_numpy(dtype=float)
    )
    elig[:, 0] = True
    tn = np.where(elig, true_net.to_numpy(), -np.inf)
    cost = np.array([m.costs.get(a, 0.0) for a in arms])

    def value(choice: np.ndarray) -> float:
        return float(np.where(choice > 0, tn[np.arange(len(choice)), choice], 0.0).mean())

    index = {a: i for i, a in enumerate(arms)}
    learned = m.assign(feats, states, at=start, policy=policy)["benefit_id"].map(index).to_numpy()
    from loyalty_ml.benefits.decision import DecisionParams

    ok = elig.copy()
    greedy = m.choose_arms(ids, _greedy_net(m, feats), ok, None, DecisionParams(1.0, 0.0, 0))
    oracle = np.where(tn.max(axis=1) > 0, tn.argmax(axis=1), 0)
    singles = {a: value(np.where(elig[:, j], j, 0)) for j, a in enumerate(arms) if j}
    best_single = max(singles.values())
    # Uniformly random allowed arm (none included); no contact is 0 by definition.
    rng_r = np.random.default_rng(seed)
    random_arm = np.where(elig, rng_r.random(elig.shape), -1.0).argmax(axis=1)
    given = learned > 0
    neg_share = (
        float((tn[np.arange(len(learned)), learned][given] < 0).mean()) if given.any() else 0.0
    )
    row: dict[str, Any] = {
        "members": members,
        "test_members": len(ids),
        "objective": m.objective,
        "learner": m.learner,
        "features": src.describe()[:80],
        "learned": value(learned),
        "oracle": value(oracle),
        "best_single": best_single,
        "best_single_arm": max(singles, key=singles.get),  # type: ignore[arg-type]
        "singles": " ".join(f"{a}={v:.2f}" for a, v in singles.items()),
        "random": value(random_arm),
        "no_contact": 0.0,
        "decision": f"shrinkage {m.decision.shrinkage}, margin {m.decision.switch_margin:.3g}, "
        f"default {arms[m.decision.default_arm]}, net-value gate {m.calibration is not None}",
        "learned_greedy": value(greedy),
        "learned_cost": float(cost[learned].sum()),
        "share_given": float(given.mean()),
        "share_given_negative_true_net": neg_share,
        "oracle_share_negative_available": float((tn[:, 1:] < 0).any(axis=1).mean()),
    }
    # Budget: 30% of what the unconstrained oracle would spend.
    budget = 0.3 * float(cost[oracle].sum())
    learned_b = m.assign(feats, states, budget=budget, at=start, policy=policy)
    lb = learned_b["benefit_id"].map(index).to_numpy()
    r, c = np.nonzero(np.isfinite(tn) & (tn > 0))
    cands = pd.DataFrame({"member_id": r, "option_id": c, "value": tn[r, c], "cost": cost[c]})
    ob = np.zeros(len(ids), dtype=np.int64)
    chosen = allocate(cands[cands["option_id"] > 0], budget)
    ob[chosen["member_id"].to_numpy()] = chosen["option_id"].to_numpy()
    rng = np.random.default_rng(seed)
    best_b = 0.0
    for j in range(1, len(arms)):  # same benefit for a random subset that fits the budget
        pool = rng.permutation(np.flatnonzero(elig[:, j]))
        k = int(budget // cost[j]) if cost[j] > 0 else len(pool)
        ch = np.zeros(len(ids), dtype=np.int64)
        ch[pool[:k]] = j
        best_b = max(best_b, value(ch))
    row.update(
        {
            "budget": budget,
            "learned_budget": value(lb),
            "learned_budget_cost": float(learned_b["cost"].sum()),
            "oracle_budget": value(ob),
            "best_single_budget": best_b,
            "seconds": time.perf_counter() - t0,
        }
    )
    row["ratio_oracle"] = row["learned"] / row["oracle"]
    row["ratio_best_single"] = (
        row["learned"] / row["best_single"] if row["best_single"] > 0 else float("inf")
    )
    row["oracle_ratio_best_single"] = row["oracle"] / row["best_single"]
    row["oracle_ratio_best_single_budget"] = row["oracle_budget"] / row["best_single_budget"]
    given_b = lb > 0
    row["share_given_budget"] = float(given_b.mean())
    row["share_given_negative_true_net_budget"] = (
        float((tn[np.arange(len(lb)), lb][given_b] < 0).mean()) if given_b.any() else 0.0
    )
    row["ratio_oracle_budget"] = row["learned_budget"] / row["oracle_budget"]
    row["ratio_best_single_budget"] = (
        row["learned_budget"] / row["best_single_budget"]
        if row["best_single_budget"] > 0
        else float("inf")
    )
    return row
