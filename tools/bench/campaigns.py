"""A manual campaign run over N customers (issue 19): the run workflow's tasks as the state machine
calls them, with the real CampaignActor, against DynamoDB Local.

Run on its own with ``.venv/bin/python -m tools.bench.campaigns`` (it starts its own DynamoDB Local
and moto), or as a section of ``make bench``. N is BENCH_CAMPAIGN_CUSTOMERS (default 10,000). A run
over 100,000 takes about ten times as long here (tens of minutes on this machine's two shared
cores): set BENCH_CAMPAIGN_CUSTOMERS=100000 to measure it; otherwise its figures are printed as the
arithmetic from the measured run, linear in N (the same work per customer and per batch), and say so.

Set-up (unmetered): N member profiles with an email address and email consent written straight into
the table, each a member row of one segment; an offer (personal coupons) and an email template.
The campaign: a coupon and an email, a 10% control group.

Metered: Prepare (the segment's members exported to batch files of resources.CAMPAIGN_RUN's size),
every Batch (CampaignActor.act per customer) and Finish, in one lane (the Distributed Map runs
MaxConcurrency lanes on AWS; the local emulator's own Step Functions overhead is left out): DynamoDB
round trips and capacity priced by DynamoDB's rules, CPU time, wall time, customers per second.

Priced per 1,000 customers actioned at list prices: DynamoDB, Lambda (the batch function's memory,
billed for its CPU plus 5 ms a round trip), Step Functions standard state transitions (counted from
the workflow's shape: Prepare, the map, Finish, the Choice and Succeed of the run, and one Batch
state per child execution), S3 requests for the batch files; SES's $0.10 per 1,000 emails and the
Step Functions price printed beside.
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loyalty.adapters.campaign_runs import DynamoRunLedger, DynamoRunRecords, S3RunFiles, SegmentMembers
from loyalty.adapters.codec import customer_to_item
from loyalty.adapters.dynamo import serialize
from loyalty.adapters.segments import members_pk
from loyalty.bootstrap import Container, bound_container
from loyalty.domain.campaign_runs import CampaignRun, RunRef, execution_name
from loyalty.domain.campaigns import Campaign
from loyalty.domain.customers import Consents, Customer, CustomerStatus, Profile
from loyalty.domain.links import Link
from loyalty.domain.offers import Offer
from loyalty.domain.templates import Channel, Template
from loyalty.resources import CAMPAIGN_RUN, JOBS
from loyalty.services.campaign_runs import CampaignRuns
from loyalty_local.runtime import LocalRuntime
from tools.bench.config import RT_LATENCY_MS
from tools.bench.costs import DDB_RRU_PER_M, DDB_WRU_PER_M, LAMBDA_GB_SECOND, LAMBDA_PER_M
from tools.bench.meter import CallCost, DynamoMeter, settle_writes

CUSTOMERS = int(os.environ.get("BENCH_CAMPAIGN_CUSTOMERS", "10000"))
SIZES = (10_000, 100_000, 1_000_000)
CONTROL_PERCENT = 10
SES_PER_1000 = 0.10  # emails
SFN_PER_1000 = 0.025  # standard workflow state transitions
S3_PUT_PER_1000 = 0.005
S3_GET_PER_1000 = 0.0004
PARENT_TRANSITIONS = 5  # Prepare, Batches, Finish, Succeeded?, RunSucceeded
BATCH_MEMORY_MB = next(j.memory_mb for j in JOBS if j.name == CAMPAIGN_RUN.batch)
TARGET_MINUTES = 15
# Assumed, not measured here: a Distributed Map child execution's start and the first wave's cold
# starts, per batch (the local emulator's overhead says nothing about AWS's).
CHILD_OVERHEAD_S = 0.5


class OneCampaign:
    def __init__(self, campaign: Campaign) -> None:
        self._campaign = campaign

    def get(self, campaign_id: str) -> Campaign:
        return self._campaign

    def triggered(self) -> list[Campaign]:
        return []


@dataclass(frozen=True)
class RunFigures:
    customers: int
    batches: int
    control: int
    actioned: int
    seconds: float
    cpu_seconds: float
    cost: CallCost

    @property
    def per_second(self) -> float:
        return self.customers / self.seconds

    @property
    def round_trips(self) -> float:
        return self.cost.calls / self.customers

    @property
    def aws_ms_per_customer(self) -> float:
        """A customer's share of a batch on AWS: its CPU here plus 5 ms a DynamoDB round trip."""
        return self.cpu_seconds * 1000 / self.customers + RT_LATENCY_MS * self.round_trips

    @property
    def transitions_per_customer(self) -> float:
        return (PARENT_TRANSITIONS + self.batches) / self.customers

    def per_1000_actioned(self) -> dict[str, float]:
        """Dollars per 1,000 customers actioned (the control group's and every batch's share
        included), at list prices."""
        scale = 1000 / self.actioned
        dynamodb = (self.cost.wcu_estimate * DDB_WRU_PER_M + self.cost.rcu_estimate * DDB_RRU_PER_M) / 1e6
        billed_s = self.aws_ms_per_customer / 1000 * self.customers
        lambda_ = (
            self.batches + 2
        ) * LAMBDA_PER_M / 1e6 + BATCH_MEMORY_MB / 1024 * billed_s * LAMBDA_GB_SECOND
        transitions = PARENT_TRANSITIONS + self.batches
        step_functions = transitions * SFN_PER_1000 / 1000
        s3 = (self.batches + 1) * S3_PUT_PER_1000 / 1000 + (self.batches + 1) * S3_GET_PER_1000 / 1000
        return {
            "dynamodb": dynamodb * scale,
            "lambda": lambda_ * scale,
            "step functions": step_functions * scale,
            "s3": s3 * scale,
        }


def _seed(container: Container, run: str, count: int, segment_id: str) -> list[str]:
    raw = container.table._client  # the set-up writes past the meter
    at = datetime.now(UTC)
    ids, batch = [], []
    for n in range(count):
        cid = f"C{run}{n:07d}"
        ids.append(cid)
        customer = Customer(
            customer_id=cid,
            member=True,
            status=CustomerStatus.ACTIVE,
            profile=Profile(first_name="Ann"),
            consents=Consents(email=True),
            links=(Link("email", f"{cid.lower()}@example.com"),),
            created_at=at,
        )
        member = {"pk": members_pk(segment_id, cid), "sk": f"CUST#{cid}", "type": "segment_member",
                  "segment_id": segment_id, "customer_id": cid, "entered_at": at.isoformat()}  # fmt: skip
        for item in (customer_to_item(customer), member):
            batch.append({"PutRequest": {"Item": serialize(item)}})
            if len(batch) == 25:
                _write(raw, container.table.name, batch)
                batch = []
    if batch:
        _write(raw, container.table.name, batch)
    return ids


def _write(raw: Any, table: str, batch: list[dict[str, Any]]) -> None:
    pending = {table: batch}
    while pending:
        pending = raw.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def _campaign(container: Container, run: str, segment_id: str) -> Campaign:
    offer_id, template_id = f"bench-{run}", f"bench-{run}"
    container.offers.create_offer(
        Offer.model_validate(
            {
                "offer_id": offer_id,
                "name": "bench coupon",
                "requires_coupon": True,
                "effect": {"type": "percent_off", "value": "10"},
            }
        )
    )
    body = "Hello {{ first_name }}, your code {{ coupon.code }}. Unsubscribe: {{ unsubscribe_url }}"
    container.templates.put(Template(template_id, Channel.EMAIL, body, subject="For you"))
    now = container.clock.now()
    return Campaign.model_validate(
        {
            "campaign_id": f"bench-{run}",
            "name": "bench",
            "trigger": {"type": "manual"},
            "audience": {"segment_id": segment_id},
            "actions": [
                {"type": "coupon", "offer_id": offer_id},
                {"type": "message", "template_id": template_id},
            ],
            "control_group": {"percent": CONTROL_PERCENT},
            "status": "active",
            "created_at": now,
            "updated_at": now,
        }
    )


def measure(runtime: LocalRuntime, customers: int = CUSTOMERS) -> RunFigures:
    container = runtime.container
    assert container is not None
    assert runtime.resources is not None
    logging.getLogger("loyalty").setLevel(logging.WARNING)
    run = uuid.uuid4().hex[:6]
    segment_id = f"bench-{run}"
    with bound_container(container):
        _seed(container, run, customers, segment_id)
        campaign = _campaign(container, run, segment_id)
        records = DynamoRunRecords(container.table)
        workflow = CampaignRuns(
            catalogue=OneCampaign(campaign),
            actor=container.campaign_actor,
            audience=SegmentMembers(container.table),
            files=S3RunFiles(container.client("s3"), runtime.resources.campaign_runs_bucket),
            ledger=DynamoRunLedger(container.table),
            records=records,
            clock=container.clock,
            batch_size=CAMPAIGN_RUN.batch_size,
        )
        ref = RunRef(campaign.campaign_id, f"run-{run}")
        records.create(
            CampaignRun(ref.campaign_id, ref.run_id, "running", "manual", 1,
                        execution_name(ref.campaign_id, ref.run_id, 1), container.clock.now().isoformat())
        )  # fmt: skip
        meter = DynamoMeter()
        meter.attach(container.table._client)
        cost = meter.start()
        started, cpu = time.perf_counter(), time.process_time()
        prepared = workflow.prepare(ref)
        for entry in S3RunFiles(container.client("s3"), runtime.resources.campaign_runs_bucket).get_json(
            prepared.manifest_key
        ):
            workflow.apply_batch(ref, int(entry["batch"]), str(entry["key"]))
        summary = workflow.finish(ref, prepared, None)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        meter.stop()
        settle_writes(cost, container.table._client)
    assert summary.status == "succeeded", summary
    counts = summary.counts
    assert counts.control + counts.actioned == customers, counts
    return RunFigures(
        customers, prepared.batches, counts.control, counts.actioned, seconds, cpu_seconds, cost
    )


def print_figures(f: RunFigures) -> None:
    size = CAMPAIGN_RUN.batch_size
    print(
        f"Campaign run (issue 19): a manual run over {f.customers:,} customers, a coupon and an email,"
        f" {CONTROL_PERCENT}% control; Prepare, {f.batches:,} batches of {size} and Finish in one lane"
        " (the real CampaignActor; DynamoDB Local)"
    )
    print(
        f"  {f.seconds:.1f} s, {f.per_second:,.0f} customers/s in one lane here;"
        f" {f.actioned:,} actioned, {f.control:,} held out (counts checked)"
    )
    print(
        f"  DynamoDB: {f.cost.reads:,} reads + {f.cost.writes:,} writes = {f.round_trips:.2f} round trips"
        f" per customer; {f.cost.rcu_estimate / f.customers:.2f} RCU* and"
        f" {f.cost.wcu_estimate / f.customers:.2f} WCU* per customer"
    )
    print(
        f"  Step Functions: {PARENT_TRANSITIONS} + {f.batches:,} state transitions ="
        f" {f.transitions_per_customer:.3f} per customer (one Batch state per child execution; a retry"
        " adds one)"
    )
    costs = f.per_1000_actioned()
    total = sum(costs.values())
    parts = " + ".join(f"{k} {v:.4f}" for k, v in costs.items())
    print(f"  Per 1,000 customers actioned on AWS: ${total:.4f} = {parts}")
    print(
        f"  Beside it: SES ${SES_PER_1000:.2f} per 1,000 emails (this campaign's email: +${SES_PER_1000:.2f}"
        f" per 1,000 actioned); Step Functions standard ${SFN_PER_1000:.3f} per 1,000 state transitions"
    )
    per_batch_s = f.aws_ms_per_customer * size / 1000
    for n in SIZES:
        measured = " (measured)" if n == f.customers else " (arithmetic from the measured run)"
        batches = math.ceil(n / size)
        waves = math.ceil(batches / CAMPAIGN_RUN.max_concurrency)
        aws_minutes = waves * (per_batch_s + CHILD_OVERHEAD_S) / 60
        print(
            f"  {n:>9,} customers: ~{n / f.per_second / 60:.1f} min in one lane here{measured};"
            f" on AWS {batches:,} batches / MaxConcurrency {CAMPAIGN_RUN.max_concurrency} = {waves:,}"
            f" waves x ({per_batch_s:.1f} s a batch + {CHILD_OVERHEAD_S} s assumed to start it)"
            f" = ~{aws_minutes:.1f} min"
            f" (target for 1,000,000: {TARGET_MINUTES} min)"
        )
    print(
        f"  A batch on AWS: {f.aws_ms_per_customer:.1f} ms a customer = its CPU here"
        f" ({f.cpu_seconds * 1000 / f.customers:.1f} ms) + {RT_LATENCY_MS:.0f} ms x"
        f" {f.round_trips:.2f} round trips; docs/campaigns/runs.md has the arithmetic and its limits"
    )


if __name__ == "__main__":
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    runtime = LocalRuntime(background_jobs=False).start(with_gateway=False)
    try:
        print_figures(measure(runtime))
    finally:
        runtime.stop()
