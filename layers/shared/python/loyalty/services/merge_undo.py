"""Undoing a finished merge, run by the merge worker: lock both profiles again, give back phase by
phase what the merge moved and is still the survivor's (links, ledger entries, records, the
timeline records it moved generically, offer uses, points holds), then split the profiles. What
was created after the merge stays with the survivor; lots that changed meanwhile are balanced by
an adjustment on each side."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.merges import MergeRepository, StepConflict, from_snapshot
from loyalty.adapters.transactions import TierChange
from loyalty.domain.errors import ServiceUnavailable
from loyalty.domain.ledger import LedgerEntry, LedgerReason
from loyalty.domain.merges import MergeRecord, MergeStatus, split, undo_refusal
from loyalty.domain.tiers import effective_tier, tier_direction
from loyalty.services.config import ProgrammeService
from loyalty.services.merge_run import (
    LEDGER_PAGE,
    MERGE_ACTOR,
    READ_PAGES,
    RECORD_PAGE,
    STEP_ATTEMPTS,
    TIMELINE_PAGE,
    MergeBusy,
    RunCache,
    count_records,
    journal,
    link_of,
)
from loyalty.services.ports import Clock


@dataclass(frozen=True)
class _Step:
    """What every phase of an undo step starts from."""

    record: MergeRecord
    cache: RunCache
    careful: bool
    survivor_id: str
    merged_id: str
    undo: dict[str, Any]
    returned: dict[str, int]
    now: datetime
    nxt: MergeRecord  # the journal one step on


class MergeUndo:
    def __init__(self, *, merges: MergeRepository, programme: ProgrammeService, clock: Clock) -> None:
        self._merges = merges
        self._programme = programme
        self._clock = clock

    def use_repository(self, merges: MergeRepository) -> None:
        self._merges = merges

    def lock(self, record: MergeRecord) -> MergeRecord:
        """Lock both profiles for the undo, or put the merge back to done when it can no longer be
        undone (an erasure came first)."""
        assert record.survivor_id is not None
        for _ in range(STEP_ATTEMPTS):
            profiles = self._merges.profiles(record.survivor_id, record.merged_id)
            refusal = undo_refusal(record, profiles.get(record.survivor_id), profiles.get(record.merged_id))
            if refusal is not None:
                # The undo cannot happen any more (an erasure came first): the merge stays done.
                undone = dict(record.undo or {}) | {"refused": refusal}
                back = replace(record, status=MergeStatus.DONE, undo=undone, step=record.step + 1)
                try:
                    self._merges.commit([self._merges.journal_op(back, record.step)])
                except StepConflict:
                    return journal(self._merges, record.merge_id)
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
                    return journal(self._merges, record.merge_id)
        raise MergeBusy("the profiles kept changing; retried later")

    def step(
        self, record: MergeRecord, cache: RunCache, careful: bool = False
    ) -> tuple[list[TxOp], MergeRecord]:
        """The writes of the undo's next step and the journal after it."""
        assert record.survivor_id is not None
        undo: dict[str, Any] = dict(record.undo or {})
        returned: dict[str, int] = dict(undo.get("returned") or {})
        now = self._clock.now()
        phase = {
            "links": self._links,
            "ledger": self._ledger,
            "records": self._records,
            "timeline": self._timeline,
            "offer_uses": self._offer_uses,
            "holds": self._holds,
            "finish": self._finish_phase,
        }.get(record.phase)
        if phase is None:
            raise ServiceUnavailable(f"undo of {record.merge_id} is in an unknown phase {record.phase!r}")
        nxt = replace(record, step=record.step + 1)
        return phase(
            _Step(record, cache, careful, record.survivor_id, record.merged_id, undo, returned, now, nxt)
        )

    def _links(self, s: _Step) -> tuple[list[TxOp], MergeRecord]:
        record, survivor_id, merged_id, undo, returned, now, nxt = (
            s.record,
            s.survivor_id,
            s.merged_id,
            s.undo,
            s.returned,
            s.now,
            s.nxt,
        )
        start = int(record.cursor or 0)
        keys = list(record.links_moved)[start : start + RECORD_PAGE]
        if not keys:
            return [], replace(nxt, phase="ledger", cursor=None)
        link_page = [link_of(key) for key in keys]
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

    def _ledger(self, s: _Step) -> tuple[list[TxOp], MergeRecord]:
        record, cache, survivor_id, merged_id, undo, returned, nxt = (
            s.record,
            s.cache,
            s.survivor_id,
            s.merged_id,
            s.undo,
            s.returned,
            s.nxt,
        )
        ops: list[TxOp] = []
        merged = cache.tombstone(self._merges, record)
        lo, hi = record.offset + 1, record.offset + merged.ledger_seq
        page = cache.read_ahead(
            record,
            lambda: (
                self._merges.ledger_page(survivor_id, LEDGER_PAGE * READ_PAGES, (lo, hi)) if hi >= lo else [],
                None,
            ),
        )
        items = [
            i
            for i in cache.take(record, page, LEDGER_PAGE)
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

    def _records(self, s: _Step) -> tuple[list[TxOp], MergeRecord]:
        record, cache, careful, survivor_id, merged_id, undo, returned, nxt = (
            s.record,
            s.cache,
            s.careful,
            s.survivor_id,
            s.merged_id,
            s.undo,
            s.returned,
            s.nxt,
        )
        page = cache.read_ahead(
            record,
            lambda: self._merges.owned_page(survivor_id, RECORD_PAGE * READ_PAGES, record.cursor, careful),
        )
        items = cache.take(record, page, RECORD_PAGE)
        cursor, more = cache.position(self._merges, page, items, record.cursor)
        mine = [i for i in items if (i.get("merge_trail") or [None])[-1] == record.merge_id]
        ops = [
            self._merges.reassign_op(i, survivor_id, merged_id, record.offset, record.merge_id, back=True)
            for i in mine
        ]
        count_records(returned, mine)
        return ops, replace(
            nxt,
            cursor=cursor if more else None,
            phase="records" if more else "timeline",
            undo=undo | {"returned": returned},
        )

    def _timeline(self, s: _Step) -> tuple[list[TxOp], MergeRecord]:
        """Back exactly the records the merge moved generically and still on the survivor's
        timeline (one the survivor's erasure took off, or a later merge moved on, stays)."""
        record, survivor_id, merged_id, undo, returned, nxt = (
            s.record,
            s.survivor_id,
            s.merged_id,
            s.undo,
            s.returned,
            s.nxt,
        )
        keys, next_cursor = self._merges.moved_chunk(record.merge_id, record.cursor)
        if not keys and next_cursor is None:
            return [], replace(nxt, phase="offer_uses", cursor=None)
        items = self._merges.still_on_timeline(
            [{"pk": pk, "sk": sk} for pk, sk in keys[:TIMELINE_PAGE]], survivor_id
        )
        ops = [self._merges.move_timeline_op(i, survivor_id, merged_id) for i in items]
        returned["timeline"] = returned.get("timeline", 0) + len(items)
        return ops, replace(
            nxt,
            cursor=next_cursor,
            phase="timeline" if next_cursor is not None else "offer_uses",
            undo=undo | {"returned": returned},
        )

    def _offer_uses(self, s: _Step) -> tuple[list[TxOp], MergeRecord]:
        record, survivor_id, merged_id, undo, returned, nxt = (
            s.record,
            s.survivor_id,
            s.merged_id,
            s.undo,
            s.returned,
            s.nxt,
        )
        ops: list[TxOp] = []
        for offer_id, n in (record.offer_uses_moved or {}).items():
            ops += self._merges.move_offer_use_ops(offer_id, n, survivor_id, merged_id)
        returned["offer_uses"] = len(record.offer_uses_moved or {})
        return ops, replace(nxt, phase="holds", undo=undo | {"returned": returned})

    def _holds(self, s: _Step) -> tuple[list[TxOp], MergeRecord]:
        record, survivor_id, merged_id, undo, returned, nxt = (
            s.record,
            s.survivor_id,
            s.merged_id,
            s.undo,
            s.returned,
            s.nxt,
        )
        hold_owner = self._merges.hold_owners(list(record.holds_moved))
        holds = [h for h, owner in hold_owner.items() if owner == survivor_id]
        ops = [self._merges.move_hold_op(h, survivor_id, merged_id) for h in holds]
        returned["holds"] = len(holds)
        undo["holds_returned"] = holds
        return ops, replace(nxt, phase="finish", undo=undo | {"returned": returned})

    def _finish_phase(self, s: _Step) -> tuple[list[TxOp], MergeRecord]:
        record, undo, now = s.record, s.undo, s.now
        return self._finish(record, undo, now)

    def _finish(
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
            returned_links=tuple(link_of(k) for k in undo.get("links_returned", [])),
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
                            balance_after=owner.points.balance,
                            actor=MERGE_ACTOR,
                        )
                    )
                )
        ops += [
            self._merges.put_profile_op(kept, record.merge_id),
            self._merges.put_profile_op(restored, record.merge_id),
        ]
        for was, now_is in ((survivor, kept), (merged, restored)):
            # Compared as the view shows them: a stored tier may be stale or unset (a member who
            # never bought), and that is no change a customer saw.
            was_tier = effective_tier(was, programme, now)
            if was_tier != now_is.tier:
                change = TierChange(
                    now_is.customer_id,
                    now_is.version,
                    now,
                    was_tier,
                    now_is.tier,
                    "merge_undone",
                    tier_direction(programme, was_tier, now_is.tier),
                )
                ops.append(self._merges.tier_change_op(change))
        ref = {"merge_id": record.merge_id, "merged_id": record.merged_id}
        ops += [
            self._merges.timeline_entry_op(
                record.merge_id,
                "undone",
                kept.customer_id,
                now,
                f"Merge of {record.merged_id} undone",
                {},
                ref,
            ),
            self._merges.timeline_entry_op(
                record.merge_id,
                "restored",
                restored.customer_id,
                now,
                f"Restored from {kept.customer_id}: the merge was undone",
                {},
                ref,
            ),
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
