"""The background evaluation of a new or changed segment over every existing customer.

A saved rule starts a pass: a chain of queue messages `{"evaluate_segment", "version", "pass",
"page"}`, one page of customers each, handled by the segments job (services/segment_jobs.py). The
real-time worker already evaluates, against every saved rule, any customer who changes after the
save; the pass covers those who existed before it and do not change.

Where the customers come from: the lake's current state of the customers (Athena on AWS, DuckDB
locally, the reports' port), not a Scan of the table, which would read every item of every kind
(transactions, ledger, events ...) to find the profiles among them. The first message waits until
the lake holds the segment's own save (definitions are a lake kind; lake_ready in
loyalty.domain.segment_definitions): the lake writer has then read the table's stream past the
save, so no customer falls between the real-time worker (which knows the rule from the save on)
and the pass. Then the pass fixes its snapshot and its `total`, and each page reads the next
customer ids after its cursor. On AWS the stream has shards the writer reads side by side, so
"past the save" holds for the definition's shard; a customer's shard lagging further behind is
covered only by the real-time worker's next look at that customer (README, design).

Exactly once: a page is taken only when it starts at the pass's cursor, and the cursor, progress
and status move in one conditional write; a second delivery finds the cursor moved and is
dropped (evaluating a customer twice is harmless: every evaluation is from scratch). A newer rule
(a new pass id) ends the older pass at its next message. A page whose next message was lost
between the write and the send is re-sent when the redelivered page finds itself `previous`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from loyalty.adapters.segment_definitions import SegmentDefinitionRepository
from loyalty.domain.errors import CustomerNotFound
from loyalty.domain.segment_definitions import (
    Evaluation,
    SegmentDefinition,
    advanced,
    lake_ready,
    stalled,
    started,
)
from loyalty.services import report_sql, segment_pass_sql
from loyalty.services.ports import Clock
from loyalty.services.reports import ReportQueries

PAGE_SIZE = 200
PURGE_SEGMENT = "purge_segment"  # the job kind of a deleted segment's clean-up
LAKE_RETRY_SECONDS = 10  # how long a pass waiting for the lake sleeps between looks


class JobQueue(Protocol):
    """The segments job's queue (standard SQS): a message, visible after `delay_seconds`."""

    def send(self, body: Mapping[str, Any], delay_seconds: int = 0) -> None: ...


class Membership(Protocol):
    """The real-time membership worker's from-scratch evaluation (services/segment_membership.py)."""

    def evaluate_customer(self, customer_id: str, *, now: datetime, only: str | None = None) -> Any: ...


Outcome = Literal["stale", "duplicate", "waiting", "resent", "page", "done"]


@dataclass(frozen=True)
class PassMessage:
    segment_id: str
    version: int
    pass_id: str
    page: str | None  # None: start the pass; else the cursor the page starts after ("" the first)

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> PassMessage:
        page = body.get("page")
        return cls(
            segment_id=str(body["evaluate_segment"]),
            version=int(body["version"]),
            pass_id=str(body.get("pass") or ""),
            page=None if page is None else str(page),
        )

    def body(self) -> dict[str, Any]:
        return {
            "evaluate_segment": self.segment_id,
            "version": self.version,
            "pass": self.pass_id,
            "page": self.page,
        }


def is_pass_message(body: Mapping[str, Any]) -> bool:
    return "evaluate_segment" in body


def purge_message(segment_id: str, after: str | None = None) -> dict[str, Any]:
    """What takes a deleted segment's members out, a page at a time (SegmentPasses.purge)."""
    return {PURGE_SEGMENT: segment_id, "after": after}


def start_message(definition: SegmentDefinition) -> dict[str, Any]:
    """What starts (or nudges) the pass of the definition's rule: a duplicate start is dropped."""
    e = definition.evaluation
    return PassMessage(definition.segment_id, e.rule_version, e.pass_id, None).body()


class SegmentPasses:
    def __init__(
        self,
        *,
        repo: SegmentDefinitionRepository,
        lake: Callable[[], ReportQueries],
        membership: Membership,
        queue: Callable[[], JobQueue],
        clock: Clock,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._repo = repo
        self._lake_of = lake  # built when a pass first reads the lake (not by the minute sweep)
        self._membership = membership
        self._queue_of = queue
        self._clock = clock
        self._page_size = page_size

    def handle(self, body: Mapping[str, Any]) -> Outcome:
        message = PassMessage.parse(body)
        definition = self._repo.definition(message.segment_id)
        if definition is None or definition.evaluation.pass_id != message.pass_id:
            return "stale"  # deleted, or its rule changed since: that pass is over
        e = definition.evaluation
        if e.status == "pending" and message.page is None:
            begun = self._begin(message, e)
            if not isinstance(begun, Evaluation):
                return begun
            e = begun
        elif e.status != "running" or message.page != e.cursor:
            return self._out_of_turn(message, e)
        return self._page(message, e)

    def resume_stalled(self) -> dict[str, int]:
        """The minute sweep's look at every pass: one that lost its message is sent it again (the
        start, or the page at its cursor: a duplicate is dropped as any), and one that keeps
        failing is marked failed. One Query per 200 segments."""
        now = self._clock.now()
        report = {"resumed": 0, "failed": 0}
        for definition in self._repo.all():
            e = definition.evaluation
            after = stalled(e, now)
            if after is None or not self._repo.record_pass(definition.segment_id, e, after):
                continue
            if after.status == "failed":
                report["failed"] += 1
                continue
            page = None if e.status == "pending" else e.cursor
            self._queue().send(PassMessage(definition.segment_id, e.rule_version, e.pass_id, page).body())
            report["resumed"] += 1
        return report

    def _lake(self) -> ReportQueries:
        return self._lake_of()

    def _queue(self) -> JobQueue:
        return self._queue_of()

    def purge(self, body: Mapping[str, Any]) -> Outcome:
        """A deleted segment's members leave it: each is evaluated for that segment alone, which,
        the segment being gone, takes them out (member row, size shard, the customer's item and a
        SegmentExited, as any exit). A segment saved again under the same id meanwhile is left to
        its own pass, which evaluates every customer anyway."""
        segment_id = str(body[PURGE_SEGMENT])
        after = body.get("after")
        if self._repo.definition(segment_id) is not None:
            return "stale"
        members, more = self._repo.members(segment_id, None if after is None else str(after), self._page_size)
        for member in members:
            self._membership.evaluate_customer(member.customer_id, now=self._clock.now(), only=segment_id)
        if more and members:
            self._queue().send(purge_message(segment_id, members[-1].customer_id))
            return "page"
        return "done"

    def _out_of_turn(self, message: PassMessage, e: Evaluation) -> Outcome:
        """A message the pass is not waiting for: a second delivery, or one for a pass finished
        already. A page delivered again after it was done re-sends its successor, whose send
        may have been lost between the write and the send."""
        page = "" if message.page is None else message.page  # the start message did the first page
        if e.status == "running" and page == e.previous:
            self._queue().send(self._next(message, e.cursor))
            return "resent"
        return "duplicate"

    def _begin(self, message: PassMessage, e: Evaluation) -> Evaluation | Outcome:
        now = self._clock.now()
        saved = self._lake().run(segment_pass_sql.saved_version(message.segment_id))
        in_lake = saved[0]["version"] if saved else None
        if not lake_ready(e, None if in_lake is None else int(in_lake), now):
            self._queue().send(message.body(), delay_seconds=LAKE_RETRY_SECONDS)
            return "waiting"
        newest = self._lake().run(report_sql.as_of())
        as_of = _utc(newest[0]["as_of"]) if newest else None
        snapshot = max(as_of or now, e.requested_at)
        total = int(
            self._lake().run(segment_pass_sql.live_count(snapshot, self._lake().manifest()))[0]["customers"]
            or 0
        )
        running = started(e, total=total, snapshot=snapshot, now=now)
        return running if self._repo.record_pass(message.segment_id, e, running) else "duplicate"

    def _page(self, message: PassMessage, e: Evaluation) -> Outcome:
        snapshot = e.snapshot or e.requested_at  # set when the pass started
        rows = self._lake().run(
            segment_pass_sql.live_page(snapshot, e.cursor, self._page_size, self._lake().manifest())
        )
        page = [str(r["customer_id"]) for r in rows]
        for customer_id in page:
            try:
                self._membership.evaluate_customer(
                    customer_id, now=self._clock.now(), only=message.segment_id
                )
            except CustomerNotFound:
                continue  # erased since the snapshot: in no segment, nothing to do
        last = len(page) < self._page_size
        after = advanced(e, page=page, last_page=last, now=self._clock.now())
        if not self._repo.record_pass(message.segment_id, e, after):
            return "duplicate"
        if last:
            return "done"
        self._queue().send(self._next(message, after.cursor))
        return "page"

    @staticmethod
    def _next(message: PassMessage, cursor: str) -> dict[str, Any]:
        return PassMessage(message.segment_id, message.version, message.pass_id, cursor).body()


def _utc(value: Any) -> datetime | None:
    """The lake's timestamps are UTC without a zone (Parquet TIMESTAMP_MS, Athena's text)."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace(" UTC", ""))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
