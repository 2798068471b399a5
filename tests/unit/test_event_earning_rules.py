"""Event earn rules' limits per customer and period, and the bus event as a value."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loyalty.domain.activity import RecordedEvent
from loyalty.domain.event_earning import decide, limit_period
from loyalty.domain.programme import EventEarnRule


def rule(per: str | None, n: int = 2) -> EventEarnRule:
    limit = {"per_customer": n, "per": per} if per else None
    return EventEarnRule.model_validate(
        {"rule_id": f"r-{per}", "name": "r", "on_event": "review", "points": 5, "limit": limit}
    )


AT = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    ("per", "period"), [("day", "2026-12-31"), ("month", "2026-12"), ("ever", "ever"), (None, "ever")]
)
def test_periods_are_utc_days_months_or_ever(per: str | None, period: str) -> None:
    assert limit_period(rule(per), AT) == period


def test_a_period_is_the_utc_one_whatever_offset_the_event_was_sent_with() -> None:
    sent = RecordedEvent.from_detail(
        {"event_id": "e", "store_id": "s", "type": "review", "occurred_at": "2027-01-01T00:30:00+01:00"}
    )
    assert limit_period(rule("day"), sent.occurred_at) == "2026-12-31"


def test_within_the_limit_earns_at_it_stops_and_a_new_period_starts_from_zero() -> None:
    monthly = rule("month")
    assert decide([monthly], AT, {("r-month", "2026-12"): 1}, frozenset())[0].earns
    stopped = decide([monthly], AT, {("r-month", "2026-12"): 2}, frozenset())[0]
    assert not stopped.earns and stopped.why_not == "limit_reached"
    january = decide([monthly], datetime(2027, 1, 1, tzinfo=UTC), {("r-month", "2026-12"): 2}, frozenset())[0]
    assert january.earns and january.period == "2027-01" and january.counted == 0


def test_an_event_never_earns_twice_by_a_rule_and_no_limit_means_every_event() -> None:
    unlimited = rule(None)
    assert decide([unlimited], AT, {("r-None", "ever"): 1000}, frozenset())[0].earns
    again = decide([unlimited], AT, {}, frozenset({"r-None"}))[0]
    assert not again.earns and again.why_not == "already_earned"


@pytest.mark.parametrize(
    ("detail", "field"),
    [
        ({"store_id": "s", "type": "t", "occurred_at": "2026-12-01T00:00:00Z"}, "event_id"),
        ({"event_id": "e", "store_id": "s", "type": "t", "occurred_at": "yesterday"}, "occurred_at"),
        (
            {"event_id": "e", "store_id": "s", "type": "t", "occurred_at": "2026-12-01T00:00:00"},
            "occurred_at",
        ),
        (
            {
                "event_id": "e",
                "store_id": "s",
                "type": "t",
                "occurred_at": "2026-12-01T00:00:00Z",
                "properties": [],
            },
            "properties",
        ),
    ],
)
def test_a_malformed_detail_names_its_field(detail: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RecordedEvent.from_detail(detail)


def test_what_a_non_member_would_have_earned_is_the_matching_rules_points() -> None:
    from loyalty.domain.event_earning import points_if_member
    from loyalty.domain.programme import Programme, default_programme

    body = default_programme().model_dump(mode="json")
    body["earn_rules"] = [
        {"rule_id": "a", "name": "a", "on_event": "review", "points": 20},
        {"rule_id": "b", "name": "b", "on_event": "review", "points": 30, "where": {"photo": True}},
        {"rule_id": "c", "name": "c", "on_event": "app_install", "points": 100},
    ]
    programme = Programme.model_validate(body)
    plain = RecordedEvent("e", "s", "review", AT, AT, properties={"photo": False})
    with_photo = RecordedEvent("e", "s", "review", AT, AT, properties={"photo": True})
    assert (points_if_member(programme, plain), points_if_member(programme, with_photo)) == (20, 50)
