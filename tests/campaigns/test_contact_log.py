"""Contact-log semantics, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from loyalty_ml.campaigns.contact_log import (
    BuiltCampaign,
    CampaignConflict,
    CampaignNotFound,
    ContactLog,
    ContactRow,
    ContactView,
    body_hash,
)
from loyalty_ml.contract.schema import TABLES

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def builder(members: list[str], calls: list[int] | None = None, holdout: set[str] | None = None):
    holdout = holdout or set()

    def build(view: ContactView) -> BuiltCampaign:
        if calls is not None:
            calls.append(1)
        seen = set(view.contacts["member_id"])
        chosen = [m for m in members if m not in seen and m not in view.suppressed]
        contacts = [
            ContactRow(
                m,
                "email",
                "none" if m in holdout else "voucher_5",
                0.0 if m in holdout else 5.0,
                0.1 if m in holdout else 0.9,
                holdout=m in holdout,
            )
            for m in chosen
        ]
        payload = {
            "members": [{"member_id": m} for m in chosen],
            "excluded": {"contact_cap": len(members) - len(chosen)},
        }
        return BuiltCampaign(payload, contacts)

    return build


def test_idempotent_replay_records_nothing_new(store: ContactLog) -> None:
    calls: list[int] = []
    body = {"campaign_id": "c1", "limit": 3}
    first = store.create_campaign("c1", body, builder(["a", "b"], calls), now=NOW)
    again = store.create_campaign("c1", dict(body), builder(["x", "y", "z"], calls), now=NOW)
    assert again.payload == first.payload
    assert again.replayed and not first.replayed
    assert len(calls) == 1
    assert sorted(store.contacts()["member_id"]) == ["a", "b"]


def test_body_mismatch_conflicts(store: ContactLog) -> None:
    store.create_campaign("c1", {"campaign_id": "c1", "limit": 3}, builder(["a"]), now=NOW)
    with pytest.raises(CampaignConflict) as err:
        store.create_campaign("c1", {"campaign_id": "c1", "limit": 4}, builder(["a"]), now=NOW)
    assert err.value.code == "campaign_body_mismatch"


def test_canonical_hash_ignores_key_order_and_nulls() -> None:
    assert body_hash({"a": 1, "b": None, "c": [1, 2]}) == body_hash({"c": [1, 2], "a": 1})
    assert body_hash({"a": 1}) != body_hash({"a": 2})


def test_later_campaign_sees_earlier_contacts(store: ContactLog) -> None:
    store.create_campaign("c1", {"id": 1}, builder(["a", "b"]), now=NOW)
    second = store.create_campaign(
        "c2", {"id": 2}, builder(["a", "b", "c"]), now=NOW + timedelta(hours=1)
    )
    assert [m["member_id"] for m in second.payload["members"]] == ["c"]
    assert second.payload["excluded"]["contact_cap"] == 2


def test_contacts_outside_lookback_do_not_count(store: ContactLog) -> None:
    store.create_campaign("old", {"id": 1}, builder(["a"]), now=NOW - timedelta(days=100))
    later = store.create_campaign("new", {"id": 2}, builder(["a"]), now=NOW, lookback_days=90)
    assert [m["member_id"] for m in later.payload["members"]] == ["a"]


def test_cancel_releases_contacts(store: ContactLog) -> None:
    store.create_campaign("c1", {"id": 1}, builder(["a", "b"]), now=NOW)
    cancelled = store.cancel("c1")
    assert cancelled.status == "cancelled"
    assert store.contacts().empty
    assert store.offers("c1").empty
    again = store.create_campaign("c2", {"id": 2}, builder(["a", "b"]), now=NOW)
    assert len(again.payload["members"]) == 2
    with pytest.raises(CampaignConflict) as err:
        store.create_campaign("c1", {"id": 1}, builder(["a"]), now=NOW)
    assert err.value.code == "campaign_cancelled"


def test_sent_campaign_cannot_be_cancelled(store: ContactLog) -> None:
    store.create_campaign("c1", {"id": 1}, builder(["a"]), now=NOW)
    store.mark_sent("c1")
    with pytest.raises(CampaignConflict):
        store.cancel("c1")
    with pytest.raises(CampaignNotFound):
        store.cancel("nope")


def test_crash_mid_write_records_nothing(store: ContactLog) -> None:
    class Exploding(list):
        def __iter__(self):
            yield ContactRow("a", "email", "v", 1.0, 0.5)
            yield ContactRow("b", "email", "v", 1.0, 0.5)
            raise RuntimeError("simulated crash after two contacts")

    def build(view: ContactView) -> BuiltCampaign:
        return BuiltCampaign({"members": []}, Exploding())

    with pytest.raises(RuntimeError):
        store.create_campaign("c1", {"id": 1}, build, now=NOW)
    assert store.contacts().empty
    with pytest.raises(CampaignNotFound):
        store.get_campaign("c1")
    # the id is still free: a retry after the crash records the whole list
    result = store.create_campaign("c1", {"id": 1}, builder(["a", "b"]), now=NOW)
    assert len(result.payload["members"]) == 2


def test_concurrent_creators_produce_one_list(store_factory) -> None:
    calls: list[int] = []
    results: list[object] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(20)

    def worker(i: int) -> None:
        log = store_factory() if i % 4 == 0 else shared
        barrier.wait()
        try:
            res = log.create_campaign(
                "c1", {"id": 1}, builder([f"m{j}" for j in range(50)], calls), now=NOW
            )
            results.append(res.payload)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    shared = store_factory()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 20
    assert all(r == results[0] for r in results)
    assert len(calls) == 1
    assert len(shared.contacts()) == 50


def test_export_offers_in_contract_format(store: ContactLog) -> None:
    store.create_campaign("c1", {"id": 1}, builder(["a", "b", "c"], holdout={"b"}), now=NOW)
    offers = store.offers("c1")
    assert list(offers.columns) == [c.name for c in TABLES["offers"].columns]
    assert set(offers["offer_id"]) == {"c1:a", "c1:b", "c1:c"}
    row_b = offers.set_index("member_id").loc["b"]
    assert row_b["benefit_id"] == "none" and row_b["propensity"] == pytest.approx(0.1)
    assert offers["propensity"].between(0, 1, inclusive="right").all()
    import pandas as pd

    updated = store.attach_outcomes(
        "c1", pd.DataFrame({"member_id": ["a", "b"], "converted": [1, 0], "revenue": [20.0, 0.0]})
    )
    assert updated == 2
    offers = store.offers("c1").set_index("member_id")
    assert offers.loc["a", "converted"] == 1 and offers.loc["a", "revenue"] == 20.0


def test_suppression_and_unsubscribe_are_visible_to_builders(store: ContactLog) -> None:
    store.suppress("a", "complaint")
    store.unsubscribe("b", "email")
    store.unsubscribe("c", "sms")
    seen: list[ContactView] = []

    def build(view: ContactView) -> BuiltCampaign:
        seen.append(view)
        return BuiltCampaign({"members": []}, [])

    store.create_campaign("c1", {"id": 1}, build, channel="email", now=NOW)
    assert seen[0].suppressed == {"a"}
    assert seen[0].unsubscribed == {"b"}


def test_erase_member(store: ContactLog) -> None:
    store.create_campaign("c1", {"id": 1}, builder(["a", "b"]), now=NOW)
    store.suppress("a")
    counts = store.erase_member("a")
    assert counts["contacts"] == 1 and counts["offers"] == 1 and counts["suppressions"] == 1
    assert list(store.contacts()["member_id"]) == ["b"]
    assert [m["member_id"] for m in store.get_campaign("c1").payload["members"]] == ["b"]
    erasures = store.erasures()  # type: ignore[attr-defined]
    assert len(erasures) == 1 and "a" not in set(erasures["member_hash"])
