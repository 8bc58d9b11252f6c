"""The HTTP contract through the ASGI app: auth, validation, fallbacks, campaigns, operations."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.serving.conftest import KEYS, headers
from tests.serving.fake_backend import FakeBackend

SF, CP, AD = headers("storefront"), headers("campaigns"), headers("admin")


# -- auth ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/recommend", {"member_id": "m1"}),
        ("/churn_score", {"member_ids": ["m1"]}),
        ("/benefits", {"member_id": "m1"}),
        ("/campaigns/at_risk", {"campaign_id": "c", "limit": 1}),
        ("/admin/reload", {}),
    ],
)
def test_missing_or_bad_key_is_401(client: TestClient, path: str, body: dict) -> None:
    assert client.post(path, json=body).status_code == 401
    response = client.post(path, json=body, headers={"x-api-key": "wrong-key-wrong-key"})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_wrong_scope_is_403_and_body_is_not_parsed(client: TestClient) -> None:
    # a storefront key on a campaigns endpoint: 403 even though the body is not JSON at all
    response = client.post("/churn_score", content=b"{not json", headers=SF)
    assert response.status_code == 403
    assert "campaigns" in response.json()["message"]
    assert client.post("/admin/reload", headers=CP).status_code == 403
    assert client.delete("/campaigns/x", headers=SF).status_code == 403


def test_bearer_token_and_admin_key_carry_scopes(client: TestClient) -> None:
    bearer = {"authorization": f"Bearer {KEYS['storefront']}"}
    assert client.post("/recommend", json={"member_id": "m1"}, headers=bearer).status_code == 200
    assert client.post("/recommend", json={"member_id": "m1"}, headers=AD).status_code == 200


def test_public_endpoints_need_no_key(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "loyalty_http_request_duration_seconds" in metrics.text


# -- /recommend ------------------------------------------------------------------------------
def test_recommend_contract(client: TestClient) -> None:
    body = client.post(
        "/recommend",
        json={"member_id": "m1", "n": 5, "context": "cart", "cart": ["p0"]},
        headers=SF,
    ).json()
    assert set(body) >= {"member_id", "context", "items", "fallback", "model_version"}
    assert body["context"] == "cart" and body["fallback"] is None and len(body["items"]) == 5
    assert "p0" not in {i["product_id"] for i in body["items"]}
    assert set(body["items"][0]) >= {"product_id", "score", "reason", "points_to_earn"}
    cold = client.post("/recommend", json={"member_id": 12345}, headers=SF).json()
    assert cold["member_id"] == "12345" and cold["fallback"] == "cold_start"


def test_recommend_degrades_on_backend_error(client: TestClient, backend: FakeBackend) -> None:
    backend.fail_recommend = ConnectionError("online store down")
    response = client.post(
        "/recommend", json={"member_id": "m1", "n": 3, "cart": ["p0"]}, headers=SF
    )
    assert response.status_code == 200
    body = response.json()
    assert body["fallback"] == "degraded" and [i["product_id"] for i in body["items"]] == [
        "p1",
        "p2",
        "p3",
    ]
    assert "loyalty_recommend_degraded_total" in client.get("/metrics").text


def test_recommend_degrades_on_timeout(client: TestClient, backend: FakeBackend) -> None:
    backend.recommend_delay_s = 1.0
    body = client.post("/recommend", json={"member_id": "m1"}, headers=SF).json()
    assert body["fallback"] == "degraded" and len(body["items"]) == 10


# -- bad input: 4xx with field-level messages, never 5xx --------------------------------------
@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/recommend", {"member_id": "m1", "n": 0}, "n"),
        ("/recommend", {"member_id": "m1", "n": 101}, "n"),
        ("/recommend", {"member_id": "m1", "n": "ten"}, "n"),
        ("/recommend", {"member_id": "m1", "context": "checkout"}, "context"),
        ("/recommend", {"member_id": "m1", "context": "similar"}, "body"),
        ("/recommend", {"n": 3}, "member_id"),
        ("/recommend", {"member_id": ""}, "member_id"),
        ("/recommend", {"member_id": True}, "member_id"),
        ("/churn_score", {"member_ids": []}, "member_ids"),
        ("/churn_score", {"member_ids": "m1"}, "member_ids"),
        ("/churn_score", {"member_ids": [f"m{i}" for i in range(1001)]}, "member_ids"),
        ("/benefits", {"member_id": "m1", "budget": -1}, "budget"),
        ("/campaigns/at_risk", {"campaign_id": "c 1", "limit": 1}, "campaign_id"),
        ("/campaigns/at_risk", {"campaign_id": "c1", "limit": 0}, "limit"),
        (
            "/campaigns/at_risk",
            {"campaign_id": "c1", "limit": 5, "min_probability": 2},
            "min_probability",
        ),
    ],
)
def test_invalid_fields_are_422_with_the_field_named(
    client: TestClient, path: str, payload: dict, field: str
) -> None:
    key = SF if path == "/recommend" else CP
    response = client.post(path, json=payload, headers=key)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_request"
    assert any(d["field"].split(".")[0] == field for d in body["detail"]), body


@pytest.mark.parametrize(
    "raw", [b"{not json", b"", b"[]", b"null", b'{"member_id": "m1", "n": NaN}']
)
def test_malformed_bodies_are_4xx(client: TestClient, raw: bytes) -> None:
    response = client.post(
        "/recommend", content=raw, headers={**SF, "content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text


def test_ten_thousand_ids_is_4xx_not_5xx(client: TestClient) -> None:
    ids = [f"member-{i:06d}" for i in range(10_000)]
    response = client.post("/churn_score", json={"member_ids": ids}, headers=CP)
    assert response.status_code in (413, 422)


def test_oversized_body_is_413(client: TestClient) -> None:
    response = client.post(
        "/recommend",
        content=b'{"member_id": "' + b"x" * 300_000 + b'"}',
        headers={**SF, "content-type": "application/json"},
    )
    assert response.status_code == 413


def test_unknown_route_and_method(client: TestClient) -> None:
    assert client.get("/nope").status_code == 404
    assert client.get("/recommend", headers=SF).status_code == 405


# -- churn, benefits --------------------------------------------------------------------------
def test_churn_score_contract(client: TestClient) -> None:
    body = client.post(
        "/churn_score", json={"member_ids": ["m1", "ghost", "m2", "m1"]}, headers=CP
    ).json()
    assert [s["member_id"] for s in body["scores"]] == ["m1", "m2"]
    assert body["unknown"] == ["ghost"] and body["model_version"]
    assert set(body["scores"][0]) >= {
        "member_id",
        "churn_probability",
        "risk_band",
        "value_segment",
        "reasons",
    }
    assert body["scores"][0]["reasons"][0] == {"code": "recency_decline", "weight": 0.6}


def test_benefits_ranked_with_none_and_unknown_member(client: TestClient) -> None:
    body = client.post("/benefits", json={"member_id": "m1", "budget": 20}, headers=CP).json()
    values = [b["expected_net_value"] for b in body["benefits"]]
    assert values == sorted(values, reverse=True)
    assert "none" in {b["benefit_id"] for b in body["benefits"]}
    assert not next(b for b in body["benefits"] if b["benefit_id"] == "coupon_50")["eligible"]
    missing = client.post("/benefits", json={"member_id": "ghost"}, headers=CP)
    assert missing.status_code == 404 and missing.json()["error"] == "unknown_member"


# -- campaigns --------------------------------------------------------------------------------
def test_at_risk_idempotent_conflict_cancel(client: TestClient) -> None:
    body = {"campaign_id": "winter-1", "limit": 5, "budget": 1000, "min_probability": 0.5}
    first = client.post("/campaigns/at_risk", json=body, headers=CP)
    assert first.status_code == 200, first.text
    data = first.json()
    assert data["campaign_id"] == "winter-1" and len(data["members"]) == 5
    assert set(data["excluded"]) >= {
        "contact_cap",
        "suppressed",
        "unsubscribed",
        "budget",
        "ineligible",
    }
    values = [m["expected_net_value"] for m in data["members"]]
    assert values == sorted(values, reverse=True)
    member = data["members"][0]
    assert set(member) >= {
        "member_id",
        "churn_probability",
        "risk_band",
        "value_segment",
        "reasons",
        "strategy",
        "benefit_id",
        "expected_net_value",
        "cost",
        "channel",
    }

    again = client.post(
        "/campaigns/at_risk", json=dict(reversed(list(body.items()))), headers=CP
    ).json()
    assert again["members"] == data["members"] and again["replayed"]

    conflict = client.post("/campaigns/at_risk", json={**body, "limit": 6}, headers=CP)
    assert conflict.status_code == 409 and conflict.json()["error"] == "campaign_body_mismatch"

    # a later campaign sees these contacts
    later = client.post(
        "/campaigns/at_risk", json={"campaign_id": "winter-2", "limit": 30}, headers=CP
    ).json()
    assert later["excluded"]["contact_cap"] == 5
    assert not {m["member_id"] for m in later["members"]} & {
        m["member_id"] for m in data["members"]
    }

    assert client.delete("/campaigns/winter-1", headers=CP).json() == {
        "campaign_id": "winter-1",
        "status": "cancelled",
    }
    assert client.delete("/campaigns/nope", headers=CP).status_code == 404
    cancelled = client.post("/campaigns/at_risk", json=body, headers=CP)
    assert cancelled.status_code == 409 and cancelled.json()["error"] == "campaign_cancelled"


# -- operations -------------------------------------------------------------------------------
def test_reload_is_admin_and_accepted(client: TestClient) -> None:
    response = client.post("/admin/reload", headers=AD)
    assert response.status_code == 202 and response.json()["status"] == "started"


def test_openapi_documents_security_and_contract(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["paths"]["/recommend"]["post"]["security"]
    assert "security" not in spec["paths"]["/healthz"]["get"]
    n = spec["components"]["schemas"]["RecommendRequest"]["properties"]["n"]
    assert n["minimum"] == 1 and n["maximum"] == 100
    json.dumps(spec)
