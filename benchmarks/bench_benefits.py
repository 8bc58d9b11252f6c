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


def bench_a(df: pd.DataFrame, seeds: int, cfg: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from loyalty_ml.benefits.learners import EnsembleModel, fit_learner, lgbm_params
    from loyalty_ml.benefits.metrics import qini_auc_score, uplift_at_k

    sub = df[df["segment"].isin(["Womens E-Mail", "No E-Mail"])].reset_index(drop=True)
    X = features(sub)
    arm = sub["segment"].map(ARM_OF).to_numpy(dtype=object)
    y = sub["visit"].to_numpy(dtype=float)
    t = (arm == "womens_email").astype(int)
    p = np.full(len(sub), 0.5)
    res: dict[str, dict[str, list[float]]] = {}
    for seed in range(seeds):
        tr, te = split(t * 2 + y.astype(int), seed)
        params = lgbm_params(cfg.lightgbm, seed, cfg.num_threads)
        models = {
            k: fit_learner(
                k, X.iloc[tr], arm[tr], y[tr], p[tr], ["none", "womens_email"], params, seed=seed
            )
            for k in ("t", "x", "dr")
        }
        models["ensemble"] = EnsembleModel(
            "ensemble", ["none", "womens_email"], list(models.values())
        )  # type: ignore[arg-type]
        for name, m in models.items():
            u = m.predict_uplift(X.iloc[te])[:, 1]
            r = res.setdefault(name, {"overall": [], "by_group": [], "qini": []})
            r["overall"].append(uplift_at_k(y[te], u, t[te], 0.3, "overall"))
            r["by_group"].append(uplift_at_k(y[te], u, t[te], 0.3, "by_group"))
            r["qini"].append(qini_auc_score(y[te], u, t[te]))
    rows = [
        {
            "learner": name,
            "uplift@30% overall": float(np.mean(r["overall"])),
            "sd over seeds": float(np.std(r["overall"], ddof=1)),
            "uplift@30% by_group": float(np.mean(r["by_group"])),
            "qini coefficient": float(np.mean(r["qini"])),
        }
        for name, r in res.items()
    ]
    return rows, {k: {kk: list(map(float, vv)) for kk, vv in v.items()} for k, v in res.items()}


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

    seeds, members = 5, 20000
    for a in argv:  # the runner forwards only dash arguments: --seeds=N, --members=N
        if a.startswith("--seeds="):
            seeds = int(a.split("=", 1)[1])
        if a.startswith("--members="):
            members = int(a.split("=", 1)[1])
    cfg = load_benefits_config()
    if "--quick" in argv:
        cfg = cfg.model_copy(update={"learners": ["t"], "ensemble": False})
    if "--sim" in argv or "--sim-only" in argv:
        row = bench_simulator(members, 42, cfg)
        print("## simulator")
        print(markdown_table([row]), flush=True)
        save("benefits_simulator", {"simulator": row})
        if "--sim-only" in argv:
            return
    df = load()
    payload: dict[str, Any] = {"seeds": seeds, "email_cost_c": EMAIL_COST}
    started = time.perf_counter()
    rows_a, raw_a = bench_a(df, seeds, cfg)
    payload["a"] = {"rows": rows_a, "raw": raw_a, "seconds": time.perf_counter() - started}
    print(f"## (a) Womens vs control, visit, uplift@30% (mean of {seeds} seeds)")
    print(markdown_table(rows_a), flush=True)
    for label, outcome, cost in (("b", "visit", 0.0), ("c", "spend", EMAIL_COST)):
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
    path = save("benefits", payload)
    print(f"saved {path}")


if __name__ == "__main__":
    main(sys.argv[1:])


# --------------------------------------------------------------------------------- simulator


def bench_simulator(members: int, seed: int, cfg: Any) -> dict[str, Any]:
    """Train on every campaign but the last, assign for the members offered in the last one, and
    score each policy with the simulator's true per-member, per-benefit net effects
    (truth/uplift ``uplift_profit`` = margin uplift - expected cost)."""
    from loyalty_ml.benefits.assign import member_states
    from loyalty_ml.benefits.data import BEFORE_OFFER, pipeline_features
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
    res = train_benefits(
        ds, as_of=start - pd.Timedelta(seconds=1), config=cfg, trials=0, track=False
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
    given = learned > 0
    neg_share = (
        float((tn[np.arange(len(learned)), learned][given] < 0).mean()) if given.any() else 0.0
    )
    row: dict[str, Any] = {
        "members": members,
        "test_members": len(ids),
        "objective": m.objective,
        "learner": m.learner,
        "learned": value(learned),
        "oracle": value(oracle),
        "best_single": best_single,
        "best_single_arm": max(singles, key=singles.get),  # type: ignore[arg-type]
        "decision": f"shrinkage {m.decision.shrinkage}, margin {m.decision.switch_margin:.3g}, "
        f"default {arms[m.decision.default_arm]}",
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
    row["ratio_oracle_budget"] = row["learned_budget"] / row["oracle_budget"]
    row["ratio_best_single_budget"] = (
        row["learned_budget"] / row["best_single_budget"]
        if row["best_single_budget"] > 0
        else float("inf")
    )
    return row
