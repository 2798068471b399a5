"""Identity merges and their undo, run step by step from the merge queue; export and erasure.

A merge request writes a journal (`queued`) and a message on the FIFO merge queue (group: the
survivor, so merges into one profile run in the order they were asked for). The worker then:

1. locks both profiles in one transaction: the survivor takes the combined profile and counters
   (`merge_lock` set: every other write to it fails until the merge ends, and answers 503), the
   merged profile becomes a tombstone pointing at the survivor, frozen as it was (the undo
   restores from it);
2. moves, phase by phase (links, ledger, records, a re-check for records the index showed late,
   offer uses, holds), its links, ledger entries (re-keyed after the survivor's own: seq n becomes
   offset + n, so lots keep their pending and expiry dates and every reference follows by adding
   the offset), transactions, coupons, redemptions, accounts, per-offer uses and points holds;
3. unlocks both and publishes `CustomersMerged`.

Every step is one TransactWriteItems that also advances the journal's step under a condition, so a
crash or a redelivered message resumes where the journal says. Two merges never touch one profile
at once: the lock step fails for the second, which is retried later from the queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from loyalty.adapters.dynamo import Item, TxOp
from loyalty.adapters.idempotency import IdempotencyStore
from loyalty.adapters.merges import (
    MergeRepository,
    StepConflict,
    from_snapshot,
    snapshot,
)
from loyalty.domain import events as ev
from loyalty.domain.access import Principal
from loyalty.domain.customers import Customer, CustomerStatus
from loyalty.domain.errors import (
    CustomerNotFound,
    FieldError,
    MergeNotFound,
    MergeRefused,
    ServiceUnavailable,
)
from loyalty.domain.ids import is_plausible_id, new_id
from loyalty.domain.ledger import LedgerEntry, LedgerReason
from loyalty.domain.links import Link
from loyalty.domain.merges import MergeRecord, MergeStatus, combine, is_blocked, split
from loyalty.domain.programme import Programme
from loyalty.domain.sales import points_in_window
from loyalty.domain.tiers import effective_tier
from loyalty.observability import logger
from loyalty.services.config import ProgrammeService
from loyalty.services.ports import (
    Clock,
    IdempotencyRequest,
    WorkQueue,
    backoff,
    idempotency_ops,
    replay_if_recorded,
)

_STEP_ATTEMPTS = 5
LEDGER_PAGE = 49  # two writes each (copy, delete) + the journal: 99 of TransactWriteItems' 100
RECORD_PAGE = 99  # one write each + the journal
# One read feeds several steps (the profiles are locked, so what was read stays true): a Query
# returns up to 1 MB anyway, and every round trip saved shortens the lock.
READ_PAGES = 5
MERGE_ACTOR = "merge"
STALE_AFTER = timedelta(minutes=5)  # an open merge this old has lost its message


class MergeBusy(ServiceUnavailable):
    """One of the profiles is locked by another merge: the message goes back on the queue."""


@dataclass
class _Page:
    """Records read ahead for the steps of one phase of one merge."""

    key: tuple[str, str, int]  # merge id, phase, the step it is good for
    items: list[Item]
    next_cursor: str | None  # where the read that filled it stopped (None: nothing more)


@dataclass(frozen=True)
class Erasure:
    customer_id: str
    erased_ids: tuple[str, ...]
    records_anonymised: int


class MergeService:
    def __init__(
        self,
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
        self._page: _Page | None = None
        self._frozen: tuple[tuple[str, MergeStatus], Customer] | None = None
        self._merges = merges
        self._programme = programme
        self._clock = clock
        self._queue = queue
        self._new_id = new_merge_id

    # ---- requests (the API) ---------------------------------------------------------------
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
        profiles = self._merges.profiles(survivor_id, merged_id) if _plausible(survivor_id, merged_id) else {}
        for cid, loc in ((survivor_id, "survivor_id"), (merged_id, "merged_id")):
            if cid not in profiles:
                raise CustomerNotFound(
                    f"customer {cid[:64]} does not exist",
                    errors=[FieldError(("body", loc), "unknown customer")],
                )
        refusal = _refusal(profiles[survivor_id], profiles[merged_id], programme)
        if refusal is not None:
            self._flag_if_over_limit(profiles[survivor_id], profiles[merged_id], programme)
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

    def _try_enqueue(self, record: MergeRecord, action: str) -> None:
        """The journal is the commitment: if the queue does not take the message now, the janitor
        (`requeue_stale`) sends it again, so the request is still accepted."""
        try:
            self._enqueue(record, action)
        except Exception:  # the queue is throttling or unreachable: the janitor re-sends it
            logger.warning("merge message not sent; the janitor will", extra={"merge_id": record.merge_id})

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

    def get(self, merge_id: str) -> MergeRecord:
        record = self._merges.get(merge_id) if is_plausible_id(merge_id) else None
        if record is None:
            raise MergeNotFound(f"no merge {merge_id[:64]!r}")
        return record

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
        refusal = self._undo_refusal(record)
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

    # ---- the worker -----------------------------------------------------------------------
    def process(self, merge_id: str) -> MergeRecord:
        """Run a queued merge or undo to its end (or resume one a crash interrupted)."""
        record = self.get(merge_id)
        self._frozen = None
        if record.status is MergeStatus.QUEUED:
            record = self._lock_for_merge(record)
        if record.status is MergeStatus.UNDO_QUEUED:
            record = self._lock_for_undo(record)
        attempts = 0
        while record.status in (MergeStatus.RUNNING, MergeStatus.UNDOING):
            undoing = record.status is MergeStatus.UNDOING
            careful = attempts > 0
            try:
                ops, advanced = (
                    self._undo_step(record, careful) if undoing else self._merge_step(record, careful)
                )
                if not ops and advanced.status is record.status:
                    # Nothing moved (a phase with nothing in it): no need to write the journal; a
                    # crash here only means reading the empty phase again.
                    record = replace(advanced, step=record.step)
                    continue
                self._merges.commit(
                    [*ops, self._merges.journal_op(advanced, record.step, self._outbox(advanced))]
                )
                record, attempts = advanced, 0
            except StepConflict as conflict:
                self._page = None
                attempts += 1
                if attempts >= _STEP_ATTEMPTS:
                    raise ServiceUnavailable(
                        "the merge's records kept changing; it will be retried"
                    ) from None
                if conflict.journal_moved or attempts > 1:
                    record = self.get(merge_id)
            except ServiceUnavailable:
                # The table is throttling or did not answer (the step may or may not have
                # committed): wait, read the journal again and go on from where it says.
                self._page = None
                attempts += 1
                if attempts >= _STEP_ATTEMPTS:
                    raise
                backoff(attempts + 2)
                record = self.get(merge_id)
        return record

    def _outbox(self, record: MergeRecord) -> list[dict[str, str]]:
        if record.phase != "done":
            return []
        if record.status is MergeStatus.DONE:
            event = ev.DomainEvent(
                ev.CUSTOMERS_MERGED,
                {
                    "merge_id": record.merge_id,
                    "survivor_id": record.survivor_id,
                    "merged_id": record.merged_id,
                    "reason": record.reason,
                    "moved": dict(record.counts or {}),
                },
            )
        elif record.status is MergeStatus.UNDONE:
            undo = record.undo or {}
            event = ev.DomainEvent(
                ev.MERGE_UNDONE,
                {
                    "merge_id": record.merge_id,
                    "survivor_id": record.survivor_id,
                    "restored_id": record.merged_id,
                    "returned": undo.get("returned", {}),
                    "stayed": undo.get("stayed", {}),
                },
            )
        else:
            return []
        return ev.outbox([event])

    # ---- merge: lock ----------------------------------------------------------------------
    def _lock_for_merge(self, record: MergeRecord) -> MergeRecord:
        programme = self._programme.current()
        for _ in range(_STEP_ATTEMPTS):
            survivor = self._live_or_none(record.requested_survivor_id)
            merged = self._merges.profiles(record.merged_id).get(record.merged_id)
            refusal = None
            if survivor is None:
                refusal = f"customer {record.requested_survivor_id} no longer exists (erased)"
            elif merged is None:
                refusal = f"customer {record.merged_id} does not exist"
            else:
                found = _refusal(survivor, merged, programme)
                refusal = found[0] if found else None
            if refusal is not None:
                if survivor is not None and merged is not None:
                    self._flag_if_over_limit(survivor, merged, programme)
                return self._fail(record, refusal)
            assert survivor is not None
            assert merged is not None
            if survivor.merge_lock or merged.merge_lock:
                raise MergeBusy("another merge is moving one of these profiles; retried later")
            now = self._clock.now()
            combined = combine(survivor, merged, None, now, record.merge_id)
            combined = replace(
                combined,
                tier=_tier_after(combined, survivor, merged, programme, now) if combined.member else None,
                merge_lock=record.merge_id,
                merge_count=survivor.merge_count + merged.merge_count + 1,
            )
            running = replace(
                record,
                status=MergeStatus.RUNNING,
                survivor_id=survivor.customer_id,
                started_at=now,
                step=record.step + 1,
                phase="links",
                cursor=None,
                offset=survivor.ledger_seq,
                survivor_before=snapshot(survivor),
                counts={},
            )
            try:
                self._merges.commit(
                    [
                        self._merges.journal_op(running, record.step),
                        self._merges.lock_survivor_op(combined, survivor.version),
                        self._merges.tombstone_op(merged, survivor.customer_id, record.merge_id, now),
                    ]
                )
                return running
            except StepConflict as conflict:
                if conflict.journal_moved:
                    return self.get(record.merge_id)
        raise MergeBusy("the profiles kept changing; retried later")

    def clear_review(self, customer_id: str) -> Customer:
        """A person has looked at a flagged profile: it may merge again, up to the limit counted from
        now (reaching it flags the profile again)."""
        customer = self._resolve(customer_id)
        self._merges.clear_review(customer.customer_id, self._clock.now())
        return customer

    def _flag_if_over_limit(self, survivor: Customer, merged: Customer, programme: Programme) -> None:
        if _over_limit(survivor, merged, programme):
            why = f"more than {programme.max_merges_per_profile} merges: check it is one person"
            self._merges.flag_for_review(survivor.customer_id, why, self._clock.now())

    def _fail(self, record: MergeRecord, why: str) -> MergeRecord:
        failed = replace(
            record, status=MergeStatus.FAILED, error=why, step=record.step + 1, finished_at=self._clock.now()
        )
        try:
            self._merges.commit([self._merges.journal_op(failed, record.step)])
        except StepConflict:
            return self.get(record.merge_id)
        return failed

    def _live_or_none(self, customer_id: str) -> Customer | None:
        """The live profile an id stands for now (following merges), None when erased or unknown."""
        try:
            return self._resolve(customer_id)
        except CustomerNotFound:
            return None

    # ---- merge: steps ---------------------------------------------------------------------
    def _read_ahead(self, record: MergeRecord, read: Callable[[], tuple[list[Item], str | None]]) -> _Page:
        """This step's page: what an earlier step of the phase read ahead, or a fresh read."""
        key = (record.merge_id, record.phase, record.step)
        if self._page is None or self._page.key != key or not self._page.items:
            items, next_cursor = read()
            self._page = _Page(key, items, next_cursor)
        return self._page

    def _take(self, record: MergeRecord, page: _Page, size: int) -> list[Item]:
        """The first `size` items of the page; the rest wait for the next step."""
        taken, page.items = page.items[:size], page.items[size:]
        page.key = (record.merge_id, record.phase, record.step + 1)
        return taken

    def _merge_step(self, record: MergeRecord, careful: bool = False) -> tuple[list[TxOp], MergeRecord]:
        assert record.survivor_id is not None
        survivor_id, merged_id = record.survivor_id, record.merged_id
        counts = dict(record.counts or {})
        now = self._clock.now()
        nxt = replace(record, step=record.step + 1)
        ops: list[TxOp] = []
        if record.phase == "links":
            merged = self._tombstone(record)
            start = int(record.cursor or 0)
            link_page = list(merged.links)[start : start + RECORD_PAGE]
            if not link_page:
                return [], replace(nxt, phase="ledger", cursor=None)
            owners = self._merges.link_owners(link_page)
            moving = [link for link in link_page if owners.get(link) == merged_id]
            ops = [self._merges.move_link_op(link, merged_id, survivor_id, now) for link in moving]
            counts["links"] = counts.get("links", 0) + len(moving)
            return ops, replace(
                nxt,
                cursor=str(start + len(link_page)),
                counts=counts,
                links_moved=record.links_moved + tuple(link.key for link in moving),
            )
        if record.phase == "ledger":
            page = self._read_ahead(
                record, lambda: (self._merges.ledger_page(merged_id, LEDGER_PAGE * READ_PAGES), None)
            )
            items = self._take(record, page, LEDGER_PAGE)
            if not items:
                return [], replace(nxt, phase="records", cursor=None)
            for item in items:
                ops += self._merges.move_ledger_ops(
                    item, survivor_id, int(item["seq"]) + record.offset, record.merge_id, back=False
                )
            counts["ledger_entries"] = counts.get("ledger_entries", 0) + len(items)
            return ops, replace(nxt, counts=counts)
        if record.phase == "records":
            page = self._read_ahead(
                record,
                lambda: self._merges.owned_page(merged_id, RECORD_PAGE * READ_PAGES, record.cursor, careful),
            )
            items = self._take(record, page, RECORD_PAGE)
            ops = [
                self._merges.reassign_op(
                    i, merged_id, survivor_id, record.offset, record.merge_id, back=False
                )
                for i in items
            ]
            _count_records(counts, items)
            cursor, more = self._position(page, items, record.cursor)
            return ops, replace(nxt, counts=counts, cursor=cursor, phase="records" if more else "recheck")
        if record.phase == "recheck":
            # Anything the index showed late (a record written just before the lock)? Then go
            # through the records again; they are few, and the phase ends when none are left.
            late, _ = self._merges.owned_page(merged_id, RECORD_PAGE, None, verify=True)
            return [], replace(nxt, phase="records" if late else "offer_uses", cursor=None)
        if record.phase == "offer_uses":
            uses = {k: v for k, v in self._merges.offer_uses(merged_id).items() if v > 0}
            use_page = dict(list(uses.items())[:LEDGER_PAGE])
            if not use_page:
                return [], replace(nxt, phase="holds")
            moved = dict(record.offer_uses_moved or {})
            for offer_id, n in use_page.items():
                ops += self._merges.move_offer_use_ops(offer_id, n, merged_id, survivor_id)
                moved[offer_id] = moved.get(offer_id, 0) + n
            counts["offer_uses"] = counts.get("offer_uses", 0) + len(use_page)
            return ops, replace(nxt, counts=counts, offer_uses_moved=moved)
        if record.phase == "holds":
            merged = self._tombstone(record)
            hold_owner = self._merges.hold_owners(sorted(merged.points_holds))
            holds = [h for h, owner in hold_owner.items() if owner == merged_id]
            ops = [self._merges.move_hold_op(h, merged_id, survivor_id) for h in holds]
            counts["holds"] = len(holds)
            return ops, replace(nxt, counts=counts, holds_moved=tuple(holds), phase="finish")
        if record.phase == "finish":
            ops = [
                self._merges.unlock_op(survivor_id, record.merge_id),
                self._merges.unlock_op(merged_id, record.merge_id),
            ]
            return ops, replace(nxt, status=MergeStatus.DONE, phase="done", finished_at=now)
        raise ServiceUnavailable(f"merge {record.merge_id} is in an unknown phase {record.phase!r}")

    def _position(self, page: _Page, taken: list[Item], cursor: str | None) -> tuple[str | None, bool]:
        """Where the journal says to list on from after this step, and whether more may follow. A
        crash between steps re-reads from just after the last record this step moved."""
        if page.items:
            return (self._merges.cursor_after(taken[-1]) if taken else cursor), True
        return page.next_cursor, page.next_cursor is not None

    def _tombstone(self, record: MergeRecord) -> Customer:
        """The merged profile, frozen while the merge or its undo runs: read once per run."""
        if self._frozen is not None and self._frozen[0] == (record.merge_id, record.status):
            return self._frozen[1]
        merged = self._merges.profiles(record.merged_id).get(record.merged_id)
        if merged is None:
            raise MergeNotFound(f"the merged profile {record.merged_id} is gone")
        self._frozen = ((record.merge_id, record.status), merged)
        return merged

    # ---- undo -----------------------------------------------------------------------------
    def _undo_refusal(self, record: MergeRecord) -> str | None:
        assert record.survivor_id is not None
        profiles = self._merges.profiles(record.survivor_id, record.merged_id)
        survivor, merged = profiles.get(record.survivor_id), profiles.get(record.merged_id)
        if survivor is None or survivor.status is CustomerStatus.ERASED:
            return f"customer {record.survivor_id} was erased: the merge cannot be undone"
        if merged is None or merged.status is CustomerStatus.ERASED:
            return f"customer {record.merged_id} was erased: the merge cannot be undone"
        if survivor.status is CustomerStatus.MERGED:
            return (
                f"customer {record.survivor_id} was since merged into {survivor.merged_into}: "
                "undo that merge first"
            )
        if merged.merged_into != record.survivor_id:
            return f"customer {record.merged_id} is no longer merged into {record.survivor_id}"
        return None

    def _lock_for_undo(self, record: MergeRecord) -> MergeRecord:
        assert record.survivor_id is not None
        for _ in range(_STEP_ATTEMPTS):
            refusal = self._undo_refusal(record)
            if refusal is not None:
                # The undo cannot happen any more (an erasure came first): the merge stays done.
                undone = dict(record.undo or {}) | {"refused": refusal}
                back = replace(record, status=MergeStatus.DONE, undo=undone, step=record.step + 1)
                try:
                    self._merges.commit([self._merges.journal_op(back, record.step)])
                except StepConflict:
                    return self.get(record.merge_id)
                return back
            profiles = self._merges.profiles(record.survivor_id, record.merged_id)
            survivor, merged = profiles[record.survivor_id], profiles[record.merged_id]
            if survivor.merge_lock or merged.merge_lock:
                raise MergeBusy("another merge is moving one of these profiles; retried later")
            undoing = replace(
                record,
                status=MergeStatus.UNDOING,
                step=record.step + 1,
                phase="links",
                cursor=None,
                undo=dict(record.undo or {})
                | {"lots_delta": 0, "pending": 0, "links_returned": [], "links_stayed": [], "returned": {}},
            )
            try:
                self._merges.commit(
                    [
                        self._merges.journal_op(undoing, record.step),
                        self._merges.relock_op(survivor.customer_id, record.merge_id, survivor.version),
                        self._merges.relock_op(merged.customer_id, record.merge_id, merged.version),
                    ]
                )
                return undoing
            except StepConflict as conflict:
                if conflict.journal_moved:
                    return self.get(record.merge_id)
        raise MergeBusy("the profiles kept changing; retried later")

    def _undo_step(self, record: MergeRecord, careful: bool = False) -> tuple[list[TxOp], MergeRecord]:
        assert record.survivor_id is not None
        survivor_id, merged_id = record.survivor_id, record.merged_id
        undo: dict[str, Any] = dict(record.undo or {})
        returned: dict[str, int] = dict(undo.get("returned") or {})
        now = self._clock.now()
        nxt = replace(record, step=record.step + 1)
        ops: list[TxOp] = []
        if record.phase == "links":
            start = int(record.cursor or 0)
            keys = list(record.links_moved)[start : start + RECORD_PAGE]
            if not keys:
                return [], replace(nxt, phase="ledger", cursor=None)
            link_page = [_link_of(key) for key in keys]
            owners = self._merges.link_owners(link_page)
            going = [link for link in link_page if owners.get(link) == survivor_id]
            ops = [self._merges.move_link_op(link, survivor_id, merged_id, now) for link in going]
            undo["links_returned"] = [*undo.get("links_returned", []), *(link.key for link in going)]
            undo["links_stayed"] = [
                *undo.get("links_stayed", []),
                *(link.key for link in link_page if link not in going),
            ]
            returned["links"] = returned.get("links", 0) + len(going)
            return ops, replace(nxt, cursor=str(start + len(keys)), undo=undo | {"returned": returned})
        if record.phase == "ledger":
            merged = self._tombstone(record)
            lo, hi = record.offset + 1, record.offset + merged.ledger_seq
            page = self._read_ahead(
                record,
                lambda: (
                    self._merges.ledger_page(survivor_id, LEDGER_PAGE * READ_PAGES, (lo, hi))
                    if hi >= lo
                    else [],
                    None,
                ),
            )
            items = [
                i
                for i in self._take(record, page, LEDGER_PAGE)
                if (i.get("merge_trail") or [None])[-1] == record.merge_id
            ]
            if not items:
                return [], replace(nxt, phase="records", cursor=None)
            for item in items:
                ops += self._merges.move_ledger_ops(
                    item, merged_id, int(item["seq"]) - record.offset, record.merge_id, back=True
                )
                if item.get("remaining") is not None:
                    before = (item.get("remaining_at") or {}).get(record.merge_id, item["remaining"]) or 0
                    undo["lots_delta"] = int(undo.get("lots_delta", 0)) + int(item["remaining"]) - int(before)
                    if item.get("due_kind") == "mature":
                        undo["pending"] = int(undo.get("pending", 0)) + max(int(item["remaining"]), 0)
            returned["ledger_entries"] = returned.get("ledger_entries", 0) + len(items)
            return ops, replace(nxt, undo=undo | {"returned": returned})
        if record.phase == "records":
            page = self._read_ahead(
                record,
                lambda: self._merges.owned_page(
                    survivor_id, RECORD_PAGE * READ_PAGES, record.cursor, careful
                ),
            )
            items = self._take(record, page, RECORD_PAGE)
            cursor, more = self._position(page, items, record.cursor)
            mine = [i for i in items if (i.get("merge_trail") or [None])[-1] == record.merge_id]
            ops = [
                self._merges.reassign_op(i, survivor_id, merged_id, record.offset, record.merge_id, back=True)
                for i in mine
            ]
            _count_records(returned, mine)
            return ops, replace(
                nxt,
                cursor=cursor,
                phase="records" if more else "offer_uses",
                undo=undo | {"returned": returned},
            )
        if record.phase == "offer_uses":
            for offer_id, n in (record.offer_uses_moved or {}).items():
                ops += self._merges.move_offer_use_ops(offer_id, n, survivor_id, merged_id)
            returned["offer_uses"] = len(record.offer_uses_moved or {})
            return ops, replace(nxt, phase="holds", undo=undo | {"returned": returned})
        if record.phase == "holds":
            hold_owner = self._merges.hold_owners(list(record.holds_moved))
            holds = [h for h, owner in hold_owner.items() if owner == survivor_id]
            ops = [self._merges.move_hold_op(h, survivor_id, merged_id) for h in holds]
            returned["holds"] = len(holds)
            undo["holds_returned"] = holds
            return ops, replace(nxt, phase="finish", undo=undo | {"returned": returned})
        if record.phase == "finish":
            return self._finish_undo(record, undo, now)
        raise ServiceUnavailable(f"undo of {record.merge_id} is in an unknown phase {record.phase!r}")

    def _finish_undo(
        self, record: MergeRecord, undo: dict[str, Any], now: datetime
    ) -> tuple[list[TxOp], MergeRecord]:
        assert record.survivor_id is not None
        assert record.survivor_before is not None
        programme = self._programme.current()
        profiles = self._merges.profiles(record.survivor_id, record.merged_id)
        survivor, merged = profiles[record.survivor_id], profiles[record.merged_id]
        before = from_snapshot(record.survivor_before)
        delta = int(undo.get("lots_delta", 0))
        result = split(
            survivor,
            before,
            merged,
            merged_at=record.started_at or now,
            returned_links=tuple(_link_of(k) for k in undo.get("links_returned", [])),
            returned_holds=tuple(undo.get("holds_returned", [])),
            lots_delta=delta,
            returned_pending=int(undo.get("pending", 0)),
            survivor_tier=None,
            merged_tier=None,
            now=now,
        )
        kept = replace(result.survivor, tier=effective_tier(result.survivor, programme, now))
        restored = replace(result.restored, tier=effective_tier(result.restored, programme, now))
        ops: list[TxOp] = []
        if delta:
            # Each side's ledger keeps adding up to its balance: the returned lots changed by
            # `delta` while they were the survivor's (spent, expired or returned there).
            restored = replace(restored, ledger_seq=restored.ledger_seq + 1)
            kept = replace(kept, ledger_seq=kept.ledger_seq + 1)
            for owner, points in ((restored, delta), (kept, -delta)):
                ops.append(
                    self._merges.ledger_put_op(
                        LedgerEntry(
                            customer_id=owner.customer_id,
                            seq=owner.ledger_seq,
                            at=now,
                            points=points,
                            reason=LedgerReason.ADJUST,
                            balance_after=owner.points.available + owner.points.pending,
                            actor=MERGE_ACTOR,
                        )
                    )
                )
        ops += [
            self._merges.put_profile_op(kept, record.merge_id),
            self._merges.put_profile_op(restored, record.merge_id),
        ]
        stayed = {
            "links": list(undo.get("links_stayed", [])),
            "points": result.points_kept_by_survivor,
            "note": "records created after the merge stay with the survivor",
        }
        undo = undo | {"stayed": stayed, "finished_at": now.isoformat()}
        return ops, replace(
            record,
            step=record.step + 1,
            status=MergeStatus.UNDONE,
            phase="done",
            undo=undo,
            finished_at=record.finished_at,
        )

    # ---- privacy --------------------------------------------------------------------------
    def export(self, customer: Customer) -> dict[str, Any]:
        """Everything held on the person (GDPR Art. 15/20): the live profile's records and journals."""
        items = self._merges.everything_of(customer.customer_id)
        out: dict[str, list[dict[str, Any]]] = {
            "transactions": [],
            "ledger": [],
            "coupons": [],
            "redemptions": [],
            "accounts": [],
            "offer_uses": [],
            "merges": [],
        }
        for item in items:
            kind = str(item.get("type", ""))
            sk = str(item.get("sk", ""))
            bucket = {
                "transaction": "transactions",
                "ledger": "ledger",
                "coupon": "coupons",
                "redemption": "redemptions",
                "account": "accounts",
                "merge": "merges",
            }.get(kind)
            if sk.startswith("OFFERUSE#"):
                bucket = "offer_uses"
            if bucket is None:
                continue
            out[bucket].append(_public(item))
        holds = self._merges.hold_items(sorted(customer.points_holds))
        return {**out, "holds": [_public(i) for i in holds]}

    def erase(self, customer_id: str, principal: Principal) -> Erasure:
        """Erase a person (GDPR Art. 17): their profile and every profile merged into it lose all
        personal data and links; transactions, coupons, redemptions and accounts stay for reporting
        without an owner; journals lose their snapshots, so no undo can bring anything back.
        Re-running it finishes an erasure a crash interrupted."""
        root = self._merges.profiles(customer_id).get(customer_id) if is_plausible_id(customer_id) else None
        if root is None:
            raise CustomerNotFound(f"customer {customer_id[:64]} does not exist")
        if root.status is CustomerStatus.MERGED:
            root = self._resolve(customer_id)
        if root.merge_lock:
            raise MergeBusy("the customer is being merged; retry")
        now = self._clock.now()
        already = root.status is CustomerStatus.ERASED
        ids = (
            root.customer_id,
            *(self._merges.erased_ids(root.customer_id) if already else root.merged_from),
        )
        anonymised = 0
        # The profiles first: once erased nothing else can write to them (every write needs an
        # active, unlocked profile). The erased profile keeps the ids it covered, so a second
        # DELETE finishes what a crash interrupted, without a second event.
        if not already:
            for cid in reversed(ids):
                event = ev.DomainEvent(
                    ev.CUSTOMER_ERASED,
                    {
                        "customer_id": cid,
                        "erased_at": now,
                        "erased_by": principal.key_id,
                        "merged_ids": ids[1:],
                    },
                )
                root_only = cid == root.customer_id
                self._merges.erase_profile(
                    cid, now, ev.outbox([event]) if root_only else [], ids[1:] if root_only else ()
                )
        for cid in ids:
            anonymised += self._merges.scrub_records(cid)
        for journal in self._merges.of_customer(root.customer_id):
            self._merges.scrub_journal(journal.merge_id)
        return Erasure(root.customer_id, tuple(ids), anonymised)


def _plausible(*ids: str) -> bool:
    return all(is_plausible_id(i) for i in ids)


def _refusal(survivor: Customer, merged: Customer, programme: Programme) -> tuple[str, str] | None:
    """Why these two may not merge (and which request field it is about), or None."""
    if survivor.customer_id == merged.customer_id:
        return "a customer cannot be merged into itself", "merged_id"
    for who, loc in ((survivor, "survivor_id"), (merged, "merged_id")):
        if who.status is CustomerStatus.ERASED:
            return f"customer {who.customer_id} was erased", loc
        if who.status is CustomerStatus.MERGED:
            return f"customer {who.customer_id} was merged into {who.merged_into} (a tombstone)", loc
        if who.review:
            return f"customer {who.customer_id} is flagged for review: {who.review}", loc
    if _over_limit(survivor, merged, programme):
        return (
            f"customer {survivor.customer_id} would absorb more than "
            f"{programme.max_merges_per_profile} merges; merging stops until a person reviews the profile",
            "survivor_id",
        )
    return None


def _over_limit(survivor: Customer, merged: Customer, programme: Programme) -> bool:
    # Merges since a person last reviewed the profile (a review clears the count, not the history).
    since_review = survivor.merge_count - survivor.merges_reviewed
    return since_review + merged.merge_count + 1 > programme.max_merges_per_profile


def _tier_after(
    combined: Customer, survivor: Customer, merged: Customer, programme: Programme, now: datetime
) -> str:
    """The higher of both tiers and what the combined window reaches (a merge never demotes)."""
    reached = programme.tier_for(
        points_in_window(combined.earned_by_month, now, programme.tier_window_months)
    )
    held = [programme.tier_named(t) for t in (survivor.tier, merged.tier) if t]
    return max([reached, *held], key=lambda t: t.threshold).name


def _count_records(counts: dict[str, int], items: list[Item]) -> None:
    names = {
        "transaction": "transactions",
        "coupon": "coupons",
        "redemption": "redemptions",
        "account": "accounts",
    }
    for item in items:
        name = names.get(str(item.get("type")), "other")
        counts[name] = counts.get(name, 0) + 1


def _link_of(key: str) -> Link:
    link_type, value = key.split("#", 1)
    return Link(link_type, value)


_PRIVATE = (
    "pk",
    "sk",
    "gsi1pk",
    "gsi1sk",
    "gsi2pk",
    "gsi2sk",
    "fingerprint",
    "body",
    "outbox",
    "status_code",
)


def _public(item: Item) -> dict[str, Any]:
    """An item as the customer may see it: no keys, no stored responses, no secrets."""
    return {k: v for k, v in item.items() if k not in _PRIVATE and "hash" not in k and "pin" not in k}


__all__ = ["Erasure", "MergeBusy", "MergeService"]
