"""The segment rule language evaluated by the pure domain: every operator, path, window and
nesting, with the instant each answer next changes; and bad rules named at their place."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError as PydanticValidationError

from loyalty.api.problems import from_domain_error, from_validation_errors
from loyalty.domain.customers import CustomerStatus, Profile
from loyalty.domain.errors import ValidationFailed
from loyalty.domain.models import Model
from loyalty.domain.segments import (
    MAX_CONDITIONS,
    CustomerFacts,
    SegmentRule,
    dump_rule,
    evaluate,
    needs,
    parse_duration,
    parse_rule,
)
from loyalty.domain.segments.windows import back
from tests.unit.segment_facts import ANN, FACTS, NOW, at

NEVER = None
# (rule, matches now, the instant it next changes)
CASES: dict[str, tuple[dict[str, Any], bool, str | None]] = {
    # ---- attributes: every path, every operator ----
    "member eq": ({"attr": "member", "eq": True}, True, NEVER),
    "member ne": ({"attr": "member", "ne": True}, False, NEVER),
    "member in": ({"attr": "member", "in": [False]}, False, NEVER),
    "status eq": ({"attr": "status", "eq": "active"}, True, NEVER),
    "status not_in": ({"attr": "status", "not_in": ["pending_confirmation"]}, True, NEVER),
    "tier eq": ({"attr": "tier", "eq": "gold"}, True, NEVER),
    "tier in": ({"attr": "tier", "in": ["silver", "gold"]}, True, NEVER),
    "tier not_in": ({"attr": "tier", "not_in": ["gold"]}, False, NEVER),
    "tier exists": ({"attr": "tier", "exists": True}, True, NEVER),
    "tier gt (text order)": ({"attr": "tier", "gt": "bronze"}, True, NEVER),
    "points.available gte": ({"attr": "points.available", "gte": 1000}, True, NEVER),
    "points.available gt": ({"attr": "points.available", "gt": 1200}, False, NEVER),
    "points.available lt decimal": ({"attr": "points.available", "lt": "1200.5"}, True, NEVER),
    "points.available lte": ({"attr": "points.available", "lte": 1200}, True, NEVER),
    "points.available eq": ({"attr": "points.available", "eq": 1200}, True, NEVER),
    "points.available ne": ({"attr": "points.available", "ne": 1200}, False, NEVER),
    "points.available in": ({"attr": "points.available", "in": [1, 1200]}, True, NEVER),
    "points.available not_in": ({"attr": "points.available", "not_in": [1]}, True, NEVER),
    "points.pending eq": ({"attr": "points.pending", "eq": 50}, True, NEVER),
    "points.lifetime gt": ({"attr": "points.lifetime", "gt": 4999}, True, NEVER),
    "stats.transactions gte": ({"attr": "stats.transactions", "gte": 10}, True, NEVER),
    "stats.spend gte money": ({"attr": "stats.spend", "gte": "300.00"}, True, NEVER),
    "stats.spend eq number": ({"attr": "stats.spend", "eq": 345.6}, True, NEVER),
    "stats.spend lt money": ({"attr": "stats.spend", "lt": "345.60"}, False, NEVER),
    "stats.first_purchase_at lt": (
        {"attr": "stats.first_purchase_at", "lt": "2025-03-01T00:00:00Z"},
        True,
        NEVER,
    ),
    "stats.first_purchase_at eq offset": (
        {"attr": "stats.first_purchase_at", "eq": "2025-02-01T11:00:00+01:00"},
        True,
        NEVER,
    ),
    "stats.last_purchase_at within": (
        {"attr": "stats.last_purchase_at", "within": "P7D"},
        True,
        "2026-06-17T10:00:00.000001Z",
    ),
    "stats.last_purchase_at before": (
        {"attr": "stats.last_purchase_at", "before": "P30D"},
        False,
        "2026-07-10T10:00:00.000001Z",
    ),
    "stats.last_purchase_at within hours": (
        {"attr": "stats.last_purchase_at", "within": "PT2H"},
        False,
        NEVER,
    ),
    "created_at before": ({"attr": "created_at", "before": "P1Y"}, True, NEVER),
    "created_at gte": ({"attr": "created_at", "gte": "2025-01-10T08:00:00Z"}, True, NEVER),
    "enrolled_at within a month": (
        {"attr": "enrolled_at", "within": "P1M"},
        True,
        "2026-07-01T09:00:00.000001Z",
    ),
    "enrolled_at exists": ({"attr": "enrolled_at", "exists": True}, True, NEVER),
    "profile.birthday before 18 years": ({"attr": "profile.birthday", "before": "P18Y"}, True, NEVER),
    # value >= today - 36 years holds through the 36th birthday (20 June), not the day after.
    "profile.birthday within 36 years": (
        {"attr": "profile.birthday", "within": "P36Y"},
        True,
        "2026-06-20T22:00:00Z",
    ),
    "profile.birthday eq": ({"attr": "profile.birthday", "eq": "1990-06-20"}, True, NEVER),
    "profile.birthday gt": ({"attr": "profile.birthday", "gt": "1990-06-20"}, False, NEVER),
    "profile.birthday in": ({"attr": "profile.birthday", "in": ["1990-06-20"]}, True, NEVER),
    "profile.country eq": ({"attr": "profile.country", "eq": "NL"}, True, NEVER),
    "profile.country in": ({"attr": "profile.country", "in": ["BE", "NL"]}, True, NEVER),
    "profile.country contains": ({"attr": "profile.country", "contains": "N"}, True, NEVER),
    "profile.country lte": ({"attr": "profile.country", "lte": "DE"}, False, NEVER),
    "attribute contains text": ({"attr": "profile.attributes.favourite", "contains": "press"}, True, NEVER),
    "attribute eq text": ({"attr": "profile.attributes.favourite", "eq": "espresso"}, True, NEVER),
    "attribute gte number": ({"attr": "profile.attributes.kids", "gte": 2}, True, NEVER),
    "attribute eq numeric text": ({"attr": "profile.attributes.kids", "eq": "2"}, True, NEVER),
    "attribute gt fraction": ({"attr": "profile.attributes.kids", "gt": 2.5}, False, NEVER),
    "attribute ne other kind": ({"attr": "profile.attributes.kids", "ne": "two"}, True, NEVER),
    "attribute lt other kind": ({"attr": "profile.attributes.kids", "lt": "two"}, False, NEVER),
    "attribute money text lt": ({"attr": "profile.attributes.spend_goal", "lt": 100}, True, NEVER),
    "attribute date before": ({"attr": "profile.attributes.since", "before": "P2Y"}, True, NEVER),
    "attribute date gt": ({"attr": "profile.attributes.since", "gt": "2024-02-29"}, True, NEVER),
    "attribute instant within": (
        {"attr": "profile.attributes.last_visit", "within": "P2D"},
        True,
        "2026-06-16T10:00:00.000001Z",
    ),
    "attribute instant lt": (
        {"attr": "profile.attributes.last_visit", "lt": "2026-06-14T12:00:00+02:00"},
        False,
        NEVER,
    ),
    "attribute text within": ({"attr": "profile.attributes.favourite", "within": "P2D"}, False, NEVER),
    "attribute list contains": ({"attr": "profile.attributes.tags", "contains": "vegan"}, True, NEVER),
    "attribute list contains not": ({"attr": "profile.attributes.tags", "contains": "meat"}, False, NEVER),
    "attribute nested": ({"attr": "profile.attributes.pet.kind", "eq": "dog"}, True, NEVER),
    "attribute bool": ({"attr": "profile.attributes.newsletter", "eq": True}, True, NEVER),
    "attribute bool is not text": ({"attr": "profile.attributes.newsletter", "eq": "true"}, False, NEVER),
    "attribute in": ({"attr": "profile.attributes.favourite", "in": ["latte", "espresso"]}, True, NEVER),
    "attribute not_in": ({"attr": "profile.attributes.kids", "not_in": [1, 3]}, True, NEVER),
    "missing attribute exists false": ({"attr": "profile.attributes.shoe", "exists": False}, True, NEVER),
    "missing attribute eq": ({"attr": "profile.attributes.shoe", "eq": 42}, False, NEVER),
    "missing attribute ne": ({"attr": "profile.attributes.shoe", "ne": 42}, False, NEVER),
    "missing attribute not_in": ({"attr": "profile.attributes.shoe", "not_in": [42]}, False, NEVER),
    "consents.email": ({"attr": "consents.email", "eq": True}, True, NEVER),
    "consents.sms": ({"attr": "consents.sms", "eq": True}, False, NEVER),
    "consents.mail ne": ({"attr": "consents.mail", "ne": True}, True, NEVER),
    "price_groups contains": ({"attr": "price_groups", "contains": "staff"}, True, NEVER),
    "price_groups in": ({"attr": "price_groups", "in": ["staff", "press"]}, True, NEVER),
    "price_groups not_in": ({"attr": "price_groups", "not_in": ["staff"]}, False, NEVER),
    "price_groups eq": ({"attr": "price_groups", "eq": ["staff"]}, True, NEVER),
    "price_groups ne": ({"attr": "price_groups", "ne": ["staff", "press"]}, True, NEVER),
    "price_groups exists": ({"attr": "price_groups", "exists": True}, True, NEVER),
    "badges contains": ({"attr": "badges", "contains": "first-sale"}, True, NEVER),
    "badges contains not": ({"attr": "badges", "contains": "streak"}, False, NEVER),
    "scores.r eq": ({"attr": "scores.r", "eq": 5}, True, NEVER),
    "scores.f gte": ({"attr": "scores.f", "gte": 4}, True, NEVER),
    "scores.m lt": ({"attr": "scores.m", "lt": 3}, False, NEVER),
    "scores.rfm eq": ({"attr": "scores.rfm", "eq": "543"}, True, NEVER),
    "scores.rfm in": ({"attr": "scores.rfm", "in": ["555", "543"]}, True, NEVER),
    # ---- birthdays (Amsterdam: local midnight is 22:00 UTC in summer) ----
    "birthday in 5 days, within 7": ({"birthday": {"within_days": 7}}, True, "2026-06-20T22:00:00Z"),
    "birthday in 5 days, within 3": ({"birthday": {"within_days": 3}}, False, "2026-06-16T22:00:00Z"),
    "birthday within 5 exactly": ({"birthday": {"within_days": 5}}, True, "2026-06-20T22:00:00Z"),
    # ---- purchases ----
    "two sales in 30 days": (
        {"purchased": {"within": "P30D", "count": {"gte": 2}}},
        True,
        "2026-07-01T10:00:00.000001Z",
    ),
    "two coffee sales in 30 days": (
        {"purchased": {"within": "P30D", "categories": ["coffee"], "count": {"gte": 2}}},
        True,
        "2026-07-01T10:00:00.000001Z",
    ),
    "two tea sales in 30 days": (
        {"purchased": {"within": "P30D", "categories": ["tea"], "count": {"gte": 2}}},
        False,
        NEVER,
    ),
    "bought the sku": (
        {"purchased": {"within": "P30D", "skus": ["t1"]}},
        True,
        "2026-07-14T10:00:00.000001Z",
    ),
    "coffee spend short of 16.50 after the refund": (
        {"purchased": {"within": "P30D", "categories": ["coffee"], "spend": {"gte": "16.50"}}},
        False,
        NEVER,
    ),
    "coffee spend 14.50 net": (
        {"purchased": {"within": "P30D", "categories": ["coffee"], "spend": {"gte": "14.50"}}},
        True,
        "2026-07-01T10:00:00.000001Z",
    ),
    "coffee spend at most 10": (
        {"purchased": {"within": "P30D", "categories": ["coffee"], "spend": {"lte": "10.00"}}},
        False,
        "2026-07-01T10:00:00.000001Z",
    ),
    "spend eq": (
        {"purchased": {"within": "P30D", "spend": {"eq": "17.50"}}},
        True,
        "2026-07-01T10:00:00.000001Z",
    ),
    "spend gt and lt": (
        {"purchased": {"within": "P30D", "spend": {"gt": "17.00", "lt": "18.00"}}},
        True,
        "2026-07-01T10:00:00.000001Z",
    ),
    "online channel": (
        {"purchased": {"within": "P30D", "channels": ["online"]}},
        True,
        "2026-07-01T10:00:00.000001Z",
    ),
    "app channel": ({"purchased": {"within": "P30D", "channels": ["app"]}}, False, NEVER),
    "store s1": ({"purchased": {"within": "P30D", "stores": ["s1"]}}, True, "2026-07-14T10:00:00.000001Z"),
    "small stores": (
        {"purchased": {"within": "P30D", "store_attributes": {"format": "small"}}},
        True,
        "2026-07-01T10:00:00.000001Z",
    ),
    "medium stores": (
        {"purchased": {"within": "P30D", "store_attributes": {"format": "medium"}}},
        False,
        NEVER,
    ),
    "three sales in a year": (
        {"purchased": {"within": "P1Y", "count": {"gte": 3}}},
        True,
        "2027-03-01T10:00:00.000001Z",
    ),
    "exactly three in three months": ({"purchased": {"within": "P3M", "count": {"eq": 3}}}, False, NEVER),
    "no sale in a week (lapsed)": (
        {"purchased": {"within": "P7D", "count": {"lt": 1}}},
        False,
        "2026-06-21T10:00:00.000001Z",
    ),
    "at most one sale in 30 days": (
        {"purchased": {"within": "P30D", "count": {"lte": 1}}},
        False,
        "2026-07-01T10:00:00.000001Z",
    ),
    "more than one sale, store s1 coffee": (
        {"purchased": {"within": "P1Y", "stores": ["s1"], "skus": ["c1"], "count": {"gt": 1}}},
        True,
        "2027-03-01T10:00:00.000001Z",
    ),
    # ---- events ----
    "viewed in the last 2 minutes": (
        {"event": {"type": "viewed", "within": "PT2M"}},
        True,
        "2026-06-15T10:01:00.000001Z",
    ),
    "viewed c1 twice in a day": (
        {"event": {"type": "viewed", "where": {"sku": "c1"}, "within": "P1D", "count": {"gte": 2}}},
        False,
        NEVER,
    ),
    "viewed twice in a day": (
        {"event": {"type": "viewed", "within": "P1D", "count": {"gte": 2}}},
        True,
        "2026-06-15T12:00:00.000001Z",
    ),
    "where number equals float": (
        {"event": {"type": "viewed", "where": {"n": 2.0}, "within": "P1D"}},
        True,
        "2026-06-16T09:59:00.000001Z",
    ),
    "where number is not text": (
        {"event": {"type": "viewed", "where": {"n": "2"}, "within": "P1D"}},
        False,
        NEVER,
    ),
    "where null is missing": (
        {"event": {"type": "viewed", "where": {"n": None}, "within": "P1D"}},
        True,
        "2026-06-15T12:00:00.000001Z",
    ),
    "clicked in 30 days": ({"event": {"type": "clicked", "within": "P30D"}}, False, NEVER),
    "clicked at most 0 times in 30 days": (
        {"event": {"type": "clicked", "within": "P30D", "count": {"lte": 0}}},
        True,
        NEVER,
    ),
    # ---- nesting and not ----
    "not": ({"not": {"attr": "member", "eq": True}}, False, NEVER),
    "not of a window": (
        {"not": {"event": {"type": "viewed", "within": "PT2M"}}},
        False,
        "2026-06-15T10:01:00.000001Z",
    ),
    "all true: the first change": (
        {
            "all": [
                {"event": {"type": "viewed", "within": "PT2M"}},
                {"attr": "stats.last_purchase_at", "within": "P7D"},
            ]
        },
        True,
        "2026-06-15T10:01:00.000001Z",
    ),
    "all false by a static child": (
        {"all": [{"attr": "member", "eq": False}, {"event": {"type": "viewed", "within": "PT2M"}}]},
        False,
        NEVER,
    ),
    "all false by two timed children: the later": (
        {
            "all": [
                {"purchased": {"within": "P7D", "count": {"lt": 1}}},
                {"attr": "stats.last_purchase_at", "before": "P30D"},
            ]
        },
        False,
        "2026-07-10T10:00:00.000001Z",
    ),
    "any false: the first change": (
        {"any": [{"purchased": {"within": "P7D", "count": {"lt": 1}}}, {"birthday": {"within_days": 3}}]},
        False,
        "2026-06-16T22:00:00Z",
    ),
    "any true by a static child": (
        {"any": [{"attr": "member", "eq": True}, {"event": {"type": "viewed", "within": "PT2M"}}]},
        True,
        NEVER,
    ),
    "any true by two timed children: the later": (
        {"any": [{"event": {"type": "viewed", "within": "PT2M"}}, {"birthday": {"within_days": 7}}]},
        True,
        "2026-06-20T22:00:00Z",
    ),
    "five levels": (
        {
            "all": [
                {"any": [{"not": {"all": [{"attr": "tier", "eq": "silver"}]}}]},
                {"attr": "member", "eq": True},
            ]
        },
        True,
        NEVER,
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_rule(name: str) -> None:
    raw, matches, changes_at = CASES[name]
    verdict = evaluate(parse_rule(raw), FACTS, NOW)
    assert verdict.matches is matches
    assert verdict.changes_at == (at(changes_at) if changes_at else None)


@pytest.mark.parametrize("name", [n for n, case in CASES.items() if case[2]])
def test_the_answer_holds_until_changes_at_and_a_condition_changes_there(name: str) -> None:
    raw, matches, changes_at = CASES[name]
    assert changes_at is not None
    rule, moment = parse_rule(raw), at(changes_at)
    assert evaluate(rule, FACTS, moment - timedelta(microseconds=1)).matches is matches
    if not ("all" in raw or "any" in raw):  # a single condition's change is exact
        assert evaluate(rule, FACTS, moment).matches is not matches


def test_merged_and_erased_profiles_are_in_no_segment() -> None:
    rule = parse_rule({"attr": "member", "eq": True})
    for status in (CustomerStatus.MERGED, CustomerStatus.ERASED):
        facts = replace(FACTS, customer=replace(ANN, status=status))
        assert evaluate(rule, facts, NOW).matches is False
    assert evaluate(parse_rule({"not": {"attr": "member", "eq": True}}), facts, NOW).matches is False


def test_missing_scores_birthday_and_enrolment() -> None:
    bare = replace(
        FACTS,
        scores=None,
        tier=None,
        customer=replace(ANN, member=False, enrolled_at=None, profile=Profile()),
    )
    cases: list[tuple[dict[str, Any], bool]] = [
        ({"attr": "scores.r", "exists": False}, True),
        ({"attr": "scores.r", "gte": 1}, False),
        ({"attr": "scores.rfm", "ne": "555"}, False),
        ({"attr": "tier", "exists": False}, True),
        ({"attr": "tier", "not_in": ["gold"]}, False),
        ({"attr": "enrolled_at", "within": "P1Y"}, False),
        ({"attr": "enrolled_at", "before": "P1Y"}, False),
        ({"attr": "profile.birthday", "exists": False}, True),
        ({"attr": "profile.country", "contains": "N"}, False),
        ({"birthday": {"within_days": 366}}, False),
    ]
    for raw, matches in cases:
        verdict = evaluate(parse_rule(raw), bare, NOW)
        assert (verdict.matches, verdict.changes_at) == (matches, None), raw


def test_empty_sets_do_not_exist_and_share_nothing() -> None:
    bare = replace(FACTS, customer=replace(ANN, price_groups=frozenset(), badges={}))
    assert evaluate(parse_rule({"attr": "badges", "exists": False}), bare, NOW).matches
    assert evaluate(parse_rule({"attr": "price_groups", "not_in": ["staff"]}), bare, NOW).matches
    assert not evaluate(parse_rule({"attr": "price_groups", "in": ["staff"]}), bare, NOW).matches
    assert evaluate(parse_rule({"attr": "price_groups", "eq": []}), bare, NOW).matches


def test_the_tier_changes_when_the_caller_says() -> None:
    until = at("2026-07-01T00:00:00Z")
    facts = replace(FACTS, tier_until=until)
    assert evaluate(parse_rule({"attr": "tier", "eq": "gold"}), facts, NOW).changes_at == until
    assert evaluate(parse_rule({"attr": "member", "eq": True}), facts, NOW).changes_at is None


@pytest.mark.parametrize(
    ("born", "today", "within", "matches"),
    [
        (date(2000, 2, 29), "2027-02-27T12:00:00Z", 1, True),  # 28 February in a common year
        (date(2000, 2, 29), "2027-02-27T12:00:00Z", 0, False),
        (date(2000, 2, 29), "2028-02-28T12:00:00Z", 0, False),  # leap year: the 29th
        (date(2000, 2, 29), "2028-02-28T12:00:00Z", 1, True),
        (date(2000, 2, 29), "2027-03-01T12:00:00Z", 300, False),  # passed: next is 2028-02-29
        (date(1990, 12, 31), "2026-12-30T12:00:00Z", 1, True),
        (date(1990, 1, 1), "2026-12-30T12:00:00Z", 2, True),  # across the new year
        (date(1990, 1, 1), "2026-12-30T12:00:00Z", 1, False),
    ],
)
def test_birthdays(born: date, today: str, within: int, matches: bool) -> None:
    facts = replace(FACTS, customer=replace(ANN, profile=Profile(birthday=born)))
    verdict = evaluate(parse_rule({"birthday": {"within_days": within}}), facts, at(today))
    assert verdict.matches is matches


def test_birthday_day_is_the_customers_local_day() -> None:
    # 23:30 UTC on 19 June is already 20 June in Amsterdam: the birthday is today there.
    late = at("2026-06-19T23:30:00Z")
    facts = replace(FACTS, customer=replace(ANN, profile=Profile(birthday=date(1990, 6, 21))))
    verdict = evaluate(parse_rule({"birthday": {"within_days": 1}}), facts, late)
    assert verdict.matches is True
    assert verdict.changes_at == at("2026-06-21T22:00:00Z")
    utc = replace(facts, timezone=ZoneInfo("UTC"))
    assert evaluate(parse_rule({"birthday": {"within_days": 2}}), utc, late).matches is True
    assert evaluate(parse_rule({"birthday": {"within_days": 1}}), utc, late).matches is False


def test_month_windows_never_move_back() -> None:
    # 31 May less one month has no day in April: the window starts on 1 May at 00:00, so the start
    # never moves back (30 May 23:00 less a month is 30 April 23:00, before it).
    def viewed(when: str) -> CustomerFacts:
        return replace(FACTS, events=(replace(FACTS.events[0], occurred_at=at(when)),))

    rule = parse_rule({"event": {"type": "viewed", "within": "P1M"}})
    assert evaluate(rule, viewed("2026-04-30T23:30:00Z"), at("2026-05-30T23:00:00Z")).matches
    assert not evaluate(rule, viewed("2026-04-30T23:30:00Z"), at("2026-05-31T10:00:00Z")).matches
    assert evaluate(rule, viewed("2026-04-30T23:30:00Z"), at("2026-05-30T23:00:00Z")).changes_at == at(
        "2026-05-30T23:30:00.000001Z"
    )
    first = evaluate(rule, viewed("2026-05-01T00:00:00Z"), at("2026-05-31T23:59:59Z"))
    assert first == type(first)(True, at("2026-06-01T00:00:00.000001Z"))
    # A fact of 31 March: 30 April less a month is 30 March, still before it; 1 May goes back to
    # 1 April, after it. It leaves at the turn of the month.
    late = viewed("2026-03-31T10:00:00Z")
    assert evaluate(rule, late, at("2026-04-15T00:00:00Z")).changes_at == at("2026-05-01T00:00:00Z")
    assert evaluate(rule, late, at("2026-04-30T23:59:59.999999Z")).matches
    assert not evaluate(rule, late, at("2026-05-01T00:00:00Z")).matches


def test_a_facts_ahead_of_the_clock_counts() -> None:
    ahead = replace(FACTS.events[0], occurred_at=at("2026-06-15T10:05:00Z"))
    verdict = evaluate(
        parse_rule({"event": {"type": "viewed", "within": "PT2M"}}), replace(FACTS, events=(ahead,)), NOW
    )
    assert verdict == type(verdict)(True, at("2026-06-15T10:07:00.000001Z"))


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        evaluate(parse_rule({"attr": "member", "eq": True}), FACTS, datetime(2026, 6, 15))


# ---- what the worker loads ------------------------------------------------------------------


def test_needs_the_longest_windows_and_the_event_types() -> None:
    rules = [
        parse_rule({"purchased": {"within": "P30D"}}),
        parse_rule(
            {
                "all": [
                    {"not": {"purchased": {"within": "P1M"}}},
                    {"event": {"type": "viewed", "within": "PT2M"}},
                ]
            }
        ),
        parse_rule(
            {"any": [{"event": {"type": "clicked", "within": "P7D"}}, {"attr": "member", "eq": True}]}
        ),
    ]
    found = needs(rules)
    assert found.lookback is not None and found.lookback.days == 31
    assert found.event_lookback is not None and found.event_lookback.days == 7
    assert found.event_types == frozenset({"viewed", "clicked"})
    nothing = needs([parse_rule({"attr": "member", "eq": True})])
    assert (nothing.lookback, nothing.event_lookback, nothing.event_types) == (None, None, frozenset())


def test_needs_covers_every_window_however_the_calendar_falls() -> None:
    for text in ("P1M", "P1Y", "P2W", "PT2M", "P1Y2M3DT4H"):
        duration = parse_duration(text)
        found = needs([parse_rule({"purchased": {"within": text}})])
        assert found.lookback is not None
        for now in ("2026-03-31T10:00:00Z", "2028-02-29T00:00:00Z", "2026-12-31T23:59:59Z"):
            assert at(now) - back(at(now), duration) <= found.lookback


# ---- the JSON round trip -------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_rules_dump_as_given(name: str) -> None:
    raw = CASES[name][0]
    assert dump_rule(parse_rule(raw)) == raw


# ---- bad rules -----------------------------------------------------------------------------

BAD: dict[str, tuple[Any, list[Any], str]] = {
    "not an object": ([], ["rule"], "rule_type"),
    "no kind": ({"attrib": "tier"}, ["rule"], "rule_type"),
    "two kinds": ({"all": [], "any": []}, ["rule"], "rule_type"),
    "empty all": ({"all": []}, ["rule", "all"], "list_type"),
    "all not a list": ({"all": {"attr": "tier", "eq": "gold"}}, ["rule", "all"], "list_type"),
    "extra key beside all": (
        {"all": [{"attr": "member", "eq": True}], "name": "x"},
        ["rule", "name"],
        "extra_forbidden",
    ),
    "unknown path": (
        {"all": [{"attr": "member", "eq": True}, {"attr": "points.spent", "gt": 1}]},
        ["rule", "all", 1, "attr"],
        "unknown_path",
    ),
    "unknown consent channel": ({"attr": "consents.fax", "eq": True}, ["rule", "attr"], "unknown_path"),
    "empty attribute name": ({"attr": "profile.attributes.", "eq": 1}, ["rule", "attr"], "unknown_path"),
    "unknown operator": (
        {"any": [{"attr": "tier", "like": "gold"}]},
        ["rule", "any", 0, "like"],
        "unknown_operator",
    ),
    "no operator": ({"attr": "tier"}, ["rule"], "missing"),
    "two operators": ({"attr": "points.available", "gt": 1, "lt": 5}, ["rule", "lt"], "extra_op"),
    "operator not for the path": ({"attr": "member", "gt": True}, ["rule", "gt"], "value_error"),
    "order on a set": ({"attr": "badges", "gte": "x"}, ["rule", "gte"], "value_error"),
    "within on a number": ({"attr": "points.available", "within": "P1D"}, ["rule", "within"], "value_error"),
    "bad number": ({"attr": "points.available", "gte": "lots"}, ["rule", "gte"], "value_error"),
    "bool for a number": ({"attr": "points.available", "gte": True}, ["rule", "gte"], "value_error"),
    "bad timestamp": ({"attr": "created_at", "gt": "yesterday"}, ["rule", "gt"], "value_error"),
    "naive timestamp": ({"attr": "created_at", "gt": "2026-01-01T00:00:00"}, ["rule", "gt"], "value_error"),
    "bad date": ({"attr": "profile.birthday", "eq": "1990-02-30"}, ["rule", "eq"], "value_error"),
    "hours on a date": ({"attr": "profile.birthday", "within": "PT12H"}, ["rule", "within"], "value_error"),
    "bad attr duration": ({"attr": "created_at", "within": "90 days"}, ["rule", "within"], "value_error"),
    "in takes a list": ({"attr": "tier", "in": "gold"}, ["rule", "in"], "value_error"),
    "exists takes a bool": ({"attr": "tier", "exists": "yes"}, ["rule", "exists"], "value_error"),
    "object for an attribute": (
        {"attr": "profile.attributes.pet", "eq": {"kind": "dog"}},
        ["rule", "eq"],
        "value_error",
    ),
    "unknown status": ({"attr": "status", "eq": "actve"}, ["rule", "eq"], "value_error"),
    "unknown field in purchased": (
        {"all": [{"attr": "member", "eq": True}, {"purchased": {"within": "P30D", "category": ["coffee"]}}]},
        ["rule", "all", 1, "purchased", "category"],
        "extra_forbidden",
    ),
    "bad duration": (
        {"not": {"purchased": {"within": "P30"}}},
        ["rule", "not", "purchased", "within"],
        "value_error",
    ),
    "zero duration": ({"purchased": {"within": "P0D"}}, ["rule", "purchased", "within"], "value_error"),
    "huge duration": ({"purchased": {"within": "P200Y"}}, ["rule", "purchased", "within"], "value_error"),
    "missing within": ({"purchased": {"skus": ["a"]}}, ["rule", "purchased", "within"], "missing"),
    "negative count": (
        {"purchased": {"within": "P1D", "count": {"gte": -1}}},
        ["rule", "purchased", "count", "gte"],
        "greater_than_equal",
    ),
    "text count": (
        {"purchased": {"within": "P1D", "count": {"gte": "2"}}},
        ["rule", "purchased", "count", "gte"],
        "int_type",
    ),
    "unknown count bound": (
        {"purchased": {"within": "P1D", "count": {"min": 2}}},
        ["rule", "purchased", "count", "min"],
        "extra_forbidden",
    ),
    "empty count": (
        {"purchased": {"within": "P1D", "count": {}}},
        ["rule", "purchased", "count"],
        "value_error",
    ),
    "spend as a number": (
        {"purchased": {"within": "P1D", "spend": {"gte": 50}}},
        ["rule", "purchased", "spend", "gte"],
        "value_error",
    ),
    "spend with three places": (
        {"purchased": {"within": "P1D", "spend": {"gte": "5.001"}}},
        ["rule", "purchased", "spend", "gte"],
        "decimal_max_places",
    ),
    "unknown channel": (
        {"purchased": {"within": "P1D", "channels": ["fax"]}},
        ["rule", "purchased", "channels", 0],
        "literal_error",
    ),
    "event without type": ({"event": {"within": "P1D"}}, ["rule", "event", "type"], "missing"),
    "event where object": (
        {"event": {"type": "x", "within": "P1D", "where": {"a": {"b": 1}}}},
        ["rule", "event", "where"],
        "value_error",
    ),
    "event unknown field": (
        {"event": {"type": "x", "within": "P1D", "properties": {}}},
        ["rule", "event", "properties"],
        "extra_forbidden",
    ),
    "birthday too far": (
        {"birthday": {"within_days": 400}},
        ["rule", "birthday", "within_days"],
        "less_than_equal",
    ),
    "birthday unknown field": ({"birthday": {"days": 3}}, ["rule", "birthday", "days"], "extra_forbidden"),
    "six levels": (
        {"all": [{"any": [{"not": {"all": [{"any": [{"attr": "member", "eq": True}]}]}}]}]},
        ["rule", "all", 0, "any", 0, "not", "all", 0, "any", 0],
        "too_deep",
    ),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_rule(name: str) -> None:
    raw, loc, type_ = BAD[name]
    with pytest.raises(ValidationFailed) as failed:
        parse_rule(raw)
    assert failed.value.status == 422
    assert (loc, type_) in [(list(e.loc), e.type) for e in failed.value.errors]


def test_conditions_are_counted_over_the_whole_tree() -> None:
    leaf = {"attr": "member", "eq": True}
    parse_rule({"any": [{"all": [leaf] * 25}, {"all": [leaf] * 25}]})
    with pytest.raises(ValidationFailed) as failed:
        parse_rule({"any": [{"all": [leaf] * 25}, {"all": [leaf] * 26}]})
    assert [e.as_dict()["loc"] for e in failed.value.errors] == [["rule", "any", 1, "all", 25]]
    assert failed.value.errors[0].type == "too_many_conditions"
    with pytest.raises(ValidationFailed) as failed:
        parse_rule({"all": [leaf] * (MAX_CONDITIONS + 1)})
    assert [(list(e.loc), e.type) for e in failed.value.errors] == [(["rule", "all"], "too_many_conditions")]


def test_a_huge_bad_rule_gets_a_short_answer() -> None:
    with pytest.raises(ValidationFailed) as failed:
        parse_rule({"any": [{"all": [[]] * 40} for _ in range(40)]})
    assert 0 < len(failed.value.errors) <= 20
    assert failed.value.errors[0].loc == ("rule", "any", 0, "all", 0)


def test_every_error_is_listed_under_the_callers_place() -> None:
    with pytest.raises(ValidationFailed) as failed:
        parse_rule(
            {"all": [{"attr": "nope", "eq": 1}, {"purchased": {"within": "bad", "count": {"gte": -1}}}]},
            loc=("body", "rule"),
        )
    assert [tuple(e.loc) for e in failed.value.errors] == [
        ("body", "rule", "all", 0, "attr"),
        ("body", "rule", "all", 1, "purchased", "within"),
        ("body", "rule", "all", 1, "purchased", "count", "gte"),
    ]
    assert "body.rule.all.0.attr" in failed.value.detail


# ---- as a field of an API model: the 422 names the place under the body --------------------


class _Body(Model):
    name: str
    rule: SegmentRule


def test_a_rule_field_validates_like_parse_rule_and_answers_422_at_its_place() -> None:
    raw = {"all": [{"attr": "tier", "eq": "gold"}, {"purchased": {"within": "P1X", "count": {"gte": -1}}}]}
    with pytest.raises(PydanticValidationError) as failed:
        _Body.model_validate({"name": "x", "rule": raw})
    errors = [dict(e, loc=("body", *e["loc"])) for e in failed.value.errors()]
    response = from_validation_errors(errors)
    assert response.status_code == 422
    body = json.loads(str(response.body))
    assert body["type"].endswith("/validation-failed")
    assert [e["loc"] for e in body["errors"]] == [
        ["body", "rule", "all", 1, "purchased", "within"],
        ["body", "rule", "all", 1, "purchased", "count", "gte"],
    ]
    deep = {"not": {"not": {"not": {"not": {"not": {"attr": "member", "eq": True}}}}}}
    with pytest.raises(PydanticValidationError) as failed:
        _Body.model_validate({"name": "x", "rule": deep})
    assert failed.value.errors()[0]["type"] == "too_deep"


def test_a_rule_field_round_trips_as_contract_json() -> None:
    raw = CASES["all true: the first change"][0]
    body = _Body.model_validate({"name": "x", "rule": raw})
    assert body.model_dump(mode="json") == {"name": "x", "rule": raw}
    assert _Body.model_validate_json(body.model_dump_json()) == body
    assert _Body.model_json_schema()["properties"]["rule"]["type"] == "object"


def test_parse_rule_errors_map_to_a_422_problem() -> None:
    with pytest.raises(ValidationFailed) as failed:
        parse_rule({"any": [{"attr": "tier", "like": "gold"}]}, loc=("body", "rule"))
    response = from_domain_error(failed.value)
    assert response.status_code == 422
    body = json.loads(str(response.body))
    assert body["errors"][0]["loc"] == ["body", "rule", "any", 0, "like"]
