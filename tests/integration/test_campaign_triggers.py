"""Triggered campaigns end to end, on the local path `make run` wires: the change committed with its
outbox -> the table's stream -> the publisher -> the bus -> the campaign trigger rule (tapped by
loyalty_local.bus_triggers) -> the `campaign-triggers` handler -> the real catalogue (campaigns
saved through CampaignService) and the real CampaignActor. Each wait is a deadline to poll by (the
issue's 10 s for an enrolment to bring its coupon and email), never a timed assertion; "nothing
more" is checked once the function has handled the event in question.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from loyalty.bootstrap import Container
from loyalty.domain.campaigns import CampaignDefinition
from loyalty.domain.customers import Consents, Profile
from loyalty.domain.events import SEGMENT_ENTERED
from loyalty.services.campaign_triggers import CampaignTriggers, Triggered
from loyalty.services.customers import EnrolCommand, RawLink
from tests.conftest import FixedClock
from tests.integration.test_campaign_actions import (
    POS,
    campaign_ledger,
    campaign_messages,
    coupons,
    offer,
    template,
)
from tests.integration.test_campaign_trigger_delivery import (
    WITHIN,
    put_on_bus,
    start_trigger_path,
    stop_trigger_path,
)
from tests.integration.test_segment_membership import sell

pytestmark = pytest.mark.xdist_group("campaign-triggers")

START = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


class RecordingTriggers:
    """The container's CampaignTriggers, noting each event it has handled (by domain event id)."""

    def __init__(self, inner: CampaignTriggers) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.handled: list[tuple[str, str, str, str]] = []  # (detail-type, customer, event id, segment)

    def handle(self, envelope: Mapping[str, Any]) -> list[Triggered]:
        done = self._inner.handle(envelope)
        detail = envelope.get("detail") or {}
        with self._lock:
            self.handled.append(
                (
                    str(envelope.get("detail-type")),
                    str(detail.get("customer_id")),
                    str(detail.get("event_id")),
                    str(detail.get("segment_id")),
                )
            )
        return done

    def count(self, detail_type: str, customer_id: str, segment_id: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for t, c, _, s in self.handled
                if t == detail_type and c == customer_id and (segment_id is None or s == segment_id)
            )

    def saw(self, event_id: str) -> bool:
        with self._lock:
            return any(e == event_id for _, _, e, _ in self.handled)


@dataclass
class Platform:
    container: Container
    clock: FixedClock
    triggers: RecordingTriggers
    put_event: Callable[[str, dict[str, Any]], str]

    def wait_for(self, predicate: Callable[[], bool], within: float = WITHIN) -> bool:
        deadline = datetime.now(UTC) + timedelta(seconds=within)
        while datetime.now(UTC) < deadline:
            if predicate():
                return True
            threading.Event().wait(0.05)
        return predicate()

    def save(self, campaign_id: str, body: dict[str, Any]) -> None:
        definition = CampaignDefinition.model_validate({"name": campaign_id, "status": "active", **body})
        self.container.campaigns.put(campaign_id, definition)

    def enrol(self, *, birthday: date | None = None) -> str:
        links = [RawLink("email", f"t-{uuid.uuid4().hex[:10]}@example.com")]
        command = EnrolCommand(
            links, Profile(first_name="Ann", birthday=birthday), Consents(email=True), True, None
        )
        return self.container.customers.enrol(command, POS).customer.customer_id


class ListQueue:
    """The segments queue: the background evaluation of a new segment is not under test."""

    def send(self, body: Mapping[str, Any], delay_seconds: int = 0) -> None:
        return None


@pytest.fixture
def platform(aws_session: Any, make_container: Callable[..., Container]) -> Iterator[Platform]:
    clock = FixedClock(START)
    container = make_container(clock)
    container.segment_queue = ListQueue()
    recording = RecordingTriggers(container.campaign_triggers)
    container.__dict__["campaign_triggers"] = recording
    started = start_trigger_path(aws_session, container)
    bus = aws_session.client("events")

    def put_event(detail_type: str, detail: dict[str, Any]) -> str:
        event_id = str(detail.setdefault("event_id", uuid.uuid4().hex))
        put_on_bus(bus, container.settings.event_bus_name, detail_type, detail)
        return event_id

    yield Platform(container, clock, recording, put_event)
    stop_trigger_path(aws_session, container, started)
    assert started[1].failures == 0  # no delivery of the trigger failed


def test_an_enrolment_gives_the_welcome_coupon_and_email_within_ten_seconds_once(platform: Platform) -> None:
    c = platform.container
    welcome_offer, welcome_mail = (
        offer(c, "welcome-coffee"),
        template(c, "Your coupon {{ coupon.code }}. {{ unsubscribe_url }}"),
    )
    platform.save(
        "welcome",
        {
            "trigger": {"type": "event", "event": "CustomerEnrolled"},
            "actions": [
                {"type": "coupon", "offer_id": welcome_offer},
                {"type": "message", "template_id": welcome_mail},
            ],
        },
    )
    # When a customer enrols
    customer = platform.enrol()
    # Then within 10 s she has the welcome coupon and its email is queued
    assert platform.wait_for(lambda: len(campaign_messages(c, customer, "welcome")) == 1)
    (coupon,) = coupons(c, customer)
    assert coupon.offer_id == welcome_offer
    # When a second enrolment event for her comes (another event id), and the first again
    second = platform.put_event("CustomerEnrolled", {"customer_id": customer})
    assert platform.wait_for(lambda: platform.triggers.saw(second))
    # Then nothing more: one coupon, one email
    assert len(coupons(c, customer)) == 1
    assert len(campaign_messages(c, customer, "welcome")) == 1


def test_each_cart_add_event_is_actioned_once(platform: Platform) -> None:
    c = platform.container
    platform.save(
        "cart",
        {
            "trigger": {"type": "event", "event": "CustomerEventRecorded", "where": {"type": "cart_add"}},
            "actions": [{"type": "points", "points": 5}],
        },
    )
    customer = platform.enrol()
    base = {"customer_id": customer, "store_id": "ams-01", "type": "cart_add"}
    ids = [platform.put_event("CustomerEventRecorded", {**base, "event_id": f"cart-{n}"}) for n in (1, 2)]
    platform.put_event("CustomerEventRecorded", {**base, "event_id": "view-1", "type": "page_view"})
    again = platform.put_event("CustomerEventRecorded", {**base, "event_id": ids[0]})  # delivered again
    assert platform.wait_for(lambda: platform.triggers.count("CustomerEventRecorded", customer) == 4)
    assert again == ids[0]
    # One award per cart_add event id; the page view and the repeat gave nothing
    assert campaign_ledger(c, customer, "cart") == [5, 5]


def test_a_segment_entry_inside_the_reentry_window_gives_nothing_after_it_again(platform: Platform) -> None:
    c = platform.container
    c.segments.put("vip", name="VIP", description="", rule={"attr": "member", "eq": True})
    platform.save(
        "vip-welcome",
        {
            "trigger": {"type": "event", "event": "SegmentEntered", "where": {"segment_id": "vip"}},
            "actions": [{"type": "points", "points": 50}],
            "limits": {"reentry_days": 7},
        },
    )
    customer = platform.enrol()

    def enter() -> None:
        at = platform.clock.now().isoformat()
        event_id = platform.put_event(
            SEGMENT_ENTERED, {"customer_id": customer, "segment_id": "vip", "at": at}
        )
        assert platform.wait_for(lambda: platform.triggers.saw(event_id))

    enter()
    assert campaign_ledger(c, customer, "vip-welcome") == [50]
    platform.clock.advance(days=3)  # re-entered three days later: inside the window
    enter()
    assert campaign_ledger(c, customer, "vip-welcome") == [50]
    platform.clock.advance(days=5)  # eight days after the first: past it
    enter()
    assert campaign_ledger(c, customer, "vip-welcome") == [50, 50]


def test_a_birthday_coupon_once_a_year(platform: Platform) -> None:
    c = platform.container
    birthday_offer = offer(c, "birthday-cake")
    platform.save(
        "birthday",
        {
            "trigger": {"type": "birthday", "days_before": 3},
            "actions": [{"type": "coupon", "offer_id": birthday_offer}],
        },
    )
    # A customer whose birthday is in a week
    customer = platform.enrol(birthday=date(1990, 11, 29))
    membership = c.segment_membership
    segment = c.campaigns.view(c.campaigns.get("birthday")).trigger_segment_id
    assert segment is not None

    def entries() -> int:
        return platform.triggers.count(SEGMENT_ENTERED, customer, segment)

    membership.evaluate_customer(customer)
    assert entries() == 0  # not yet within three days of it
    # When the clock reaches three days before it, the segments worker enters her
    platform.clock.advance(days=4)
    membership.evaluate_customer(customer)
    assert platform.wait_for(lambda: entries() == 1)
    assert len(coupons(c, customer)) == 1
    # The same year's birthday entered again (the derived segment left and re-entered): nothing
    platform.clock.advance(days=1)
    at = platform.clock.now().isoformat()
    again = platform.put_event(SEGMENT_ENTERED, {"customer_id": customer, "segment_id": segment, "at": at})
    assert platform.wait_for(lambda: platform.triggers.saw(again))
    assert len(coupons(c, customer)) == 1
    # After the birthday she leaves it; the next year she enters again and gets next year's coupon
    platform.clock.advance(days=5)
    membership.evaluate_customer(customer)
    platform.clock.advance(days=360)
    membership.evaluate_customer(customer)
    assert platform.wait_for(lambda: entries() == 3)
    assert len(coupons(c, customer)) == 2


def test_an_audience_segment_the_enrolment_itself_brings_her_into_counts_at_once(platform: Platform) -> None:
    c = platform.container
    c.segments.put("members", name="Members", description="", rule={"attr": "member", "eq": True})
    c.segments.put("nobody", name="Nobody", description="", rule={"attr": "member", "eq": False})
    for campaign_id, segment in (("members-welcome", "members"), ("nobody-welcome", "nobody")):
        platform.save(
            campaign_id,
            {
                "trigger": {"type": "event", "event": "CustomerEnrolled"},
                "audience": {"segment_id": segment},
                "actions": [{"type": "points", "points": 20}],
            },
        )
    # When a member enrols, before any segments job has stored her memberships (none runs here)
    customer = platform.enrol()
    assert platform.wait_for(lambda: platform.triggers.count("CustomerEnrolled", customer) == 1)
    assert c.segment_membership.memberships(customer) == {}
    # Then the campaign for members acted (evaluated live), the one for non-members did not
    assert campaign_ledger(c, customer, "members-welcome") == [20]
    assert campaign_ledger(c, customer, "nobody-welcome") == []


def test_the_facts_a_trigger_reads_follow_the_profile_and_memberships(platform: Platform) -> None:
    c = platform.container
    c.segments.put("members", name="Members", description="", rule={"attr": "member", "eq": True})
    customer = platform.enrol(birthday=date(1990, 2, 28))
    c.segment_membership.evaluate_customer(customer)
    facts = c.campaign_trigger_facts.facts(customer)
    assert facts is not None
    assert (facts.customer_id, facts.member, facts.birthday) == (customer, True, date(1990, 2, 28))
    assert "members" in facts.segments
    assert facts.last_purchase_at is None
    assert str(facts.timezone) == c.programme.current().messaging.zone_of(None)
    assert c.campaign_trigger_facts.facts("nobody-at-all") is None


def test_a_win_back_once_per_lapse(platform: Platform) -> None:
    c = platform.container
    platform.save(
        "win-back",
        {"trigger": {"type": "inactivity", "days": 30}, "actions": [{"type": "points", "points": 30}]},
    )
    segment = c.campaigns.view(c.campaigns.get("win-back")).trigger_segment_id
    assert segment is not None
    customer = platform.enrol()
    sell(c, customer)  # her last purchase: today
    membership = c.segment_membership

    def entries() -> int:
        return platform.triggers.count(SEGMENT_ENTERED, customer, segment)

    membership.evaluate_customer(customer)
    # When 30 days pass without a purchase, she enters the campaign's segment: points, once
    platform.clock.advance(days=31)
    membership.evaluate_customer(customer)
    assert platform.wait_for(lambda: entries() == 1)
    assert campaign_ledger(c, customer, "win-back") == [30]
    # The same lapse entered again gives nothing
    at = platform.clock.now().isoformat()
    again = platform.put_event(SEGMENT_ENTERED, {"customer_id": customer, "segment_id": segment, "at": at})
    assert platform.wait_for(lambda: platform.triggers.saw(again))
    assert campaign_ledger(c, customer, "win-back") == [30]
    # She buys again (she leaves the segment); 30 days later it is a new lapse: points again
    sell(c, customer)
    membership.evaluate_customer(customer)
    platform.clock.advance(days=31)
    membership.evaluate_customer(customer)
    assert platform.wait_for(lambda: entries() == 3)
    assert campaign_ledger(c, customer, "win-back") == [30, 30]
