"""Calls that create value are exactly once over HTTP: gift-card sales, reloads, merchandise credit,
promotional cash and coupons honour `Idempotency-Key` (the first response again, 422 for another
body) and a caller-owned `request_id` (per store, for ever); a reload tops up gift cards only.
Calls that spend or hold value (redemptions, holds, captures, releases, reversals) honour the key
too: a replay is the first response, another body under the same key is 422 and changes nothing."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY, Api, assert_problem, unique_email
from tests.e2e.test_stored_value_http import card_number
from tests.e2e.test_transactions_http import coffee, sale
from tests.e2e.test_value_scoping_http import member_with_points, points


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"k-{uuid.uuid4()}"}


def rid(prefix: str = "RQ") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def sell(api: Api, amount: str = "20.00") -> str:
    number = card_number()
    sold = api.call(
        "POST", "/v1/gift-cards", POS_KEY, json={"amount": amount, "currency": "EUR", "card_number": number}
    )
    assert sold.status_code == 201, sold.text
    return number


def ledger(api: Api, account_id: str) -> list[tuple[str, str]]:
    found = api.call("GET", f"/v1/accounts/{account_id}/ledger", POS_KEY)
    assert found.status_code == 200, found.text
    return [(m["reason"], m["amount"]) for m in found.json()["items"]]


def assert_replay(first: requests.Response, again: requests.Response) -> None:
    assert again.status_code == first.status_code, again.text
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert first.headers.get("Idempotent-Replayed") is None


def test_a_reload_sent_twice_with_one_idempotency_key_adds_value_once(api: Api) -> None:
    number = sell(api)
    headers = key()
    path = f"/v1/gift-cards/{number}/reload"
    first = api.call("POST", path, POS_KEY, json={"amount": "5.00"}, headers=headers)
    assert (first.status_code, first.json()["balance"]) == (200, "25.00"), first.text
    assert_replay(first, api.call("POST", path, POS_KEY, json={"amount": "5.00"}, headers=headers))
    assert_problem(
        api.call("POST", path, POS_KEY, json={"amount": "6.00"}, headers=headers),
        422,
        "idempotency-key-mismatch",
    )
    # The same key on another card is another request too.
    assert_problem(
        api.call(
            "POST", f"/v1/gift-cards/{sell(api)}/reload", POS_KEY, json={"amount": "5.00"}, headers=headers
        ),
        422,
        "idempotency-key-mismatch",
    )
    assert ledger(api, number) == [("reload", "5.00"), ("activate", "20.00")]
    assert api.call("GET", f"/v1/gift-cards/{number}", POS_KEY).json()["balance"] == "25.00"


def test_a_reload_request_id_is_once_per_store_for_ever(api: Api) -> None:
    number = sell(api)
    path = f"/v1/gift-cards/{number}/reload"
    body = {"request_id": rid(), "amount": "2.50"}
    first = api.call("POST", path, POS_KEY, json=body)
    assert first.status_code == 200, first.text
    # No header, or a new Idempotency-Key: the request_id alone makes it the same request.
    assert_replay(first, api.call("POST", path, POS_KEY, json=body))
    assert_replay(first, api.call("POST", path, POS_KEY, json=body, headers=key()))
    assert_problem(
        api.call("POST", path, POS_KEY, json={**body, "amount": "3.00"}),
        422,
        "idempotency-key-mismatch",
    )
    # Another store's request with the same id is its own request, never the till's answer.
    web = api.call("POST", path, WEB_KEY, json=body)
    assert web.status_code == 200 and web.headers.get("Idempotent-Replayed") is None, web.text
    assert web.json()["balance"] == "25.00"
    assert ledger(api, number) == [("reload", "2.50"), ("reload", "2.50"), ("activate", "20.00")]
    assert_problem(
        api.call("POST", path, POS_KEY, json={"request_id": "", "amount": "1.00"}), 422, "validation-failed"
    )


def test_concurrent_reloads_with_one_key_add_value_once(api: Api) -> None:
    number = sell(api, "10.00")
    headers = key()

    def send(_: int) -> requests.Response:
        return api.call(
            "POST", f"/v1/gift-cards/{number}/reload", POS_KEY, json={"amount": "1.00"}, headers=headers
        )

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(send, range(16)))
    done = [a for a in answers if a.status_code == 200]
    assert done, [a.text for a in answers]
    assert {a.json()["balance"] for a in done} == {"11.00"}
    # A loser still locked out after the transaction retries is told so (or, when its last conflict
    # was on the card rather than the key, to retry): never a second reload.
    for refused in (a for a in answers if a.status_code != 200):
        if refused.status_code == 503:
            assert_problem(refused, 503, "service-unavailable")
        else:
            assert_problem(refused, 409, "idempotency-key-in-use")
    assert ledger(api, number) == [("reload", "1.00"), ("activate", "10.00")]


def test_a_gift_card_sale_sent_twice_sells_one_card(api: Api) -> None:
    # An e-card: a replay must not draw a second number (and email a second PIN).
    email = unique_email()
    body = {"amount": "30.00", "currency": "EUR", "delivery": {"email": email}}
    headers = key()
    first = api.call("POST", "/v1/gift-cards", WEB_KEY, json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert_replay(first, api.call("POST", "/v1/gift-cards", WEB_KEY, json=body, headers=headers))
    assert_problem(
        api.call("POST", "/v1/gift-cards", WEB_KEY, json={**body, "amount": "31.00"}, headers=headers),
        422,
        "idempotency-key-mismatch",
    )
    outbox = api.call("GET", "/v1/admin/outbox?limit=200", ADMIN_KEY).json()["items"]
    assert [m["to"] for m in outbox].count(email) == 1

    # A physical card: the replay answers the sale, not 409 card-exists.
    physical = {"amount": "15.00", "currency": "EUR", "card_number": card_number()}
    headers = key()
    first = api.call("POST", "/v1/gift-cards", POS_KEY, json=physical, headers=headers)
    assert first.status_code == 201, first.text
    assert_replay(first, api.call("POST", "/v1/gift-cards", POS_KEY, json=physical, headers=headers))
    assert_problem(api.call("POST", "/v1/gift-cards", POS_KEY, json=physical), 409, "card-exists")

    # A request_id: the same e-card, whatever the header.
    body = {
        "request_id": rid("GC"),
        "amount": "12.00",
        "currency": "EUR",
        "delivery": {"email": unique_email()},
    }
    first = api.call("POST", "/v1/gift-cards", WEB_KEY, json=body)
    assert first.status_code == 201, first.text
    assert_replay(first, api.call("POST", "/v1/gift-cards", WEB_KEY, json=body, headers=key()))


def test_customer_accounts_are_issued_once(api: Api) -> None:
    customer = api.enrol(links=[{"type": "email", "value": unique_email()}], member=True)["customer_id"]
    path = f"/v1/customers/{customer}/accounts"
    credit = {"kind": "merchandise_credit", "amount": "7.00", "currency": "EUR"}
    headers = key()
    first = api.call("POST", path, POS_KEY, json=credit, headers=headers)
    assert first.status_code == 201, first.text
    assert_replay(first, api.call("POST", path, POS_KEY, json=credit, headers=headers))
    assert_problem(
        api.call("POST", path, POS_KEY, json={**credit, "amount": "8.00"}, headers=headers),
        422,
        "idempotency-key-mismatch",
    )
    promo = {"request_id": rid("PC"), "kind": "promo_cash", "amount": "5.00", "currency": "EUR"}
    cash = api.call("POST", path, ADMIN_KEY, json=promo)
    assert cash.status_code == 201, cash.text
    assert_replay(cash, api.call("POST", path, ADMIN_KEY, json=promo))
    accounts = api.call("GET", path, POS_KEY).json()["items"]
    assert sorted((a["kind"], a["balance"]) for a in accounts) == [
        ("merchandise_credit", "7.00"),
        ("promo_cash", "5.00"),
    ]


def offer_with_coupons(api: Api) -> str:
    body: dict[str, Any] = {
        "offer_id": rid("idem"),
        "name": "idempotent coupons",
        "status": "active",
        "requires_coupon": True,
        "effect": {"type": "amount_off", "value": "1", "skus": ["IDEM-NOBODY-SELLS-THIS"]},
    }
    made = api.call("POST", "/v1/admin/offers", ADMIN_KEY, json=body)
    assert made.status_code == 201, made.text
    return str(body["offer_id"])


def test_a_coupon_is_issued_once(api: Api) -> None:
    customer = api.enrol(links=[{"type": "email", "value": unique_email()}], member=True)["customer_id"]
    offer = offer_with_coupons(api)
    path = f"/v1/customers/{customer}/coupons"
    headers = key()
    first = api.call("POST", path, POS_KEY, json={"offer_id": offer}, headers=headers)
    assert first.status_code == 201, first.text
    assert_replay(first, api.call("POST", path, POS_KEY, json={"offer_id": offer}, headers=headers))
    assert_problem(
        api.call("POST", path, POS_KEY, json={"offer_id": offer, "max_uses": 2}, headers=headers),
        422,
        "idempotency-key-mismatch",
    )
    body = {"offer_id": offer, "request_id": rid("CP")}
    second = api.call("POST", path, POS_KEY, json=body)
    assert second.status_code == 201, second.text
    assert_replay(second, api.call("POST", path, POS_KEY, json=body))
    codes = [c["code"] for c in api.call("GET", path, POS_KEY).json()["items"]]
    assert sorted(codes) == sorted([first.json()["code"], second.json()["code"]])


def test_reload_tops_up_gift_cards_only(api: Api) -> None:
    """A till must not add value to promotional cash (admins only) or merchandise credit (refunds)."""
    customer = api.enrol(links=[{"type": "email", "value": unique_email()}], member=True)["customer_id"]
    path = f"/v1/customers/{customer}/accounts"
    promo = api.call(
        "POST", path, ADMIN_KEY, json={"kind": "promo_cash", "amount": "5.00", "currency": "EUR"}
    )
    credit = api.call(
        "POST", path, POS_KEY, json={"kind": "merchandise_credit", "amount": "4.00", "currency": "EUR"}
    )
    assert promo.status_code == credit.status_code == 201, (promo.text, credit.text)
    for account, issued in ((promo.json(), "5.00"), (credit.json(), "4.00")):
        for caller in (POS_KEY, WEB_KEY, ADMIN_KEY):
            assert_problem(
                api.call(
                    "POST",
                    f"/v1/gift-cards/{account['account_id']}/reload",
                    caller,
                    json={"amount": "1000.00"},
                ),
                409,
                "not-a-gift-card",
            )
        assert ledger(api, account["account_id"]) == [("issue", issued)]
    balances = {a["account_id"]: a["balance"] for a in api.call("GET", path, POS_KEY).json()["items"]}
    assert balances == {promo.json()["account_id"]: "5.00", credit.json()["account_id"]: "4.00"}


def member(api: Api, email: str | None = None) -> str:
    links = [{"type": "email", "value": email or unique_email()}]
    return str(api.enrol(links=links, member=True)["customer_id"])


def test_a_link_call_replayed_answers_what_the_first_call_did(api: Api) -> None:
    customer = member(api)
    email = unique_email()
    path, headers = f"/v1/customers/{customer}/links", key()
    first = api.call("POST", path, POS_KEY, json={"type": "email", "value": email}, headers=headers)
    assert first.status_code == 201, first.text
    assert_replay(
        first, api.call("POST", path, POS_KEY, json={"type": "email", "value": email}, headers=headers)
    )
    # Detached since: the replay still answers the first call and attaches nothing again.
    detached = api.call("DELETE", f"/v1/customers/{customer}/links/email/{email}", POS_KEY)
    assert detached.status_code == 204, detached.text
    assert_replay(
        first, api.call("POST", path, POS_KEY, json={"type": "email", "value": email}, headers=headers)
    )
    links = api.call("GET", f"/v1/customers/{customer}", POS_KEY).json()["links"]
    assert {"type": "email", "value": email} not in [{"type": x["type"], "value": x["value"]} for x in links]
    assert_problem(
        api.call("POST", path, POS_KEY, json={"type": "email", "value": unique_email()}, headers=headers),
        422,
        "idempotency-key-mismatch",
    )
    # A link the customer already had: 200, and its replay is that 200 too.
    own, headers = unique_email(), key()
    other = member(api, own)
    had = api.call(
        "POST", f"/v1/customers/{other}/links", POS_KEY, json={"type": "email", "value": own}, headers=headers
    )
    assert had.status_code == 200, had.text
    again = api.call(
        "POST", f"/v1/customers/{other}/links", POS_KEY, json={"type": "email", "value": own}, headers=headers
    )
    assert_replay(had, again)


def test_a_merging_link_call_replayed_answers_the_same_merge(api: Api) -> None:
    email = unique_email()
    survivor, merged = member(api), member(api, email)
    body = {"type": "email", "value": email, "on_conflict": "merge"}
    path, headers = f"/v1/customers/{survivor}/links", key()
    first = api.call("POST", path, POS_KEY, json=body, headers=headers)
    assert first.status_code == 202, first.text
    again = api.call("POST", path, POS_KEY, json=body, headers=headers)
    assert_replay(first, again)
    journal = api.call("GET", f"/v1/customers/{survivor}/export", ADMIN_KEY).json()
    assert [m["merge_id"] for m in journal["merges"]] == [first.json()["merge_id"]], journal["merges"]
    assert merged != survivor


def wait_done(api: Api, merge_id: str, status: str = "done") -> None:
    deadline = time.monotonic() + 30
    while (now := api.call("GET", f"/v1/merges/{merge_id}", ADMIN_KEY).json()["status"]) != status:
        assert now in ("queued", "running", "undo_queued", "undoing") and time.monotonic() < deadline, now
        time.sleep(0.05)


def test_an_undo_replayed_answers_its_first_202(api: Api) -> None:
    asked = api.call(
        "POST", "/v1/merges", ADMIN_KEY, json={"survivor_id": member(api), "merged_id": member(api)}
    )
    assert asked.status_code == 202, asked.text
    merge_id = asked.json()["merge_id"]
    wait_done(api, merge_id)
    headers = key()
    first = api.call("POST", f"/v1/merges/{merge_id}/undo", ADMIN_KEY, headers=headers)
    assert first.status_code == 202, first.text
    assert_replay(first, api.call("POST", f"/v1/merges/{merge_id}/undo", ADMIN_KEY, headers=headers))
    wait_done(api, merge_id, "undone")
    assert_replay(first, api.call("POST", f"/v1/merges/{merge_id}/undo", ADMIN_KEY, headers=headers))
    # Without the key, a second undo is what it always was: refused.
    assert_problem(api.call("POST", f"/v1/merges/{merge_id}/undo", ADMIN_KEY), 409, "merge-refused")


def test_a_profile_patch_honours_its_key(api: Api) -> None:
    customer = member(api)
    path, headers = f"/v1/customers/{customer}", key()
    first = api.call("PATCH", path, POS_KEY, json={"profile": {"first_name": "Ada"}}, headers=headers)
    assert first.status_code == 200, first.text
    assert api.call("PATCH", path, POS_KEY, json={"profile": {"first_name": "Grace"}}).status_code == 200
    assert_replay(
        first, api.call("PATCH", path, POS_KEY, json={"profile": {"first_name": "Ada"}}, headers=headers)
    )
    assert (
        api.call("GET", path, POS_KEY).json()["profile"]["first_name"] == "Grace"
    )  # the replay changed nothing
    assert_problem(
        api.call("PATCH", path, POS_KEY, json={"profile": {"first_name": "Bo"}}, headers=headers),
        422,
        "idempotency-key-mismatch",
    )


def test_catalogue_calls_honour_their_key(api: Api) -> None:
    """An operator's client resending after a lost answer gets its 201, not 409 offer-exists."""
    body: dict[str, Any] = {
        "offer_id": rid("idem"),
        "name": "replayed",
        "status": "active",
        "effect": {"type": "amount_off", "value": "1", "skus": ["IDEM-NOBODY-SELLS-THIS"]},
    }
    headers = key()
    first = api.call("POST", "/v1/admin/offers", ADMIN_KEY, json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert_replay(first, api.call("POST", "/v1/admin/offers", ADMIN_KEY, json=body, headers=headers))
    assert_problem(api.call("POST", "/v1/admin/offers", ADMIN_KEY, json=body), 409, "offer-exists")
    pause, headers = f"/v1/admin/offers/{body['offer_id']}/pause", key()
    paused = api.call("POST", pause, ADMIN_KEY, headers=headers)
    assert (paused.status_code, paused.json()["status"]) == (200, "paused"), paused.text
    assert_replay(paused, api.call("POST", pause, ADMIN_KEY, headers=headers))
    assert api.call("GET", f"/v1/admin/offers/{body['offer_id']}", ADMIN_KEY).json() == paused.json()
    reward, headers = {"reward_id": rid("idem"), "name": "replayed", "points": 5}, key()
    first = api.call("POST", "/v1/admin/rewards", ADMIN_KEY, json=reward, headers=headers)
    assert first.status_code == 201, first.text
    assert_replay(first, api.call("POST", "/v1/admin/rewards", ADMIN_KEY, json=reward, headers=headers))


def test_a_merge_replayed_after_it_ran_answers_its_202(api: Api) -> None:
    body, headers = {"survivor_id": member(api), "merged_id": member(api)}, key()
    first = api.call("POST", "/v1/merges", ADMIN_KEY, json=body, headers=headers)
    assert first.status_code == 202, first.text
    wait_done(api, first.json()["merge_id"])
    assert_replay(first, api.call("POST", "/v1/merges", ADMIN_KEY, json=body, headers=headers))


def test_an_order_status_patch_replayed_answers_its_first_response(api: Api) -> None:
    body = sale({"link": {"type": "email", "value": unique_email()}}, [coffee("1", "10.00")])
    assert api.call("POST", "/v1/transactions", WEB_KEY, json=body).status_code == 201
    path, headers = f"/v1/transactions/web-nl/{body['transaction_id']}", key()
    shipped = api.call("PATCH", path, WEB_KEY, json={"order_status": "shipped"}, headers=headers)
    assert (shipped.status_code, shipped.json()["order_status"]) == (200, "shipped"), shipped.text
    delivered = api.call("PATCH", path, WEB_KEY, json={"order_status": "delivered"})
    assert delivered.status_code == 200, delivered.text
    # The order moved on: the replay is still the first answer, not 409 invalid-order-transition.
    assert_replay(
        shipped, api.call("PATCH", path, WEB_KEY, json={"order_status": "shipped"}, headers=headers)
    )
    assert api.call("GET", path, WEB_KEY).json()["order_status"] == "delivered"
    assert_problem(
        api.call("PATCH", path, WEB_KEY, json={"order_status": "returned"}, headers=headers),
        422,
        "idempotency-key-mismatch",
    )


# ---- spending and holding value: the key on redemptions, holds, captures, releases, reversals ----
def test_a_gift_card_redemption_honours_its_key(api: Api) -> None:
    number = sell(api)
    path, headers = f"/v1/gift-cards/{number}/redeem", key()
    body = {"redemption_id": rid("G"), "amount": "5.00"}
    first = api.call("POST", path, POS_KEY, json=body, headers=headers)
    assert (first.status_code, first.json()["balance"]) == (201, "15.00"), first.text
    assert_replay(first, api.call("POST", path, POS_KEY, json=body, headers=headers))
    # Another redemption under the same key is refused, and nothing is spent.
    assert_problem(
        api.call("POST", path, POS_KEY, json={**body, "redemption_id": rid("G")}, headers=headers),
        422,
        "idempotency-key-mismatch",
    )
    assert ledger(api, number) == [("redeem", "-5.00"), ("activate", "20.00")]


def test_a_points_redemption_honours_its_key_even_once_reversed(api: Api) -> None:
    customer = member_with_points(api, 10)
    body = {"redemption_id": rid("R"), "customer": {"customer_id": customer}, "kind": "points", "points": 30}
    headers = key()
    first = api.call("POST", "/v1/redemptions", POS_KEY, json=body, headers=headers)
    assert (first.status_code, first.json()["balance_after"]) == (201, 70), first.text
    assert_replay(first, api.call("POST", "/v1/redemptions", POS_KEY, json=body, headers=headers))
    assert_problem(
        api.call(
            "POST", "/v1/redemptions", POS_KEY, json={**body, "redemption_id": rid("R")}, headers=headers
        ),
        422,
        "idempotency-key-mismatch",
    )
    assert points(api, customer)["available"] == 70
    # Reversed since: the key still answers the first 201; the redemption_id alone says it was reversed.
    reversed_ = api.call("POST", f"/v1/redemptions/{body['redemption_id']}/reverse", POS_KEY)
    assert reversed_.status_code == 200, reversed_.text
    assert_replay(first, api.call("POST", "/v1/redemptions", POS_KEY, json=body, headers=headers))
    assert_problem(api.call("POST", "/v1/redemptions", POS_KEY, json=body), 409, "redemption-reversed")
    assert points(api, customer)["available"] == 100


def test_a_stored_value_redemption_through_redemptions_replays_its_own_answer(api: Api) -> None:
    customer = member(api)
    credit = api.call(
        "POST",
        f"/v1/customers/{customer}/accounts",
        POS_KEY,
        json={"kind": "merchandise_credit", "amount": "10.00", "currency": "EUR"},
    )
    assert credit.status_code == 201, credit.text
    account = credit.json()["account_id"]
    body = {
        "redemption_id": rid("SV"),
        "customer": {"customer_id": customer},
        "kind": "stored_value",
        "account_id": account,
        "amount": "4.00",
    }
    headers = key()
    first = api.call("POST", "/v1/redemptions", POS_KEY, json=body, headers=headers)
    assert (first.status_code, first.json()["amount"]) == (201, "4.00"), first.text
    assert_replay(first, api.call("POST", "/v1/redemptions", POS_KEY, json=body, headers=headers))
    # Its redemption_id alone replays the same answer (it was the gift-card route's shape).
    assert_replay(first, api.call("POST", "/v1/redemptions", POS_KEY, json=body))
    assert_problem(
        api.call("POST", "/v1/redemptions", POS_KEY, json={**body, "amount": "5.00"}, headers=headers),
        422,
        "idempotency-key-mismatch",
    )
    assert ledger(api, account) == [("redeem", "-4.00"), ("issue", "10.00")]


def test_a_reversal_honours_its_key(api: Api) -> None:
    customer = member_with_points(api, 10)
    ids = [rid("R"), rid("R")]
    for redemption_id in ids:
        spent = api.call(
            "POST",
            "/v1/redemptions",
            POS_KEY,
            json={
                "redemption_id": redemption_id,
                "customer": {"customer_id": customer},
                "kind": "points",
                "points": 20,
            },
        )
        assert spent.status_code == 201, spent.text
    headers = key()
    first = api.call("POST", f"/v1/redemptions/{ids[0]}/reverse", POS_KEY, headers=headers)
    assert (first.status_code, first.json()["status"], first.json()["balance_after"]) == (200, "reversed", 80)
    # The balance moved on since: the replay is still the first answer, not today's balance.
    assert api.call("POST", f"/v1/redemptions/{ids[1]}/reverse", POS_KEY).status_code == 200
    assert_replay(first, api.call("POST", f"/v1/redemptions/{ids[0]}/reverse", POS_KEY, headers=headers))
    # The same key on another redemption: refused; that redemption stays as it is.
    third = api.call(
        "POST",
        "/v1/redemptions",
        POS_KEY,
        json={
            "redemption_id": rid("R"),
            "customer": {"customer_id": customer},
            "kind": "points",
            "points": 5,
        },
    )
    assert third.status_code == 201, third.text
    assert_problem(
        api.call(
            "POST", f"/v1/redemptions/{third.json()['redemption_id']}/reverse", POS_KEY, headers=headers
        ),
        422,
        "idempotency-key-mismatch",
    )
    assert (
        api.call("GET", f"/v1/redemptions/{third.json()['redemption_id']}", POS_KEY).json()["status"]
        == "done"
    )
    assert points(api, customer)["available"] == 95


def test_a_second_reversal_with_a_key_records_its_answer(api: Api) -> None:
    """A key first used on a reversal that changed nothing (reversed already) is still that
    request's: sent again it answers the same, and another redemption under it is refused."""
    number = sell(api)
    ids = [rid("G"), rid("G")]
    for redemption_id in ids:
        spent = api.call(
            "POST",
            f"/v1/gift-cards/{number}/redeem",
            POS_KEY,
            json={"redemption_id": redemption_id, "amount": "2.00"},
        )
        assert spent.status_code == 201, spent.text
    assert api.call("POST", f"/v1/redemptions/{ids[0]}/reverse", POS_KEY).status_code == 200
    headers = key()
    again = api.call("POST", f"/v1/redemptions/{ids[0]}/reverse", POS_KEY, headers=headers)
    assert (again.status_code, again.json()["status"]) == (200, "reversed"), again.text
    assert_replay(again, api.call("POST", f"/v1/redemptions/{ids[0]}/reverse", POS_KEY, headers=headers))
    assert_problem(
        api.call("POST", f"/v1/redemptions/{ids[1]}/reverse", POS_KEY, headers=headers),
        422,
        "idempotency-key-mismatch",
    )
    assert api.call("GET", f"/v1/gift-cards/{number}", POS_KEY).json()["balance"] == "18.00"


def test_points_holds_captures_and_releases_honour_their_keys(api: Api) -> None:
    customer = member_with_points(api, 20)
    path, headers = f"/v1/customers/{customer}/holds", key()
    hold = {"hold_id": rid("PH"), "points": 50}
    first = api.call("POST", path, WEB_KEY, json=hold, headers=headers)
    assert first.status_code == 201, first.text
    assert_replay(first, api.call("POST", path, WEB_KEY, json=hold, headers=headers))
    assert_problem(
        api.call("POST", path, WEB_KEY, json={**hold, "hold_id": rid("PH")}, headers=headers),
        422,
        "idempotency-key-mismatch",
    )
    capture, headers = f"/v1/holds/{hold['hold_id']}/capture", key()
    captured = api.call("POST", capture, WEB_KEY, json={"points": 40}, headers=headers)
    assert (captured.status_code, captured.json()["balance"]) == (200, 160), captured.text
    assert_replay(captured, api.call("POST", capture, WEB_KEY, json={"points": 40}, headers=headers))
    assert_problem(
        api.call("POST", capture, WEB_KEY, json={"points": 30}, headers=headers),
        422,
        "idempotency-key-mismatch",
    )
    other = {"hold_id": rid("PH"), "points": 20}
    assert api.call("POST", path, WEB_KEY, json=other).status_code == 201
    release, headers = f"/v1/holds/{other['hold_id']}/release", key()
    released = api.call("POST", release, WEB_KEY, headers=headers)
    assert (released.status_code, released.json()["status"]) == (200, "released"), released.text
    assert_replay(released, api.call("POST", release, WEB_KEY, headers=headers))
    assert_problem(
        api.call("POST", f"/v1/holds/{hold['hold_id']}/release", WEB_KEY, headers=headers),
        422,
        "idempotency-key-mismatch",
    )
    assert points(api, customer)["available"] == 160
    # Nothing is still held: all 160 points can be spent.
    everything = {"redemption_id": rid("R"), "customer": {"customer_id": customer}, "kind": "points"}
    spent = api.call("POST", "/v1/redemptions", WEB_KEY, json={**everything, "points": 160})
    assert (spent.status_code, spent.json()["balance_after"]) == (201, 0), spent.text


def test_gift_card_holds_captures_and_releases_honour_their_keys(api: Api) -> None:
    number = sell(api, "50.00")
    path, headers = f"/v1/gift-cards/{number}/holds", key()
    hold = {"hold_id": rid("GH"), "amount": "10.00"}
    first = api.call("POST", path, POS_KEY, json=hold, headers=headers)
    assert first.status_code == 201, first.text
    assert_replay(first, api.call("POST", path, POS_KEY, json=hold, headers=headers))
    assert_problem(
        api.call("POST", path, POS_KEY, json={**hold, "hold_id": rid("GH")}, headers=headers),
        422,
        "idempotency-key-mismatch",
    )
    capture, headers = f"/v1/holds/{hold['hold_id']}/capture", key()
    captured = api.call("POST", capture, POS_KEY, json={"amount": "8.00"}, headers=headers)
    assert (captured.status_code, captured.json()["status"]) == (200, "captured"), captured.text
    assert_replay(captured, api.call("POST", capture, POS_KEY, json={"amount": "8.00"}, headers=headers))
    assert_problem(
        api.call("POST", capture, POS_KEY, json={"amount": "7.00"}, headers=headers),
        422,
        "idempotency-key-mismatch",
    )
    other = {"hold_id": rid("GH"), "amount": "5.00"}
    assert api.call("POST", path, POS_KEY, json=other).status_code == 201
    release, headers = f"/v1/holds/{other['hold_id']}/release", key()
    released = api.call("POST", release, POS_KEY, headers=headers)
    assert (released.status_code, released.json()["status"]) == (200, "released"), released.text
    assert_replay(released, api.call("POST", release, POS_KEY, headers=headers))
    assert_problem(
        api.call("POST", f"/v1/holds/{hold['hold_id']}/release", POS_KEY, headers=headers),
        422,
        "idempotency-key-mismatch",
    )
    assert ledger(api, number) == [("capture", "-8.00"), ("activate", "50.00")]
    card = api.call("GET", f"/v1/gift-cards/{number}", POS_KEY).json()
    assert (card["balance"], card["available"]) == ("42.00", "42.00")


def test_concurrent_redemptions_under_one_key_spend_once(api: Api) -> None:
    """Sixteen different redemptions sent at once under one key: exactly one takes effect."""
    number = sell(api, "30.00")
    headers = key()

    def send(_: int) -> requests.Response:
        return api.call(
            "POST",
            f"/v1/gift-cards/{number}/redeem",
            POS_KEY,
            json={"redemption_id": rid("G"), "amount": "1.00"},
            headers=headers,
        )

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(send, range(16)))
    done = [a for a in answers if a.status_code == 201]
    assert len(done) == 1, [a.text for a in answers]
    for refused in (a for a in answers if a.status_code != 201):
        slug = {422: "idempotency-key-mismatch", 409: "idempotency-key-in-use", 503: "service-unavailable"}
        assert_problem(refused, refused.status_code, slug.get(refused.status_code, "?"))
    assert ledger(api, number) == [("redeem", "-1.00"), ("activate", "30.00")]
    assert api.call("GET", f"/v1/gift-cards/{number}", POS_KEY).json()["balance"] == "29.00"


def test_a_replay_for_a_customer_erased_since_answers_the_first_response(api: Api) -> None:
    customer = member(api)
    account_path, account_key = f"/v1/customers/{customer}/accounts", key()
    credit = {"kind": "merchandise_credit", "amount": "3.00", "currency": "EUR"}
    issued = api.call("POST", account_path, POS_KEY, json=credit, headers=account_key)
    assert issued.status_code == 201, issued.text
    coupon_path, coupon_key = f"/v1/customers/{customer}/coupons", key()
    offer = offer_with_coupons(api)
    coupon = api.call("POST", coupon_path, POS_KEY, json={"offer_id": offer}, headers=coupon_key)
    assert coupon.status_code == 201, coupon.text
    assert api.call("DELETE", f"/v1/customers/{customer}", ADMIN_KEY).status_code == 204
    assert_replay(issued, api.call("POST", account_path, POS_KEY, json=credit, headers=account_key))
    assert_replay(
        coupon, api.call("POST", coupon_path, POS_KEY, json={"offer_id": offer}, headers=coupon_key)
    )
    # Without the key the customer is gone, as before.
    assert_problem(api.call("POST", account_path, POS_KEY, json=credit), 404, "customer-not-found")


def test_an_admin_key_reused_for_another_stores_hold_is_refused(api: Api) -> None:
    """Two stores' holds share a hold_id; an admin names the store in `?store_id=`, so the same key
    on the other store's hold is another request (422), not the first store's answer."""
    number = sell(api, "30.00")
    hold = {"hold_id": rid("GH"), "amount": "4.00"}
    for caller in (POS_KEY, WEB_KEY):
        assert api.call("POST", f"/v1/gift-cards/{number}/holds", caller, json=hold).status_code == 201
    release, headers = f"/v1/holds/{hold['hold_id']}/release", key()
    first = api.call("POST", release + "?store_id=ams-01", ADMIN_KEY, headers=headers)
    assert (first.status_code, first.json()["status"], first.json()["store_id"]) == (
        200,
        "released",
        "ams-01",
    )
    assert_replay(first, api.call("POST", release + "?store_id=ams-01", ADMIN_KEY, headers=headers))
    assert_problem(
        api.call("POST", release + "?store_id=web-nl", ADMIN_KEY, headers=headers),
        422,
        "idempotency-key-mismatch",
    )
    # The web shop's hold is still held: 4.00 of the 30.00 cannot be spent.
    assert api.call("GET", f"/v1/gift-cards/{number}", POS_KEY).json()["available"] == "26.00"
