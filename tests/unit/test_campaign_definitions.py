"""Campaign definitions checked as a whole (loyalty.domain.campaign_definitions): every bad
definition is refused with the exact place in the body, and what a saved campaign implies — its
schedule, its derived trigger segment — follows from its trigger and status."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from loyalty.campaign_schedule import scheduled_run_id
from loyalty.domain.campaign_definitions import (
    Named,
    Schedule,
    check_transition,
    next_run_at,
    problems,
    schedule_name,
    schedule_of,
    trigger_rule,
    trigger_segment_id,
    trigger_segment_wanted,
)
from loyalty.domain.campaign_runs import InvalidTaskInput
from loyalty.domain.campaigns import Campaign, CampaignDefinition
from loyalty.domain.errors import CampaignNotRunnable
from loyalty.domain.templates import Channel, Purpose, Template

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
TEMPLATES = {
    "plain": Template(
        "plain", Channel.EMAIL, "Hi {{ first_name }}", subject="Hi", placeholders=frozenset({"first_name"})
    ),
    "with-coupon": Template(
        "with-coupon", Channel.SMS, "Use {{ coupon.code }}", placeholders=frozenset({"coupon"})
    ),
    "confirm": Template(
        "confirm",
        Channel.EMAIL,
        "{{ confirm_url }}",
        purpose=Purpose.CONFIRMATION,
        subject="Confirm",
        placeholders=frozenset({"confirm_url"}),
    ),
}
NAMED = Named(segments={"vip", "campaign-trigger-other"}, offers={"ten-off"}, templates=TEMPLATES)


def definition(**changes: Any) -> CampaignDefinition:
    body: dict[str, Any] = {
        "name": "Spring",
        "trigger": {"type": "manual"},
        "audience": {"segment_id": "vip"},
        "actions": [
            {"type": "coupon", "offer_id": "ten-off"},
            {"type": "points", "points": 50},
            {"type": "message", "template_id": "with-coupon"},
        ],
    }
    body.update(changes)
    return CampaignDefinition.model_validate(body)


def saved(d: CampaignDefinition, campaign_id: str = "spring", status: str | None = None) -> Campaign:
    fields = d.model_dump() | ({"status": status} if status else {})
    return Campaign(**fields, campaign_id=campaign_id, created_at=NOW, updated_at=NOW)


def places(d: CampaignDefinition, previous: Campaign | None = None) -> list[tuple[str | int, ...]]:
    return [p.loc for p in problems(d, NAMED, now=NOW, previous=previous)]


def test_a_sound_definition_has_no_problems() -> None:
    assert problems(definition(), NAMED, now=NOW) == []
    budget = {"budget": {"points": 50, "amount": "5.00"}}
    with_cash = definition(
        actions=[{"type": "points", "points": 50}, {"type": "promo_cash", "amount": "5.00"}], limits=budget
    )
    assert problems(with_cash, NAMED, now=NOW) == []


BAD: list[tuple[str, dict[str, Any], tuple[str | int, ...]]] = [
    ("manual without a segment", {"audience": {}}, ("body", "audience", "segment_id")),
    (
        "schedule without a segment",
        {"audience": {}, "trigger": {"type": "schedule", "cron": "cron(0 9 ? * MON *)"}},
        ("body", "audience", "segment_id"),
    ),
    ("an unknown segment", {"audience": {"segment_id": "nobody"}}, ("body", "audience", "segment_id")),
    (
        "another campaign's trigger segment as audience",
        {"audience": {"segment_id": "campaign-trigger-other"}},
        ("body", "audience", "segment_id"),
    ),
    (
        "an unknown offer",
        {"actions": [{"type": "coupon", "offer_id": "gone"}]},
        ("body", "actions", 0, "offer_id"),
    ),
    (
        "an unknown template",
        {
            "actions": [
                {"type": "coupon", "offer_id": "ten-off"},
                {"type": "points", "points": 5},
                {"type": "message", "template_id": "missing"},
            ]
        },
        ("body", "actions", 2, "template_id"),
    ),
    (
        "a coupon template before any coupon",
        {
            "actions": [
                {"type": "message", "template_id": "with-coupon"},
                {"type": "coupon", "offer_id": "ten-off"},
            ]
        },
        ("body", "actions", 0, "template_id"),
    ),
    (
        "a confirmation template",
        {"actions": [{"type": "message", "template_id": "confirm"}]},
        ("body", "actions", 0, "template_id"),
    ),
    (
        "a cron that never fires",
        {"trigger": {"type": "schedule", "cron": "cron(0 0 30 2 ? *)"}},
        ("body", "trigger", "cron"),
    ),
    (
        "a malformed cron",
        {"trigger": {"type": "schedule", "cron": "cron(0 9 * * *)"}},
        ("body", "trigger", "cron"),
    ),
    (
        "a rate where a cron goes",
        {"trigger": {"type": "schedule", "cron": "rate(1 day)"}},
        ("body", "trigger", "cron"),
    ),
    (
        "an unknown time zone",
        {"trigger": {"type": "schedule", "cron": "cron(0 9 ? * MON *)", "timezone": "Europe/Atlantis"}},
        ("body", "trigger", "timezone"),
    ),
    (
        "a one-time schedule in the past",
        {"trigger": {"type": "schedule", "at": "2027-02-28T09:00:00Z"}},
        ("body", "trigger", "at"),
    ),
    (
        "a points budget below one customer",
        {"limits": {"budget": {"points": 49}}},
        ("body", "limits", "budget", "points"),
    ),
    (
        "a money budget below one customer",
        {
            "actions": [{"type": "promo_cash", "amount": "5.00"}],
            "limits": {"budget": {"amount": "4.99"}},
        },
        ("body", "limits", "budget", "amount"),
    ),
    (
        "a segment trigger naming an unknown segment",
        {"trigger": {"type": "event", "event": "SegmentEntered", "where": {"segment_id": "nobody"}}},
        ("body", "trigger", "where", "segment_id"),
    ),
]


@pytest.mark.parametrize(("changes", "place"), [(c, p) for _, c, p in BAD], ids=[n for n, _, _ in BAD])
def test_each_bad_definition_names_its_field(changes: dict[str, Any], place: tuple[str | int, ...]) -> None:
    assert places(definition(**changes)) == [place]


def test_every_problem_is_named_at_once() -> None:
    bad = definition(
        audience={"segment_id": "nobody"},
        actions=[{"type": "coupon", "offer_id": "gone"}, {"type": "message", "template_id": "missing"}],
    )
    assert places(bad) == [
        ("body", "audience", "segment_id"),
        ("body", "actions", 0, "offer_id"),
        ("body", "actions", 1, "template_id"),
    ]


def test_a_one_time_schedule_that_has_passed_may_be_saved_again_unchanged() -> None:
    fired = definition(trigger={"type": "schedule", "at": "2027-02-28T09:00:00Z"}, status="active")
    assert places(fired, previous=saved(fired)) == []
    moved = definition(trigger={"type": "schedule", "at": "2027-02-27T09:00:00Z"})
    assert places(moved, previous=saved(fired)) == [("body", "trigger", "at")]


def test_ended_is_final() -> None:
    for status in ("draft", "active", "paused", "ended"):
        check_transition("paused", status, "c")
        check_transition("draft", status, "c")
    with pytest.raises(CampaignNotRunnable):
        check_transition("ended", "ended", "c")
    with pytest.raises(CampaignNotRunnable):
        check_transition("ended", "active", "c")


def test_only_an_active_schedule_campaign_has_a_schedule_and_on_its_zones_wall_clock() -> None:
    weekly = definition(
        trigger={"type": "schedule", "cron": "cron(0 9 ? * MON *)", "timezone": "Europe/Amsterdam"}
    )
    assert schedule_of(saved(weekly, status="active"), NOW) == Schedule(
        "cron(0 9 ? * MON *)", "Europe/Amsterdam"
    )
    for status in ("draft", "paused", "ended"):
        assert schedule_of(saved(weekly, status=status), NOW) is None
    assert schedule_of(saved(definition(), status="active"), NOW) is None  # manual
    # 2027-03-01 is a Monday, 12:00Z is past 09:00 CET: next Monday 08:00Z.
    assert next_run_at(saved(weekly, status="active"), NOW) == datetime(2027, 3, 8, 8, 0, tzinfo=UTC)
    once = definition(
        trigger={"type": "schedule", "at": "2027-03-28T07:30:00Z", "timezone": "Europe/Amsterdam"}
    )
    # 07:30Z on the day summer time starts is 09:30 CEST on Amsterdam's wall clock.
    assert schedule_of(saved(once, status="active"), NOW) == Schedule(
        "at(2027-03-28T09:30:00)", "Europe/Amsterdam"
    )
    assert schedule_of(saved(once, status="active"), datetime(2027, 3, 28, 8, tzinfo=UTC)) is None  # passed


def test_birthday_and_inactivity_triggers_derive_a_segment_within_the_audience() -> None:
    birthday = definition(trigger={"type": "birthday", "days_before": 3}, audience={"segment_id": "vip"})
    audience_rule = {"attr": "member", "eq": True}
    assert trigger_rule(birthday, audience_rule) == {"all": [{"birthday": {"within_days": 3}}, audience_rule]}
    lapsed = definition(trigger={"type": "inactivity", "days": 90}, audience={})
    assert trigger_rule(lapsed, None) == {"attr": "stats.last_purchase_at", "before": "P90D"}
    assert trigger_rule(definition(), audience_rule) is None
    assert trigger_segment_wanted(saved(birthday, status="active"))
    assert not trigger_segment_wanted(saved(birthday, status="paused"))
    assert not trigger_segment_wanted(saved(definition(), status="active"))


def test_names_stay_within_64_characters_and_distinct() -> None:
    assert trigger_segment_id("welcome") == "campaign-trigger-welcome"
    assert schedule_name("spring") == "campaign-spring"
    long_a, long_b = "a" * 63 + "1", "a" * 63 + "2"
    assert len(trigger_segment_id(long_a)) == 64 and len(schedule_name(long_a)) == 64
    assert trigger_segment_id(long_a) != trigger_segment_id(long_b)
    assert schedule_name(long_a) != schedule_name(long_b)


def test_a_scheduled_runs_id_is_its_occurrence_compact() -> None:
    assert scheduled_run_id("2027-03-29T07:00:00Z") == "sched-20270329T070000Z"
    assert scheduled_run_id("2027-03-29T09:00:00+02:00") == "sched-20270329T070000Z"
    with pytest.raises(InvalidTaskInput):
        scheduled_run_id("next monday")
    with pytest.raises(InvalidTaskInput):
        scheduled_run_id("2027-03-29T07:00:00")


def test_cost_of_counts_promo_cash_in_money() -> None:
    d = definition(
        actions=[{"type": "promo_cash", "amount": "2.50"}, {"type": "promo_cash", "amount": "2.50"}]
    )
    assert [
        p.loc
        for p in problems(
            d.model_copy(update={"limits": d.limits.model_copy(update={"budget": None})}), NAMED, now=NOW
        )
    ] == []
    assert Decimal("5.00") == sum((a.amount for a in d.actions), Decimal("0"))  # type: ignore[union-attr]


class _Control:
    def __init__(self, refuse: Exception | None = None) -> None:
        self.refuse = refuse
        self.started: list[tuple[str, str, str]] = []

    def start(self, campaign_id: str, *, run_id: str, trigger: str) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.started.append((campaign_id, run_id, trigger))


class _Platform:
    """Only what the campaign-schedule function asks the composition root for."""

    def __init__(self, control: _Control) -> None:
        self.campaign_run_control = control


def test_the_campaign_schedule_function_starts_the_occurrences_run_or_nothing() -> None:
    from loyalty.bootstrap import bound_container
    from loyalty.campaign_schedule import start_scheduled_run
    from loyalty.domain.errors import CampaignNotFound
    from loyalty_local.gateway import LambdaContext

    event = {"campaign_id": "monday", "scheduled_time": "2027-03-29T07:00:00Z"}
    control = _Control()
    with bound_container(_Platform(control)):  # type: ignore[arg-type]
        answer = start_scheduled_run(event, LambdaContext("campaign-schedule"))
    assert answer == {"campaign_id": "monday", "run_id": "sched-20270329T070000Z", "started": True}
    assert control.started == [("monday", "sched-20270329T070000Z", "schedule")]
    # A campaign paused or deleted since its schedule fired: nothing started, nothing raised.
    for refusal in (CampaignNotRunnable("paused"), CampaignNotFound("gone")):
        with bound_container(_Platform(_Control(refuse=refusal))):  # type: ignore[arg-type]
            answer = start_scheduled_run(event, LambdaContext("campaign-schedule"))
        assert answer["started"] is False and answer["reason"] == type(refusal).__name__
    with pytest.raises(InvalidTaskInput):
        start_scheduled_run({"campaign_id": "monday"}, LambdaContext("campaign-schedule"))
