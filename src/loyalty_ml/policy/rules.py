"""Point-in-time rules: tier order, product tier filter, points to earn, benefit eligibility.

Pure functions: a member state (one row of :func:`loyalty_ml.policy.replay`, or a
:class:`MemberState`) and the configuration in, a decision out. Each scalar function has a
vectorised twin over arrays/DataFrames with the same semantics (tests hold them equal).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loyalty_ml.contract.schema import CONTROL_BENEFIT
from loyalty_ml.errors import ConfigError, LoyaltyError
from loyalty_ml.policy.config import PolicyConfig, load_policy
from loyalty_ml.timeutil import to_utc

# Float products like 0.29 × 100 land just below an integer; points are whole, so floor with a
# tolerance far below one point.
_FLOOR_EPS = 1e-9

#: Reason codes :func:`eligibility` may return (stable: the API and the CLI report them).
INELIGIBLE_REASONS = (
    "unknown_benefit",
    "not_yet_valid",
    "expired",
    "tier_too_low",
    "not_birth_month",
    "monthly_limit",
    "yearly_limit",
)


def _cfg(config: PolicyConfig | None) -> PolicyConfig:
    return config if config is not None else load_policy()


def tier_index(name: Any, config: PolicyConfig | None = None) -> Any:
    """Position of a tier in the order (0 = lowest); arrays/Series map element-wise."""
    cfg = _cfg(config)
    if isinstance(name, str):
        return cfg.tier_index(name)
    values = pd.Series(np.asarray(name, dtype=object))
    mapping = {n: i for i, n in enumerate(cfg.tier_names)}
    out = values.map(mapping)
    unknown = values[out.isna()].unique()
    if len(unknown):
        raise ConfigError(
            f"unknown tier(s) {sorted(map(str, unknown))} (tiers: {', '.join(cfg.tier_names)})"
        )
    return out.to_numpy(dtype=np.int64)


def tier_name(index: int, config: PolicyConfig | None = None) -> str:
    return _cfg(config).tier_names[int(index)]


def allowed_for_tier(
    product_min_tier: Any, member_tier: Any, config: PolicyConfig | None = None
) -> Any:
    """Whether a member of ``member_tier`` may see/buy a product restricted to ``product_min_tier``.

    Missing product tiers (None/NaN/"") mean unrestricted. Works on scalars or arrays; with an
    array of products and one member tier it broadcasts (the recommender's use).
    """
    cfg = _cfg(config)
    mapping = {n: i for i, n in enumerate(cfg.tier_names)}
    scalar = isinstance(product_min_tier, str | type(None)) or np.ndim(product_min_tier) == 0

    def _idx(values: Any, what: str, missing: int) -> np.ndarray:
        ser = pd.Series(np.atleast_1d(np.asarray(values, dtype=object)))
        blank = ser.isna() | (ser.astype(str).str.strip() == "")
        mapped = ser.where(~blank).map(mapping)
        bad = ser[~blank & mapped.isna()].unique()
        if len(bad):
            raise LoyaltyError(
                f"unknown {what} tier(s) {sorted(map(str, bad))} "
                f"(tiers: {', '.join(cfg.tier_names)})"
            )
        return mapped.fillna(missing).to_numpy(dtype=np.int64)

    product = _idx(product_min_tier, "product", missing=0)
    member = (
        np.asarray(member_tier, dtype=np.int64)
        if np.issubdtype(np.asarray(member_tier).dtype, np.integer)
        else _idx(member_tier, "member", missing=0)
    )
    result = member >= product
    return bool(result[0]) if scalar and np.ndim(member_tier) == 0 else result


def points_to_earn(
    tier: Any,
    price: Any,
    at: Any,
    config: PolicyConfig | None = None,
    birth_month: Any = None,
) -> Any:
    """Points a purchase of ``price`` earns at ``at`` for a member of ``tier``.

    ``floor(price × earn_per_unit × tier multiplier × birthday multiplier)``; the birthday
    multiplier applies when ``at`` falls in the member's birth month (UTC). Scalars give an int;
    arrays (tier names or indices, prices, times, birth months) give an int64 array.
    """
    cfg = _cfg(config)
    mults = np.array([cfg.points.tier_multipliers[n] for n in cfg.tier_names], dtype=float)
    scalar = np.ndim(price) == 0 and (isinstance(tier, str | int | np.integer))
    tier_arr = np.atleast_1d(np.asarray(tier))
    idx = (
        tier_arr.astype(np.int64)
        if np.issubdtype(tier_arr.dtype, np.integer)
        else tier_index(tier_arr, cfg)
    )
    price_arr = np.atleast_1d(np.asarray(price, dtype=float))
    if np.any(price_arr < 0):
        raise LoyaltyError("points_to_earn: price must be >= 0")
    months = _utc_months(at)
    bday = np.ones_like(price_arr)
    if birth_month is not None:
        bm = np.atleast_1d(pd.to_numeric(pd.Series(np.atleast_1d(birth_month)), errors="coerce"))
        bday = np.where(bm == months, cfg.points.birthday_multiplier, 1.0)
    raw = price_arr * cfg.points.earn_per_unit * mults[idx] * bday
    pts = np.floor(raw + _FLOOR_EPS).astype(np.int64)
    return int(pts[0]) if scalar else pts


def _utc_months(at: Any) -> np.ndarray:
    """Calendar month (1-12, UTC) of a time or of each time in an array/Series/index."""
    if isinstance(at, str | pd.Timestamp) or np.ndim(at) == 0:
        return np.array([to_utc(at).month])
    if isinstance(at, pd.Series):
        at = pd.DatetimeIndex(at)
    if isinstance(at, pd.DatetimeIndex):
        # Never iterate Timestamps (slow at 1M rows): month arithmetic on UTC datetime64.
        at = (at.tz_convert("UTC").tz_localize(None) if at.tz is not None else at).to_numpy()
    arr = np.asarray(at)
    if not np.issubdtype(arr.dtype, np.datetime64):
        arr = pd.DatetimeIndex(pd.to_datetime(arr, utc=True)).tz_localize(None).to_numpy()
    return arr.astype("datetime64[M]").astype(np.int64) % 12 + 1


# --------------------------------------------------------------------------- eligibility


@dataclass(frozen=True)
class MemberState:
    """What eligibility needs to know about a member at a point in time.

    ``benefit_tier`` is the tier whose benefits apply (the old tier during a post-downgrade
    transition); it defaults to ``tier``. ``used_month``/``used_year`` count the benefit grants in
    the calendar month/year of the decision.
    """

    member_id: str
    tier: str
    benefit_tier: str | None = None
    birth_month: int | None = None
    used_month: Mapping[str, int] = field(default_factory=dict)
    used_year: Mapping[str, int] = field(default_factory=dict)

    @property
    def effective_tier(self) -> str:
        return self.benefit_tier or self.tier

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | pd.Series) -> MemberState:
        """From one row of :func:`loyalty_ml.policy.replay` output."""
        get = row.get
        used_m: dict[str, int] = {}
        used_y: dict[str, int] = {}
        for key in row.keys():  # noqa: SIM118 (works for Series and Mapping)
            key = str(key)
            if key.startswith("used_month__"):
                used_m[key.removeprefix("used_month__")] = int(get(key) or 0)
            elif key.startswith("used_year__"):
                used_y[key.removeprefix("used_year__")] = int(get(key) or 0)
        bm = get("birth_month")
        return cls(
            member_id=str(get("member_id", "")),
            tier=str(get("tier")),
            benefit_tier=None if pd.isna(get("benefit_tier", None)) else str(get("benefit_tier")),
            birth_month=None if bm is None or pd.isna(bm) else int(bm),
            used_month=used_m,
            used_year=used_y,
        )


@dataclass(frozen=True)
class Eligibility:
    allowed: bool
    reason: str | None = None
    detail: str | None = None

    def __bool__(self) -> bool:
        return self.allowed


def eligibility(
    state: MemberState | Mapping[str, Any] | pd.Series,
    benefit_id: str,
    at: Any,
    config: PolicyConfig | None = None,
) -> Eligibility:
    """May this member receive ``benefit_id`` at ``at``? The first failing rule is the reason."""
    cfg = _cfg(config)
    if not isinstance(state, MemberState):
        state = MemberState.from_row(state)
    benefit = cfg.benefits.get(benefit_id)
    if benefit is None:
        return Eligibility(False, "unknown_benefit", f"{benefit_id!r} is not in the catalogue")
    if benefit_id == CONTROL_BENEFIT:
        return Eligibility(True)
    t = to_utc(at)
    if benefit.valid_from is not None and t < benefit.valid_from:
        return Eligibility(False, "not_yet_valid", f"valid from {benefit.valid_from:%Y-%m-%d}")
    if benefit.valid_until is not None and t > benefit.valid_until:
        return Eligibility(False, "expired", f"valid until {benefit.valid_until:%Y-%m-%d}")
    have = cfg.tier_index(state.effective_tier)
    need = cfg.tier_index(benefit.min_tier)
    if have < need:
        return Eligibility(
            False, "tier_too_low", f"needs {benefit.min_tier}, member has {state.effective_tier}"
        )
    if benefit.birth_month_only and state.birth_month != t.month:
        return Eligibility(False, "not_birth_month", "only in the member's birth month")
    if benefit.max_per_month is not None:
        used = int(state.used_month.get(benefit_id, 0))
        if used >= benefit.max_per_month:
            return Eligibility(
                False, "monthly_limit", f"{used} of {benefit.max_per_month} this month"
            )
    if benefit.max_per_year is not None:
        used = int(state.used_year.get(benefit_id, 0))
        if used >= benefit.max_per_year:
            return Eligibility(False, "yearly_limit", f"{used} of {benefit.max_per_year} this year")
    return Eligibility(True)


def eligibility_reasons(
    states: pd.DataFrame,
    benefit_ids: Sequence[str] | None,
    at: Any,
    config: PolicyConfig | None = None,
) -> pd.DataFrame:
    """Vectorised :func:`eligibility`: one column per benefit, the reason code or None (allowed).

    ``states`` needs ``tier`` (or ``benefit_tier``); ``birth_month`` and ``used_month__<id>`` /
    ``used_year__<id>`` columns are used when present (absent means unknown birth month / none
    used).
    """
    cfg = _cfg(config)
    ids = list(benefit_ids) if benefit_ids is not None else list(cfg.benefit_ids)
    t = to_utc(at)
    n = len(states)
    tier_col = states["benefit_tier"] if "benefit_tier" in states else states["tier"]
    if "benefit_tier" in states and "tier" in states:
        tier_col = tier_col.where(tier_col.notna(), states["tier"])
    have = tier_index(tier_col.to_numpy(dtype=object), cfg) if n else np.zeros(0, np.int64)
    birth = (
        pd.to_numeric(states["birth_month"], errors="coerce").to_numpy(dtype=float)
        if "birth_month" in states
        else np.full(n, np.nan)
    )
    out: dict[str, np.ndarray] = {}
    for bid in ids:
        reason = np.full(n, None, dtype=object)
        benefit = cfg.benefits.get(bid)
        if benefit is None:
            reason[:] = "unknown_benefit"
            out[bid] = reason
            continue
        if bid == CONTROL_BENEFIT:
            out[bid] = reason
            continue
        # Fill in reverse priority so the first failing rule (as in eligibility()) wins.
        if benefit.max_per_year is not None:
            used = _used(states, f"used_year__{bid}", n)
            reason[used >= benefit.max_per_year] = "yearly_limit"
        if benefit.max_per_month is not None:
            used = _used(states, f"used_month__{bid}", n)
            reason[used >= benefit.max_per_month] = "monthly_limit"
        if benefit.birth_month_only:
            reason[birth != t.month] = "not_birth_month"
        reason[have < cfg.tier_index(benefit.min_tier)] = "tier_too_low"
        if benefit.valid_until is not None and t > benefit.valid_until:
            reason[:] = "expired"
        if benefit.valid_from is not None and t < benefit.valid_from:
            reason[:] = "not_yet_valid"
        out[bid] = reason
    return pd.DataFrame(out, index=states.index, columns=ids)


def _used(states: pd.DataFrame, column: str, n: int) -> np.ndarray:
    if column not in states:
        return np.zeros(n, dtype=np.int64)
    return pd.to_numeric(states[column], errors="coerce").fillna(0).to_numpy(dtype=np.int64)


def eligible_matrix(
    states: pd.DataFrame,
    benefit_ids: Sequence[str] | None,
    at: Any,
    config: PolicyConfig | None = None,
) -> pd.DataFrame:
    """Boolean member × benefit matrix (index of ``states``); reasons: :func:`eligibility_reasons`."""
    reasons = eligibility_reasons(states, benefit_ids, at, config)
    return reasons.isna()
