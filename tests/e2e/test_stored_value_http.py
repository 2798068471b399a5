"""Stored value over HTTP: a till redeems a gift card partially; a web order holds, captures;
a cancelled one releases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from loyalty.domain.stored_value import luhn_check_digit
from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY, Api, assert_problem, e_card_pin, unique_email


def card_number() -> str:
    body = "6036" + str(uuid.uuid4().int)[:11]
    return body + luhn_check_digit(body)


def test_till_sells_and_partially_redeems_a_gift_card(api: Api) -> None:
    number = card_number()
    sold = api.call(
        "POST", "/v1/gift-cards", POS_KEY, json={"amount": "50.00", "currency": "EUR", "card_number": number}
    )
    assert sold.status_code == 201, sold.text
    assert sold.json()["balance"] == "50.00" and sold.json()["e_card"] is False
    spend = {"redemption_id": "G-" + uuid.uuid4().hex[:8], "amount": "20.00"}
    first = api.call("POST", f"/v1/gift-cards/{number}/redeem", POS_KEY, json=spend)
    assert first.status_code == 201, first.text
    assert (first.json()["amount"], first.json()["balance"]) == ("20.00", "30.00")
    assert api.call("POST", f"/v1/gift-cards/{number}/redeem", POS_KEY, json=spend).json() == first.json()
    problem = assert_problem(
        api.call(
            "POST",
            f"/v1/gift-cards/{number}/redeem",
            POS_KEY,
            json={"redemption_id": "G-" + uuid.uuid4().hex[:8], "amount": "30.01"},
        ),
        409,
        "insufficient-balance",
    )
    assert problem["available"] == "30.00"
    assert api.call("GET", f"/v1/gift-cards/{number}", POS_KEY).json()["balance"] == "30.00"
    ledger = api.call("GET", f"/v1/accounts/{number}/ledger", POS_KEY).json()["items"]
    assert [(m["reason"], m["amount"]) for m in ledger] == [("redeem", "-20.00"), ("activate", "50.00")]
    for bad in (
        {"redemption_id": "x1", "amount": "0"},
        {"redemption_id": "x2", "amount": "1.001"},
        {"redemption_id": "x3", "amount": "-5"},
    ):
        assert_problem(
            api.call("POST", f"/v1/gift-cards/{number}/redeem", POS_KEY, json=bad), 422, "validation-failed"
        )
    assert_problem(
        api.call(
            "POST",
            f"/v1/gift-cards/{number}/redeem",
            POS_KEY,
            json={"redemption_id": "x4", "amount": "1", "store_id": "web-nl"},
        ),
        403,
        "forbidden",
    )
    assert_problem(api.call("GET", "/v1/gift-cards/6036000000000000", POS_KEY), 404, "account-not-found")


def test_web_order_holds_captures_and_a_cancelled_one_releases(api: Api) -> None:
    email = unique_email()
    sold = api.call(
        "POST",
        "/v1/gift-cards",
        WEB_KEY,
        json={"amount": "80.00", "currency": "EUR", "delivery": {"email": email, "name": "Bo"}},
    )
    assert sold.status_code == 201, sold.text
    number = sold.json()["card_number"]
    assert sold.json()["e_card"] is True
    pin = e_card_pin(api, email)  # from the email itself: the outbox never shows it
    assert_problem(api.call("GET", f"/v1/gift-cards/{number}", WEB_KEY), 403, "pin-required")
    seen = api.call("GET", f"/v1/gift-cards/{number}", WEB_KEY, headers={"x-gift-card-pin": pin})
    assert seen.status_code == 200 and seen.json()["available"] == "80.00"

    shipped = "H-" + uuid.uuid4().hex[:8]
    assert_problem(
        api.call(
            "POST", f"/v1/gift-cards/{number}/holds", WEB_KEY, json={"hold_id": shipped, "amount": "50.00"}
        ),
        403,
        "pin-required",
    )
    assert_problem(api.call("GET", f"/v1/accounts/{number}/ledger", WEB_KEY), 403, "pin-required")
    with_pin = {"x-gift-card-pin": pin}
    held = api.call(
        "POST",
        f"/v1/gift-cards/{number}/holds",
        WEB_KEY,
        json={"hold_id": shipped, "amount": "50.00"},
        headers=with_pin,
    )
    assert held.status_code == 201 and held.json()["status"] == "held"
    after_hold = api.call("GET", f"/v1/gift-cards/{number}", POS_KEY).json()
    assert (after_hold["balance"], after_hold["available"], after_hold["held"]) == ("80.00", "30.00", "50.00")
    assert_problem(
        api.call("POST", f"/v1/holds/{shipped}/capture", WEB_KEY, json={"amount": "50.01"}),
        422,
        "validation-failed",
    )
    captured = api.call("POST", f"/v1/holds/{shipped}/capture", WEB_KEY, json={"amount": "45.00"}).json()
    assert (captured["status"], captured["balance"], captured["available"]) == ("captured", "35.00", "35.00")

    cancelled = "H-" + uuid.uuid4().hex[:8]
    api.call(
        "POST",
        f"/v1/gift-cards/{number}/holds",
        WEB_KEY,
        json={"hold_id": cancelled, "amount": "35.00"},
        headers=with_pin,
    )
    assert api.call("GET", f"/v1/gift-cards/{number}", POS_KEY).json()["available"] == "0.00"
    released = api.call("POST", f"/v1/holds/{cancelled}/release", WEB_KEY).json()
    assert (released["status"], released["available"]) == ("released", "35.00")
    assert api.call("POST", f"/v1/holds/{cancelled}/release", WEB_KEY).json()["status"] == "released"
    assert_problem(
        api.call("POST", f"/v1/holds/{cancelled}/capture", WEB_KEY, json={"amount": "1"}),
        409,
        "hold-not-capturable",
    )


def test_points_redemption_and_reversal_over_http(api: Api) -> None:
    jane = api.enrol(links=[{"type": "email", "value": unique_email()}])
    api.call(
        "POST",
        "/v1/transactions",
        POS_KEY,
        json={
            "transaction_id": "T-" + uuid.uuid4().hex[:8],
            "type": "sale",
            "occurred_at": (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "customer": {"customer_id": jane["customer_id"]},
            "currency": "EUR",
            "total": "10.00",
            "lines": [{"line_id": "1", "sku": "X", "quantity": "1", "unit_price": "10.00"}],
        },
    )
    body = {
        "redemption_id": "R-" + uuid.uuid4().hex[:8],
        "customer": {"customer_id": jane["customer_id"]},
        "kind": "points",
        "points": 60,
        "order_ref": "W-1",
    }
    spent = api.call("POST", "/v1/redemptions", WEB_KEY, json=body)
    assert spent.status_code == 201, spent.text
    assert spent.json()["balance_after"] == 40
    problem = assert_problem(
        api.call(
            "POST", "/v1/redemptions", WEB_KEY, json={**body, "redemption_id": "R-x" + uuid.uuid4().hex[:6]}
        ),
        409,
        "insufficient-balance",
    )
    assert problem["available"] == 40
    back = api.call("POST", f"/v1/redemptions/{body['redemption_id']}/reverse", WEB_KEY)
    assert back.status_code == 200 and back.json()["status"] == "reversed"
    assert (
        api.call("GET", f"/v1/customers/{jane['customer_id']}", WEB_KEY).json()["points"]["available"] == 100
    )
    assert_problem(api.call("POST", "/v1/redemptions", WEB_KEY, json=body), 409, "redemption-reversed")
    assert_problem(
        api.call("POST", "/v1/redemptions", WEB_KEY, json={**body, "points": 0}), 422, "validation-failed"
    )
    assert_problem(api.call("POST", "/v1/redemptions/nope/reverse", WEB_KEY), 404, "redemption-not-found")


def test_web_order_holds_points_then_captures_and_another_releases(api: Api) -> None:
    jane = api.enrol(links=[{"type": "email", "value": unique_email()}])
    api.call(
        "POST",
        "/v1/transactions",
        POS_KEY,
        json={
            "transaction_id": "T-" + uuid.uuid4().hex[:8],
            "type": "sale",
            "occurred_at": (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "customer": {"customer_id": jane["customer_id"]},
            "currency": "EUR",
            "total": "20.00",
            "lines": [{"line_id": "1", "sku": "X", "quantity": "1", "unit_price": "20.00"}],
        },
    )
    shipped = "PH-" + uuid.uuid4().hex[:8]
    held = api.call(
        "POST",
        f"/v1/customers/{jane['customer_id']}/holds",
        WEB_KEY,
        json={"hold_id": shipped, "points": 150},
    )
    assert held.status_code == 201, held.text
    # Points holds answer whole points (integers), as the contract has points.
    assert (held.json()["kind"], held.json()["amount"], held.json()["status"]) == ("points", 150, "held")
    problem = assert_problem(
        api.call(
            "POST",
            "/v1/redemptions",
            WEB_KEY,
            json={
                "redemption_id": "R-" + uuid.uuid4().hex[:8],
                "customer": {"customer_id": jane["customer_id"]},
                "kind": "points",
                "points": 60,
            },
        ),
        409,
        "insufficient-balance",
    )
    assert (problem["available"], problem["held"]) == (50, 150)
    assert_problem(
        api.call("POST", f"/v1/holds/{shipped}/capture", WEB_KEY, json={"amount": "1.5"}),
        422,
        "validation-failed",
    )
    captured = api.call("POST", f"/v1/holds/{shipped}/capture", WEB_KEY, json={"amount": "150"})
    assert captured.status_code == 200, captured.text
    assert (captured.json()["status"], captured.json()["balance"]) == ("captured", 50)
    cancelled = "PH-" + uuid.uuid4().hex[:8]
    api.call(
        "POST",
        f"/v1/customers/{jane['customer_id']}/holds",
        WEB_KEY,
        json={"hold_id": cancelled, "points": 50},
    )
    assert api.call("POST", f"/v1/holds/{cancelled}/release", WEB_KEY).json()["status"] == "released"
    ledger = api.call("GET", f"/v1/customers/{jane['customer_id']}/ledger", WEB_KEY).json()["items"]
    assert [(e["reason"], e["points"]) for e in ledger] == [("redeem", -150), ("earn", 200)]


def test_bad_input_on_rewards_accounts_and_holds_names_the_field(api: Api) -> None:
    jane = api.enrol(links=[{"type": "email", "value": unique_email()}])
    cid = jane["customer_id"]
    cases = [
        (
            "POST",
            "/v1/admin/rewards",
            ADMIN_KEY,
            {"reward_id": "mug", "name": "Mug", "points": 0},
            ["body", "points"],
        ),
        (
            "POST",
            "/v1/admin/rewards",
            ADMIN_KEY,
            {"reward_id": "bad id", "name": "Mug", "points": 5},
            ["body", "reward_id"],
        ),
        (
            "POST",
            f"/v1/customers/{cid}/accounts",
            POS_KEY,
            {"kind": "merchandise_credit", "amount": "-1", "currency": "EUR"},
            ["body", "amount"],
        ),
        (
            "POST",
            f"/v1/customers/{cid}/accounts",
            POS_KEY,
            {"kind": "gift_card", "amount": "5", "currency": "EUR"},
            ["body", "kind"],
        ),
        (
            "POST",
            f"/v1/customers/{cid}/accounts",
            POS_KEY,
            {"kind": "merchandise_credit", "amount": "5", "currency": "USD"},
            ["body", "currency"],
        ),
        ("POST", f"/v1/customers/{cid}/holds", WEB_KEY, {"hold_id": "h1", "points": 0}, ["body", "points"]),
        (
            "POST",
            f"/v1/customers/{cid}/holds",
            WEB_KEY,
            {"hold_id": "h1", "points": 5, "expires_in_seconds": 0},
            ["body", "expires_in_seconds"],
        ),
        (
            "POST",
            "/v1/gift-cards",
            POS_KEY,
            {"amount": "10", "currency": "EUR", "card_number": "123"},
            ["body", "card_number"],
        ),
        ("POST", "/v1/gift-cards", POS_KEY, {"amount": "10", "currency": "EUR"}, ["body"]),
        (
            "POST",
            "/v1/gift-cards",
            WEB_KEY,
            {"amount": "10", "currency": "EUR", "delivery": {"email": "nope"}},
            ["body", "delivery", "email"],
        ),
        (
            "POST",
            "/v1/redemptions",
            POS_KEY,
            {"redemption_id": "r1", "customer": {"customer_id": cid}, "kind": "stored_value"},
            ["body"],
        ),
    ]
    for method, path, key, body, loc in cases:
        problem = assert_problem(api.call(method, path, key, json=body), 422, "validation-failed")
        assert any(e["loc"][: len(loc)] == loc for e in problem["errors"]), (path, body, problem)
    assert_problem(
        api.call(
            "POST",
            f"/v1/customers/{cid}/accounts",
            POS_KEY,
            json={"kind": "promo_cash", "amount": "5", "currency": "EUR"},
        ),
        403,
        "forbidden",
    )
    assert_problem(
        api.call("POST", "/v1/holds/nope/capture", WEB_KEY, json={"amount": "1"}), 404, "hold-not-found"
    )
