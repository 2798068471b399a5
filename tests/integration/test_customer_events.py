"""Customer events against DynamoDB Local: dedupe for ever and under concurrency, anonymous
visitors, identification bringing their history over, and the race between the two."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest

from loyalty import jobs
from loyalty.adapters.customer_events import EVENT_SK, event_pk
from loyalty.bootstrap import Container, use_container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customer_events import EventInput
from loyalty.domain.customers import Consents, Customer, CustomerRef, Profile
from loyalty.domain.errors import Forbidden
from loyalty.services.customer_events import IngestResult
from loyalty.services.customer_links import OnConflict
from loyalty.services.customers import EnrolCommand, RawLink
from loyalty_local.events import scheduler_event
from loyalty_local.gateway import LambdaContext
from tests.conftest import FixedClock

POS = Principal("key-pos", KeyKind.POS, "ams-01")
POS_2 = Principal("key-pos-2", KeyKind.POS, "ams-01")  # a second till of the same store
WEB = Principal("key-web", KeyKind.WEB, "web-nl")


@pytest.fixture
def container(make_container: Callable[..., Container], clock: FixedClock) -> Container:
    return make_container(clock)


def enrol(container: Container, email: str, member: bool = True) -> Customer:
    command = EnrolCommand([RawLink("email", email)], Profile(), Consents(), member, None)
    return container.customers.enrol(command, POS).customer


def event(
    event_id: str,
    at: datetime,
    *,
    type_: str = "product_view",
    customer: CustomerRef | None = None,
    anonymous_id: str | None = None,
    properties: dict[str, Any] | None = None,
    store: str | None = None,
) -> EventInput:
    props = properties if properties is not None else {"sku": "SKU1", "category": "coffee"}
    return EventInput(event_id, type_, store, at, customer, anonymous_id, props)


def send(container: Container, principal: Principal, *events: EventInput) -> IngestResult:
    return container.events.record(list(enumerate(events)), principal)


def item(container: Container, store: str, event_id: str) -> dict[str, Any] | None:
    return container.table.get(event_pk(store, event_id), EVENT_SK)


def outbox_types(stored: dict[str, Any]) -> list[str]:
    return [str(e["detail_type"]) for e in stored.get("outbox") or []]


def timeline(container: Container, owner: str) -> list[dict[str, Any]]:
    items, _ = container.table.query(owner, index="gsi3", limit=500)
    return items


def test_a_batch_of_known_customers_is_kept_once_with_its_outbox(
    container: Container, clock: FixedClock
) -> None:
    jane = enrol(container, "jane@example.com")
    by_link = CustomerRef(link_type="email", link_value="JANE@example.com ")
    result = send(
        container,
        POS,
        event("E1", clock.now(), customer=CustomerRef(customer_id=jane.customer_id)),
        event(
            "E2",
            clock.now() - timedelta(days=30),
            type_="review",
            customer=by_link,
            properties={"sku": "S", "rating": 5, "text": "great"},
        ),
        event("E3", clock.now(), type_="my_custom_thing", customer=by_link, properties={"free": [1, 2]}),
    )
    assert (result.accepted, result.duplicates, result.rejected) == (3, 0, [])
    assert {o.customer_id for o in result.results} == {jane.customer_id}
    stored = item(container, "ams-01", "E2")
    assert stored is not None
    assert stored["tlpk"] == f"CUST#{jane.customer_id}" and stored["member"] is True
    assert stored["tl"]["kind"] == "event" and stored["tl"]["type"] == "review"
    assert outbox_types(stored) == ["CustomerEventRecorded"]
    detail = json.loads(stored["outbox"][0]["detail"])
    assert (
        detail["event_id"] == "E2"
        and detail["customer_id"] == jane.customer_id
        and detail["channel"] == "pos"
    )
    assert len(timeline(container, f"CUST#{jane.customer_id}")) == 3


def test_a_link_that_matches_nobody_makes_an_identified_non_member(
    container: Container, clock: FixedClock
) -> None:
    ref = CustomerRef(link_type="email", link_value="new-guest@example.com")
    result = send(
        container, WEB, event("W1", clock.now(), customer=ref), event("W2", clock.now(), customer=ref)
    )
    assert result.accepted == 2
    customer_ids = {o.customer_id for o in result.results}
    assert len(customer_ids) == 1
    (customer_id,) = customer_ids
    assert customer_id is not None
    guest = container.customers.get(customer_id)
    assert guest.member is False


def test_a_duplicate_a_month_later_changes_nothing(container: Container, clock: FixedClock) -> None:
    jane = enrol(container, "jane@example.com")
    first = event("D1", clock.now(), customer=CustomerRef(customer_id=jane.customer_id))
    assert send(container, POS, first).accepted == 1
    before = item(container, "ams-01", "D1")
    clock.advance(days=31)
    other = enrol(container, "other@example.com")
    again = event(
        "D1",
        clock.now(),
        customer=CustomerRef(customer_id=other.customer_id),
        type_="review",
        properties={"sku": "X", "rating": 1, "text": "changed"},
    )
    result = send(container, POS_2, again)
    assert (result.accepted, result.duplicates) == (0, 1)
    assert item(container, "ams-01", "D1") == before
    # The same event_id in another store is another event.
    assert send(container, WEB, event("D1", clock.now())).accepted == 1


def test_the_same_event_sent_50_times_at_once_from_two_tills_is_kept_once(
    container: Container, clock: FixedClock
) -> None:
    jane = enrol(container, "jane@example.com")
    the_event = event("RACE-1", clock.now(), customer=CustomerRef(customer_id=jane.customer_id))
    anonymous = event("RACE-2", clock.now(), anonymous_id="visitor-race")
    start = threading.Barrier(2)

    def till(principal: Principal) -> list[IngestResult]:
        start.wait()
        return [send(container, principal, the_event, anonymous) for _ in range(25)]

    with ThreadPoolExecutor(2) as pool:
        results = [r for batch in pool.map(till, [POS, POS_2]) for r in batch]
    assert sum(r.accepted for r in results) == 2
    assert sum(r.duplicates for r in results) == 98
    for event_id in ("RACE-1", "RACE-2"):
        stored = item(container, "ams-01", event_id)
        assert stored is not None and outbox_types(stored) == ["CustomerEventRecorded"]
    assert len(timeline(container, f"CUST#{jane.customer_id}")) == 1
    assert len(timeline(container, "ANON#visitor-race")) == 1


def test_identification_brings_the_visitors_history_over_and_later_events_follow(
    container: Container, clock: FixedClock
) -> None:
    visitor = "cookie-abc.123"
    earlier = [event(f"A{i}", clock.now() - timedelta(days=i), anonymous_id=visitor) for i in range(1, 4)]
    assert send(container, WEB, *earlier).accepted == 3
    assert len(timeline(container, f"ANON#{visitor}")) == 3
    jane = enrol(container, "jane@example.com")
    signup = event(
        "SIGNUP",
        clock.now(),
        type_="site_visit",
        properties={"url": "https://shop/signup"},
        customer=CustomerRef(customer_id=jane.customer_id),
        anonymous_id=visitor,
    )
    result = send(container, WEB, signup)
    assert result.accepted == 1 and result.identified == [(visitor, jane.customer_id)]
    assert container.customers.get(jane.customer_id).has_link(
        next(link for link in container.customers.get(jane.customer_id).links if link.type == "anonymous_id")
    )
    assert timeline(container, f"ANON#{visitor}") == []
    assert len(timeline(container, f"CUST#{jane.customer_id}")) == 4
    for moved in earlier:
        stored = item(container, "web-nl", moved.event_id)
        assert stored is not None and stored["customer_id"] == jane.customer_id
        assert outbox_types(stored) == ["CustomerEventRecorded", "CustomerEventAttributed"]
        attributed = json.loads(stored["outbox"][1]["detail"])
        assert attributed["customer_id"] == jane.customer_id and attributed["member"] is True
    # Later, only the anonymous id: resolved through the link, onto the customer.
    later = send(container, WEB, event("AFTER", clock.now(), anonymous_id=visitor))
    assert later.results[0].customer_id == jane.customer_id
    stored = item(container, "web-nl", "AFTER")
    assert stored is not None and stored["tlpk"] == f"CUST#{jane.customer_id}"
    assert outbox_types(stored) == ["CustomerEventRecorded"]
    # The second pass, when due, finds nothing more and moves nothing twice.
    clock.advance(minutes=3)
    assert container.attribution.run_due().moved == 0
    assert container.attribution.run_due().links == 0  # it left the due index


def test_a_link_call_with_an_anonymous_id_identifies_too(container: Container, clock: FixedClock) -> None:
    assert send(container, WEB, event("L1", clock.now(), anonymous_id="v-link")).accepted == 1
    jane = enrol(container, "jane@example.com")
    container.customer_links.add_link(jane.customer_id, RawLink("anonymous_id", "v-link"), OnConflict.REJECT)
    stored = item(container, "web-nl", "L1")
    assert stored is not None and stored["customer_id"] == jane.customer_id


def test_an_anonymous_id_of_another_customer_is_not_stolen(container: Container, clock: FixedClock) -> None:
    jane = enrol(container, "jane@example.com")
    john = enrol(container, "john@example.com")
    send(
        container,
        WEB,
        event(
            "J1",
            clock.now(),
            customer=CustomerRef(customer_id=jane.customer_id),
            anonymous_id="shared-tablet",
        ),
    )
    result = send(
        container,
        WEB,
        event(
            "J2",
            clock.now(),
            customer=CustomerRef(customer_id=john.customer_id),
            anonymous_id="shared-tablet",
        ),
    )
    assert result.accepted == 1
    assert result.results[0].customer_id == john.customer_id
    assert result.results[0].note == "anonymous-id-of-another-customer"
    owners = container.customers.get(john.customer_id).links
    assert all(link.type != "anonymous_id" for link in owners)


def test_an_anonymous_event_never_lands_on_the_visitor_after_the_link(
    container: Container, clock: FixedClock
) -> None:
    """The race: the link is made between the moment a batch resolved the visitor (nobody) and its
    write. The write's ConditionCheck fails, the batch resolves again and lands on the customer."""
    jane = enrol(container, "jane@example.com")
    ingest = container.events
    original = ingest._identify
    linked = {"done": False}

    def identify_meanwhile(*args: Any, **kwargs: Any) -> Any:
        if not linked["done"]:
            linked["done"] = True
            container.customer_links.add_link(
                jane.customer_id, RawLink("anonymous_id", "racer"), OnConflict.REJECT
            )
        return original(*args, **kwargs)

    ingest._identify = identify_meanwhile  # type: ignore[method-assign]
    result = send(container, WEB, event("R1", clock.now(), anonymous_id="racer"))
    assert result.results[0].customer_id == jane.customer_id
    stored = item(container, "web-nl", "R1")
    assert stored is not None and stored["tlpk"] == f"CUST#{jane.customer_id}"
    assert timeline(container, "ANON#racer") == []


def test_the_second_pass_moves_what_the_first_did_not_see(container: Container, clock: FixedClock) -> None:
    """Events committed just before the link that the index did not show yet: the first pass is
    bounded here to nothing (as if the index lagged); the due second pass moves them, once."""
    visitor = "lagging"
    send(container, WEB, *(event(f"G{i}", clock.now(), anonymous_id=visitor) for i in range(5)))
    jane = enrol(container, "jane@example.com")
    first_pass = container.attribution.attribute
    container.events._attribute = lambda a, c: first_pass(a, c, limit=0)
    send(
        container,
        WEB,
        event("G-ID", clock.now(), customer=CustomerRef(customer_id=jane.customer_id), anonymous_id=visitor),
    )
    assert len(timeline(container, f"ANON#{visitor}")) == 5
    assert container.attribution.run_due().moved == 0  # not due yet
    clock.advance(minutes=3)
    with ThreadPoolExecutor(2) as pool:  # two job runs at once move each event once
        reports = list(pool.map(lambda _: container.attribution.run_due(), range(2)))
    assert sum(r.moved for r in reports) == 5
    assert timeline(container, f"ANON#{visitor}") == []
    for i in range(5):
        stored = item(container, "web-nl", f"G{i}")
        assert stored is not None and outbox_types(stored) == [
            "CustomerEventRecorded",
            "CustomerEventAttributed",
        ]


def test_a_batch_naming_another_store_keeps_nothing(container: Container, clock: FixedClock) -> None:
    with pytest.raises(Forbidden):
        send(container, POS, event("S1", clock.now()), event("S2", clock.now(), store="web-nl"))
    assert item(container, "ams-01", "S1") is None


def test_bad_events_are_rejected_alone(container: Container, clock: FixedClock) -> None:
    result = send(
        container,
        POS,
        event("OK", clock.now()),
        event("FUTURE", clock.now() + timedelta(minutes=6)),
        event("OLD", clock.now() - timedelta(days=401)),
        event("BIG", clock.now(), type_="custom", properties={"blob": "x" * 9000}),
        event("RATING", clock.now(), type_="review", properties={"sku": "S", "rating": 6, "text": "t"}),
        event("NOBODY", clock.now(), customer=CustomerRef(customer_id="01NOSUCHCUSTOMER0000000000")),
    )
    assert result.accepted == 1
    named = {index: [e.loc[3:] for e in errors] for index, errors in result.rejected}
    assert named == {
        1: [("occurred_at",)],
        2: [("occurred_at",)],
        3: [("properties",)],
        4: [("properties", "rating")],
        5: [("customer", "customer_id")],
    }
    for event_id in ("FUTURE", "OLD", "BIG", "RATING", "NOBODY"):
        assert item(container, "ams-01", event_id) is None


def test_write_round_trips_of_a_100_event_batch(container: Container, clock: FixedClock) -> None:
    customers = [enrol(container, f"c{i}@example.com") for i in range(10)]
    calls: list[str] = []
    client = container.table._client
    original = client.transact_write_items

    def counted(**kwargs: Any) -> Any:
        calls.append("transact")
        return original(**kwargs)

    client.transact_write_items = counted
    batch = [
        event(f"B{i}", clock.now(), customer=CustomerRef(customer_id=customers[i % 10].customer_id))
        for i in range(100)
    ]
    try:
        result = send(container, POS, *batch)
    finally:
        client.transact_write_items = original
    assert result.accepted == 100
    assert len(calls) == 1


def test_an_event_of_nobody_is_kept_on_no_timeline(container: Container, clock: FixedClock) -> None:
    assert (
        send(container, POS, event("NOBODY-AT-ALL", clock.now(), type_="store_visit", properties={})).accepted
        == 1
    )
    stored = item(container, "ams-01", "NOBODY-AT-ALL")
    assert stored is not None and "tlpk" not in stored and "customer_id" not in stored
    assert outbox_types(stored) == ["CustomerEventRecorded"]


def test_a_new_customer_identifying_a_visitor_takes_its_events_in_the_same_batch(
    container: Container, clock: FixedClock
) -> None:
    """One batch: the visitor browses (anonymous and with a placeholder email), then checks out as a
    guest with a real email: a new identified non-member takes the link and all three events."""
    visitor = "v-guest-batch"
    placeholder = CustomerRef(link_type="email", link_value="test@test.com")
    guest = CustomerRef(link_type="email", link_value="guest-batch@example.com")
    result = send(
        container,
        WEB,
        event("GB1", clock.now(), anonymous_id=visitor),
        event("GB2", clock.now(), anonymous_id=visitor, customer=placeholder),
        event("GB3", clock.now(), anonymous_id=visitor, customer=guest),
    )
    assert result.accepted == 3
    owners = {o.customer_id for o in result.results}
    assert len(owners) == 1 and None not in owners
    assert timeline(container, f"ANON#{visitor}") == []


def test_a_customer_ref_by_anonymous_id_makes_one_profile_for_the_visitor(
    container: Container, clock: FixedClock
) -> None:
    by_anonymous = CustomerRef(link_type="anonymous_id", link_value="v-by-ref")
    result = send(
        container,
        WEB,
        event("AR1", clock.now(), anonymous_id="v-by-ref"),
        event("AR2", clock.now(), customer=by_anonymous),
    )
    assert result.accepted == 2
    owners = {o.customer_id for o in result.results}
    assert len(owners) == 1 and None not in owners
    assert timeline(container, "ANON#v-by-ref") == []


def test_the_scheduled_attribution_job_runs_the_due_second_pass(
    container: Container, clock: FixedClock
) -> None:
    """The function EventBridge Scheduler invokes (functions/attribution) with its real event."""
    visitor = "v-scheduled"
    send(container, WEB, event("SJ1", clock.now() - timedelta(hours=1), anonymous_id=visitor))
    jane = enrol(container, "jane-sched@example.com")
    container.events._attribute = None  # no first pass: only the job moves the history
    send(
        container,
        WEB,
        event("SJ2", clock.now(), customer=CustomerRef(customer_id=jane.customer_id), anonymous_id=visitor),
    )
    clock.advance(minutes=3)
    use_container(container)
    try:
        report = jobs.attribute_identified(scheduler_event("attribution"), LambdaContext("attribution"))
    finally:
        use_container(None)
    assert report == {"links": 1, "moved": 1}
    stored = item(container, "web-nl", "SJ1")
    assert stored is not None and stored["customer_id"] == jane.customer_id
