"""Saved segments against DynamoDB Local: the repository (sizes, members merged over the shards, a
replace that keeps a running pass's progress, the delete's guard) and the background pass over
a real lake folder read by DuckDB, driven message by message with a controlled clock."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from loyalty.adapters.lake import FolderLake
from loyalty.adapters.offers import OfferRepository
from loyalty.adapters.report_queries import DuckDBQueries
from loyalty.adapters.segment_definitions import (
    SHARDS,
    CatalogueMoved,
    SegmentDefinitionRepository,
    members_pk,
    segment_pk,
)
from loyalty.bootstrap import Container
from loyalty.domain.errors import SegmentInUse, SegmentNotFound, ValidationFailed
from loyalty.domain.offers import Offer
from loyalty.domain.segment_definitions import (
    LAKE_SETTLE_SECONDS,
    MAX_RESUMES,
    STALLED_SECONDS,
    advanced,
    started,
)
from loyalty.services.lake import LakeWriter, StreamChange
from loyalty.services.segment_passes import SegmentPasses
from loyalty.services.segments import SegmentService
from tests.conftest import FixedClock

RULE = {"attr": "member", "eq": True}


class ListQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], int]] = []

    def send(self, body: Mapping[str, Any], delay_seconds: int = 0) -> None:
        self.sent.append((dict(body), delay_seconds))

    def take(self) -> dict[str, Any]:
        body, _ = self.sent.pop(0)
        return body


class RecordingMembership:
    """Evaluates `only` by a set of matching customers, writing the member rows and counters the
    way the real worker lays them out (so sizes and pages can be read back)."""

    def __init__(self, container: Container, matching: set[str]) -> None:
        self._table = container.table
        self._matching = matching
        self.calls: list[tuple[str, str | None]] = []

    def evaluate_customer(self, customer_id: str, *, now: datetime, only: str | None = None) -> None:
        self.calls.append((customer_id, only))
        assert only is not None
        if self._table.get(segment_pk(only), "SEGMENT") is None:
            remove_member(self._table, only, customer_id)  # a segment no longer saved: out
        elif customer_id in self._matching:
            add_member(self._table, only, customer_id, now)


def shard_of(customer_id: str) -> int:
    return int(hashlib.sha256(customer_id.encode()).hexdigest(), 16) % SHARDS


def add_member(table: Any, segment_id: str, customer_id: str, at: datetime) -> None:
    shard = shard_of(customer_id)
    key = f"CUST#{customer_id}"
    if table.get(members_pk(segment_id, shard), key):
        return
    table.put({"pk": members_pk(segment_id, shard), "sk": key, "entered_at": at.isoformat()})
    table.transact(
        [
            table.update_op(
                segment_pk(segment_id), f"SIZE#{shard}", "ADD #n :one", names={"#n": "n"}, values={":one": 1}
            )
        ]
    )


def remove_member(table: Any, segment_id: str, customer_id: str) -> None:
    shard = shard_of(customer_id)
    if table.get(members_pk(segment_id, shard), f"CUST#{customer_id}") is None:
        return
    table.transact(
        [
            table.delete_op(members_pk(segment_id, shard), f"CUST#{customer_id}"),
            table.update_op(
                segment_pk(segment_id),
                f"SIZE#{shard}",
                "ADD #n :minus",
                names={"#n": "n"},
                values={":minus": -1},
            ),
        ]
    )


def lake_customers(root: Path, customers: list[tuple[str, str]], at: datetime, seq: int = 1) -> None:
    """Customers (id, status) as the lake writer stores their profiles' changes."""
    changes = []
    for n, (customer_id, status) in enumerate(customers):
        image = {
            "pk": f"CUST#{customer_id}",
            "sk": "PROFILE",
            "type": "customer",
            "customer_id": customer_id,
            "member": True,
            "status": status,
            "created_at": at.isoformat(),
            "version": 1,
        }
        changes.append(
            StreamChange("INSERT", {"pk": image["pk"], "sk": "PROFILE"}, image, None, str(seq + n), at)
        )
    LakeWriter(files=FolderLake(root=root)).write(changes)


def lake_definition(root: Path, segment_id: str, version: int, at: datetime, seq: int) -> None:
    """A segment's save as the lake writer stores it (what a pass waits for)."""
    image = {
        "pk": f"SEGMENT#{segment_id}",
        "sk": "SEGMENT",
        "type": "segment",
        "segment_id": segment_id,
        "name": segment_id,
        "version": version,
        "updated_at": at.isoformat(),
    }
    change = StreamChange("MODIFY", {"pk": image["pk"], "sk": "SEGMENT"}, image, None, str(seq), at)
    LakeWriter(files=FolderLake(root=root)).write([change])


@pytest.fixture
def service(container: Container, clock: FixedClock) -> tuple[SegmentService, ListQueue]:
    queue = ListQueue()
    return (
        SegmentService(
            repo=SegmentDefinitionRepository(container.table),
            documents=OfferRepository(container.table),
            idempotency=container.idempotency,
            clock=clock,
            queue=lambda: queue,
        ),
        queue,
    )


def test_a_segment_reads_its_size_from_the_shards_counters(
    container: Container, service: tuple[SegmentService, ListQueue], clock: FixedClock
) -> None:
    segments, queue = service
    view, created = segments.put("vip", name="VIP", description="", rule=RULE)
    assert created and view.size == 0 and view.definition.version == 1
    assert [m for m, _ in queue.sent] == [
        {"evaluate_segment": "vip", "version": 1, "pass": view.definition.evaluation.pass_id, "page": None}
    ]
    for n in range(40):
        add_member(container.table, "vip", f"C{n:03d}", clock.now())
    assert segments.get("vip").size == 40
    (listed,), _ = segments.list_segments(10, None)
    assert listed.size == 40


def test_members_are_paged_in_customer_id_order_across_the_shards(
    container: Container, service: tuple[SegmentService, ListQueue], clock: FixedClock
) -> None:
    segments, _ = service
    segments.put("big", name="big", description="", rule=RULE)
    ids = [f"C{n:04d}" for n in range(0, 250, 3)]
    for customer_id in reversed(ids):
        add_member(container.table, "big", customer_id, clock.now())
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page, after = segments.members("big", after, 7)
        pages += 1
        assert len(page) <= 7
        seen += [m.customer_id for m in page]
        if after is None:
            break
    assert seen == ids
    assert pages == -(-len(ids) // 7)
    with pytest.raises(SegmentNotFound):
        segments.members("nope", None, 7)


def test_a_rename_keeps_the_progress_a_running_pass_wrote_meanwhile(
    container: Container, service: tuple[SegmentService, ListQueue], clock: FixedClock
) -> None:
    segments, queue = service
    first, _ = segments.put("s", name="one", description="", rule=RULE)
    repo = SegmentDefinitionRepository(container.table)
    e = first.definition.evaluation
    running = started(e, total=10, snapshot=clock.now(), now=clock.now())
    assert repo.record_pass("s", e, running)
    progressed = advanced(running, page=["C1", "C2"], last_page=False, now=clock.now())
    assert repo.record_pass("s", running, progressed)

    renamed, created = segments.put("s", name="two", description="", rule=RULE)
    assert not created and renamed.definition.version == 2
    stored = segments.get("s").definition
    assert stored.name == "two"
    assert (stored.evaluation.status, stored.evaluation.evaluated, stored.evaluation.cursor) == (
        "running",
        2,
        "C2",
    )
    assert len(queue.sent) == 1  # the rename started no pass

    changed, _ = segments.put("s", name="two", description="", rule={"attr": "tier", "eq": "gold"})
    assert changed.definition.evaluation.rule_version == 3
    assert changed.definition.evaluation.pass_id != e.pass_id
    assert segments.get("s").definition.evaluation.status == "pending"


def test_a_bad_rule_names_its_place_and_saves_nothing(service: tuple[SegmentService, ListQueue]) -> None:
    segments, queue = service
    with pytest.raises(ValidationFailed) as failed:
        segments.put("bad", name="bad", description="", rule={"not": {"event": {"within": "P1D"}}})
    assert failed.value.errors[0].loc[:4] == ("body", "rule", "not", "event")
    with pytest.raises(SegmentNotFound):
        segments.get("bad")
    assert queue.sent == []


def test_a_delete_that_races_an_offer_naming_the_segment_is_refused(
    container: Container, service: tuple[SegmentService, ListQueue], clock: FixedClock
) -> None:
    segments, _ = service
    segments.put("raced", name="raced", description="", rule=RULE)
    repo = SegmentDefinitionRepository(container.table)
    seen = repo.offers_version()
    definition = repo.definition("raced")
    assert definition is not None
    # An offer naming the segment is saved after the delete looked at the offers...
    container.offers.create_offer(
        Offer.model_validate(
            {
                "offer_id": "o-raced",
                "name": "raced",
                "audience": {"segments": ["raced"]},
                "effect": {"type": "percent_off", "value": "5"},
            }
        )
    )
    # ...so the delete made on that look fails, and the service's next look finds the offer.
    with pytest.raises(CatalogueMoved):
        repo.delete("raced", definition.version, seen, clock.now())
    with pytest.raises(SegmentInUse) as in_use:
        segments.delete("raced")
    assert in_use.value.extra["used_by"] == [
        {"kind": "offer", "id": "o-raced", "name": "raced", "status": "active"}
    ]


def passes(
    container: Container,
    clock: FixedClock,
    lake: Path,
    matching: set[str],
    queue: ListQueue,
    page_size: int = 3,
) -> tuple[SegmentPasses, RecordingMembership]:
    membership = RecordingMembership(container, matching)
    queries = DuckDBQueries.over_folder(lake)
    return (
        SegmentPasses(
            repo=SegmentDefinitionRepository(container.table),
            lake=lambda: queries,
            membership=membership,
            queue=lambda: queue,
            clock=clock,
            page_size=page_size,
        ),
        membership,
    )


def run_all(handle: Callable[[dict[str, Any]], str], queue: ListQueue, limit: int = 100) -> list[str]:
    outcomes = []
    for _ in range(limit):
        if not queue.sent:
            return outcomes
        outcomes.append(handle(queue.take()))
    raise AssertionError("the pass did not end")


def test_a_new_segment_is_evaluated_for_every_live_customer_in_the_lake(
    container: Container, service: tuple[SegmentService, ListQueue], clock: FixedClock, tmp_path: Path
) -> None:
    segments, queue = service
    before = clock.now() - timedelta(hours=1)
    live = [f"C{n:03d}" for n in range(10)]
    lake_customers(tmp_path, [(c, "active") for c in live] + [("C900", "merged"), ("C901", "erased")], before)
    view, _ = segments.put("fans", name="fans", description="", rule=RULE)
    worker, membership = passes(container, clock, tmp_path, matching={"C001", "C004", "C009"}, queue=queue)

    # The lake has not got the save yet: the pass waits (and asks again later).
    assert worker.handle(queue.take()) == "waiting"
    assert queue.sent[0][1] > 0
    assert segments.get("fans").definition.evaluation.status == "pending"

    # The save reaches the lake (with a customer enrolled meanwhile): every customer the save
    # could know of is in it.
    clock.advance(seconds=5)
    lake_customers(tmp_path, [("C100", "active")], clock.now(), seq=100)
    lake_definition(tmp_path, "fans", 1, clock.now(), seq=101)
    outcomes = run_all(worker.handle, queue)
    assert outcomes == ["page", "page", "page", "done"]  # 11 live customers, pages of 3
    e = segments.get("fans").definition.evaluation
    assert (e.status, e.evaluated, e.total) == ("done", 11, 11)
    assert e.started_at is not None and e.finished_at is not None
    assert sorted(c for c, _ in membership.calls) == sorted([*live, "C100"])
    assert {only for _, only in membership.calls} == {"fans"}
    got = segments.get("fans")
    assert got.size == 3
    page, _ = segments.members("fans", None, 50)
    assert [m.customer_id for m in page] == ["C001", "C004", "C009"]
    assert view.definition.evaluation.rule_version == 1


def test_a_lake_that_never_shows_the_save_is_read_after_the_settling_time(
    container: Container, service: tuple[SegmentService, ListQueue], clock: FixedClock, tmp_path: Path
) -> None:
    segments, queue = service
    lake_customers(tmp_path, [("C1", "active"), ("C2", "active")], clock.now() - timedelta(days=1))
    segments.put("quiet", name="quiet", description="", rule=RULE)
    worker, _ = passes(container, clock, tmp_path, matching=set(), queue=queue)
    assert worker.handle(queue.take()) == "waiting"
    clock.advance(seconds=LAKE_SETTLE_SECONDS)
    assert run_all(worker.handle, queue) == ["done"]
    e = segments.get("quiet").definition.evaluation
    assert (e.status, e.evaluated, e.total) == ("done", 2, 2)


def test_duplicates_count_once_a_lost_send_is_repaired_and_a_new_rule_ends_the_old_pass(
    container: Container, service: tuple[SegmentService, ListQueue], clock: FixedClock, tmp_path: Path
) -> None:
    segments, queue = service
    lake_customers(tmp_path, [(f"C{n}", "active") for n in range(7)], clock.now() - timedelta(days=1))
    segments.put("dup", name="dup", description="", rule=RULE)
    worker, membership = passes(container, clock, tmp_path, matching=set(), queue=queue)
    clock.advance(seconds=LAKE_SETTLE_SECONDS)

    start = queue.take()
    assert worker.handle(start) == "page"  # started, and did the first page
    assert worker.handle(start) == "resent"  # delivered again: its successor is sent again
    second = queue.take()
    assert queue.take() == second
    assert worker.handle(second) == "page"
    assert worker.handle(second) == "resent"  # (its successor's send may have been lost)
    assert segments.get("dup").definition.evaluation.evaluated == 6  # each customer once
    third = queue.take()
    assert queue.take() == third

    # The rule changes: the old pass's next page is stale, the new pass starts from scratch.
    segments.put("dup", name="dup", description="", rule={"attr": "tier", "eq": "gold"})
    assert worker.handle(third) == "stale"
    clock.advance(seconds=LAKE_SETTLE_SECONDS)
    assert run_all(worker.handle, queue) == ["page", "page", "done"]
    assert len(membership.calls) == 6 + 7  # the old pass stopped after two pages
    e = segments.get("dup").definition.evaluation
    assert (e.status, e.evaluated, e.total, e.rule_version) == ("done", 7, 7, 2)

    # A deleted segment's messages are stale too.
    segments.delete("dup")
    assert (
        worker.handle({"evaluate_segment": "dup", "version": 2, "pass": e.pass_id, "page": "C3"}) == "stale"
    )


def test_the_lake_page_and_count_agree_with_a_snapshot(tmp_path: Path) -> None:
    from loyalty.services import segment_pass_sql

    at = datetime(2026, 1, 1, tzinfo=UTC)
    lake_customers(tmp_path, [("A", "active"), ("B", "active"), ("C", "erased")], at)
    lake_customers(tmp_path, [("D", "active")], at + timedelta(hours=1), seq=10)
    lake = DuckDBQueries.over_folder(tmp_path)
    assert lake.run(segment_pass_sql.live_count(at))[0]["customers"] == 2
    assert [
        r["customer_id"] for r in lake.run(segment_pass_sql.live_page(at + timedelta(hours=2), "A", 10))
    ] == [
        "B",
        "D",
    ]
    with pytest.raises(ValueError):
        segment_pass_sql.live_page(at, "x' OR 1=1 --", 10)


def test_a_deleted_segments_members_leave_it_in_the_background(
    container: Container, service: tuple[SegmentService, ListQueue], clock: FixedClock, tmp_path: Path
) -> None:
    segments, queue = service
    segments.put("gone", name="gone", description="", rule=RULE)
    queue.sent.clear()
    members = [f"C{n:02d}" for n in range(7)]
    for customer_id in members:
        add_member(container.table, "gone", customer_id, clock.now())
    worker, membership = passes(container, clock, tmp_path, matching=set(), queue=queue)
    segments.delete("gone")
    assert queue.sent == [({"purge_segment": "gone", "after": None}, 0)]
    assert run_all(worker.purge, queue) == ["page", "page", "done"]  # pages of 3
    assert sorted(c for c, _ in membership.calls) == members
    repo = SegmentDefinitionRepository(container.table)
    assert repo.members("gone", None, 50) == ([], False)
    assert repo.sizes(["gone"]) == {"gone": 0}

    # Saved again before a purge ran: the purge leaves it to the new segment's own pass.
    segments.put("gone", name="back", description="", rule=RULE)
    add_member(container.table, "gone", "C99", clock.now())
    assert worker.purge({"purge_segment": "gone", "after": None}) == "stale"
    assert segments.get("gone").size == 1


def test_a_pass_that_lost_its_message_is_resumed_by_the_sweep_and_fails_after_three_tries(
    container: Container, service: tuple[SegmentService, ListQueue], clock: FixedClock, tmp_path: Path
) -> None:
    segments, queue = service
    lake_customers(tmp_path, [(f"C{n}", "active") for n in range(5)], clock.now() - timedelta(days=1))
    segments.put("lost", name="lost", description="", rule=RULE)
    worker, _ = passes(container, clock, tmp_path, matching=set(), queue=queue)
    start = queue.take()  # ... and lost: the send failed after the save
    assert worker.resume_stalled() == {"resumed": 0, "failed": 0}  # not stalled yet
    clock.advance(seconds=STALLED_SECONDS)
    assert worker.resume_stalled() == {"resumed": 1, "failed": 0}
    assert queue.take() == start
    assert worker.handle(start) == "page"  # the first page (3 of 5)
    queue.take()  # the next page's message is lost too
    clock.advance(seconds=STALLED_SECONDS - 1)
    assert worker.resume_stalled() == {"resumed": 0, "failed": 0}
    clock.advance(seconds=1)
    assert worker.resume_stalled() == {"resumed": 1, "failed": 0}
    assert run_all(worker.handle, queue) == ["done"]
    e = segments.get("lost").definition.evaluation
    assert (e.status, e.evaluated, e.total) == ("done", 5, 5)

    # A pass whose page fails every time (its message keeps dying) ends failed, not running for ever.
    segments.put("doomed", name="doomed", description="", rule=RULE)
    queue.sent.clear()
    for resumes in range(MAX_RESUMES):
        clock.advance(seconds=STALLED_SECONDS * (resumes + 1))
        assert worker.resume_stalled() == {"resumed": 1, "failed": 0}
        queue.sent.clear()
    clock.advance(seconds=STALLED_SECONDS * (MAX_RESUMES + 1))
    assert worker.resume_stalled() == {"resumed": 0, "failed": 1}
    e = segments.get("doomed").definition.evaluation
    assert (e.status, e.finished_at) == ("failed", clock.now())
    assert (
        worker.handle({"evaluate_segment": "doomed", "version": 1, "pass": e.pass_id, "page": None})
        == "duplicate"
    )
