"""`changes_at` is sound: with no new fact, the answer is the same at every instant between now and
`changes_at`, and evaluating again there gives a later `changes_at` that is sound too. For a single
window condition it is also exact: at `changes_at` the answer has changed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.domain.segments import (
    CustomerFacts,
    EventFact,
    LineFact,
    PurchaseFact,
    evaluate,
    parse_duration,
    parse_rule,
)
from loyalty.domain.segments.windows import back, leaves_at, local_date, start_of
from tests.unit.segment_facts import FACTS

# Zones with daylight saving, a half-hour offset, the far east, and clocks that change at midnight.
ZONES = [
    "UTC",
    "Europe/Amsterdam",
    "America/New_York",
    "Asia/Kolkata",
    "Pacific/Auckland",
    "America/St_Johns",
    "America/Santiago",
    "America/Havana",
]
DURATIONS = ["PT1S", "PT2M", "PT1H", "P1D", "P7D", "P30D", "P2W", "P1M", "P3M", "P1M15D", "P1Y", "P1Y1M"]
DATE_DURATIONS = ["P1D", "P30D", "P1M", "P1Y", "P18Y", "P36Y", "P2Y6M"]
MICRO = timedelta(microseconds=1)
HORIZON = timedelta(days=800)

_base = datetime(2026, 1, 1, tzinfo=UTC)
# Any instant, or one at a month's end (where month windows are awkward), to the microsecond.
instants = st.one_of(
    st.integers(0, 3 * 365 * 86_400_000_000).map(lambda us: _base + timedelta(microseconds=us)),
    st.builds(
        lambda year, month, back, second: (
            datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC) - timedelta(days=back, seconds=second)
        ),
        st.integers(2026, 2028),
        st.integers(1, 12),
        st.integers(0, 3),
        st.integers(0, 86_399),
    ),
)


# Offsets back from now at which facts happened: seconds to a year and more, a few ahead of now.
offsets = st.one_of(
    st.integers(-120, 600),
    st.integers(0, 3 * 86_400),
    st.integers(0, 400 * 86_400),
    st.sampled_from([30 * 86_400, 31 * 86_400, 365 * 86_400, 366 * 86_400]),
).map(lambda seconds: timedelta(seconds=seconds))

lines = st.builds(
    LineFact,
    sku=st.sampled_from(["a", "b", "c"]),
    category=st.sampled_from(["coffee", "tea", None]),
    amount=st.integers(0, 3000).map(lambda cents: Decimal(cents) / 100),
)


jitters = st.one_of(
    st.integers(-2, 2).map(lambda us: timedelta(microseconds=us)),
    st.integers(-2 * 86_400, 2 * 86_400).map(lambda seconds: timedelta(seconds=seconds)),
)


def moment_before(draw: st.DrawFn, now: datetime) -> datetime:
    """A while back from now, or close to where some window starts (where mistakes hide)."""
    if draw(st.booleans()):
        return now - draw(offsets)
    return back(now, parse_duration(draw(st.sampled_from(DURATIONS)))) + draw(jitters)


@st.composite
def facts(draw: st.DrawFn) -> tuple[CustomerFacts, datetime]:
    now = draw(instants)
    purchases = tuple(
        PurchaseFact(
            occurred_at=moment_before(draw, now),
            type=draw(st.sampled_from(["sale", "sale", "return"])),
            store_id=draw(st.sampled_from(["s1", "s2"])),
            channel=draw(st.sampled_from(["pos", "online", "app"])),
            store_attributes={"format": draw(st.sampled_from(["big", "small"]))},
            lines=tuple(draw(st.lists(lines, max_size=3))),
        )
        for _ in range(draw(st.integers(0, 8)))
    )
    events = tuple(
        EventFact(
            occurred_at=moment_before(draw, now),
            type=draw(st.sampled_from(["viewed", "clicked"])),
            properties={"sku": draw(st.sampled_from(["a", "b"]))},
        )
        for _ in range(draw(st.integers(0, 6)))
    )
    born = draw(
        st.one_of(st.none(), st.dates(date(1950, 1, 1), date(2010, 12, 31)), st.just(date(2000, 2, 29)))
    )
    seen = moment_before(draw, now)
    since = local_date(now - draw(offsets), ZoneInfo("UTC"))
    customer = replace(
        FACTS.customer,
        created_at=moment_before(draw, now),
        enrolled_at=draw(st.one_of(st.none(), offsets.map(lambda back: now - back))),
        stats=replace(FACTS.customer.stats, last_purchase_at=moment_before(draw, now)),
        profile=replace(
            FACTS.customer.profile,
            birthday=born,
            attributes={"seen": seen.isoformat(), "since": since.isoformat()},
        ),
    )
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    return (
        CustomerFacts(customer, "gold", None, purchases, events, zone),
        now,
    )


def bounds(values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(["eq", "gt", "gte", "lt", "lte"]), values, min_size=1, max_size=2)


purchased = st.fixed_dictionaries(
    {"within": st.sampled_from(DURATIONS)},
    optional={
        "categories": st.lists(st.sampled_from(["coffee", "tea"]), min_size=1, max_size=2),
        "skus": st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=2),
        "channels": st.lists(st.sampled_from(["pos", "online"]), min_size=1, max_size=2),
        "stores": st.lists(st.sampled_from(["s1", "s2"]), min_size=1, max_size=2),
        "store_attributes": st.just({"format": "big"}),
        "count": bounds(st.integers(0, 4)),
        "spend": bounds(st.integers(-20, 60).map(lambda n: f"{n}.00")),
    },
).map(lambda spec: {"purchased": spec})
event = st.fixed_dictionaries(
    {"type": st.sampled_from(["viewed", "clicked"]), "within": st.sampled_from(DURATIONS)},
    optional={"where": st.just({"sku": "a"}), "count": bounds(st.integers(0, 4))},
).map(lambda spec: {"event": spec})
birthday = st.integers(0, 366).map(lambda days: {"birthday": {"within_days": days}})
timed_attr = st.builds(
    lambda path, op, duration: {"attr": path, op: duration},
    st.sampled_from(["created_at", "enrolled_at", "stats.last_purchase_at", "profile.attributes.seen"]),
    st.sampled_from(["within", "before"]),
    st.sampled_from(DURATIONS),
)
date_attr = st.builds(
    lambda path, op, duration: {"attr": path, op: duration},
    st.sampled_from(["profile.birthday", "profile.attributes.since"]),
    st.sampled_from(["within", "before"]),
    st.sampled_from(DATE_DURATIONS),
)
static_attr = st.sampled_from(
    [{"attr": "member", "eq": True}, {"attr": "member", "eq": False}, {"attr": "tier", "eq": "gold"}]
)
window_conditions = st.one_of(purchased, event, timed_attr, date_attr)
conditions = st.one_of(purchased, event, birthday, timed_attr, date_attr, static_attr)


def composite(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, min_size=2, max_size=4).map(lambda items: {"all": items}),
        st.lists(children, min_size=2, max_size=4).map(lambda items: {"any": items}),
        children.map(lambda child: {"not": child}),
    )


# Mostly conditions that move with time, so that combinations of their changes are exercised.
moving = st.one_of(window_conditions, window_conditions, conditions)
rules = st.one_of(conditions, composite(moving), composite(moving), composite(composite(moving)))


def edges(raw: Any, facts: CustomerFacts, now: datetime) -> Iterator[datetime]:
    """Instants where a wrong answer would show: each fact's window departures and the local days
    around now and the birthday, each with the instant just before."""
    moments = [p.occurred_at for p in facts.purchases] + [e.occurred_at for e in facts.events]
    for text in DURATIONS:
        for moment in moments:
            yield leaves_at(moment, parse_duration(text))
    today = local_date(now, facts.timezone)
    born = facts.customer.profile.birthday
    days = [today + timedelta(days=k) for k in range(1, 4)]
    if born is not None:
        for year in (today.year, today.year + 1):
            day = date(year, born.month, 28 if (born.month, born.day) == (2, 29) else born.day)
            days += [day + timedelta(days=k) for k in (-7, -1, 0, 1, 2)]
    for day in days:
        yield start_of(day, facts.timezone)


def check_interval(raw: Any, facts: CustomerFacts, now: datetime, fractions: list[float]) -> datetime | None:
    rule = parse_rule(raw)
    verdict = evaluate(rule, facts, now)
    until = verdict.changes_at
    assert until is None or until > now, (raw, now, until)
    end = until or now + HORIZON
    probes = [now + (end - now) * fraction for fraction in fractions]
    probes += [edge + shift for edge in edges(raw, facts, now) for shift in (-MICRO, timedelta(0))]
    if until is not None:
        probes.append(until - MICRO)
    for probe in probes:
        if now < probe < end:
            assert evaluate(rule, facts, probe).matches is verdict.matches, (raw, now, until, probe)
    return until


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=rules,
    drawn=facts(),
    fractions=st.lists(st.floats(0.0, 1.0, exclude_min=True, exclude_max=True), min_size=3, max_size=6),
)
def test_changes_at_is_sound(raw: Any, drawn: tuple[CustomerFacts, datetime], fractions: list[float]) -> None:
    facts, now = drawn
    # Follow the chain: at changes_at the answer is evaluated again, and that one is sound too.
    moment: datetime | None = now
    for _ in range(3):
        if moment is None or moment > now + HORIZON:
            break
        moment = check_interval(raw, facts, moment, fractions)


@settings(max_examples=300, deadline=None)
@given(raw=window_conditions, drawn=facts())
def test_a_single_window_changes_exactly_at_changes_at(
    raw: Any, drawn: tuple[CustomerFacts, datetime]
) -> None:
    facts, now = drawn
    rule = parse_rule(raw)
    verdict = evaluate(rule, facts, now)
    if verdict.changes_at is not None:
        assert evaluate(rule, facts, verdict.changes_at).matches is not verdict.matches
        assert evaluate(rule, facts, verdict.changes_at - MICRO).matches is verdict.matches
