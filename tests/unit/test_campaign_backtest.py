"""The backtest over a generated population (tests.unit.test_segment_sql's world): who the segment
held as of a past date, as the domain evaluator decides it over the facts known then; the control
split as loyalty.domain.campaigns.in_control decides it; and how they bought afterwards.

The world's profiles were first written three days before NOW without consents, then rewritten a
day before NOW with them: as of two days before NOW the lake must answer with the first version.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
import sqlglot

from loyalty.adapters.lake import FolderLake
from loyalty.adapters.transactions import transaction_to_item
from loyalty.domain.campaigns import in_control
from loyalty.domain.customers import Consents, Customer, CustomerStatus
from loyalty.domain.errors import ValidationFailed
from loyalty.domain.segments import CustomerFacts, LineFact, Node, PurchaseFact, evaluate, parse_rule
from loyalty.domain.tiers import effective_tier
from loyalty.services import segment_sql
from loyalty.services.campaign_reports import CampaignReports
from loyalty.services.lake import LakeWriter, StreamChange
from tests.unit.test_campaign_reports import Catalogue, Clock, Rules, campaign
from tests.unit.test_segment_sql import NOW, STORES, World, make_purchase, random_rule

AS_OF = NOW - timedelta(days=2)
WINDOW = 2  # days: up to NOW, the clock's now


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The segment tests' world, and 150 more sales and returns in the days after AS_OF (written
    when they occurred), so the backtest's buying figures have something to count."""
    world = World(seed=17, size=80, root=tmp_path_factory.mktemp("lake"))
    rng = random.Random(29)
    changes = []
    ids = sorted(world.customers)
    for index in range(150):
        owner = rng.choice(ids)
        when = AS_OF + timedelta(seconds=rng.randint(-3600, WINDOW * 86400 - 1))
        record = replace(make_purchase(rng, 10_000 + index, owner), occurred_at=when, recorded_at=when)
        item = transaction_to_item(record)
        keys = {"pk": item["pk"], "sk": item["sk"]}
        changes.append(StreamChange("INSERT", keys, item, None, str(1_000_000 + index), when))
        channel, attributes = STORES[record.store_id]
        lines = tuple(LineFact(rl.line.sku, rl.line.category, rl.line.amount) for rl in record.lines)
        world.purchases[owner].append(
            PurchaseFact(when, record.type.value, record.store_id, channel, attributes, lines)  # type: ignore[arg-type]
        )
    LakeWriter(files=FolderLake(root=world.root)).write(changes)
    return world


def as_it_was(world: World, customer: Customer, as_of: datetime) -> CustomerFacts | None:
    """The customer's facts as the table held them at `as_of` (None: not written yet)."""
    if as_of < NOW - timedelta(days=3):
        return None
    if as_of < NOW - timedelta(days=1):
        customer = replace(customer, consents=Consents(), version=1)
    zone = customer.profile.timezone or world.programme.messaging.default_timezone
    return CustomerFacts(
        customer=customer,
        tier=effective_tier(customer, world.programme, as_of),
        scores=customer.scores,
        purchases=tuple(p for p in world.purchases[customer.customer_id] if p.occurred_at <= as_of),
        events=tuple(e for e in world.events[customer.customer_id] if e.occurred_at <= as_of),
        timezone=ZoneInfo(zone),
    )


def by_domain(world: World, rule: Node | None, as_of: datetime) -> set[str]:
    found = set()
    for customer in world.customers.values():
        facts = as_it_was(world, customer, as_of)
        if facts is None or customer.status is not CustomerStatus.ACTIVE:
            continue
        if rule is None or evaluate(rule, facts, as_of).matches:
            found.add(customer.customer_id)
    return found


def by_sql(world: World, rule: Node | None, as_of: datetime) -> set[str]:
    statement = segment_sql.members(rule, as_of, world.programme, None, as_of=True)
    sqlglot.parse_one(statement, read="trino")
    return {r["customer_id"] for r in world.queries.run(segment_sql.render(statement, "duckdb"))}


def service(world: World, raw_rule: object, percent: int, members_only: bool = False) -> CampaignReports:
    definition = campaign(
        control_group={"percent": percent}, audience={"segment_id": "s", "members_only": members_only}
    )
    return CampaignReports(
        queries=world.queries,
        campaigns=Catalogue({"spring": definition}),
        segments=Rules({"s": raw_rule}),
        programme=lambda: world.programme,
        clock=Clock(NOW),
    )


def bought(world: World, ids: set[str], start: datetime, days: int) -> tuple[int, Decimal]:
    """How many of them made a sale in [start, start + days), and their revenue net of returns."""
    until = start + timedelta(days=days)
    converted, revenue = 0, Decimal("0.00")
    for customer_id in ids:
        window = [p for p in world.purchases[customer_id] if start <= p.occurred_at < until]
        converted += any(p.type == "sale" for p in window)
        for p in window:
            amount = sum((line.amount for line in p.lines), Decimal("0.00"))
            revenue += -amount if p.type == "return" else amount
    return converted, revenue


@pytest.mark.parametrize("seed", range(3))
def test_the_segment_as_of_a_past_date_agrees_with_the_domain_over_the_facts_known_then(
    world: World, seed: int
) -> None:
    rng = random.Random(seed)
    checked = 0
    while checked < 20:
        try:
            rule = parse_rule(random_rule(rng))
        except ValidationFailed:
            continue
        as_of = rng.choice([AS_OF, NOW - timedelta(hours=30), NOW - timedelta(days=5)])
        assert by_sql(world, rule, as_of) == by_domain(world, rule, as_of)
        checked += 1


def test_history_is_read_not_the_current_state(world: World) -> None:
    consented = parse_rule({"attr": "consents.email", "eq": True})
    now_members, then_members = by_sql(world, consented, NOW), by_sql(world, consented, AS_OF)
    assert now_members == by_domain(world, consented, NOW) and len(now_members) > 5
    assert then_members == by_domain(world, consented, AS_OF) == set()  # no consent yet then
    assert by_sql(world, None, NOW - timedelta(days=5)) == set()  # nobody had been written


@pytest.mark.parametrize("percent", [0, 30, 90])
def test_the_backtest_splits_by_the_control_hash_and_counts_what_they_bought(
    world: World, percent: int
) -> None:
    raw = {"any": [{"purchased": {"within": "P90D"}}, {"attr": "member", "eq": True}]}
    got = service(world, raw, percent).backtest("spring", AS_OF, WINDOW)
    audience = by_domain(world, parse_rule(raw), AS_OF)
    control = {c for c in audience if in_control("spring", c, percent)}
    treatment = audience - control
    assert got.audience == len(audience) > 20
    assert (got.control.customers, got.treatment.customers) == (len(control), len(treatment))
    assert (got.control.converted, got.control.revenue) == bought(world, control, AS_OF, WINDOW)
    assert (got.treatment.converted, got.treatment.revenue) == bought(world, treatment, AS_OF, WINDOW)
    assert got.segment_id == "s" and got.window_days == WINDOW
    if percent == 30:
        assert 0 < len(control) < len(treatment)
        assert got.control.converted > 0 and got.treatment.converted > 0  # not agreement by emptiness


def test_a_backtest_before_anyone_was_written_reaches_nobody(world: World) -> None:
    reports = service(world, {"attr": "member", "eq": True}, 50)
    got = reports.backtest("spring", NOW - timedelta(days=35), 30)
    assert (got.audience, got.treatment.customers, got.control.customers) == (0, 0, 0)
    assert got.treatment.conversion_rate is None and got.treatment.revenue == Decimal("0.00")


def test_members_only_keeps_the_members(world: World) -> None:
    got = service(world, {"purchased": {"within": "P1Y"}}, 20, members_only=True).backtest(
        "spring", AS_OF, WINDOW
    )
    audience = {
        c
        for c in by_domain(world, parse_rule({"purchased": {"within": "P1Y"}}), AS_OF)
        if world.customers[c].member
    }
    assert got.audience == len(audience)


@pytest.mark.parametrize(
    ("as_of", "window", "field"),
    [
        (NOW + timedelta(minutes=1), 1, "as_of"),
        (NOW - timedelta(days=3), 4, "window_days"),
        (NOW - timedelta(days=30), 0, "window_days"),
        (NOW - timedelta(days=900), 366, "window_days"),
    ],
)
def test_a_future_as_of_or_a_window_not_yet_passed_is_refused_naming_the_field(
    world: World, as_of: datetime, window: int, field: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        service(world, {"attr": "member", "eq": True}, 10).backtest("spring", as_of, window)
    assert refused.value.errors[0].loc == ("body", field)


def test_the_control_bucket_in_sql_is_in_control_in_python(tmp_path: Path) -> None:
    """The hash the backtest computes in SQL against loyalty.domain.campaigns.in_control: DuckDB
    runs it; the Trino spelling is the same arithmetic over Trino's functions (parsed here)."""
    rng = random.Random(5)
    ids = [str(uuid.uuid4()) for _ in range(1500)] + ["01J0ABCDEF", "x", "ü-ñ"]
    campaigns = ["spring", "win-back.2026", "A_b"]
    rows = ", ".join(f"({segment_sql.lit(c)}, {segment_sql.lit(i)})" for c in campaigns for i in ids)
    statement = (
        "SELECT c, i, control_bucket(concat('control', chr(10), c, chr(10), i)) AS bucket "
        f"FROM (VALUES {rows}) AS v (c, i)"
    )
    assert "from_base" in segment_sql.render(statement, "trino").lower()
    got = duckdb.sql(segment_sql.render(statement, "duckdb")).fetchall()
    assert len(got) == len(campaigns) * len(ids)
    for campaign_id, customer_id, bucket in got:
        for percent in (rng.randint(1, 90), 10, 50):
            assert (bucket < percent * 100) == in_control(campaign_id, customer_id, percent), (
                campaign_id, customer_id,
            )  # fmt: skip
