"""What the segments queue carries, and who does it.

Two kinds of message arrive on SEGMENT_QUEUE:

- a domain event from the bus (SEGMENT_RULE: sales, events, profile changes, merges ...): the
  customers it names are evaluated from scratch (services/segment_membership.py);
- due customers the clock sweep sends on, `{"evaluate_customers": [ids]}`, each evaluated again;
- a background job, a plain JSON object whose first key names its kind, e.g.
  `{"evaluate_segment": "<segment id>", "version": n, "page": cursor}`: a page of segadmin's
  evaluation of one new or changed segment over every customer.

DISPATCH HOOK (segadmin): register the handler of a job kind in `JOBS_BY_KIND` through
bootstrap.Container.segment_worker (`jobs={"evaluate_segment": ...}`); this module only routes.
A message of a kind nobody handles fails, and after five deliveries waits in the dead-letter queue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from loyalty.services.segment_membership import (
    MembershipChange,
    SegmentMembership,
    customers_named,
    seen_in,
)

Job = Callable[[Mapping[str, Any]], Any]

# The background jobs' kinds: the key of the message that names the job.
EVALUATE_SEGMENT = "evaluate_segment"
# The clock sweep's fan-out: `{"evaluate_customers": [customer ids]}` (handled here).
EVALUATE_CUSTOMERS = "evaluate_customers"


class UnknownSegmentJob(ValueError):
    """A message that is neither a bus event nor a job anybody handles."""


@dataclass(frozen=True)
class Handled:
    kind: str  # "event" | the job's kind
    changes: tuple[MembershipChange, ...] = ()
    result: Any = None


class SegmentWorker:
    def __init__(self, *, membership: SegmentMembership, jobs: Mapping[str, Job] | None = None) -> None:
        self._membership = membership
        self._jobs = dict(jobs or {})

    def handle(self, message: Mapping[str, Any]) -> Handled:
        if "detail-type" in message:
            return Handled("event", self.on_event(str(message["detail-type"]), message.get("detail") or {}))
        if EVALUATE_CUSTOMERS in message:
            return Handled(
                EVALUATE_CUSTOMERS,
                tuple(self._membership.evaluate_customer(str(cid)) for cid in message[EVALUATE_CUSTOMERS]),
            )
        for kind, job in self._jobs.items():
            if kind in message:
                return Handled(kind, result=job(message))
        raise UnknownSegmentJob(f"no handler for a segments message with keys {sorted(message)[:5]}")

    def on_event(self, detail_type: str, detail: Mapping[str, Any]) -> tuple[MembershipChange, ...]:
        seen = seen_in(detail_type, detail)
        changes: list[MembershipChange] = []
        pending = list(customers_named(detail_type, detail))
        done: set[str] = set()
        while pending:
            customer_id = pending.pop(0)
            if customer_id in done:
                continue
            done.add(customer_id)
            change = self._membership.evaluate_customer(customer_id, seen=seen)
            changes.append(change)
            # An event about a profile merged since (or the merged one itself): its survivor too.
            if change.merged_into and change.merged_into not in done:
                pending.append(change.merged_into)
        return tuple(changes)
