"""What a sale or a return records matches the money taken (issue 12: items 2, 4, 7 and part of 8)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY, Api, assert_problem, unique_email


def tid(prefix: str = "T") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def ln(line_id: str, sku: str, qty: str, price: str, discount: str = "0") -> dict[str, Any]:
    return {
        "line_id": line_id,
        "sku": sku,
        "category": "bakery",
        "quantity": qty,
        "unit_price": price,
        "discount": discount,
    }


def body(
    kind: str, lines: list[dict[str, Any]], customer: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    total = sum(float(x["quantity"]) * float(x["unit_price"]) - float(x["discount"]) for x in lines)
    out: dict[str, Any] = {
        "transaction_id": tid(),
        "type": kind,
        "occurred_at": iso(datetime.now(UTC) - timedelta(hours=1)),
        "lines": lines,
        "currency": "EUR",
        "total": f"{total:.2f}",
        **extra,
    }
    if customer is not None:
        out["customer"] = customer
    return out


def member(api: Api) -> dict[str, Any]:
    return api.enrol(links=[{"type": "email", "value": unique_email()}])


def profile(api: Api, customer_id: str) -> dict[str, Any]:
    result: dict[str, Any] = api.call("GET", f"/v1/customers/{customer_id}", WEB_KEY).json()
    return result


def post(api: Api, payload: dict[str, Any], key: str = POS_KEY) -> Any:
    return api.call("POST", "/v1/transactions", key, json=payload)


@pytest.fixture
def programme(api: Api) -> Iterator[dict[str, Any]]:
    """The programme as it was; whatever a test changes is put back."""
    before: dict[str, Any] = api.call("GET", "/v1/admin/programme", ADMIN_KEY).json()
    yield before
    assert api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json=before).status_code == 200


# ---- item 2: returns are checked against what was paid ------------------------------------------


def test_a_return_refunds_at_most_what_was_paid_for_its_units(api: Api) -> None:
    jane = member(api)
    sale = body(
        "sale",
        [ln("1", "ESP", "2", "4.50"), ln("2", "CRO", "3", "2.00"), ln("3", "CAKE", "2", "5.00", "2.00")],
        {"customer_id": jane["customer_id"]},
    )
    assert post(api, sale).status_code == 201
    spend = profile(api, jane["customer_id"])["stats"]["spend"]
    assert spend == "23.00"

    def back(*lines: dict[str, Any]) -> Any:
        return post(api, body("return", list(lines), original_transaction_id=sale["transaction_id"]))

    cases = [
        (back(ln("2", "CRO", "1", "500.00")), ["body", "lines", 0, "unit_price"]),  # paid 2.00 a unit
        (back(ln("3", "CAKE", "1", "5.00")), ["body", "lines", 0, "unit_price"]),  # paid 4.00 net
        (back(ln("2", "ESP", "1", "2.00")), ["body", "lines", 0, "sku"]),  # line 2 is no espresso
        (back(ln("2", "CRO", "4", "2.00")), ["body", "lines", 0, "quantity"]),
    ]
    for response, loc in cases:
        problem = assert_problem(response, 422, "validation-failed")
        assert [e["loc"] for e in problem["errors"]] == [loc], problem
        assert "line" in problem["detail"]
    assert profile(api, jane["customer_id"])["stats"]["spend"] == "23.00"  # nothing moved

    net = back(ln("3", "CAKE", "1", "5.00", "1.00"))  # 4.00: what one cake cost after the discount
    assert net.status_code == 201, net.text
    partial = back(ln("2", "CRO", "2", "2.00"))
    assert partial.status_code == 201, partial.text
    # Earlier returns count: one croissant is left, not three.
    problem = assert_problem(back(ln("2", "CRO", "2", "2.00")), 422, "validation-failed")
    assert problem["errors"][0]["loc"] == ["body", "lines", 0, "quantity"]
    view = profile(api, jane["customer_id"])
    assert view["stats"]["spend"] == "15.00"
    assert view["points"]["available"] == 150


def test_a_cancelled_order_leaves_spend_as_a_return_does(api: Api) -> None:
    jane = member(api)
    order = body(
        "sale",
        [ln("1", "CRO", "4", "2.50"), ln("2", "ESP", "1", "5.00")],
        {"customer_id": jane["customer_id"]},
    )
    assert post(api, order, WEB_KEY).status_code == 201
    assert profile(api, jane["customer_id"])["stats"]["spend"] == "15.00"
    returned = body("return", [ln("1", "CRO", "1", "2.50")], original_transaction_id=order["transaction_id"])
    assert post(api, returned, WEB_KEY).status_code == 201
    assert profile(api, jane["customer_id"])["stats"]["spend"] == "12.50"
    path = f"/v1/transactions/web-nl/{order['transaction_id']}"
    cancelled = api.call("PATCH", path, WEB_KEY, json={"order_status": "cancelled"})
    assert cancelled.status_code == 200, cancelled.text
    view = profile(api, jane["customer_id"])
    assert view["stats"]["spend"] == "0.00"
    assert view["points"] == {"available": 0, "pending": 0, "lifetime": 0}


def test_a_customers_return_names_its_sale_and_a_receiptless_one_is_anonymous(api: Api) -> None:
    guest = {"link": {"type": "email", "value": unique_email()}}
    assert post(api, body("sale", [ln("1", "CRO", "1", "2.00")], guest)).status_code == 201
    problem = assert_problem(
        post(api, body("return", [ln("1", "CRO", "1", "500.00")], guest)), 422, "validation-failed"
    )
    assert problem["errors"][0]["loc"] == ["body", "original_transaction_id"]
    anonymous = post(api, body("return", [ln("1", "CRO", "1", "2.00")]))
    assert anonymous.status_code == 201, anonymous.text
    assert anonymous.json()["customer_id"] is None


# ---- item 4: backdated sales -----------------------------------------------------------------------


def test_a_sale_older_than_max_backdate_days_is_recorded_without_earning(
    api: Api, programme: dict[str, Any]
) -> None:
    assert programme["max_backdate_days"] == 30
    jane = member(api)
    ref = {"customer_id": jane["customer_id"]}
    old = body("sale", [ln("1", "TV", "1", "350.00")], ref, occurred_at="2020-01-01T10:00:00Z")
    first = post(api, old)
    assert first.status_code == 201, first.text
    receipt = first.json()
    assert receipt["points_earned"] == 0
    assert receipt["tier"] == "bronze" and receipt["tier_changed"] is False
    assert [n["code"] for n in receipt["notes"]] == ["backdated"]
    assert post(api, old).json() == receipt  # a replay answers the same
    view = profile(api, jane["customer_id"])
    assert view["points"] == {"available": 0, "pending": 0, "lifetime": 0}
    assert view["stats"]["spend"] == "350.00"  # it happened: it counts in the stats
    ledger = api.call("GET", f"/v1/customers/{jane['customer_id']}/ledger", WEB_KEY).json()
    assert ledger["items"] == []

    # The programme decides how late a till may sync and still earn.
    updated = api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json={**programme, "max_backdate_days": 3})
    assert updated.status_code == 200 and updated.json()["max_backdate_days"] == 3
    week_old = body(
        "sale", [ln("1", "CRO", "1", "2.00")], ref, occurred_at=iso(datetime.now(UTC) - timedelta(days=7))
    )
    assert post(api, week_old).json()["points_earned"] == 0
    problem = assert_problem(
        api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json={**programme, "max_backdate_days": -1}),
        422,
        "validation-failed",
    )
    assert problem["errors"][0]["loc"] == ["body", "max_backdate_days"]


def test_a_late_sales_lot_and_tier_progress_date_from_the_sale(api: Api, programme: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    end_of_last_month = now.replace(day=1, hour=12, minute=0, second=0, microsecond=0) - timedelta(days=1)
    changed = {**programme, "max_backdate_days": 40, "tier_window_months": 1}
    assert api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json=changed).status_code == 200
    jane = member(api)
    late = body(
        "sale",
        [ln("1", "CRO", "1", "20.00")],
        {"customer_id": jane["customer_id"]},
        occurred_at=iso(end_of_last_month),
    )
    receipt = post(api, late).json()
    assert receipt["points_earned"] == 200 and receipt["notes"] == []
    ledger = api.call("GET", f"/v1/customers/{jane['customer_id']}/ledger", WEB_KEY).json()["items"]
    expires = datetime.fromisoformat(ledger[0]["expires_at"])
    assert (expires.year, expires.month, expires.day) == (
        end_of_last_month.year + 2,
        end_of_last_month.month,
        end_of_last_month.day if not (end_of_last_month.month == 2 and end_of_last_month.day == 29) else 28,
    )
    # A one-month window holds this month only: last month's sale counts there, not now.
    assert profile(api, jane["customer_id"])["tier_progress"]["points_in_window"] == 0


# ---- item 7: a sale records the discounts the till gave ---------------------------------------------


def test_a_sale_records_only_the_offers_whose_discount_the_lines_carry(api: Api) -> None:
    sku, b2g1, bonus = tid("CRO"), tid("b2g1"), tid("bonus")
    made = api.call(
        "POST",
        "/v1/admin/offers",
        ADMIN_KEY,
        json={
            "offer_id": b2g1,
            "name": "Buy two croissants, the third is free",
            "effect": {"type": "buy_x_get_y", "buy": 2, "get": 1, "skus": [sku]},
            "limits": {"per_customer": 1, "budget": 1},
        },
    )
    assert made.status_code == 201, made.text
    made = api.call(
        "POST",
        "/v1/admin/offers",
        ADMIN_KEY,
        json={
            "offer_id": bonus,
            "name": "50 points on croissants",
            "effect": {"type": "bonus_points", "value": "50", "skus": [sku]},
        },
    )
    assert made.status_code == 201, made.text
    jane = member(api)
    ref = {"customer_id": jane["customer_id"]}

    full_price = post(api, body("sale", [ln("1", sku, "3", "2.25")], ref))
    assert full_price.status_code == 201, full_price.text
    receipt = full_price.json()
    assert receipt["total"] == "6.75"
    assert receipt["offers_applied"] == [{"offer_id": bonus, "amount": "0.00"}]  # points still apply
    assert receipt["points_earned"] == 67 + 50
    assert [n["code"] for n in receipt["notes"]] == ["offer_not_given"]
    assert b2g1 in receipt["notes"][0]["detail"]

    # The budget and the customer's one use were not spent on a discount that was not given.
    given = post(api, body("sale", [ln("1", sku, "3", "2.25", "2.25")], ref)).json()
    assert given["total"] == "4.50"
    assert {"offer_id": b2g1, "amount": "2.25"} in given["offers_applied"]
    assert given["notes"] == []
    spent = post(api, body("sale", [ln("1", sku, "3", "2.25", "2.25")], ref)).json()
    assert [o["offer_id"] for o in spent["offers_applied"]] == [bonus]  # its one use is gone now
    # A sale too old to earn gets no bonus either, so it records none.
    late = body("sale", [ln("1", sku, "1", "2.25")], ref, occurred_at="2020-01-01T10:00:00Z")
    old = post(api, late).json()
    assert (old["points_earned"], old["offers_applied"]) == (0, [])


# ---- item 8: answers a client can rely on -----------------------------------------------------------


def test_an_orders_answer_carries_balance_and_tier_whatever_the_status(api: Api) -> None:
    jane = member(api)
    order = body("sale", [ln("1", "CRO", "1", "10.00")], {"customer_id": jane["customer_id"]})
    assert post(api, order, WEB_KEY).json()["points_balance"] == 100
    path = f"/v1/transactions/web-nl/{order['transaction_id']}"
    for status in ("shipped", "shipped", "delivered"):
        moved = api.call("PATCH", path, WEB_KEY, json={"order_status": status})
        assert moved.status_code == 200, moved.text
        assert (moved.json()["points_balance"], moved.json()["tier"]) == (100, "bronze"), status
    returned = api.call("PATCH", path, WEB_KEY, json={"order_status": "returned"}).json()
    assert (returned["points_balance"], returned["tier"]) == (0, "bronze")


def test_each_failure_has_its_own_detail(api: Api) -> None:
    good = body("sale", [ln("1", "CRO", "1", "2.00")])
    currency = assert_problem(post(api, {**good, "currency": "USD"}), 422, "validation-failed")
    assert [e["loc"] for e in currency["errors"]] == [["body", "currency"]]
    assert "EUR" in currency["detail"] and "add up" not in currency["detail"]
    future = assert_problem(
        post(api, {**good, "occurred_at": "2099-01-01T00:00:00Z"}), 422, "validation-failed"
    )
    assert [e["loc"] for e in future["errors"]] == [["body", "occurred_at"]]
    assert "future" in future["detail"] and "add up" not in future["detail"]
    total = assert_problem(post(api, {**good, "total": "5.00"}), 422, "validation-failed")
    assert [e["loc"] for e in total["errors"]] == [["body", "total"]]
    assert "2.00" in total["detail"]


def test_a_returns_ledger_entry_names_the_return_and_its_sale(api: Api) -> None:
    jane = member(api)
    sale = body("sale", [ln("1", "CRO", "2", "5.00")], {"customer_id": jane["customer_id"]})
    assert post(api, sale).status_code == 201
    back = body("return", [ln("1", "CRO", "1", "5.00")], original_transaction_id=sale["transaction_id"])
    assert post(api, back).json()["points_earned"] == -50
    ledger = api.call("GET", f"/v1/customers/{jane['customer_id']}/ledger", WEB_KEY).json()["items"]
    assert [(e["reason"], e["transaction_id"], e["original_transaction_id"]) for e in ledger] == [
        ("return", back["transaction_id"], sale["transaction_id"]),
        ("earn", sale["transaction_id"], None),
    ]
    assert ledger[0]["store_id"] == "ams-01" and ledger[0]["original_store_id"] == "ams-01"


def test_retro_credit_dates_its_lots_from_the_sales(api: Api) -> None:
    email = unique_email()
    at = (datetime.now(UTC) - timedelta(days=20)).replace(microsecond=0)
    guest = body("sale", [ln("1", "CRO", "1", "10.00")], {"link": {"type": "email", "value": email}})
    assert post(api, {**guest, "occurred_at": iso(at)}, WEB_KEY).json()["member"] is False
    jane = api.enrol(links=[{"type": "email", "value": email}])
    ledger = api.call("GET", f"/v1/customers/{jane['customer_id']}/ledger", WEB_KEY).json()["items"]
    assert [(e["reason"], e["points"]) for e in ledger] == [("retro_credit", 100)]
    expires = datetime.fromisoformat(ledger[0]["expires_at"])
    if (at.month, at.day) != (2, 29):
        assert expires.date() == at.replace(year=at.year + 2).date()


def test_returning_an_anonymous_sale_leaves_the_named_customers_spend(api: Api) -> None:
    jane = member(api)
    assert (
        post(
            api, body("sale", [ln("1", "CRO", "1", "10.00")], {"customer_id": jane["customer_id"]})
        ).status_code
        == 201
    )
    anonymous = body("sale", [ln("1", "TV", "1", "50.00")])
    assert post(api, anonymous).status_code == 201
    back = body(
        "return",
        [ln("1", "TV", "1", "50.00")],
        {"customer_id": jane["customer_id"]},
        original_transaction_id=anonymous["transaction_id"],
    )
    assert post(api, back).status_code == 201
    view = profile(api, jane["customer_id"])
    assert view["stats"]["spend"] == "10.00"
    assert view["points"]["available"] == 100


def test_enrolling_by_patch_credits_recent_purchases_once_and_announces_the_enrolment(
    api: Api, archive: Any
) -> None:
    """The contract names `PATCH … {"member": true}` as a way to enrol, and enrolling a non-member
    credits their purchases of the last retro_credit_days once — whichever call enrols them."""
    email = unique_email()
    at = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
    guest = body("sale", [ln("1", "CRO", "1", "10.00")], {"link": {"type": "email", "value": email}})
    sold = post(api, {**guest, "occurred_at": iso(at)}, WEB_KEY).json()
    assert sold["member"] is False
    customer_id = sold["customer_id"]

    patch = {"member": True}
    first = api.call("PATCH", f"/v1/customers/{customer_id}", WEB_KEY, json=patch)
    assert first.status_code == 200, first.text
    assert first.json()["member"] is True and first.json()["points"]["available"] == 100
    again = api.call("PATCH", f"/v1/customers/{customer_id}", WEB_KEY, json=patch)
    assert again.status_code == 200 and again.json()["points"]["available"] == 100  # once
    ledger = api.call("GET", f"/v1/customers/{customer_id}/ledger", WEB_KEY).json()["items"]
    assert [(e["reason"], e["points"]) for e in ledger] == [("retro_credit", 100)]
    enrolled: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while not enrolled and time.monotonic() < deadline:
        enrolled += [
            e["detail"]
            for e in archive()
            if e["detail-type"] == "CustomerEnrolled" and e["detail"]["customer_id"] == customer_id
        ]
        time.sleep(0.2)
    assert [e["previously_known"] for e in enrolled] == [True]
