"""What recording a sale or a return is asked, and what it answers: the command, the receipt, and
the transaction record and event built from them. Shared by sales, returns and order status."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.transactions import (
    ReceiptState,
    TransactionRepository,
    transaction_from_item,
    transaction_to_item,
)
from loyalty.domain import events as ev
from loyalty.domain.customers import Customer, CustomerRef
from loyalty.domain.errors import CustomerNotFound, FieldError, ValidationFailed
from loyalty.domain.ledger import AppliedOffer, LedgerEntry, RecordedLine, TransactionRecord
from loyalty.domain.links import Identity
from loyalty.domain.money import cents
from loyalty.domain.sales import BONUS_LINE, Line, OrderStatus, SaleType
from loyalty.domain.stored_value import from_cents
from loyalty.domain.stores import Store


@dataclass(frozen=True)
class RecordCommand:
    transaction_id: str
    type: SaleType
    store_id: str | None
    occurred_at: datetime
    customer: CustomerRef | None
    lines: Sequence[Line]
    currency: str
    total: Decimal
    fingerprint: str
    coupons: Sequence[str] = ()
    original_transaction_id: str | None = None
    original_store_id: str | None = None
    order_status: OrderStatus | None = None


@dataclass(frozen=True)
class ReceiptNote:
    """Something a till should know about how the platform recorded its sale."""

    code: str  # backdated, offer_not_given
    detail: str


@dataclass(frozen=True)
class Receipt:
    """What POST /v1/transactions answers (and what a replay answers again)."""

    transaction_id: str
    store_id: str
    type: SaleType
    customer_id: str | None
    member: bool
    points_earned: int
    points_balance: int | None
    tier: str | None
    tier_changed: bool
    points_if_member: int
    total: Decimal
    currency: str
    order_status: OrderStatus | None
    offers_applied: tuple[AppliedOffer, ...] = ()
    coupons_redeemed: tuple[str, ...] = ()
    customer_ignored: Identity | None = None  # the sale named a placeholder link: kept anonymous
    notes: tuple[ReceiptNote, ...] = ()
    cashback: int = 0  # cents credited (negative: taken back by a return or cancellation)
    cashback_account_id: str | None = None
    cashback_expires_at: datetime | None = None
    cashback_shortfall: int = 0  # cents a return could not take back: the cash was spent already
    cashback_if_member: int = 0  # cents a member would have been credited


@dataclass
class Plan:
    """One decided write: the ops of its TransactWriteItems and what it answers."""

    ops: list[TxOp]
    receipt: Receipt


def detail(errors: Sequence[FieldError]) -> str:
    """One problem's detail names each failure, so a client reading only `detail` is not misled."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error.loc[1:] or error.loc)}: {error.msg}" for error in errors
    )


def new_record(
    command: RecordCommand,
    store: Store,
    now: datetime,
    *,
    customer_id: str | None,
    member: bool,
    line_points: dict[str, int],
    points: int,
    points_if_member: int,
    lot_seq: int | None,
    line_cashback: dict[str, int] | None = None,
    cashback_if_member: int = 0,
) -> TransactionRecord:
    """The record of a sale or a return as sent (an online sale is an order, placed)."""
    status = command.order_status
    if status is None and store.channel.value == "online" and command.type is SaleType.SALE:
        status = OrderStatus.PLACED
    return TransactionRecord(
        store_id=store.store_id,
        transaction_id=command.transaction_id,
        type=command.type,
        channel=store.channel.value,
        occurred_at=command.occurred_at,
        recorded_at=now,
        customer_id=customer_id,
        member=member,
        currency=command.currency,
        total=cents(command.total),
        lines=tuple(
            RecordedLine(
                line, line_points.get(line.line_id, 0), cashback=(line_cashback or {}).get(line.line_id, 0)
            )
            for line in command.lines
        ),
        bonus_points=line_points.get(BONUS_LINE, 0),
        points_earned=points,
        points_if_member=points_if_member,
        lot_seq=lot_seq,
        original_store_id=(command.original_store_id or store.store_id)
        if command.original_transaction_id
        else None,
        original_transaction_id=command.original_transaction_id,
        order_status=status,
        coupons=tuple(command.coupons),
        cashback=sum((line_cashback or {}).values()),
        cashback_if_member=cashback_if_member,
    )


def receipt_for(
    record: TransactionRecord,
    balance: int | None,
    tier: str | None,
    tier_changed: bool,
    notes: Sequence[ReceiptNote] = (),
) -> Receipt:
    return Receipt(
        transaction_id=record.transaction_id,
        store_id=record.store_id,
        type=record.type,
        customer_id=record.customer_id,
        member=record.member,
        points_earned=record.points_earned,
        points_balance=balance,
        tier=tier,
        tier_changed=tier_changed,
        points_if_member=record.points_if_member,
        total=record.total,
        currency=record.currency,
        order_status=record.order_status,
        offers_applied=record.offers_applied if record.type is SaleType.SALE else (),
        coupons_redeemed=record.coupons_redeemed if record.type is SaleType.SALE else (),
        notes=tuple(notes),
        cashback=record.cashback,
        cashback_account_id=record.cashback_account_id,
        cashback_expires_at=record.cashback_expires_at,
        cashback_shortfall=record.cashback_shortfall,
        cashback_if_member=record.cashback_if_member,
    )


def sale_earn(entry: LedgerEntry | None, rules: Sequence[str]) -> dict[str, object] | None:
    """What a member's sale earned, as its TransactionRecorded tells the bus (what PointsEarned
    told before): the points, the balance afterwards, the rules and the lot's dates."""
    if entry is None:
        return None
    return {
        "points": entry.points,
        "balance": entry.balance_after,
        "rules": list(rules),
        "pending_until": entry.pending_until,
        "expires_at": entry.expires_at,
        "ledger_seq": entry.seq,
    }


def put_record_op(
    txns: TransactionRepository,
    record: TransactionRecord,
    receipt: Receipt,
    render: Callable[[Receipt], str],
    fingerprint: str,
    events: Sequence[ev.DomainEvent],
    earn: dict[str, object] | None = None,
) -> TxOp:
    """A new sale's or return's record with its events (TransactionRecorded first) and what a
    replay answers: the answer itself only when the record and three figures do not render it
    again byte for byte (notes, an ignored link); the record's bytes are paid on every write."""
    outbox = [recorded_outbox_entry(recorded_event(record, earn), record), *ev.outbox(list(events))]
    body = render(receipt)
    state = ReceiptState(receipt.points_balance, receipt.tier, receipt.tier_changed)
    if render(stored_receipt(transaction_from_item(transaction_to_item(record)), state)) == body:
        return txns.put_transaction_op(record, None, fingerprint, outbox, state)
    return txns.put_transaction_op(record, body, fingerprint, outbox)


def stored_receipt(record: TransactionRecord, state: ReceiptState) -> Receipt:
    """A sale's answer from its record and the figures kept beside it (a replay renders this)."""
    return receipt_for(record, state.balance, state.tier, state.tier_changed)


def recorded_event(record: TransactionRecord, earn: dict[str, object] | None = None) -> ev.DomainEvent:
    """`earn`: a member's sale that earned (sale_earn); null for everything else."""
    return ev.DomainEvent(ev.TRANSACTION_RECORDED, {**recorded_fields(record), "earn": earn})


# An outbox entry that names this instead of carrying the record's fields: the publisher renders
# them from the item the stream hands it (the record as written), so they are not stored twice.
FROM_RECORD = "transaction"


def recorded_outbox_entry(event: ev.DomainEvent, record: TransactionRecord) -> dict[str, str]:
    """The TransactionRecorded outbox entry of a new record, without what the record itself says
    when the publisher renders that back identically; else the whole event, as any other."""
    entry = event.to_outbox()
    fields = recorded_fields(record)
    kept = {k: v for k, v in json.loads(entry["detail"]).items() if k not in fields}
    rendered = _with_record(kept, transaction_from_item(transaction_to_item(record)))
    if rendered != entry["detail"]:
        return entry
    return {**entry, "detail": json.dumps(kept, sort_keys=True, default=str), "record": FROM_RECORD}


def detail_from_record(entry: dict[str, str], record: TransactionRecord) -> str:
    """An outbox entry's detail as published: the record's fields rendered back for a compact one."""
    if entry.get("record") != FROM_RECORD:
        return str(entry["detail"])
    return _with_record(json.loads(str(entry["detail"])), record)


def _with_record(kept: dict[str, object], record: TransactionRecord) -> str:
    return json.dumps({**recorded_fields(record), **kept}, sort_keys=True, default=str)


def recorded_fields(record: TransactionRecord) -> dict[str, object]:
    """What TransactionRecorded says of the record itself (everything but the earn)."""
    return {
        "transaction_id": record.transaction_id,
        "store_id": record.store_id,
        "channel": record.channel,
        "type": record.type.value,
        "customer_id": record.customer_id,
        "member": record.member,
        "total": str(record.total),
        "currency": record.currency,
        "occurred_at": record.occurred_at,
        "lines": len(record.lines),
        "points_earned": record.points_earned,
        "points_if_member": record.points_if_member,
        "order_status": record.order_status.value if record.order_status else None,
        "cashback": str(from_cents(record.cashback)),
        "cashback_account_id": record.cashback_account_id,
        "cashback_shortfall": str(from_cents(record.cashback_shortfall)),
        "cashback_if_member": str(from_cents(record.cashback_if_member)),
    }


def resolve_named(resolve_customer: Callable[[str], Customer], customer_id: str) -> Customer:
    """The customer a sale (or the sale a return names) belongs to, following merges; 422 if gone."""
    try:
        return resolve_customer(customer_id)
    except CustomerNotFound:
        raise ValidationFailed.at(
            ("body", "customer", "customer_id"), f"no customer {customer_id[:64]}"
        ) from None
