"""Placeholder and mistyped identities (issue 12, item 3): a placeholder link identifies nobody, so
it neither creates nor finds a profile, and a card failing the programme's check digit is refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY, Api, assert_problem, unique_email
from tests.e2e.test_transactions_http import coffee, sale

PLACEHOLDER = {"reason": "placeholder-link", "link": {"type": "email", "value": "test@test.com"}}


@pytest.fixture
def programme(api: Api) -> Iterator[dict[str, Any]]:
    """The programme as it was; whatever a test changes is put back."""
    before = api.call("GET", "/v1/admin/programme", ADMIN_KEY).json()
    yield before
    restored = api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json=before)
    assert restored.status_code == 200, restored.text


def put_programme(api: Api, body: dict[str, Any]) -> None:
    response = api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json=body)
    assert response.status_code == 200, response.text


def locs(body: dict[str, Any]) -> list[list[Any]]:
    return [e["loc"] for e in body["errors"]]


def test_sales_naming_a_placeholder_are_anonymous_and_never_pool(api: Api) -> None:
    till = sale({"link": {"type": "email", "value": "test@test.com"}}, [coffee("1", "4.50")])
    first = api.call("POST", "/v1/transactions", POS_KEY, json=till)
    assert first.status_code == 201, first.text
    receipt = first.json()
    assert receipt["customer_id"] is None and receipt["member"] is False
    assert receipt["customer_ignored"] == PLACEHOLDER
    assert api.call("POST", "/v1/transactions", POS_KEY, json=till).json() == receipt  # replay says so too

    web = sale({"link": {"type": "email", "value": " TEST@test.com"}}, [coffee("2", "4.50")])
    online = api.call("POST", "/v1/transactions", WEB_KEY, json=web).json()
    assert online["customer_id"] is None
    assert online["customer_ignored"] == PLACEHOLDER

    phone = sale({"link": {"type": "phone", "value": "+31 6 11111111"}}, [coffee()])
    ignored = api.call("POST", "/v1/transactions", POS_KEY, json=phone).json()
    assert ignored["customer_id"] is None
    assert ignored["customer_ignored"]["link"] == {"type": "phone", "value": "+31611111111"}

    real = sale({"link": {"type": "email", "value": unique_email()}}, [coffee()])
    guest = api.call("POST", "/v1/transactions", POS_KEY, json=real).json()
    assert guest["customer_id"] is not None and guest.get("customer_ignored") is None

    for value in ("test@test.com", "TEST@test.com"):
        lookup = api.call("GET", f"/v1/customers?link_type=email&link_value={value}", POS_KEY)
        body = assert_problem(lookup, 422, "validation-failed")
        assert locs(body) == [["query", "link_value"]]


def test_enrolment_with_only_placeholders_is_422_and_mixed_ones_are_left_out(api: Api) -> None:
    only = api.call(
        "POST",
        "/v1/customers",
        POS_KEY,
        json={"links": [{"type": "email", "value": "TEST@test.com"}, {"type": "card", "value": "0000"}]},
    )
    body = assert_problem(only, 422, "validation-failed")
    assert locs(body) == [["body", "links", 0, "value"], ["body", "links", 1, "value"]]
    as_guest = api.call(
        "POST", "/v1/customers", WEB_KEY, json={"member": False, "links": [{"type": "phone", "value": "0"}]}
    )
    assert_problem(as_guest, 422, "validation-failed")

    email = unique_email()
    mixed = api.call(
        "POST",
        "/v1/customers",
        POS_KEY,
        json={"links": [{"type": "email", "value": "test@test.com"}, {"type": "email", "value": email}]},
    )
    assert mixed.status_code == 201, mixed.text
    jane = mixed.json()
    assert jane["links_ignored"] == [{"type": "email", "value": "test@test.com"}]
    assert {"type": "email", "value": "test@test.com"} not in jane["links"]
    assert {"type": "email", "value": email} in jane["links"]

    later = sale({"link": {"type": "email", "value": "test@test.com"}}, [coffee("1", "10.00")])
    receipt = api.call("POST", "/v1/transactions", POS_KEY, json=later).json()
    assert receipt["customer_id"] is None  # the member never gets a stranger's purchase
    view = api.call("GET", f"/v1/customers/{jane['customer_id']}", POS_KEY).json()
    assert view["stats"]["transactions"] == 0 and view["points"]["available"] == 0
    assert view.get("links_ignored") is None  # only the enrolment's answer carries it


def test_link_calls_refuse_placeholders_and_programme_values(api: Api, programme: dict[str, Any]) -> None:
    jane = api.enrol(links=[{"type": "email", "value": unique_email()}])
    path = f"/v1/customers/{jane['customer_id']}/links"
    for on_conflict in ("reject", "merge"):
        link = {"type": "email", "value": "Test@Test.com", "on_conflict": on_conflict}
        body = assert_problem(api.call("POST", path, POS_KEY, json=link), 422, "validation-failed")
        assert locs(body) == [["body", "value"]]
    assert api.call("GET", f"/v1/customers/{jane['customer_id']}", POS_KEY).json()["links"] == jane["links"]

    put_programme(api, {**programme, "merge_blocked_values": ["Kassa@Brand.example"]})
    blocked = api.call("POST", path, POS_KEY, json={"type": "email", "value": "kassa@brand.example"})
    assert locs(assert_problem(blocked, 422, "validation-failed")) == [["body", "value"]]
    by_till = sale({"link": {"type": "email", "value": "KASSA@brand.example"}}, [coffee()])
    receipt = api.call("POST", "/v1/transactions", POS_KEY, json=by_till).json()
    assert receipt["customer_id"] is None
    assert receipt["customer_ignored"]["reason"] == "placeholder-link"

    redemption = {
        "redemption_id": "R-" + jane["customer_id"][-10:],
        "customer": {"link": {"type": "email", "value": "test@test.com"}},
        "kind": "points",
        "points": 10,
    }
    refused = api.call("POST", "/v1/redemptions", POS_KEY, json=redemption)
    assert ["body", "customer", "link", "value"] in locs(assert_problem(refused, 422, "validation-failed"))

    cart = {
        "customer": {"link": {"type": "email", "value": "test@test.com"}},
        "currency": "EUR",
        "lines": [coffee()],
    }
    priced = api.call("POST", "/v1/cart/evaluate", POS_KEY, json=cart)
    assert priced.status_code == 200, priced.text
    assert priced.json()["points_to_earn"] == 0  # priced as the sale will be recorded: anonymous


def test_cards_failing_the_programmes_check_digit_are_refused(api: Api, programme: dict[str, Any]) -> None:
    assert programme.get("card_scheme") is None
    put_programme(api, {**programme, "card_scheme": "luhn"})
    member = api.enrol(links=[{"type": "email", "value": unique_email()}])
    issued = sale({"link": {"type": "card", "value": member["card"]}}, [coffee()])
    receipt = api.call("POST", "/v1/transactions", POS_KEY, json=issued)
    assert receipt.status_code == 201, receipt.text  # the cards the platform issues pass the scheme
    assert receipt.json()["customer_id"] == member["customer_id"]

    good, typo = "4111 1111 1111 1111", "4111111111111112"
    enrolled = api.call("POST", "/v1/customers", POS_KEY, json={"links": [{"type": "card", "value": typo}]})
    assert locs(assert_problem(enrolled, 422, "validation-failed")) == [["body", "links", 0, "value"]]
    mistyped = sale({"link": {"type": "card", "value": typo}}, [coffee()])
    refused = api.call("POST", "/v1/transactions", POS_KEY, json=mistyped)
    assert locs(assert_problem(refused, 422, "validation-failed")) == [["body", "customer", "link", "value"]]
    lookup = api.call("GET", f"/v1/customers?link_type=card&link_value={typo}", POS_KEY)
    assert locs(assert_problem(lookup, 422, "validation-failed")) == [["query", "link_value"]]
    path = f"/v1/customers/{member['customer_id']}/links"
    linked = api.call("POST", path, POS_KEY, json={"type": "card", "value": typo})
    assert locs(assert_problem(linked, 422, "validation-failed")) == [["body", "value"]]
    attached = api.call("POST", path, POS_KEY, json={"type": "card", "value": good})
    assert attached.status_code == 201, attached.text

    unknown = api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json={**programme, "card_scheme": "mod97"})
    assert ["body", "card_scheme"] in locs(assert_problem(unknown, 422, "validation-failed"))
