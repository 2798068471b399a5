"""Facts for the segment rule tests: one customer with something at every path."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from loyalty.domain.customers import Consents, Customer, CustomerStatus, PointsSummary, Profile, Stats
from loyalty.domain.scores import Scores
from loyalty.domain.segments import CustomerFacts, EventFact, LineFact, PurchaseFact

NOW = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)  # 12:00 in Amsterdam
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def sale(when: str, store: str, channel: str, fmt: str, *lines: tuple[str, str | None, str]) -> PurchaseFact:
    return PurchaseFact(
        occurred_at=at(when),
        type="sale",
        store_id=store,
        channel=channel,
        store_attributes={"format": fmt},
        lines=tuple(LineFact(sku, category, Decimal(amount)) for sku, category, amount in lines),
    )


ANN = Customer(
    customer_id="ann",
    member=True,
    status=CustomerStatus.ACTIVE,
    profile=Profile(
        first_name="Ann",
        birthday=date(1990, 6, 20),
        country="NL",
        attributes={
            "favourite": "espresso",
            "kids": 2,
            "since": "2024-03-01",
            "last_visit": "2026-06-14T10:00:00Z",
            "tags": ["vegan", "early"],
            "pet": {"kind": "dog"},
            "spend_goal": "50.00",
            "newsletter": True,
        },
    ),
    consents=Consents(email=True, sms=False, mail=False),
    links=(),
    created_at=at("2025-01-10T08:00:00Z"),
    enrolled_at=at("2026-06-01T09:00:00Z"),
    points=PointsSummary(available=1200, pending=50, lifetime=5000),
    stats=Stats(
        transactions=12,
        spend=Decimal("345.60"),
        first_purchase_at=at("2025-02-01T10:00:00Z"),
        last_purchase_at=at("2026-06-10T10:00:00Z"),
    ),
    price_groups=frozenset({"staff"}),
    badges={"first-sale": at("2025-02-01T10:00:00Z")},
)

PURCHASES = (
    sale("2026-06-14T10:00:00Z", "s1", "pos", "big", ("c1", "coffee", "4.50"), ("t1", "tea", "3.00")),
    sale("2026-06-01T10:00:00Z", "s2", "online", "small", ("c2", "coffee", "12.00")),
    replace(
        sale("2026-06-05T10:00:00Z", "s1", "pos", "big", ("c2", "coffee", "2.00")),
        type="return",
    ),
    sale("2026-03-01T10:00:00Z", "s1", "pos", "big", ("c1", "coffee", "20.00")),
)

EVENTS = (
    EventFact(at("2026-06-15T09:59:00Z"), "viewed", {"sku": "c1", "n": 2}),
    EventFact(at("2026-06-14T12:00:00Z"), "viewed", {"sku": "t1"}),
    EventFact(at("2026-05-01T12:00:00Z"), "clicked", {}),
)

FACTS = CustomerFacts(
    customer=ANN,
    tier="gold",
    scores=Scores(r=5, f=4, m=3, computed_at=at("2026-06-15T02:00:00Z")),
    purchases=PURCHASES,
    events=EVENTS,
    timezone=AMSTERDAM,
)
