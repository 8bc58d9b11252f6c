"""How much of the simulator's true churn AUC is reachable from observable history (issue #5)?

The bar "model AUC >= 0.98 x the AUC of truth/churn p_churn" compares a history-based model with
a probability computed from each member's latent daily rate, decline state and hazard. This
script computes the Bayes posterior predictive P(no completed order in (origin, origin + 90 d]) under
the simulator's own generative model (simulate/engine.py: gamma activity + inactive share,
geometric decline onset from joining, decay exp(-t/kappa) by cause, season x promotion x birthday
calendar), conditioning on what a model can see -- join date, birth month and the days of
completed orders inside the data window -- and, as upper bounds, with latent parts given away:

  orders_only         posterior over activity, onset day, kappa and hazard (population priors)
  known_activity      + the member's true activity rate
  known_decline       + the true onset day, kappa and daily hazard (perfect decline state)
  known_both          both: must reproduce the truth (checks this code; corr ~1.000)
  known_decline_tier  + perfect decline state, activity prior cut to the simulated tier band
                      (the tier leaks through offer propensities)

    python -m benchmarks.churn_ceiling 20000 [seed]     # ~5 CPU-minutes at 20k: run under the lock

Results: benchmarks/results/churn.md (2026-12-07 section). Approximations (promotion boost at the
mean price sensitivity, offers in the past and future ignored, a 3-day onset grid, 8 hazard
bins) cost < 0.001 AUC: known_both reproduces the truth's AUC to 4 digits.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pandas as pd
from scipy.special import gammaln
from scipy.stats import gamma as gamma_dist
from sklearn.metrics import roc_auc_score

from loyalty_ml.churn.metrics import expected_calibration_error
from loyalty_ml.simulate.api import simulate
from loyalty_ml.simulate.calendar import build_calendar
from loyalty_ml.simulate.config import load_config


def main(argv: list[str]) -> None:
    members = int(argv[0]) if len(argv) > 0 else 20000
    seed = int(argv[1]) if len(argv) > 1 else 42
    H = 90
    t0 = time.time()
    cfg = load_config(members=members, seed=seed)
    ds, truth = simulate(cfg)
    cal = build_calendar(cfg)
    start = cal.start
    origin_ts = pd.Timestamp(cfg.end_date, tz="UTC") + pd.Timedelta(days=1) - pd.Timedelta(days=H)
    a = int((origin_ts - start).days)
    print(
        f"members {members} seed {seed} origin {origin_ts.date()} (day {a}) simulate {time.time() - t0:.1f}s"
    )

    pop = cfg.population
    price_mean = pop.price_sensitivity.a / (pop.price_sensitivity.a + pop.price_sensitivity.b)
    g0 = cal.season * (1 + cal.promo_boost * (0.5 + price_mean)) / 365.0  # per unit activity/year

    tc = truth.churn
    tc = tc[(tc["as_of"] == origin_ts) & (tc["horizon_days"] == H)].set_index("member_id")
    mem = ds.members.set_index("member_id").loc[tc.index]
    tm = truth.members.set_index("member_id").loc[tc.index]
    ids = tc.index.to_numpy()
    m = len(ids)
    join = np.floor((mem["joined_at"] - start).dt.total_seconds() / 86400).to_numpy().astype(int)
    bmonth = mem["birth_date"].dt.month.to_numpy()
    s_obs = np.maximum(join, 0)

    o = ds.orders
    o = o[o["status"].fillna("completed") == "completed"]
    o = o[o["member_id"].isin(set(ids))]
    oday = np.floor((o["ordered_at"] - start).dt.total_seconds() / 86400).to_numpy().astype(int)
    # realised label: no completed order in (origin, origin + H]
    fut = o[(o["ordered_at"] > origin_ts) & (o["ordered_at"] <= origin_ts + pd.Timedelta(days=H))]
    y = (~pd.Index(ids).isin(fut["member_id"].unique())).astype(int)
    hist = o.assign(day=oday)
    hist = hist[hist["ordered_at"] < origin_ts]
    pos = pd.Index(ids).get_indexer(hist["member_id"])
    n_ord = np.bincount(pos, minlength=m)
    maxn = max(1, n_ord.max())
    T = np.full((m, maxn), np.nan)
    order = np.argsort(pos, kind="stable")
    ps, ds_ = pos[order], hist["day"].to_numpy()[order]
    rank = np.arange(len(ps)) - np.searchsorted(ps, ps)
    T[ps, rank] = ds_

    # Onset grid: a lump long before the data, 3-day bins up to the origin, then "pending".
    edges = np.concatenate([[-(10**6), -364], np.arange(-361, a, 3), [a]])
    edges[-1] = a
    lo_e, hi_e = edges[:-1], edges[1:]
    mid = np.where(lo_e < -364, -500.0, (lo_e + hi_e - 1) / 2.0)
    D = len(mid)

    # Joint prior of (kappa, hazard): the population's, from the generative model (truth table of all
    # members: a population prior, not member information).
    kap_vals = np.array(sorted({c.kappa_days for c in cfg.churn.causes.values()}))
    hz_all = truth.members["daily_hazard"].to_numpy()
    hz_edges = np.quantile(hz_all, np.linspace(0, 1, 9))
    hz_bin = np.clip(np.searchsorted(hz_edges, hz_all, side="right") - 1, 0, 7)
    hz_vals = np.array([hz_all[hz_bin == b].mean() for b in range(8)])
    # kappa of every member as if an onset happened (truth kappa is drawn for everyone)
    kap_all = truth.members["decline_kappa_days"].to_numpy()
    kh = np.zeros((len(kap_vals), 8))
    np.add.at(kh, (np.searchsorted(kap_vals, kap_all), hz_bin), 1)
    kh /= kh.sum()

    act = pop.activity_per_year
    alpha, beta = act.shape, act.shape / act.mean
    inact_pts = pop.inactive_activity_per_year * np.array([1, 3, 5]) / 6

    def g_member(bm: np.ndarray, s: np.ndarray, lo: int, hi: int) -> np.ndarray:
        days = np.arange(lo, hi)
        g = np.broadcast_to(g0[lo:hi], (len(bm), hi - lo)).copy()
        g *= np.where(
            cal.month[lo:hi][None, :] == bm[:, None], cfg.calendar.birthday_month_factor, 1
        )
        g *= days[None, :] >= s[:, None]
        return g

    def predict(
        idx: np.ndarray,
        onset_w: np.ndarray,  # (m, D+1, Hz) prior over onset bins (+ pending) per hazard value
        hz: np.ndarray,  # (m, Hz) hazard values
        khw: np.ndarray,  # (m, K, Hz) joint prior weight of kappa and hazard
        wg: np.ndarray,  # (m,) weight of the gamma activity component
        pts: np.ndarray,  # (m, C) activity point masses
        wpts: np.ndarray,  # (m, C) their weights
    ) -> np.ndarray:
        n = n_ord[idx].astype(float)
        gh = g_member(bmonth[idx], s_obs[idx], 0, a)  # (m, a)
        gf = g_member(bmonth[idx], np.zeros(len(idx), int), a, a + H)  # (m, H)
        t = T[idx, :]
        pen_base = np.nansum(np.maximum(t[:, :, None] - mid[None, None, :], 0), axis=1)  # (m, D)
        days = np.arange(a)
        fdays = np.arange(a, a + H)
        K, C = len(kap_vals), pts.shape[1]
        # log-lik and predictive for declined bins: (m, D, K, 1 + C)
        ll = np.empty((len(idx), D + 1, K, 1 + C))
        pr = np.empty((len(idx), D + 1, K, hz.shape[1], 1 + C))
        for k, kap in enumerate(kap_vals):
            R = np.exp(-np.maximum(days[:, None] - mid[None, :], 0) / kap)  # (a, D)
            G = gh @ R  # (m, D)
            F = gf @ np.exp(-(fdays[:, None] - mid[None, :]) / kap)  # (m, D)
            pen = pen_base / kap
            Gn = gh.sum(axis=1)
            Gall = np.concatenate([G, Gn[:, None]], axis=1)
            penall = np.concatenate([pen, np.zeros((len(idx), 1))], axis=1)
            ll[:, :, k, 0] = (
                gammaln(alpha + n)[:, None]
                - gammaln(alpha)
                + alpha * np.log(beta)
                - (alpha + n)[:, None] * np.log(beta + Gall)
                - penall
            )
            for c in range(C):
                ac = pts[:, c][:, None]
                with np.errstate(divide="ignore"):
                    ll[:, :, k, 1 + c] = n[:, None] * np.log(ac) - ac * Gall - penall
            # declined predictive
            post_b = beta + G
            pr[:, :D, k, :, 0] = ((post_b / (post_b + F)) ** (alpha + n)[:, None])[:, :, None]
            for c in range(C):
                pr[:, :D, k, :, 1 + c] = np.exp(-pts[:, c][:, None] * F)[:, :, None]
            # pending: onset on window day j (prob h (1-h)^j) or none
            jj = np.arange(H)
            Q = np.where(jj[:, None] < np.arange(H + 1)[None, :], 1.0, 0.0)
            dd = jj[:, None] - np.arange(H + 1)[None, :]
            Q = np.where(dd >= 0, np.exp(-np.maximum(dd, 0) / kap), Q)  # (H, H+1)
            Fj = gf @ Q  # (m, H+1)
            pb = beta + Gn
            e_g = (pb[:, None] / (pb[:, None] + Fj)) ** (alpha + n)[:, None]  # (m, H+1)
            e_p = [np.exp(-pts[:, c][:, None] * Fj) for c in range(C)]
            for z in range(hz.shape[1]):
                h = hz[:, z][:, None]
                wj = np.concatenate([h * (1 - h) ** jj[None, :], (1 - h) ** H], axis=1)  # (m, H+1)
                pr[:, D, k, z, 0] = (wj * e_g).sum(axis=1)
                for c in range(C):
                    pr[:, D, k, z, 1 + c] = (wj * e_p[c]).sum(axis=1)
        comp_w = np.concatenate([wg[:, None], wpts], axis=1)  # (m, 1+C)
        with np.errstate(divide="ignore"):
            logw = (
                np.log(onset_w)[:, :, None, :, None]
                + np.log(khw)[:, None, :, :, None]
                + ll[:, :, :, None, :]
                + np.log(comp_w)[:, None, None, None, :]
            )
        logw -= np.nanmax(logw.reshape(len(idx), -1), axis=1)[:, None, None, None, None]
        w = np.nan_to_num(np.exp(logw))
        return (w * pr).sum(axis=(1, 2, 3, 4)) / w.sum(axis=(1, 2, 3, 4))

    def onset_prior(idx: np.ndarray, hz: np.ndarray) -> np.ndarray:
        """(m, D+1, Hz): P(onset in each bin) and P(no onset before the origin), geometric from join."""
        j = join[idx][:, None, None]
        h = hz[:, None, :]
        lo = np.maximum(lo_e[None, :, None], j)
        hi = np.maximum(hi_e[None, :, None], j)
        surv = lambda x: (1 - h) ** (x - j)  # noqa: E731
        binp = np.where(hi > lo, surv(lo) - surv(hi), 0.0)
        pend = surv(np.full_like(j, a))
        return np.concatenate([binp, pend], axis=1)

    true_day = np.floor((tm["onset_at"] - start).dt.total_seconds() / 86400).to_numpy()
    true_day = np.where(np.isnan(true_day), 10**7, true_day)
    declined_true = true_day < a
    true_bin = np.where(
        declined_true, np.clip(np.searchsorted(edges, true_day, side="right") - 1, 0, D - 1), D
    )
    true_k = np.searchsorted(kap_vals, tm["decline_kappa_days"].to_numpy())
    true_h = tm["daily_hazard"].to_numpy()
    true_act = tm["activity_per_year"].to_numpy()

    variants = {
        "orders_only": dict(act_known=False, decl_known=False),
        "known_activity": dict(act_known=True, decl_known=False),
        "known_decline": dict(act_known=False, decl_known=True),
        "known_both": dict(act_known=True, decl_known=True),
        # upper bound for tier leaks: true decline + activity prior cut to the member's simulated
        # tier band (spend = activity x true expected basket), as offer propensities reveal the tier
        "known_decline_tier": dict(act_known="tier", decl_known=True),
    }
    grid = np.geomspace(0.005, 150, 80)
    gedges = np.concatenate([[0], np.sqrt(grid[1:] * grid[:-1]), [np.inf]])
    gw = (1 - pop.inactive_share) * np.diff(gamma_dist.cdf(gedges, alpha, scale=1 / beta))
    gw += (
        pop.inactive_share
        * np.diff(np.clip(gedges, 0, pop.inactive_activity_per_year))
        / pop.inactive_activity_per_year
    )
    thr = np.array([0.0, *pop.tier_spend_thresholds.values(), np.inf])
    tiers = ["normal", *pop.tier_spend_thresholds]
    t_idx = pd.Index(tiers).get_indexer(tm["tier"])
    spend_grid = grid[None, :] * tm["expected_basket"].to_numpy()[:, None]
    in_band = (spend_grid >= thr[t_idx][:, None]) & (spend_grid < thr[t_idx + 1][:, None])
    tier_w = np.where(in_band, gw[None, :], 0.0)
    tier_w /= tier_w.sum(axis=1, keepdims=True)

    out = {k: np.empty(m) for k in variants}
    t1 = time.time()
    for v, spec in variants.items():
        step = 60 if spec["act_known"] == "tier" else 300
        for lo_i in range(0, m, step):
            idx = np.arange(lo_i, min(m, lo_i + step))
            mm = len(idx)
            if spec["decl_known"]:
                hz = true_h[idx][:, None]
                ow = np.full((mm, D + 1, 1), 1e-300)
                ow[np.arange(mm), true_bin[idx], 0] = 1.0
                khw = np.full((mm, len(kap_vals), 1), 1e-300)
                khw[np.arange(mm), true_k[idx], 0] = 1.0
            else:
                hz = np.broadcast_to(hz_vals, (mm, 8)).copy()
                ow = onset_prior(idx, hz)
                khw = np.broadcast_to(kh, (mm, *kh.shape)).copy()
            if spec["act_known"] == "tier":
                wg = np.full(mm, 1e-300)
                pts = np.broadcast_to(grid, (mm, len(grid))).copy()
                wpts = np.maximum(tier_w[idx], 1e-300)
            elif spec["act_known"]:
                wg = np.full(mm, 1e-300)
                pts = true_act[idx][:, None]
                wpts = np.ones((mm, 1))
            else:
                wg = np.full(mm, 1 - pop.inactive_share)
                pts = np.broadcast_to(inact_pts, (mm, 3)).copy()
                wpts = np.full((mm, 3), pop.inactive_share / 3)
            out[v][idx] = predict(idx, ow, hz, khw, wg, pts, wpts)
        print(f"  {v} done {time.time() - t1:.0f}s", flush=True)

    auc_truth = roc_auc_score(y, tc["p_churn"].to_numpy())
    print(f"\nn={m} churn rate {y.mean():.4f}  truth AUC {auc_truth:.4f}")

    for v in variants:
        auc = roc_auc_score(y, out[v])
        print(
            f"{v:16s} AUC {auc:.4f}  = {auc / auc_truth:.4f} x truth   ECE {expected_calibration_error(y, out[v]):.4f}  "
            f"mean p {out[v].mean():.4f}  corr(truth) {np.corrcoef(out[v], tc['p_churn'])[0, 1]:.3f}"
        )
    pd.DataFrame({"member_id": ids, "y": y, "truth": tc["p_churn"].to_numpy(), **out}).to_parquet(
        f"{os.environ.get('TMPDIR', '/tmp')}/churn_ceiling_{members}_{seed}.parquet"
    )
    print(f"total {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main(sys.argv[1:])
