"""Cashback and event earn rules in the programme, over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.e2e.conftest import ADMIN_KEY, POS_KEY, Api, assert_problem, unique_email
from tests.e2e.test_transactions_http import coffee, sale

CASHBACK = {
    "rule_id": "coffee-cashback",
    "name": "5% back on coffee",
    "categories": ["coffee"],
    "cashback": {"percent": "5", "expires_days": 30},
}
APP_INSTALL = {
    "rule_id": "app-install",
    "name": "100 points for installing the app",
    "on_event": "app_install",
    "points": 100,
    "where": {"platform": "ios"},
    "limit": {"per_customer": 1, "per": "ever"},
}


def test_a_members_sale_credits_cashback_that_a_return_takes_back(api: Api) -> None:
    programme = api.call("GET", "/v1/admin/programme", ADMIN_KEY).json()
    rules = [*programme["earn_rules"], CASHBACK, APP_INSTALL]
    updated = api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json={**programme, "earn_rules": rules})
    assert updated.status_code == 200, updated.text
    assert updated.json()["earn_rules"][-2:] == [
        {
            **CASHBACK,
            "where": {"channels": [], "stores": [], "store_formats": [], "store_attributes": {}},
            "skus": [],
            "multiplier": "1",
            "bonus_points": 0,
            "valid_from": None,
            "valid_until": None,
        },
        {**APP_INSTALL, "valid_from": None, "valid_until": None},
    ]
    try:
        jane = api.enrol(links=[{"type": "email", "value": unique_email()}])
        body = sale(
            {"customer_id": jane["customer_id"]},
            [coffee("2", "4.50"), {**coffee("1", "3.00", "2"), "category": "cake"}],
        )
        first = api.call("POST", "/v1/transactions", POS_KEY, json=body)
        assert first.status_code == 201, first.text
        cashback = first.json()["cashback"]
        assert cashback["amount"] == "0.45" and cashback["currency"] == "EUR"  # 5% of 9.00, not of the cake
        assert cashback["shortfall"] == "0.00"
        replay = api.call("POST", "/v1/transactions", POS_KEY, json=body)
        assert replay.json() == first.json()

        accounts = api.call("GET", f"/v1/customers/{jane['customer_id']}/accounts", POS_KEY).json()["items"]
        [cash] = [a for a in accounts if a["kind"] == "promo_cash"]
        assert cash["account_id"] == cashback["account_id"]
        assert (cash["balance"], cash["available"]) == ("0.45", "0.45")
        assert cash["expires_at"] is not None
        assert datetime.fromisoformat(cash["expires_at"].replace("Z", "+00:00")) == datetime.fromisoformat(
            cashback["expires_at"].replace("Z", "+00:00")
        )

        back = api.call(
            "POST",
            "/v1/transactions",
            POS_KEY,
            json={
                **sale({"customer_id": jane["customer_id"]}, [coffee("1", "4.50")]),
                "type": "return",
                "original_transaction_id": body["transaction_id"],
            },
        )
        assert back.status_code == 201, back.text
        assert back.json()["cashback"]["amount"] == "-0.22"  # one of two coffees: 22 of 45 cents (floor)
        ledger = api.call("GET", f"/v1/accounts/{cash['account_id']}/ledger", POS_KEY).json()["items"]
        assert [(m["reason"], m["amount"], m["transaction_id"]) for m in ledger] == [
            ("return", "-0.22", back.json()["transaction_id"]),
            ("cashback", "0.45", body["transaction_id"]),
        ]
        accounts = api.call("GET", f"/v1/customers/{jane['customer_id']}/accounts", POS_KEY).json()["items"]
        assert [a["balance"] for a in accounts if a["kind"] == "promo_cash"] == ["0.23"]
        recorded = api.call("GET", f"/v1/transactions/ams-01/{body['transaction_id']}", POS_KEY).json()
        assert (recorded["cashback"], recorded["cashback_reversed"]) == ("0.45", "0.22")
        assert [ln["cashback"] for ln in recorded["lines"]] == ["0.45", "0.00"]

        guest = sale({"link": {"type": "email", "value": unique_email()}}, [coffee("1", "10.00")])
        answer = api.call("POST", "/v1/transactions", POS_KEY, json=guest).json()
        assert answer["cashback"] is None and answer["cashback_if_member"] == "0.50"
    finally:
        api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json=programme)


def test_bad_earn_rules_are_a_422_naming_the_field(api: Api) -> None:
    programme = api.call("GET", "/v1/admin/programme", ADMIN_KEY).json()
    bad = [
        {**APP_INSTALL, "where": {"platform": {"in": ["ios"]}}},
        {**CASHBACK, "cashback": {"percent": "150", "expires_days": 30}},
        {**APP_INSTALL, "rule_id": "x", "limit": {"per_customer": 1, "per": "week"}},
    ]
    response = api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json={**programme, "earn_rules": bad})
    problem: dict[str, Any] = assert_problem(response, 422, "validation-failed")
    fields = {".".join(str(p) for p in e["loc"]) for e in problem["errors"]}
    assert fields >= {
        "body.earn_rules.0.where.platform",
        "body.earn_rules.1.cashback.percent",
        "body.earn_rules.2.limit.per",
    }, problem
    assert api.call("GET", "/v1/admin/programme", ADMIN_KEY).json() == programme  # nothing written
