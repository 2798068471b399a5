"""Real-time segment membership against DynamoDB Local, on a clock the test moves: entering with
the sale that makes a rule true, leaving with the passage of time through the sweep, one entry
under 20 concurrent evaluations, merges, undo and erasure, and the worker's queue handler."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from loyalty import jobs
from loyalty.adapters.codec import customer_pk
from loyalty.adapters.segments import SegmentRepository, shard_of
from loyalty.api.models.transactions import render_receipt
from loyalty.bootstrap import Container, use_container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customer_events import EventInput
from loyalty.domain.customers import Consents, CustomerRef, Profile
from loyalty.domain.merges import MergeStatus
from loyalty.domain.sales import Line, SaleType
from loyalty.services.customers import EnrolCommand, ProfilePatch, RawLink
from loyalty.services.transactions import RecordCommand
from loyalty_local.events import scheduler_event
from loyalty_local.gateway import LambdaContext
from tests.conftest import FixedClock

POS = Principal("key-pos", KeyKind.POS, "ams-01")
WEB = Principal("key-web", KeyKind.WEB, "web-nl")
ADMIN = Principal("key-admin", KeyKind.ADMIN, None)

COFFEE_TWICE = {"purchased": {"within": "P30D", "categories": ["coffee"], "count": {"gte": 2}}}
VIEWED_RECENTLY = {"event": {"type": "product_view", "within": "PT2M"}}


@pytest.fixture
def container(make_container: Callable[..., Container], clock: FixedClock) -> Container:
    return make_container(clock)


def segments(container: Container) -> SegmentRepository:
    return SegmentRepository(container.table)


def save(container: Container, segment_id: str, rule: dict[str, Any]) -> None:
    segments(container).put_definition(segment_id, segment_id, rule, container.clock.now())


def enrol(container: Container, member: bool = True, **profile: Any) -> str:
    command = EnrolCommand(
        [RawLink("email", f"{uuid.uuid4().hex[:10]}@example.com")],
        Profile(**profile),
        Consents(),
        member,
        None,
    )
    return container.customers.enrol(command, POS).customer.customer_id


def sell(container: Container, customer_id: str, category: str = "coffee", price: str = "3.50") -> str:
    tid = f"T{uuid.uuid4().hex[:10]}"
    container.transactions.record(
        RecordCommand(
            transaction_id=tid,
            type=SaleType.SALE,
            store_id=None,
            occurred_at=container.clock.now(),
            customer=CustomerRef(customer_id=customer_id),
            lines=[Line("1", "ESP", category, Decimal(1), Decimal(price))],
            currency="EUR",
            total=Decimal(price),
            fingerprint=tid,
        ),
        POS,
        render=render_receipt,
    )
    return tid


def view(container: Container, customer_id: str, sku: str = "SKU1") -> None:
    event = EventInput(
        f"E{uuid.uuid4().hex[:10]}",
        "product_view",
        None,
        container.clock.now(),
        CustomerRef(customer_id=customer_id),
        None,
        {"sku": sku, "category": "coffee"},
    )
    assert container.events.record([(0, event)], WEB).accepted == 1


def stored_segments(container: Container, customer_id: str) -> set[str]:
    return set(container.segment_membership.memberships(customer_id))


def outbox_types(container: Container, customer_id: str) -> list[str]:
    item = container.table.get(customer_pk(customer_id), "SEGMENTS") or {}
    return [str(e["detail_type"]) for e in item.get("outbox") or []]


def members(container: Container, segment_id: str) -> set[str]:
    repo = segments(container)
    return {cid for shard in range(repo.shards) for cid in repo.members(segment_id, shard)}


def test_the_second_coffee_sale_enters_the_segment_once(container: Container) -> None:
    save(container, "coffee-twice", COFFEE_TWICE)
    jane = enrol(container)
    sell(container, jane)
    first = container.segment_membership.evaluate_customer(jane)
    assert first.entered == () and not first.written  # nothing to store: in no segment, nothing due

    sell(container, jane, "tea")
    sell(container, jane)
    second = container.segment_membership.evaluate_customer(jane)
    assert second.entered == ("coffee-twice",)
    assert stored_segments(container, jane) == {"coffee-twice"}
    assert outbox_types(container, jane) == ["SegmentEntered"]
    assert members(container, "coffee-twice") == {jane}
    assert segments(container).size("coffee-twice") == 1
    # The first coffee leaves the 30-day window in 30 days: that is when the answer changes.
    assert second.next_change_at is not None
    assert second.next_change_at - container.clock.now() <= timedelta(days=30, seconds=1)

    again = container.segment_membership.evaluate_customer(jane)
    assert not again.written and again.segments == frozenset({"coffee-twice"})
    event = json.loads((container.table.get(customer_pk(jane), "SEGMENTS") or {})["outbox"][0]["detail"])
    assert event["customer_id"] == jane and event["segment_id"] == "coffee-twice"
    assert event["member"] is True and event["rule_version"] == 1


def test_a_viewer_leaves_the_two_minute_segment_through_the_sweep_without_any_request(
    container: Container, clock: FixedClock
) -> None:
    save(container, "viewed-recently", VIEWED_RECENTLY)
    jane = enrol(container)
    view(container, jane)
    entered = container.segment_membership.evaluate_customer(jane)
    assert entered.entered == ("viewed-recently",)
    assert entered.next_change_at == clock.now() + timedelta(minutes=2, microseconds=1)

    clock.advance(seconds=60)
    early = container.segment_membership.sweep()
    assert early.evaluated == 0
    assert stored_segments(container, jane) == {"viewed-recently"}

    clock.advance(seconds=61)
    use_container(container)
    try:  # the scheduled job's handler, as EventBridge Scheduler calls it every minute
        report = jobs.keep_segments(scheduler_event("segments"), LambdaContext("segments"))
    finally:
        use_container(None)
    assert report["evaluated"] == 1 and report["changed"] == 1
    assert stored_segments(container, jane) == set()
    assert outbox_types(container, jane) == ["SegmentExited"]
    assert segments(container).size("viewed-recently") == 0
    item = container.table.get(customer_pk(jane), "SEGMENTS") or {}
    assert "gsi2pk" not in item  # nothing left to fall due
    assert container.segment_membership.sweep().evaluated == 0


def test_twenty_concurrent_evaluations_leave_one_state_and_one_entry(container: Container) -> None:
    save(container, "coffee-twice", COFFEE_TWICE)
    save(container, "viewed-recently", VIEWED_RECENTLY)
    jane = enrol(container)
    sell(container, jane)
    sell(container, jane)
    view(container, jane)
    start = threading.Barrier(20)

    def evaluate(_: int) -> Any:
        start.wait()
        return container.segment_membership.evaluate_customer(jane)

    with ThreadPoolExecutor(max_workers=20) as pool:
        changes = list(pool.map(evaluate, range(20)))
    writers = [c for c in changes if c.entered]
    assert len(writers) == 1 and set(writers[0].entered) == {"coffee-twice", "viewed-recently"}
    assert all(c.segments == frozenset({"coffee-twice", "viewed-recently"}) for c in changes)
    item = container.table.get(customer_pk(jane), "SEGMENTS") or {}
    assert item["version"] == 1
    assert segments(container).size("coffee-twice") == 1
    assert segments(container).size("viewed-recently") == 1


def test_a_merge_takes_the_loser_out_of_every_segment_and_the_survivor_in_and_undo_reverses_it(
    container: Container,
) -> None:
    save(container, "coffee-twice", COFFEE_TWICE)
    save(container, "bought", {"purchased": {"within": "P30D"}})
    ann, bob = enrol(container), enrol(container)
    sell(container, ann)
    sell(container, bob)
    for cid in (ann, bob):
        assert container.segment_membership.evaluate_customer(cid).entered == ("bought",)

    record = container.merges.request(ann, bob, "test", ADMIN)
    assert container.merges.process(record.merge_id).status is MergeStatus.DONE
    worker = container.segment_worker
    merged = {"merge_id": record.merge_id, "survivor_id": ann, "merged_id": bob}
    worker.on_event("CustomersMerged", merged)
    assert stored_segments(container, bob) == set()
    assert stored_segments(container, ann) == {"bought", "coffee-twice"}
    assert members(container, "bought") == {ann}
    assert segments(container).size("bought") == 1

    container.merges.request_undo(record.merge_id, ADMIN)
    assert container.merges.process(record.merge_id).status is MergeStatus.UNDONE
    worker.on_event("MergeUndone", {"merge_id": record.merge_id, "survivor_id": ann, "restored_id": bob})
    assert stored_segments(container, ann) == {"bought"}
    assert stored_segments(container, bob) == {"bought"}
    assert members(container, "bought") == {ann, bob}
    assert members(container, "coffee-twice") == set()


def test_an_event_naming_a_merged_away_profile_evaluates_its_survivor(container: Container) -> None:
    save(container, "bought", {"purchased": {"within": "P30D"}})
    ann, bob = enrol(container), enrol(container)
    record = container.merges.request(ann, bob, "test", ADMIN)
    container.merges.process(record.merge_id)
    sell(container, ann)
    changes = container.segment_worker.on_event("TransactionRecorded", {"customer_id": bob})
    assert [c.customer_id for c in changes] == [bob, ann]
    assert stored_segments(container, ann) == {"bought"}


def test_an_erased_customer_leaves_every_segment(container: Container) -> None:
    save(container, "bought", {"purchased": {"within": "P30D"}})
    jane = enrol(container)
    sell(container, jane)
    container.segment_membership.evaluate_customer(jane)
    assert members(container, "bought") == {jane}
    container.merges.erase(jane, ADMIN)
    container.segment_worker.on_event("CustomerErased", {"customer_id": jane, "merged_ids": []})
    assert stored_segments(container, jane) == set()
    assert members(container, "bought") == set()
    assert segments(container).size("bought") == 0


def test_a_profile_change_publishes_customer_updated_with_the_changed_fields(container: Container) -> None:
    jane = enrol(container, first_name="Jane")
    patch = ProfilePatch(
        fields={"first_name": "Janet", "country": "NL"},
        attributes={"vip": True},
        consents={"email": True},
        member=None,
    )
    container.customers.update(jane, patch)
    item = container.table.get(customer_pk(jane), "PROFILE") or {}
    (event,) = [e for e in item["outbox"] if e["detail_type"] == "CustomerUpdated"]
    detail = json.loads(event["detail"])
    assert detail["customer_id"] == jane
    assert detail["fields"] == [
        "profile.first_name",
        "profile.country",
        "profile.attributes.vip",
        "consents.email",
    ]


def test_a_profile_change_that_changes_nothing_publishes_nothing(container: Container) -> None:
    jane = enrol(container, first_name="Jane")
    before = (container.table.get(customer_pk(jane), "PROFILE") or {}).get("outbox")
    container.customers.update(
        jane, ProfilePatch(fields={"first_name": "Jane"}, attributes=None, consents={}, member=None)
    )
    assert (container.table.get(customer_pk(jane), "PROFILE") or {}).get("outbox") == before


def test_a_changed_rule_is_applied_to_a_customer_with_the_next_evaluation(container: Container) -> None:
    save(container, "big-spender", {"purchased": {"within": "P30D", "spend": {"gte": "10.00"}}})
    jane = enrol(container)
    sell(container, jane, price="6.00")
    assert container.segment_membership.evaluate_customer(jane).entered == ()
    save(container, "big-spender", {"purchased": {"within": "P30D", "spend": {"gte": "5.00"}}})
    assert container.segment_membership.evaluate_customer(jane).entered == ("big-spender",)
    segments(container).delete_definition("big-spender", container.clock.now())
    assert container.segment_membership.evaluate_customer(jane).exited == ("big-spender",)
    assert segments(container).size("big-spender") == 0


def test_only_evaluates_one_segment_and_keeps_the_others_as_they_are(container: Container) -> None:
    save(container, "bought", {"purchased": {"within": "P30D"}})
    jane = enrol(container)
    sell(container, jane)
    save(container, "members", {"attr": "member", "eq": True})
    change = container.segment_membership.evaluate_customer(jane, only="members")
    assert change.entered == ("members",)
    assert stored_segments(container, jane) == {"members"}  # "bought" waits for its own evaluation


def test_the_queue_handler_evaluates_bus_events_and_fails_unknown_messages_alone(
    container: Container,
) -> None:
    save(container, "bought", {"purchased": {"within": "P30D"}})
    jane = enrol(container)
    tid = sell(container, jane)
    bus_event = {
        "detail-type": "TransactionRecorded",
        "source": "loyalty.platform",
        "detail": {"customer_id": jane, "store_id": "ams-01", "transaction_id": tid},
    }
    records = [
        {"messageId": "m1", "body": json.dumps(bus_event), "receiptHandle": "r1", "attributes": {}},
        {
            "messageId": "m2",
            "body": json.dumps({"nobody_handles": 1}),
            "receiptHandle": "r2",
            "attributes": {},
        },
    ]
    for record in records:
        record |= {"eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:eu-west-1:0:loyalty-segments"}
    use_container(container)
    try:
        result = jobs.keep_segments({"Records": records}, LambdaContext("segments"))
    finally:
        use_container(None)
    assert result["batchItemFailures"] == [{"itemIdentifier": "m2"}]
    assert stored_segments(container, jane) == {"bought"}


def test_the_view_reads_the_profile_and_its_segments_together_and_follows_merges(
    container: Container,
) -> None:
    save(container, "bought", {"purchased": {"within": "P30D"}})
    ann, bob = enrol(container), enrol(container)
    sell(container, ann)
    container.segment_membership.evaluate_customer(ann)
    customer, listed = container.segment_membership.customer_with_segments(ann)
    assert customer.customer_id == ann and listed == ["bought"]
    record = container.merges.request(ann, bob, "test", ADMIN)
    container.merges.process(record.merge_id)
    customer, listed = container.segment_membership.customer_with_segments(bob)
    assert customer.customer_id == ann and listed == ["bought"]


def test_due_entries_spread_over_sixteen_shards(container: Container) -> None:
    shards = {shard_of(uuid.uuid4().hex) for _ in range(400)}
    assert shards == set(range(16))


def test_an_offer_for_a_segment_prices_carts_and_sales_of_its_members_only(container: Container) -> None:
    from loyalty.domain.offers import Offer
    from loyalty.services.cart import CartCommand, CartLineInput

    save(container, "bought", {"purchased": {"within": "P30D"}})
    container.offers.create_offer(
        Offer.model_validate(
            {
                "offer_id": "regulars",
                "name": "10% off for regulars",
                "audience": {"segments": ["bought"]},
                "effect": {"type": "percent_off", "value": "10"},
            }
        )
    )
    jane, bob = enrol(container), enrol(container)
    sell(container, jane)
    container.segment_membership.evaluate_customer(jane)

    def total(customer_id: str) -> Decimal:
        command = CartCommand(
            customer=CustomerRef(customer_id=customer_id),
            store_id=None,
            currency="EUR",
            lines=[CartLineInput("1", "CAKE", "bakery", Decimal(1), Decimal("10.00"))],
            coupons=[],
        )
        return container.cart.evaluate(command, POS).evaluation.total

    assert total(jane) == Decimal("9.00")
    assert total(bob) == Decimal("10.00")
    # The sale that the till priced so keeps it (the memberships read with the sale's other keys).
    container.transactions.record(
        RecordCommand(
            transaction_id="T-regular",
            type=SaleType.SALE,
            store_id=None,
            occurred_at=container.clock.now(),
            customer=CustomerRef(customer_id=jane),
            lines=[Line("1", "CAKE", "bakery", Decimal(1), Decimal("10.00"), Decimal("1.00"))],
            currency="EUR",
            total=Decimal("9.00"),
            fingerprint="T-regular",
        ),
        POS,
        render=render_receipt,
    )
    record = container.transactions.get("ams-01", "T-regular")
    assert record is not None and [o.offer_id for o in record.offers_applied] == ["regulars"]


def test_a_challenge_for_a_segment_counts_its_members_only(container: Container) -> None:
    from loyalty.domain.gamification import Challenge

    save(container, "viewers", {"event": {"type": "product_view", "within": "P1D"}})
    container.gamification.put_challenge(
        Challenge.model_validate(
            {
                "challenge_id": "for-viewers",
                "name": "buy twice",
                "audience": {"segments": ["viewers"]},
                "tasks": [{"task_id": "b", "purchase": {}, "count": 2}],
                "reward": {"points": 10},
            }
        )
    )
    jane, bob = enrol(container), enrol(container)
    view(container, jane)
    container.segment_membership.evaluate_customer(jane)
    definitions = container.gamification.definitions()
    for cid in (jane, bob):
        tid = sell(container, cid, "bakery", "5.00")
        detail = {"transaction_id": tid, "store_id": "ams-01", "customer_id": cid, "type": "sale"}
        container.activity_worker.handle("TransactionRecorded", detail, definitions)
    progress = {
        cid: next(s.progress.tasks for s in container.gamification.challenges_of(cid)) for cid in (jane, bob)
    }
    assert progress[jane] == {"b": 1}
    assert progress[bob] == {}


def test_price_groups_publish_customer_updated(container: Container) -> None:
    from loyalty.domain.offers import PriceGroup

    jane = enrol(container)
    container.offers.put_price_group(PriceGroup.model_validate({"group_id": "staff", "name": "Staff"}))
    container.customers.set_price_group(jane, "staff", True)
    item = container.table.get(customer_pk(jane), "PROFILE") or {}
    (event,) = [e for e in item["outbox"] if e["detail_type"] == "CustomerUpdated"]
    assert json.loads(event["detail"])["fields"] == ["price_groups"]


def test_sixty_segments_at_once_are_written_in_consistent_steps_and_left_at_once(
    container: Container,
) -> None:
    # 60 changes do not fit one transaction (100 items: the customer's item and two per change).
    for n in range(60):
        save(container, f"m{n:02d}", {"attr": "stats.transactions", "gte": n % 2})
    jane = enrol(container)
    sell(container, jane)
    change = container.segment_membership.evaluate_customer(jane)
    assert len(change.entered) == 60
    item = container.table.get(customer_pk(jane), "SEGMENTS") or {}
    assert item["version"] == 2 and len(item["segments"]) == 60
    assert all(segments(container).size(f"m{n:02d}") == 1 for n in range(0, 60, 7))
    container.merges.erase(jane, ADMIN)
    left = container.segment_membership.evaluate_customer(jane)
    assert len(left.exited) == 60
    assert stored_segments(container, jane) == set()
    assert all(segments(container).size(f"m{n:02d}") == 0 for n in range(0, 60, 7))


def test_with_a_queue_the_sweep_only_sends_due_customers_on_and_the_worker_evaluates_them(
    container: Container, clock: FixedClock
) -> None:
    from loyalty.services.segment_jobs import SegmentWorker
    from loyalty.services.segment_membership import SegmentMembership

    save(container, "viewed-recently", VIEWED_RECENTLY)
    viewers = [enrol(container) for _ in range(3)]
    for cid in viewers:
        view(container, cid)
        container.segment_membership.evaluate_customer(cid)
    sent: list[dict[str, Any]] = []
    fanning = SegmentMembership(
        repo=segments(container),
        catalogue=container.segment_catalogue,
        programme=container.programme,
        stores=container.stores,
        clock=clock,
        resolve_customer=container.resolver.get,
        fan_out=lambda ids: sent.append({"evaluate_customers": list(ids)}),
    )
    clock.advance(minutes=3)
    report = fanning.sweep()
    assert report.queued == 3 and report.evaluated == 0
    assert all(stored_segments(container, cid) == {"viewed-recently"} for cid in viewers)  # not yet
    worker = SegmentWorker(membership=fanning)
    for message in sent:
        handled = worker.handle(json.loads(json.dumps(message)))  # as the queue carries it
        assert handled.kind == "evaluate_customers"
    assert all(stored_segments(container, cid) == set() for cid in viewers)
    assert fanning.sweep().queued == 0  # nothing left due


def test_points_maturing_in_the_sweep_take_a_member_into_a_points_segment(
    container: Container, clock: FixedClock
) -> None:
    programme = container.programme.current()
    container.programme.replace(programme.model_copy(update={"pending_days": 14}))
    save(container, "hundred-points", {"attr": "points.available", "gte": 100})
    jane = enrol(container)
    sell(container, jane, price="30.00")
    assert container.segment_membership.evaluate_customer(jane).entered == ()  # 300 points, pending
    clock.advance(days=15)
    assert container.sweeper.run().matured == 1
    item = container.table.get(customer_pk(jane), "PROFILE") or {}
    (event,) = [e for e in item["outbox"] if e["detail_type"] == "CustomerUpdated"]
    assert json.loads(event["detail"])["fields"] == ["points.available", "points.pending"]
    changes = container.segment_worker.on_event("CustomerUpdated", json.loads(event["detail"]))
    assert [c.entered for c in changes] == [("hundred-points",)]
