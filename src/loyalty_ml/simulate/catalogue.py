"""The synthetic product catalogue: categories, brands, power-law popularity, prices, launches,
tier-exclusive items, and the item-to-item structure (complements, successors) baskets follow."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from loyalty_ml.simulate.calendar import Calendar
from loyalty_ml.simulate.config import TIERS, SimulatorConfig


@dataclass(frozen=True)
class Catalogue:
    """Products in id order (index = product number) plus sampling helpers."""

    categories: tuple[str, ...]
    cat: np.ndarray  # category index per product
    pop: np.ndarray  # probability of the product within its category (sums to 1 per category)
    price: np.ndarray
    cost: np.ndarray
    brand: np.ndarray  # brand index (global)
    min_tier: np.ndarray  # tier rank (0 = everyone)
    launch_day: np.ndarray  # day index relative to the period start (negative = before)
    successor: np.ndarray  # product index of the "next item" of each product
    complement: np.ndarray  # product index bought together with each product
    by_cat: np.ndarray  # product indices sorted by (category, popularity rank)
    cum_by_cat: np.ndarray  # category index + cumulative within-category probability
    fallback: np.ndarray  # per category: most popular product every member can always buy
    cat_mean_price: np.ndarray  # popularity-weighted mean price per category
    cat_interval: np.ndarray  # consumable re-buy interval per category (0 = not consumable)
    product_ids: np.ndarray  # string ids

    @property
    def n(self) -> int:
        return len(self.cat)

    def sample(self, rng: np.random.Generator, cats: np.ndarray) -> np.ndarray:
        """One product per entry of ``cats``, by popularity within that category."""
        u = rng.random(len(cats))
        # Scale u slightly below 1 so float rounding at a category's end never spills over.
        pos = np.searchsorted(self.cum_by_cat, cats + u * (1 - 1e-9), side="right")
        return self.by_cat[np.minimum(pos, len(self.by_cat) - 1)]


def _counts(shares: np.ndarray, total: int) -> np.ndarray:
    """Integer counts proportional to shares, summing to total, at least 1 each."""
    raw = shares / shares.sum() * total
    counts = np.maximum(np.floor(raw).astype(np.int64), 1)
    order = np.argsort(-(raw - np.floor(raw)), kind="stable")
    i = 0
    while counts.sum() < total:
        counts[order[i % len(order)]] += 1
        i += 1
    while counts.sum() > total:
        j = int(np.argmax(counts))
        counts[j] -= 1
    return counts


def build_catalogue(cfg: SimulatorConfig, cal: Calendar) -> Catalogue:
    cc = cfg.catalogue
    rng = np.random.default_rng([cfg.seed, 0])
    names = tuple(cc.categories)
    specs = [cc.categories[c] for c in names]
    shares = np.array([s[0] for s in specs], dtype=float)
    counts = _counts(shares, cc.n_products)
    n = int(counts.sum())

    # Products are laid out by (category, popularity rank), then given shuffled ids so an id
    # says nothing about popularity.
    cat_sorted = np.repeat(np.arange(len(names)), counts)
    rank = np.concatenate([np.arange(1, k + 1) for k in counts]).astype(float)
    weight = rank ** (-cc.zipf_exponent)
    cat_tot = np.bincount(cat_sorted, weights=weight)
    pop_sorted = weight / cat_tot[cat_sorted]
    perm = rng.permutation(n)  # perm[sorted position] = product number
    cat = np.empty(n, dtype=np.int64)
    cat[perm] = cat_sorted
    pop = np.empty(n)
    pop[perm] = pop_sorted

    mean_price = np.array([s[1] for s in specs], dtype=float)[cat]
    margin_c = np.array([s[2] for s in specs], dtype=float)[cat]
    sigma = cc.price_sigma
    price = mean_price * np.exp(rng.normal(-sigma * sigma / 2, sigma, n))
    price = np.maximum(np.round(price) - 0.01, 0.99)
    margin = np.clip(margin_c * rng.uniform(0.8, 1.2, n), 0.05, 0.9)
    cost = np.round(price * (1 - margin), 2)

    brank = np.arange(1, cc.brands_per_category + 1, dtype=float) ** (-cc.brand_zipf_exponent)
    brand_local = rng.choice(cc.brands_per_category, size=n, p=brank / brank.sum())
    brand = cat * cc.brands_per_category + brand_local

    min_tier = np.zeros(n, dtype=np.int64)
    u = rng.random(n)
    lo = 0.0
    for tier, share in cc.tier_exclusive_share.items():
        min_tier[(u >= lo) & (u < lo + share)] = TIERS.index(tier)
        lo += share

    is_new = rng.random(n) < cc.new_product_share
    launch_day = np.where(
        is_new,
        rng.integers(1, cal.days, n),
        -rng.integers(1, 3 * 365, n),
    )

    by_cat = perm  # product numbers in (category, rank) order
    cum_within = np.concatenate(
        [
            np.cumsum(pop_sorted[s : s + k])
            for s, k in zip(np.r_[0, np.cumsum(counts)[:-1]], counts, strict=True)
        ]
    )
    cum_by_cat = cat_sorted + np.minimum(cum_within, 1.0)

    always = (min_tier == 0) & (launch_day < 0)
    fallback = np.empty(len(names), dtype=np.int64)
    for c in range(len(names)):
        members = by_cat[cat_sorted == c]
        ok = members[always[members]]
        fallback[c] = ok[0] if len(ok) else members[0]

    def _sample(cats: np.ndarray) -> np.ndarray:
        uu = rng.random(len(cats))
        pos = np.searchsorted(cum_by_cat, cats + uu * (1 - 1e-9), side="right")
        return by_cat[np.minimum(pos, n - 1)]

    # Successor: the product a buyer of this one tends to buy next (same brand when possible),
    # a learnable item-to-item sequence. Drawn by popularity so it is not a random tail item.
    succ = _sample(cat)
    same_brand = rng.random(n) < cc.successor_same_brand
    for _ in range(6):  # redraw until same brand (vectorised rejection; a few rounds suffice)
        redo = same_brand & ((brand[succ] != brand) | (succ == np.arange(n)))
        if not redo.any():
            break
        succ[redo] = _sample(cat[redo])
    still_self = succ == np.arange(n)
    succ[still_self] = fallback[cat[still_self]]
    comp_cat_idx = np.array(
        [names.index(s[4]) if s[4] is not None else i for i, s in enumerate(specs)]
    )
    complement = _sample(comp_cat_idx[cat])

    cat_mean_price = np.bincount(cat, weights=pop * price, minlength=len(names))
    cat_interval = np.array([s[3] or 0 for s in specs], dtype=float)
    width = max(6, len(str(n)))
    product_ids = np.array([f"{cfg.ids.product}{i:0{width}d}" for i in range(n)], dtype=object)
    return Catalogue(
        categories=names,
        cat=cat,
        pop=pop,
        price=price,
        cost=cost,
        brand=brand,
        min_tier=min_tier,
        launch_day=launch_day,
        successor=succ,
        complement=complement,
        by_cat=by_cat,
        cum_by_cat=cum_by_cat,
        fallback=fallback,
        cat_mean_price=cat_mean_price,
        cat_interval=cat_interval,
        product_ids=product_ids,
    )


def products_frame(catalogue: Catalogue, cal: Calendar, cfg: SimulatorConfig) -> pd.DataFrame:
    """The contract ``products`` table."""
    c = catalogue
    cats = np.array(c.categories, dtype=object)
    bpc = cfg.catalogue.brands_per_category
    brand_names = np.array(
        [f"{cats[b // bpc][:4]}_brand_{b % bpc + 1:02d}" for b in range(len(cats) * bpc)],
        dtype=object,
    )
    # Launch time: 09:00 UTC on the launch day (catalogue updates happen in the morning).
    launched = cal.day_start(c.launch_day) + pd.Timedelta(hours=9)
    return pd.DataFrame(
        {
            "product_id": c.product_ids,
            "category": cats[c.cat],
            "brand": brand_names[c.brand],
            "price": c.price,
            "cost": c.cost,
            "min_tier": np.array(TIERS, dtype=object)[c.min_tier],
            "launched_at": launched,
        }
    )
