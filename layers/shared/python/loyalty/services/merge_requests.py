"""Merge requests (the API's part of a merge): journal a merge or its undo and put a message on the
FIFO merge queue (group: the survivor, so merges into one profile run in the order they were
asked for); the janitor sends again what was lost; a person clears a profile flagged for review.
The merge worker (services/merge_worker.py) then runs what was journalled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from loyalty.adapters.idempotency import IdempotencyStore
from loyalty.adapters.merges import MergeRepository, StepConflict
from loyalty.domain import events as ev
from loyalty.domain.access import Principal
from loyalty.domain.customers import Customer
from loyalty.domain.errors import CustomerNotFound, FieldError, MergeRefused
from loyalty.domain.ids import is_plausible_id, new_id
from loyalty.domain.links import Link
from loyalty.domain.merges import MergeRecord, MergeStatus, is_blocked, merge_refusal, undo_refusal
from loyalty.observability import logger
from loyalty.services.config import ProgrammeService
from loyalty.services.merge_run import flag_if_over_limit, journal
from loyalty.services.ports import (
    Clock,
    IdempotencyRequest,
    WorkQueue,
    idempotency_ops,
    replay_if_recorded,
)

STALE_AFTER = timedelta(minutes=5)  # an open merge this old has lost its message


class MergeRequests:
    def __init__(
        self,
        *,
        merges: MergeRepository,
        programme: ProgrammeService,
        clock: Clock,
        queue: WorkQueue | None,
        idempotency: IdempotencyStore,
        resolve_customer: Callable[[str], Customer],
        new_merge_id: Callable[[], str] = new_id,
    ) -> None:
        self._resolve = resolve_customer  # an id to its live profile, following merges
        self._idempotency = idempotency
        self._merges = merges
        self._programme = programme
        self._clock = clock
        self._queue = queue
        self._new_id = new_merge_id

    def request(
        self,
        survivor_id: str,
        merged_id: str,
        reason: str | None,
        principal: Principal,
        link: Link | None = None,
        idempotency: IdempotencyRequest | None = None,
    ) -> MergeRecord:
        """Journal a merge of `merged_id` into `survivor_id` and queue it (202)."""
        # Once the merge ran, `merged_id` is a tombstone: a replay must still answer its 202.
        replay_if_recorded(self._idempotency, idempotency)
        if survivor_id == merged_id:
            raise MergeRefused(
                "a customer cannot be merged into itself",
                errors=[FieldError(("body", "merged_id"), "is the survivor itself")],
            )
        programme = self._programme.current()
        if link is not None and is_blocked(link, programme.merge_blocked_values):
            raise MergeRefused(
                f"{link.type} {link.value} is a placeholder value and never joins profiles",
                errors=[FieldError(("body", "value"), "a blocked value never joins profiles")],
            )
        plausible = is_plausible_id(survivor_id) and is_plausible_id(merged_id)
        profiles = self._merges.profiles(survivor_id, merged_id) if plausible else {}
        for cid, loc in ((survivor_id, "survivor_id"), (merged_id, "merged_id")):
            if cid not in profiles:
                raise CustomerNotFound(
                    f"customer {cid[:64]} does not exist",
                    errors=[FieldError(("body", loc), "unknown customer")],
                )
        refusal = merge_refusal(profiles[survivor_id], profiles[merged_id], programme)
        if refusal is not None:
            flag_if_over_limit(
                self._merges, profiles[survivor_id], profiles[merged_id], programme, self._clock
            )
            raise MergeRefused(refusal[0], errors=[FieldError(("body", refusal[1]), refusal[0])])
        now = self._clock.now()
        record = MergeRecord(
            merge_id=self._new_id(),
            requested_survivor_id=survivor_id,
            merged_id=merged_id,
            reason=reason,
            status=MergeStatus.QUEUED,
            requested_at=now,
            actor=principal.key_id,
        )
        self._merges.create(record, idempotency_ops(self._idempotency, idempotency, record, now))
        self._try_enqueue(record, "merge")
        return record

    def request_for_link(
        self,
        survivor_id: str,
        merged_id: str,
        link: Link,
        principal: Principal,
        idempotency: IdempotencyRequest | None,
    ) -> MergeRecord:
        """A link call that found the link on another profile merges that profile in."""
        return self.request(survivor_id, merged_id, f"{link.type} link", principal, link, idempotency)

    def get(self, merge_id: str) -> MergeRecord:
        return journal(self._merges, merge_id)

    def request_undo(
        self, merge_id: str, principal: Principal, idempotency: IdempotencyRequest | None = None
    ) -> MergeRecord:
        # A replay answers the first 202, not "already undo_queued" (or "undone" by now).
        replay_if_recorded(self._idempotency, idempotency)
        record = self.get(merge_id)
        if record.status in (MergeStatus.UNDO_QUEUED, MergeStatus.UNDOING, MergeStatus.UNDONE):
            raise MergeRefused(
                f"merge {merge_id} is already {record.status.value}", status_now=record.status.value
            )
        if record.status is not MergeStatus.DONE:
            raise MergeRefused(
                f"merge {merge_id} is {record.status.value}: only a finished merge can be undone",
                status_now=record.status.value,
            )
        assert record.survivor_id is not None
        profiles = self._merges.profiles(record.survivor_id, record.merged_id)
        refusal = undo_refusal(record, profiles.get(record.survivor_id), profiles.get(record.merged_id))
        if refusal is not None:
            raise MergeRefused(refusal)
        queued = replace(
            record,
            status=MergeStatus.UNDO_QUEUED,
            step=record.step + 1,
            phase="",
            cursor=None,
            undo={"requested_at": self._clock.now().isoformat(), "requested_by": principal.key_id},
        )
        now = self._clock.now()
        try:
            self._merges.commit(
                [
                    self._merges.journal_op(queued, record.step),
                    *idempotency_ops(self._idempotency, idempotency, queued, now),
                ]
            )
        except StepConflict:
            raise MergeRefused(f"merge {merge_id} changed meanwhile; look at it again") from None
        self._try_enqueue(queued, "undo")
        return queued

    def requeue_stale(self, older_than: timedelta = STALE_AFTER) -> int:
        """Send again the messages of merges still open after `older_than` (a message lost before it
        reached the queue, or one that went to the dead-letter queue after a bad spell). Running a
        merge twice is harmless: the journal says what is done."""
        now = self._clock.now()
        stale = self._merges.open_merges(now - older_than)
        for record in stale:
            action = "undo" if record.status in (MergeStatus.UNDO_QUEUED, MergeStatus.UNDOING) else "merge"
            # A new dedupe id: SQS would drop a copy of the first message within five minutes.
            self._enqueue(record, action, resend_at=now)
        return len(stale)

    def clear_review(self, customer_id: str) -> Customer:
        """A person has looked at a flagged profile: it may merge again, up to the limit counted from
        now (reaching it flags the profile again)."""
        customer = self._resolve(customer_id)
        self._merges.clear_review(customer.customer_id, self._clock.now())
        return customer

    def _try_enqueue(self, record: MergeRecord, action: str) -> None:
        """The journal is the commitment: if the queue does not take the message now, the janitor
        (`requeue_stale`) sends it again, so the request is still accepted."""
        try:
            self._enqueue(record, action)
        except Exception:  # the queue is throttling or unreachable: the janitor re-sends it
            logger.warning("merge message not sent; the janitor will", extra={"merge_id": record.merge_id})

    def _enqueue(self, record: MergeRecord, action: str, resend_at: datetime | None = None) -> None:
        if self._queue is None:  # tests that drive the worker by hand
            return
        group = record.survivor_id or record.requested_survivor_id
        body = {"merge_id": record.merge_id, "action": action}
        correlation_id = ev.CORRELATION_ID.get()
        if correlation_id:
            body["correlation_id"] = correlation_id
        dedupe_id = f"{record.merge_id}-{action}" + (f"-{resend_at:%Y%m%d%H%M%S}" if resend_at else "")
        self._queue.send(body, group, dedupe_id)
