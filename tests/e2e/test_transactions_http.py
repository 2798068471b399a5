"""Transactions over HTTP with the demo till and web shop keys."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY, Api, assert_problem, unique_email


def txn_id() -> str:
    return "T-" + uuid.uuid4().hex[:12]


def sale(customer: dict[str, Any] | None, lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    total = sum(
        float(ln["quantity"]) * float(ln["unit_price"]) - float(ln.get("discount", "0")) for ln in lines
    )
    body: dict[str, Any] = {
        "transaction_id": txn_id(),
        "type": "sale",
        "occurred_at": (datetime.now(UTC) - timedelta(hours=1)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),  # recent: old sales do not earn
        "lines": lines,
        "currency": "EUR",
        "total": f"{total:.2f}",
        **extra,
    }
    if customer is not None:
        body["customer"] = customer
    return body


def coffee(qty: str = "1", price: str = "4.50", line_id: str = "1") -> dict[str, Any]:
    return {"line_id": line_id, "sku": "ESP-1", "category": "coffee", "quantity": qty, "unit_price": price}


def test_till_sale_by_card_then_return_then_my_account(api: Api) -> None:
    jane = api.enrol(links=[{"type": "email", "value": unique_email()}])
    body = sale(
        {"link": {"type": "card", "value": jane["card"]}}, [coffee("2", "4.50"), coffee("1", "20.00", "2")]
    )
    first = api.call("POST", "/v1/transactions", POS_KEY, json=body)
    assert first.status_code == 201, first.text
    receipt = first.json()
    assert receipt["customer_id"] == jane["customer_id"]
    assert receipt["points_earned"] == 290
    assert receipt["points_balance"] == 290
    assert receipt["tier"] == "bronze"
    assert receipt["tier_changed"] is False
    assert receipt["offers_applied"] == [] and receipt["coupons_redeemed"] == []

    replay = api.call("POST", "/v1/transactions", POS_KEY, json=body)
    assert replay.status_code == 201
    assert replay.json() == receipt
    changed = {**body, "total": "99.00"}
    assert_problem(api.call("POST", "/v1/transactions", POS_KEY, json=changed), 422, "validation-failed")
    changed = {**body, "lines": [coffee("3", "4.50")], "total": "13.50"}
    assert_problem(
        api.call("POST", "/v1/transactions", POS_KEY, json=changed), 422, "idempotency-key-mismatch"
    )

    back = api.call(
        "POST",
        "/v1/transactions",
        POS_KEY,
        json={
            "transaction_id": txn_id(),
            "type": "return",
            "occurred_at": (datetime.now(UTC) - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "original_transaction_id": body["transaction_id"],
            "lines": [coffee("1", "4.50")],
            "currency": "EUR",
            "total": "4.50",
        },
    )
    assert back.status_code == 201, back.text
    assert back.json()["points_earned"] == -45
    assert back.json()["points_balance"] == 245

    view = api.call("GET", f"/v1/customers/{jane['customer_id']}", WEB_KEY).json()
    assert view["points"] == {"available": 245, "pending": 0, "lifetime": 245}
    assert view["stats"]["transactions"] == 1
    assert view["stats"]["spend"] == "24.50"
    assert view["tier_progress"] == {
        "points_in_window": 245,
        "next_tier": "silver",
        "points_to_next_tier": 2255,
    }
    history = api.call("GET", f"/v1/customers/{jane['customer_id']}/transactions", WEB_KEY).json()
    assert [t["type"] for t in history["items"]] == ["return", "sale"]
    assert history["items"][1]["lines"][0]["returned_quantity"] == "1"
    ledger = api.call("GET", f"/v1/customers/{jane['customer_id']}/ledger?limit=1", WEB_KEY).json()
    assert [(e["points"], e["reason"], e["balance_after"]) for e in ledger["items"]] == [(-45, "return", 245)]
    rest = api.call(
        "GET", f"/v1/customers/{jane['customer_id']}/ledger?limit=1&cursor={ledger['next_cursor']}", WEB_KEY
    ).json()
    assert [(e["points"], e["reason"]) for e in rest["items"]] == [(290, "earn")]
    assert sum(e["points"] for e in ledger["items"] + rest["items"]) == 245


def test_channel_and_store_attribute_earn_rules(api: Api) -> None:
    programme = api.call("GET", "/v1/admin/programme", ADMIN_KEY).json()
    rules = [
        {
            "rule_id": "coffee-corner-x2",
            "name": "Double points on coffee in coffee corners",
            "where": {"store_attributes": {"coffee_corner": True}},
            "categories": ["coffee"],
            "multiplier": "2",
        },
        {
            "rule_id": "web-bonus",
            "name": "25 points for ordering online",
            "where": {"channels": ["online"]},
            "bonus_points": 25,
        },
    ]
    updated = api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json={**programme, "earn_rules": rules})
    assert updated.status_code == 200, updated.text
    try:
        jane = api.enrol(links=[{"type": "email", "value": unique_email()}])
        ref = {"customer_id": jane["customer_id"]}
        at_till = api.call("POST", "/v1/transactions", POS_KEY, json=sale(ref, [coffee("1", "5.00")])).json()
        online = api.call("POST", "/v1/transactions", WEB_KEY, json=sale(ref, [coffee("1", "5.00")])).json()
        assert at_till["points_earned"] == 100  # 50 doubled in ams-01's coffee corner
        assert online["points_earned"] == 75  # 50 plus the web bonus
        assert online["order_status"] == "placed"
    finally:
        api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json=programme)


def test_web_order_lifecycle_and_cancellation(api: Api) -> None:
    email = unique_email()
    body = sale({"link": {"type": "email", "value": email}}, [coffee("2", "10.00")])
    guest = api.call("POST", "/v1/transactions", WEB_KEY, json=body).json()
    assert guest["member"] is False and guest["points_earned"] == 0 and guest["points_if_member"] == 200
    path = f"/v1/transactions/web-nl/{body['transaction_id']}"
    assert_problem(api.call("PATCH", path, POS_KEY, json={"order_status": "shipped"}), 403, "forbidden")
    shipped = api.call("PATCH", path, WEB_KEY, json={"order_status": "shipped"})
    assert shipped.status_code == 200 and shipped.json()["order_status"] == "shipped"
    assert_problem(
        api.call("PATCH", path, WEB_KEY, json={"order_status": "placed"}), 409, "invalid-order-transition"
    )
    problem = assert_problem(
        api.call("PATCH", path, WEB_KEY, json={"order_status": "lost"}), 422, "validation-failed"
    )
    assert problem["errors"][0]["loc"] == ["body", "order_status"]
    assert (
        api.call("PATCH", path, WEB_KEY, json={"order_status": "cancelled"}).json()["order_status"]
        == "cancelled"
    )
    record = api.call("GET", path, WEB_KEY).json()
    assert record["order_status"] == "cancelled"
    assert record["lines"][0]["returned_quantity"] == "2"
    assert_problem(api.call("GET", "/v1/transactions/web-nl/nope", WEB_KEY), 404, "transaction-not-found")


def test_bad_transactions_are_refused_with_the_field_named(api: Api) -> None:
    good = sale(None, [coffee()])
    cases = [
        ({**good, "lines": [coffee("0")]}, ["body", "lines", 0, "quantity"]),
        ({**good, "lines": [coffee("-1")]}, ["body", "lines", 0, "quantity"]),
        ({**good, "lines": [coffee("1", "-4.50")]}, ["body", "lines", 0, "unit_price"]),
        ({**good, "lines": [coffee("1", "4.505")]}, ["body", "lines", 0, "unit_price"]),
        ({**good, "lines": [coffee(), coffee()], "total": "9.00"}, ["body", "lines"]),
        ({**good, "total": "5.00"}, ["body", "total"]),
        ({**good, "currency": "USD"}, ["body", "currency"]),
        ({**good, "currency": "euro"}, ["body", "currency"]),
        ({**good, "occurred_at": "2099-01-01T00:00:00Z"}, ["body", "occurred_at"]),
        ({**good, "occurred_at": "2026-11-20T10:00:00"}, ["body", "occurred_at"]),
        ({**good, "type": "gift"}, ["body", "type"]),
        ({**good, "lines": []}, ["body", "lines"]),
        (
            {**good, "customer": {"customer_id": "x", "link": {"type": "card", "value": "1234"}}},
            ["body", "customer"],
        ),
        ({**good, "store_id": "nowhere"}, ["body", "store_id"]),
    ]
    for body, loc in cases:
        key = ADMIN_KEY if body.get("store_id") == "nowhere" else POS_KEY
        problem = assert_problem(
            api.call("POST", "/v1/transactions", key, json=body), 422, "validation-failed"
        )
        locations = [e["loc"] for e in problem["errors"]]
        assert any(found[: len(loc)] == loc for found in locations), (body, locations)
    assert_problem(
        api.call("POST", "/v1/transactions", POS_KEY, json={**good, "store_id": "web-nl"}), 403, "forbidden"
    )
    assert_problem(
        api.call("GET", f"/v1/transactions/ams-01/{good['transaction_id']}", POS_KEY),
        404,
        "transaction-not-found",
    )


def test_concurrent_till_retries_earn_once(api: Api) -> None:
    jane = api.enrol(links=[{"type": "email", "value": unique_email()}])
    body = sale({"customer_id": jane["customer_id"]}, [coffee("1", "12.34")])

    def post(_: int) -> tuple[int, dict[str, Any]]:
        response = api.call("POST", "/v1/transactions", POS_KEY, json=body)
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(post, range(20)))
    assert {status for status, _ in results} == {201}
    assert all(receipt == results[0][1] for _, receipt in results)
    view = api.call("GET", f"/v1/customers/{jane['customer_id']}", POS_KEY).json()
    assert view["points"]["available"] == 123
