"""A new segment's background evaluation over N existing customers (issue 17).

Run on its own with ``.venv/bin/python -m tools.bench.segment_pass`` (it starts its own DynamoDB
Local and moto), or as a section of ``make bench``. N is BENCH_SEGMENT_CUSTOMERS (default 10,000:
the pass runs at the speed of one customer's evaluation against DynamoDB Local, about 10 minutes
for 100,000 on this machine's two shared cores; the figures for 100,000 are the arithmetic below,
linear in N: one page of 200 per message, the same work per customer).

Set-up (unmetered): N customer profiles written straight into the table (BatchWriteItem, a third of
them with the attribute the rule looks for), the same profiles as the lake writer stores them in a
lake folder (DuckDB reads it, as it does locally; Athena on AWS), and the segment saved through
SegmentService. The rule: `{"all": [member, profile.attributes.club = "gold"]}`.

Metered: the whole pass, message by message, through SegmentPasses.handle with the real
SegmentMembership (loyalty.services.segment_membership) on the container's client: DynamoDB round
trips, capacity priced by DynamoDB's rules, wall time; customers per second. Cost per customer at
list prices: DynamoDB, Lambda (the segments job's memory, billed time plus 5 ms a round trip),
SQS (a send, a receive and a delete per page) and Athena (each page's query over the customers'
Parquet, at least 10 MB billed).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from loyalty.adapters.codec import customer_to_item
from loyalty.adapters.dynamo import serialize
from loyalty.adapters.lake import FolderLake
from loyalty.adapters.report_queries import DuckDBQueries
from loyalty.adapters.segment_definitions import SegmentDefinitionRepository
from loyalty.bootstrap import Container, bound_container
from loyalty.domain.customers import Consents, Customer, CustomerStatus, Profile
from loyalty.resources import JOBS
from loyalty.services.lake import LakeWriter, StreamChange
from loyalty.services.segment_passes import PAGE_SIZE, SegmentPasses
from loyalty_local.runtime import LocalRuntime
from tools.bench.config import RT_LATENCY_MS
from tools.bench.costs import DDB_RRU_PER_M, DDB_WRU_PER_M, LAMBDA_GB_SECOND, LAMBDA_PER_M
from tools.bench.meter import CallCost, DynamoMeter, settle_writes

CUSTOMERS = int(os.environ.get("BENCH_SEGMENT_CUSTOMERS", "10000"))
TARGET = 100_000
SQS_PER_M = 0.40  # standard queue, per million requests
ATHENA_PER_TB = 5.0
ATHENA_MIN_BYTES = 10 * 1024**2
MEMORY_MB = next(j.memory_mb for j in JOBS if j.name == "segments")
RULE = {"all": [{"attr": "member", "eq": True}, {"attr": "profile.attributes.club", "eq": "gold"}]}


class ListQueue:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, body: Any, delay_seconds: int = 0) -> None:
        self.sent.append(dict(body))


@dataclass(frozen=True)
class PassFigures:
    customers: int
    members: int
    messages: int
    seconds: float
    cost: CallCost
    lake_bytes: int  # the customers' Parquet: what a page's query reads at most

    @property
    def per_second(self) -> float:
        return self.customers / self.seconds

    def per_customer(self, customers: int) -> dict[str, float]:
        """Dollars per customer at list prices, for a pass over `customers` (same per-page work)."""
        pages = math.ceil(customers / PAGE_SIZE)
        share = customers / self.customers
        billed_s = (self.seconds + RT_LATENCY_MS / 1000 * self.cost.calls) * share
        lambda_ = pages * LAMBDA_PER_M / 1e6 + MEMORY_MB / 1024 * billed_s * LAMBDA_GB_SECOND
        dynamodb = (
            (self.cost.wcu_estimate * DDB_WRU_PER_M + self.cost.rcu_estimate * DDB_RRU_PER_M) / 1e6 * share
        )
        sqs = 3 * pages * SQS_PER_M / 1e6
        scanned = max(int(self.lake_bytes * share), ATHENA_MIN_BYTES)
        athena = (pages + 2) * scanned / 1024**4 * ATHENA_PER_TB
        return {
            k: v / customers
            for k, v in (("lambda", lambda_), ("dynamodb", dynamodb), ("sqs", sqs), ("athena", athena))
        }


def _seed(container: Container, lake: Path, run: str, count: int, at: datetime) -> int:
    raw = container.table._client  # the set-up writes past the meter
    changes, members = [], 0
    batch: list[dict[str, Any]] = []
    for n in range(count):
        gold = n % 3 == 0
        members += gold
        customer = Customer(
            customer_id=f"B{run}{n:07d}",
            member=True,
            status=CustomerStatus.ACTIVE,
            profile=Profile(attributes={"club": "gold" if gold else "silver"}),
            consents=Consents(),
            links=(),
            created_at=at,
        )
        item = customer_to_item(customer)
        batch.append({"PutRequest": {"Item": serialize(item)}})
        if len(batch) == 25:
            _write(raw, container.table.name, batch)
            batch = []
        changes.append(
            StreamChange("INSERT", {"pk": item["pk"], "sk": item["sk"]}, item, None, str(n + 1), at)
        )
    if batch:
        _write(raw, container.table.name, batch)
    LakeWriter(files=FolderLake(root=lake)).write(changes)
    return members


def _write(raw: Any, table: str, batch: list[dict[str, Any]]) -> None:
    pending = {table: batch}
    while pending:
        pending = raw.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def measure(runtime: LocalRuntime, customers: int = CUSTOMERS) -> PassFigures:
    container = runtime.container
    assert container is not None
    logging.getLogger("loyalty").setLevel(logging.WARNING)
    run = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory() as folder, bound_container(container):
        lake = Path(folder)
        before = datetime.now(UTC) - timedelta(days=1)
        members = _seed(container, lake, run, customers, before)
        queue = ListQueue()
        segment_id = f"bench-{run}"
        segments = container.segments
        saved, _ = segments.put(segment_id, name="gold club", description="", rule=RULE)
        # The save as the lake writer stores it: the pass starts at once.
        image = {"pk": f"SEGMENT#{segment_id}", "sk": "SEGMENT", "type": "segment", "segment_id": segment_id,
                 "name": "gold club", "version": 1, "updated_at": datetime.now(UTC).isoformat()}  # fmt: skip
        LakeWriter(files=FolderLake(root=lake)).write(
            [
                StreamChange(
                    "INSERT",
                    {"pk": image["pk"], "sk": "SEGMENT"},
                    image,
                    None,
                    str(customers + 1),
                    datetime.now(UTC),
                )
            ]
        )
        queries = DuckDBQueries.over_folder(lake)
        passes = SegmentPasses(
            repo=SegmentDefinitionRepository(container.table),
            lake=lambda: queries,
            membership=container.segment_membership,
            queue=lambda: queue,
            clock=container.clock,
        )
        queue.sent.append(
            {
                "evaluate_segment": segment_id,
                "version": 1,
                "pass": saved.definition.evaluation.pass_id,
                "page": None,
            }
        )
        meter = DynamoMeter()
        meter.attach(container.table._client)
        cost = meter.start()
        started = time.perf_counter()
        messages = 0
        while queue.sent:
            passes.handle(queue.sent.pop(0))
            messages += 1
        seconds = time.perf_counter() - started
        meter.stop()
        settle_writes(cost, container.table._client)
        view = segments.get(segment_id)
        assert view.definition.evaluation.status == "done", view.definition.evaluation
        assert view.size == members, (view.size, members)
        lake_bytes = sum(p.stat().st_size for p in (lake / "customers").rglob("*.parquet"))
    return PassFigures(customers, members, messages, seconds, cost, lake_bytes)


def print_figures(f: PassFigures) -> None:
    print(
        f"Segment background evaluation (issue 17): a new segment over {f.customers:,} existing customers,"
        f" pages of {PAGE_SIZE} (SegmentPasses with the real membership worker; lake: DuckDB over a folder)"
    )
    print(
        f"  {f.messages} messages, {f.seconds:.1f} s, {f.per_second:,.0f} customers/s;"
        f" {f.members:,} entered (size checked)"
    )
    print(
        f"  DynamoDB: {f.cost.reads:,} reads + {f.cost.writes:,} writes = {f.cost.calls / f.customers:.2f}"
        f" round trips per customer; {f.cost.rcu_estimate / f.customers:.2f} RCU* and"
        f" {f.cost.wcu_estimate / f.customers:.2f} WCU* per customer"
    )
    for n in (f.customers, TARGET):
        costs = f.per_customer(n)
        total = sum(costs.values())
        minutes = n / f.per_second / 60
        print(
            f"  {n:>9,} customers: ~{minutes:.1f} min in one chain here;"
            f" ${total * 1e6:,.2f} per million customers (${total * n:.4f} the pass) ="
            f" lambda {costs['lambda'] * 1e6:.2f} + dynamodb {costs['dynamodb'] * 1e6:.2f}"
            f" + sqs {costs['sqs'] * 1e6:.2f} + athena {costs['athena'] * 1e6:.2f} per million"
        )
    print(
        "  Per customer: one BatchGetItem (profile, memberships, the rules' version) and a"
        " TransactWriteItems when the membership changes (memberships item, member row, size shard)."
        " Per page: a GetItem of the definition, the lake query, an UpdateItem of the progress, one SQS"
        " message. 100,000 is linear arithmetic from the measured run (same work per customer and page)."
    )


if __name__ == "__main__":
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    runtime = LocalRuntime(background_jobs=False).start(with_gateway=False)
    try:
        print_figures(measure(runtime))
    finally:
        runtime.stop()
