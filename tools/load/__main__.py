"""`make load`: a mixed workload from concurrent clients against the local platform, then the invariants.

1. Starts its own platform: a LocalRuntime (the real gateway, authorizer, handlers and background
   jobs, as `make run`) on in-memory DynamoDB Local, a fresh table and a free port, with fault
   injection off.
2. Seeds through the API: a few cart offers (admin key), then LOAD_MEMBERS members, each enrolled
   (with an `Idempotency-Key`) and given points by one sale, from 8 threads; and warms every
   function's instances.
3. Runs locust (`tools.load.locustfile`, as a library) in a subprocess — locust patches the
   standard library with gevent, which must not meet this process's threads — with LOAD_USERS
   users for LOAD_SECONDS seconds: look-ups by card and by email, GET customer, cart evaluations
   (about 80 % together), sales, points redemptions and enrolments.
4. Checks the invariants with a clean Container on the same table, through the repositories and
   services: every member's points balance equals the sum of its ledger; no balance below zero;
   every sale that got 201 exists once, with at most one earn, and the table holds no other sale
   of the run; every customer's `stats.transactions` equals its transactions; every redemption that
   got 201 exists once with exactly one ledger entry; every link resolves to exactly one live
   customer, which lists it, and every live customer's links resolve to it.
5. Prints throughput, p50 / p99 per endpoint, the 503 retries and the errors; exits 1 when there
   was an error or an invariant broke.

Settings (environment or flags): LOAD_SECONDS (60), LOAD_USERS (16), LOAD_MEMBERS (200),
LOAD_POOL_SIZE (4: warm instances per function, as `make run`); `--json FILE` also writes the
report as JSON, `--log FILE` takes the functions' output (default `.local/load.log`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

import boto3
import requests

from loyalty.adapters.customer_events import EVENT_SK, CustomerEventRepository, event_pk
from loyalty.adapters.dynamo import deserialize
from loyalty.adapters.transactions import TransactionRepository
from loyalty.bootstrap import Container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customers import CustomerStatus
from loyalty.domain.errors import CustomerNotFound, RedemptionNotFound
from loyalty.domain.ledger import LedgerReason
from loyalty.settings import Settings
from loyalty_local.emulators import REGION, REPO, free_port
from loyalty_local.faults import FaultInjector
from loyalty_local.runtime import LocalRuntime

ADMIN_KEY, POS_KEY, WEB_KEY = "local-admin-key", "local-pos-key", "local-web-key"
CHECKER = Principal("load-check", KeyKind.ADMIN, None)
SEED_THREADS = 8
CHECK_THREADS = 8

# Offers, so that cart evaluations and sales run the engine on something (no limits or budgets:
# they would make every sale write one shared counter).
OFFERS: tuple[dict[str, Any], ...] = (
    {"name": "10% off coffee at the till", "where": {"channels": ["pos"]},
     "effect": {"type": "percent_off", "value": "10", "categories": ["coffee"]}},
    {"name": "0.50 off bakery online", "where": {"channels": ["online"]},
     "effect": {"type": "amount_off", "value": "0.50", "categories": ["bakery"]}},
    {"name": "members: 50 bonus points over 20.00", "audience": {"members_only": True},
     "condition": {"min_subtotal": "20.00"}, "effect": {"type": "bonus_points", "value": "50"}},
    {"name": "double points on beans",
     "effect": {"type": "points_multiplier", "value": "2", "skus": ["BEANS-1KG"]}},
    {"name": "third espresso free", "effect": {"type": "buy_x_get_y", "buy": 2, "get": 1, "skus": ["ESP"]}},
    {"name": "5% off baskets over 30.00", "condition": {"min_subtotal": "30.00"},
     "effect": {"type": "percent_off", "value": "5", "applies_to": "basket"}, "stacking": "best_of"},
    {"name": "silver: mugs 9.00", "audience": {"tiers": ["silver", "gold"]},
     "effect": {"type": "fixed_price", "value": "9.00", "skus": ["MUG"]}},
    {"name": "cake at the flagship", "where": {"store_formats": ["flagship"]},
     "effect": {"type": "amount_off", "value": "1", "skus": ["CAKE"]}},
)  # fmt: skip


def setting(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


# ---- seeding through the API ------------------------------------------------------------------

T = TypeVar("T")


def in_threads(work: Callable[[int], T], count: int, threads: int = SEED_THREADS) -> list[T]:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(work, range(count)))


@dataclass
class Seeder:
    base: str
    run_id: str
    session: requests.Session = field(default_factory=requests.Session)

    def call(self, method: str, path: str, key: str, expect: int, **kwargs: Any) -> Any:
        headers = {"x-api-key": key, **kwargs.pop("headers", {})}
        for _ in range(5):
            response = self.session.request(method, self.base + path, headers=headers, timeout=30, **kwargs)
            if response.status_code == 503 and "Retry-After" in response.headers:
                time.sleep(min(float(response.headers["Retry-After"]), 2.0))
                continue
            break
        if response.status_code != expect:
            raise RuntimeError(
                f"seeding: {method} {path} answered {response.status_code}: {response.text[:300]}"
            )
        return response.json() if response.content else None

    def offers(self) -> None:
        for n, offer in enumerate(OFFERS):
            self.call("POST", "/v1/admin/offers", ADMIN_KEY, 201, json={"offer_id": f"load-{n}", **offer})

    def member(self, n: int) -> dict[str, Any]:
        email = f"m{n}-{self.run_id}@example.com"
        customer = self.call(
            "POST",
            "/v1/customers",
            POS_KEY,
            201,
            json={"links": [{"type": "email", "value": email}], "profile": {"first_name": f"M{n}"}},
            headers={"Idempotency-Key": f"seed-{self.run_id}-{n}"},
        )
        transaction_id = f"seed-{self.run_id}-{n}"
        receipt = self.call(
            "POST",
            "/v1/transactions",
            POS_KEY,
            201,
            json={
                "transaction_id": transaction_id,
                "type": "sale",
                "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "customer": {"customer_id": customer["customer_id"]},
                "lines": [
                    {
                        "line_id": "1",
                        "sku": "GIFT-BOX",
                        "category": "gifts",
                        "quantity": "1",
                        "unit_price": "100.00",
                    }
                ],
                "currency": "EUR",
                "total": "100.00",
            },
        )
        return {
            "customer_id": customer["customer_id"],
            "email": email,
            "card": customer["card"],
            "points": receipt["points_balance"],
            "sale": {"store_id": "ams-01", "transaction_id": transaction_id},
        }

    def warm(self, members: list[dict[str, Any]]) -> None:
        """Load every function's instances before the clock starts (a cold import takes ~1 s)."""
        first = members[0]
        line = {"line_id": "1", "sku": "ESP", "quantity": "1", "unit_price": "2.80"}
        cart = {"customer": {"customer_id": first["customer_id"]}, "currency": "EUR", "lines": [line]}
        calls: list[tuple[str, str, int, dict[str, Any]]] = [
            ("GET", f"/v1/customers/{first['customer_id']}", 200, {}),
            ("GET", f"/v1/customers?link_type=email&link_value={first['email']}", 200, {}),
            ("POST", "/v1/cart/evaluate", 200, {"json": cart}),
            ("GET", "/v1/transactions/ams-01/nothing-here", 404, {}),
            ("GET", "/v1/redemptions/nothing-here", 404, {}),
        ]
        for key in (POS_KEY, WEB_KEY):
            self.call("GET", "/v1/health", key, 200)
        for method, path, expect, kwargs in calls:

            def one(
                _: int, m: str = method, p: str = path, e: int = expect, k: dict[str, Any] = kwargs
            ) -> Any:
                return self.call(m, p, POS_KEY, e, **k)

            in_threads(one, 16)


# ---- the locust run ---------------------------------------------------------------------------


def run_locust(
    base: str, pool: Path, users: int, seconds: float, out: Path, console: TextIO
) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "tools.load.locustfile",
        *("--host", base, "--pool", str(pool), "--users", str(users), "--seconds", str(seconds)),
        *("--out", str(out)),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # From the repository's root, where the `tools` package is importable whatever the caller's cwd.
    completed = subprocess.run(command, env=env, stdout=console, timeout=seconds + 180, check=False, cwd=REPO)
    if completed.returncode != 0 or not out.exists():
        raise RuntimeError(f"the locust process failed (exit code {completed.returncode})")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


# ---- the invariants ---------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    checked: int = 0
    broken: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.broken.append(message)

    @property
    def ok(self) -> bool:
        return not self.broken


def scan(container: Container) -> Iterable[dict[str, Any]]:
    """Every item of the table (to enumerate customers, links and sales; reads go through repositories)."""
    paginator = container.client("dynamodb").get_paginator("scan")
    for page in paginator.paginate(TableName=container.settings.table_name, ConsistentRead=True):
        for raw in page["Items"]:
            yield deserialize(raw)


def check_invariants(container: Container, acknowledged: dict[str, list[dict[str, Any]]]) -> list[Check]:  # noqa: C901, PLR0912, PLR0915 - one check per invariant; to split
    repo = TransactionRepository(container.table)
    profiles, links, sales = [], [], []
    for item in scan(container):
        if item["sk"] == "PROFILE":
            profiles.append(item)
        elif item["sk"] == "LINK":
            links.append(item)
        elif item["sk"] == "TXN":
            sales.append(item)
    live = [
        str(p["customer_id"]) for p in profiles if p.get("status", "active") == CustomerStatus.ACTIVE.value
    ]

    ledger_check = Check("every balance = the sum of its ledger")
    negative = Check("no balance below zero")
    counts = Check("every customer's stats.transactions = its transactions")
    links_check = Check("every link resolves to exactly one live customer, which lists it")
    per_customer: dict[str, Any] = {}

    def customer(cid: str) -> None:
        found = container.customers.get(cid)
        ledger = repo.all_ledger(cid)
        history: list[Any] = []
        cursor = None
        while True:
            page, cursor = repo.history(cid, 200, cursor)
            history += page
            if cursor is None:
                break
        resolved: dict[tuple[str, str], str | None] = {}
        for link in found.links:
            try:
                resolved[(link.type, link.value)] = container.customers.lookup(
                    link.type, link.value
                ).customer_id
            except CustomerNotFound:
                resolved[(link.type, link.value)] = None
        per_customer[cid] = (found, ledger, history, resolved)

    in_threads(lambda i: customer(live[i]), len(live), CHECK_THREADS)

    earns: Counter[tuple[str, str]] = Counter()
    redeemed: Counter[str] = Counter()
    for cid, (found, ledger, history, resolved) in per_customer.items():
        balance = found.points.available + found.points.pending
        ledger_check.checked += 1
        if found.customer_id != cid:
            ledger_check.fail(f"{cid} answers as {found.customer_id}")
        if balance != sum(e.points for e in ledger):
            ledger_check.fail(f"{cid}: balance {balance}, ledger {sum(e.points for e in ledger)}")
        negative.checked += 1
        if found.points.available < 0 or found.points.pending < 0:
            negative.fail(f"{cid}: available {found.points.available}, pending {found.points.pending}")
        low = min((e.balance_after for e in ledger), default=0)
        if low < 0:
            negative.fail(f"{cid}: a ledger entry left the balance at {low}")
        counts.checked += 1
        if found.stats.transactions != len(history):
            counts.fail(f"{cid}: stats.transactions {found.stats.transactions}, transactions {len(history)}")
        for entry in ledger:
            if entry.reason is LedgerReason.EARN and entry.transaction_id:
                earns[(entry.store_id or "", entry.transaction_id)] += 1
            if entry.redemption_id:
                redeemed[entry.redemption_id] += 1
        for (link_type, value), owner in resolved.items():
            links_check.checked += 1
            if owner != cid:
                links_check.fail(f"{cid}'s link {link_type}:{value} resolves to {owner}")
    live_set = set(per_customer)
    for link in links:
        links_check.checked += 1
        owner = str(link["customer_id"])
        listed = owner in per_customer and any(
            f"{lk.type}#{lk.value}" == str(link["pk"]).removeprefix("LINK#")
            for lk in per_customer[owner][0].links
        )
        if owner not in live_set or not listed:
            links_check.fail(f"{link['pk']} points to {owner}, which is not live or does not list it")

    sales_check = Check("every sale that got 201 exists once (one earn), and no other sale exists")
    acked = {(s["store_id"], s["transaction_id"]): s for s in acknowledged["sales"]}
    for (store_id, tid), sale in acked.items():
        sales_check.checked += 1
        record = repo.get(store_id, tid)
        if record is None:
            sales_check.fail(f"sale {store_id}/{tid} got 201 but is not there")
            continue
        if record.customer_id != sale["customer_id"]:
            sales_check.fail(
                f"sale {store_id}/{tid} belongs to {record.customer_id}, not {sale['customer_id']}"
            )
        if earns[(store_id, tid)] > 1:
            sales_check.fail(f"sale {store_id}/{tid} earned {earns[(store_id, tid)]} times")
    on_table = {(str(s["store_id"]), str(s["transaction_id"])) for s in sales}  # a fresh table: all the run's
    for extra in sorted(on_table - set(acked)):
        sales_check.fail(f"sale {extra[0]}/{extra[1]} exists but the load never got 201 for it")
    if len(acknowledged["sales"]) != len(acked):
        sales_check.fail(f"{len(acknowledged['sales']) - len(acked)} sales were acknowledged twice")

    redemptions = Check("every redemption that got 201 exists once, with one ledger entry")
    for r in acknowledged["redemptions"]:
        redemptions.checked += 1
        try:
            done = container.redemptions.get(r["redemption_id"], CHECKER, r["store_id"])
        except RedemptionNotFound:
            redemptions.fail(f"redemption {r['redemption_id']} got 201 but is not there")
            continue
        if done.customer_id != r["customer_id"] or done.points != r["points"]:
            redemptions.fail(f"redemption {r['redemption_id']}: {done.customer_id} {done.points}, sent {r}")
        if redeemed[r["redemption_id"]] != 1:
            redemptions.fail(
                f"redemption {r['redemption_id']} has {redeemed[r['redemption_id']]} ledger entries"
            )

    enrolments = Check("every enrolment that got 201 is one live customer")
    for e in acknowledged["enrolments"]:
        enrolments.checked += 1
        if e["customer_id"] not in live_set:
            enrolments.fail(f"enrolment {e['customer_id']} is not a live customer")
    events = check_events(container, acknowledged.get("events", []))
    return [ledger_check, negative, sales_check, counts, redemptions, enrolments, links_check, events]


def check_events(container: Container, acknowledged: list[dict[str, Any]]) -> Check:
    """Every event that got 202 (accepted) is stored once, on its customer, with one outbox entry."""
    check = Check("every accepted event is stored once, on its customer, published once")
    keys = [(e["store_id"], e["event_id"]) for e in acknowledged]
    if len(set(keys)) != len(keys):
        check.fail(f"{len(keys) - len(set(keys))} events were accepted twice")
    found = {(e.store_id, e.event_id): e for e in CustomerEventRepository(container.table).get_many(keys)}
    raw = {
        (str(i["store_id"]), str(i["event_id"])): i
        for i in container.table.batch_get([(event_pk(s, e), EVENT_SK) for s, e in keys])
    }
    for sent in acknowledged:
        check.checked += 1
        key = (sent["store_id"], sent["event_id"])
        event = found.get(key)
        if event is None:
            check.fail(f"event {key} got 202 but is not there")
            continue
        if event.customer_id != sent["customer_id"]:
            check.fail(f"event {key} is on {event.customer_id}, sent for {sent['customer_id']}")
        outbox = [e["detail_type"] for e in raw[key].get("outbox") or []]
        if outbox != ["CustomerEventRecorded"]:
            check.fail(f"event {key} has outbox {outbox}")
    return check


# ---- the report -------------------------------------------------------------------------------


def render(report: dict[str, Any]) -> str:
    stats = report["stats"]
    out = [
        "",
        f"Mixed load: {report['users']} users for {stats['seconds']:.0f} s against {report['base']} "
        f"({report['members']} seeded members, {report['pool_size']} instances per function)",
        f"  {stats['requests']} requests, {stats['rps']} per second, p50 {stats['p50_ms']:.0f} ms, "
        f"p99 {stats['p99_ms']:.0f} ms, errors {stats['failures']}",
        "",
        f"  {'endpoint':<44} {'requests':>8} {'per s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'errors':>6}",
    ]
    for row in stats["endpoints"]:
        out.append(
            f"  {row['name']:<44} {row['requests']:>8} {row['rps']:>7} {row['p50_ms']:>7.0f} "
            f"{row['p99_ms']:>7.0f} {row['max_ms']:>7} {row['failures']:>6}"
        )
    reads = sum(r["requests"] for r in stats["endpoints"] if r["method"] == "GET" or "cart" in r["name"])
    out.append(f"  reads: {100 * reads / max(stats['requests'], 1):.0f} % of requests")
    if stats["retried_503"]:
        retried = ", ".join(f"{k}: {v}" for k, v in sorted(stats["retried_503"].items()))
        out.append(f"  503 with Retry-After, retried and then answered: {retried}")
    for error in stats["errors"]:
        out.append(
            f"  ERROR {error['occurrences']} x {error['method']} {error['name']}: {error['error'][:300]}"
        )
    out += ["", f"Invariants ({report['check_seconds']:.1f} s to check):"]
    for check in report["invariants"]:
        mark = "ok" if not check["broken"] else "BROKEN"
        out.append(f"  {mark:<6} {check['name']} ({check['checked']} checked)")
        out += [f"         {b}" for b in check["broken"][:10]]
    out += ["", "PASS" if report["passed"] else "FAIL", ""]
    return "\n".join(out)


@contextlib.contextmanager
def platform_output_to(log: Path) -> Iterator[TextIO]:
    """Send this process's stdout (the functions' JSON logs and metrics) to `log`, at the file
    descriptor (powertools' logger holds the stream it found at import); yields the console."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    saved = os.dup(1)
    with log.open("wb") as file:
        os.dup2(file.fileno(), 1)
    console = os.fdopen(saved, "w", buffering=1)
    try:
        yield console
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        console.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools.load", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=setting("LOAD_SECONDS", 60))
    parser.add_argument("--users", type=int, default=int(setting("LOAD_USERS", 16)))
    parser.add_argument("--members", type=int, default=int(setting("LOAD_MEMBERS", 200)))
    parser.add_argument("--pool-size", type=int, default=int(setting("LOAD_POOL_SIZE", 4)))
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument(
        "--log", type=Path, default=REPO / ".local" / "load.log", help="the functions' output"
    )
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    run_id = uuid.uuid4().hex[:8]
    runtime = LocalRuntime(table_name=f"load-{run_id}", pool_size=args.pool_size, faults=FaultInjector(0.0))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="loyalty-load-") as tmp, platform_output_to(args.log) as console:
        print(
            f"starting the local platform on {base} (table load-{run_id}; its logs: {args.log}) ...",
            file=console,
        )
        try:
            runtime.start(port=port)
            seeder = Seeder(base, run_id)
            started = time.monotonic()
            seeder.offers()
            members = in_threads(seeder.member, args.members)
            seeder.warm(members)
            seeded = time.monotonic() - started
            print(
                f"seeded {len(members)} members and {len(OFFERS)} offers in {seeded:.1f} s; "
                f"{args.users} users for {args.seconds:.0f} s ...",
                file=console,
            )
            pool = Path(tmp) / "pool.json"
            pool.write_text(json.dumps({"members": members}))
            result = run_locust(base, pool, args.users, args.seconds, Path(tmp) / "results.json", console)
            acknowledged = result["acknowledged"]
            acknowledged["sales"] = [
                m["sale"] | {"customer_id": m["customer_id"]} for m in members
            ] + acknowledged["sales"]
            assert runtime.resources is not None
            checker = Container(
                Settings(
                    table_name=runtime.resources.table_name,
                    api_key_pepper_secret=runtime.resources.pepper_secret,
                    cursor_key_secret=runtime.resources.cursor_key_secret,
                ),
                session=boto3.session.Session(region_name=REGION),
            )
            print("checking the invariants ...", file=console)
            started = time.monotonic()
            checks = check_invariants(checker, acknowledged)
            check_seconds = time.monotonic() - started
        finally:
            runtime.stop()
    stats = result["stats"]
    report = {
        "base": base,
        "users": args.users,
        "members": len(members),
        "pool_size": args.pool_size,
        "stats": stats,
        "errors": stats["failures"],
        "check_seconds": check_seconds,
        "invariants": [{"name": c.name, "checked": c.checked, "broken": c.broken} for c in checks],
        "passed": stats["failures"] == 0 and all(c.ok for c in checks),
    }
    print(render(report), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
