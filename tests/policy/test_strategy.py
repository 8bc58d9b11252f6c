"""Recall strategy comes from the config mapping."""

from __future__ import annotations

import pytest

from loyalty_ml.errors import LoyaltyError
from loyalty_ml.policy import recall_strategy


def test_segments(cfg) -> None:
    high = recall_strategy("high", [], cfg)
    assert high.preferred_benefits[:2] == ("vip_service_48h", "coupon_1000_300")
    low = recall_strategy("low", None, cfg)
    assert all(cfg.benefit_cost(b, 100) <= 50 for b in low.preferred_benefits)
    assert low.max_contacts_7d == cfg.contact.max_per_7d


def test_reasons_refine(cfg) -> None:
    s = recall_strategy("mid", ["price_sensitive", "message_fatigue"], cfg)
    assert cfg.benefits[s.preferred_benefits[0]].kind == "coupon"
    assert s.max_contacts_7d == cfg.contact.max_per_7d - 1 and s.channel_hint == "app"
    svc = recall_strategy("high", "service_issue", cfg)
    assert svc.service_callback and svc.preferred_benefits[0] == "vip_service_48h"
    assert recall_strategy("low", ["assortment_mismatch"], cfg).new_arrivals
    for code in cfg.reason_codes:
        assert recall_strategy("mid", [code], cfg).reasons == (code,)


def test_unknown(cfg) -> None:
    with pytest.raises(LoyaltyError, match="segment"):
        recall_strategy("vip", [], cfg)
    with pytest.raises(LoyaltyError, match="reason"):
        recall_strategy("mid", ["bored"], cfg)
