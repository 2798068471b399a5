"""The path a triggered campaign's event takes locally, as `make run` wires it: a change committed
with its outbox -> the table's stream -> the publisher -> the bus -> the campaign trigger's rule
(moto, tapped into a queue: loyalty_local.bus_triggers) -> the `campaign-triggers` function's real
handler -> CampaignTriggers. The catalogue and the actor are fakes here (the actor counts one
receipt per campaign, occasion and customer): what is checked is the delivery — each event reaches
the function, its occasion is the right one, a redelivered event is the same occasion — and that it
arrives within the issue's 10 seconds (a deadline to poll by, not a timed assertion).
tests/integration/test_campaign_triggers.py runs the real catalogue and actor end to end.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from loyalty.bootstrap import Container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.campaigns import ActResult, Campaign, Occasion
from loyalty.domain.customers import Consents, Profile
from loyalty.domain.events import SOURCE
from loyalty.resources import CAMPAIGN_TRIGGER
from loyalty.services.campaign_triggers import CampaignTriggers
from loyalty.services.customers import EnrolCommand, RawLink
from loyalty_local.bus_triggers import TriggerDelivery, create_trigger, trigger_poller
from loyalty_local.jobs import QueuePoller, StreamPoller

pytestmark = pytest.mark.xdist_group("campaign-triggers")

POS = Principal("key-pos", KeyKind.POS, "ams-01")
WITHIN = 10.0  # the bound for a triggered campaign to act, locally
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def campaign(campaign_id: str, trigger: dict[str, Any]) -> Campaign:
    return Campaign.model_validate(
        {
            "campaign_id": campaign_id,
            "name": campaign_id,
            "trigger": trigger,
            "actions": [{"type": "points", "points": 10}],
            "status": "active",
            "created_at": NOW,
            "updated_at": NOW,
        }
    )


class Catalogue:
    def __init__(self, campaigns: list[Campaign]) -> None:
        self.campaigns = campaigns

    def get(self, campaign_id: str) -> Campaign:
        return next(c for c in self.campaigns if c.campaign_id == campaign_id)

    def triggered(self) -> list[Campaign]:
        return list(self.campaigns)


class ReceiptActor:
    """One receipt per (campaign, occasion, customer), as the real actor's conditional put."""

    def __init__(self) -> None:
        self.receipts: dict[tuple[str, str, str], float] = {}
        self.calls: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

    def act(self, campaign: Campaign, occasion: Occasion, customer_id: str) -> ActResult:
        key = (campaign.campaign_id, occasion.key, customer_id)
        with self._lock:
            self.calls.append(key)
            first = key not in self.receipts
            self.receipts.setdefault(key, time.monotonic())
        return ActResult(customer_id, "actioned", first_time=first)

    def evaluate(
        self, campaign: Campaign, occasion: Occasion, customer_ids: Sequence[str]
    ) -> list[ActResult]:
        raise AssertionError("no dry run here")

    def of(self, customer_id: str) -> list[tuple[str, str]]:
        with self._lock:
            return sorted((c, o) for c, o, who in self.receipts if who == customer_id)


@dataclass
class Delivery:
    container: Container
    actor: ReceiptActor
    catalogue: Catalogue
    tap: QueuePoller
    redeliver: Callable[[dict[str, Any]], None]
    put_event: Callable[[str, dict[str, Any]], None]

    def wait_for(self, predicate: Callable[[], bool], within: float = WITHIN) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def enrol(self, email: str) -> str:
        command = EnrolCommand([RawLink("email", email)], Profile(), Consents(email=True), True, None)
        return self.container.customers.enrol(command, POS).customer.customer_id


def start_trigger_path(aws_session: Any, container: Container) -> tuple[StreamPoller, QueuePoller, Any, str]:
    """The publisher on the container's table and the campaign trigger's tap, both running."""
    settings = container.settings
    prefix = f"{settings.table_name}-"
    publisher = StreamPoller(aws_session, settings.table_name, function="publisher")
    tap = create_trigger(aws_session, CAMPAIGN_TRIGGER, settings.event_bus_name, prefix=prefix)
    poller = trigger_poller(aws_session, tap)
    for background in (publisher, poller):
        background.container = container
    publisher.start()
    poller.start()
    return publisher, poller, tap, f"{prefix}{CAMPAIGN_TRIGGER.local_name}"


def stop_trigger_path(aws_session: Any, container: Container, started: tuple[Any, ...]) -> None:
    publisher, poller, _, rule = started
    publisher.stop()
    poller.stop()
    events = aws_session.client("events")
    bus = container.settings.event_bus_name
    events.remove_targets(Rule=rule, EventBusName=bus, Ids=["LocalTap"])
    events.delete_rule(Name=rule, EventBusName=bus)


def put_on_bus(events: Any, bus: str, detail_type: str, detail: dict[str, Any]) -> None:
    """An event as the publisher puts it on the bus (the platform's source)."""
    put = events.put_events(
        Entries=[
            {"Source": SOURCE, "DetailType": detail_type, "Detail": json.dumps(detail), "EventBusName": bus}
        ]
    )
    assert put["FailedEntryCount"] == 0


@pytest.fixture
def delivery(aws_session: Any, make_container: Callable[..., Container]) -> Iterator[Delivery]:
    container = make_container()
    actor, catalogue = ReceiptActor(), Catalogue([])
    container.__dict__["campaign_triggers"] = CampaignTriggers(
        catalogue=catalogue, actor=actor, facts=container.campaign_trigger_facts, ttl=0.0
    )
    started = start_trigger_path(aws_session, container)
    events = aws_session.client("events")
    handler = TriggerDelivery(aws_session, CAMPAIGN_TRIGGER)

    def redeliver(event: dict[str, Any]) -> None:
        from loyalty.bootstrap import bound_container

        with bound_container(container):
            handler.deliver(event)

    def put_event(detail_type: str, detail: dict[str, Any]) -> None:
        put_on_bus(events, container.settings.event_bus_name, detail_type, detail)

    yield Delivery(container, actor, catalogue, started[1], redeliver, put_event)
    stop_trigger_path(aws_session, container, started)


def test_an_enrolment_reaches_its_campaign_within_ten_seconds_and_once(delivery: Delivery) -> None:
    delivery.catalogue.campaigns.append(campaign("welcome", {"type": "event", "event": "CustomerEnrolled"}))
    # When a customer enrols (the profile and its outbox in one transaction)
    customer = delivery.enrol(f"{uuid.uuid4().hex[:10]}@example.com")
    # Then the stream, the publisher, the bus and the tap bring it to the function within 10 s
    assert delivery.wait_for(lambda: delivery.actor.of(customer) == [("welcome", "enrolment")])
    # And a second enrolment event for her (another event id) is the same occasion: nothing more
    delivery.put_event("CustomerEnrolled", {"customer_id": customer, "event_id": uuid.uuid4().hex})
    assert delivery.wait_for(lambda: len([c for c in delivery.actor.calls if c[2] == customer]) == 2)
    assert delivery.actor.of(customer) == [("welcome", "enrolment")]
    assert delivery.tap.failures == 0


def test_each_cart_add_is_one_occasion_however_often_it_is_delivered(delivery: Delivery) -> None:
    delivery.catalogue.campaigns.append(
        campaign(
            "cart",
            {"type": "event", "event": "CustomerEventRecorded", "where": {"type": "cart_add"}},
        )
    )
    customer = delivery.enrol(f"{uuid.uuid4().hex[:10]}@example.com")
    first = {"customer_id": customer, "event_id": "cart-1", "store_id": "ams-01", "type": "cart_add"}
    delivery.put_event("CustomerEventRecorded", first)
    delivery.put_event("CustomerEventRecorded", {**first, "event_id": "view-1", "type": "page_view"})
    delivery.put_event("CustomerEventRecorded", {**first, "event_id": "cart-2"})
    expected = [("cart", "event:ams-01:cart-1"), ("cart", "event:ams-01:cart-2")]
    assert delivery.wait_for(lambda: delivery.actor.of(customer) == expected)
    # The bus delivering the first one again (EventBridge is at least once) changes nothing
    delivery.redeliver({"id": "another-bus-id", "detail-type": "CustomerEventRecorded", "detail": first})
    assert delivery.actor.of(customer) == expected
    calls = [c for c in delivery.actor.calls if c[2] == customer]
    assert len(calls) == 3  # cart-1 twice, cart-2 once; the page view matched nothing


def test_an_event_of_a_customer_nobody_knows_fails_nothing(delivery: Delivery) -> None:
    delivery.catalogue.campaigns.append(
        campaign("vip", {"type": "event", "event": "TierChanged", "where": {"to": "gold"}})
    )
    delivery.put_event("TierChanged", {"customer_id": "nobody", "event_id": "t-1", "to": "gold"})
    assert delivery.wait_for(lambda: delivery.actor.of("nobody") == [("vip", "event:t-1")])
    assert delivery.tap.failures == 0
