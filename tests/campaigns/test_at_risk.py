"""The at-risk builder on small frames whose right answer is known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from loyalty_ml.abtest import assign_variant
from loyalty_ml.campaigns.at_risk import (
    AtRiskRequest,
    CampaignPolicy,
    build_at_risk,
    create_at_risk_campaign,
    in_holdout,
)
from loyalty_ml.campaigns.contact_log import ContactView, contacts_frame
from loyalty_ml.campaigns.store_sqlite import SqliteContactLog

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
NO_HOLDOUT = CampaignPolicy(holdout_share=0.0)


def scored(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "member_id": [f"m{i}" for i in range(n)],
            "churn_probability": [0.9 - 0.1 * i for i in range(n)],
            "risk_band": ["high"] * n,
            "value": [100.0] * n,
            "value_segment": ["high" if i % 2 == 0 else "mid" for i in range(n)],
            "reasons": [[{"code": "recency", "weight": 0.5}]] * n,
        }
    )


def options(n: int = 6) -> pd.DataFrame:
    rows = []
    for i in range(n):
        # expected net value grows with i, so the ranking is the reverse of the member order
        rows.append((f"m{i}", "voucher_10", 10.0 + i, 10.0, i != 5))
        rows.append((f"m{i}", "none", 1.0, 0.0, i != 5))
    return pd.DataFrame(
        rows, columns=["member_id", "benefit_id", "expected_net_value", "cost", "eligible"]
    )


def empty_view(**kw) -> ContactView:
    return ContactView(contacts_frame([]), frozenset(), frozenset(), NOW, **kw)


def test_ranked_by_expected_net_value_with_ineligible_counted() -> None:
    built = build_at_risk(scored(), options(), empty_view(), AtRiskRequest("c", 10), NO_HOLDOUT)
    ids = [m["member_id"] for m in built.payload["members"]]
    assert ids == ["m4", "m3", "m2", "m1", "m0"]
    assert built.payload["excluded"]["ineligible"] == 1
    member = built.payload["members"][0]
    assert member["benefit_id"] == "voucher_10" and member["channel"] == "email"
    assert member["strategy"]
    assert len(built.contacts) == 5
    assert member["expected_uplift"] is None  # these options carry no expected_uplift


def test_members_carry_the_chosen_options_expected_uplift() -> None:
    opts = options().assign(
        expected_uplift=lambda f: (
            f["member_id"].str[1:].astype(int) / 100 + (f["benefit_id"] == "voucher_10") * 0.05
        )
    )
    policy = CampaignPolicy(holdout_share=0.5)
    built = build_at_risk(scored(), opts, empty_view(), AtRiskRequest("c", 10), policy)
    members = built.payload["members"]
    assert any(m["holdout"] for m in members) and not all(m["holdout"] for m in members)
    for m in members:
        i = int(m["member_id"][1:])
        expected = 0.0 if m["holdout"] else i / 100 + 0.05 * (m["benefit_id"] == "voucher_10")
        assert m["expected_uplift"] == pytest.approx(expected)


def test_filters_limit_and_budget() -> None:
    request = AtRiskRequest(
        "c", limit=2, budget=15.0, min_probability=0.55, value_segments=("high",)
    )
    built = build_at_risk(scored(), options(), empty_view(), request, NO_HOLDOUT)
    # m0, m2 are high and >= 0.55; the budget funds one voucher (m2's, worth more); m0 is still
    # recalled with its next option, `none` (value 1 > 0)
    members = built.payload["members"]
    assert [(m["member_id"], m["benefit_id"]) for m in members] == [
        ("m2", "voucher_10"),
        ("m0", "none"),
    ]
    assert sum(m["cost"] for m in members) <= 15.0
    assert built.payload["excluded"]["budget"] == 0


def test_members_without_a_funded_positive_option_count_as_budget() -> None:
    opts = options()
    opts = opts[opts["benefit_id"] != "none"]  # only vouchers: no free fallback
    request = AtRiskRequest("c", limit=10, budget=25.0)
    built = build_at_risk(scored(), opts, empty_view(), request, NO_HOLDOUT)
    assert len(built.payload["members"]) == 2
    assert built.payload["excluded"]["budget"] == 3
    assert built.payload["excluded"]["ineligible"] == 1


def test_contact_policy_exclusions_are_counted() -> None:
    log = contacts_frame(
        [
            ("old", "m4", NOW - timedelta(hours=20), "email", "v"),
            ("old", "m3", NOW - timedelta(days=20), "email", "v"),
        ]
    )
    view = ContactView(log, frozenset({"m2"}), frozenset({"m1"}), NOW)
    built = build_at_risk(scored(), options(), view, AtRiskRequest("c", 10), NO_HOLDOUT)
    excluded = built.payload["excluded"]
    assert excluded["suppressed"] == 1 and excluded["unsubscribed"] == 1
    assert excluded["contact_cap"] >= 1  # m4 contacted 20 h ago (quiet period)
    assert "m2" not in {m["member_id"] for m in built.payload["members"]}


def test_holdout_share_kept_as_none_with_propensities() -> None:
    n = 400
    sc = scored(n).assign(value_segment="mid")
    opts = pd.DataFrame(
        {
            "member_id": [f"m{i}" for i in range(n)],
            "benefit_id": "voucher_10",
            "expected_net_value": 5.0,
            "cost": 10.0,
            "eligible": True,
        }
    )
    policy = CampaignPolicy(holdout_share=0.2)
    built = build_at_risk(sc, opts, empty_view(), AtRiskRequest("c", n), policy)
    members = built.payload["members"]
    holdout = [m for m in members if m["holdout"]]
    assert 0.12 < len(holdout) / n < 0.28
    assert all(m["benefit_id"] == "none" and m["cost"] == 0 for m in holdout)
    assert all(m["propensity"] == pytest.approx(0.2) for m in holdout)
    assert all(m["propensity"] == pytest.approx(0.8) for m in members if not m["holdout"])
    assert in_holdout("c", "m1", 0.2) == in_holdout("c", "m1", 0.2)
    # One hash for campaigns and A/B tests: the holdout is the control arm of the campaign's split.
    split = {"control": 0.2, "treatment": 0.8}
    for m in members:
        assert m["holdout"] == (assign_variant("c", m["member_id"], split) == "control")


def test_recorded_through_the_contact_log(tmp_path) -> None:
    log = SqliteContactLog(tmp_path / "cl.sqlite")
    request = AtRiskRequest("c1", 3)
    first = create_at_risk_campaign(log, request, scored(), options(), NO_HOLDOUT, now=NOW)
    assert len(first.payload["members"]) == 3
    # a later campaign sees these contacts (quiet period) and picks the remaining two
    later = create_at_risk_campaign(
        log, AtRiskRequest("c2", 3), scored(), options(), NO_HOLDOUT, now=NOW + timedelta(hours=1)
    )
    first_ids = {m["member_id"] for m in first.payload["members"]}
    later_ids = {m["member_id"] for m in later.payload["members"]}
    assert not first_ids & later_ids
    assert later.payload["excluded"]["contact_cap"] == 3
    offers = log.offers("c1")
    assert len(offers) == 3 and set(offers["benefit_id"]) == {"voucher_10"}


def test_list_is_ranked_and_cut_before_holdout_and_budget() -> None:
    """Regression: holdout members kept their best option's value while treated members got the
    value left after the budget, and the cut to `limit` came last, so holdout crowded the top."""
    import numpy as np

    n, limit, budget, share = 3000, 200, 500.0, 0.1
    rng = np.random.default_rng(7)
    values = 10.0 + 10.0 * rng.random(n)
    ids = [f"m{i}" for i in range(n)]
    sc = scored(n).assign(value_segment="mid", churn_probability=0.7)
    opts = pd.concat(
        [
            pd.DataFrame(
                {"member_id": ids, "benefit_id": "voucher_10", "expected_net_value": values}
            ).assign(cost=10.0, eligible=True),
            pd.DataFrame(
                {"member_id": ids, "benefit_id": "none", "expected_net_value": 1.0}
            ).assign(cost=0.0, eligible=True),
        ],
        ignore_index=True,
    )
    policy = CampaignPolicy(holdout_share=share)
    built = build_at_risk(sc, opts, empty_view(), AtRiskRequest("big", limit, budget), policy)
    members = built.payload["members"]
    assert len(members) == limit  # `none` (value 1 > 0) keeps unfunded treated members listed
    # ranking: exactly the top `limit` candidates by the recall's value, in that order
    top = [ids[i] for i in np.argsort(-values, kind="stable")[:limit]]
    assert {m["member_id"] for m in members} == set(top)
    # order: by the value of the option each member gets, ties in ranking order
    got = [(-m["expected_net_value"], top.index(m["member_id"])) for m in members]
    assert got == sorted(got)
    # holdout: a share of the list within binomial tolerance (3.5 sd)
    held = sum(m["holdout"] for m in members)
    sd = (limit * share * (1 - share)) ** 0.5
    assert abs(held - limit * share) <= 3.5 * sd, held
    assert all(m["benefit_id"] == "none" and m["cost"] == 0 for m in members if m["holdout"])
    # budget: never exceeded, spent on the best treated members
    treated = [m for m in members if not m["holdout"]]
    assert sum(m["cost"] for m in members) <= budget + 1e-9
    funded = [m for m in treated if m["benefit_id"] == "voucher_10"]
    assert len(funded) == int(budget // 10)
    assert funded == treated[: len(funded)]


@pytest.mark.parametrize("limit", [3, 40, 300])
def test_lazy_reasons_give_the_eager_list_and_compute_only_what_is_examined(limit: int) -> None:
    """Reason codes computed on demand (``reasons_for``) must give exactly the list computed
    with every candidate's reasons up front — strategies lower caps and change channels, so
    the contact log and the reasons matter — while examining fewer members for short lists."""
    import random

    rng = random.Random(limit)
    n = 400
    codes = ["recency_decline", "frequency_decline", "message_fatigue", "points_expiring"]
    reasons = {
        f"m{i}": [
            {"code": c, "weight": round(rng.random(), 3)}
            for c in rng.sample(codes, rng.randint(1, 2))
        ]
        for i in range(n)
    }
    frame = pd.DataFrame(
        {
            "member_id": [f"m{i}" for i in range(n)],
            "churn_probability": [round(rng.random(), 2) for _ in range(n)],
            "risk_band": ["high"] * n,
            "value": [100.0] * n,
            "value_segment": [rng.choice(["high", "mid", "low"]) for _ in range(n)],
        }
    )
    opts = pd.DataFrame(
        [
            (f"m{i}", b, round(rng.uniform(-5, 30), 1), cost, rng.random() > 0.05)
            for i in range(n)
            for b, cost in (("coupon_200_50", 50.0), ("double_points", 5.0), ("none", 0.0))
        ],
        columns=["member_id", "benefit_id", "expected_net_value", "cost", "eligible"],
    )
    contacts = contacts_frame(
        [
            (
                f"old{j}",
                f"m{rng.randrange(n)}",
                NOW - timedelta(days=rng.uniform(0, 10)),
                "email",
                "v",
            )
            for j in range(300)
        ]
    )
    view = ContactView(contacts, frozenset({"m1", "m7"}), frozenset({"m2", "m9"}), NOW)
    request = AtRiskRequest("lazy", limit)
    policy = CampaignPolicy(holdout_share=0.1)
    eager = build_at_risk(
        frame.assign(reasons=[reasons[m] for m in frame["member_id"]]), opts, view, request, policy
    )
    asked: list[str] = []

    def reasons_for(ids: list[str]) -> list[list[dict]]:
        asked.extend(ids)
        return [reasons[m] for m in ids]

    lazy = build_at_risk(frame, opts, view, request, policy, reasons_for=reasons_for)
    assert lazy.payload["members"] == eager.payload["members"]
    assert len(lazy.payload["members"]) == min(limit, len(eager.payload["members"]))
    assert lazy.contacts == eager.contacts
    for key in ("suppressed", "unsubscribed", "ineligible", "budget"):
        assert lazy.payload["excluded"][key] == eager.payload["excluded"][key]
    assert len(asked) == len(set(asked))
    if limit < 50:
        assert len(asked) < n // 2
