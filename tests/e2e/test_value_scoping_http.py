"""Value that must not move where it should not, over HTTP.

- A caller-owned `redemption_id` or `hold_id` is unique per store: the same id from another store is
  that store's own request, never a replay of the first store's answer (and never its record).
- A customer's own account (merchandise credit, promotional cash) is spent through the gift-card
  routes only for its owner, as through /v1/redemptions.
- A missing gift-card PIN is refused without counting as a wrong one.
- Points holds speak points; a second reversal answers today's balance; a reward says what remains.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from loyalty.domain.stored_value import luhn_check_digit
from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY, Api, assert_problem, e_card_pin, unique_email


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def physical_card(api: Api, amount: str = "50.00") -> str:
    digits = "6036" + str(uuid.uuid4().int)[:11]
    number = digits + luhn_check_digit(digits)
    sold = api.call(
        "POST", "/v1/gift-cards", POS_KEY, json={"amount": amount, "currency": "EUR", "card_number": number}
    )
    assert sold.status_code == 201, sold.text
    return number


def member_with_points(api: Api, euros: int) -> str:
    customer_id = str(
        api.enrol(links=[{"type": "email", "value": unique_email()}], member=True)["customer_id"]
    )
    sale = {
        "transaction_id": uid("T"),
        "type": "sale",
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "customer": {"customer_id": customer_id},
        "currency": "EUR",
        "total": f"{euros}.00",
        "lines": [{"line_id": "1", "sku": "SCOPE", "quantity": "1", "unit_price": f"{euros}.00"}],
    }
    recorded = api.call("POST", "/v1/transactions", POS_KEY, json=sale)
    assert recorded.status_code == 201, recorded.text
    return customer_id


def points(api: Api, customer_id: str) -> dict[str, Any]:
    found: dict[str, Any] = api.call("GET", f"/v1/customers/{customer_id}", ADMIN_KEY).json()["points"]
    return found


# ---- issue 11, item 1: redemption ids per store -------------------------------------------------
def test_the_same_gift_card_redemption_id_from_another_store_is_its_own_redemption(api: Api) -> None:
    number = physical_card(api)
    spend = {"redemption_id": uid("G"), "amount": "10.00"}
    till = api.call("POST", f"/v1/gift-cards/{number}/redeem", POS_KEY, json=spend)
    assert till.status_code == 201, till.text
    assert till.json()["balance"] == "40.00"

    shop = api.call("POST", f"/v1/gift-cards/{number}/redeem", WEB_KEY, json=spend)
    assert shop.status_code == 201, shop.text
    assert "Idempotent-Replayed" not in shop.headers  # not the till's answer
    assert shop.json()["balance"] == "30.00"  # the shop's 10.00 was taken
    assert api.call("GET", f"/v1/gift-cards/{number}", POS_KEY).json()["balance"] == "30.00"

    again = api.call("POST", f"/v1/gift-cards/{number}/redeem", WEB_KEY, json=spend)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == shop.json()  # the shop's own first answer
    assert api.call("GET", f"/v1/gift-cards/{number}", POS_KEY).json()["balance"] == "30.00"

    by_till = api.call("GET", f"/v1/redemptions/{spend['redemption_id']}", POS_KEY).json()
    by_shop = api.call("GET", f"/v1/redemptions/{spend['redemption_id']}", WEB_KEY).json()
    assert (by_till["store_id"], by_shop["store_id"]) == ("ams-01", "web-nl")


def test_the_same_points_redemption_id_from_another_store_is_its_own_and_reverses_alone(api: Api) -> None:
    customer_id = member_with_points(api, 10)  # 100 points
    body = {
        "redemption_id": uid("R"),
        "customer": {"customer_id": customer_id},
        "kind": "points",
        "points": 10,
    }
    till = api.call("POST", "/v1/redemptions", POS_KEY, json=body)
    assert (till.status_code, till.json()["balance_after"], till.json()["store_id"]) == (201, 90, "ams-01")
    shop = api.call("POST", "/v1/redemptions", WEB_KEY, json=body)
    assert shop.status_code == 201, shop.text
    assert "Idempotent-Replayed" not in shop.headers
    assert (shop.json()["balance_after"], shop.json()["store_id"]) == (80, "web-nl")
    assert points(api, customer_id)["available"] == 80

    rid = body["redemption_id"]
    back = api.call("POST", f"/v1/redemptions/{rid}/reverse", WEB_KEY)
    assert (back.status_code, back.json()["store_id"], back.json()["status"]) == (200, "web-nl", "reversed")
    assert api.call("GET", f"/v1/redemptions/{rid}", POS_KEY).json()["status"] == "done"  # the till's stands
    assert points(api, customer_id)["available"] == 90

    # An admin key names the store; without it, it cannot say whose redemption it means.
    problem = assert_problem(api.call("GET", f"/v1/redemptions/{rid}", ADMIN_KEY), 422, "validation-failed")
    assert problem["errors"][0]["loc"] == ["query", "store_id"]
    seen = api.call("GET", f"/v1/redemptions/{rid}", ADMIN_KEY, params={"store_id": "ams-01"})
    assert (seen.json()["store_id"], seen.json()["status"]) == ("ams-01", "done")
    reversed_by_admin = api.call(
        "POST", f"/v1/redemptions/{rid}/reverse", ADMIN_KEY, params={"store_id": "ams-01"}
    )
    assert reversed_by_admin.json()["status"] == "reversed"
    assert points(api, customer_id)["available"] == 100


def test_another_stores_redemption_is_not_found_and_naming_its_store_is_refused(api: Api) -> None:
    customer_id = member_with_points(api, 10)
    rid = uid("R")
    body = {"redemption_id": rid, "customer": {"customer_id": customer_id}, "kind": "points", "points": 5}
    assert api.call("POST", "/v1/redemptions", POS_KEY, json=body).status_code == 201
    assert_problem(api.call("GET", f"/v1/redemptions/{rid}", WEB_KEY), 404, "redemption-not-found")
    assert_problem(api.call("POST", f"/v1/redemptions/{rid}/reverse", WEB_KEY), 404, "redemption-not-found")
    named = {"store_id": "ams-01"}
    assert_problem(api.call("GET", f"/v1/redemptions/{rid}", WEB_KEY, params=named), 403, "forbidden")
    assert_problem(
        api.call("POST", f"/v1/redemptions/{rid}/reverse", WEB_KEY, params=named), 403, "forbidden"
    )
    assert points(api, customer_id)["available"] == 95  # nothing was put back


# ---- issue 11, item 2: hold ids per store -----------------------------------------------------------
def test_the_same_gift_card_hold_id_from_another_store_is_its_own_hold(api: Api) -> None:
    number = physical_card(api)
    hold = {"hold_id": uid("H"), "amount": "5.00", "expires_in_seconds": 600}
    till = api.call("POST", f"/v1/gift-cards/{number}/holds", POS_KEY, json=hold)
    shop = api.call("POST", f"/v1/gift-cards/{number}/holds", WEB_KEY, json=hold)
    assert (till.status_code, shop.status_code) == (201, 201), shop.text
    assert (till.json()["store_id"], shop.json()["store_id"]) == ("ams-01", "web-nl")
    card = api.call("GET", f"/v1/gift-cards/{number}", POS_KEY).json()
    assert (card["held"], card["available"]) == ("10.00", "40.00")  # two holds, not one

    captured = api.call("POST", f"/v1/holds/{hold['hold_id']}/capture", WEB_KEY, json={"amount": "5.00"})
    assert (captured.status_code, captured.json()["status"]) == (200, "captured"), captured.text
    released = api.call("POST", f"/v1/holds/{hold['hold_id']}/release", POS_KEY)
    assert (released.status_code, released.json()["status"]) == (200, "released"), released.text
    card = api.call("GET", f"/v1/gift-cards/{number}", POS_KEY).json()
    assert (card["balance"], card["held"], card["available"]) == ("45.00", "0.00", "45.00")


def test_the_same_points_hold_id_from_another_store_is_its_own_hold(api: Api) -> None:
    customer_id = member_with_points(api, 10)  # 100 points
    hold = {"hold_id": uid("PH"), "points": 30, "expires_in_seconds": 600}
    till = api.call("POST", f"/v1/customers/{customer_id}/holds", POS_KEY, json=hold)
    shop = api.call("POST", f"/v1/customers/{customer_id}/holds", WEB_KEY, json=hold)
    assert (till.status_code, shop.status_code) == (201, 201), shop.text
    assert (till.json()["store_id"], shop.json()["store_id"]) == ("ams-01", "web-nl")
    assert shop.json()["available"] == 40  # both holds count

    path = f"/v1/holds/{hold['hold_id']}"
    assert_problem(
        api.call("POST", f"{path}/capture", WEB_KEY, json={"points": 30}, params={"store_id": "ams-01"}),
        403,
        "forbidden",
    )
    captured = api.call("POST", f"{path}/capture", POS_KEY, json={"points": 30})
    assert (captured.json()["status"], captured.json()["balance"]) == ("captured", 70)
    assert api.call("POST", f"{path}/release", WEB_KEY).json()["status"] == "released"
    assert points(api, customer_id)["available"] == 70
    assert_problem(api.call("POST", f"/v1/holds/{uid('PH')}/release", WEB_KEY), 404, "hold-not-found")


# ---- issue 11, item 5: a customer's own account only for its owner -------------------------------
def test_the_gift_card_routes_spend_a_customers_account_only_for_its_owner(api: Api) -> None:
    owner = member_with_points(api, 1)
    stranger = member_with_points(api, 1)
    credit = api.call(
        "POST",
        f"/v1/customers/{owner}/accounts",
        POS_KEY,
        json={"kind": "merchandise_credit", "amount": "20.00", "currency": "EUR"},
    )
    assert credit.status_code == 201, credit.text
    account = credit.json()["account_id"]
    promo = api.call(
        "POST",
        f"/v1/customers/{owner}/accounts",
        ADMIN_KEY,
        json={"kind": "promo_cash", "amount": "5.00", "currency": "EUR"},
    ).json()["account_id"]

    for number in (account, promo):
        spend = {"redemption_id": uid("G"), "amount": "1.00"}
        problem = assert_problem(
            api.call("POST", f"/v1/gift-cards/{number}/redeem", POS_KEY, json=spend), 422, "validation-failed"
        )
        assert problem["errors"][0]["loc"] == ["body", "customer"]
        as_stranger = {**spend, "customer": {"customer_id": stranger}}
        assert_problem(
            api.call("POST", f"/v1/gift-cards/{number}/redeem", POS_KEY, json=as_stranger), 403, "forbidden"
        )
        hold = {"hold_id": uid("H"), "amount": "1.00"}
        assert_problem(
            api.call("POST", f"/v1/gift-cards/{number}/holds", POS_KEY, json=hold), 422, "validation-failed"
        )
        assert_problem(
            api.call(
                "POST",
                f"/v1/gift-cards/{number}/holds",
                POS_KEY,
                json={**hold, "customer": {"customer_id": stranger}},
            ),
            403,
            "forbidden",
        )
    balances = {
        a["account_id"]: a
        for a in api.call("GET", f"/v1/customers/{owner}/accounts", POS_KEY).json()["items"]
    }
    assert (balances[account]["balance"], balances[account]["held"]) == ("20.00", "0.00")
    assert (balances[promo]["balance"], balances[promo]["held"]) == ("5.00", "0.00")

    for_owner = {"redemption_id": uid("G"), "amount": "2.00", "customer": {"customer_id": owner}}
    spent = api.call("POST", f"/v1/gift-cards/{account}/redeem", POS_KEY, json=for_owner)
    assert (spent.status_code, spent.json()["balance"]) == (201, "18.00"), spent.text
    # An unregistered gift card stays bearer value: no customer needed.
    card = physical_card(api)
    bearer = api.call(
        "POST", f"/v1/gift-cards/{card}/redeem", POS_KEY, json={"redemption_id": uid("G"), "amount": "1.00"}
    )
    assert bearer.status_code == 201, bearer.text


# ---- issue 12, item 6: a missing PIN does not count -----------------------------------------------
def test_a_missing_pin_is_refused_without_counting_and_the_outbox_never_shows_it(
    api: Api, capfd: pytest.CaptureFixture[str]
) -> None:
    email = unique_email()
    sold = api.call(
        "POST",
        "/v1/gift-cards",
        WEB_KEY,
        json={"amount": "20.00", "currency": "EUR", "delivery": {"email": email}},
    )
    assert sold.status_code == 201, sold.text
    number = sold.json()["card_number"]
    for _ in range(7):  # more than the five wrong PINs that lock a card
        assert_problem(api.call("GET", f"/v1/gift-cards/{number}", WEB_KEY), 403, "pin-required")
        assert_problem(api.call("GET", f"/v1/accounts/{number}/ledger", WEB_KEY), 403, "pin-required")
    pin = e_card_pin(api, email)
    seen = api.call("GET", f"/v1/gift-cards/{number}", WEB_KEY, headers={"x-gift-card-pin": pin})
    assert (seen.status_code, seen.json()["balance"]) == (200, "20.00"), seen.text

    entries = [
        m
        for m in api.call("GET", "/v1/admin/outbox", ADMIN_KEY, params={"limit": "200"}).json()["items"]
        if m["to"] == email
    ]
    assert len(entries) == 1
    assert pin not in entries[0]["body"] and number not in entries[0]["body"]
    # Nothing the gateway, the handlers or the mailer (all in this process) printed holds it either.
    out, err = capfd.readouterr()
    assert f"PIN {pin}" not in out + err


# ---- issue 12, item 8: points holds speak points; fresh balances; what a reward has left -----------
def test_points_holds_take_and_answer_whole_points(api: Api) -> None:
    customer_id = member_with_points(api, 10)  # 100 points
    held = api.call(
        "POST", f"/v1/customers/{customer_id}/holds", WEB_KEY, json={"hold_id": uid("PH"), "points": 30}
    )
    assert held.status_code == 201, held.text
    body = held.json()
    assert (body["kind"], body["points"], body["amount"], body["captured"]) == ("points", 30, 30, 0)
    assert (body["customer_id"], body["balance"], body["available"]) == (customer_id, 100, 70)

    captured = api.call("POST", f"/v1/holds/{body['hold_id']}/capture", WEB_KEY, json={"points": 25}).json()
    assert (captured["status"], captured["captured"], captured["balance"], captured["available"]) == (
        "captured",
        25,
        75,
        75,
    )
    # The first clients' whole-number `amount` is still taken; a fraction is not.
    second = api.call(
        "POST", f"/v1/customers/{customer_id}/holds", WEB_KEY, json={"hold_id": uid("PH"), "points": 10}
    ).json()
    assert_problem(
        api.call("POST", f"/v1/holds/{second['hold_id']}/capture", WEB_KEY, json={"amount": "1.5"}),
        422,
        "validation-failed",
    )
    old_style = api.call("POST", f"/v1/holds/{second['hold_id']}/capture", WEB_KEY, json={"amount": "10"})
    assert (old_style.status_code, old_style.json()["captured"], old_style.json()["balance"]) == (200, 10, 65)
    third = api.call(
        "POST", f"/v1/customers/{customer_id}/holds", WEB_KEY, json={"hold_id": uid("PH"), "points": 5}
    ).json()
    assert third["available"] == 60
    released = api.call("POST", f"/v1/holds/{third['hold_id']}/release", WEB_KEY).json()
    assert (released["status"], released["balance"], released["available"]) == ("released", 65, 65)
    both = api.call(
        "POST", f"/v1/holds/{third['hold_id']}/capture", WEB_KEY, json={"points": 1, "amount": "1"}
    )
    assert_problem(both, 422, "validation-failed")


def test_a_second_reversal_answers_the_balance_as_it_is_now(api: Api) -> None:
    customer_id = member_with_points(api, 10)  # 100 points
    rid = uid("R")
    body = {"redemption_id": rid, "customer": {"customer_id": customer_id}, "kind": "points", "points": 40}
    assert api.call("POST", "/v1/redemptions", POS_KEY, json=body).json()["balance_after"] == 60
    first = api.call("POST", f"/v1/redemptions/{rid}/reverse", POS_KEY).json()
    assert (first["status"], first["balance_after"]) == ("reversed", 100)
    member_sale = {
        "transaction_id": uid("T"),
        "type": "sale",
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "customer": {"customer_id": customer_id},
        "currency": "EUR",
        "total": "5.00",
        "lines": [{"line_id": "1", "sku": "SCOPE", "quantity": "1", "unit_price": "5.00"}],
    }
    assert api.call("POST", "/v1/transactions", POS_KEY, json=member_sale).status_code == 201
    again = api.call("POST", f"/v1/redemptions/{rid}/reverse", POS_KEY)
    assert (again.status_code, again.json()["status"], again.json()["balance_after"]) == (
        200,
        "reversed",
        150,
    )


def test_a_reward_shows_its_stock_and_what_remains(api: Api) -> None:
    reward_id = uid("reward")
    created = api.call(
        "POST",
        "/v1/admin/rewards",
        ADMIN_KEY,
        json={"reward_id": reward_id, "name": "Mug", "points": 10, "stock": 3},
    )
    assert created.status_code == 201, created.text
    assert (created.json()["stock"], created.json()["remaining"]) == (3, 3)
    customer_id = member_with_points(api, 10)
    body = {
        "redemption_id": uid("R"),
        "customer": {"customer_id": customer_id},
        "kind": "points",
        "reward_id": reward_id,
    }
    assert api.call("POST", "/v1/redemptions", POS_KEY, json=body).status_code == 201
    reward = api.call("GET", f"/v1/admin/rewards/{reward_id}", ADMIN_KEY).json()
    assert (reward["stock"], reward["remaining"]) == (3, 2)
    listed = [
        r
        for r in api.call("GET", "/v1/admin/rewards", ADMIN_KEY, params={"limit": "200"}).json()["items"]
        if r["reward_id"] == reward_id
    ]
    assert listed and listed[0]["remaining"] == 2
    unlimited = api.call(
        "POST", "/v1/admin/rewards", ADMIN_KEY, json={"reward_id": uid("reward"), "name": "Tote", "points": 5}
    ).json()
    assert (unlimited["stock"], unlimited["remaining"]) == (None, None)
    # What the console read back is accepted again as it is: `remaining` is read-only.
    put = api.call("PUT", f"/v1/admin/rewards/{reward_id}", ADMIN_KEY, json={**reward, "stock": 5})
    assert (put.status_code, put.json()["stock"], put.json()["remaining"]) == (200, 5, 4), put.text
