"""The merge journal, and the item moves a merge and its undo are made of.

MERGE#<merge_id>   MERGE   the journal: request, progress (step, phase, cursor), what moved
                           (gsi1: CUST#<survivor> / MERGE#<requested_at>#<id>)
MERGE#<merge_id>   MOVED#<step>   the keys of the timeline records one step moved generically
                           (events, tier changes, badges, ...), so the undo moves exactly those back
MERGE#<merge_id>   TL#<what>      the merge (or its undo) on a timeline (gsi3), kind `merge`

A merge moves a profile's records in steps, each one TransactWriteItems that also advances the
journal's `step` under a condition: a step replayed after a crash fails that condition and the
merge goes on from where the journal says, so nothing is moved twice or lost.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

from loyalty.adapters.codec import (
    customer_from_item,
    customer_pk,
    customer_to_item,
    from_iso,
    link_pk,
    plain,
    to_iso,
)
from loyalty.adapters.dynamo import DynamoTable, Item, TransactionCancelled, TxOp, encode_cursor, serialize
from loyalty.adapters.timeline import INDEX as TIMELINE_INDEX
from loyalty.adapters.timeline import MERGE, customer_owner, timeline_fields
from loyalty.adapters.transactions import (
    TierChange,
    due_key,
    ledger_from_item,
    ledger_sk,
    ledger_to_item,
    lot_sk,
    tier_change_item,
)
from loyalty.domain.customers import Customer, CustomerStatus
from loyalty.domain.ledger import LedgerEntry
from loyalty.domain.links import Link
from loyalty.domain.merges import MergeRecord, MergeStatus

# Records that belong to a customer through their owner attribute (and gsi1 partition), by the
# prefix of their gsi1 sort key. Ledger entries (LOT#) live in the profile's own partition and
# move by key; journals (MERGE#) stay with the merge they describe.
OWNED_PREFIXES = ("TXN#", "COUPON#", "REDEMPTION#", "ACCOUNT#")

OPEN_MERGES = "MERGES#OPEN"
OPEN_STATUSES = frozenset(
    {MergeStatus.QUEUED, MergeStatus.RUNNING, MergeStatus.UNDO_QUEUED, MergeStatus.UNDOING}
)

# TransactWriteItems takes 100 items; one is always the journal.
STEP_ITEMS = 99


class StepConflict(Exception):
    """A step's transaction was cancelled: the journal moved on, or an item changed meanwhile."""

    def __init__(self, journal_moved: bool) -> None:
        super().__init__("journal moved on" if journal_moved else "an item changed meanwhile")
        self.journal_moved = journal_moved


def merge_key(merge_id: str) -> tuple[str, str]:
    return f"MERGE#{merge_id}", "MERGE"


class MergeRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    # ---- the journal ----------------------------------------------------------------------
    def get(self, merge_id: str) -> MergeRecord | None:
        item = self._table.get(*merge_key(merge_id))
        return merge_from_item(item) if item else None

    def create(self, record: MergeRecord, extra: Sequence[TxOp] = ()) -> bool:
        """False when a merge with this id exists already."""
        op = self._table.put_op(merge_to_item(record), "attribute_not_exists(pk)", label="journal")
        try:
            self._table.transact([op, *extra])
        except TransactionCancelled as cancelled:
            if "journal" in cancelled.failed_labels():
                return False
            raise
        return True

    def of_customer(self, customer_id: str, limit: int = 200) -> list[MergeRecord]:
        items, _ = self._table.query(
            customer_pk(customer_id), index="gsi1", sk_prefix="MERGE#", limit=limit, newest_first=True
        )
        return [merge_from_item(i) for i in items]

    def open_merges(self, requested_before: datetime, limit: int = 100) -> list[MergeRecord]:
        items, _ = self._table.query(
            OPEN_MERGES, index="gsi2", sk_max=(to_iso(requested_before) or "") + "#\uffff", limit=limit
        )
        return [merge_from_item(i) for i in items]

    def journal_op(
        self, record: MergeRecord, expected_step: int, outbox: Sequence[dict[str, Any]] = ()
    ) -> TxOp:
        item = merge_to_item(record) | {"outbox": list(outbox) or None}
        return self._table.put_op(item, "#step = :step", values={":step": expected_step}, label="journal")

    def commit(self, ops: Sequence[TxOp]) -> None:
        try:
            self._table.transact(ops)
        except TransactionCancelled as cancelled:
            raise StepConflict("journal" in cancelled.failed_labels()) from None

    # ---- profiles -------------------------------------------------------------------------
    def profiles(self, *customer_ids: str) -> dict[str, Customer]:
        items = self._table.batch_get([(customer_pk(cid), "PROFILE") for cid in dict.fromkeys(customer_ids)])
        return {str(i["customer_id"]): customer_from_item(i) for i in items}

    def profile_item(self, customer_id: str) -> Item | None:
        return self._table.get(customer_pk(customer_id), "PROFILE")

    def lock_survivor_op(self, combined: Customer, expected_version: int) -> TxOp:
        return self._table.put_op(
            customer_to_item(combined),
            "#version = :expected AND #status = :active AND attribute_not_exists(#merge_lock)",
            values={":expected": expected_version, ":active": CustomerStatus.ACTIVE.value},
            label="survivor",
        )

    def tier_change_op(self, change: TierChange) -> TxOp:
        return self._table.put_op(tier_change_item(change), label="tier")

    def tombstone_op(self, merged: Customer, survivor_id: str, merge_id: str, now: datetime) -> TxOp:
        """The merged profile keeps its fields and counters frozen (the undo restores from them)."""
        return self._table.update_op(
            customer_pk(merged.customer_id),
            "PROFILE",
            "SET #status = :merged, #merged_into = :survivor, #merge_lock = :merge, #version = :next, "
            "#updated_at = :now",
            "#version = :expected AND #status = :active AND attribute_not_exists(#merge_lock)",
            values={
                ":merged": CustomerStatus.MERGED.value,
                ":survivor": survivor_id,
                ":merge": merge_id,
                ":next": merged.version + 1,
                ":expected": merged.version,
                ":active": CustomerStatus.ACTIVE.value,
                ":now": to_iso(now),
            },
            label="merged",
        )

    def flag_for_review(self, customer_id: str, why: str, now: datetime) -> None:
        """Mark a profile for a person to look at (it stops merging until then)."""
        op = self._table.update_op(
            customer_pk(customer_id),
            "PROFILE",
            "SET #review = :why, #updated_at = :now",
            "attribute_exists(pk) AND attribute_not_exists(#review)",
            values={":why": why, ":now": to_iso(now)},
        )
        with contextlib.suppress(TransactionCancelled):  # already flagged, or gone
            self._table.transact([op])

    def clear_review(self, customer_id: str, now: datetime) -> None:
        op = self._table.update_op(
            customer_pk(customer_id),
            "PROFILE",
            "REMOVE #review SET #updated_at = :now, #merges_reviewed = if_not_exists(#merge_count, :zero)",
            "attribute_exists(#review)",
            values={":now": to_iso(now), ":zero": 0},
        )
        with contextlib.suppress(TransactionCancelled):  # not flagged: nothing to clear
            self._table.transact([op])

    def relock_op(self, customer_id: str, merge_id: str, expected_version: int) -> TxOp:
        """Lock a profile for an undo (the survivor, live; or the tombstone)."""
        return self._table.update_op(
            customer_pk(customer_id),
            "PROFILE",
            "SET #merge_lock = :merge, #version = #version + :one",
            "#version = :expected AND attribute_not_exists(#merge_lock)",
            values={":merge": merge_id, ":one": 1, ":expected": expected_version},
            label=f"lock:{customer_id}",
        )

    def unlock_op(self, customer_id: str, merge_id: str, outbox: Sequence[dict[str, Any]] = ()) -> TxOp:
        return self._table.update_op(
            customer_pk(customer_id),
            "PROFILE",
            "REMOVE #merge_lock SET #version = #version + :one, #outbox = :outbox",
            "#merge_lock = :merge",
            values={":merge": merge_id, ":one": 1, ":outbox": list(outbox) or None},
            label=f"unlock:{customer_id}",
        )

    def put_profile_op(self, customer: Customer, merge_id: str) -> TxOp:
        """Write a locked profile whole (the undo's result), releasing the lock."""
        return self._table.put_op(
            customer_to_item(replace(customer, merge_lock=None)),
            "#merge_lock = :merge",
            values={":merge": merge_id},
            label=f"profile:{customer.customer_id}",
        )

    # ---- links ----------------------------------------------------------------------------
    def link_owners(self, links: Sequence[Link]) -> dict[Link, str]:
        wanted = {link_pk(link): link for link in links}
        items = self._table.batch_get([(pk, "LINK") for pk in wanted])
        return {wanted[str(i["pk"])]: str(i["customer_id"]) for i in items}

    def move_link_op(self, link: Link, from_id: str, to_id: str, now: datetime) -> TxOp:
        return self._table.update_op(
            link_pk(link),
            "LINK",
            "SET #customer_id = :to, #updated_at = :now",
            "#customer_id = :from",
            values={":to": to_id, ":from": from_id, ":now": to_iso(now)},
            label="item",
        )

    # ---- ledger entries (moved by key) ----------------------------------------------------
    def ledger_page(
        self, customer_id: str, limit: int, seq_range: tuple[int, int] | None = None
    ) -> list[Item]:
        if seq_range is None:
            items, _ = self._table.query(
                customer_pk(customer_id), sk_prefix="LEDGER#", limit=limit, consistent=True
            )
        else:
            items, _ = self._table.query(
                customer_pk(customer_id),
                sk_min=ledger_sk(seq_range[0]),
                sk_max=ledger_sk(seq_range[1]),
                limit=limit,
                consistent=True,
            )
        return items

    def move_ledger_ops(self, item: Item, to_id: str, new_seq: int, merge_id: str, back: bool) -> list[TxOp]:
        """Re-key a ledger entry into another profile: put the copy, delete the original."""
        moved = {k: v for k, v in item.items() if k not in ("gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")}
        moved |= {"pk": customer_pk(to_id), "sk": ledger_sk(new_seq), "customer_id": to_id, "seq": new_seq}
        if item.get("tlpk"):
            moved["tlpk"] = customer_owner(to_id)  # its timeline entry (and sort key) goes with it
        trail = list(item.get("merge_trail") or [])
        remaining_at = dict(item.get("remaining_at") or {})
        if back:
            trail = trail[:-1]
            remaining_at.pop(merge_id, None)
        else:
            trail.append(merge_id)
            if item.get("remaining") is not None:
                remaining_at[merge_id] = item.get("remaining")
        moved["remaining_at"] = remaining_at or None
        moved["merge_trail"] = trail or None
        entry = ledger_from_item(moved)
        if entry.remaining is not None and entry.remaining > 0:
            moved["gsi1pk"], moved["gsi1sk"] = customer_pk(to_id), lot_sk(entry)
        if item.get("gsi2pk"):
            due_at = from_iso(str(item["gsi2sk"]).split("#", 1)[0])
            if due_at is not None:
                moved["gsi2pk"], moved["gsi2sk"] = due_key(to_id, new_seq, due_at)
        return [
            self._table.put_op(moved, "attribute_not_exists(pk)", label="item"),
            self._table.delete_op(
                str(item["pk"]),
                str(item["sk"]),
                "#remaining = :was OR attribute_not_exists(#remaining)",
                values={":was": item.get("remaining")},
                label="item",
            ),
        ]

    # ---- records owned through an attribute -----------------------------------------------
    def owned_page(
        self, customer_id: str, limit: int, cursor: str | None, verify: bool = False
    ) -> tuple[list[Item], str | None]:
        """The customer's owned records (transactions, coupons, redemptions, accounts) from its
        index. The profile is locked, so they do not change; `verify` reads them again strongly
        consistently (after a step failed because the index still listed a moved record)."""
        listed, next_cursor = self._table.query(
            customer_pk(customer_id), index="gsi1", limit=limit, cursor=cursor
        )
        owned = [
            i
            for i in listed
            if str(i.get("gsi1sk", "")).startswith(OWNED_PREFIXES) and i.get("customer_id") == customer_id
        ]
        if verify and owned:
            owned = [
                i
                for i in self._table.batch_get([(str(i["pk"]), str(i["sk"])) for i in owned])
                if i.get("customer_id") == customer_id
            ]
            owned.sort(key=lambda i: str(i.get("gsi1sk", "")))
        return owned, next_cursor

    @staticmethod
    def cursor_after(item: Item) -> str:
        """Where to list on from, after `item` (an index position: its keys and index keys)."""
        keys = {k: item[k] for k in ("pk", "sk", "gsi1pk", "gsi1sk")}
        return encode_cursor(serialize(keys))

    def reassign_op(
        self, item: Item, from_id: str, to_id: str, offset: int, merge_id: str, back: bool
    ) -> TxOp:
        """Give a record another owner; lot numbers it refers to follow the ledger's re-keying."""
        trail = list(item.get("merge_trail") or [])
        trail = trail[:-1] if back else [*trail, merge_id]
        shift = -offset if back else offset
        sets = ["#customer_id = :to", "#gsi1pk = :gpk", "#merge_trail = :trail"]
        values: dict[str, Any] = {
            ":to": to_id,
            ":from": from_id,
            ":gpk": customer_pk(to_id),
            ":trail": trail or None,
        }
        if item.get("tlpk"):
            sets.append("#tlpk = :gpk")
        if item.get("lot_seq") is not None:
            sets.append("#lot_seq = :lot")
            values[":lot"] = int(item["lot_seq"]) + shift
        if item.get("taken"):
            taken = json.loads(str(item["taken"]))
            sets.append("#taken = :taken")
            values[":taken"] = json.dumps({str(int(k) + shift): v for k, v in taken.items()})
        if (
            item.get("ledger_seq") is not None
            and str(item.get("type")) == "redemption"
            and item.get("kind") == "points"
        ):
            sets.append("#ledger_seq = :lseq")
            values[":lseq"] = int(item["ledger_seq"]) + shift
        return self._table.update_op(
            str(item["pk"]),
            str(item["sk"]),
            "SET " + ", ".join(sets),
            "#customer_id = :from",
            values=values,
            label="item",
        )

    # ---- timeline records without a move of their own (moved generically) -----------------
    def timeline_page(
        self, customer_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Item], str | None]:
        """What the customer's timeline index lists (keys only: it projects just the entry)."""
        return self._table.query(
            customer_owner(customer_id), index=TIMELINE_INDEX, limit=limit, cursor=cursor
        )

    def still_on_timeline(self, listed: Sequence[Item], customer_id: str) -> list[Item]:
        """The listed records, read strongly consistently, that are on the customer's timeline now:
        the index lags, and lists records a step already moved (or a move of their own did)."""
        if not listed:
            return []
        owner = customer_owner(customer_id)
        items = self._table.batch_get([(str(i["pk"]), str(i["sk"])) for i in listed])
        return sorted((i for i in items if i.get("tlpk") == owner), key=lambda i: str(i["tlsk"]))

    def move_timeline_op(self, item: Item, from_id: str, to_id: str) -> TxOp:
        """Put a record on another customer's timeline, and make it theirs where it names one."""
        sets = ["#tlpk = :to_pk"]
        values: dict[str, Any] = {":to_pk": customer_owner(to_id), ":from_pk": customer_owner(from_id)}
        if item.get("customer_id") == from_id:
            sets.append("#customer_id = :to")
            values[":to"] = to_id
        if item.get("gsi1pk") == customer_pk(from_id):
            sets.append("#gsi1pk = :to_pk")
        return self._table.update_op(
            str(item["pk"]),
            str(item["sk"]),
            "SET " + ", ".join(sets),
            "#tlpk = :from_pk",
            values=values,
            label="item",
        )

    def moved_keys_op(self, merge_id: str, step: int, items: Sequence[Item]) -> TxOp:
        """The journal of one step's generic timeline moves (written in the same transaction)."""
        return self._table.put_op(
            {
                "pk": merge_key(merge_id)[0],
                "sk": f"MOVED#{step:08d}",
                "type": "merge_moved",
                "keys": [{"pk": str(i["pk"]), "sk": str(i["sk"])} for i in items],
            },
            label="item",
        )

    def moved_chunk(self, merge_id: str, cursor: str | None) -> tuple[list[tuple[str, str]], str | None]:
        """One step's worth of journalled generic moves, in the order they were made."""
        items, next_cursor = self._table.query(
            merge_key(merge_id)[0], sk_prefix="MOVED#", limit=1, cursor=cursor, consistent=True
        )
        keys = [(str(k["pk"]), str(k["sk"])) for i in items for k in i.get("keys") or ()]
        return keys, next_cursor if items else None

    def records(self, keys: Sequence[tuple[str, str]]) -> list[Item]:
        return self._table.batch_get(keys) if keys else []

    def timeline_entry_op(
        self,
        merge_id: str,
        what: str,
        customer_id: str,
        at: datetime,
        summary: str,
        data: dict[str, Any],
        ref: dict[str, Any],
    ) -> TxOp:
        """The merge, or its undo, as an entry on one customer's timeline (an item of its own: the
        journal is rewritten at every step, this is written once)."""
        item = {
            "pk": merge_key(merge_id)[0],
            "sk": f"TL#{what}",
            "type": "merge_timeline",
            "merge_id": merge_id,
            **timeline_fields(
                customer_owner(customer_id),
                at,
                MERGE,
                what,
                summary,
                ref,
                data,
                record_id=f"{merge_id}#{what}",
            ),
        }
        return self._table.put_op(item, label="item")

    # ---- per-customer offer uses ----------------------------------------------------------
    def offer_uses(self, customer_id: str) -> dict[str, int]:
        items, _ = self._table.query(
            customer_pk(customer_id), sk_prefix="OFFERUSE#", limit=200, consistent=True
        )
        return {str(i["sk"]).removeprefix("OFFERUSE#"): int(i.get("uses", 0)) for i in items}

    def move_offer_use_ops(self, offer_id: str, uses: int, from_id: str, to_id: str) -> list[TxOp]:
        return [
            self._table.update_op(
                customer_pk(to_id),
                f"OFFERUSE#{offer_id}",
                "SET #uses = if_not_exists(#uses, :zero) + :n",
                values={":zero": 0, ":n": uses},
                label="item",
            ),
            self._table.update_op(
                customer_pk(from_id),
                f"OFFERUSE#{offer_id}",
                "SET #uses = #uses - :n",
                "#uses >= :n",
                values={":n": uses},
                label="item",
            ),
        ]

    # ---- holds on points ------------------------------------------------------------------
    def hold_owners(self, refs: Sequence[str]) -> dict[str, str]:
        """Who owns each points hold, by its ref (the key a profile's live holds use)."""
        return {str(i["pk"]).removeprefix("HOLD#"): str(i.get("customer_id")) for i in self.hold_items(refs)}

    def move_hold_op(self, ref: str, from_id: str, to_id: str) -> TxOp:
        return self._table.update_op(
            f"HOLD#{ref}",
            "HOLD",
            "SET #customer_id = :to",
            "#customer_id = :from",
            values={":to": to_id, ":from": from_id},
            label="item",
        )

    def ledger_put_op(self, entry: LedgerEntry) -> TxOp:
        return self._table.put_op(ledger_to_item(entry), "attribute_not_exists(pk)", label="item")

    def hold_items(self, refs: Sequence[str]) -> list[Item]:
        return self._table.batch_get([(f"HOLD#{h}", "HOLD") for h in refs]) if refs else []

    # ---- erasure --------------------------------------------------------------------------
    def erased_ids(self, customer_id: str) -> tuple[str, ...]:
        item = self._table.get(customer_pk(customer_id), "PROFILE") or {}
        return tuple(item.get("erased_merged_ids") or ())

    def erase_profile(
        self,
        customer_id: str,
        now: datetime,
        outbox: Sequence[dict[str, Any]],
        merged_ids: Sequence[str] = (),
    ) -> None:
        """Drop the links and every personal field; keep a bare profile that says it was erased."""
        item = self._table.get(customer_pk(customer_id), "PROFILE")
        if item is None:
            return
        for entry in (item.get("links") or {}).values():
            link = Link(str(entry["type"]), str(entry["value"]))
            with contextlib.suppress(TransactionCancelled):  # the link belongs to someone else now
                self._table.transact(
                    [
                        self._table.delete_op(
                            link_pk(link), "LINK", "#customer_id = :me", values={":me": customer_id}
                        )
                    ]
                )
        erased: Item = {
            "pk": item["pk"],
            "sk": "PROFILE",
            "type": "customer",
            "customer_id": customer_id,
            "status": CustomerStatus.ERASED.value,
            "member": bool(item.get("member")),
            "created_at": item.get("created_at"),
            "erased_at": to_iso(now),
            "merged_into": item.get("merged_into"),
            "version": int(item.get("version", 1)) + 1,
            "outbox": list(outbox) or None,
            "erased_merged_ids": list(merged_ids) or None,
        }
        self._table.transact(
            [self._table.put_op(erased, "attribute_not_exists(#merge_lock)", label="customer")]
        )

    def scrub_records(self, customer_id: str) -> int:
        """Delete the profile's ledger and offer uses; strip the owner from its records."""
        count = 0
        while True:
            items, _ = self._table.query(customer_pk(customer_id), limit=100, consistent=True)
            # The memberships stay for the segments worker: on CustomerErased it empties them
            # together with the member rows and size counters they stand for (deleting the item
            # alone would leave those behind).
            doomed = [i for i in items if i["sk"] not in ("PROFILE", "SEGMENTS")]
            if not doomed:
                break
            self._table.transact([self._table.delete_op(str(i["pk"]), str(i["sk"])) for i in doomed])
        cursor = None
        while True:
            listed, cursor = self._table.query(
                customer_pk(customer_id), index="gsi1", limit=100, cursor=cursor
            )
            owned = [i for i in listed if str(i.get("gsi1sk", "")).startswith(OWNED_PREFIXES)]
            if owned:
                self._table.transact(
                    [
                        self._table.update_op(
                            str(i["pk"]),
                            str(i["sk"]),
                            "REMOVE #customer_id, #gsi1pk, #gsi1sk SET #anonymised = :true",
                            values={":true": True},
                        )
                        for i in owned
                    ]
                )
                count += len(owned)
            if cursor is None:
                return count

    def scrub_journal(self, merge_id: str) -> None:
        self._table.transact(
            [
                self._table.update_op(
                    *merge_key(merge_id),
                    "REMOVE #survivor_before, #links_moved SET #erased = :true",
                    values={":true": True},
                )
            ]
        )

    # ---- reads for export -----------------------------------------------------------------
    def everything_of(self, customer_id: str) -> list[Item]:
        """Every item in the profile's partition and every record indexed under it."""
        out: list[Item] = []
        for index in (None, "gsi1"):
            cursor = None
            while True:
                page, cursor = self._table.query(
                    customer_pk(customer_id), index=index, limit=200, cursor=cursor, consistent=index is None
                )
                out.extend(page)
                if cursor is None:
                    break
        unique = {(str(i["pk"]), str(i["sk"])): i for i in out}  # open lots are in both
        return [plain(i) for i in unique.values()]


# ---- item mapping --------------------------------------------------------------------------------


def merge_to_item(r: MergeRecord) -> Item:
    item: Item = {
        "pk": merge_key(r.merge_id)[0],
        "sk": "MERGE",
        "type": "merge",
        "merge_id": r.merge_id,
        "requested_survivor_id": r.requested_survivor_id,
        "merged_id": r.merged_id,
        "survivor_id": r.survivor_id,
        "reason": r.reason,
        "status": r.status.value,
        "requested_at": to_iso(r.requested_at),
        "actor": r.actor,
        "started_at": to_iso(r.started_at),
        "finished_at": to_iso(r.finished_at),
        "step": r.step,
        "phase": r.phase,
        "cursor": r.cursor,
        "offset": r.offset,
        "counts": dict(r.counts or {}) or None,
        "links_moved": list(r.links_moved) or None,
        "holds_moved": list(r.holds_moved) or None,
        "offer_uses_moved": dict(r.offer_uses_moved or {}) or None,
        "survivor_before": json.dumps(r.survivor_before, default=str) if r.survivor_before else None,
        "error": r.error,
        "undo": json.dumps(r.undo, default=str) if r.undo else None,
        "gsi1pk": customer_pk(r.requested_survivor_id),
        "gsi1sk": f"MERGE#{to_iso(r.requested_at)}#{r.merge_id}",
    }
    if r.status in OPEN_STATUSES:
        # Sparse: only unfinished merges, oldest first, for the janitor that re-sends lost messages.
        item["gsi2pk"], item["gsi2sk"] = OPEN_MERGES, f"{to_iso(r.requested_at)}#{r.merge_id}"
    return item


def merge_from_item(item: Item) -> MergeRecord:
    return MergeRecord(
        merge_id=str(item["merge_id"]),
        requested_survivor_id=str(item["requested_survivor_id"]),
        merged_id=str(item["merged_id"]),
        survivor_id=item.get("survivor_id"),
        reason=item.get("reason"),
        status=MergeStatus(item["status"]),
        requested_at=from_iso(item["requested_at"]) or datetime.min,
        actor=str(item.get("actor", "")),
        started_at=from_iso(item.get("started_at")),
        finished_at=from_iso(item.get("finished_at")),
        step=int(item.get("step", 0)),
        phase=str(item.get("phase") or ""),
        cursor=item.get("cursor"),
        offset=int(item.get("offset", 0)),
        counts={k: int(v) for k, v in (item.get("counts") or {}).items()},
        links_moved=tuple(item.get("links_moved") or ()),
        holds_moved=tuple(item.get("holds_moved") or ()),
        offer_uses_moved={k: int(v) for k, v in (item.get("offer_uses_moved") or {}).items()},
        survivor_before=json.loads(item["survivor_before"]) if item.get("survivor_before") else None,
        error=item.get("error"),
        undo=json.loads(item["undo"]) if item.get("undo") else None,
    )


def snapshot(customer: Customer) -> dict[str, Any]:
    """A profile as a plain JSON-able dict (the journal keeps the survivor's pre-merge state)."""
    data = {k: v for k, v in customer_to_item(customer).items() if k not in ("pk", "sk")}
    data["price_groups"] = sorted(customer.price_groups) or None
    return data


def from_snapshot(data: dict[str, Any]) -> Customer:
    return customer_from_item({"pk": "", "sk": "", **data})


__all__ = ["MergeRepository", "StepConflict", "asdict", "from_snapshot", "snapshot"]
