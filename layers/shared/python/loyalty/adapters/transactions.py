"""Transactions, ledger entries (lots) and the profile counters they move.

TXN#<store_id>#<transaction_id>   TXN              a sale or return; its key is the dedupe key
                                                  (gsi1: CUST#<id> / TXN#<occurred_at>#... history)
CUST#<customer_id>                LEDGER#<seq>     a points movement; an earn is also a lot
                                                  (gsi2: DUE#<day>#<shard> while something falls due)
CUST#<customer_id>                TIER#<at>#<version>  a tier change, for the timeline (gsi3), written
                                                  with the profile version that made it
SWEEP                             STATE            how far the due-lot sweep has got
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from loyalty.adapters.codec import (
    customer_from_item,
    customer_pk,
    from_iso,
    link_from_item,
    points_holds_map,
    to_iso,
)
from loyalty.adapters.customers import UNLOCKED, LinksTaken, StaleCustomer
from loyalty.adapters.dynamo import DynamoTable, Item, TransactionCancelled, TxOp
from loyalty.adapters.lots import summary_to_attr
from loyalty.adapters.timeline import POINTS, TIER, TRANSACTION, customer_owner, timeline_fields
from loyalty.domain.customers import Customer, CustomerStatus
from loyalty.domain.errors import ConcurrentUpdate, MergeInProgress
from loyalty.domain.ledger import AppliedOffer, LedgerEntry, LedgerReason, RecordedLine, TransactionRecord
from loyalty.domain.lots import SpendableLot
from loyalty.domain.sales import Line, OrderStatus, SaleType

# Due lots spread over this many index partitions (by customer), each sorted by due time: the
# sweep reads everything due with one Query per shard, and no partition takes every earn.
DUE_SHARDS = 16


def txn_pk(store_id: str, transaction_id: str) -> str:
    return f"TXN#{store_id}#{transaction_id}"


def ledger_sk(seq: int) -> str:
    return f"LEDGER#{seq:012d}"


def due_key(customer_id: str, seq: int, due_at: datetime) -> tuple[str, str]:
    shard = int(hashlib.sha256(customer_id.encode()).hexdigest(), 16) % DUE_SHARDS
    return f"DUE#{shard}", f"{to_iso(due_at)}#{customer_id}#{seq:012d}"


@dataclass(frozen=True)
class TierChange:
    """A tier change as the timeline keeps it (the profile holds only the tier now)."""

    customer_id: str
    version: int  # the profile version written with it: one change per profile write at most
    at: datetime
    before: str | None
    after: str | None
    reason: str  # sale, return, cancel, window, merge, merge_undone
    direction: str  # up | down | changed


def tier_change_item(c: TierChange) -> Item:
    summary = f"Tier {c.before or 'none'} → {c.after or 'none'}"
    return {
        "pk": customer_pk(c.customer_id),
        "sk": f"TIER#{to_iso(c.at)}#{c.version:012d}",
        "type": "tier_change",
        "customer_id": c.customer_id,
        "at": to_iso(c.at),
        "from": c.before,
        "to": c.after,
        "reason": c.reason,
        **timeline_fields(
            customer_owner(c.customer_id),
            c.at,
            TIER,
            c.direction,
            summary,
            {},
            {"from": c.before, "to": c.after, "reason": c.reason},
            record_id=f"{c.customer_id}-{c.version:012d}",
        ),
    }


@dataclass(frozen=True)
class ReceiptState:
    """What a sale's answer says beyond its record: the balance and tier right after it."""

    balance: int | None
    tier: str | None
    tier_changed: bool


def receipt_state_to_map(state: ReceiptState) -> dict[str, Any]:
    raw = {"balance": state.balance, "tier": state.tier, "tier_changed": state.tier_changed or None}
    return {k: v for k, v in raw.items() if v is not None}


def receipt_state_of(item: Item) -> ReceiptState | None:
    """The stored receipt state of a record whose answer is rendered on replay (None: stored whole)."""
    raw = item.get("receipt")
    if not isinstance(raw, dict):
        return None
    balance = raw.get("balance")
    return ReceiptState(
        int(balance) if balance is not None else None, raw.get("tier"), bool(raw.get("tier_changed"))
    )


@dataclass
class StaleTransaction(Exception):
    """The original transaction changed since it was read (a concurrent return)."""


@dataclass(frozen=True)
class Loaded:
    existing: Item | None  # the transaction being recorded, if it already exists (a replay)
    customer: Customer | None
    original: TransactionRecord | None
    extras: list[Item]  # whatever else the caller asked for in the same round trip


class TransactionRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    # ---- reads ----------------------------------------------------------------------------
    def load(
        self,
        store_id: str,
        transaction_id: str,
        customer_id: str | None,
        original: tuple[str, str] | None = None,
        extra: Sequence[tuple[str, str]] = (),
    ) -> Loaded:
        """Everything a sale needs, in one BatchGetItem round trip."""
        keys = [(txn_pk(store_id, transaction_id), "TXN"), *extra]
        if customer_id:
            keys.append((customer_pk(customer_id), "PROFILE"))
        if original:
            keys.append((txn_pk(*original), "TXN"))
        items = {(i["pk"], i["sk"]): i for i in self._table.batch_get(keys)}
        profile = items.get((customer_pk(customer_id), "PROFILE")) if customer_id else None
        original_item = items.get((txn_pk(*original), "TXN")) if original else None
        wanted = set(extra)
        return Loaded(
            existing=items.get((txn_pk(store_id, transaction_id), "TXN")),
            customer=customer_from_item(profile) if profile else None,
            original=transaction_from_item(original_item) if original_item else None,
            extras=[item for key, item in items.items() if key in wanted],
        )

    def get(self, store_id: str, transaction_id: str) -> TransactionRecord | None:
        item = self._table.get(txn_pk(store_id, transaction_id), "TXN")
        return transaction_from_item(item) if item else None

    def lot(self, customer_id: str, seq: int) -> LedgerEntry | None:
        item = self._table.get(customer_pk(customer_id), ledger_sk(seq))
        return ledger_from_item(item) if item else None

    def history(
        self, customer_id: str, limit: int, cursor: str | None
    ) -> tuple[list[TransactionRecord], str | None]:
        items, next_cursor = self._table.query(
            customer_pk(customer_id),
            index="gsi1",
            sk_prefix="TXN#",
            limit=limit,
            cursor=cursor,
            newest_first=True,
        )
        return [transaction_from_item(i) for i in items], next_cursor

    def ledger(
        self, customer_id: str, limit: int, cursor: str | None
    ) -> tuple[list[LedgerEntry], str | None]:
        items, next_cursor = self._table.query(
            customer_pk(customer_id),
            sk_prefix="LEDGER#",
            limit=limit,
            cursor=cursor,
            newest_first=True,
            consistent=True,
        )
        return [ledger_from_item(i) for i in items], next_cursor

    def all_ledger(self, customer_id: str) -> list[LedgerEntry]:
        entries: list[LedgerEntry] = []
        cursor = None
        while True:
            page, cursor = self.ledger(customer_id, 200, cursor)
            entries.extend(page)
            if cursor is None:
                return entries

    def recent_sales(self, customer_id: str, since: datetime) -> list[TransactionRecord]:
        items, _ = self._table.query(
            customer_pk(customer_id), index="gsi1", sk_prefix="TXN#", limit=200, newest_first=True
        )
        records = [transaction_from_item(i) for i in items]
        return [r for r in records if r.occurred_at >= since]

    # ---- writes ---------------------------------------------------------------------------
    def put_transaction_op(
        self,
        record: TransactionRecord,
        response: str | None,
        fingerprint: str,
        outbox: Sequence[dict[str, Any]],
        receipt: ReceiptState | None = None,
    ) -> TxOp:
        """`response`: the answer to replay, stored as sent; or None with `receipt`, what the answer
        adds to the record (the replay renders it again from both, byte for byte)."""
        item = transaction_to_item(record) | {
            "fingerprint": fingerprint,
            "status_code": 201 if response is not None else None,
            "body": response,
            "receipt": receipt_state_to_map(receipt) if response is None and receipt else None,
            "outbox": list(outbox) or None,
        }
        # Labelled like an idempotency record: an existing item is replayed or refused as a mismatch.
        return self._table.put_op(item, "attribute_not_exists(pk)", label="idempotency")

    def update_transaction_op(
        self, record: TransactionRecord, expected_version: int, outbox: Sequence[dict[str, Any]] = ()
    ) -> TxOp:
        return self._table.update_op(
            txn_pk(record.store_id, record.transaction_id),
            "TXN",
            "SET #lines = :lines, #points_reversed = :reversed, #order_status = :status, #version = :next, "
            "#outbox = :outbox, #cashback_reversed = :cb_reversed, #cashback_shortfall = :cb_shortfall",
            condition="#version = :expected",
            values={
                ":lines": [_line_to_map(rl) for rl in record.lines],
                ":reversed": record.points_reversed,
                ":cb_reversed": record.cashback_reversed,
                ":cb_shortfall": record.cashback_shortfall,
                ":status": record.order_status.value if record.order_status else None,
                ":next": record.version,
                ":expected": expected_version,
                ":outbox": list(outbox) or None,
            },
            label="original",
        )

    def mark_retro_credited_op(
        self, record: TransactionRecord, points: dict[str, int], lot_seq: int, total: int
    ) -> TxOp:
        lines = [
            _line_to_map(
                RecordedLine(rl.line, points.get(rl.line.line_id, 0), rl.returned_quantity, rl.cashback)
            )
            for rl in record.lines
        ]
        return self._table.update_op(
            txn_pk(record.store_id, record.transaction_id),
            "TXN",
            "SET #retro_credited = :true, #lines = :lines, #lot_seq = :seq, #points_earned = :points, "
            "#version = #version + :one",
            condition="attribute_not_exists(#retro_credited) AND #version = :expected",
            values={
                ":true": True,
                ":lines": lines,
                ":seq": lot_seq,
                ":points": total,
                ":one": 1,
                ":expected": record.version,
            },
            label="original",
        )

    def put_ledger_op(
        self, entry: LedgerEntry, due_at: datetime | None = None, due_kind: str | None = None
    ) -> TxOp:
        return self._table.put_op(
            ledger_to_item(entry, due_at, due_kind), "attribute_not_exists(pk)", label="ledger"
        )

    def update_lot_op(self, lot: SpendableLot, remaining: int, clear_due: bool = False) -> TxOp:
        """Change what is left of a lot, guarded by what it held when read; a lot with nothing left
        leaves the customer's open-lot index, one that holds points again (a reversal) rejoins it."""
        values: dict[str, Any] = {":remaining": remaining, ":was": lot.remaining}
        if remaining > 0:
            update = "SET #remaining = :remaining, #gsi1pk = :lpk, #gsi1sk = :lsk"
            values |= {":lpk": customer_pk(lot.customer_id), ":lsk": lot_sk(lot)}
            update += " REMOVE #gsi2pk, #gsi2sk, #due_kind" if clear_due else ""
        else:
            update = "SET #remaining = :remaining REMOVE #gsi1pk, #gsi1sk" + (
                ", #gsi2pk, #gsi2sk, #due_kind" if clear_due else ""
            )
        return self._table.update_op(
            customer_pk(lot.customer_id),
            ledger_sk(lot.seq),
            update,
            "#remaining = :was",
            values=values,
            label="lot",
        )

    def open_lots(self, customer_id: str, consistent: bool = False) -> list[LedgerEntry]:
        """Lots that still hold points, earliest expiry first.

        From the sparse open-lot index (one Query; eventually consistent) or, when that is behind,
        from the ledger itself (strongly consistent, reads every entry).
        """
        lots: list[LedgerEntry] = []
        cursor = None
        while True:
            if consistent:
                items, cursor = self._table.query(
                    customer_pk(customer_id), sk_prefix="LEDGER#", limit=200, cursor=cursor, consistent=True
                )
                items = [i for i in items if int(i.get("remaining") or 0) > 0]
            else:
                items, cursor = self._table.query(
                    customer_pk(customer_id), index="gsi1", sk_prefix="LOT#", limit=200, cursor=cursor
                )
            lots.extend(ledger_from_item(i) for i in items)
            if cursor is None:
                return sorted(lots, key=lot_sk)

    def reschedule_lot_op(
        self, lot: LedgerEntry, remaining: int, due_at: datetime | None, due_kind: str | None
    ) -> TxOp:
        """Set what is left of a lot and when it is next due (None: never again)."""
        values: dict[str, Any] = {":remaining": remaining, ":was": lot.remaining}
        if due_at is None:
            update = "SET #remaining = :remaining REMOVE #gsi2pk, #gsi2sk, #due_kind"
        else:
            gsi2pk, gsi2sk = due_key(lot.customer_id, lot.seq, due_at)
            update = "SET #remaining = :remaining, #gsi2pk = :dpk, #gsi2sk = :dsk, #due_kind = :kind"
            values |= {":dpk": gsi2pk, ":dsk": gsi2sk, ":kind": due_kind}
        if remaining <= 0:
            update += ", #gsi1pk, #gsi1sk" if "REMOVE" in update else " REMOVE #gsi1pk, #gsi1sk"
        return self._table.update_op(
            customer_pk(lot.customer_id),
            ledger_sk(lot.seq),
            update,
            "#remaining = :was",
            values=values,
            label="lot",
        )

    def profile_op(
        self, customer: Customer, expected_version: int, outbox: Sequence[dict[str, Any]] = ()
    ) -> TxOp:
        """Write the profile's points counters, tier and stats, if nothing changed since it was read."""
        return self._table.update_op(
            customer_pk(customer.customer_id),
            "PROFILE",
            "SET #points_available = :available, #points_pending = :pending, #points_lifetime = :lifetime, "
            "#earned_by_month = :months, #ledger_seq = :seq, #txn_count = :count, #spend = :spend, "
            "#first_purchase_at = :first, #last_purchase_at = :last, #tier = :tier, #version = :next, "
            "#updated_at = :now, #outbox = :outbox, #points_holds = :holds, #lots = :lots",
            condition="#version = :expected AND #status = :active" + UNLOCKED,
            values={
                ":available": customer.points.available,
                ":pending": customer.points.pending,
                ":lifetime": customer.points.lifetime,
                ":months": dict(customer.earned_by_month),
                ":seq": customer.ledger_seq,
                ":count": customer.stats.transactions,
                ":spend": str(customer.stats.spend),
                ":first": to_iso(customer.stats.first_purchase_at),
                ":last": to_iso(customer.stats.last_purchase_at),
                ":tier": customer.tier,
                ":next": customer.version,
                ":now": to_iso(customer.updated_at),
                ":expected": expected_version,
                ":active": CustomerStatus.ACTIVE.value,
                ":outbox": list(outbox) or None,
                ":holds": points_holds_map(customer.points_holds),
                # Stale or unknown (None) is written as such: the next redemption queries the lots.
                ":lots": summary_to_attr(customer.lots, customer.updated_at),
            },
            label="customer",
        )

    def tier_change_op(self, change: TierChange) -> TxOp:
        # No condition: the key is new by construction (an undo may give a profile an earlier
        # version again, so the time is part of it), and a retried write is the same record.
        return self._table.put_op(tier_change_item(change), label="tier")

    def commit(self, ops: Sequence[TxOp]) -> None:
        try:
            self._table.transact(ops)
        except TransactionCancelled as cancelled:
            failed = cancelled.failed_labels()
            if "customer" in failed:
                if any(r.old_item and r.old_item.get("merge_lock") for r in cancelled.failed("customer")):
                    raise MergeInProgress("the customer is being merged; retry") from None
                raise StaleCustomer("") from None
            if "original" in failed or "redemption" in failed:
                raise StaleTransaction() from None
            if "idempotency" in failed:
                # The same transaction_id committed meanwhile, its answer kept as figures rather
                # than a body: the caller loads it again and replays it from the record.
                raise StaleTransaction() from None
            if any(label.startswith(("budget:", "limit:", "coupon:", "stock:")) for label in failed):
                raise StaleCustomer("") from None  # a budget, limit or coupon ran out: evaluate again
            if "lot" in failed or "ledger" in failed or "account" in failed:
                raise StaleCustomer("") from None
            taken = {
                link_from_item(r.old_item): str(r.old_item["customer_id"])
                for label in failed
                if label.startswith("link:")
                for r in cancelled.failed(label)
                if r.old_item
            }
            if taken:
                raise LinksTaken(taken) from None
            raise ConcurrentUpdate("the records changed meanwhile; retry") from None


# ---- item mapping ------------------------------------------------------------------------------


# A line as stored: short attribute names and no zero values, since a sale writes its lines to the
# table and its history index on every sale (names count towards the item's billed size). Records
# written before keep the long names; both are read.
_SHORT = {
    "line_id": "i",
    "sku": "s",
    "category": "c",
    "quantity": "q",
    "unit_price": "u",
    "discount": "d",
    "points": "p",
    "returned_quantity": "r",
    "cashback": "cb",
}
_LONG = {short: name for name, short in _SHORT.items()}
_ZERO = frozenset({"0", "0.00", "0.0", 0})


def _line_to_map(rl: RecordedLine) -> dict[str, Any]:
    line = rl.line
    full = {
        "line_id": line.line_id,
        "sku": line.sku,
        "category": line.category,
        "quantity": str(line.quantity),
        "unit_price": str(line.unit_price),
        "discount": str(line.discount),
        "points": rl.points,
        "returned_quantity": str(rl.returned_quantity),
        "cashback": rl.cashback,
    }
    keep = ("line_id", "sku", "quantity", "unit_price")  # a zero price or quantity is still said
    return {
        _SHORT[name]: value
        for name, value in full.items()
        if value is not None and (name in keep or value not in _ZERO)
    }


def expand_line(raw: dict[str, Any]) -> dict[str, Any]:
    """A stored line under its full attribute names (as exports show it), whichever way it was stored."""
    if "i" not in raw:
        return dict(raw)
    full = {_LONG.get(name, name): value for name, value in raw.items()}
    full.setdefault("category", None)
    full.setdefault("discount", "0")
    full.setdefault("points", 0)
    full.setdefault("returned_quantity", "0")
    return full


def _line_from_map(stored: dict[str, Any]) -> RecordedLine:
    raw = expand_line(stored)
    return RecordedLine(
        Line(
            line_id=str(raw["line_id"]),
            sku=str(raw["sku"]),
            category=raw.get("category"),
            quantity=Decimal(str(raw["quantity"])),
            unit_price=Decimal(str(raw["unit_price"])),
            discount=Decimal(str(raw.get("discount", "0"))),
        ),
        points=int(raw.get("points", 0)),
        returned_quantity=Decimal(str(raw.get("returned_quantity", "0"))),
        cashback=int(raw.get("cashback") or 0),
    )


def transaction_to_item(r: TransactionRecord) -> Item:
    item: Item = {
        "pk": txn_pk(r.store_id, r.transaction_id),
        "sk": "TXN",
        "type": "transaction",
        "store_id": r.store_id,
        "transaction_id": r.transaction_id,
        "txn_type": r.type.value,
        "channel": r.channel,
        "occurred_at": to_iso(r.occurred_at),
        "recorded_at": to_iso(r.recorded_at),
        "customer_id": r.customer_id,
        "member": r.member,
        "currency": r.currency,
        "total": str(r.total),
        "lines": [_line_to_map(rl) for rl in r.lines],
        "bonus_points": r.bonus_points,
        "points_earned": r.points_earned,
        "points_if_member": r.points_if_member,
        "points_reversed": r.points_reversed,
        "lot_seq": r.lot_seq,
        "original_store_id": r.original_store_id,
        "original_transaction_id": r.original_transaction_id,
        "order_status": r.order_status.value if r.order_status else None,
        "coupons": list(r.coupons) or None,
        "offers_applied": [{"offer_id": o.offer_id, "amount": str(o.amount)} for o in r.offers_applied]
        or None,
        "coupons_redeemed": list(r.coupons_redeemed) or None,
        "cashback": r.cashback or None,
        "cashback_if_member": r.cashback_if_member or None,
        "cashback_account_id": r.cashback_account_id,
        "cashback_expires_at": to_iso(r.cashback_expires_at),
        "cashback_reversed": r.cashback_reversed or None,
        "cashback_shortfall": r.cashback_shortfall or None,
        "version": r.version,
    }
    if r.customer_id:
        item["gsi1pk"] = customer_pk(r.customer_id)
        item["gsi1sk"] = f"TXN#{to_iso(r.occurred_at)}#{r.store_id}#{r.transaction_id}"
        item |= transaction_timeline(r)
    return item


def transaction_timeline(r: TransactionRecord) -> dict[str, Any]:
    """A sale's or return's timeline entry. Kept to a few figures: every sale writes it to gsi3 as
    well, and the index write is paid by its size (the lines stay on the transaction)."""
    points = r.points_earned
    summary = f"{'Sale' if r.type is SaleType.SALE else 'Return'} {r.total} {r.currency}"
    if points:
        summary += f", {points:+d} points"
    return timeline_fields(
        customer_owner(str(r.customer_id)),
        r.occurred_at,
        TRANSACTION,
        r.type.value,
        summary,
        {"store_id": r.store_id, "transaction_id": r.transaction_id},
        {"total": str(r.total), "currency": r.currency, "points": points, "channel": r.channel},
        record_id=f"{r.store_id}#{r.transaction_id}",
    )


_POINTS_SUMMARY = {
    "earn": "Earned",
    "retro_credit": "Credited for an earlier purchase",
    "return": "Taken back (return)",
    "cancel": "Taken back (cancelled order)",
    "expire": "Expired",
    "redeem": "Redeemed",
    "reverse": "Given back (redemption reversed)",
    "adjust": "Adjusted",
    "campaign": "Given by a campaign",
}


def ledger_timeline(e: LedgerEntry) -> dict[str, Any]:
    """A points movement's timeline entry; its id is the entry as first written (customer and
    seq), which stays unique when a merge re-keys the entry into another profile."""
    ref = {
        k: v
        for k, v in (
            ("store_id", e.store_id),
            ("transaction_id", e.transaction_id),
            ("redemption_id", e.redemption_id),
        )
        if v
    }
    return timeline_fields(
        customer_owner(e.customer_id),
        e.at,
        POINTS,
        e.reason.value,
        f"{_POINTS_SUMMARY.get(e.reason.value, e.reason.value)}: {e.points:+d} points",
        ref,
        {"points": e.points, "balance_after": e.balance_after},
        record_id=f"{e.customer_id}-{e.seq:012d}",
    )


def transaction_from_item(item: Item) -> TransactionRecord:
    status = item.get("order_status")
    return TransactionRecord(
        store_id=str(item["store_id"]),
        transaction_id=str(item["transaction_id"]),
        type=SaleType(item["txn_type"]),
        channel=str(item.get("channel", "pos")),
        occurred_at=from_iso(item["occurred_at"]) or datetime.min,
        recorded_at=from_iso(item["recorded_at"]) or datetime.min,
        customer_id=item.get("customer_id"),
        member=bool(item.get("member")),
        currency=str(item.get("currency", "EUR")),
        total=Decimal(str(item.get("total", "0"))),
        lines=tuple(_line_from_map(raw) for raw in item.get("lines", [])),
        bonus_points=int(item.get("bonus_points", 0)),
        points_earned=int(item.get("points_earned", 0)),
        points_if_member=int(item.get("points_if_member", 0)),
        points_reversed=int(item.get("points_reversed", 0)),
        lot_seq=int(item["lot_seq"]) if item.get("lot_seq") is not None else None,
        original_store_id=item.get("original_store_id"),
        original_transaction_id=item.get("original_transaction_id"),
        order_status=OrderStatus(status) if status else None,
        coupons=tuple(item.get("coupons") or ()),
        offers_applied=tuple(
            AppliedOffer(str(o["offer_id"]), Decimal(str(o["amount"])))
            for o in item.get("offers_applied") or ()
        ),
        coupons_redeemed=tuple(item.get("coupons_redeemed") or ()),
        retro_credited=bool(item.get("retro_credited")),
        cashback=int(item.get("cashback") or 0),
        cashback_if_member=int(item.get("cashback_if_member") or 0),
        cashback_account_id=item.get("cashback_account_id"),
        cashback_expires_at=from_iso(item.get("cashback_expires_at")),
        cashback_reversed=int(item.get("cashback_reversed") or 0),
        cashback_shortfall=int(item.get("cashback_shortfall") or 0),
        version=int(item.get("version", 1)),
    )


def ledger_to_item(e: LedgerEntry, due_at: datetime | None = None, due_kind: str | None = None) -> Item:
    item: Item = {
        "pk": customer_pk(e.customer_id),
        "sk": ledger_sk(e.seq),
        "type": "ledger",
        "customer_id": e.customer_id,
        "seq": e.seq,
        "at": to_iso(e.at),
        "points": e.points,
        "reason": e.reason.value,
        "balance_after": e.balance_after,
        "transaction_id": e.transaction_id,
        "store_id": e.store_id,
        "redemption_id": e.redemption_id,
        "original_transaction_id": e.original_transaction_id,
        "original_store_id": e.original_store_id,
        "remaining": e.remaining,
        "pending_until": to_iso(e.pending_until),
        "expires_at": to_iso(e.expires_at),
        "line_points": dict(e.line_points) or None,
        "earn_month": e.earn_month,
        "actor": e.actor,
        "rule_id": e.rule_id,
        "event_id": e.event_id,
        **ledger_timeline(e),
    }
    if due_at is not None:
        item["gsi2pk"], item["gsi2sk"] = due_key(e.customer_id, e.seq, due_at)
        item["due_kind"] = due_kind
    if e.remaining is not None and e.remaining > 0:
        item["gsi1pk"], item["gsi1sk"] = customer_pk(e.customer_id), lot_sk(e)
    return item


def lot_sk(lot: SpendableLot) -> str:
    """A lot's place in its customer's open-lot index: by expiry, then by age."""
    return f"LOT#{to_iso(lot.expires_at) or '9999'}#{lot.seq:012d}"


def ledger_from_item(item: Item) -> LedgerEntry:
    return LedgerEntry(
        customer_id=str(item["customer_id"]),
        seq=int(item["seq"]),
        at=from_iso(item["at"]) or datetime.min,
        points=int(item["points"]),
        reason=LedgerReason(item["reason"]),
        balance_after=int(item["balance_after"]),
        transaction_id=item.get("transaction_id"),
        store_id=item.get("store_id"),
        redemption_id=item.get("redemption_id"),
        original_transaction_id=item.get("original_transaction_id"),
        original_store_id=item.get("original_store_id"),
        remaining=int(item["remaining"]) if item.get("remaining") is not None else None,
        pending_until=from_iso(item.get("pending_until")),
        expires_at=from_iso(item.get("expires_at")),
        line_points={k: int(v) for k, v in (item.get("line_points") or {}).items()},
        earn_month=item.get("earn_month"),
        due_kind=item.get("due_kind"),
        actor=str(item.get("actor", "system")),
        rule_id=item.get("rule_id"),
        event_id=item.get("event_id"),
    )
