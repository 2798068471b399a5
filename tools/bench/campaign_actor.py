"""The CampaignActor (issue 19): what actioning one customer costs, in DynamoDB round trips and
capacity, and in dollars per 1,000 customers actioned on AWS.

Run on its own with ``.venv/bin/python -m tools.bench.campaign_actor`` (it starts its own DynamoDB
Local and moto), or as a section of ``make bench``. The campaign-run bench (tools/bench/campaigns.py)
reuses ``meter_acts`` and ``print_figures`` for its per-customer rows.

Set-up (unmetered): CUSTOMERS members with an email address and consent, an offer, an email template.
Metered, one ``act`` at a time through the container's client with the bench's DynamoMeter:

- a coupon and an email (a campaign without limits: no counter);
- a coupon, points, promotional cash and an email, with a budget (the SPENT counter in the transaction);
- the same customers again on the same occasion (every one a retry: recorded, nothing written);
- the dry run (``evaluate``) of a new occasion over the same customers: reads only.

Reported per customer: round trips (reads / writes), RCU and WCU by DynamoDB's rules, handler time,
and per 1,000 customers actioned: DynamoDB (on-demand), Lambda (the campaign-batch function's memory,
billed time plus a round trip's latency per call); SES ($0.10 per 1,000 emails) and Step Functions
($0.025 per 1,000 state transitions) are printed beside, not added.
"""

from __future__ import annotations

import logging
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loyalty.bootstrap import Container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.campaigns import Campaign, Occasion
from loyalty.domain.customers import Consents, Profile
from loyalty.domain.offers import Offer
from loyalty.domain.templates import Channel, Template
from loyalty.resources import JOBS
from loyalty.services.campaign_ports import CampaignActor
from loyalty.services.customers import EnrolCommand, RawLink
from loyalty.settings import Settings
from loyalty_local.emulators import REGION
from loyalty_local.runtime import LocalRuntime
from tools.bench.config import RT_LATENCY_MS
from tools.bench.costs import DDB_RRU_PER_M, DDB_WRU_PER_M, LAMBDA_GB_SECOND
from tools.bench.meter import CallCost, DynamoMeter, settle_writes

CUSTOMERS = 50
POS = Principal("bench-pos", KeyKind.POS, "ams-01")
MEMORY_MB = next(j.memory_mb for j in JOBS if j.name == "campaign-batch")
SES_PER_1000 = 0.10
SFN_PER_1000_TRANSITIONS = 0.025


@dataclass
class ActorFigures:
    """What `customers` calls of act (or one evaluate) cost, one CallCost per customer."""

    name: str
    customers: int
    outcomes: Counter[str] = field(default_factory=Counter)
    costs: list[CallCost] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def actioned(self) -> int:
        """Customers actioned by these calls (a retry's recorded outcome counts: it is what the
        call answered, and what a redriven batch pays for)."""
        return self.outcomes.get("actioned", 0) + self.outcomes.get("recorded", 0)

    def per_customer(self, attribute: str) -> float:
        return sum(float(getattr(c, attribute)) for c in self.costs) / max(self.customers, 1)

    def per_actioned(self, attribute: str) -> float:
        """Per customer actioned (the whole cost, skips and control included, over those actioned)."""
        return sum(float(getattr(c, attribute)) for c in self.costs) / max(self.actioned, 1)

    def billed_ms_per_customer(self) -> float:
        return self.seconds * 1000 / max(self.customers, 1) + RT_LATENCY_MS * self.per_customer("calls")

    def dollars_per_1000_actioned(self) -> dict[str, float]:
        per = 1000 / max(self.actioned, 1) * self.customers  # customers handled per 1,000 actioned
        dynamo = (
            self.per_customer("wcu_estimate") * DDB_WRU_PER_M
            + self.per_customer("rcu_estimate") * DDB_RRU_PER_M
        ) / 1e6
        # One Lambda request per batch is the run's business; here: the GB-seconds of the work.
        gb_seconds = MEMORY_MB / 1024 * self.billed_ms_per_customer() / 1000
        return {"dynamodb": per * dynamo, "lambda": per * gb_seconds * LAMBDA_GB_SECOND}


def meter_acts(
    actor: CampaignActor,
    campaign: Campaign,
    occasion: Occasion,
    customer_ids: Sequence[str],
    meter: DynamoMeter,
    raw_client: Any,
    name: str | None = None,
) -> ActorFigures:
    """Act on each customer in turn, each call metered on its own, writes priced afterwards."""
    figures = ActorFigures(name or campaign.name, len(customer_ids))
    for customer_id in customer_ids:
        cost = meter.start()
        started = time.perf_counter()
        result = actor.act(campaign, occasion, customer_id)
        figures.seconds += time.perf_counter() - started
        meter.stop()
        figures.costs.append(cost)
        figures.outcomes[result.reason or (result.outcome if result.first_time else "recorded")] += 1
    for cost in figures.costs:
        settle_writes(cost, raw_client)
    return figures


def meter_evaluate(
    actor: CampaignActor,
    campaign: Campaign,
    occasion: Occasion,
    customer_ids: Sequence[str],
    meter: DynamoMeter,
    name: str = "dry run (evaluate)",
) -> ActorFigures:
    figures = ActorFigures(name, len(customer_ids))
    cost = meter.start()
    started = time.perf_counter()
    results = actor.evaluate(campaign, occasion, customer_ids)
    figures.seconds = time.perf_counter() - started
    meter.stop()
    figures.costs.append(cost)
    figures.outcomes.update(r.reason or r.outcome for r in results)
    return figures


class ActorBench:
    def __init__(self) -> None:
        import boto3

        self.session = boto3.session.Session(region_name=REGION)
        self.container = Container(Settings.from_env(), session=self.session)
        self.meter = DynamoMeter()
        self.meter.attach(self.container.table._client)
        self.raw = self.session.client("dynamodb")
        self.run = uuid.uuid4().hex[:8]

    def set_up(self, customers: int) -> tuple[list[str], str, str]:
        c = self.container
        offer_id = f"bench-offer-{self.run}"
        c.offers.create_offer(
            Offer.model_validate(
                {
                    "offer_id": offer_id,
                    "name": "bench coupon",
                    "requires_coupon": True,
                    "effect": {"type": "percent_off", "value": "10"},
                }
            )
        )
        template_id = f"bench-t-{self.run}"
        c.templates.put(
            Template(
                template_id,
                Channel.EMAIL,
                "Your code {{ coupon.code }}, {{ campaign.points }} points. {{ unsubscribe_url }}",
                subject="A gift",
            )
        )
        ids = [
            c.customers.enrol(
                EnrolCommand(
                    [RawLink("email", f"bench-{self.run}-{n}@example.com")],
                    Profile(first_name="Bench"),
                    Consents(email=True),
                    True,
                    None,
                ),
                POS,
            ).customer.customer_id
            for n in range(customers)
        ]
        return ids, offer_id, template_id

    def campaign(self, name: str, actions: list[dict[str, Any]], **fields: Any) -> Campaign:
        now = datetime.now(UTC)
        return Campaign.model_validate(
            {
                "campaign_id": f"bench-{name}-{self.run}",
                "name": name,
                "trigger": {"type": "manual"},
                "actions": actions,
                "status": "active",
                "created_at": now,
                "updated_at": now,
                **fields,
            }
        )


def measure(runtime: LocalRuntime | None = None, customers: int = CUSTOMERS) -> list[ActorFigures]:
    logging.getLogger("loyalty").setLevel(logging.WARNING)
    bench = ActorBench()
    ids, offer_id, template_id = bench.set_up(customers)
    actor = bench.container.campaign_actor
    plain = bench.campaign(
        "coupon-email",
        [{"type": "coupon", "offer_id": offer_id}, {"type": "message", "template_id": template_id}],
    )
    rich = bench.campaign(
        "four-actions-budget",
        [
            {"type": "coupon", "offer_id": offer_id},
            {"type": "points", "points": 100},
            {"type": "promo_cash", "amount": "5.00"},
            {"type": "message", "template_id": template_id},
        ],
        limits={"budget": {"points": 100 * customers * 10}},
    )
    run = Occasion(f"run:{bench.run}", bench.run)
    actor.act(plain, Occasion("warm-up"), ids[0])  # caches the template's channel and the offer
    actor.act(rich, Occasion("warm-up"), ids[0])
    return [
        meter_acts(actor, plain, run, ids[1:], bench.meter, bench.raw, "coupon + email"),
        meter_acts(actor, rich, run, ids[1:], bench.meter, bench.raw, "coupon+points+cash+email, budget"),
        meter_acts(actor, rich, run, ids[1:], bench.meter, bench.raw, "the same again (retries)"),
        meter_evaluate(actor, rich, Occasion(f"dry:{bench.run}"), ids[1:], bench.meter),
    ]


def print_figures(figures: list[ActorFigures]) -> None:
    print("Campaign actor: one customer on one occasion, through container.campaign_actor (act / evaluate)")
    print(
        f"  {'case':<34} {'n':>4} {'RT/cust':>7} {'reads':>5} {'writes':>6} {'RCU*/act':>8} {'WCU*/act':>8}"
        f" {'ms/cust':>7} {'$/1k actioned':>13}  (dynamodb + lambda)  outcomes"
    )
    for f in figures:
        dollars = f.dollars_per_1000_actioned()
        shown = f"{sum(dollars.values()):>13.4f}" if f.actioned else f"{'-':>13}"
        print(
            f"  {f.name:<34} {f.customers:>4} {f.per_customer('calls'):>7.2f}"
            f" {f.per_customer('reads'):>5.2f} {f.per_customer('writes'):>6.2f}"
            f" {f.per_actioned('rcu_estimate') if f.actioned else f.per_customer('rcu_estimate'):>8.2f}"
            f" {f.per_actioned('wcu_estimate') if f.actioned else f.per_customer('wcu_estimate'):>8.2f}"
            f" {f.seconds * 1000 / max(f.customers, 1):>7.2f} {shown}"
            f"  ({dollars['dynamodb']:.4f} + {dollars['lambda']:.4f})  {dict(f.outcomes)}"
        )
    writes = [p for f in figures[:2] for c in f.costs for p in c.priced]
    if writes:
        kinds = Counter(p.kind for p in writes)
        print(f"  items written per customer (first two cases): {dict(kinds)}")
        print(f"  median item size: {statistics.median(p.size for p in writes):.0f} B")
    print(
        f"  Beside: SES ${SES_PER_1000:.2f} per 1,000 emails; Step Functions"
        f" ${SFN_PER_1000_TRANSITIONS:.3f} per 1,000 state transitions. WCU* counts a transaction's"
        " items twice (DynamoDB's rule) and each index copy; RCU* a strongly consistent BatchGetItem of"
        " the profile, send log and receipt (and LAST with re-entry days)."
    )


if __name__ == "__main__":
    runtime = LocalRuntime(background_jobs=False).start(with_gateway=False)
    try:
        print_figures(measure(runtime))
    finally:
        runtime.stop()
