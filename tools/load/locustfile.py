"""The mixed workload `make load` drives the local gateway with: locust users, run as a library.

Importing this module imports locust, which monkey-patches the standard library with gevent, so it
runs in a process of its own: `tools.load` starts it as
`python -m tools.load.locustfile --host URL --pool pool.json --users 16 --seconds 60 --out results.json`
(no boto3, no runtime threads here). It also works with locust's own command line against a running
`make run`, given a pool of members (`LOAD_POOL=pool.json locust -f tools/load/locustfile.py`).

Each user loops without think time over a weighted mix, about 80 % reads: look-ups by card and by
email, GET customer, cart evaluations; and writes: sales (till and web shop, by `customer_id` or by
card), points redemptions, enrolments and batches of customer events (20 each, known members, one in
ten sent a second time: all duplicates). Writes carry caller-owned ids (`transaction_id`,
`redemption_id`) or an `Idempotency-Key` (enrolments); about one sale and one enrolment in ten is
sent a second time, and the replay must answer the first answer (`Idempotent-Replayed: true`).

What counts as an error: any status other than the one expected, a connection failure, or an
answer that names the wrong customer. A 503 with `Retry-After` (a transient failure the platform
asks the caller to retry) is retried with the very same request after `Retry-After` (at most
MAX_RETRY_WAIT s), up to MAX_ATTEMPTS times: the attempt that got the 503 is recorded as a success
under `<endpoint> [503, retried]`, so retries stay visible; the request is an error only if its
last attempt still fails. A 503 without `Retry-After`, like any other 5xx, is an error at once.

The results file holds locust's stats per endpoint (requests, failures, p50, p99), the errors, the
503 retries, and what the load was acknowledged (the sales, redemptions and enrolments that got
201), for `tools.load` to check the invariants against.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import gevent
from locust import FastHttpUser, constant, events, task
from locust.contrib.fasthttp import ResponseContextManager
from locust.env import Environment

POS_KEY, WEB_KEY = "local-pos-key", "local-web-key"
STORE_OF = {POS_KEY: "ams-01", WEB_KEY: "web-nl"}
MAX_ATTEMPTS = 4  # the first try and up to three retries of a 503 with Retry-After
MAX_RETRY_WAIT = 2.0  # seconds: the longest Retry-After honoured
REPLAY_SHARE = 0.1  # of sales and enrolments sent twice
# (sku, category, unit price): what the carts and sales are made of.
CATALOGUE = (
    ("ESP", "coffee", "2.80"),
    ("LATTE", "coffee", "3.90"),
    ("CROISSANT", "bakery", "2.40"),
    ("BAGEL", "bakery", "3.20"),
    ("BEANS-1KG", "grocery", "18.50"),
    ("MUG", "homeware", "12.00"),
    ("TEA", "coffee", "2.60"),
    ("CAKE", "bakery", "4.50"),
)

# One process, many greenlets: plain module state is safe (no preemption between statements).
MEMBERS: list[dict[str, Any]] = []  # {"customer_id", "email", "card"}
BALANCE: dict[str, int] = {}  # what the answers last said each member holds
ACKNOWLEDGED: dict[str, list[dict[str, Any]]] = {
    "sales": [],
    "redemptions": [],
    "enrolments": [],
    "events": [],
}
EVENTS_PER_BATCH = 20  # a web shop's or an app's batch of behaviour
RETRIED: Counter[str] = Counter()
RUN_ID = uuid.uuid4().hex[:8]
_counter = itertools.count(1)


def load_pool(path: Path) -> None:
    pool = json.loads(path.read_text())
    MEMBERS[:] = pool["members"]
    BALANCE.clear()
    BALANCE.update({m["customer_id"]: int(m.get("points", 0)) for m in pool["members"]})


@events.init.add_listener
def _pool_from_environment(environment: Environment, **_: Any) -> None:
    """`locust -f` on the command line: the pool comes from LOAD_POOL."""
    if not MEMBERS and os.environ.get("LOAD_POOL"):
        load_pool(Path(os.environ["LOAD_POOL"]))


def next_id(prefix: str) -> str:
    return f"{prefix}-{RUN_ID}-{next(_counter)}"


def basket(rng: random.Random) -> tuple[list[dict[str, str]], str]:
    lines, total = [], Decimal(0)
    for n, (sku, category, price) in enumerate(rng.sample(CATALOGUE, rng.randint(1, 5)), start=1):
        quantity = rng.randint(1, 3)
        lines.append(
            {
                "line_id": str(n),
                "sku": sku,
                "category": category,
                "quantity": str(quantity),
                "unit_price": price,
            }
        )
        total += quantity * Decimal(price)
    return lines, f"{total:.2f}"


class LoyaltyUser(FastHttpUser):
    """A till or the web shop's backend, one request after another."""

    wait_time = constant(0)
    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        self.rng = random.Random()  # noqa: S311  # a workload, not a secret

    # ---- reads (weights add up to 80) ---------------------------------------------------------
    @task(20)
    def lookup_by_card(self) -> None:
        member = self._member()
        self._call(
            "GET /v1/customers?link_type=card",
            "GET",
            f"/v1/customers?link_type=card&link_value={quote(member['card'])}",
            expect=200,
            check=_names(member["customer_id"]),
        )

    @task(15)
    def lookup_by_email(self) -> None:
        member = self._member()
        self._call(
            "GET /v1/customers?link_type=email",
            "GET",
            f"/v1/customers?link_type=email&link_value={quote(member['email'])}",
            key=WEB_KEY,
            expect=200,
            check=_names(member["customer_id"]),
        )

    @task(20)
    def get_customer(self) -> None:
        member = self._member()
        self._call(
            "GET /v1/customers/{id}",
            "GET",
            f"/v1/customers/{member['customer_id']}",
            key=self._key(),
            expect=200,
            check=_names(member["customer_id"]),
        )

    @task(25)
    def evaluate_cart(self) -> None:
        member = self._member()
        lines, _ = basket(self.rng)
        body = {"customer": {"customer_id": member["customer_id"]}, "currency": "EUR", "lines": lines}
        self._call(
            "POST /v1/cart/evaluate",
            "POST",
            "/v1/cart/evaluate",
            key=self._key(),
            body=body,
            expect=200,
            check=_names(member["customer_id"]),
        )

    # ---- writes (20) --------------------------------------------------------------------------
    @task(10)
    def sale(self) -> None:
        member, key = self._member(), self._key()
        lines, total = basket(self.rng)
        by_card = self.rng.random() < 0.3
        body: dict[str, Any] = {
            "transaction_id": next_id("S"),
            "type": "sale",
            "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "customer": {"link": {"type": "card", "value": member["card"]}}
            if by_card
            else {"customer_id": member["customer_id"]},
            "lines": lines,
            "currency": "EUR",
            "total": total,
        }
        name = "POST /v1/transactions (by card)" if by_card else "POST /v1/transactions"
        first = self._call(name, "POST", "/v1/transactions", key=key, body=body, expect=201)
        if first is None:
            return
        receipt = first.json()
        if receipt.get("customer_id") != member["customer_id"]:
            return self._fail(name, f"the receipt names {receipt.get('customer_id')}")
        ACKNOWLEDGED["sales"].append(
            {
                "store_id": receipt["store_id"],
                "transaction_id": body["transaction_id"],
                "customer_id": member["customer_id"],
                "points_earned": receipt["points_earned"],
            }
        )
        if receipt.get("points_balance") is not None:
            BALANCE[member["customer_id"]] = receipt["points_balance"]
        if self.rng.random() < REPLAY_SHARE:
            self._call(
                "POST /v1/transactions (replay)",
                "POST",
                "/v1/transactions",
                key=key,
                body=body,
                expect=201,
                check=_replays(receipt),
            )
        return None

    @task(5)
    def redeem_points(self) -> None:
        rich = [
            m
            for m in self.rng.sample(MEMBERS, min(8, len(MEMBERS)))
            if BALANCE.get(m["customer_id"], 0) >= 20
        ]
        if not rich:
            return
        member = rich[0]
        points = self.rng.randint(1, min(50, BALANCE[member["customer_id"]] // 2))
        body = {
            "redemption_id": next_id("R"),
            "customer": {"customer_id": member["customer_id"]},
            "kind": "points",
            "points": points,
        }
        answer = self._call(
            "POST /v1/redemptions", "POST", "/v1/redemptions", key=self._key(), body=body, expect=201
        )
        if answer is None:
            return
        redemption = answer.json()
        BALANCE[member["customer_id"]] = redemption["balance_after"]
        ACKNOWLEDGED["redemptions"].append(
            {
                "redemption_id": body["redemption_id"],
                "store_id": redemption["store_id"],  # redemption ids are unique per store
                "customer_id": member["customer_id"],
                "points": points,
            }
        )

    @task(5)
    def enrol(self) -> None:
        email = f"{next_id('load').lower()}@example.com"
        body = {
            "links": [{"type": "email", "value": email}],
            "profile": {"first_name": "Load"},
            "consents": {"email": True},
            "member": True,
        }
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        key = self._key()
        first = self._call(
            "POST /v1/customers", "POST", "/v1/customers", key=key, body=body, headers=headers, expect=201
        )
        if first is None:
            return
        customer = first.json()
        if self.rng.random() < REPLAY_SHARE:
            self._call(
                "POST /v1/customers (replay)",
                "POST",
                "/v1/customers",
                key=key,
                body=body,
                headers=headers,
                expect=201,
                check=_replays(customer),
            )
        ACKNOWLEDGED["enrolments"].append({"customer_id": customer["customer_id"], "email": email})
        MEMBERS.append({"customer_id": customer["customer_id"], "email": email, "card": customer["card"]})
        BALANCE[customer["customer_id"]] = 0

    @task(5)
    def send_events(self) -> None:
        key = self._key()
        batch: list[dict[str, Any]] = []
        for n in range(EVENTS_PER_BATCH):
            member = self._member()
            sku, category, _ = self.rng.choice(CATALOGUE)
            kind = n % 3
            type_, properties = (
                ("product_view", {"sku": sku, "category": category})
                if kind == 0
                else ("site_visit", {"url": f"https://shop.example/{sku}"})
                if kind == 1
                else ("review", {"sku": sku, "rating": self.rng.randint(1, 5), "text": "fine"})
            )
            batch.append(
                {
                    "event_id": next_id("EV"),
                    "type": type_,
                    "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                    "customer": {"customer_id": member["customer_id"]},
                    "properties": properties,
                }
            )
        name = "POST /v1/events (20)"
        first = self._call(name, "POST", "/v1/events", key=key, body={"events": batch}, expect=202)
        if first is None:
            return
        answer = first.json()
        if answer.get("accepted") != EVENTS_PER_BATCH:
            return self._fail(
                name, f"kept {answer.get('accepted')} of {EVENTS_PER_BATCH}: {answer.get('rejected')}"
            )
        ACKNOWLEDGED["events"].extend(
            {
                "store_id": STORE_OF[key],
                "event_id": e["event_id"],
                "customer_id": e["customer"]["customer_id"],
            }
            for e in batch
        )
        if self.rng.random() < REPLAY_SHARE:
            again = self._call(
                "POST /v1/events (replay)", "POST", "/v1/events", key=key, body={"events": batch}, expect=202
            )
            if again is not None and again.json().get("duplicates") != EVENTS_PER_BATCH:
                self._fail("POST /v1/events (replay)", f"a replay kept something: {(again.text or '')[:300]}")
        return None

    # ---- helpers ------------------------------------------------------------------------------
    def _member(self) -> dict[str, Any]:
        return self.rng.choice(MEMBERS)

    def _key(self) -> str:
        return POS_KEY if self.rng.random() < 0.7 else WEB_KEY

    def _call(
        self,
        name: str,
        method: str,
        path: str,
        *,
        key: str = POS_KEY,
        body: Any = None,
        headers: dict[str, str] | None = None,
        expect: int,
        check: Callable[[ResponseContextManager], str | None] | None = None,
    ) -> ResponseContextManager | None:
        """One request (and its retries after a 503 with Retry-After); None when it failed."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            with self.client.request(
                method,
                path,
                name=name,
                json=body,
                headers={"x-api-key": key, **(headers or {})},
                catch_response=True,
            ) as response:
                status = response.status_code
                retry_after = _header(response, "Retry-After")
                if status == 503 and retry_after is not None and attempt < MAX_ATTEMPTS:
                    response.request_meta["name"] = f"{name} [503, retried]"
                    response.success()
                    RETRIED[name] += 1
                elif status != expect:
                    response.failure(f"{status} {(response.text or '')[:300]}")
                    return None
                else:
                    problem = check(response) if check else None
                    if problem:
                        response.failure(problem)
                        return None
                    response.success()
                    return response
            gevent.sleep(min(float(retry_after or 1), MAX_RETRY_WAIT))
        return None

    def _fail(self, name: str, message: str) -> None:
        """A failure found after the request was recorded (it counts as one more error)."""
        self.environment.events.request.fire(
            request_type="CHECK",
            name=name,
            response_time=0,
            response_length=0,
            exception=AssertionError(message),
            context={},
        )


def _header(response: ResponseContextManager, name: str) -> str | None:
    headers = response.headers
    if not headers:
        return None
    value = headers.get(name) or headers.get(name.lower())
    return str(value) if value is not None else None


def _names(customer_id: str) -> Callable[[ResponseContextManager], str | None]:
    def check(response: ResponseContextManager) -> str | None:
        got = response.json().get("customer_id")
        return None if got == customer_id else f"answered customer {got}, expected {customer_id}"

    return check


def _replays(first: dict[str, Any]) -> Callable[[ResponseContextManager], str | None]:
    def check(response: ResponseContextManager) -> str | None:
        if _header(response, "Idempotent-Replayed") != "true":
            return "a replay was not answered as one (no Idempotent-Replayed: true)"
        return None if response.json() == first else "a replay answered another body"

    return check


# ---- run as a library -------------------------------------------------------------------------


def stats_of(env: Environment, elapsed: float) -> dict[str, Any]:
    assert env.stats is not None
    rows = []
    for entry in sorted(env.stats.entries.values(), key=lambda e: e.name):
        rows.append(
            {
                "name": entry.name,
                "method": entry.method,
                "requests": entry.num_requests,
                "failures": entry.num_failures,
                "p50_ms": entry.get_response_time_percentile(0.5),
                "p99_ms": entry.get_response_time_percentile(0.99),
                "max_ms": round(entry.max_response_time or 0),
                "rps": round(entry.num_requests / elapsed, 1) if elapsed else 0.0,
            }
        )
    total = env.stats.total
    return {
        "seconds": round(elapsed, 2),
        "requests": total.num_requests,
        "failures": total.num_failures,
        "rps": round(total.num_requests / elapsed, 1) if elapsed else 0.0,
        "p50_ms": total.get_response_time_percentile(0.5),
        "p99_ms": total.get_response_time_percentile(0.99),
        "endpoints": rows,
        "errors": [
            {"name": e.name, "method": e.method, "error": str(e.error), "occurrences": e.occurrences}
            for e in env.stats.errors.values()
        ],
        "retried_503": dict(RETRIED),
    }


def run(host: str, users: int, seconds: float) -> dict[str, Any]:
    # stop_timeout: at the end every user finishes the task it is in, so whatever was sent is answered.
    env = Environment(user_classes=[LoyaltyUser], host=host, events=events, stop_timeout=30)
    runner = env.create_local_runner()
    started = time.monotonic()
    runner.start(users, spawn_rate=max(users, 1))
    gevent.spawn_later(seconds, runner.quit)
    runner.greenlet.join()
    elapsed = time.monotonic() - started
    return {"stats": stats_of(env, elapsed), "acknowledged": ACKNOWLEDGED, "run_id": RUN_ID}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tools.load.locustfile")
    parser.add_argument("--host", required=True)
    parser.add_argument("--pool", type=Path, required=True)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    load_pool(args.pool)
    result = run(args.host, args.users, args.seconds)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
