"""The merge worker: runs a journalled merge (or its undo, services/merge_undo.py) step by step
from the merge queue.

1. It locks both profiles in one transaction: the survivor takes the combined profile and counters
   (`merge_lock` set: every other write to it fails until the merge ends, and answers 503), the
   merged profile becomes a tombstone pointing at the survivor, frozen as it was (the undo
   restores from it);
2. moves, phase by phase (links, ledger, records, a re-check for records the index showed late,
   timeline, offer uses, holds), its links, ledger entries (re-keyed after the survivor's own: seq n
   becomes offset + n, so lots keep their pending and expiry dates and every reference follows by
   adding the offset), transactions, coupons, redemptions, accounts (each taking its timeline entry
   along), then every other record on its timeline (events, tier changes, badges, messages, ...:
   the owner changes, the keys are journalled for the undo), per-offer uses and points holds;
3. unlocks both and publishes `CustomersMerged`.

Every step is one TransactWriteItems that also advances the journal's step under a condition, so a
crash or a redelivered message resumes where the journal says. Two merges never touch one profile
at once: the lock step fails for the second, which is retried later from the queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.merges import MergeRepository, StepConflict, snapshot
from loyalty.adapters.transactions import TierChange
from loyalty.domain import events as ev
from loyalty.domain.customers import Customer
from loyalty.domain.errors import CustomerNotFound, ServiceUnavailable
from loyalty.domain.merges import MergeRecord, MergeStatus, combine, merge_refusal, tier_after_merge
from loyalty.domain.tiers import effective_tier, tier_direction
from loyalty.services.config import ProgrammeService
from loyalty.services.merge_run import (
    LEDGER_PAGE,
    READ_PAGES,
    RECORD_PAGE,
    STEP_ATTEMPTS,
    TIMELINE_PAGE,
    MergeBusy,
    RunCache,
    count_records,
    flag_if_over_limit,
    journal,
)
from loyalty.services.merge_undo import MergeUndo
from loyalty.services.ports import Clock, backoff


@dataclass(frozen=True)
class _Step:
    """What every phase of a merge step starts from."""

    record: MergeRecord
    cache: RunCache
    careful: bool
    survivor_id: str
    merged_id: str
    counts: dict[str, int]
    now: datetime
    nxt: MergeRecord  # the journal one step on


class MergeWorker:
    def __init__(
        self,
        *,
        merges: MergeRepository,
        programme: ProgrammeService,
        clock: Clock,
        resolve_customer: Callable[[str], Customer],
        undo: MergeUndo,
    ) -> None:
        self._resolve = resolve_customer  # an id to its live profile, following merges
        self._merges = merges
        self._programme = programme
        self._clock = clock
        self._undo = undo
        self._cache = RunCache()

    @property
    def repository(self) -> MergeRepository:
        return self._merges

    def use_repository(self, merges: MergeRepository) -> None:
        """Run on another repository from now on (the crash tests wrap the table)."""
        self._merges = merges
        self._undo.use_repository(merges)

    def process(self, merge_id: str) -> MergeRecord:
        """Run a queued merge or undo to its end (or resume one a crash interrupted)."""
        record = journal(self._merges, merge_id)
        self._cache.new_run()
        if record.status is MergeStatus.QUEUED:
            record = self.lock_for_merge(record)
        if record.status is MergeStatus.UNDO_QUEUED:
            record = self._undo.lock(record)
        attempts = 0
        while record.status in (MergeStatus.RUNNING, MergeStatus.UNDOING):
            undoing = record.status is MergeStatus.UNDOING
            careful = attempts > 0
            try:
                ops, advanced = (
                    self._undo.step(record, self._cache, careful)
                    if undoing
                    else self._merge_step(record, careful)
                )
                if not ops and advanced.status is record.status:
                    # Nothing moved (a phase with nothing in it): no need to write the journal; a
                    # crash here only means reading the empty phase again.
                    record = replace(advanced, step=record.step)
                    continue
                self._merges.commit([*ops, self._merges.journal_op(advanced, record.step, _outbox(advanced))])
                record, attempts = advanced, 0
            except StepConflict as conflict:
                self._cache.drop_page()
                attempts += 1
                if attempts >= STEP_ATTEMPTS:
                    raise ServiceUnavailable(
                        "the merge's records kept changing; it will be retried"
                    ) from None
                if conflict.journal_moved or attempts > 1:
                    record = journal(self._merges, merge_id)
            except ServiceUnavailable:
                # The table is throttling or did not answer (the step may or may not have
                # committed): wait, read the journal again and go on from where it says.
                self._cache.drop_page()
                attempts += 1
                if attempts >= STEP_ATTEMPTS:
                    raise
                backoff(attempts + 2)
                record = journal(self._merges, merge_id)
        return record

    # ---- lock -----------------------------------------------------------------------------
    def lock_for_merge(self, record: MergeRecord) -> MergeRecord:
        programme = self._programme.current()
        for _ in range(STEP_ATTEMPTS):
            survivor = self._live_or_none(record.requested_survivor_id)
            merged = self._merges.profiles(record.merged_id).get(record.merged_id)
            refusal = None
            if survivor is None:
                refusal = f"customer {record.requested_survivor_id} no longer exists (erased)"
            elif merged is None:
                refusal = f"customer {record.merged_id} does not exist"
            else:
                found = merge_refusal(survivor, merged, programme)
                refusal = found[0] if found else None
            if refusal is not None:
                if survivor is not None and merged is not None:
                    flag_if_over_limit(self._merges, survivor, merged, programme, self._clock)
                return self._fail(record, refusal)
            assert survivor is not None
            assert merged is not None
            if survivor.merge_lock or merged.merge_lock:
                raise MergeBusy("another merge is moving one of these profiles; retried later")
            now = self._clock.now()
            combined = combine(survivor, merged, None, now, record.merge_id)
            combined = replace(
                combined,
                tier=tier_after_merge(combined, survivor, merged, programme, now)
                if combined.member
                else None,
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
            ops = [
                self._merges.journal_op(running, record.step),
                self._merges.lock_survivor_op(combined, survivor.version),
                self._merges.tombstone_op(merged, survivor.customer_id, record.merge_id, now),
            ]
            # As the view shows them: an unset or stale stored tier is no change anyone saw.
            tier_before = effective_tier(survivor, programme, now)
            if combined.tier != tier_before:
                change = TierChange(
                    survivor.customer_id,
                    combined.version,
                    now,
                    tier_before,
                    combined.tier,
                    "merge",
                    tier_direction(programme, tier_before, combined.tier),
                )
                ops.append(self._merges.tier_change_op(change))
            try:
                self._merges.commit(ops)
                return running
            except StepConflict as conflict:
                if conflict.journal_moved:
                    return journal(self._merges, record.merge_id)
        raise MergeBusy("the profiles kept changing; retried later")

    def _fail(self, record: MergeRecord, why: str) -> MergeRecord:
        failed = replace(
            record, status=MergeStatus.FAILED, error=why, step=record.step + 1, finished_at=self._clock.now()
        )
        try:
            self._merges.commit([self._merges.journal_op(failed, record.step)])
        except StepConflict:
            return journal(self._merges, record.merge_id)
        return failed

    def _live_or_none(self, customer_id: str) -> Customer | None:
        """The live profile an id stands for now (following merges), None when erased or unknown."""
        try:
            return self._resolve(customer_id)
        except CustomerNotFound:
            return None

    # ---- steps ----------------------------------------------------------------------------
    def _merge_step(self, record: MergeRecord, careful: bool = False) -> tuple[list[TxOp], MergeRecord]:
        """The writes of the merge's next step and the journal after it."""
        assert record.survivor_id is not None
        counts = dict(record.counts or {})
        now = self._clock.now()
        phase = {
            "links": self._merge_links,
            "ledger": self._merge_ledger,
            "records": self._merge_records,
            "recheck": self._merge_recheck,
            "timeline": self._merge_timeline,
            "offer_uses": self._merge_offer_uses,
            "holds": self._merge_holds,
            "finish": self._merge_finish,
        }.get(record.phase)
        if phase is None:
            raise ServiceUnavailable(f"merge {record.merge_id} is in an unknown phase {record.phase!r}")
        nxt = replace(record, step=record.step + 1)
        return phase(
            _Step(record, self._cache, careful, record.survivor_id, record.merged_id, counts, now, nxt)
        )

    def _merge_links(self, s: _Step) -> tuple[list[TxOp], MergeRecord]:
        record, cache, survivor_id, merged_id, counts, now, nxt = (
            s.record,
            s.cache,
            s.survivor_id,
            s.merged_id,
            s.counts,
            s.now,
            s.nxt,
        )
        merged = cache.tombstone(self._merges, record)
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

    def _merge_ledger(self, s: _Step) -> tuple[list[TxOp], MergeRecord]:
        record, cache, survivor_id, merged_id, counts, nxt = (
            s.record,
            s.cache,
            s.survivor_id,
            s.merged_id,
            s.counts,
            s.nxt,
        )
        ops: list[TxOp] = []
        page = cache.read_ahead(
            record, lambda: (self._merges.ledger_page(merged_id, LEDGER_PAGE * READ_PAGES), None)
        )
        items = cache.take(record, page, LEDGER_PAGE)
        if not items:
            return [], replace(nxt, phase="records", cursor=None)
        for item in items:
            ops += self._merges.move_ledger_ops(
                item, survivor_id, int(item["seq"]) + record.offset, record.merge_id, back=False
            )
        counts["ledger_entries"] = counts.get("ledger_entries", 0) + len(items)
        return ops, replace(nxt, counts=counts)

    def _merge_records(self, s: _Step) -> tuple[list[TxOp], MergeRecord]:
        record, cache, careful, survivor_id, merged_id, counts, nxt = (
            s.record,
            s.cache,
            s.careful,
            s.survivor_id,
            s.merged_id,
            s.counts,
            s.nxt,
        )
        page = cache.read_ahead(
            record,
            lambda: self._merges.owned_page(merged_id, RECORD_PAGE * READ_PAGES, record.cursor, careful),
        )
        items = cache.take(record, page, RECORD_PAGE)
        ops = [
            self._merges.reassign_op(i, merged_id, survivor_id, record.offset, record.merge_id, back=False)
            for i in items
        ]
        count_records(counts, items)
        cursor, more = cache.position(self._merges, page, items, record.cursor)
        return ops, replace(nxt, counts=counts, cursor=cursor, phase="records" if more else "recheck")

    def _merge_recheck(self, s: _Step) -> tuple[list[TxOp], MergeRecord]:
        merged_id, nxt = s.merged_id, s.nxt
        # Anything the index showed late (a record written just before the lock)? Then go
        # through the records again; they are few, and the phase ends when none are left.
        late, _ = self._merges.owned_page(merged_id, RECORD_PAGE, None, verify=True)
        return [], replace(nxt, phase="records" if late else "timeline", cursor=None)

    def _merge_timeline(self, s: _Step) -> tuple[list[TxOp], MergeRecord]:
        record, survivor_id, merged_id, counts, nxt = s.record, s.survivor_id, s.merged_id, s.counts, s.nxt
        listed, next_cursor = self._merges.timeline_page(merged_id, TIMELINE_PAGE, record.cursor)
        items = self._merges.still_on_timeline(listed, merged_id)
        ops = [self._merges.move_timeline_op(i, merged_id, survivor_id) for i in items]
        if ops:
            ops.append(self._merges.moved_keys_op(record.merge_id, record.step, items))
            counts["timeline"] = counts.get("timeline", 0) + len(items)
        if next_cursor is not None:
            return ops, replace(nxt, counts=counts, cursor=next_cursor)
        # The end of a pass. One that went through the whole index from the start and found
        # nothing to move ends the phase; otherwise read it again (records the index showed late).
        done = record.cursor is None and not items
        return ops, replace(nxt, counts=counts, cursor=None, phase="offer_uses" if done else "timeline")

    def _merge_offer_uses(self, s: _Step) -> tuple[list[TxOp], MergeRecord]:
        record, survivor_id, merged_id, counts, nxt = s.record, s.survivor_id, s.merged_id, s.counts, s.nxt
        ops: list[TxOp] = []
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

    def _merge_holds(self, s: _Step) -> tuple[list[TxOp], MergeRecord]:
        record, cache, survivor_id, merged_id, counts, nxt = (
            s.record,
            s.cache,
            s.survivor_id,
            s.merged_id,
            s.counts,
            s.nxt,
        )
        merged = cache.tombstone(self._merges, record)
        hold_owner = self._merges.hold_owners(sorted(merged.points_holds))
        holds = [h for h, owner in hold_owner.items() if owner == merged_id]
        ops = [self._merges.move_hold_op(h, merged_id, survivor_id) for h in holds]
        counts["holds"] = len(holds)
        return ops, replace(nxt, counts=counts, holds_moved=tuple(holds), phase="finish")

    def _merge_finish(self, s: _Step) -> tuple[list[TxOp], MergeRecord]:
        record, survivor_id, merged_id, now, nxt = s.record, s.survivor_id, s.merged_id, s.now, s.nxt
        ops = [
            self._merges.unlock_op(survivor_id, record.merge_id),
            self._merges.unlock_op(merged_id, record.merge_id),
            self._merges.timeline_entry_op(
                record.merge_id,
                "merged",
                survivor_id,
                now,
                f"Profile {merged_id} merged into this one",
                {"moved": dict(s.counts), "reason": record.reason},
                {"merge_id": record.merge_id, "merged_id": merged_id},
            ),
        ]
        return ops, replace(nxt, status=MergeStatus.DONE, phase="done", finished_at=now)


def _outbox(record: MergeRecord) -> list[dict[str, str]]:
    """The event a finished merge or undo publishes, with its last journal write."""
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
