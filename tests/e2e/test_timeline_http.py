"""The timeline over HTTP (issue 15, item 2): one stream of what happened to a customer, newest
first, filtered by kind, paginated with cursors bound to the list."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY, Api, assert_problem, unique_email


def _at(delta: timedelta) -> str:
    return (datetime.now(UTC) - delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def _line(line_id: str) -> dict[str, Any]:
    return {"line_id": line_id, "sku": "ESP", "category": "coffee", "quantity": "1", "unit_price": "10.00"}


def _ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def shopper(api: Api) -> dict[str, str]:
    """A member who bought (2 h ago), returned part of it (1 h ago), redeemed points and got a coupon."""
    customer = str(api.enrol(links=[{"type": "email", "value": unique_email()}])["customer_id"])
    sale_id, return_id, redemption_id = (f"TL-{uuid.uuid4().hex[:10]}" for _ in range(3))
    _ok(
        api.call(
            "POST",
            "/v1/transactions",
            POS_KEY,
            json={
                "transaction_id": sale_id,
                "type": "sale",
                "occurred_at": _at(timedelta(hours=2)),
                "customer": {"customer_id": customer},
                "lines": [_line("1"), _line("2")],
                "currency": "EUR",
                "total": "20.00",
            },
        )
    )
    _ok(
        api.call(
            "POST",
            "/v1/transactions",
            POS_KEY,
            json={
                "transaction_id": return_id,
                "type": "return",
                "occurred_at": _at(timedelta(hours=1)),
                "original_transaction_id": sale_id,
                "lines": [_line("2")],
                "currency": "EUR",
                "total": "10.00",
            },
        )
    )
    spend = {
        "redemption_id": redemption_id,
        "customer": {"customer_id": customer},
        "kind": "points",
        "points": 5,
    }
    _ok(api.call("POST", "/v1/redemptions", POS_KEY, json=spend))
    offer = {
        "offer_id": f"tl-{uuid.uuid4().hex[:10]}",
        "name": "timeline coupon",
        "status": "active",
        "requires_coupon": True,
        "effect": {"type": "amount_off", "value": "1", "skus": ["ESP"]},
    }
    offer_id = _ok(api.call("POST", "/v1/admin/offers", ADMIN_KEY, json=offer))["offer_id"]
    issued = api.call("POST", f"/v1/customers/{customer}/coupons", POS_KEY, json={"offer_id": offer_id})
    code = _ok(issued)["code"]
    return {
        "customer": customer,
        "sale": sale_id,
        "return": return_id,
        "redemption": redemption_id,
        "code": str(code),
    }


def _timeline(api: Api, customer: str, key: str = POS_KEY, **params: Any) -> dict[str, Any]:
    return _ok(api.call("GET", f"/v1/customers/{customer}/timeline", key, params=params), 200)


def test_the_timeline_shows_sales_returns_points_redemptions_and_coupons_newest_first(
    api: Api, shopper: dict[str, str]
) -> None:
    items = _timeline(api, shopper["customer"])["items"]
    assert [i["at"] for i in items] == sorted((i["at"] for i in items), reverse=True)
    kinds = [(i["kind"], i["type"]) for i in items]
    # the sale and the return at their occurred_at (hours ago); the points they moved, the
    # redemption and the coupon when the API recorded them (now)
    assert kinds[-2:] == [("transaction", "return"), ("transaction", "sale")], kinds
    # (the clock has whole seconds: what happened within one second has no order between it)
    assert sorted(kinds[:-2]) == [
        ("coupon", "api"),
        ("points", "earn"),
        ("points", "redeem"),
        ("points", "return"),
        ("redemption", "points"),
    ], kinds
    coupon = next(i for i in items if i["kind"] == "coupon")
    assert coupon["ref"]["code"] == shopper["code"]
    redemption = next(i for i in items if i["kind"] == "redemption")
    assert redemption["ref"] == {"store_id": "ams-01", "redemption_id": shopper["redemption"]}
    sale = items[-1]
    assert sale["ref"] == {"store_id": "ams-01", "transaction_id": shopper["sale"]}
    assert sale["data"]["total"] == "20.00" and sale["data"]["points"] > 0, sale
    earn = next(i for i in items if (i["kind"], i["type"]) == ("points", "earn"))
    assert earn["data"]["points"] == sale["data"]["points"], earn


def test_types_filters_by_kind_and_the_web_key_reads_it_too(api: Api, shopper: dict[str, str]) -> None:
    only = _timeline(api, shopper["customer"], WEB_KEY, types="transaction")["items"]
    assert [(i["kind"], i["type"]) for i in only] == [("transaction", "return"), ("transaction", "sale")]
    two = _timeline(api, shopper["customer"], types="coupon,redemption")["items"]
    assert sorted(i["kind"] for i in two) == ["coupon", "redemption"]


def test_pages_follow_each_other_with_their_cursor(api: Api, shopper: dict[str, str]) -> None:
    everything = _timeline(api, shopper["customer"])["items"]
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = _timeline(api, shopper["customer"], **params)
        assert len(page["items"]) <= 2
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything
    # a filtered list pages on its own cursor, one item at a time
    first = _timeline(api, shopper["customer"], types="transaction", limit=1)
    second = _timeline(api, shopper["customer"], types="transaction", limit=1, cursor=first["next_cursor"])
    assert [i["type"] for i in first["items"] + second["items"]] == ["return", "sale"]


def test_a_bad_kind_is_a_422_naming_types(api: Api, shopper: dict[str, str]) -> None:
    path = f"/v1/customers/{shopper['customer']}/timeline"
    response = api.call("GET", path, POS_KEY, params={"types": "sale"})
    problem = assert_problem(response, 422, "validation-failed")
    assert [e["loc"] for e in problem["errors"]] == [["query", "types"]], problem


def test_a_foreign_cursor_is_a_400(api: Api, shopper: dict[str, str]) -> None:
    other = str(api.enrol(links=[{"type": "email", "value": unique_email()}])["customer_id"])
    transactions = f"/v1/customers/{shopper['customer']}/transactions"
    history = _ok(api.call("GET", transactions, POS_KEY, params={"limit": 1}), 200)
    filtered = _timeline(api, shopper["customer"], types="transaction", limit=1)
    mine = _timeline(api, shopper["customer"], limit=1)
    for path, cursor, params in (
        (f"/v1/customers/{shopper['customer']}/timeline", history["next_cursor"], {}),  # another list
        (f"/v1/customers/{other}/timeline", mine["next_cursor"], {}),  # another customer
        (f"/v1/customers/{shopper['customer']}/timeline", filtered["next_cursor"], {}),  # another filter
        (f"/v1/customers/{shopper['customer']}/timeline", "garbage", {}),
    ):
        response = api.call("GET", path, POS_KEY, params={"limit": 1, "cursor": cursor, **params})
        problem = assert_problem(response, 400, "invalid-cursor")
        assert [e["loc"] for e in problem["errors"]] == [["query", "cursor"]], problem


def test_an_unknown_customer_is_a_404(api: Api) -> None:
    assert_problem(api.call("GET", "/v1/customers/nobody-here/timeline", POS_KEY), 404, "customer-not-found")
