"""The timeline against DynamoDB Local (issue 15, item 2): one stream across kinds ordered by when
things happened, pages and filters, merges moving it and undos moving it back, export and erasure."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from loyalty.adapters.dynamo import DynamoTable
from loyalty.adapters.timeline import EVENT, TimelineRepository, customer_owner, timeline_fields
from loyalty.api.models.redemptions import render_redemption
from loyalty.bootstrap import Container
from loyalty.domain.customers import CustomerRef
from loyalty.domain.merges import MergeStatus
from loyalty.services.redemptions import RedeemCommand
from tests.conftest import FixedClock
from tests.integration.test_merges import ADMIN, POS, email, enrol, sale


class CountingClient:
    """The DynamoDB client, counting the calls made through it by operation."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            self.calls.append(name)
            return method(**kwargs)

        return call


def record_event(
    container: Container, customer_id: str, occurred: datetime, type_: str = "site_visit"
) -> str:
    """An event in the events ingest's item shape (EVENT#<store>#<id> / EVENT with its entry)."""
    event_id = uuid.uuid4().hex
    properties = {"url": "https://shop.example/"}
    container.table.put(
        {
            "pk": f"EVENT#ams-01#{event_id}",
            "sk": "EVENT",
            "type": "event",
            "event_id": event_id,
            "store_id": "ams-01",
            "event_type": type_,
            "customer_id": customer_id,
            "member": True,
            "occurred_at": occurred.isoformat(),
            "received_at": container.clock.now().isoformat(),
            "properties": properties,
            **timeline_fields(
                customer_owner(customer_id),
                occurred,
                EVENT,
                type_,
                "Visited the web shop",
                {"store_id": "ams-01", "event_id": event_id},
                properties,
            ),
        }
    )
    return event_id


def entries(container: Container, customer_id: str, types: str | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        page, cursor = container.timeline.page(customer_id, types, 200, cursor)
        out += page
        if cursor is None:
            return out


def redeem(container: Container, customer_id: str, points: int) -> str:
    rid = uuid.uuid4().hex
    container.redemptions.redeem(
        RedeemCommand(
            rid, "points", None, CustomerRef(customer_id=customer_id), fingerprint=rid, points=points
        ),
        POS,
        render=render_redemption,
    )
    return rid


def test_one_stream_newest_first_with_a_late_event_in_its_place(
    container: Container, clock: FixedClock
) -> None:
    cid = enrol(container, email())
    sale(container, cid, "10.00")
    clock.advance(hours=1)
    redeem(container, cid, 30)
    clock.advance(hours=1)
    record_event(container, cid, clock.now())
    late = record_event(container, cid, clock.now() - timedelta(days=3))  # an app batch, sent late
    items = entries(container, cid)
    # within one instant the kind orders them (the sort key is <at>#<kind>#<id>)
    assert [(i["kind"], i["type"]) for i in items] == [
        ("event", "site_visit"),
        ("redemption", "points"),
        ("points", "redeem"),
        ("transaction", "sale"),
        ("points", "earn"),
        ("event", "site_visit"),
    ]
    assert items[-1]["ref"] == {"store_id": "ams-01", "event_id": late}
    assert [i["at"] for i in items] == sorted((i["at"] for i in items), reverse=True)
    earn = next(i for i in items if i["type"] == "earn")
    assert earn["data"] == {"points": 100, "balance_after": 100}


def test_the_first_page_is_one_query(container: Container) -> None:
    cid = enrol(container, email())
    for _ in range(3):
        sale(container, cid, "2.00")
    counting = CountingClient(container.table._client)
    repo = TimelineRepository(DynamoTable(counting, container.table.name))
    items, cursor = repo.page(customer_owner(cid), frozenset(), 4, None)
    assert len(items) == 4 and cursor is not None
    assert counting.calls == ["query"]


def test_pages_and_filters_read_on_until_the_page_is_full(container: Container, clock: FixedClock) -> None:
    cid = enrol(container, email())
    for n in range(5):
        sale(container, cid, f"{n + 1}.00")
        clock.advance(minutes=1)
        record_event(container, cid, clock.now())
        clock.advance(minutes=1)
    everything = entries(container, cid)
    assert len(everything) == 15  # 5 sales, 5 earns, 5 events
    counting = CountingClient(container.table._client)
    repo = TimelineRepository(DynamoTable(counting, container.table.name))
    # sales are a third of the index: a page of two needs more than one read of two
    first, cursor = repo.page(customer_owner(cid), frozenset({"transaction"}), 2, None)
    assert [i["kind"] for i in first] == ["transaction", "transaction"]
    assert len(counting.calls) > 1
    seen = list(first)
    while cursor is not None:
        page, cursor = repo.page(customer_owner(cid), frozenset({"transaction"}), 2, cursor)
        seen += page
    assert seen == [i for i in everything if i["kind"] == "transaction"]
    assert [i["data"]["total"] for i in seen] == ["5.00", "4.00", "3.00", "2.00", "1.00"]
    # and without a filter, pages of 4 follow each other exactly
    paged: list[dict[str, Any]] = []
    cursor = None
    while True:
        page, cursor = container.timeline.page(cid, None, 4, cursor)
        paged += page
        if cursor is None:
            break
    assert paged == everything
    assert entries(container, cid, "event,points") == [
        i for i in everything if i["kind"] in ("event", "points")
    ]


def test_a_tier_change_is_on_the_timeline(container: Container) -> None:
    cid = enrol(container, email())
    sale(container, cid, "250.00")  # 2,500 points: silver
    tiers = entries(container, cid, "tier")
    assert [(i["type"], i["data"]) for i in tiers] == [
        ("up", {"from": "bronze", "to": "silver", "reason": "sale"})
    ]


def test_a_merge_moves_the_timeline_and_its_undo_moves_it_back(container: Container) -> None:
    survivor, merged = enrol(container, email()), enrol(container, email())
    sale(container, survivor, "3.00")
    sale(container, merged, "250.00")  # and a tier change on the merged profile
    event = record_event(container, merged, container.clock.now() - timedelta(days=1))
    before = {cid: entries(container, cid) for cid in (survivor, merged)}
    assert {i["kind"] for i in before[merged]} == {"transaction", "points", "tier", "event"}

    record = container.merges.request(survivor, merged, "same person", ADMIN)
    assert container.merges.process(record.merge_id).status is MergeStatus.DONE
    after = entries(container, survivor)
    listed, _ = container.table.query(customer_owner(merged), index="gsi3", limit=100)
    assert listed == [], "the merged profile's timeline moved whole"
    # everything of both, and the tier the merge gave the survivor (the merged profile's points count)
    by_merge = [i for i in after if i["kind"] == "tier" and i["data"]["reason"] == "merge"]
    assert [(i["type"], i["data"]["to"]) for i in by_merge] == [("up", "silver")]
    assert sorted(str(i) for i in after if i["kind"] != "merge" and i not in by_merge) == sorted(
        str(i) for i in before[survivor] + before[merged]
    )
    assert [(i["type"], i["ref"]["merged_id"]) for i in after if i["kind"] == "merge"] == [("merged", merged)]
    stored = container.table.get(f"EVENT#ams-01#{event}", "EVENT")
    assert stored is not None and stored["customer_id"] == survivor
    # a merged-away id answers with its survivor's timeline
    assert entries(container, merged) == after

    container.merges.request_undo(record.merge_id, ADMIN)
    assert container.merges.process(record.merge_id).status is MergeStatus.UNDONE
    for cid in (survivor, merged):
        # what each had, and the tier changes of the merge and of its undo on the survivor
        now = [i for i in entries(container, cid) if i["kind"] != "merge"]
        assert [i for i in now if "merge" not in i["data"].get("reason", "")] == before[cid]
    assert [(i["type"], i["data"]["reason"]) for i in entries(container, survivor, "tier")] == [
        ("down", "merge_undone"),
        ("up", "merge"),
    ]
    assert {i["type"] for i in entries(container, survivor, "merge")} == {"merged", "undone"}
    assert {i["type"] for i in entries(container, merged, "merge")} == {"restored"}
    stored = container.table.get(f"EVENT#ams-01#{event}", "EVENT")
    assert stored is not None and stored["customer_id"] == merged


def test_export_lists_the_timeline_and_erasure_leaves_nothing_on_it(container: Container) -> None:
    survivor, merged = enrol(container, email()), enrol(container, email())
    sale(container, survivor, "5.00")
    event = record_event(container, merged, container.clock.now())
    record = container.merges.request(survivor, merged, "same person", ADMIN)
    container.merges.process(record.merge_id)
    customer = container.customers.get(survivor)
    exported = container.merges.export(customer)
    assert exported["timeline"] == entries(container, survivor)
    assert {i["kind"] for i in exported["timeline"]} == {"transaction", "points", "event", "merge"}
    assert all("tl" not in t and "tlpk" not in t for t in exported["transactions"])

    container.merges.erase(survivor, ADMIN)
    for cid in (survivor, merged):
        listed, _ = container.table.query(customer_owner(cid), index="gsi3", limit=100)
        assert listed == []
    stored = container.table.get(f"EVENT#ams-01#{event}", "EVENT")
    assert stored is not None  # the key stays: a replay of the event is still a duplicate
    assert not {"properties", "customer_id", "anonymous_id", "tlpk", "tlsk", "tl"} & set(stored)
