"""Bench scenarios for customer events (issue 15): a 100-event batch of known customers, a mix of
types, and what one event costs (round trips per batch, WCU per event, $ per million events)."""

from __future__ import annotations

import json
import statistics
import uuid
from typing import Any

from tools.bench.base import BenchBase
from tools.bench.costs import cost_of
from tools.bench.report import mark
from tools.bench.scenario import Call, Result, Scenario, Target, percentile

EVENTS_PER_BATCH = 100
EVENTS_BATCH = "events (100)"
EVENTS_TARGET_USD = 5.0  # per million events (issue 15)
# At most 2 write round trips for a batch without duplicates; reads: the events already stored and
# the links and profiles named (one BatchGetItem of up to 100 keys each).
EVENTS_TARGET = Target("<=2 write RTs", lambda reads, writes: writes <= 2)


def _properties(n: int) -> tuple[str, dict[str, Any]]:
    """A mix of the known types (and one custom type), as a web shop and an app send them."""
    kinds: list[tuple[str, dict[str, Any]]] = [
        ("product_view", {"sku": f"SKU{n % 40}", "category": "coffee"}),
        ("site_visit", {"url": f"https://shop.example/p/{n}", "referrer": "https://search.example/"}),
        ("cart_add", {"sku": f"SKU{n % 40}", "category": "bakery", "quantity": "1", "unit_price": "2.40"}),
        ("product_view", {"sku": f"SKU{n % 17}", "category": "dairy"}),
        ("email_open", {"message_id": f"M{n % 9}"}),
        ("review", {"sku": f"SKU{n % 40}", "rating": 1 + n % 5, "text": "Good coffee, friendly staff."}),
        ("app_install", {"platform": "ios" if n % 2 else "android"}),
        ("wishlist_add", {"sku": f"SKU{n % 40}", "list": "birthday"}),
        ("store_visit", {}),
        ("email_click", {"message_id": f"M{n % 9}", "link": "offer"}),
    ]
    return kinds[n % len(kinds)]


class EventBench(BenchBase):
    def event_batch(self, i: int) -> dict[str, Any]:
        """100 new events by known members, most by customer_id, one in ten by card link."""
        events = []
        for n in range(EVENTS_PER_BATCH):
            customer = self.customers[(i * EVENTS_PER_BATCH + n) % len(self.customers)]
            who: dict[str, Any] = (
                {"link": {"type": "card", "value": str(customer["card"])}}
                if n % 10 == 9
                else {"customer_id": str(customer["customer_id"])}
            )
            type_, properties = _properties(n)
            events.append(
                {
                    "event_id": f"bench-{self.run}-{i}-{n}-{uuid.uuid4().hex[:6]}",
                    "type": type_,
                    "store_id": "web-nl",
                    "occurred_at": self.occurred_at,
                    "customer": who,
                    "properties": properties,
                }
            )
        return {"events": events}

    def event_scenarios(self) -> list[Scenario]:
        def all_kept(i: int, body: dict[str, Any]) -> str | None:
            met = body.get("accepted") == EVENTS_PER_BATCH and not body.get("rejected")
            return None if met else f"not all kept: {json.dumps(body)[:300]}"

        return [
            Scenario(
                EVENTS_BATCH,
                "POST",
                "/v1/events",
                202,
                lambda i: Call("local-web-key", body=self.event_batch(i)),
                EVENTS_TARGET,
                f"{EVENTS_PER_BATCH} events of known members (9 in 10 by id, 1 by card), 10 types",
                after=all_kept,
            )
        ]


def print_events(results: list[Result], authorizer_total: float) -> None:
    batch = next((r for r in results if r.name == EVENTS_BATCH), None)
    print(f"Customer events (issue 15): a {EVENTS_PER_BATCH}-event batch of known customers, mixed types")
    if batch is None or not batch.costs:
        print("  no batch completed")
        return
    n = EVENTS_PER_BATCH
    reads = statistics.fmean(c.reads for c in batch.costs)
    writes = statistics.fmean(c.writes for c in batch.costs)
    shapes: dict[str, int] = {}
    for c in batch.costs:
        shape = " > ".join(c.ops)
        shapes[shape] = shapes.get(shape, 0) + 1
    common = max(shapes.items(), key=lambda kv: kv[1])[0]
    print(
        f"  round trips per batch   {reads:g} read, {writes:g} write ({common})   "
        f"{mark(writes <= 2)} target: at most 2 write round trips"
    )
    wcu = statistics.fmean(c.wcu_estimate for c in batch.costs) / n
    rcu = statistics.fmean(c.rcu_estimate for c in batch.costs) / n
    sizes = [p.size for c in batch.costs for p in c.priced if p.kind.startswith("EVENT")]
    size = statistics.fmean(sizes) if sizes else 0.0
    print(
        f"  capacity per event      WCU* {wcu:.2f} (item {size:,.0f} B in a transaction, and its gsi3 copy), "
        f"RCU* {rcu:.2f}"
    )
    print(
        f"  handler time per batch  p50 {percentile(batch.samples_ms, 50):.1f} ms, "
        f"p99 {percentile(batch.samples_ms, 99):.1f} ms"
    )
    cost = cost_of(batch)
    per_event = (cost.total + authorizer_total) / n
    print(
        f"  cost per million events ${per_event:.2f} (API Gateway {cost.gateway / n:.3f}, Lambda "
        f"{cost.lambda_ / n:.3f}, DynamoDB {cost.dynamodb / n:.2f}, EventBridge {cost.eventbridge / n:.2f}, "
        f"authorizer {authorizer_total / n:.3f})   {mark(per_event <= EVENTS_TARGET_USD)} "
        f"target: at most ${EVENTS_TARGET_USD:g}"
    )
    print("    (reading the stream is free; the publisher's Lambda time per 100-record batch is not counted)")
