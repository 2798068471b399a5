"""Cart offers and coupons over HTTP with the demo till (ams-01) and web shop (web-nl) keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY, Api, assert_problem, unique_email


def oid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def cart_body(
    customer_id: str | None, lines: list[tuple[str, str, str, str]], **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "currency": "EUR",
        "lines": [
            {"line_id": lid, "sku": sku, "category": cat, "quantity": "1", "unit_price": price}
            for lid, sku, cat, price in lines
        ],
        **extra,
    }
    if customer_id:
        body["customer"] = {"customer_id": customer_id}
    return body


def test_offers_target_channel_and_store_attributes(api: Api) -> None:
    sku = oid("LATTE")
    coffee = oid("coffee")
    web = oid("web")
    made = api.call(
        "POST",
        "/v1/admin/offers",
        ADMIN_KEY,
        json={
            "offer_id": coffee,
            "name": "10% off this latte in coffee-corner stores",
            "where": {"channels": ["pos"], "store_attributes": {"coffee_corner": True}},
            "effect": {"type": "percent_off", "value": "10", "skus": [sku]},
        },
    )
    assert made.status_code == 201, made.text
    assert made.json()["version"] == 1
    api.call(
        "POST",
        "/v1/admin/offers",
        ADMIN_KEY,
        json={
            "offer_id": web,
            "name": "2.00 off this latte online",
            "where": {"channels": ["online"]},
            "effect": {"type": "amount_off", "value": "2", "skus": [sku]},
        },
    )
    lines = [("1", sku, "coffee", "5.00")]
    till = api.call("POST", "/v1/cart/evaluate", POS_KEY, json=cart_body(None, lines)).json()
    online = api.call("POST", "/v1/cart/evaluate", WEB_KEY, json=cart_body(None, lines)).json()
    assert [d["offer_id"] for d in till["discounts"]] == [coffee]
    assert till["lines"] == [{"line_id": "1", "unit_price": "5.00", "price": "5.00", "discount": "0.50"}]
    assert till["total"] == "4.50"
    assert [d["offer_id"] for d in online["discounts"]] == [web]
    assert online["total"] == "3.00"

    explained = api.call(
        "POST", "/v1/cart/evaluate?explain=true", ADMIN_KEY, json=cart_body(None, lines, store_id="web-nl")
    ).json()
    reasons = {x["offer_id"]: x for x in explained["explanations"]}
    assert reasons[coffee]["applied"] is False and "channel" in reasons[coffee]["reason"]
    assert reasons[web]["applied"] is True
    assert_problem(
        api.call("POST", "/v1/cart/evaluate?explain=true", POS_KEY, json=cart_body(None, lines)),
        403,
        "forbidden",
    )

    paused = api.call("POST", f"/v1/admin/offers/{coffee}/pause", ADMIN_KEY)
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert_problem(api.call("POST", "/v1/admin/offers", POS_KEY, json={"name": "x"}), 403, "forbidden")


def test_personal_coupon_at_the_till_then_a_sale_consumes_it(api: Api) -> None:
    sku = oid("CAKE")
    offer = oid("cake")
    api.call(
        "POST",
        "/v1/admin/offers",
        ADMIN_KEY,
        json={
            "offer_id": offer,
            "name": "3.00 off cake with your coupon",
            "requires_coupon": True,
            "effect": {"type": "amount_off", "value": "3", "skus": [sku]},
        },
    )
    jane = api.enrol(links=[{"type": "email", "value": unique_email()}])
    issued = api.call(
        "POST", f"/v1/customers/{jane['customer_id']}/coupons", WEB_KEY, json={"offer_id": offer}
    )
    assert issued.status_code == 201, issued.text
    code = issued.json()["code"]
    assert issued.json()["state"] == "active"
    assert api.call("GET", f"/v1/coupons/{code}", POS_KEY).json()["offer_id"] == offer
    listed = api.call("GET", f"/v1/customers/{jane['customer_id']}/coupons", POS_KEY).json()["items"]
    assert [c["code"] for c in listed] == [code]

    lines = [("1", sku, "cake", "10.00")]
    evaluated = api.call(
        "POST",
        "/v1/cart/evaluate",
        POS_KEY,
        json=cart_body(jane["customer_id"], lines, coupons=[code, "NOPE-NOPE-NOPE"]),
    ).json()
    assert [(d["offer_id"], d["coupon"], d["amount"]) for d in evaluated["discounts"]] == [
        (offer, code, "3.00")
    ]
    assert evaluated["rejected_coupons"] == [{"code": "NOPE-NOPE-NOPE", "reason": "unknown"}]
    assert evaluated["points_to_earn"] == 70

    def sale(txn: str) -> dict[str, Any]:
        return {
            "transaction_id": txn,
            "type": "sale",
            "occurred_at": (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "customer": {"customer_id": jane["customer_id"]},
            "currency": "EUR",
            "total": "7.00",
            "coupons": [code],
            "lines": [
                {
                    "line_id": "1",
                    "sku": sku,
                    "category": "cake",
                    "quantity": "1",
                    "unit_price": "10.00",
                    "discount": "3.00",
                }
            ],
        }

    first = api.call("POST", "/v1/transactions", POS_KEY, json=sale(oid("T"))).json()
    assert first["coupons_redeemed"] == [code]
    assert first["offers_applied"] == [{"offer_id": offer, "amount": "3.00"}]
    second = api.call("POST", "/v1/transactions", POS_KEY, json=sale(oid("T"))).json()
    assert second["coupons_redeemed"] == []
    assert api.call("GET", f"/v1/coupons/{code}", POS_KEY).json()["state"] == "used"
    again = api.call(
        "POST", "/v1/cart/evaluate", POS_KEY, json=cart_body(jane["customer_id"], lines, coupons=[code])
    )
    assert again.json()["rejected_coupons"] == [{"code": code, "reason": "used"}]


def test_bad_offers_and_carts_are_refused(api: Api) -> None:
    bad = [
        (
            {"offer_id": oid("x"), "name": "x", "effect": {"type": "percent_off", "value": "150"}},
            ["body", "effect"],
        ),
        ({"offer_id": oid("x"), "name": "x", "effect": {"type": "buy_x_get_y"}}, ["body", "effect"]),
        ({"offer_id": oid("x"), "name": "x"}, ["body", "effect"]),
        (
            {"offer_id": "bad id!", "name": "x", "effect": {"type": "percent_off", "value": "5"}},
            ["body", "offer_id"],
        ),
    ]
    for body, loc in bad:
        problem = assert_problem(
            api.call("POST", "/v1/admin/offers", ADMIN_KEY, json=body), 422, "validation-failed"
        )
        assert any(e["loc"][: len(loc)] == loc for e in problem["errors"]), problem
    carts = [
        (cart_body(None, [("1", "X", "c", "-1.00")]), ["body", "lines", 0, "unit_price"]),
        (
            {
                **cart_body(None, [("1", "X", "c", "1.00")]),
                "lines": [{"line_id": "1", "sku": "X", "quantity": "0", "unit_price": "1"}],
            },
            ["body", "lines", 0, "quantity"],
        ),
        (cart_body(None, [("1", "X", "c", "1.00"), ("1", "Y", "c", "1.00")]), ["body", "lines"]),
        (cart_body(None, [("1", "X", "c", "1.00")], store_id="nowhere"), ["body", "store_id"]),
        (cart_body(None, [("1", "X", "c", "1.00")], currency="USD"), ["body", "currency"]),
    ]
    for body, loc in carts:
        key = ADMIN_KEY if body.get("store_id") == "nowhere" else POS_KEY
        problem = assert_problem(
            api.call("POST", "/v1/cart/evaluate", key, json=body), 422, "validation-failed"
        )
        assert any(e["loc"][: len(loc)] == loc for e in problem["errors"]), (body, problem)
    assert_problem(
        api.call(
            "POST",
            "/v1/cart/evaluate",
            POS_KEY,
            json=cart_body(None, [("1", "X", "c", "1")], store_id="web-nl"),
        ),
        403,
        "forbidden",
    )
    assert_problem(api.call("GET", "/v1/coupons/ZZZZ-ZZZZ-ZZZZ", POS_KEY), 404, "coupon-not-found")
    assert_problem(api.call("GET", "/v1/admin/offers/none", ADMIN_KEY), 404, "offer-not-found")


def test_a_sale_records_exactly_what_the_cart_gave_with_bundles_caps_and_held_units(api: Api) -> None:
    category = oid("beans")
    bundle, rest = oid("bundle"), oid("rest")
    offers = [
        {
            "offer_id": bundle,
            "name": "2 bags for 5.00, once per order",
            "priority": 2,
            "stacking": "exclusive_units",
            "effect": {
                "type": "bundle_price",
                "value": "5.00",
                "bundle": 2,
                "categories": [category],
                "max_applications": 1,
            },
        },
        {
            "offer_id": rest,
            "name": "10% off the other bags",
            "stacking": "exclusive_units",
            "effect": {"type": "percent_off", "value": "10", "categories": [category]},
        },
    ]
    for body in offers:
        made = api.call("POST", "/v1/admin/offers", ADMIN_KEY, json=body)
        assert made.status_code == 201, made.text
    jane = api.enrol(links=[{"type": "email", "value": unique_email()}])
    lines = [
        {"line_id": "1", "sku": oid("BAG"), "category": category, "quantity": "3", "unit_price": "3.00"},
        {"line_id": "2", "sku": oid("BAG"), "category": category, "quantity": "1", "unit_price": "4.00"},
    ]
    cart = api.call(
        "POST",
        "/v1/cart/evaluate",
        POS_KEY,
        json={"customer": {"customer_id": jane["customer_id"]}, "currency": "EUR", "lines": lines},
    )
    assert cart.status_code == 200, cart.text
    evaluated = cart.json()
    # the bundle takes the two cheapest bags (6.00 -> 5.00), 10% comes off the other two (3.00, 4.00)
    assert [(d["offer_id"], d["amount"]) for d in evaluated["discounts"]] == [
        (bundle, "1.00"),
        (rest, "0.70"),
    ]
    assert evaluated["total"] == "11.30"

    explained = api.call(
        "POST",
        "/v1/cart/evaluate?explain=true",
        ADMIN_KEY,
        json={"store_id": "ams-01", "currency": "EUR", "lines": lines},
    ).json()
    by_offer = {x["offer_id"]: x for x in explained["explanations"]}
    assert by_offer[bundle]["units"] == [
        {"line_id": "1", "quantity": "2", "discount": "1.00"},
    ]
    assert by_offer[rest]["units"] == [
        {"line_id": "1", "quantity": "1", "discount": "0.30"},
        {"line_id": "2", "quantity": "1", "discount": "0.40"},
    ]

    given = {ln["line_id"]: ln["discount"] for ln in evaluated["lines"]}
    sale = api.call(
        "POST",
        "/v1/transactions",
        POS_KEY,
        json={
            "transaction_id": oid("T"),
            "type": "sale",
            "occurred_at": "2026-11-22T09:00:00Z",
            "customer": {"customer_id": jane["customer_id"]},
            "currency": "EUR",
            "total": evaluated["total"],
            "lines": [{**ln, "discount": given[ln["line_id"]]} for ln in lines],
        },
    )
    assert sale.status_code == 201, sale.text
    assert sale.json()["offers_applied"] == [
        {"offer_id": d["offer_id"], "amount": d["amount"]} for d in evaluated["discounts"]
    ]
    assert sale.json()["total"] == evaluated["total"]
