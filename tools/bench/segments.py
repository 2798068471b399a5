"""Segment membership after a sale (issue 17): one SQS batch of 10 TransactionRecorded events through
the real segments handler, with 50 saved segments.

Run on its own with ``.venv/bin/python -m tools.bench.segments`` (it starts its own DynamoDB Local
and moto), or as a section of ``make bench``.

Set-up (unmetered): 50 saved segments written as segadmin writes them (20 purchase rules with
windows of 7 to 365 days, categories, spend and counts; 15 event rules with windows of 2 minutes
to 90 days; 15 profile, consent, tier, points and birthday rules), and 10 members, each with 20
earlier sales over the last 90 days (coffee, tea, bakery, beans) and 30 earlier events, already
evaluated. Then each member buys gear for the first time (through TransactionService), which takes
them into the gear rules, and the batch of their 10 TransactionRecorded events is handed to
``loyalty.jobs.keep_segments`` with the bench's DynamoMeter on the container's client; then the
same batch again (a redelivery: everything already stored, nothing written).

Reported: DynamoDB round trips by kind, WCU / RCU by DynamoDB's rules, handler time, and the cost
per million sales at list prices: Lambda (the job's memory, billed time + 5 ms a round trip),
DynamoDB and SQS (EventBridge's send per event, Lambda's receive and delete per batch).
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from loyalty import jobs
from loyalty.adapters.segments import SegmentRepository
from loyalty.api.models.transactions import render_receipt
from loyalty.bootstrap import Container, bound_container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customer_events import EventInput
from loyalty.domain.customers import Consents, CustomerRef, Profile
from loyalty.domain.sales import Line, SaleType
from loyalty.resources import JOBS, SEGMENT_QUEUE
from loyalty.services.customers import EnrolCommand, RawLink
from loyalty.services.transactions import RecordCommand
from loyalty.settings import Settings
from loyalty_local.emulators import REGION
from loyalty_local.events import sqs_event
from loyalty_local.gateway import LambdaContext
from loyalty_local.runtime import LocalRuntime
from tools.bench.config import RT_LATENCY_MS
from tools.bench.costs import DDB_RRU_PER_M, DDB_WRU_PER_M, LAMBDA_GB_SECOND, LAMBDA_PER_M
from tools.bench.meter import CallCost, DynamoMeter, settle_writes

POS = Principal("bench-pos", KeyKind.POS, "ams-01")
WEB = Principal("bench-web", KeyKind.WEB, "web-nl")
BATCH = 10
SEGMENTS = 50
PRIOR_SALES = 20
PRIOR_EVENTS = 30
SQS_PER_M = 0.40  # standard queue, per million requests
MEMORY_MB = next(j.memory_mb for j in JOBS if j.consumes_queue == SEGMENT_QUEUE)
CATEGORIES = ("coffee", "tea", "bakery", "beans", "gear")
EVENT_TYPES = ("product_view", "site_visit", "review", "cart_add", "app_open")


def rules() -> list[dict[str, Any]]:
    """50 rules of the contract's language, mixed as a marketer's would be."""
    windows = ("P7D", "P14D", "P30D", "P90D", "P365D")
    out: list[dict[str, Any]] = []
    for n in range(20):
        spec: dict[str, Any] = {"within": windows[n % 5], "categories": [CATEGORIES[n % 5]]}
        if n % 3 == 0:
            spec["count"] = {"gte": 1 + n % 4}
        elif n % 3 == 1:
            spec["spend"] = {"gte": f"{5 * (1 + n % 6)}.00"}
        out.append({"purchased": spec})
    event_windows = ("PT2M", "PT1H", "P1D", "P30D", "P90D")
    for n in range(15):
        event: dict[str, Any] = {"type": EVENT_TYPES[n % 5], "within": event_windows[n % 5]}
        if n % 2:
            event["count"] = {"gte": 1 + n % 3}
        out.append({"event": event})
    out += [
        {"attr": "member", "eq": True},
        {"attr": "consents.email", "eq": True},
        {"attr": "tier", "in": ["silver", "gold"]},
        {"attr": "points.available", "gte": 100},
        {"attr": "stats.spend", "gte": "100.00"},
        {"attr": "stats.last_purchase_at", "within": "P30D"},
        {"attr": "created_at", "before": "P365D"},
        {"attr": "profile.country", "eq": "NL"},
        {"attr": "profile.attributes.vip", "eq": True},
        {"birthday": {"within_days": 7}},
        {"not": {"purchased": {"within": "P30D"}}},
        {"all": [{"attr": "member", "eq": True}, {"purchased": {"within": "P30D", "count": {"gte": 3}}}]},
        {"any": [{"attr": "consents.sms", "eq": True}, {"attr": "consents.mail", "eq": True}]},
        {"attr": "stats.transactions", "gte": 10},
        {"attr": "price_groups", "exists": True},
    ]
    return out


@dataclass(frozen=True)
class BatchFigures:
    name: str
    cost: CallCost
    seconds: float
    entered: int
    exited: int
    failed: int

    @property
    def billed_ms(self) -> int:
        return max(1, math.ceil(self.seconds * 1000 + RT_LATENCY_MS * self.cost.calls))

    def per_million_sales(self) -> dict[str, float]:
        batches = 1e6 / BATCH
        return {
            "lambda": batches
            * (LAMBDA_PER_M / 1e6 + MEMORY_MB / 1024 * self.billed_ms / 1000 * LAMBDA_GB_SECOND),
            "dynamodb": batches
            * (self.cost.wcu_estimate * DDB_WRU_PER_M + self.cost.rcu_estimate * DDB_RRU_PER_M)
            / 1e6,
            "sqs": (1e6 + 2 * batches) * SQS_PER_M / 1e6,
        }


def _envelope(detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "TransactionRecorded",
        "source": "loyalty.platform",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": detail,
    }


class SegmentBench:
    def __init__(self) -> None:
        import boto3

        self.session = boto3.session.Session(region_name=REGION)
        self.container = Container(Settings.from_env(), session=self.session)
        self.meter = DynamoMeter()
        self.meter.attach(self.container.table._client)
        self.raw = self.session.client("dynamodb")
        self.run = uuid.uuid4().hex[:8]

    def _sale(self, customer_id: str, txn: str, at: datetime, category: str, price: str) -> None:
        self.container.transactions.record(
            RecordCommand(
                transaction_id=txn,
                type=SaleType.SALE,
                store_id=None,
                occurred_at=at,
                customer=CustomerRef(customer_id=customer_id),
                lines=[Line("1", f"SKU-{category}", category, Decimal(1), Decimal(price))],
                currency="EUR",
                total=Decimal(price),
                fingerprint=txn,
            ),
            POS,
            render=render_receipt,
        )

    def set_up(self) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        repo = SegmentRepository(self.container.table)
        for n, rule in enumerate(rules()[:SEGMENTS]):
            repo.put_definition(f"bench-{self.run}-{n:02d}", f"bench segment {n}", rule, now)
        messages = []
        for n in range(BATCH):
            enrolled = self.container.customers.enrol(
                EnrolCommand(
                    [RawLink("email", f"seg-{self.run}-{n}@bench.example")],
                    Profile(country="NL"),
                    Consents(email=True),
                    True,
                    None,
                ),
                POS,
            )
            customer_id = enrolled.customer.customer_id
            for k in range(PRIOR_SALES):
                at = now - timedelta(days=90 * k / PRIOR_SALES, minutes=1)
                self._sale(customer_id, f"SEGP-{self.run}-{n}-{k}", at, CATEGORIES[k % 4], f"{3 + k % 7}.50")
            events = [
                (
                    k,
                    EventInput(
                        f"SEGE-{self.run}-{n}-{k}",
                        EVENT_TYPES[k % 5],
                        None,
                        now - timedelta(hours=k * 50),
                        CustomerRef(customer_id=customer_id),
                        None,
                        {"sku": "SKU-coffee", "category": "coffee", "url": "https://shop.example/"},
                    ),
                )
                for k in range(PRIOR_EVENTS)
            ]
            self.container.events.record(events, WEB)
            self.container.segment_membership.evaluate_customer(customer_id)  # the state before the sale
            txn = f"SEG-{self.run}-{n}"
            # Their first gear: the gear rules (4 of the 50) take them in.
            self._sale(customer_id, txn, datetime.now(UTC), "gear", "34.50")
            body = _envelope({"transaction_id": txn, "store_id": "ams-01", "customer_id": customer_id})
            messages.append(
                {"MessageId": str(uuid.uuid4()), "ReceiptHandle": str(uuid.uuid4()), "Body": json.dumps(body)}
            )
        return messages

    def run_batch(self, name: str, messages: list[dict[str, Any]]) -> BatchFigures:
        event = sqs_event(messages, "arn:aws:sqs:eu-west-1:000000000000:loyalty-segments", REGION)
        logging.getLogger("loyalty").setLevel(logging.WARNING)
        membership = self.container.segment_membership
        written: list[Any] = []
        evaluate = membership.evaluate_customer

        def counted(*args: Any, **kwargs: Any) -> Any:
            change = evaluate(*args, **kwargs)
            written.append(change)
            return change

        membership.evaluate_customer = counted  # type: ignore[method-assign]  # count, off the meter
        try:
            with bound_container(self.container):
                cost = self.meter.start()
                started = time.perf_counter()
                result = jobs.keep_segments(event, LambdaContext("segments"))
                seconds = time.perf_counter() - started
                self.meter.stop()
        finally:
            membership.evaluate_customer = evaluate  # type: ignore[method-assign]
        settle_writes(cost, self.raw)
        return BatchFigures(
            name,
            cost,
            seconds,
            entered=sum(len(c.entered) for c in written),
            exited=sum(len(c.exited) for c in written),
            failed=len(result.get("batchItemFailures", [])),
        )


def measure(runtime: LocalRuntime | None = None) -> list[BatchFigures]:
    bench = SegmentBench()
    messages = bench.set_up()
    return [bench.run_batch("10 sales", messages), bench.run_batch("the same 10 again", messages)]


def print_figures(figures: list[BatchFigures]) -> None:
    print(
        f"Segment membership after a sale: {SEGMENTS} saved segments, members with {PRIOR_SALES} sales"
        f" and {PRIOR_EVENTS} events of history; one SQS batch of 10 TransactionRecorded through"
        " loyalty.jobs.keep_segments"
    )
    print(
        f"  {'batch':<18} {'reads':>5} {'writes':>6} {'RTs':>4} {'RT/sale':>7} {'WCU*':>6}"
        f" {'RCU*':>6} {'RCU*/sale':>9} {'in':>4} {'out':>4} {'ms':>6} {'ms/sale':>7} {'failed':>6}"
        f" {'$/M sales':>9}  (lambda + dynamodb + sqs)"
    )
    for f in figures:
        costs = f.per_million_sales()
        print(
            f"  {f.name:<18} {f.cost.reads:>5} {f.cost.writes:>6} {f.cost.calls:>4}"
            f" {f.cost.calls / BATCH:>7.1f} {f.cost.wcu_estimate:>6.0f} {f.cost.rcu_estimate:>6.1f}"
            f" {f.cost.rcu_estimate / BATCH:>9.1f} {f.entered:>4} {f.exited:>4} {f.seconds * 1000:>6.0f}"
            f" {f.seconds * 1000 / BATCH:>7.1f} {f.failed:>6} {sum(costs.values()):>9.2f}"
            f"  ({costs['lambda']:.2f} + {costs['dynamodb']:.2f} + {costs['sqs']:.2f})"
        )
    print(
        "  Per sale: one BatchGetItem (profile, memberships, the catalogue's version), one Query of the"
        " purchases in the longest purchase window (gsi1) and one of the events in the longest event"
        " window (the timeline, gsi3, filtered to the rules' event types), and one TransactWriteItems"
        " when a membership or the next due moment changed (none for a redelivery). The 50 rules are"
        " read and parsed once per version of the catalogue, not per sale."
    )


if __name__ == "__main__":
    runtime = LocalRuntime(background_jobs=False).start(with_gateway=False)
    try:
        print_figures(measure(runtime))
    finally:
        runtime.stop()
