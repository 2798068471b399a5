"""List cursors are opaque, signed and bound to their list (issue 12, item 1): a cursor from
another list, for another id, forged or garbage is a 400 problem naming `cursor`, never a 500."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest

from loyalty.domain.stored_value import new_gift_card_number
from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY, Api, assert_problem, unique_email


def sale(customer_id: str, n: int) -> dict[str, Any]:
    return {
        "transaction_id": f"CUR-{uuid.uuid4().hex[:12]}",
        "type": "sale",
        "occurred_at": f"2026-11-2{n}T10:00:00Z",
        "customer": {"customer_id": customer_id},
        "lines": [{"line_id": "1", "sku": "ESP", "quantity": "2", "unit_price": "3.50"}],
        "currency": "EUR",
        "total": "7.00",
    }


def member_with_two_sales(api: Api) -> str:
    customer_id = str(api.enrol(links=[{"type": "email", "value": unique_email()}])["customer_id"])
    for n in (1, 2):
        assert api.call("POST", "/v1/transactions", POS_KEY, json=sale(customer_id, n)).status_code == 201
    return customer_id


def next_cursor(api: Api, path: str, key: str) -> str:
    listed = api.call("GET", path, key, params={"limit": 1})
    assert listed.status_code == 200, listed.text
    cursor = listed.json()["next_cursor"]
    assert isinstance(cursor, str), listed.text
    return cursor


def refused(api: Api, path: str, key: str, cursor: str) -> None:
    response = api.call("GET", path, key, params={"limit": 1, "cursor": cursor})
    problem = assert_problem(response, 400, "invalid-cursor")
    assert [e["loc"] for e in problem["errors"]] == [["query", "cursor"]], problem


@pytest.fixture(scope="module")
def two_members(api: Api) -> tuple[str, str]:
    return member_with_two_sales(api), member_with_two_sales(api)


def test_a_cursor_pages_its_own_list(api: Api, two_members: tuple[str, str]) -> None:
    a, _ = two_members
    path = f"/v1/customers/{a}/transactions"
    first = api.call("GET", path, POS_KEY, params={"limit": 1}).json()
    rest = api.call("GET", path, POS_KEY, params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert (
        len(rest["items"]) == 1 and rest["items"][0]["transaction_id"] != first["items"][0]["transaction_id"]
    )
    # limit may change between pages: it pages the list, it does not choose what is in it
    more = api.call("GET", path, POS_KEY, params={"limit": 5, "cursor": first["next_cursor"]})
    assert more.status_code == 200, more.text


@pytest.mark.parametrize("listing", ["transactions", "ledger"])
def test_a_customers_cursor_sent_for_another_customer_is_a_400(
    api: Api, two_members: tuple[str, str], listing: str
) -> None:
    a, b = two_members
    cursor = next_cursor(api, f"/v1/customers/{a}/{listing}", WEB_KEY)
    refused(api, f"/v1/customers/{b}/{listing}", WEB_KEY, cursor)


def test_a_cursor_sent_to_another_list_of_the_same_customer_is_a_400(
    api: Api, two_members: tuple[str, str]
) -> None:
    a, _ = two_members
    cursor = next_cursor(api, f"/v1/customers/{a}/transactions", POS_KEY)
    refused(api, f"/v1/customers/{a}/ledger", POS_KEY, cursor)
    refused(api, f"/v1/customers/{a}/coupons", POS_KEY, cursor)
    refused(api, "/v1/admin/offers", ADMIN_KEY, cursor)


def test_coupon_cursors_are_bound_to_their_customer(api: Api, two_members: tuple[str, str]) -> None:
    a, b = two_members
    effect = {"type": "amount_off", "value": "1", "skus": ["ESP"]}
    offer_id = f"cur-{uuid.uuid4().hex[:8]}"
    offer = {"offer_id": offer_id, "name": "Cursor", "requires_coupon": True, "effect": effect}
    assert api.call("POST", "/v1/admin/offers", ADMIN_KEY, json=offer).status_code == 201
    for _ in range(2):
        issued = api.call("POST", f"/v1/customers/{a}/coupons", POS_KEY, json={"offer_id": offer_id})
        assert issued.status_code == 201, issued.text
    cursor = next_cursor(api, f"/v1/customers/{a}/coupons", POS_KEY)
    refused(api, f"/v1/customers/{b}/coupons", POS_KEY, cursor)
    refused(api, f"/v1/customers/{a}/transactions", POS_KEY, cursor)


def test_an_account_ledger_cursor_is_bound_to_its_account(api: Api) -> None:
    cards = []
    for _ in range(2):
        sold = api.call(
            "POST",
            "/v1/gift-cards",
            POS_KEY,
            json={"amount": "20.00", "currency": "EUR", "card_number": new_gift_card_number()},
        )
        assert sold.status_code == 201, sold.text
        number = sold.json()["card_number"]
        assert (
            api.call("POST", f"/v1/gift-cards/{number}/reload", POS_KEY, json={"amount": "5.00"}).status_code
            == 200
        )
        cards.append(number)
    cursor = next_cursor(api, f"/v1/accounts/{cards[0]}/ledger", POS_KEY)
    refused(api, f"/v1/accounts/{cards[1]}/ledger", POS_KEY, cursor)


@pytest.mark.parametrize(
    ("source", "targets"),
    [
        ("/v1/admin/offers", ["/v1/admin/rewards", "/v1/admin/price-groups", "/v1/admin/outbox"]),
        ("/v1/admin/api-keys", ["/v1/admin/stores", "/v1/admin/offers"]),
        ("/v1/admin/stores", ["/v1/admin/api-keys"]),
    ],
)
def test_admin_list_cursors_are_bound_to_their_list(api: Api, source: str, targets: list[str]) -> None:
    # Make sure each source list has a second page.
    for n in range(2):
        suffix = uuid.uuid4().hex[:8]
        effect = {"type": "amount_off", "value": "1", "skus": ["ESP"]}
        api.call(
            "POST",
            "/v1/admin/offers",
            ADMIN_KEY,
            json={"offer_id": f"p{n}-{suffix}", "name": "x", "effect": effect},
        )
        api.call("POST", "/v1/admin/api-keys", ADMIN_KEY, json={"kind": "admin", "name": f"k{suffix}"})
        api.call("PUT", f"/v1/admin/stores/s-{suffix}", ADMIN_KEY, json={"channel": "pos"})
    cursor = next_cursor(api, source, ADMIN_KEY)
    for target in targets:
        refused(api, target, ADMIN_KEY, cursor)


def forged(cursor: str) -> list[str]:
    version, payload, mac = cursor.split(".")
    plain = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    plain["t"] += 1
    other = base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")
    return [
        f"{version}.{other}.{mac}",  # the payload changed under the same signature
        f"{version}.{payload}.{mac[:-2]}AA",  # the signature changed
        plain["c"],  # the bare repository cursor, as the API once handed out
        base64.urlsafe_b64encode(b'{"pk": "CUSTOMER#x", "sk": "TXN#y"}').decode(),
        "garbage",
        "c1..",
        "c1.!!!.!!!",
    ]


def test_forged_and_garbage_cursors_are_a_400(api: Api, two_members: tuple[str, str]) -> None:
    a, _ = two_members
    path = f"/v1/customers/{a}/transactions"
    for bad in forged(next_cursor(api, path, POS_KEY)):
        refused(api, path, POS_KEY, bad)
