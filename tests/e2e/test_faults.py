"""The e2e scenarios under injected faults: a third of DynamoDB, SQS and EventBridge calls made by
the product code fail (throttling, 500, timeouts, and answers lost after the write happened).

Callers get a success or a 503 problem with Retry-After — never a 500 — and retrying with the same
ids is safe. Afterwards, with the faults off: every balance equals its ledger, every sale and
redemption that happened did so once, points add up to what the receipts said, every link resolves
to one live customer, and every committed sale's event reached the bus (outbox + stream retries).
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from loyalty.adapters.transactions import TransactionRepository
from loyalty.domain.customers import CustomerStatus
from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY, Api, unique_email
from tests.e2e.test_stored_value_http import card_number
from tests.e2e.test_transactions_http import coffee, sale

pytestmark = pytest.mark.xdist_group("faults")

FAULT_RATE = 0.3
ATTEMPTS = 25


def resilient(
    api: Api, method: str, path: str, key: str, body: Any = None, **kwargs: Any
) -> requests.Response:
    """A well-behaved client: on 503 it waits as told and sends the very same request again."""
    for _ in range(ATTEMPTS):
        response = api.call(method, path, key, json=body, **kwargs)
        assert response.status_code < 500 or response.status_code == 503, (method, path, response.text)
        if response.status_code != 503:
            return response
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert int(response.headers["Retry-After"]) >= 1
        time.sleep(0.05)  # shorter than Retry-After: the test has no time to lose
    return response


def test_scenarios_under_faults_keep_every_invariant(api: Api, archive: Any) -> None:
    runtime = api.runtime
    assert runtime is not None and runtime.container is not None
    sales: list[str] = []
    redemptions: list[str] = []
    merges: list[str] = []
    members: list[str] = []

    def shopper(n: int) -> None:
        enrolled = resilient(
            api,
            "POST",
            "/v1/customers",
            POS_KEY,
            {"links": [{"type": "email", "value": unique_email()}]},
            headers={"Idempotency-Key": f"enrol-{uuid.uuid4()}"},
        )
        assert enrolled.status_code in (200, 201), enrolled.text
        customer = enrolled.json()
        members.append(customer["customer_id"])
        for _ in range(3):
            body = sale({"customer_id": customer["customer_id"]}, [coffee("2", "5.00")])
            sales.append(body["transaction_id"])
            done = resilient(api, "POST", "/v1/transactions", POS_KEY, body)
            assert done.status_code in (201, 503), done.text
        cart = resilient(
            api,
            "POST",
            "/v1/cart/evaluate",
            POS_KEY,
            {"customer": {"customer_id": customer["customer_id"]}, "lines": [coffee()], "currency": "EUR"},
        )
        assert cart.status_code in (200, 503), cart.text
        rid = f"R-{uuid.uuid4().hex[:12]}"
        redemptions.append(rid)
        spent = resilient(
            api,
            "POST",
            "/v1/redemptions",
            POS_KEY,
            {
                "redemption_id": rid,
                "kind": "points",
                "customer": {"customer_id": customer["customer_id"]},
                "points": 50,
            },
        )
        assert spent.status_code in (201, 409, 503), spent.text
        if n % 2 and spent.status_code == 201:
            back = resilient(api, "POST", f"/v1/redemptions/{rid}/reverse", POS_KEY)
            assert back.status_code in (200, 503), back.text

    assert runtime.faults is not None
    with runtime.faults.active(FAULT_RATE):
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(shopper, range(8)))
        pairs = [(members[i], members[i + 1]) for i in range(0, 6, 2)]
        for survivor, merged in pairs:
            asked = resilient(
                api,
                "POST",
                "/v1/merges",
                ADMIN_KEY,
                {"survivor_id": survivor, "merged_id": merged},
                headers={"Idempotency-Key": f"merge-{survivor}-{merged}"},
            )
            assert asked.status_code in (202, 503), asked.text
            if asked.status_code == 202:
                merges.append(asked.json()["merge_id"])
        injected = sum(runtime.faults.injected.values())
    assert injected > 20, runtime.faults.injected  # the faults really happened

    # Faults off: the janitor re-sends what the queue never got (it runs every 5 minutes on AWS),
    # the queue and the stream catch up, then everything is checked.
    runtime.container.merges.requeue_stale(timedelta(0))
    deadline = time.monotonic() + 60
    for merge_id in merges:
        while api.call("GET", f"/v1/merges/{merge_id}", ADMIN_KEY).json()["status"] not in ("done", "failed"):
            assert time.monotonic() < deadline, merge_id
            time.sleep(0.1)
    container = runtime.container
    repo = TransactionRepository(container.table)
    earned = 0
    happened: set[str] = set()
    for tid in sales:
        record = container.transactions.get("ams-01", tid)
        if record is not None:
            happened.add(tid)
            earned += record.points_earned
    spent_points = 0
    for rid in redemptions:
        found = api.call("GET", f"/v1/redemptions/{rid}", POS_KEY)
        if found.status_code == 200 and found.json()["status"] == "done":
            spent_points += found.json()["points"]
    live = {container.customers.get(cid).customer_id for cid in members}
    total = 0
    for cid in live:
        customer = container.customers.get(cid)
        assert customer.status is CustomerStatus.ACTIVE
        ledger = repo.all_ledger(cid)
        assert customer.points.available + customer.points.pending == sum(e.points for e in ledger), cid
        assert customer.points.available >= 0
        for link in customer.links:
            assert container.customers.lookup(link.type, link.value).customer_id == cid
        history, _ = repo.history(cid, 200, None)
        assert (
            len({(t.store_id, t.transaction_id) for t in history})
            == len(history)
            == customer.stats.transactions
        )
        total += customer.points.available + customer.points.pending
    assert total == earned - spent_points
    assert len(happened) >= len(sales) * 0.9  # almost every sale got through in the end

    # Every committed sale's event reached the bus, at least once (consumers dedupe on event_id).
    seen: set[str] = set()
    deadline = time.monotonic() + 30
    while not happened <= seen and time.monotonic() < deadline:
        for event in archive():
            if event.get("detail-type") == "TransactionRecorded":
                seen.add(event["detail"]["transaction_id"])
        time.sleep(0.5)
    assert happened <= seen, f"events lost for {sorted(happened - seen)[:5]}"
    assert all(not poller.failed_batches for poller in runtime.pollers)


@dataclass
class Sent:
    """A value-creating request and what the client was finally told."""

    method: str
    path: str
    key: str
    body: dict[str, Any]
    headers: dict[str, str]
    answer: requests.Response | None = None

    def send(self, api: Api) -> requests.Response:
        self.answer = resilient(api, self.method, self.path, self.key, self.body, headers=self.headers)
        return self.answer


def test_value_calls_resent_on_503_with_their_key_move_money_exactly_once(api: Api) -> None:
    """Gift-card sales, reloads, customer accounts and coupons, resent on 503 with the same
    Idempotency-Key as docs/idempotency.md tells clients: afterwards every ledger holds exactly one entry per
    acknowledged call and every balance is exact. Half of them also carry a request_id."""
    runtime = api.runtime
    assert runtime is not None and runtime.faults is not None
    customer = api.enrol(links=[{"type": "email", "value": unique_email()}], member=True)["customer_id"]
    offer = {
        "offer_id": f"faults-{uuid.uuid4().hex[:8]}",
        "name": "coupons under faults",
        "status": "active",
        "requires_coupon": True,
        "effect": {"type": "amount_off", "value": "1", "skus": ["FAULTS-NOBODY-SELLS-THIS"]},
    }
    assert api.call("POST", "/v1/admin/offers", ADMIN_KEY, json=offer).status_code == 201

    def request(n: int, method: str, path: str, key: str, body: dict[str, Any]) -> Sent:
        if n % 2:
            body = {**body, "request_id": f"F-{uuid.uuid4().hex[:12]}"}
        return Sent(method, path, key, body, {"Idempotency-Key": f"faults-{uuid.uuid4()}"})

    cards = [card_number() for _ in range(6)]
    sales = [
        request(
            n, "POST", "/v1/gift-cards", POS_KEY, {"amount": "20.00", "currency": "EUR", "card_number": c}
        )
        for n, c in enumerate(cards)
    ]
    emails = [unique_email() for _ in range(4)]
    e_cards = [
        request(
            n,
            "POST",
            "/v1/gift-cards",
            WEB_KEY,
            {"amount": "9.00", "currency": "EUR", "delivery": {"email": e}},
        )
        for n, e in enumerate(emails)
    ]
    reloads = [
        request(n, "POST", f"/v1/gift-cards/{c}/reload", POS_KEY, {"amount": f"{n % 3 + 1}.25"})
        for c in cards
        for n in range(4)
    ]
    accounts = [
        request(
            n,
            "POST",
            f"/v1/customers/{customer}/accounts",
            POS_KEY,
            {"kind": "merchandise_credit", "amount": f"{n + 1}.00", "currency": "EUR"},
        )
        for n in range(6)
    ]
    coupons = [
        request(n, "POST", f"/v1/customers/{customer}/coupons", POS_KEY, {"offer_id": offer["offer_id"]})
        for n in range(6)
    ]

    def run(batch: list[Sent]) -> None:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda s: s.send(api), batch))

    # Mixed faults on every call, then lost answers on half the writes: each of those happened, and
    # only a replay with the same key may follow.
    with runtime.faults.active(FAULT_RATE):
        run(sales + e_cards[:2] + accounts[:3] + coupons[:3])
        run(reloads[::2])
    lost = ("TransactWriteItems", "PutItem", "UpdateItem")
    with runtime.faults.active(0.5, kinds=["lost"], operations=lost):
        run(e_cards[2:] + accounts[3:] + coupons[3:])
        run(reloads[1::2])
        injected = dict(runtime.faults.injected)
    assert sum(v for k, v in injected.items() if k.endswith(":lost")) > 10, injected

    # Faults off: a client still holding a 503 sends it once more; now everything is acknowledged.
    everything = sales + e_cards + reloads + accounts + coupons
    for sent in everything:
        assert sent.answer is not None
        if sent.answer.status_code == 503:
            sent.send(api)
        assert sent.answer is not None and sent.answer.status_code in (200, 201), sent.answer.text

    # The money: one ledger entry per acknowledged call, balances exact, answers that agree.
    def ledger(account_id: str) -> list[tuple[str, str]]:
        found = api.call("GET", f"/v1/accounts/{account_id}/ledger?limit=200", POS_KEY)
        assert found.status_code == 200, found.text
        return sorted((m["reason"], m["amount"]) for m in found.json()["items"])

    for card, sale_ in zip(cards, sales, strict=True):
        assert sale_.answer is not None and sale_.answer.json()["card_number"] == card
        added = [r.body["amount"] for r in reloads if r.path == f"/v1/gift-cards/{card}/reload"]
        assert ledger(card) == sorted([("activate", "20.00"), *(("reload", a) for a in added)]), card
        expected = Decimal("20.00") + sum(Decimal(a) for a in added)
        assert Decimal(api.call("GET", f"/v1/gift-cards/{card}", POS_KEY).json()["balance"]) == expected
    outbox = api.call("GET", "/v1/admin/outbox?limit=200", ADMIN_KEY).json()["items"]
    for email, sold in zip(emails, e_cards, strict=True):
        assert [m["to"] for m in outbox].count(email) == 1, email  # one card, one PIN
        assert sold.answer is not None
        assert ledger(sold.answer.json()["card_number"]) == [("activate", "9.00")]
    issued = api.call("GET", f"/v1/customers/{customer}/accounts", POS_KEY).json()["items"]
    assert sorted(a["account_id"] for a in issued) == sorted(
        s.answer.json()["account_id"] for s in accounts if s.answer is not None
    )
    assert sorted(Decimal(a["balance"]) for a in issued) == [Decimal(f"{n + 1}.00") for n in range(6)]
    for account in issued:
        assert ledger(account["account_id"]) == [("issue", account["balance"])]
    codes = [c["code"] for c in api.call("GET", f"/v1/customers/{customer}/coupons", POS_KEY).json()["items"]]
    assert sorted(codes) == sorted(s.answer.json()["code"] for s in coupons if s.answer is not None)
