"""Ids, timestamps, points, money and media types the contract does not allow (issue 11, items 7
and 9): each a 4xx problem naming the field, never a 500 and never a looser reading."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY, Api, assert_problem, unique_email

LONG = "x" * 2100  # past DynamoDB's 2,048-byte partition key and 1,024-byte sort key


def names(problem: dict[str, Any], *loc: str) -> bool:
    return any(tuple(e["loc"]) == loc for e in problem.get("errors", []))


def sale(**extra: Any) -> dict[str, Any]:
    return {
        "transaction_id": f"IN-{uuid.uuid4().hex[:12]}",
        "type": "sale",
        "occurred_at": "2026-11-22T10:00:00Z",
        "lines": [{"line_id": "1", "sku": "ESP", "quantity": "2", "unit_price": "3.50"}],
        "currency": "EUR",
        "total": "7.00",
        **extra,
    }


# ---- item 7: ids (a long path id is the route's 404, as test_customers_http.py pins) -----------------


@pytest.mark.parametrize(
    ("method", "path", "key", "param"),
    [
        ("GET", "/v1/transactions/ams-01/{}", POS_KEY, "transaction_id"),
        ("PATCH", "/v1/transactions/web-nl/{}", WEB_KEY, "transaction_id"),
        ("GET", "/v1/customers/{}", POS_KEY, "customer_id"),
        ("GET", "/v1/customers/{}/transactions", POS_KEY, "customer_id"),
        ("GET", "/v1/customers/{}/ledger", POS_KEY, "customer_id"),
        ("GET", "/v1/customers/{}/coupons", POS_KEY, "customer_id"),
        ("GET", "/v1/coupons/{}", POS_KEY, "code"),
        ("GET", "/v1/redemptions/{}", POS_KEY, "redemption_id"),
        ("POST", "/v1/redemptions/{}/reverse", POS_KEY, "redemption_id"),
        ("GET", "/v1/gift-cards/{}", POS_KEY, "card_number"),
        ("POST", "/v1/holds/{}/release", WEB_KEY, "hold_id"),
        ("GET", "/v1/accounts/{}/ledger", WEB_KEY, "account_id"),
        ("GET", "/v1/merges/{}", ADMIN_KEY, "merge_id"),
        ("GET", "/v1/admin/offers/{}", ADMIN_KEY, "offer_id"),
        ("GET", "/v1/admin/rewards/{}", ADMIN_KEY, "reward_id"),
        ("GET", "/v1/admin/price-groups/{}", ADMIN_KEY, "group_id"),
        ("GET", "/v1/admin/stores/{}", ADMIN_KEY, "store_id"),
        ("DELETE", "/v1/admin/api-keys/{}", ADMIN_KEY, "key_id"),
    ],
)
def test_a_path_id_longer_than_any_id_is_the_routes_404(
    api: Api, method: str, path: str, key: str, param: str
) -> None:
    body = {"order_status": "shipped"} if method == "PATCH" else None
    response = api.call(method, path.format(LONG), key, json=body)
    slug = str(response.json().get("type", "")).rsplit("/", 1)[-1]
    # The route's own "<thing>-not-found", as for any unknown id; not "no such route", not a 500.
    assert slug.endswith("-not-found") and slug != "not-found", response.text
    assert_problem(response, 404, slug)


def test_a_long_coupon_code_in_a_sale_is_a_422_naming_it(api: Api) -> None:
    response = api.call("POST", "/v1/transactions", POS_KEY, json=sale(coupons=[LONG]))
    problem = assert_problem(response, 422, "validation-failed")
    assert any(e["loc"][:2] == ["body", "coupons"] for e in problem["errors"]), problem


# ---- item 7 and 9: timestamps ------------------------------------------------------------------

OUT_OF_RANGE = [
    "0001-01-01T00:00:00+14:00",  # overflowed when converted to UTC: a 500
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00Z",  # was accepted as a sale
    "1999-12-31T23:59:59Z",
    "2100-01-01T00:00:00Z",
    "2099-12-31T23:00:00-02:00",  # 2100-01-01T01:00Z once in UTC
]


@pytest.mark.parametrize("when", OUT_OF_RANGE)
def test_a_sale_dated_outside_2000_to_2100_is_a_422_naming_occurred_at(api: Api, when: str) -> None:
    response = api.call("POST", "/v1/transactions", POS_KEY, json=sale(occurred_at=when))
    problem = assert_problem(response, 422, "validation-failed")
    assert names(problem, "body", "occurred_at"), problem


def test_a_timestamp_sent_as_a_number_is_a_422(api: Api) -> None:
    response = api.call("POST", "/v1/transactions", POS_KEY, json=sale(occurred_at=1764000000))
    assert names(assert_problem(response, 422, "validation-failed"), "body", "occurred_at")


@pytest.mark.parametrize("when", OUT_OF_RANGE[:2])
def test_offer_reward_and_coupon_dates_outside_the_range_are_a_422(api: Api, when: str) -> None:
    effect = {"type": "amount_off", "value": "1", "skus": ["ESP"]}
    offer = {"offer_id": f"o-{uuid.uuid4().hex[:8]}", "name": "x", "effect": effect, "valid_until": when}
    problem = assert_problem(
        api.call("POST", "/v1/admin/offers", ADMIN_KEY, json=offer), 422, "validation-failed"
    )
    assert names(problem, "body", "valid_until"), problem
    reward = {"reward_id": f"r-{uuid.uuid4().hex[:8]}", "name": "x", "points": 5, "valid_from": when}
    problem = assert_problem(
        api.call("POST", "/v1/admin/rewards", ADMIN_KEY, json=reward), 422, "validation-failed"
    )
    assert names(problem, "body", "valid_from"), problem
    member = api.enrol(links=[{"type": "email", "value": unique_email()}])
    coupon = {"offer_id": "any", "valid_until": when}
    response = api.call("POST", f"/v1/customers/{member['customer_id']}/coupons", POS_KEY, json=coupon)
    assert names(assert_problem(response, 422, "validation-failed"), "body", "valid_until")


def test_a_sale_inside_the_range_with_an_offset_is_recorded(api: Api) -> None:
    response = api.call(
        "POST", "/v1/transactions", POS_KEY, json=sale(occurred_at="2026-11-22T11:00:00+01:00")
    )
    assert response.status_code == 201, response.text


# ---- item 9: points, money, media types --------------------------------------------------------


@pytest.mark.parametrize("points", [True, "5", 5.0, 5.5])
def test_points_are_json_integers_only(api: Api, points: Any) -> None:
    member = api.enrol(links=[{"type": "email", "value": unique_email()}])
    api.call("POST", "/v1/transactions", POS_KEY, json=sale(customer={"customer_id": member["customer_id"]}))
    body = {
        "redemption_id": f"IN-{uuid.uuid4().hex[:10]}",
        "customer": {"customer_id": member["customer_id"]},
        "kind": "points",
        "points": points,
    }
    problem = assert_problem(
        api.call("POST", "/v1/redemptions", POS_KEY, json=body), 422, "validation-failed"
    )
    assert names(problem, "body", "points"), problem
    ledger = api.call("GET", f"/v1/customers/{member['customer_id']}/ledger", POS_KEY).json()["items"]
    assert not any(e["reason"] == "redemption" for e in ledger), ledger


@pytest.mark.parametrize(
    "amount",
    [
        "1e2",  # was 100.00
        "1E2",
        "\u0661\u0660\u0660",  # Arabic-Indic digits: was 100.00
        "\uff11\uff10\uff10",  # full-width digits
        "10.001",
        " 10.00",
        "+10.00",
        "0x10",
        "NaN",
        "Infinity",
        100,  # the contract's money is a string
        10.5,
    ],
)
def test_money_is_a_decimal_string_of_ascii_digits_with_two_places(api: Api, amount: Any) -> None:
    card = {"amount": amount, "currency": "EUR", "delivery": {"email": unique_email()}}
    problem = assert_problem(api.call("POST", "/v1/gift-cards", WEB_KEY, json=card), 422, "validation-failed")
    assert names(problem, "body", "amount"), problem
    line = {"line_id": "1", "sku": "ESP", "quantity": "1", "unit_price": amount}
    response = api.call("POST", "/v1/transactions", POS_KEY, json=sale(lines=[line], total="1.00"))
    assert names(assert_problem(response, 422, "validation-failed"), "body", "lines", 0, "unit_price")


@pytest.mark.parametrize("quantity", ["1e1", "\u0661", True, 2])
def test_quantities_are_decimal_strings_of_ascii_digits(api: Api, quantity: Any) -> None:
    line = {"line_id": "1", "sku": "ESP", "quantity": quantity, "unit_price": "1.00"}
    response = api.call("POST", "/v1/transactions", POS_KEY, json=sale(lines=[line], total="1.00"))
    assert names(assert_problem(response, 422, "validation-failed"), "body", "lines", 0, "quantity")


@pytest.mark.parametrize("amount", ["7", "7.0", "7.00"])
def test_money_with_up_to_two_places_is_still_money(api: Api, amount: str) -> None:
    response = api.call("POST", "/v1/transactions", POS_KEY, json=sale(total=amount))
    assert response.status_code == 201, response.text
    assert response.json()["total"] == "7.00"


@pytest.mark.parametrize(
    "content_type", ["APPLICATION/JSON", "Application/Json; charset=UTF-8", "application/JSON ;charset=utf-8"]
)
def test_media_types_are_case_insensitive(api: Api, content_type: str) -> None:
    body = json.dumps({"links": [{"type": "email", "value": unique_email()}]})
    response = api.call("POST", "/v1/customers", POS_KEY, data=body, headers={"Content-Type": content_type})
    assert response.status_code == 201, response.text


def test_a_media_type_merely_starting_with_application_json_is_not_json(api: Api) -> None:
    body = '{"links": []}'
    response = api.call(
        "POST", "/v1/customers", POS_KEY, data=body, headers={"Content-Type": "application/jsonx"}
    )
    assert_problem(response, 415, "unsupported-media-type")
