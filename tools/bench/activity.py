"""The activity worker (issue 15): one SQS batch of 10 bus events through the real handler.

Run on its own with ``.venv/bin/python -m tools.bench.activity`` (it starts its own DynamoDB Local
and moto), or as a section of ``make bench``.

Set-up (unmetered): a challenge (3 reviews, points), a punch card (5 coffees, points, repeatable)
and a badge (2 reviews); 10 members, each with one coffee sale recorded through TransactionService.
The batch: those 10 sales' TransactionRecorded for 5 members and CustomerEventRecorded reviews for
the other 5, as the bus rule delivers them (an EventBridge envelope in each SQS body), handed to
``loyalty.jobs.apply_activity`` with the bench's DynamoMeter on the container's client. Then the
same batch again: every message a duplicate (what a redelivery costs).

Reported: DynamoDB round trips by kind, WCU / RCU by DynamoDB's rules, handler time, and the cost
per million events at list prices: Lambda (512 MB, billed time + 5 ms a round trip), DynamoDB,
and SQS (EventBridge's send per event, Lambda's receive and delete per batch). EventBridge itself
costs nothing more here: the event was paid for when it was published, and matching rules is free.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from loyalty import jobs
from loyalty.api.models.transactions import render_receipt
from loyalty.bootstrap import Container, bound_container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customers import Consents, CustomerRef, Profile
from loyalty.domain.gamification import Badge, Challenge
from loyalty.domain.sales import Line, SaleType
from loyalty.resources import ACTIVITY_QUEUE, JOBS
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
BATCH = 10
SQS_PER_M = 0.40  # standard queue, per million requests (64 KB chunks)
MEMORY_MB = next(j.memory_mb for j in JOBS if j.consumes_queue == ACTIVITY_QUEUE)


@dataclass(frozen=True)
class BatchFigures:
    name: str
    cost: CallCost
    seconds: float
    outcomes: dict[str, int]

    @property
    def billed_ms(self) -> int:
        return max(1, math.ceil(self.seconds * 1000 + RT_LATENCY_MS * self.cost.calls))

    def per_million_events(self) -> dict[str, float]:
        batches = 1e6 / BATCH
        return {
            "lambda": batches
            * (LAMBDA_PER_M / 1e6 + MEMORY_MB / 1024 * self.billed_ms / 1000 * LAMBDA_GB_SECOND),
            "dynamodb": batches
            * (self.cost.wcu_estimate * DDB_WRU_PER_M + self.cost.rcu_estimate * DDB_RRU_PER_M)
            / 1e6,
            "sqs": (1e6 + 2 * batches) * SQS_PER_M / 1e6,
        }


def _envelope(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "loyalty.platform",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": detail,
    }


class ActivityBench:
    def __init__(self) -> None:
        import boto3

        self.session = boto3.session.Session(region_name=REGION)
        self.container = Container(Settings.from_env(), session=self.session)
        self.meter = DynamoMeter()
        self.meter.attach(self.container.table._client)
        self.raw = self.session.client("dynamodb")
        self.run = uuid.uuid4().hex[:8]

    def set_up(self) -> list[dict[str, Any]]:
        gamification = self.container.gamification
        review = f"review_{self.run}"
        coffee = f"coffee_{self.run}"
        gamification.put_challenge(
            Challenge.model_validate(
                {
                    "challenge_id": f"reviews-{self.run}",
                    "name": "three reviews",
                    "tasks": [{"task_id": "r", "event": {"type": review}, "count": 3}],
                    "reward": {"points": 100},
                }
            )
        )
        gamification.put_challenge(
            Challenge.model_validate(
                {
                    "challenge_id": f"card-{self.run}",
                    "name": "coffee card",
                    "tasks": [{"task_id": "c", "purchase": {"categories": [coffee]}, "count": 5}],
                    "reward": {"points": 50},
                    "repeatable": True,
                }
            )
        )
        gamification.put_badge(
            Badge.model_validate(
                {
                    "badge_id": f"critic-{self.run}",
                    "name": "critic",
                    "when": {"metric": f"events:{review}", "gte": 2},
                }
            )
        )
        messages = []
        for n in range(BATCH):
            enrolled = self.container.customers.enrol(
                EnrolCommand(
                    [RawLink("email", f"act-{self.run}-{n}@bench.example")], Profile(), Consents(), True, None
                ),
                POS,
            )
            customer_id = enrolled.customer.customer_id
            txn = f"ACT-{self.run}-{n}"
            line = Line("1", "ESP", coffee, Decimal(1), Decimal("3.50"))
            self.container.transactions.record(
                RecordCommand(
                    transaction_id=txn,
                    type=SaleType.SALE,
                    store_id=None,
                    occurred_at=datetime.now(UTC),
                    customer=CustomerRef(customer_id=customer_id),
                    lines=[line],
                    currency="EUR",
                    total=Decimal("3.50"),
                    fingerprint=txn,
                ),
                POS,
                render=render_receipt,
            )
            detail: dict[str, Any]
            if n % 2 == 0:
                detail = {
                    "transaction_id": txn,
                    "store_id": "ams-01",
                    "customer_id": customer_id,
                    "type": "sale",
                }
                body = _envelope("TransactionRecorded", detail)
            else:
                detail = {
                    "event_id": f"EV-{self.run}-{n}",
                    "store_id": "web-nl",
                    "channel": "online",
                    "type": review,
                    "customer_id": customer_id,
                    "anonymous_id": None,
                    "member": True,
                    "occurred_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "received_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "properties": {"rating": 5},
                }
                body = _envelope("CustomerEventRecorded", detail)
            messages.append(
                {"MessageId": str(uuid.uuid4()), "ReceiptHandle": str(uuid.uuid4()), "Body": json.dumps(body)}
            )
        return messages

    def run_batch(self, name: str, messages: list[dict[str, Any]]) -> BatchFigures:
        event = sqs_event(messages, "arn:aws:sqs:eu-west-1:000000000000:loyalty-activity", REGION)
        outcomes: dict[str, int] = {}
        logging.getLogger("loyalty").setLevel(logging.WARNING)
        with bound_container(self.container):
            cost = self.meter.start()
            started = time.perf_counter()
            result = jobs.apply_activity(event, LambdaContext("activity"))
            seconds = time.perf_counter() - started
            self.meter.stop()
        settle_writes(cost, self.raw)
        outcomes["failed"] = len(result.get("batchItemFailures", []))
        return BatchFigures(name, cost, seconds, outcomes)


def measure(runtime: LocalRuntime | None = None) -> list[BatchFigures]:
    bench = ActivityBench()
    messages = bench.set_up()
    return [bench.run_batch("10 new events", messages), bench.run_batch("the same 10 again", messages)]


def print_figures(figures: list[BatchFigures]) -> None:
    print(
        "Activity worker: one SQS batch of 10 bus events (5 sales for a punch card, 5 reviews for a challenge"
        " and a badge), through loyalty.jobs.apply_activity"
    )
    print(
        f"  {'batch':<20} {'reads':>5} {'writes':>6} {'RTs':>4} {'RT/event':>8} {'WCU*':>6}"
        f" {'WCU*/event':>10} {'RCU*':>6} {'ms':>6} {'failed':>6} {'$/M events':>10}"
        "  (lambda + dynamodb + sqs)"
    )
    for f in figures:
        costs = f.per_million_events()
        print(
            f"  {f.name:<20} {f.cost.reads:>5} {f.cost.writes:>6} {f.cost.calls:>4}"
            f" {f.cost.calls / BATCH:>8.1f} {f.cost.wcu_estimate:>6.0f}"
            f" {f.cost.wcu_estimate / BATCH:>10.1f} {f.cost.rcu_estimate:>6.1f}"
            f" {f.seconds * 1000:>6.0f} {f.outcomes['failed']:>6} {sum(costs.values()):>10.2f}"
            f"  ({costs['lambda']:.2f} + {costs['dynamodb']:.2f} + {costs['sqs']:.2f})"
        )
    print(
        "  Per event: one BatchGetItem (profile, counters, source record, progress of every live challenge),"
        " one TransactWriteItems when something counted, none for a duplicate or an event no challenge"
        " or badge counts; a sale adds one GetItem (the transaction's lines). The batch reads the"
        " challenges and badges once (two Queries)."
    )


if __name__ == "__main__":
    runtime = LocalRuntime(background_jobs=False).start(with_gateway=False)
    try:
        print_figures(measure(runtime))
    finally:
        runtime.stop()
