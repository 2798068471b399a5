"""The preview's SQL answers what the domain's evaluator answers.

A generated population (members, identified non-members, erased and merged profiles, double
opt-ins pending; consents, links, addresses, birthdays on 29 February, time zones a day apart,
free attributes of every kind, price groups, badges, scores, tier months; sales and returns with
lines at stores with attributes, some deleted again; events with properties) is written through
the lake writer as stream records - profiles in several versions - and random rules over every
facet are answered twice: by `loyalty.domain.segments.evaluate` per customer, and by one
statement (parsed as Trino, rendered for DuckDB) over the lake. The member sets must be equal.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlglot

from loyalty.adapters.codec import customer_from_item, customer_to_item
from loyalty.adapters.customer_events import event_to_item
from loyalty.adapters.dynamo import deserialize, serialize
from loyalty.adapters.lake import FolderLake
from loyalty.adapters.lake_compaction import DuckDBParquetWork
from loyalty.adapters.report_queries import DuckDBQueries
from loyalty.adapters.transactions import transaction_to_item
from loyalty.domain.customer_events import CustomerEvent
from loyalty.domain.customers import (
    Address,
    Consents,
    Customer,
    CustomerStatus,
    PointsSummary,
    Profile,
    Stats,
)
from loyalty.domain.errors import ValidationFailed
from loyalty.domain.ledger import RecordedLine, TransactionRecord
from loyalty.domain.links import Link
from loyalty.domain.programme import default_programme
from loyalty.domain.sales import Line, SaleType
from loyalty.domain.scores import Scores
from loyalty.domain.segments import (
    CustomerFacts,
    EventFact,
    LineFact,
    Node,
    PurchaseFact,
    evaluate,
    parse_rule,
)
from loyalty.domain.tiers import effective_tier
from loyalty.services import segment_sql
from loyalty.services.compaction import LakeCompactor
from loyalty.services.lake import LakeWriter, StreamChange

NOW = datetime(2026, 12, 7, 23, 30, tzinfo=UTC)  # already 8 December east of UTC+1
ZONES = [None, "Europe/Amsterdam", "America/Los_Angeles", "Pacific/Kiritimati", "Asia/Tokyo"]
STORES = {
    "ams-01": ("pos", {"region": "north", "size": 3, "flagship": True}),
    "utr-02": ("pos", {"region": "south", "size": 3.0}),
    "web-nl": ("online", {"region": "north"}),
    "app-nl": ("app", {}),
}
SKUS = {"ESP": "coffee", "LAT": "coffee", "MUG": "gear", "BAG": None, "TEA": "tea"}
SCALARS: list[Any] = [
    0, 1, 2, 42, -3, 1.5, 2.0, "42", "042", "4.50", "abc", "Abc", "zeta", "", "a b",
    "2026-11-01T10:00:00Z", "2026-11-01T12:00:00+02:00", "2026-12-07T23:00:00Z", "2026-11-01",
    "1990-02-28", True, False,
]  # fmt: skip
OPERANDS: list[Any] = [s for s in SCALARS if s != ""]
ATTRIBUTE_NAMES = ["shoe", "level", "joined", "tags", "pref"]


def _attribute(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.7:
        return rng.choice(SCALARS)
    if roll < 0.85:
        return [rng.choice(SCALARS) for _ in range(rng.randint(0, 3))]
    return {"y": rng.choice(SCALARS), "z": {"w": rng.choice(SCALARS)}}


def _at(rng: random.Random, days: int = 400) -> datetime:
    return NOW - timedelta(seconds=rng.randint(-3600, days * 86400))


def make_customer(rng: random.Random, index: int) -> Customer:
    customer_id = f"C{index:03d}{rng.choice('ABCDEFGHJK')}"
    member = rng.random() < 0.7
    links: list[Link] = []
    if rng.random() < 0.7:
        links.append(Link("email", f"c{index}@example.com"))
    if rng.random() < 0.5:
        links.append(Link("phone", f"+3161234{index:04d}" if rng.random() < 0.8 else f"06123{index:04d}"))
    address = Address("Main 1", "Utrecht", "NL") if rng.random() < 0.4 else None
    birthday = None
    if rng.random() < 0.8:
        birthday = rng.choice(
            [
                date(1992, 2, 29),
                date(1990, 12, 8),
                date(1985, 12, 7),
                date(2010, 12, 31),
                date(2000, 1, 3),
                date(1970, 1, 1) + timedelta(days=rng.randint(0, 20000)),
            ]
        )
    attributes = {name: _attribute(rng) for name in ATTRIBUTE_NAMES if rng.random() < 0.6}
    months = {f"2026-{m:02d}": rng.choice([0, 50, 200, 600]) for m in range(1, 13) if rng.random() < 0.3}
    months |= {"2025-11": rng.choice([0, 700])}
    status = rng.choices(list(CustomerStatus), weights=[8, 1, 1])[0]
    created = _at(rng, 900)
    return Customer(
        customer_id=customer_id,
        member=member,
        status=status,
        profile=Profile(
            birthday=birthday,
            attributes=attributes,
            country=rng.choice([None, "NL", "BE", "DE"]),
            timezone=rng.choice(ZONES),
            address=address,
        ),
        consents=Consents(email=rng.random() < 0.6, sms=rng.random() < 0.5, mail=rng.random() < 0.5),
        links=tuple(links),
        created_at=created,
        enrolled_at=created + timedelta(days=rng.randint(0, 30)) if member else None,
        tier=rng.choice([None, "bronze", "gold"]),
        points=PointsSummary(rng.randint(0, 900), rng.randint(0, 50), rng.randint(0, 5000)),
        stats=Stats(
            rng.randint(0, 30),
            Decimal(rng.randint(0, 90000)) / 100,
            _at(rng) if rng.random() < 0.7 else None,
            _at(rng, 60) if rng.random() < 0.7 else None,
        ),
        merged_into="C999Z" if status is CustomerStatus.MERGED else None,
        earned_by_month=months,
        price_groups=frozenset(rng.sample(["staff", "vip", "student"], rng.randint(0, 2))),
        badges={b: _at(rng) for b in rng.sample(["first", "tenth", "eco"], rng.randint(0, 2))},
        confirm_by=NOW + timedelta(days=1) if not member and rng.random() < 0.2 else None,
        scores=Scores(rng.randint(1, 5), rng.randint(1, 5), rng.randint(1, 5), NOW)
        if rng.random() < 0.6
        else None,
    )


def make_purchase(rng: random.Random, index: int, customer_id: str | None) -> TransactionRecord:
    store_id = rng.choice(list(STORES))
    kind = SaleType.RETURN if rng.random() < 0.2 else SaleType.SALE
    lines = tuple(
        RecordedLine(
            Line(
                line_id=str(n),
                sku=(sku := rng.choice(list(SKUS))),
                category=SKUS[sku],
                quantity=Decimal(rng.choice(["1", "2", "0.5", "3"])),
                unit_price=Decimal(rng.choice(["3.33", "2.50", "10.00", "0.99"])),
                discount=Decimal(rng.choice(["0", "0", "0.50"])),
            )
        )
        for n in range(rng.choice([0, 1, 1, 2, 3]))
    )
    total = sum((rl.line.amount for rl in lines), Decimal("0.00"))
    when = _at(rng, 200)
    return TransactionRecord(
        store_id=store_id,
        transaction_id=f"T{index}",
        type=kind,
        channel=STORES[store_id][0],
        occurred_at=when,
        recorded_at=when,
        customer_id=customer_id,
        member=True,
        currency="EUR",
        total=total,
        lines=lines,
    )


def make_event(rng: random.Random, index: int, customer_id: str | None) -> CustomerEvent:
    # No floats: event_to_item cannot store one (its timeline copy goes through `storable` twice).
    plain = [value for value in SCALARS if not isinstance(value, float)]
    properties = {
        name: rng.choice([*plain, None, [1, 2]]) for name in ("sku", "page", "n") if rng.random() < 0.6
    }
    when = _at(rng, 40) if rng.random() < 0.7 else NOW - timedelta(seconds=rng.randint(0, 600))
    return CustomerEvent(
        event_id=f"E{index}",
        store_id="web-nl",
        channel="online",
        type=rng.choice(["view", "search", "wishlist"]),
        occurred_at=when,
        received_at=when,
        properties=properties,
        customer_id=customer_id,
    )


def _storable(value: Any) -> Any:
    """What DynamoDB can hold: floats as decimals (as the codec's `storable` writes them)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


class Stream:
    def __init__(self) -> None:
        self.changes: list[StreamChange] = []

    def put(self, item: dict[str, Any], name: str = "INSERT", at: datetime = NOW) -> dict[str, Any]:
        """The item as the stream carries it (DynamoDB's types), and as a reader gets it back.
        Whatever is older than ten days was written ten days ago (a backfill): few files to read,
        and the recent days still spread over their own partitions."""
        at = max(at, NOW - timedelta(days=10))
        stored = deserialize(serialize(_storable({k: v for k, v in item.items() if v is not None})))
        keys = {"pk": stored["pk"], "sk": stored["sk"]}
        new, old = (None, stored) if name == "REMOVE" else (stored, None)
        self.changes.append(StreamChange(name, keys, new, old, str(len(self.changes) + 1), at))
        return stored


class World:
    def __init__(self, seed: int, size: int, root: Path) -> None:
        rng = random.Random(seed)
        self.programme = default_programme()
        stream = Stream()
        for store_id, (channel, attributes) in STORES.items():
            stream.put(
                {"pk": f"STORE#{store_id}", "sk": "STORE", "type": "store", "store_id": store_id,
                 "channel": channel, "attributes": attributes},
                at=NOW - timedelta(days=500),
            )  # fmt: skip
        self.customers: dict[str, Customer] = {}
        for index in range(size):
            customer = make_customer(rng, index)
            # An older version first: the lake's current state is the latest image per key.
            stream.put(
                customer_to_item(replace(customer, consents=Consents(), version=1)),
                at=NOW - timedelta(days=3),
            )
            stored = stream.put(
                customer_to_item(replace(customer, version=2)), "MODIFY", at=NOW - timedelta(days=1)
            )
            self.customers[customer.customer_id] = customer_from_item(stored)
        ids = list(self.customers)
        self.purchases: dict[str, list[PurchaseFact]] = {c: [] for c in ids}
        for index in range(size * 4):
            owner = rng.choice(ids) if rng.random() < 0.9 else None
            record = make_purchase(rng, index, owner)
            deleted = rng.random() < 0.05
            stream.put(transaction_to_item(record), at=record.occurred_at)
            if deleted:
                stream.put(transaction_to_item(record), "REMOVE", at=record.occurred_at + timedelta(hours=1))
            elif owner is not None:
                channel, attributes = STORES[record.store_id]
                self.purchases[owner].append(
                    PurchaseFact(
                        occurred_at=record.occurred_at,
                        type=record.type.value,  # type: ignore[arg-type]
                        store_id=record.store_id,
                        channel=channel,
                        store_attributes=attributes,
                        lines=tuple(
                            LineFact(rl.line.sku, rl.line.category, rl.line.amount) for rl in record.lines
                        ),
                    )
                )
        self.events: dict[str, list[EventFact]] = {c: [] for c in ids}
        for index in range(size * 3):
            owner = rng.choice(ids) if rng.random() < 0.9 else None
            event = make_event(rng, index, owner)
            stored = stream.put(event_to_item(event), at=event.received_at)
            if owner is not None:
                from loyalty.adapters.codec import plain

                self.events[owner].append(
                    EventFact(event.occurred_at, event.type, plain(stored.get("properties") or {}))
                )
        LakeWriter(files=FolderLake(root=root)).write(stream.changes)
        self.root = root
        self.queries = DuckDBQueries.over_folder(root)

    def facts(self, customer: Customer, now: datetime) -> CustomerFacts:
        zone = customer.profile.timezone or self.programme.messaging.default_timezone
        return CustomerFacts(
            customer=customer,
            tier=effective_tier(customer, self.programme, now),
            scores=customer.scores,
            purchases=tuple(self.purchases[customer.customer_id]),
            events=tuple(self.events[customer.customer_id]),
            timezone=ZoneInfo(zone),
        )

    def by_domain(self, rule: Node, now: datetime) -> set[str]:
        return {
            c.customer_id
            for c in self.customers.values()
            if c.status is CustomerStatus.ACTIVE and evaluate(rule, self.facts(c, now), now).matches
        }

    def by_sql(self, rule: Node, now: datetime, queries: DuckDBQueries | None = None) -> set[str]:
        queries = queries or self.queries
        statement = segment_sql.members(rule, now, self.programme, queries.manifest())
        sqlglot.parse_one(statement, read="trino")  # Athena's dialect, as written
        rows = queries.run(segment_sql.render(statement, "duckdb"))
        return {row["customer_id"] for row in rows}


# ---- random rules over every facet ---------------------------------------------------------------

PATH_OPERANDS: dict[str, list[tuple[str, Any]]] = {
    "member": [("eq", True), ("ne", True), ("in", [False]), ("exists", True)],
    "status": [("eq", "active"), ("eq", "pending_confirmation"), ("ne", "active"), ("contains", "pend"),
               ("in", ["active", "erased"]), ("gt", "b")],
    "tier": [("eq", "bronze"), ("eq", "silver"), ("in", ["gold", "silver"]), ("exists", True),
             ("exists", False), ("not_in", ["bronze"]), ("lt", "h")],
    "points.available": [("gt", 300), ("lte", "450"), ("eq", 0), ("in", [1, 2, 3]), ("not_in", [0])],
    "points.lifetime": [("gte", 2500)],
    "points.pending": [("lt", 10)],
    "stats.transactions": [("gte", 10), ("eq", 0)],
    "stats.spend": [("gte", "450.00"), ("lt", 99.5)],
    "stats.first_purchase_at": [("within", "P200D"), ("before", "P1Y"), ("exists", False),
                                ("gt", "2026-06-01T00:00:00+02:00")],
    "stats.last_purchase_at": [("within", "P30D"), ("before", "PT36H"), ("lte", "2026-11-15T00:00:00Z")],
    "created_at": [("within", "P1Y2M"), ("before", "P18M")],
    "enrolled_at": [("within", "P1Y"), ("exists", True), ("eq", "2026-01-01T00:00:00Z")],
    "profile.birthday": [("exists", True), ("exists", False)],
    "profile.country": [("eq", "NL"), ("in", ["BE", "DE"]), ("exists", False), ("ne", "NL")],
    "price_groups": [("contains", "vip"), ("in", ["staff", "student"]), ("not_in", ["vip"]), ("eq", []),
                     ("eq", ["staff", "vip"]), ("ne", ["vip"]), ("exists", True)],
    "badges": [("contains", "eco"), ("exists", False), ("in", ["first"])],
    "scores.r": [("gte", 4), ("eq", 1), ("exists", False)],
    "scores.f": [("lte", 2)],
    "scores.m": [("in", [3, 5])],
    "scores.rfm": [("eq", "555"), ("gt", "3"), ("contains", "5"), ("exists", True)],
    "consents.email": [("eq", True)],
    "consents.sms": [("eq", False), ("ne", True)],
    "consents.mail": [("exists", True), ("in", [True])],
}  # fmt: skip
FREE_OPS = ["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "contains", "before", "within"]
DURATIONS = ["P30D", "P90D", "P1Y", "PT12H", "P1M", "PT2M", "P2W", "P3Y"]


def random_condition(rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.35:
        path = rng.choice(list(PATH_OPERANDS))
        op, operand = rng.choice(PATH_OPERANDS[path])
        return {"attr": path, op: operand}
    if roll < 0.6:
        name = rng.choice([*ATTRIBUTE_NAMES, "pref.y", "pref.z.w", "missing"])
        op = rng.choice(FREE_OPS)
        if op == "exists":
            operand: Any = rng.random() < 0.5
        elif op in ("before", "within"):
            operand = rng.choice(DURATIONS)
        elif op in ("in", "not_in"):
            operand = rng.sample(OPERANDS, rng.randint(1, 3))
        else:
            operand = rng.choice(OPERANDS)
        return {"attr": f"profile.attributes.{name}", op: operand}
    if roll < 0.68:
        return {"birthday": {"within_days": rng.choice([0, 1, 3, 30, 365, 366])}}
    if roll < 0.88:
        spec: dict[str, Any] = {"within": rng.choice(DURATIONS)}
        if rng.random() < 0.4:
            spec["categories"] = rng.sample(["coffee", "gear", "tea", "none"], rng.randint(1, 2))
        if rng.random() < 0.3:
            spec["skus"] = rng.sample(list(SKUS), rng.randint(1, 2))
        if rng.random() < 0.3:
            spec["channels"] = rng.sample(["pos", "online", "app"], rng.randint(1, 2))
        if rng.random() < 0.2:
            spec["stores"] = rng.sample(list(STORES), rng.randint(1, 2))
        if rng.random() < 0.3:
            spec["store_attributes"] = rng.choice([{"region": "north"}, {"size": 3}, {"flagship": True}])
        if rng.random() < 0.4:
            spec["count"] = {rng.choice(["gte", "lte", "eq", "gt", "lt"]): rng.randint(0, 3)}
        if rng.random() < 0.4:
            spec["spend"] = {rng.choice(["gte", "lt", "gt"]): rng.choice(["5.00", "12.50", "0.00", "-3.00"])}
        return {"purchased": spec}
    event: dict[str, Any] = {
        "type": rng.choice(["view", "search", "wishlist"]),
        "within": rng.choice(DURATIONS),
    }
    if rng.random() < 0.5:
        event["where"] = {rng.choice(["sku", "page", "n"]): rng.choice([*OPERANDS, None])}
    if rng.random() < 0.4:
        event["count"] = {rng.choice(["gte", "lte", "eq"]): rng.randint(0, 3)}
    return {"event": event}


def random_rule(rng: random.Random, depth: int = 1) -> dict[str, Any]:
    roll = rng.random()
    if depth < 4 and roll < 0.45:
        kind = rng.choice(["all", "any"])
        return {kind: [random_rule(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    if depth < 4 and roll < 0.55:
        return {"not": random_rule(rng, depth + 1)}
    return random_condition(rng)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(seed=17, size=80, root=tmp_path_factory.mktemp("lake"))


def test_every_condition_kind_agrees_with_the_domain(world: World) -> None:
    """Each listed attribute condition and a spread of every other kind, one by one."""
    rng = random.Random(3)
    conditions = [{"attr": p, op: v} for p, ops in PATH_OPERANDS.items() for op, v in ops]
    conditions += [random_condition(rng) for _ in range(120)]
    checked = 0
    for raw in conditions:
        try:
            rule = parse_rule(raw)
        except ValidationFailed:
            continue
        assert world.by_sql(rule, NOW) == world.by_domain(rule, NOW), raw
        checked += 1
    assert checked > 150


@pytest.mark.parametrize("seed", range(4))
def test_random_rules_agree_with_the_domain(world: World, seed: int) -> None:
    rng = random.Random(seed)
    nows = [NOW, NOW - timedelta(hours=12), NOW + timedelta(days=1, hours=3)]
    checked = 0
    while checked < 25:
        raw = random_rule(rng)
        try:
            rule = parse_rule(raw)
        except ValidationFailed:
            continue
        now = rng.choice(nows)
        assert world.by_sql(rule, now) == world.by_domain(rule, now), raw
        checked += 1


def test_a_compacted_lake_answers_the_same(world: World, tmp_path: Path) -> None:
    """After compaction (loyalty.services.compaction) the statement reads the snapshot generation
    and only the newer change rows for the kinds that have snapshots: the same members."""
    root = tmp_path / "compacted"
    shutil.copytree(world.root, root)
    # Days up to four days ago are closed: a snapshot of them, and recent days as change rows.
    LakeCompactor(
        objects=FolderLake(root=root), parquet=DuckDBParquetWork(), now=lambda: NOW - timedelta(days=2)
    ).compact()
    compacted = DuckDBQueries.over_folder(root)
    assert compacted.manifest() is not None
    rng = random.Random(11)
    checked = 0
    while checked < 30:
        try:
            rule = parse_rule(random_rule(rng))
        except ValidationFailed:
            continue
        assert world.by_sql(rule, NOW, compacted) == world.by_domain(rule, NOW)
        checked += 1


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        ({"attr": "profile.birthday", "before": "P18Y"}, ["body", "rule", "before"]),
        (
            {
                "any": [
                    {"attr": "member", "eq": True},
                    {"not": {"attr": "profile.birthday", "gt": "1990-01-01"}},
                ]
            },
            ["body", "rule", "any", 1, "not", "gt"],
        ),
    ],
)
def test_a_birth_date_comparison_is_refused_at_its_place(raw: dict[str, Any], loc: list[Any]) -> None:
    """The lake keeps a birthday's month and day only: comparisons that need the year are a 422
    naming the condition, never a silently wrong count."""
    with pytest.raises(ValidationFailed) as refused:
        segment_sql.preview(parse_rule(raw), NOW, default_programme())
    assert [list(error.loc) for error in refused.value.errors] == [loc]


def test_the_population_is_not_trivial(world: World) -> None:
    """Guard against agreement by emptiness: rules pick out some customers and not others."""
    for raw in (
        {"purchased": {"within": "P90D", "categories": ["coffee"], "count": {"gte": 2}}},
        {"event": {"type": "view", "within": "P30D"}},
        {"birthday": {"within_days": 30}},
        {"attr": "profile.attributes.shoe", "exists": True},
        {"attr": "tier", "eq": "silver"},
    ):
        found = world.by_sql(parse_rule(raw), NOW)
        live = sum(1 for c in world.customers.values() if c.status is CustomerStatus.ACTIVE)
        assert 0 < len(found) < live, raw
