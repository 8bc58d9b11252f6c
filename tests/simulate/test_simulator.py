"""Simulator: determinism, the data contract, and statistical sanity against the planted truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loyalty_ml.contract.io import load_dataset
from loyalty_ml.contract.schema import CONTROL_BENEFIT, EVENT_TYPES, ORDER_STATUSES
from loyalty_ml.simulate import Truth, generate, load_config, oracle_item_scores, oracle_scores
from loyalty_ml.simulate import simulate as run_simulation


@pytest.fixture(scope="module")
def shop() -> tuple:
    """A year of a 3,000-member shop: large enough for 3-sigma checks, small enough to be fast."""
    return run_simulation(load_config(members=3000, days=365, seed=11))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    generate(load_config(members=400, days=90, seed=5, block_size=150), out)
    return out


def _tiny(seed: int):
    return run_simulation(load_config(members=300, days=60, seed=seed, block_size=120))


def test_same_seed_same_data_and_different_seed_differs() -> None:
    a, ta = _tiny(1)
    b, tb = _tiny(1)
    c, _ = _tiny(2)
    for name, frame in a.tables().items():
        pd.testing.assert_frame_equal(frame, b.tables()[name], obj=name)
    pd.testing.assert_frame_equal(ta.churn, tb.churn)
    pd.testing.assert_frame_equal(ta.uplift, tb.uplift)
    assert not a.orders["amount"].equals(c.orders["amount"])
    assert not a.members["joined_at"].equals(c.members["joined_at"])


def test_generate_writes_what_simulate_returns(written: Path) -> None:
    on_disk = load_dataset(written)
    in_memory, truth = run_simulation(load_config(members=400, days=90, seed=5, block_size=150))
    for name, frame in in_memory.tables().items():
        pd.testing.assert_frame_equal(
            on_disk.tables()[name], frame, obj=name, check_dtype=False, check_like=True
        )
    disk_truth = Truth.load(written / "truth")
    pd.testing.assert_frame_equal(
        disk_truth.churn.reset_index(drop=True),
        truth.churn,
        check_dtype=False,
    )
    assert set(disk_truth.uplift.columns) >= {
        "member_id",
        "benefit_id",
        "uplift_conversion",
        "uplift_revenue",
        "cost",
        "base_conversion",
        "base_revenue",
    }


def test_contract_is_satisfied(written: Path) -> None:
    ds = load_dataset(written)
    members = set(ds.members["member_id"])
    assert ds.members["member_id"].is_unique
    assert ds.orders["order_id"].is_unique
    assert ds.offers["offer_id"].is_unique
    for frame, col in [
        (ds.orders, "member_id"),
        (ds.events, "member_id"),
        (ds.offers, "member_id"),
    ]:
        assert frame[col].dtype == "string"
        assert set(frame[col]) <= members
    assert set(ds.order_items["order_id"]) <= set(ds.orders["order_id"])
    assert set(ds.order_items["product_id"]) <= set(ds.products["product_id"])
    viewed = ds.events["product_id"].dropna()
    assert set(viewed) <= set(ds.products["product_id"])
    assert not ds.order_items.duplicated(["order_id", "product_id"]).any()
    assert (ds.orders["amount"] >= 0).all() and (ds.orders["discount"] >= 0).all()
    assert set(ds.orders["status"]) <= set(ORDER_STATUSES)
    assert set(ds.events["event_type"]) <= set(EVENT_TYPES)
    assert (ds.offers["propensity"] > 0).all() and (ds.offers["propensity"] <= 1).all()
    assert (ds.offers["revenue"] >= 0).all() and (ds.offers["cost"] >= 0).all()
    # Nothing happens before a member joined.
    joined = ds.members.set_index("member_id")["joined_at"]
    assert (ds.orders["ordered_at"] >= ds.orders["member_id"].map(joined)).all()
    assert (ds.events["occurred_at"] >= ds.events["member_id"].map(joined)).all()
    # Coupons are recorded on orders with the benefit id and a matching discount.
    coupons = ds.orders.dropna(subset=["coupon_id"])
    assert coupons["coupon_id"].str.startswith("coupon_").all()
    assert (coupons["discount"] > 0).all()


def test_volumes_look_like_a_shop(shop: tuple) -> None:
    ds, truth = shop
    n = len(ds.members)
    completed = ds.orders[ds.orders["status"] == "completed"]
    per_member = completed.groupby("member_id").size()
    active = truth.members.set_index("member_id")["segment"] != "inactive"
    heavy_enough = per_member[per_member >= 4]
    assert 6 <= heavy_enough.median() <= 20
    assert 20 <= len(ds.events) / n <= 80
    share = ds.orders["status"].value_counts(normalize=True)
    assert share["completed"] > 0.85
    assert active.mean() > 0.8
    # Some members join during the period, some products launch during it.
    start = pd.Timestamp(truth.meta["start"])
    assert (ds.members["joined_at"] >= start).mean() > 0.1
    assert (ds.products["launched_at"] >= start).mean() > 0.05
    assert set(ds.products["min_tier"]) == {"normal", "silver", "gold", "diamond"}


def test_power_law_popularity(shop: tuple) -> None:
    ds, _ = shop
    units = ds.order_items.groupby("product_id")["quantity"].sum().sort_values(ascending=False)
    top = units.iloc[: max(1, len(ds.products) // 10)].sum()
    assert top / units.sum() > 0.5


def test_churners_go_quiet_before_they_leave(shop: tuple) -> None:
    ds, truth = shop
    start = pd.Timestamp(truth.meta["start"])
    m = truth.members
    leavers = m[
        (m["onset_at"] >= start + pd.Timedelta(days=120))
        & (m["onset_at"] < start + pd.Timedelta(days=300))
    ]
    assert len(leavers) > 100

    def rate(frame: pd.DataFrame, col: str, lo: int, hi: int) -> float:
        onset = frame["member_id"].map(leavers.set_index("member_id")["onset_at"])
        dt = (frame[col] - onset).dt.days
        return float(((dt >= lo) & (dt < hi)).sum()) / len(leavers)

    done = ds.orders[
        ds.orders["member_id"].isin(leavers["member_id"]) & (ds.orders["status"] == "completed")
    ]
    logins = ds.events[
        ds.events["member_id"].isin(leavers["member_id"]) & (ds.events["event_type"] == "login")
    ]
    orders_before, orders_after = rate(done, "ordered_at", -60, 0), rate(done, "ordered_at", 30, 90)
    logins_before, logins_after = (
        rate(logins, "occurred_at", -60, 0),
        rate(logins, "occurred_at", 30, 90),
    )
    assert orders_after < 0.35 * orders_before
    # Visits fall more slowly than orders: members keep looking without buying.
    assert logins_after / logins_before > 2 * orders_after / orders_before


def test_planted_causes_leave_traces(shop: tuple) -> None:
    ds, truth = shop
    start = pd.Timestamp(truth.meta["start"])
    m = truth.members[truth.members["onset_at"].between(start, start + pd.Timedelta(days=300))]
    ev = ds.events
    tickets = ev[ev["event_type"] == "service_ticket"].groupby("member_id").size()
    unsub = set(ev.loc[ev["event_type"] == "unsubscribe", "member_id"])
    svc = m[m["cause"] == "service_issue"]["member_id"]
    other = m[~m["cause"].isin(["service_issue"])]["member_id"]
    assert tickets.reindex(svc).fillna(0).mean() > 3 * tickets.reindex(other).fillna(0).mean()
    fat = m[m["cause"] == "message_fatigue"]["member_id"]
    non = m[m["cause"] != "message_fatigue"]["member_id"]
    assert fat.isin(unsub).mean() > 0.5 > 5 * non.isin(unsub).mean()


def test_offers_are_randomized_with_control_in_every_campaign(shop: tuple) -> None:
    ds, truth = shop
    up = truth.uplift[truth.uplift["assigned"]]
    by_campaign = up.groupby("campaign_id")["benefit_id"].apply(set)
    assert len(by_campaign) >= 6
    assert all(CONTROL_BENEFIT in s for s in by_campaign)
    assert ds.offers["propensity"].nunique() > 5  # non-uniform, tier-dependent


def test_realised_offer_outcomes_match_truth(shop: tuple) -> None:
    ds, truth = shop
    assigned = truth.uplift[truth.uplift["assigned"]][["offer_id", "conversion", "revenue", "cost"]]
    df = ds.offers.merge(assigned, on="offer_id", suffixes=("", "_true"))
    assert len(df) == len(ds.offers)
    for benefit, g in df.groupby("benefit_id"):
        p = g["conversion"].to_numpy()
        se = np.sqrt((p * (1 - p)).sum()) / len(g)
        gap = abs(g["converted"].astype(float).mean() - p.mean())
        assert gap <= 3.5 * se + 1e-9, (benefit, gap, se)
        # Revenue truth is an analytic approximation of basket values: loose tolerance.
        rev_se = g["revenue"].std() / np.sqrt(len(g))
        assert (
            abs(g["revenue"].mean() - g["revenue_true"].mean())
            <= 4 * rev_se + 0.15 * g["revenue_true"].mean()
        )


def test_ips_lift_matches_true_uplift(shop: tuple) -> None:
    """The randomization is analysable: IPS estimates of each benefit's lift hit the truth."""
    ds, truth = shop
    df = ds.offers
    y = df["converted"].astype(float).to_numpy()
    w = 1 / df["propensity"].to_numpy()
    true = truth.uplift.groupby("benefit_id")["uplift_conversion"].mean()
    ctrl = (df["benefit_id"] == CONTROL_BENEFIT).to_numpy()
    mu0 = (y * w * ctrl).sum() / len(df)
    props = truth.meta["config"]["campaigns"]["propensities"]
    open_to_all = [b for b in true.index if all(p.get(b, 0) > 0 for p in props.values())]
    checked = 0
    for benefit in open_to_all:
        if benefit == CONTROL_BENEFIT:
            continue
        arm = (df["benefit_id"] == benefit).to_numpy()
        est = (y * w * arm).sum() / len(df) - mu0
        se = np.sqrt(((y * w * arm) ** 2).sum() + ((y * w * ctrl) ** 2).sum()) / len(df)
        assert abs(est - true[benefit]) <= 3.5 * se, (benefit, est, true[benefit], se)
        checked += 1
    assert checked >= 3


def test_targeting_beats_one_benefit_for_all(shop: tuple) -> None:
    _, truth = shop
    up = truth.uplift
    profit = up.pivot_table(index="offer_id", columns="benefit_id", values="uplift_profit")
    eligible = up.pivot_table(index="offer_id", columns="benefit_id", values="propensity") > 0
    open_to_all = eligible.columns[eligible.all()]
    best_single = profit[open_to_all].mean().max()
    oracle = profit.where(eligible).max(axis=1).clip(lower=0).mean()
    assert oracle > 1.5 * best_single
    assert (profit.drop(columns=CONTROL_BENEFIT) < 0).mean().min() > 0.1  # all lose for some


def test_p_churn_is_calibrated_on_a_matured_snapshot(shop: tuple) -> None:
    ds, truth = shop
    end = pd.Timestamp(truth.meta["end_exclusive"])
    done = ds.orders[ds.orders["status"] == "completed"]
    for horizon in (30, 90):
        as_of = end - pd.Timedelta(days=horizon)
        snap = truth.churn[
            (truth.churn["as_of"] == as_of) & (truth.churn["horizon_days"] == horizon)
        ]
        assert len(snap) > 0
        inside = done[(done["ordered_at"] >= as_of) & (done["ordered_at"] < end)]
        y = ~snap["member_id"].isin(inside["member_id"])
        bins = pd.cut(snap["p_churn"], [0, 0.2, 0.4, 0.6, 0.8, 0.95, 1.0], include_lowest=True)
        table = (
            pd.DataFrame({"p": snap["p_churn"], "y": y})
            .groupby(bins, observed=True)
            .agg(n=("y", "size"), p=("p", "mean"), y=("y", "mean"))
        )
        big = table[table["n"] >= 100]
        assert len(big) >= 3
        se = np.sqrt(big["p"] * (1 - big["p"]) / big["n"])
        assert ((big["y"] - big["p"]).abs() <= 4 * se + 0.03).all(), table


def test_snapshots_and_causes(shop: tuple) -> None:
    _, truth = shop
    c = truth.churn
    assert set(c["horizon_days"]) == {30, 90}
    assert c["as_of"].nunique() >= 6
    assert c["p_churn"].between(0, 1).all()
    assert c.loc[c["cause"].notna(), "days_since_onset"].ge(0).all()
    # P(no order in 90 days) ≥ P(no order in 30 days) for the same member and date.
    w = c.pivot_table(index=["member_id", "as_of"], columns="horizon_days", values="p_churn")
    assert (w[90] <= w[30] + 1e-9).all()


def test_oracle_beats_popularity_on_next_period_purchases(shop: tuple, tmp_path: Path) -> None:
    ds, truth = shop
    end = pd.Timestamp(truth.meta["end_exclusive"])
    cut = end - pd.Timedelta(days=60)
    items = ds.order_items.merge(ds.orders[["order_id", "member_id", "ordered_at"]], on="order_id")
    future = items[items["ordered_at"] >= cut]
    past = items[items["ordered_at"] < cut]
    targets = future.groupby("member_id")["product_id"].apply(set)
    members = targets.index[:400].to_numpy()
    scores, product_ids = oracle_scores(truth, members, as_of=cut)
    top = product_ids[np.argsort(-scores, axis=1)[:, :20]]
    popular = past["product_id"].value_counts().index[:20]

    def recall(recs) -> float:
        return float(
            np.mean(
                [
                    len(set(r) & targets[m]) / len(targets[m])
                    for m, r in zip(members, recs, strict=True)
                ]
            )
        )

    oracle_recall = recall(top)
    pop_recall = recall([popular] * len(members))
    assert oracle_recall > 1.5 * pop_recall
    assert scores.shape == (len(members), len(ds.products))


def test_oracle_from_disk_equals_in_memory(written: Path) -> None:
    truth = Truth.load(written / "truth")
    members = truth.members["member_id"].iloc[:25].to_numpy()
    disk, ids = oracle_item_scores(written / "truth", members)
    memory, ids2 = oracle_scores(truth, members)
    np.testing.assert_allclose(disk, memory)
    assert (ids == ids2).all()
    assert (disk.sum(axis=1) > 0).all()


def test_price_and_assortment_leavers_browse_without_buying(shop: tuple) -> None:
    ds, truth = shop
    start = pd.Timestamp(truth.meta["start"])
    m = truth.members[truth.members["onset_at"].between(start, start + pd.Timedelta(days=300))]
    onset = m.set_index("member_id")["onset_at"]
    ev = ds.events[ds.events["member_id"].isin(onset.index)]
    after = ev[ev["occurred_at"] >= ev["member_id"].map(onset)]
    per = after.groupby(["member_id", "event_type"]).size().unstack(fill_value=0)
    per = per.reindex(onset.index, fill_value=0)
    cause = m.set_index("member_id")["cause"]
    carts = per["cart"].groupby(cause).mean()
    assert carts["price_sensitive"] > 1.5 * carts.drop("price_sensitive").mean()
    # Assortment leavers view categories outside their preferences.
    views = after[after["event_type"] == "view"].merge(
        ds.products[["product_id", "category"]], on="product_id"
    )
    pref = truth.preferences.set_index(["member_id", "category"])["affinity"]
    views["aff"] = (
        pref.reindex(pd.MultiIndex.from_frame(views[["member_id", "category"]]))
        .fillna(0)
        .to_numpy()
    )
    low = (views["aff"] < 0.02).groupby(views["member_id"].map(cause)).mean()
    assert low["assortment_mismatch"] > 2 * low.drop("assortment_mismatch").mean()


def test_cli_generate(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from loyalty_ml.cli import app

    out = tmp_path / "shop"
    result = CliRunner().invoke(
        app,
        ["data", "generate", "--members", "150", "--days", "60", "--seed", "3", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "orders" in result.output
    for name in ("members", "orders", "order_items", "products", "events", "offers"):
        assert (out / f"{name}.parquet").is_file()
    for name in Truth.FILES:
        assert (out / "truth" / f"{name}.parquet").is_file()
    assert load_dataset(out).members["member_id"].nunique() == 150


@pytest.mark.parametrize(("members", "days"), [(1, 30), (40, 31)])
def test_short_periods_without_campaigns(members: int, days: int) -> None:
    ds, truth = run_simulation(load_config(members=members, days=days, seed=3))
    assert len(ds.members) == members
    assert len(ds.offers) == 0 and len(truth.uplift) == 0
    assert "uplift_profit" in truth.uplift.columns
    assert set(truth.churn["horizon_days"]) == {30, 90}


def test_contract_validator_finds_nothing(written: Path) -> None:
    validate = pytest.importorskip("loyalty_ml.contract.validate")
    report = validate.validate_dir(written)
    assert report.ok and not report.problems, report.to_text()
