"""Triggered campaigns, decided without I/O: which campaigns an event starts, the occasion it is
for, the audience check, and the service's use of the catalogue (cached) and the actor (fakes)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from loyalty.domain.campaign_triggers import (
    TriggerEvent,
    TriggerFacts,
    audience_skip,
    derived_segment_id,
    matches,
    occasion_for,
    where_holds,
)
from loyalty.domain.campaigns import TRIGGER_EVENTS, ActResult, Campaign, Occasion
from loyalty.resources import BUS_TRIGGERS, CAMPAIGN_TRIGGER, JOBS
from loyalty.services.campaign_triggers import CampaignTriggers

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def campaign(
    trigger: dict[str, Any], *, campaign_id: str = "c1", status: str = "active", **extra: Any
) -> Campaign:
    return Campaign.model_validate(
        {
            "campaign_id": campaign_id,
            "name": "A campaign",
            "trigger": trigger,
            "actions": [{"type": "points", "points": 10}],
            "status": status,
            "created_at": NOW,
            "updated_at": NOW,
            **extra,
        }
    )


def event(detail_type: str, event_id: str = "ev-1", **detail: Any) -> TriggerEvent:
    event = TriggerEvent.from_bus(
        {
            "id": "bus-id",
            "detail-type": detail_type,
            "detail": {"customer_id": "cust-1", "event_id": event_id, **detail},
        }
    )
    assert event is not None
    return event


def facts(**changes: Any) -> TriggerFacts:
    base: dict[str, Any] = {"customer_id": "cust-1", "member": True, "segments": frozenset()}
    return TriggerFacts(**(base | changes))


ENROLLED = {"type": "event", "event": "CustomerEnrolled"}
CART_ADD = {"type": "event", "event": "CustomerEventRecorded", "where": {"type": "cart_add"}}
CART_ADD_SKU = {
    "type": "event",
    "event": "CustomerEventRecorded",
    "where": {"type": "cart_add", "properties.sku": "SKU-1"},
}
SEGMENT = {"type": "event", "event": "SegmentEntered", "where": {"segment_id": "vip"}}
TIER_GOLD = {"type": "event", "event": "TierChanged", "where": {"to": "gold"}}
BIRTHDAY = {"type": "birthday", "days_before": 7}
LAPSE = {"type": "inactivity", "days": 90}


@pytest.mark.parametrize(
    ("trigger", "the_event", "expected"),
    [
        (ENROLLED, event("CustomerEnrolled"), True),
        (ENROLLED, event("TierChanged", to="gold"), False),
        (CART_ADD, event("CustomerEventRecorded", type="cart_add"), True),
        (CART_ADD, event("CustomerEventRecorded", type="app_install"), False),
        (CART_ADD, event("CustomerEventRecorded"), False),  # no type at all
        (CART_ADD_SKU, event("CustomerEventRecorded", type="cart_add", properties={"sku": "SKU-1"}), True),
        (CART_ADD_SKU, event("CustomerEventRecorded", type="cart_add", properties={"sku": "SKU-2"}), False),
        (CART_ADD_SKU, event("CustomerEventRecorded", type="cart_add"), False),  # no properties
        (SEGMENT, event("SegmentEntered", segment_id="vip", at="2026-11-22T10:00:00Z"), True),
        (SEGMENT, event("SegmentEntered", segment_id="lapsed", at="2026-11-22T10:00:00Z"), False),
        (SEGMENT, event("SegmentExited", segment_id="vip", at="2026-11-22T10:00:00Z"), False),
        (TIER_GOLD, event("TierChanged", to="gold"), True),
        (TIER_GOLD, event("TierChanged", to="silver"), False),
        (BIRTHDAY, event("SegmentEntered", segment_id=derived_segment_id("c1")), True),
        (BIRTHDAY, event("SegmentEntered", segment_id=derived_segment_id("c2")), False),  # another's
        (BIRTHDAY, event("CustomerEnrolled"), False),
        (LAPSE, event("SegmentEntered", segment_id=derived_segment_id("c1")), True),
        (LAPSE, event("SegmentExited", segment_id=derived_segment_id("c1")), False),
        ({"type": "manual"}, event("CustomerEnrolled"), False),
        ({"type": "schedule", "cron": "cron(0 9 * * ? *)"}, event("CustomerEnrolled"), False),
    ],
)
def test_which_campaigns_an_event_starts(
    trigger: dict[str, Any], the_event: TriggerEvent, expected: bool
) -> None:
    assert matches(campaign(trigger), the_event) is expected


@pytest.mark.parametrize(
    ("where", "detail", "expected"),
    [
        ({}, {}, True),
        ({"type": "cart_add"}, {"type": "cart_add"}, True),
        ({"type": "cart_add"}, {"type": "Cart_Add"}, False),  # exact, case and all
        ({"properties.qty": 2}, {"properties": {"qty": 2}}, True),
        ({"properties.qty": 2}, {"properties": {"qty": 2.0}}, True),  # JSON numbers compare as numbers
        ({"properties.qty": 1}, {"properties": {"qty": True}}, False),  # a bool is not a number
        ({"properties.vip": True}, {"properties": {"vip": 1}}, False),
        ({"properties.vip": True}, {"properties": {"vip": True}}, True),
        ({"properties.a.b": "x"}, {"properties": {"a": {"b": "x"}}}, True),
        ({"properties.a.b": "x"}, {"properties": {"a": "x"}}, False),
        ({"properties.x": None}, {"properties": {"x": None}}, True),
        ({"properties.x": None}, {"properties": {}}, False),  # absent is not null
        ({"type": "a", "properties.x": 1}, {"type": "a", "properties": {"x": 2}}, False),  # all must hold
    ],
)
def test_where_compares_detail_fields_for_equality(
    where: dict[str, Any], detail: dict[str, Any], expected: bool
) -> None:
    assert where_holds(where, detail) is expected


AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@pytest.mark.parametrize(
    ("trigger", "the_event", "customer", "key"),
    [
        (ENROLLED, event("CustomerEnrolled"), None, "enrolment"),
        (ENROLLED, event("CustomerEnrolled", event_id="ev-2"), None, "enrolment"),  # a second: the same
        (CART_ADD, event("CustomerEventRecorded", "ev-7", type="cart_add"), None, "event:ev-7"),
        (  # the caller's event id is unique within its store
            CART_ADD,
            event("CustomerEventRecorded", "ev-7", type="cart_add", store_id="ams-01"),
            None,
            "event:ams-01:ev-7",
        ),
        (TIER_GOLD, event("TierChanged", "ev-8", to="gold"), None, "event:ev-8"),
        (
            SEGMENT,
            event("SegmentEntered", segment_id="vip", at="2026-11-22T10:00:00+00:00"),
            None,
            "entry:vip:2026-11-22T10:00:00Z",
        ),
        (  # the same instant however it was written
            SEGMENT,
            event("SegmentEntered", segment_id="vip", at="2026-11-22 11:00:00+01:00"),
            None,
            "entry:vip:2026-11-22T10:00:00Z",
        ),
        (SEGMENT, event("SegmentEntered", segment_id="vip"), None, None),  # no instant: nothing
        (
            BIRTHDAY,
            event("SegmentEntered", segment_id=derived_segment_id("c1"), at="2026-11-22T10:00:00Z"),
            facts(birthday=date(1990, 11, 29)),
            "birthday:2026",
        ),
        (  # a January birthday entered in December is next year's
            BIRTHDAY,
            event("SegmentEntered", segment_id=derived_segment_id("c1"), at="2026-12-28T10:00:00Z"),
            facts(birthday=date(1990, 1, 2)),
            "birthday:2027",
        ),
        (  # on the birthday itself: this year's
            BIRTHDAY,
            event("SegmentEntered", segment_id=derived_segment_id("c1"), at="2026-12-31T10:00:00Z"),
            facts(birthday=date(1990, 12, 31)),
            "birthday:2026",
        ),
        (  # the customer's local date decides: 31 Dec 23:30 UTC is 1 Jan in Amsterdam
            BIRTHDAY,
            event("SegmentEntered", segment_id=derived_segment_id("c1"), at="2026-12-31T23:30:00Z"),
            facts(birthday=date(1990, 12, 31), timezone=AMSTERDAM),
            "birthday:2027",
        ),
        (  # 29 February in a common year
            BIRTHDAY,
            event("SegmentEntered", segment_id=derived_segment_id("c1"), at="2027-02-25T10:00:00Z"),
            facts(birthday=date(2000, 2, 29)),
            "birthday:2027",
        ),
        (
            BIRTHDAY,
            event("SegmentEntered", segment_id=derived_segment_id("c1"), at="2026-11-22T10:00:00Z"),
            facts(birthday=None),
            None,
        ),
        (BIRTHDAY, event("SegmentEntered", segment_id=derived_segment_id("c1")), facts(), None),
        (
            LAPSE,
            event("SegmentEntered", segment_id=derived_segment_id("c1"), at="2026-11-22T10:00:00Z"),
            facts(last_purchase_at=datetime(2026, 8, 20, 23, 59, tzinfo=UTC)),
            "lapse:2026-08-20",
        ),
        (LAPSE, event("SegmentEntered", segment_id=derived_segment_id("c1")), facts(), None),
        (LAPSE, event("SegmentEntered", segment_id=derived_segment_id("c1")), None, None),
    ],
)
def test_the_occasion_of_each_trigger(
    trigger: dict[str, Any], the_event: TriggerEvent, customer: TriggerFacts | None, key: str | None
) -> None:
    occasion = occasion_for(campaign(trigger), the_event, customer)
    assert (occasion.key if occasion else None) == key
    assert occasion is None or occasion.run_id is None


@pytest.mark.parametrize(
    ("audience", "customer", "reason"),
    [
        ({}, facts(member=False), None),
        ({"members_only": True}, facts(member=False), "not_member"),
        ({"members_only": True}, facts(member=True), None),
        ({"segment_id": "vip"}, facts(segments=frozenset({"other"})), "not_in_audience"),
        ({"segment_id": "vip"}, facts(segments=frozenset({"vip"})), None),
        (
            {"segment_id": "vip", "members_only": True},
            facts(member=False, segments=frozenset({"vip"})),
            "not_member",
        ),
    ],
)
def test_the_audience_check(audience: dict[str, Any], customer: TriggerFacts, reason: str | None) -> None:
    assert audience_skip(campaign(ENROLLED, audience=audience), customer) == reason


@pytest.mark.parametrize(
    "envelope",
    [
        {"id": "x", "detail-type": "CustomerErased", "detail": {"customer_id": "c", "event_id": "e"}},
        {"id": "x", "detail-type": "CustomerEnrolled", "detail": {"event_id": "e"}},  # no customer
        {"id": "x", "detail-type": "CustomerEnrolled", "detail": {"customer_id": ""}},
        {"id": "x", "detail-type": "CustomerEnrolled"},
        {"detail-type": "CustomerEnrolled", "detail": {"customer_id": "c"}},  # no id at all
    ],
)
def test_events_a_trigger_cannot_use_are_none(envelope: dict[str, Any]) -> None:
    assert TriggerEvent.from_bus(envelope) is None


def test_the_domain_event_id_is_the_events_id_not_the_bus_envelopes() -> None:
    # The publisher may put one outbox event on the bus twice (a retried stream batch): the bus
    # gives each its own id, the detail keeps the domain event's.
    one = TriggerEvent.from_bus(
        {"id": "bus-1", "detail-type": "BadgeEarned", "detail": {"customer_id": "c", "event_id": "e"}}
    )
    two = TriggerEvent.from_bus(
        {"id": "bus-2", "detail-type": "BadgeEarned", "detail": {"customer_id": "c", "event_id": "e"}}
    )
    assert one is not None and two is not None and one.event_id == two.event_id == "e"
    bare = TriggerEvent.from_bus(
        {"id": "bus-3", "detail-type": "BadgeEarned", "detail": {"customer_id": "c"}}
    )
    assert bare is not None and bare.event_id == "bus-3"


def test_the_bus_trigger_takes_exactly_the_trigger_events_to_the_job() -> None:
    assert CAMPAIGN_TRIGGER in BUS_TRIGGERS
    assert set(CAMPAIGN_TRIGGER.detail_types) == TRIGGER_EVENTS
    assert len(CAMPAIGN_TRIGGER.detail_types) == len(TRIGGER_EVENTS)
    assert CAMPAIGN_TRIGGER.input_path is None  # the whole event: its detail-type and id too
    assert CAMPAIGN_TRIGGER.function in {job.name for job in JOBS}


# ---- the service, with fakes for the catalogue, the actor and the facts -------------------------


class FakeCatalogue:
    def __init__(self, campaigns: list[Campaign]) -> None:
        self.campaigns = campaigns
        self.reads = 0

    def get(self, campaign_id: str) -> Campaign:
        return next(c for c in self.campaigns if c.campaign_id == campaign_id)

    def triggered(self) -> list[Campaign]:
        self.reads += 1
        return list(self.campaigns)


class FakeActor:
    """Acts once per (campaign, occasion, customer), as the real actor's receipts make it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.receipts: set[tuple[str, str, str]] = set()

    def act(self, campaign: Campaign, occasion: Occasion, customer_id: str) -> ActResult:
        key = (campaign.campaign_id, occasion.key, customer_id)
        self.calls.append(key)
        first = key not in self.receipts
        self.receipts.add(key)
        return ActResult(customer_id, "actioned", first_time=first)

    def evaluate(
        self, campaign: Campaign, occasion: Occasion, customer_ids: Sequence[str]
    ) -> list[ActResult]:
        raise AssertionError("triggers never dry-run")


class FakeFacts:
    def __init__(self, known: dict[str, TriggerFacts]) -> None:
        self.known = known
        self.reads = 0

    def facts(self, customer_id: str) -> TriggerFacts | None:
        self.reads += 1
        return self.known.get(customer_id)


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def bus(detail_type: str, event_id: str, **detail: Any) -> dict[str, Any]:
    return {
        "id": f"bus-{event_id}",
        "detail-type": detail_type,
        "detail": {"customer_id": "cust-1", "event_id": event_id, **detail},
    }


def service(
    *campaigns: Campaign, customer: TriggerFacts | None = None
) -> tuple[CampaignTriggers, FakeCatalogue, FakeActor, FakeFacts, Ticks]:
    catalogue, actor = FakeCatalogue(list(campaigns)), FakeActor()
    known = FakeFacts({"cust-1": customer} if customer else {})
    ticks = Ticks()
    triggers = CampaignTriggers(catalogue=catalogue, actor=actor, facts=known, ttl=5.0, monotonic=ticks)
    return triggers, catalogue, actor, known, ticks


def test_an_enrolment_acts_once_for_every_matching_active_campaign() -> None:
    triggers, _, actor, known, _ = service(
        campaign(ENROLLED, campaign_id="welcome"),
        campaign(ENROLLED, campaign_id="draft", status="draft"),
        campaign(ENROLLED, campaign_id="paused", status="paused"),
        campaign(CART_ADD, campaign_id="cart"),
        campaign({"type": "manual"}, campaign_id="manual"),
    )
    done = triggers.handle(bus("CustomerEnrolled", "e1"))
    assert [(t.campaign_id, t.occasion) for t in done] == [("welcome", "enrolment")]
    assert actor.calls == [("welcome", "enrolment", "cust-1")]
    assert known.reads == 0  # no audience, no birthday: nothing to read
    again = triggers.handle(bus("CustomerEnrolled", "e2"))  # a second enrolment event
    assert [t.result.first_time for t in again if t.result] == [False]
    assert actor.receipts == {("welcome", "enrolment", "cust-1")}


def test_each_customer_event_is_its_own_occasion() -> None:
    triggers, _, actor, _, _ = service(campaign(CART_ADD, campaign_id="cart"))
    triggers.handle(bus("CustomerEventRecorded", "e1", type="cart_add"))
    triggers.handle(bus("CustomerEventRecorded", "e1", type="cart_add"))  # redelivered
    triggers.handle(bus("CustomerEventRecorded", "e2", type="cart_add"))
    triggers.handle(bus("CustomerEventRecorded", "e3", type="page_view"))
    assert sorted(actor.receipts) == [("cart", "event:e1", "cust-1"), ("cart", "event:e2", "cust-1")]


def test_outside_the_audience_the_actor_is_not_asked() -> None:
    triggers, _, actor, known, _ = service(
        campaign(ENROLLED, campaign_id="members", audience={"members_only": True}),
        campaign(ENROLLED, campaign_id="vips", audience={"segment_id": "vip"}),
        campaign(ENROLLED, campaign_id="all"),
        customer=facts(member=False, segments=frozenset({"other"})),
    )
    done = {t.campaign_id: t.result for t in triggers.handle(bus("CustomerEnrolled", "e1"))}
    assert {k: (r.outcome, r.reason) for k, r in done.items() if r} == {
        "members": ("skipped", "not_member"),
        "vips": ("skipped", "not_in_audience"),
        "all": ("actioned", None),
    }
    assert actor.calls == [("all", "enrolment", "cust-1")]
    assert known.reads == 1  # one read for every campaign of the event


def test_a_merged_away_id_is_actioned_as_its_survivor() -> None:
    triggers, _, actor, _, _ = service(
        campaign(ENROLLED, campaign_id="members", audience={"members_only": True}),
        customer=facts(customer_id="survivor"),
    )
    triggers.handle(bus("CustomerEnrolled", "e1"))
    assert actor.calls == [("members", "enrolment", "survivor")]


def test_an_unknown_customer_goes_to_the_actor_who_says_gone() -> None:
    triggers, _, actor, _, _ = service(
        campaign(ENROLLED, campaign_id="members", audience={"members_only": True})
    )
    triggers.handle(bus("CustomerEnrolled", "e1"))
    assert actor.calls == [("members", "enrolment", "cust-1")]


def test_birthday_coupons_once_a_year() -> None:
    segment = derived_segment_id("bday")
    triggers, _, actor, _, _ = service(
        campaign(BIRTHDAY, campaign_id="bday"), customer=facts(birthday=date(1990, 3, 5))
    )
    for event_id, at in [
        ("e1", "2027-03-01T08:00:00Z"),
        ("e2", "2027-03-03T08:00:00Z"),
        ("e3", "2028-03-01T08:00:00Z"),
    ]:
        triggers.handle(bus("SegmentEntered", event_id, segment_id=segment, at=at))
    assert sorted(actor.receipts) == [
        ("bday", "birthday:2027", "cust-1"),
        ("bday", "birthday:2028", "cust-1"),
    ]


def test_the_catalogue_is_read_once_per_few_seconds() -> None:
    triggers, catalogue, actor, _, ticks = service(campaign(ENROLLED, campaign_id="welcome"))
    triggers.handle(bus("CustomerEnrolled", "e1"))
    ticks.now = 4.9
    catalogue.campaigns.append(campaign(ENROLLED, campaign_id="late"))
    triggers.handle(bus("CustomerEnrolled", "e2"))
    assert catalogue.reads == 1
    ticks.now = 5.0
    triggers.handle(bus("CustomerEnrolled", "e3"))
    assert catalogue.reads == 2
    assert ("late", "enrolment", "cust-1") in actor.receipts


def test_an_event_no_trigger_can_use_reads_nothing() -> None:
    triggers, catalogue, actor, _, _ = service(campaign(ENROLLED))
    assert triggers.handle({"id": "x", "detail-type": "CustomerErased", "detail": {"customer_id": "c"}}) == []
    assert catalogue.reads == 0 and actor.calls == []


def test_a_customer_the_stored_memberships_miss_is_evaluated_live_once() -> None:
    # The segments job may not yet have handled the very event (an enrolment into a members segment)
    catalogue, actor = (
        FakeCatalogue([campaign(ENROLLED, campaign_id="vips", audience={"segment_id": "vip"})]),
        FakeActor(),
    )
    asked: list[str] = []

    def live(customer_id: str) -> frozenset[str]:
        asked.append(customer_id)
        return frozenset({"vip"})

    known = FakeFacts({"cust-1": facts(segments=frozenset())})
    triggers = CampaignTriggers(catalogue=catalogue, actor=actor, facts=known, live_segments=live)
    (done,) = triggers.handle(bus("CustomerEnrolled", "e1"))
    assert done.result is not None and done.result.outcome == "actioned"
    assert asked == ["cust-1"]
    # Stored and in: nobody asks again
    known.known["cust-1"] = facts(segments=frozenset({"vip"}))
    triggers.handle(bus("CustomerEnrolled", "e2"))
    assert asked == ["cust-1"]


def test_outside_the_audience_stored_and_live_is_skipped() -> None:
    catalogue, actor = (
        FakeCatalogue([campaign(ENROLLED, campaign_id="vips", audience={"segment_id": "vip"})]),
        FakeActor(),
    )
    known = FakeFacts({"cust-1": facts(segments=frozenset({"other"}))})
    triggers = CampaignTriggers(
        catalogue=catalogue, actor=actor, facts=known, live_segments=lambda _: frozenset()
    )
    (done,) = triggers.handle(bus("CustomerEnrolled", "e1"))
    assert done.result is not None and (done.result.outcome, done.result.reason) == (
        "skipped",
        "not_in_audience",
    )
    assert actor.calls == []


def test_the_event_as_eventbridge_hands_it_to_lambda_is_read() -> None:
    from loyalty_local import events as samples

    envelope = samples.sample(samples.DOMAIN_EVENT)  # PointsEarned, as the bus delivers it
    event = TriggerEvent.from_bus(envelope)
    assert event is not None
    assert event.detail_type == "PointsEarned"
    assert event.event_id == envelope["detail"]["event_id"] != envelope["id"]
    assert event.customer_id == envelope["detail"]["customer_id"]
