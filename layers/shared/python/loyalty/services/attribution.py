"""Bringing an identified visitor's anonymous events onto its customer.

When an anonymous_id becomes a link of a customer (an event naming both, or a link call), the
visitor's earlier events move from ANON#<id> to the customer's timeline, each with a
`CustomerEventAttributed` entry in its outbox: the activity worker then counts it as if it had been
sent with the customer, while triggers on `CustomerEventRecorded` do not fire twice.

It runs twice:
- the first pass in the request that identified the visitor, bounded to FIRST_PASS_EVENTS (one
  page of the timeline index and one transaction): most visitors have a handful of events;
- the second pass from the `attribution` job (every 5 minutes), for every link whose due time
  (IDENTIFICATION_SECOND_PASS after it was made) has come: it moves whatever is left - a visitor
  with more events, and events committed just before the link that the eventually consistent
  timeline index did not show to the first pass. After it, the link leaves the due index.

No event can land on ANON#<id> after the link exists (each anonymous write checks the link's
absence in its own transaction), so the second pass sees the visitor's final set. Every move is
conditional on the event still being the visitor's, so passes may overlap, repeat or race: each
event moves once and gets one CustomerEventAttributed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from loyalty.adapters.customer_events import CustomerEventRepository, Identified
from loyalty.domain.customers import Customer
from loyalty.domain.errors import DomainError
from loyalty.services.ports import Clock

FIRST_PASS_EVENTS = 100
PAGE = 100


@dataclass
class AttributionReport:
    links: int = 0
    moved: int = 0


class Attribution:
    def __init__(
        self,
        *,
        events: CustomerEventRepository,
        clock: Clock,
        resolve_customer: Callable[[str], Customer],
    ) -> None:
        self._events = events
        self._clock = clock
        self._resolve_customer = resolve_customer  # follows merges; raises CustomerNotFound

    def attribute(self, anonymous_id: str, customer_id: str, limit: int | None = FIRST_PASS_EVENTS) -> int:
        """Move the visitor's events still on its anonymous timeline to the customer the link
        names now; how many moved. `limit` bounds the work (None: all of them)."""
        owner = self._events.link_owners([anonymous_id]).get(anonymous_id)
        if owner is None:
            return 0  # detached (or erased) meanwhile: the visitor is anonymous again
        try:
            customer = self._resolve_customer(owner)
        except DomainError:
            return 0
        moved = 0
        while limit is None or moved < limit:
            page = PAGE if limit is None else min(PAGE, limit - moved)
            keys = self._events.anonymous_event_keys(anonymous_id, page)
            # The index may still list events another pass moved: re-read them (consistently) and
            # move only what still is the visitor's.
            events = [e for e in self._events.get_many(keys) if e.customer_id is None]
            if not events:
                return moved
            ops = [
                self._events.attribute_op(e, customer.customer_id, customer.member, f"move:{i}")
                for i, e in enumerate(events)
            ]
            gone = self._events.attribute(ops)
            moved += len(events) - len(gone)
            if len(events) == len(gone):
                return moved  # all moved by someone else; the index will catch up
        return moved

    def run_due(self) -> AttributionReport:
        """The second pass of every identification whose due time has come."""
        now = self._clock.now()
        report = AttributionReport()
        for shard in range(self._events.shards):
            cursor = None
            while True:
                due, cursor = self._events.identified_due(shard, now, cursor)
                for identified in due:
                    report.moved += self._second_pass(identified)
                    report.links += 1
                if cursor is None:
                    break
        return report

    def _second_pass(self, identified: Identified) -> int:
        moved = self.attribute(identified.anonymous_id, identified.customer_id, limit=None)
        self._events.clear_due(identified)
        return moved
