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
from datetime import timedelta
from typing import Any

import pytest
import requests

from loyalty.adapters.transactions import TransactionRepository
from loyalty.domain.customers import CustomerStatus
from tests.e2e.conftest import ADMIN_KEY, POS_KEY, Api, unique_email
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
