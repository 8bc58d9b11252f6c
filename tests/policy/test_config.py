"""policy.yaml loading: defaults, caching, and invalid configuration naming the key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from loyalty_ml.errors import ConfigError
from loyalty_ml.policy import load_policy

from .conftest import POLICY_FILE, policy_with, raw_policy


def test_defaults(cfg) -> None:
    assert cfg.tier_names == ("normal", "silver", "gold", "diamond")
    assert cfg.reason_codes == (
        "recency_decline",
        "frequency_decline",
        "price_sensitive",
        "service_issue",
        "message_fatigue",
        "points_expiring",
        "downgrade_risk",
        "assortment_mismatch",
    )
    expected = {
        "none",
        "coupon_50",
        "coupon_200_50",
        "coupon_500_100",
        "coupon_1000_300",
        "free_shipping",
        "double_points",
        "category_triple_points",
        "points_gift_2000",
        "new_product_trial",
        "vip_service_48h",
        "birthday_pack",
    }
    assert set(cfg.benefit_ids) == expected
    assert cfg.points.tier_multipliers == {
        "normal": 1.0,
        "silver": 1.2,
        "gold": 1.5,
        "diamond": 2.0,
    }
    assert cfg.contact.max_per_7d == 2 and cfg.contact.quiet_period_hours == 48
    assert cfg.programme_budget(1000) == pytest.approx(80)
    assert cfg.points_value(2000) == pytest.approx(20)
    assert set(cfg.recall.segments) == {"high", "mid", "low", "high_potential"}


def test_cached_per_path_and_default_path(monkeypatch, tmp_path: Path) -> None:
    assert load_policy(POLICY_FILE) is load_policy(POLICY_FILE)
    copy = tmp_path / "p.yaml"
    copy.write_text(POLICY_FILE.read_text())
    monkeypatch.setenv("LOYALTY_POLICY_FILE", str(copy))
    from loyalty_ml.settings import reset_settings_cache

    reset_settings_cache()
    try:
        assert load_policy().tier_names == load_policy(POLICY_FILE).tier_names
    finally:
        reset_settings_cache()


def test_control_always_exists() -> None:
    cfg = policy_with(lambda raw: raw["benefits"].pop("none"))
    assert "none" in cfg.benefits and cfg.benefit_cost("none") == 0


def _set(path: str, value) -> Callable[[dict], None]:
    def edit(raw: dict) -> None:
        node = raw
        *parents, last = path.split(".")
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        node[int(last) if last.isdigit() else last] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (_set("tiers.levels.2.threshold", 500), "tiers.levels.gold.threshold"),
        (_set("tiers.levels.0.threshold", 10), "tiers.levels[0].threshold"),
        (_set("points.earn_per_unit", -1), "points.earn_per_unit"),
        (_set("points.tier_multipliers.gold", -1.5), "points.tier_multipliers.gold"),
        (_set("benefits.coupon_50.min_tier", "platinum"), "benefits.coupon_50.min_tier"),
        (_set("contact.max_per_7d", 6), "contact.max_per_7d"),
        (_set("contact.hard_ceiling_per_7d", 9), "contact.hard_ceiling_per_7d"),
        (_set("benefits.birthday_pack.max_per_month", 3), "benefits.birthday_pack.max_per_month"),
        (_set("reasons.price_sensitive.benefits", ["nope"]), "reasons.price_sensitive.benefits"),
        (_set("recall.segments.mid.benefits", ["nope"]), "recall.segments.mid.benefits"),
        (_set("budget.programme_share_of_revenue", 0), "budget.programme_share_of_revenue"),
        (_set("tiers.growth.behaviour_event_weights.review", -1), "behaviour_event_weights.review"),
        (_set("tiers.yearly_review", "13-01"), "tiers.yearly_review"),
    ],
)
def test_invalid_config_names_key(edit, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        policy_with(edit)


def test_contradictory_caps() -> None:
    # 4 contacts a week need 3 gaps of 60 h = 180 h > 168 h: the cap can never be reached.
    def edit(raw: dict) -> None:
        raw["contact"]["max_per_7d"] = 4
        raw["contact"]["quiet_period_hours"] = 60

    with pytest.raises(ConfigError, match=r"contact\.max_per_7d.*contact\.quiet_period_hours"):
        policy_with(edit)


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tiers: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_policy(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_policy(tmp_path / "absent.yaml")
    assert raw_policy()  # the shipped file parses


def test_offer_log_benefits_accepted_with_warning(cfg) -> None:
    offers = pd.DataFrame(
        {
            "benefit_id": ["coupon_50", "shop_gift_card", "shop_gift_card", "mystery_box"],
            "cost": [50.0, 20.0, 30.0, None],
        }
    )
    extended, warns = cfg.with_offer_log_benefits(offers)
    assert "shop_gift_card" in extended.benefits and "mystery_box" in extended.benefits
    assert extended.benefit_cost("shop_gift_card") == 25.0
    assert extended.benefit_cost("mystery_box") == 0.0
    assert extended.benefits["mystery_box"].min_tier == "normal"
    assert len(warns) == 2 and any("shop_gift_card" in w for w in warns)
    assert "shop_gift_card" not in cfg.benefits  # the cached config is not mutated
    same, none = cfg.with_offer_log_benefits(offers[offers.benefit_id == "coupon_50"])
    assert same is cfg and none == []
