"""One block of members, simulated end to end: latent traits, daily order intensities, orders and
baskets, behavioural events, randomized campaigns, and the ground truth derived from the latent
model (not from the realised draws).

The generative model (details in docs/simulator.md):

* member ``i`` buys completed orders as a Poisson process with daily rate
  ``mu[i, d] = base[i, d] * offer[i, d] * decline[i, d]``; ``base`` holds activity, seasonality,
  promotions, birthday month and membership start; ``offer`` is ``1 + effect`` of the benefit the
  member received during a campaign's response window; ``decline = r ** max(0, d - onset)`` after
  the member's decline onset (geometric with a member-specific daily hazard), ``r = exp(-1/kappa)``
  with ``kappa`` set by the planted churn cause;
* all orders (incl. cancelled/returned) arrive at ``mu / p_complete``; statuses are independent,
  so completed orders are exactly the Poisson process above (thinning);
* hence P(no completed order in a window) = ``exp(-sum(mu))`` given the onset, and the truth
  integrates over onsets not yet happened at ``as_of`` (see :func:`p_no_completed_order`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import gammainc, ndtr

from loyalty_ml.contract.schema import CONTROL_BENEFIT, EVENT_TYPES
from loyalty_ml.simulate.calendar import Calendar
from loyalty_ml.simulate.catalogue import Catalogue
from loyalty_ml.simulate.config import CAUSES, TIERS, TRAITS, SimulatorConfig

EV = {name: i for i, name in enumerate(EVENT_TYPES)}
NO_ONSET = np.int64(10**7)  # onset beyond anything simulated


@dataclass
class Context:
    """What every block shares: configuration, calendar, catalogue and campaign plan."""

    cfg: SimulatorConfig
    cal: Calendar
    catalogue: Catalogue
    benefits: tuple[str, ...]
    campaign_days: np.ndarray

    @property
    def member_width(self) -> int:
        return max(7, len(str(self.cfg.members - 1)))

    def member_ids(self, idx: np.ndarray) -> np.ndarray:
        w = self.member_width
        p = self.cfg.ids.member
        return np.array([f"{p}{i:0{w}d}" for i in idx], dtype=object)


def campaign_days(cfg: SimulatorConfig) -> np.ndarray:
    cc = cfg.campaigns
    days = np.arange(cc.first_day, cfg.days - cc.window_days + 1, cc.every_days)
    return days.astype(np.int64)


def sample_days(rng: np.random.Generator, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poisson events with daily rates ``weights[i, d]``: (row, day) of each event.

    Equivalent to a Poisson draw per cell but costs O(events): total count per row, then days by
    inverse CDF over the row's cumulative rate (one global searchsorted)."""
    n, d = weights.shape
    # One cumulative sum over the flattened matrix (float64: it runs to the block's total).
    flat = np.cumsum(weights.reshape(-1), dtype=np.float64)
    ends = flat[d - 1 :: d] if d else np.zeros(n)
    offset = np.concatenate([[0.0], ends[:-1]])
    tot = np.maximum(ends - offset, 0.0)
    k = rng.poisson(tot)
    rows = np.repeat(np.arange(n), k)
    target = offset[rows] + rng.random(len(rows)) * tot[rows]
    idx = np.searchsorted(flat, target, side="right")
    days = np.clip(idx - rows * d, 0, d - 1)
    return rows, days


def _choice(rng: np.random.Generator, probs: dict[str, float], n: int) -> np.ndarray:
    keys = np.array(list(probs), dtype=object)
    p = np.array(list(probs.values()), dtype=float)
    return keys[rng.choice(len(keys), size=n, p=p / p.sum())]


def _gamma(rng: np.random.Generator, shape: float, mean: float, n: int) -> np.ndarray:
    return rng.gamma(shape, mean / shape, n) if mean > 0 else np.zeros(n)


def _rows_choice(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (n, k) probability matrix (rows need not sum to 1)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    return np.minimum((cum <= u[:, None]).sum(axis=1), probs.shape[1] - 1)


def p_no_completed_order(
    mu: np.ndarray, hazard: np.ndarray, r: np.ndarray, declined: np.ndarray
) -> np.ndarray:
    """P(no completed order in the window) for each member.

    ``mu`` (m, H): completed-order rate over the window without any decline for members not yet
    declining, with the realised decline for members already declining (``declined``). For the
    others the onset is still random: on window day j with prob ``h (1-h)^j`` (geometric, so
    memoryless), after which the rate decays by ``r`` per day.
    """
    m, horizon = mu.shape
    mt = np.ascontiguousarray(mu.T)  # (H, m): day-major so each step touches contiguous memory
    c = np.cumsum(mt, axis=0)
    out_declined = np.exp(-c[-1])
    log_survive = np.log1p(-hazard)
    acc = np.zeros(m)
    out_pending = np.exp(horizon * log_survive - c[-1])  # no onset within the window
    # Backward recursion R_j = mu_j + r R_{j+1} = sum_{d >= j} mu_d r^(d-j); an onset on day j
    # leaves the full rate up to j and the decayed rate after it: lam_j = C_j + R_j - mu_j.
    for j in range(horizon - 1, -1, -1):
        acc = mt[j] + r * acc
        lam = c[j] + acc - mt[j]
        out_pending += hazard * np.exp(j * log_survive - lam)
    return np.where(declined, out_declined, out_pending)


@dataclass
class Block:
    tables: dict[str, pd.DataFrame]
    truth: dict[str, pd.DataFrame]


def simulate_block(ctx: Context, block: int) -> Block:
    cfg, cal, cat = ctx.cfg, ctx.cal, ctx.catalogue
    pop, ch, bk, cc = cfg.population, cfg.churn, cfg.baskets, cfg.campaigns
    lo = block * cfg.block_size
    hi = min(cfg.members, lo + cfg.block_size)
    n = hi - lo
    days, total = cal.days, cal.total
    rng = np.random.default_rng([cfg.seed, 1, block])
    member_ids = ctx.member_ids(np.arange(lo, hi))
    n_cat = len(cat.categories)

    # ---- members: attributes ------------------------------------------------------------
    p_join_in = min(0.95, pop.joined_in_period_per_year * days / 365)
    joins_in = rng.random(n) < p_join_in
    prior = np.minimum(rng.exponential(pop.prior_tenure_days_mean, n), pop.prior_tenure_days_max)
    join_day = np.where(joins_in, rng.integers(0, days, n), -(1 + prior.astype(np.int64)))
    join_sec = rng.integers(1, 80_000, n)
    age_days = rng.integers(pop.age_range[0] * 365, pop.age_range[1] * 365, n)
    end_day = pd.Timestamp(cfg.end_date)
    birth = (end_day - pd.to_timedelta(age_days, unit="D")).normalize()
    birth_month = birth.month.to_numpy()
    region = _choice(rng, pop.regions, n)
    gender = _choice(rng, pop.genders, n)
    acq = _choice(rng, pop.acquisition_channels, n)
    device = _choice(rng, pop.devices, n)
    opt_in = (rng.random(n) < pop.email_opt_in_rate).astype(np.int8)

    # ---- latent traits --------------------------------------------------------------------
    act = pop.activity_per_year
    activity = _gamma(rng, act.shape, act.mean, n)
    inactive = rng.random(n) < pop.inactive_share
    activity = np.where(inactive, pop.inactive_activity_per_year * rng.random(n), activity)
    # "heavy" is the member's activity quantile under the population distribution (a fixed
    # function, so it does not depend on who else is in the block).
    heavy = gammainc(act.shape, activity / (act.mean / act.shape))
    items_extra = _gamma(rng, 2.0, pop.items_per_order_extra_mean, n)
    shares = np.array([cfg.catalogue.categories[c][0] for c in cat.categories])
    alpha = pop.category_concentration * shares / shares.mean()
    g = rng.gamma(np.broadcast_to(alpha, (n, n_cat)))
    aff = (g + 1e-12) / (g + 1e-12).sum(axis=1, keepdims=True)

    def beta(b: object) -> np.ndarray:
        return rng.beta(b.a, b.b, n)  # type: ignore[attr-defined]

    price_sens = beta(pop.price_sensitivity)
    service_sens = beta(pop.service_sensitivity)
    points_aff = beta(pop.points_affinity)
    novelty = beta(pop.novelty)
    fatigue = beta(pop.message_fatigue)
    open_rate = beta(pop.open_rate)
    review_rate = beta(pop.review_rate)
    checkin_rate = _gamma(rng, pop.checkin_per_year.shape, pop.checkin_per_year.mean, n)
    engage = _gamma(rng, pop.engagement_per_year.shape, pop.engagement_per_year.mean, n)
    return_rate = beta(pop.return_rate)
    tc = cfg.traces
    checkin_rate = checkin_rate * (
        tc.checkin_points_affinity[0] + tc.checkin_points_affinity[1] * points_aff
    )
    open_rate = open_rate * (1 - tc.open_rate_fatigue * fatigue)
    p_complete = 1 - pop.cancel_rate - return_rate
    trait_values = {
        "price_sensitivity": price_sens,
        "service_sensitivity": service_sens,
        "points_affinity": points_aff,
        "novelty": novelty,
        "message_fatigue": fatigue,
        "heavy": heavy,
    }

    # Staples: consumables each member re-buys at a regular interval (always-available products).
    staple_m, staple_p, staple_int = _staples(rng, ctx, aff)

    # Expected gross value of a completed order (truth for revenue and the simple tier).
    cons = cat.cat_interval > 0
    qty_mean = 1 + bk.quantity_extra_mean * np.where(cons, bk.consumable_quantity_factor, 1.0)
    item_value_c = qty_mean * cat.cat_mean_price
    comp_value_c = np.bincount(
        cat.cat, weights=cat.pop * cat.price[cat.complement] * qty_mean[cat.cat[cat.complement]]
    )
    succ_value_c = np.bincount(
        cat.cat, weights=cat.pop * cat.price[cat.successor] * qty_mean[cat.cat[cat.successor]]
    )
    per_item = aff @ (item_value_c + bk.complement_prob * comp_value_c)
    basket_value = (1 + items_extra) * per_item + bk.successor_prob * (aff @ succ_value_c)
    # A staple due every `interval` days rides on the first order within an interval after it is
    # due: per order that is (1 - exp(-x)) / x staple items, x = orders per interval.
    orders_per_year = np.maximum(activity / p_complete, 1e-9)
    x = orders_per_year[staple_m] * staple_int / 365.0
    staple_share = -np.expm1(-x) / x  # P(an order within the interval) × dues / orders
    basket_value = basket_value + np.bincount(
        staple_m,
        weights=staple_share * cat.price[staple_p] * qty_mean[cat.cat[staple_p]],
        minlength=n,
    )
    # Spread of an order's main-item gross value (compound Poisson): the truth's coupon
    # redemption treats gross as log-normal with this member-specific mean and variance.
    q_extra = bk.quantity_extra_mean * np.where(cons, bk.consumable_quantity_factor, 1.0)
    q2 = 1 + 3 * q_extra + q_extra**2
    m2_c = np.bincount(cat.cat, weights=cat.pop * cat.price**2 * q2[cat.cat])
    ex = aff @ item_value_c
    var_x = np.maximum(aff @ m2_c - ex**2, 0)
    basket_cv2 = ((1 + items_extra) * var_x + items_extra * ex**2) / ((1 + items_extra) * ex) ** 2
    margin_value_c = np.bincount(
        cat.cat, weights=cat.pop * (cat.price - cat.cost) * qty_mean[cat.cat]
    )
    margin_rate = (aff @ margin_value_c) / np.maximum(aff @ item_value_c, 1e-9)
    fav_cat = np.argmax(aff, axis=1)
    fav_share = (
        aff[np.arange(n), fav_cat] * item_value_c[fav_cat] / np.maximum(aff @ item_value_c, 1e-9)
    )

    spend = activity * basket_value
    tier = np.zeros(n, dtype=np.int64)
    for t, threshold in pop.tier_spend_thresholds.items():
        tier[spend >= threshold] = TIERS.index(t)
    tier_mult = np.array([pop.tier_points_multiplier[t] for t in TIERS])[tier]
    trait_values["high_tier"] = (tier >= TIERS.index("gold")).astype(float)

    segment = np.full(n, pop.default_segment, dtype=object)
    for name, rule in reversed(list(pop.segments.items())):
        segment[trait_values[rule.trait] >= rule.min] = name
    segment[inactive] = "inactive"

    # ---- decline onset and its cause --------------------------------------------------------
    onset_p = beta(pop.annual_onset_prob)
    for trait, w in pop.onset_trait_weights.items():
        onset_p = onset_p * (1 + w * trait_values[trait])
    onset_p = np.clip(onset_p, 1e-4, 0.95)
    hazard = -np.log1p(-onset_p) / 365.0
    onset = join_day + rng.geometric(hazard) - 1
    onset = np.where(onset >= total, NO_ONSET, onset)
    cause_w = np.zeros((n, len(CAUSES)))
    kappa_c = np.ones(len(CAUSES))
    for k, name in enumerate(CAUSES):
        spec = ch.causes.get(name)
        if spec is None:
            continue
        w = np.full(n, spec.base)
        if spec.trait is not None:
            w = w + spec.weight * trait_values[spec.trait]
        if spec.min_tier is not None:
            w = w + spec.weight * (tier >= TIERS.index(spec.min_tier))
        cause_w[:, k] = w
        kappa_c[k] = spec.kappa_days
    cause = _rows_choice(rng, cause_w)
    kappa = kappa_c[cause]
    r = np.exp(-1.0 / kappa)
    cause_names = np.array(CAUSES, dtype=object)

    # ---- daily completed-order rates ------------------------------------------------------
    # Built in place on one float32 matrix: (activity × season), then the sparse modifiers.
    d_idx = np.arange(total)
    base = np.outer((activity / 365.0).astype(np.float32), cal.season.astype(np.float32))
    for day in np.flatnonzero(cal.promo_boost > 0):
        base[:, day] *= (1 + cal.promo_boost[day] * (0.5 + price_sens)).astype(np.float32)
    for month in range(1, 13):
        rows = np.flatnonzero(birth_month == month)
        cols = np.flatnonzero(cal.month == month)
        if len(rows) and len(cols):
            base[np.ix_(rows, cols)] *= np.float32(cfg.calendar.birthday_month_factor)
    late = np.flatnonzero(join_day > 0)
    base[late] *= d_idx[None, :] >= join_day[late, None]
    # Decline multiplier r^(d - onset) after the onset; only rows whose onset falls in the
    # latent window need it (the others are 1 throughout).
    dec_rows = np.flatnonzero(onset < total)
    since = np.clip(d_idx[None, :] - onset[dec_rows, None], 0, None).astype(np.float32)
    dec_part = np.exp(-since / kappa[dec_rows, None].astype(np.float32))
    del since

    def declined(matrix: np.ndarray) -> np.ndarray:
        out = matrix.copy()
        out[dec_rows] *= dec_part
        return out

    # ---- campaigns: randomized benefits with known propensities ---------------------------
    benefits = ctx.benefits
    nb = len(benefits)
    bspec = [cc.benefits[b] for b in benefits]
    prop_table = np.array([[cc.propensities[t].get(b, 0.0) for b in benefits] for t in TIERS])
    prop_table = prop_table / prop_table.sum(axis=1, keepdims=True)
    weights = np.zeros((len(TRAITS), nb))
    base_eff = np.zeros(nb)
    for j, spec in enumerate(bspec):
        base_eff[j] = spec.effects.get("base", 0.0)
        for t, w in spec.effects.items():
            if t != "base":
                weights[TRAITS.index(t), j] = w
    is_control = np.array([b == CONTROL_BENEFIT for b in benefits])
    bday_col = benefits.index("birthday_pack") if "birthday_pack" in benefits else -1
    mu_nodecline = base  # completed-order rate if the member never declined (offers added below)
    del base
    offers: list[dict[str, np.ndarray]] = []
    for k, cday in enumerate(ctx.campaign_days):
        included = (rng.random(n) < cc.inclusion_rate) & (join_day < cday)
        in_bmonth = birth_month == cal.month[cday]
        probs = prop_table[tier].copy()
        if bday_col >= 0:
            probs[in_bmonth, bday_col] *= cc.birthday_pack_birth_month_boost
        probs /= probs.sum(axis=1, keepdims=True)
        choice = _rows_choice(rng, probs)
        tv = np.column_stack(
            [trait_values[t] if t != "birth_month" else in_bmonth.astype(float) for t in TRAITS]
        )
        effect = base_eff[None, :] + tv @ weights
        effect = effect - np.where(is_control, 0.0, cc.fatigue_penalty)[None, :] * fatigue[:, None]
        effect = np.clip(effect, cc.effect_min, cc.effect_max)
        effect[:, is_control] = 0.0
        idx = np.flatnonzero(included)
        window = slice(cday, cday + cc.window_days)
        mu_nodecline[idx, window] *= (1 + effect[idx, choice[idx]])[:, None].astype(np.float32)
        offers.append(
            {
                "campaign": np.full(len(idx), k),
                "member": idx,
                "day": np.full(len(idx), cday),
                "sec": rng.integers(1, 3_600, len(idx)),
                "benefit": choice[idx],
                "propensity": probs[idx, choice[idx]],
                "channel": _choice(rng, cc.channels, len(idx)),
                "effect": effect[idx],
                "probs": probs[idx],
            }
        )
    mu = declined(mu_nodecline)

    # ---- orders -----------------------------------------------------------------------------
    o_member, o_day = sample_days(rng, mu[:, :days] / p_complete[:, None].astype(np.float32))
    hours = np.asarray(cfg.calendar.order_hours, dtype=float)
    o_sec = rng.choice(24, size=len(o_member), p=hours / hours.sum()) * 3600 + rng.integers(
        1, 3600, len(o_member)
    )
    u = rng.random(len(o_member))
    ret = return_rate[o_member]
    o_status = np.where(u < ret, 1, np.where(u < ret + pop.cancel_rate, 2, 0))  # 0 completed
    o_kind = np.zeros(len(o_member), dtype=np.int8)  # 0 normal, 1 service incident, 2 big order
    # Planted: a service incident (returned order) on the onset day of `service_issue` members,
    # and for `points_expiring` a large order whose points expire around the onset.
    svc = np.flatnonzero(
        (cause_names[cause] == "service_issue")
        & (onset >= 0)
        & (onset < days)
        & (onset >= join_day)
    )
    big_day = onset - ch.points_expiring_big_order_lag_days
    big = np.flatnonzero(
        (cause_names[cause] == "points_expiring")
        & (big_day >= 0)
        & (big_day < days)
        & (big_day >= join_day)
    )
    o_member = np.concatenate([o_member, svc, big])
    o_day = np.concatenate([o_day, onset[svc], big_day[big]])
    o_sec = np.concatenate(
        [
            o_sec,
            rng.integers(8 * 3600, 22 * 3600, len(svc)),
            rng.integers(8 * 3600, 22 * 3600, len(big)),
        ]
    )
    o_status = np.concatenate([o_status, np.ones(len(svc), int), np.zeros(len(big), int)])
    o_kind = np.concatenate([o_kind, np.ones(len(svc), np.int8), np.full(len(big), 2, np.int8)])
    o_sec = after_join(o_day, o_sec, join_day[o_member], join_sec[o_member])
    order = np.lexsort((o_sec, o_day, o_member))
    o_member, o_day, o_sec, o_status, o_kind = (
        a[order] for a in (o_member, o_day, o_sec, o_status, o_kind)
    )
    n_orders = len(o_member)
    first_of_member = np.r_[True, o_member[1:] != o_member[:-1]] if n_orders else np.zeros(0, bool)
    seq = np.arange(n_orders) - np.maximum.accumulate(
        np.where(first_of_member, np.arange(n_orders), 0)
    )

    # ---- baskets ----------------------------------------------------------------------------
    k_items = 1 + rng.poisson(items_extra[o_member])
    k_items = np.where(
        o_kind == 2, np.ceil(k_items * ch.points_expiring_big_order_factor).astype(int), k_items
    )
    i_order = np.repeat(np.arange(n_orders), k_items)
    i_member = o_member[i_order]
    i_cat = _rows_choice(rng, aff[i_member])
    i_prod = _eligible_sample(rng, cat, i_cat, o_day[i_order], tier[i_member], bk.max_redraws)
    # Novelty seekers swap some items for a new arrival (any category, launched recently).
    swap = np.flatnonzero(rng.random(len(i_prod)) < cfg.traces.new_arrival_prob * novelty[i_member])
    if len(swap):
        by_launch = np.argsort(cat.launch_day, kind="stable")
        launch_sorted = cat.launch_day[by_launch]
        day = o_day[i_order[swap]]
        lo_i = np.searchsorted(
            launch_sorted, day - cfg.traces.new_arrival_window_days, side="right"
        )
        hi_i = np.searchsorted(launch_sorted, day, side="right")
        pick = by_launch[
            np.minimum(
                lo_i + (rng.random(len(swap)) * (hi_i - lo_i)).astype(np.int64), len(by_launch) - 1
            )
        ]
        ok = (hi_i > lo_i) & (cat.min_tier[pick] <= tier[i_member[swap]])
        i_prod[swap[ok]] = pick[ok]
    first_item = np.r_[True, i_order[1:] != i_order[:-1]] if len(i_order) else np.zeros(0, bool)
    first_prod = np.full(n_orders, -1)
    first_prod[i_order[first_item]] = i_prod[first_item]

    def eligible(prod: np.ndarray, order_idx: np.ndarray) -> np.ndarray:
        return (cat.launch_day[prod] <= o_day[order_idx]) & (
            cat.min_tier[prod] <= tier[o_member[order_idx]]
        )

    extra_o, extra_p = [], []
    # Complements: bought together with an item of the same order.
    pick = rng.random(len(i_prod)) < bk.complement_prob
    comp = cat.complement[i_prod[pick]]
    ok = eligible(comp, i_order[pick])
    extra_o.append(i_order[pick][ok])
    extra_p.append(comp[ok])
    # Successors: the next item after the previous order's first item (item-to-item sequence).
    has_prev = seq > 0
    pick = np.flatnonzero(has_prev & (rng.random(n_orders) < bk.successor_prob))
    succ = cat.successor[first_prod[pick - 1]]
    ok = eligible(succ, pick)
    extra_o.append(pick[ok])
    extra_p.append(succ[ok])
    # Staples: consumables re-bought at a regular member-specific interval, added to the first
    # order on or after each due day (consumers top up when they shop anyway).
    if len(staple_m) and n_orders:
        phase = (rng.random(len(staple_m)) * staple_int).astype(np.int64)
        n_due = (days - phase) // staple_int + 1
        s_rep = np.repeat(np.arange(len(staple_m)), np.maximum(n_due, 0))
        due = (
            phase[s_rep]
            + (np.arange(len(s_rep)) - np.repeat(np.cumsum(n_due) - n_due, n_due))
            * staple_int[s_rep]
        )
        keys = o_member.astype(np.int64) * total + o_day
        pos = np.searchsorted(keys, staple_m[s_rep].astype(np.int64) * total + due, side="left")
        pos_c = np.minimum(pos, n_orders - 1)
        hit = (
            (pos < n_orders)
            & (o_member[pos_c] == staple_m[s_rep])
            & (o_day[pos_c] < due + staple_int[s_rep])
        )
        sp = staple_p[s_rep][hit]
        so = pos_c[hit]
        ok = eligible(sp, so)
        extra_o.append(so[ok])
        extra_p.append(sp[ok])
    all_o = np.concatenate([i_order, *extra_o])
    all_p = np.concatenate([i_prod, *extra_p])
    consumable = cons[cat.cat[all_p]]
    qty = 1 + rng.poisson(
        bk.quantity_extra_mean * np.where(consumable, bk.consumable_quantity_factor, 1.0)
    )
    # One row per (order, product): merge duplicates by summing quantities.
    key = all_o.astype(np.int64) * cat.n + all_p
    uniq, inv = np.unique(key, return_inverse=True)
    qty_u = np.bincount(inv, weights=qty).astype(np.int64)
    it_order = (uniq // cat.n).astype(np.int64)
    it_prod = (uniq % cat.n).astype(np.int64)
    it_price = cat.price[it_prod]
    gross = np.bincount(it_order, weights=qty_u * it_price, minlength=n_orders)

    # ---- offers: realised outcomes and coupons ---------------------------------------------
    off = {
        k: np.concatenate([o[k] for o in offers]) if offers else np.zeros(0)
        for k in (
            "campaign",
            "member",
            "day",
            "sec",
            "benefit",
            "propensity",
            "channel",
            "effect",
            "probs",
        )
    }
    if not offers:  # a period too short for any campaign: typed empty columns
        off.update(
            campaign=np.zeros(0, np.int64),
            member=np.zeros(0, np.int64),
            day=np.zeros(0, np.int64),
            sec=np.zeros(0, np.int64),
            benefit=np.zeros(0, np.int64),
            channel=np.zeros(0, dtype=object),
            effect=np.zeros((0, nb)),
            probs=np.zeros((0, nb)),
        )
    n_off = len(off["member"])
    off_order = np.lexsort((off["day"], off["member"]))
    for k in off:
        off[k] = off[k][off_order]
    o_offer = np.full(n_orders, -1)
    if n_off and n_orders:
        okeys = off["member"].astype(np.int64) * total + off["day"]
        pos = np.searchsorted(okeys, o_member.astype(np.int64) * total + o_day, side="right") - 1
        pos_c = np.maximum(pos, 0)
        inwin = (
            (pos >= 0)
            & (off["member"][pos_c] == o_member)
            & (o_day < off["day"][pos_c] + cc.window_days)
        )
        o_offer = np.where(inwin, pos_c, -1)
    completed = o_status == 0
    mapped = (o_offer >= 0) & completed
    converted = np.bincount(o_offer[mapped], minlength=n_off) > 0
    revenue = np.bincount(o_offer[mapped], weights=gross[mapped], minlength=n_off)
    n_completed = np.bincount(o_offer[mapped], minlength=n_off)
    coupon_face = np.array([s.face if s.cost_kind == "coupon" else 0.0 for s in bspec])
    coupon_thr = np.array(
        [max(s.threshold, s.face) if s.cost_kind == "coupon" else np.inf for s in bspec]
    )
    cand = np.flatnonzero(mapped)
    if n_off:
        cand = cand[gross[cand] >= coupon_thr[off["benefit"][o_offer[cand]]]]
    # Orders are in time order within a member, so the first candidate per offer redeems it.
    red_offer, first = np.unique(o_offer[cand], return_index=True)
    red_order = cand[first]
    coupon_disc = np.zeros(n_orders)
    coupon_id = np.full(n_orders, None, dtype=object)
    coupon_disc[red_order] = coupon_face[off["benefit"][red_offer]]
    coupon_id[red_order] = np.array(benefits, dtype=object)[off["benefit"][red_offer]]
    redeemed = np.zeros(n_off)
    redeemed[red_offer] = coupon_face[off["benefit"][red_offer]]
    promo_disc = np.round(gross * cal.promo_discount[o_day], 2)
    discount = np.minimum(promo_disc + coupon_disc, gross)
    amount = np.round(gross - discount, 2)

    kinds = np.array([s.cost_kind for s in bspec], dtype=object)
    unit = np.array([s.unit_cost for s in bspec])
    share = np.where(
        [s.favourite_category_only for s in bspec], 1.0, 0.0
    )  # 1 → cost on the favourite category's share of spend
    ob = off["benefit"].astype(np.int64)
    om = off["member"].astype(np.int64)
    spend_factor = np.where(share[ob] > 0, fav_share[om], 1.0)
    real_cost = np.select(
        [
            kinds[ob] == "coupon",
            kinds[ob] == "per_order",
            kinds[ob] == "spend_share",
            kinds[ob] == "fixed",
            kinds[ob] == "per_conversion",
        ],
        [
            redeemed,
            unit[ob] * n_completed,
            unit[ob] * cc.point_value * tier_mult[om] * revenue * spend_factor,
            unit[ob],
            unit[ob] * converted,
        ],
        0.0,
    )

    # ---- truth: uplift per offer × benefit ----------------------------------------------------
    if n_off:
        win = off["day"][:, None] + np.arange(cc.window_days)[None, :]
        # The realised window rate carries the assigned benefit's factor: divide it out.
        assigned_effect = off["effect"][np.arange(n_off), ob]
        lam_w = mu[om[:, None], win].sum(axis=1, dtype=np.float64) / (1 + assigned_effect)
        lam_b = lam_w[:, None] * (1 + off["effect"])
        conv_b = 1 - np.exp(-lam_b)
        rev_b = lam_b * basket_value[om, None]
        sig2 = np.log1p(basket_cv2[om])
        mu_ln = np.log(np.maximum(basket_value[om], 1e-9)) - sig2 / 2
        with np.errstate(divide="ignore"):
            z = np.log(np.maximum(coupon_thr, 1e-9))[None, :] - mu_ln[:, None]
            q = 1 - ndtr(z / np.sqrt(sig2)[:, None])
        sf = np.where(share[None, :] > 0, fav_share[om, None], 1.0)
        cost_b = np.select(
            [
                kinds == "coupon",
                kinds == "per_order",
                kinds == "spend_share",
                kinds == "fixed",
                kinds == "per_conversion",
            ],
            [
                coupon_face[None, :] * (1 - np.exp(-lam_b * q)),
                unit[None, :] * lam_b,
                unit[None, :] * cc.point_value * tier_mult[om, None] * rev_b * sf,
                np.broadcast_to(unit[None, :], lam_b.shape),
                unit[None, :] * conv_b,
            ],
            0.0,
        )
        ctrl = benefits.index(CONTROL_BENEFIT)
        up_conv = conv_b - conv_b[:, [ctrl]]
        up_rev = rev_b - rev_b[:, [ctrl]]
    else:
        conv_b = rev_b = cost_b = up_conv = up_rev = np.zeros((0, nb))
        ctrl = 0

    # ---- truth: churn probability at snapshots ------------------------------------------------
    churn_rows = []
    for k in range(ch.n_snapshots):
        a = days - k * ch.snapshot_every_days
        if a <= 0:
            break
        idx = np.flatnonzero(join_day < a)
        declined = onset[idx] < a
        for horizon in ch.horizons_days:
            w = np.where(
                declined[:, None], mu[idx, a : a + horizon], mu_nodecline[idx, a : a + horizon]
            )
            p = p_no_completed_order(w.astype(np.float64), hazard[idx], r[idx], declined)
            churn_rows.append(
                _frame(
                    {
                        "member_id": member_ids[idx],
                        "as_of": cal.day_start(np.full(len(idx), a)),
                        "horizon_days": np.int32(horizon),
                        "p_churn": p,
                        "cause": np.where(declined, cause_names[cause[idx]], None),
                        "days_since_onset": np.where(declined, a - onset[idx], -1).astype(np.int32),
                    }
                )
            )

    # ---- events -------------------------------------------------------------------------------
    ev = _events(
        rng,
        ctx,
        n,
        join_day,
        join_sec,
        onset,
        kappa,
        cause_names[cause],
        engage,
        checkin_rate,
        service_sens,
        aff,
        open_rate,
        opt_in,
        fatigue,
        review_rate,
        o_member,
        o_day,
        o_sec,
        o_status,
        o_kind,
        first_prod,
        off,
        tier,
    )
    ev.insert(0, "member_id", member_ids[ev.pop("member_local").to_numpy()])

    # ---- frames -------------------------------------------------------------------------------
    onum = (lo + o_member).astype(np.int64) * 10_000 + seq
    order_ids = _prefixed(cfg.ids.order, onum)
    tables: dict[str, pd.DataFrame] = {}
    tables["members"] = _frame(
        {
            "member_id": member_ids,
            "joined_at": _ts(cal.stamps(join_day, join_sec)),
            "birth_date": birth.tz_localize("UTC"),
            "region": region,
            "gender": gender,
            "acquisition_channel": acq,
            "device": device,
            "email_opt_in": opt_in,
        }
    )
    status_names = np.array(["completed", "returned", "cancelled"], dtype=object)
    tables["orders"] = _frame(
        {
            "order_id": order_ids,
            "member_id": member_ids[o_member],
            "ordered_at": _ts(cal.stamps(o_day, o_sec)),
            "amount": amount,
            "discount": np.round(discount, 2),
            "status": status_names[o_status],
            "coupon_id": coupon_id,
            "channel": _choice(rng, cfg.calendar.order_channels, n_orders),
        }
    )
    tables["order_items"] = _frame(
        {
            "order_id": order_ids[it_order],
            "product_id": cat.product_ids[it_prod],
            "quantity": qty_u,
            "unit_price": it_price,
        }
    )
    tables["events"] = ev
    offer_num = (lo + om) * 100 + off["campaign"].astype(np.int64)
    offer_ids = _prefixed(cfg.ids.offer, offer_num)
    bnames = np.array(benefits, dtype=object)
    tables["offers"] = _frame(
        {
            "offer_id": offer_ids,
            "member_id": member_ids[om],
            "offered_at": _ts(cal.stamps(off["day"], off["sec"])),
            "benefit_id": bnames[ob],
            "channel": off["channel"],
            "cost": np.round(real_cost, 4),
            "propensity": off["propensity"],
            "converted": converted.astype(np.int8),
            "revenue": np.round(revenue, 2),
        }
    )

    truth: dict[str, pd.DataFrame] = {}
    onset_ts = _ts(
        np.where(onset < total, cal.stamps(np.minimum(onset, total), 0), np.iinfo(np.int64).min)
    )
    truth["members"] = _frame(
        {
            "member_id": member_ids,
            "segment": segment,
            "tier": np.array(TIERS, dtype=object)[tier],
            "activity_per_year": activity,
            "heavy": heavy,
            "items_per_order": 1 + items_extra,
            "expected_basket": basket_value,
            "margin_rate": margin_rate,
            "price_sensitivity": price_sens,
            "service_sensitivity": service_sens,
            "points_affinity": points_aff,
            "novelty": novelty,
            "message_fatigue": fatigue,
            "open_rate": open_rate,
            "return_rate": return_rate,
            "annual_onset_prob": onset_p,
            "daily_hazard": hazard,
            "onset_at": onset_ts,
            "cause": np.where(onset < total, cause_names[cause], None),
            "decline_kappa_days": kappa,
            "favourite_category": np.array(cat.categories, dtype=object)[fav_cat],
        }
    )
    truth["churn"] = pd.concat(churn_rows, ignore_index=True) if churn_rows else pd.DataFrame()
    if n_off:
        rep = np.repeat(np.arange(n_off), nb)
        truth["uplift"] = _frame(
            {
                "offer_id": offer_ids[rep],
                "member_id": member_ids[om][rep],
                "campaign_id": off["campaign"][rep].astype(np.int32),
                "offered_at": _ts(cal.stamps(off["day"], off["sec"])[rep]),
                "benefit_id": np.tile(bnames, n_off),
                "assigned": (np.tile(np.arange(nb), n_off) == ob[rep]),
                # The logging policy's probability of this benefit for this member (0 = not
                # eligible at the member's tier): lets off-policy estimates be checked.
                "propensity": off["probs"].ravel(),
                "base_conversion": conv_b[:, ctrl][rep],
                "base_revenue": rev_b[:, ctrl][rep],
                "conversion": conv_b.ravel(),
                "revenue": rev_b.ravel(),
                "uplift_conversion": up_conv.ravel(),
                "uplift_revenue": up_rev.ravel(),
                "cost": cost_b.ravel(),
                "uplift_profit": (margin_rate[om, None] * up_rev - cost_b).ravel(),
            }
        )
    else:
        truth["uplift"] = pd.DataFrame()
    pref = aff >= 1e-3
    pm, pc = np.nonzero(pref)
    truth["preferences"] = _frame(
        {
            "member_id": member_ids[pm],
            "category": np.array(cat.categories, dtype=object)[pc],
            "affinity": aff[pm, pc],
        }
    )
    truth["staples"] = _frame(
        {
            "member_id": member_ids[staple_m],
            "product_id": cat.product_ids[staple_p],
            "interval_days": staple_int.astype(np.int32),
        }
    )
    return Block(tables=tables, truth=truth)


def _frame(columns: dict[str, object]) -> pd.DataFrame:
    """DataFrame without pandas' per-column type inference over object arrays (slow, and it
    tries to parse all-None columns as dates)."""
    return pd.DataFrame(
        {
            k: pd.Series(v, dtype=object, copy=False)
            if isinstance(v, np.ndarray) and v.dtype == object
            else v
            for k, v in columns.items()
        }
    )


def _ts(ns: np.ndarray) -> pd.DatetimeIndex:
    """UTC timestamps from int64 nanoseconds (int64 min = NaT), without parsing."""
    return pd.DatetimeIndex(np.asarray(ns, dtype=np.int64).view("datetime64[ns]")).tz_localize(
        "UTC"
    )


def after_join(
    day: np.ndarray, sec: np.ndarray, join_day: np.ndarray, join_sec: np.ndarray
) -> np.ndarray:
    """Seconds of day, squeezed after the joining second on a member's joining day."""
    span = 86_399 - join_sec
    squeezed = join_sec + 1 + (sec - 1) * span // 86_399
    return np.where(day == join_day, squeezed, sec)


def _prefixed(prefix: str, numbers: np.ndarray) -> np.ndarray:
    return (prefix + pd.Series(numbers, dtype=np.int64).astype(str)).to_numpy(dtype=object)


def _eligible_sample(
    rng: np.random.Generator,
    cat: Catalogue,
    cats: np.ndarray,
    day: np.ndarray,
    tier: np.ndarray,
    redraws: int,
) -> np.ndarray:
    """Products by popularity within ``cats``, redrawn while not launched or above the tier."""
    prod = cat.sample(rng, cats)
    for _ in range(redraws + 1):
        bad = (cat.launch_day[prod] > day) | (cat.min_tier[prod] > tier)
        if not bad.any():
            return prod
        prod[bad] = cat.sample(rng, cats[bad])
    bad = (cat.launch_day[prod] > day) | (cat.min_tier[prod] > tier)
    prod[bad] = cat.fallback[cats[bad]]
    return prod


def _staples(
    rng: np.random.Generator, ctx: Context, aff: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(member, product, interval days) for each member's regularly re-bought consumables."""
    cat, bk = ctx.catalogue, ctx.cfg.baskets
    cons = np.flatnonzero(cat.cat_interval > 0)
    if bk.staples_per_member_max == 0 or len(cons) == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    a = aff[:, cons]
    top = np.argsort(-a, axis=1, kind="stable")[:, : bk.staples_per_member_max]
    top_aff = np.take_along_axis(a, top, axis=1)
    m, j = np.nonzero(top_aff >= bk.staple_min_affinity)
    cats = cons[top[m, j]]
    zero = np.zeros(len(cats), np.int64)  # staples are everyday items: no tier, launched before
    prod = _eligible_sample(rng, cat, cats, zero - 1, zero, bk.max_redraws)
    jitter = bk.staple_interval_jitter
    interval = np.maximum(
        np.round(cat.cat_interval[cats] * rng.uniform(1 - jitter, 1 + jitter, len(cats))), 1
    ).astype(np.int64)
    return m.astype(np.int64), prod, interval


def _events(
    rng: np.random.Generator,
    ctx: Context,
    n: int,
    join_day: np.ndarray,
    join_sec: np.ndarray,
    onset: np.ndarray,
    kappa: np.ndarray,
    cause: np.ndarray,
    engage: np.ndarray,
    checkin_rate: np.ndarray,
    service_sens: np.ndarray,
    aff: np.ndarray,
    open_rate: np.ndarray,
    opt_in: np.ndarray,
    fatigue: np.ndarray,
    review_rate: np.ndarray,
    o_member: np.ndarray,
    o_day: np.ndarray,
    o_sec: np.ndarray,
    o_status: np.ndarray,
    o_kind: np.ndarray,
    first_prod: np.ndarray,
    off: dict[str, np.ndarray],
    tier: np.ndarray,
) -> pd.DataFrame:
    cfg, cal, cat = ctx.cfg, ctx.cal, ctx.catalogue
    ch, evc = cfg.churn, cfg.events
    days = cal.days
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]] = []

    def add(m: np.ndarray, d: np.ndarray, s: np.ndarray, etype: str, prod=None, value=None) -> None:
        keep = (d >= 0) & (d < days) & (d >= join_day[m])
        m, d, s = m[keep], d[keep], s[keep]
        s = after_join(d, s, join_day[m], join_sec[m])
        p = np.full(len(m), -1) if prod is None else np.asarray(prod)[keep]
        v = np.full(len(m), np.nan) if value is None else np.asarray(value, dtype=float)[keep]
        parts.append((m, d, s, EV[etype], p, v))

    def secs(k: int) -> np.ndarray:
        return rng.integers(1, 86_400, k)

    d_idx = np.arange(days)
    # Visit propensity: 0 before joining; after the onset it fades `engagement_slowdown` times
    # slower than orders, towards a floor (leaving members keep looking without buying).
    base_w = np.ones((n, days), dtype=np.float32)
    late = np.flatnonzero(join_day > 0)
    base_w[late] *= d_idx[None, :] >= join_day[late, None]
    dec_rows = np.flatnonzero(onset < days)
    since = np.clip(d_idx[None, :] - onset[dec_rows, None], 0, None).astype(np.float32)
    slow = (kappa[dec_rows] * ch.engagement_slowdown)[:, None].astype(np.float32)
    floor = np.float32(ch.engagement_floor)
    base_w[dec_rows] *= floor + (1 - floor) * np.exp(-since / slow)
    del since
    season = cal.season[:days].astype(np.float32)
    login_w = np.outer((engage / 365.0).astype(np.float32), season)
    login_w *= base_w

    m, d = sample_days(rng, login_w)
    add(m, d, secs(len(m)), "login")

    def boosted(w: np.ndarray, scale: float, spec: dict[str, float]) -> np.ndarray:
        """w × scale, × the cause's boost after the onset (browsing, abandoned carts)."""
        b = np.array([spec.get(c, spec["default"]) for c in cause], dtype=np.float32)
        out = w * np.float32(scale)
        rows = dec_rows[b[dec_rows] != 1]
        out[rows] *= np.where(d_idx[None, :] >= onset[rows, None], b[rows, None], 1).astype(
            np.float32
        )
        return out

    def browse_products(m: np.ndarray, d: np.ndarray) -> np.ndarray:
        # Members leaving for assortment reasons browse outside their usual categories.
        mismatch = (cause[m] == "assortment_mismatch") & (d >= onset[m])
        probs = aff[m].copy()
        probs[mismatch] = 1.0 / aff.shape[1]
        c = _rows_choice(rng, probs)
        return _eligible_sample(rng, cat, c, d, tier[m], cfg.baskets.max_redraws)

    m, d = sample_days(rng, boosted(login_w, evc.browse_views_per_login, ch.browse_boost))
    add(m, d, secs(len(m)), "view", browse_products(m, d))
    m, d = sample_days(
        rng, boosted(login_w, evc.abandoned_carts_per_login, ch.abandoned_cart_boost)
    )
    add(m, d, secs(len(m)), "cart", browse_products(m, d))
    del login_w
    m, d = sample_days(rng, base_w * (checkin_rate / 365.0)[:, None].astype(np.float32))
    add(m, d, secs(len(m)), "checkin")
    m, d = sample_days(rng, base_w * np.float32(evc.referral_per_year / 365.0))
    add(m, d, secs(len(m)), "referral")
    del base_w

    # Order-linked: a view and a cart of the first item shortly before each order.
    has = first_prod >= 0
    om, od, osec = o_member[has], o_day[has], o_sec[has]
    add(om, od, np.maximum(osec - rng.integers(300, 3_600, len(om)), 1), "view", first_prod[has])
    add(om, od, np.maximum(osec - rng.integers(30, 300, len(om)), 1), "cart", first_prod[has])
    # Reviews of completed orders (rating lower once the member has started to leave).
    comp = np.flatnonzero((o_status == 0) & (rng.random(len(o_member)) < review_rate[o_member]))
    lag = rng.integers(evc.review_lag_days[0], evc.review_lag_days[1] + 1, len(comp))
    leaving = o_day[comp] >= onset[o_member[comp]]
    rating = np.clip(np.round(rng.normal(np.where(leaving, 3.0, 4.4), 0.8)), 1, 5)
    add(o_member[comp], o_day[comp] + lag, secs(len(comp)), "review", first_prod[comp], rating)
    sh = np.flatnonzero(rng.random(len(o_member)) < evc.share_per_order)
    add(o_member[sh], o_day[sh], np.minimum(o_sec[sh] + 600, 86_399), "share", first_prod[sh])
    # Returns: a return request after each returned order, sometimes a service ticket; the planted
    # service incidents (onset of `service_issue`) add several tickets over the following days.
    rt = np.flatnonzero(o_status == 1)
    lag = rng.integers(evc.return_request_lag_days[0], evc.return_request_lag_days[1] + 1, len(rt))
    add(o_member[rt], o_day[rt] + lag, secs(len(rt)), "return_request", first_prod[rt])
    a_s, b_s = cfg.traces.ticket_service_sensitivity
    p_ticket = evc.service_ticket_per_return * (a_s + b_s * service_sens[o_member[rt]])
    tk = rt[rng.random(len(rt)) < p_ticket]
    add(o_member[tk], o_day[tk] + rng.integers(1, 10, len(tk)), secs(len(tk)), "service_ticket")
    inc = np.flatnonzero(o_kind == 1)
    n_t = rng.integers(ch.service_tickets[0], ch.service_tickets[1] + 1, len(inc))
    rep = np.repeat(inc, n_t)
    add(o_member[rep], o_day[rep] + rng.integers(0, 11, len(rep)), secs(len(rep)), "service_ticket")

    # Messages: newsletters every few days to opted-in members until they unsubscribe, plus one
    # message per campaign offer; opens fall once a member starts to leave (most for fatigue).
    fat = (cause == "message_fatigue") & (onset < days)
    unsub = np.full(n, np.iinfo(np.int64).max // 4)
    unsub[fat] = onset[fat] + np.ceil(
        rng.exponential(ch.fatigue_unsubscribe_days_mean, fat.sum())
    ).astype(np.int64)
    other = ~fat & (rng.random(n) < ch.base_unsubscribe_per_year * days / 365)
    unsub[other] = rng.integers(0, days, other.sum())
    unsub = np.maximum(unsub, join_day + 1)
    add(
        np.flatnonzero(unsub < days),
        unsub[unsub < days],
        secs(int((unsub < days).sum())),
        "unsubscribe",
    )
    every = evc.newsletter_every_days
    phase = rng.integers(0, every, n)
    slots = np.arange((days + every - 1) // every)
    nd = phase[:, None] + slots[None, :] * every
    ok = (nd < days) & (nd >= join_day[:, None]) & (nd < unsub[:, None]) & (opt_in[:, None] == 1)
    mm, jj = np.nonzero(ok)
    sent_m = np.concatenate([mm, off["member"].astype(np.int64)])
    sent_d = np.concatenate([nd[mm, jj], off["day"].astype(np.int64)])
    sent_s = np.concatenate(
        [rng.integers(9 * 3600, 11 * 3600, len(mm)), off["sec"].astype(np.int64)]
    )
    add(sent_m, sent_d, sent_s, "message_sent")
    declining = sent_d >= onset[sent_m]
    factor = np.where(
        declining,
        np.where(
            cause[sent_m] == "message_fatigue",
            ch.fatigue_open_rate_factor,
            ch.declining_open_rate_factor,
        ),
        1.0,
    )
    opened = rng.random(len(sent_m)) < open_rate[sent_m] * factor
    delay = rng.integers(60, 2 * 86_400, int(opened.sum()))
    t = sent_s[opened] + delay
    add(sent_m[opened], sent_d[opened] + t // 86_400, t % 86_400 + 1, "message_open")

    m = np.concatenate([p[0] for p in parts])
    d = np.concatenate([p[1] for p in parts])
    s = np.concatenate([p[2] for p in parts])
    e = np.concatenate([np.full(len(p[0]), p[3]) for p in parts])
    p = np.concatenate([p[4] for p in parts])
    v = np.concatenate([p[5] for p in parts])
    ts = cal.stamps(d, s)
    order = np.lexsort((e, ts, m))
    m, ts, e, p, v = m[order], ts[order], e[order], p[order], v[order]
    prod_ids = np.where(p >= 0, cat.product_ids[np.maximum(p, 0)], None)
    return _frame(
        {
            "member_local": m,
            "occurred_at": _ts(ts),
            "event_type": np.array(EVENT_TYPES, dtype=object)[e],
            "product_id": prod_ids,
            "value": v,
        }
    )
