"""API models: transactions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from loyalty.api.models.common import (
    CallerId,
    CustomerRefIn,
    Id,
    Money,
    Quantity,
    StoreId,
    Strict,
    Timestamp,
    money,
)
from loyalty.domain.models import Model
from loyalty.domain.sales import Line, OrderStatus, SaleType
from loyalty.domain.stored_value import from_cents

if TYPE_CHECKING:
    from loyalty.domain.ledger import LedgerEntry, TransactionRecord
    from loyalty.services.transactions import Receipt, RecordCommand


class LineIn(Strict):
    line_id: str = Field(min_length=1, max_length=64)
    sku: str = Field(min_length=1, max_length=64)
    category: str | None = Field(default=None, min_length=1, max_length=64)
    quantity: Quantity
    unit_price: Money
    discount: Money = Decimal("0")

    @model_validator(mode="after")
    def _discount_within_price(self) -> LineIn:
        if self.discount > self.quantity * self.unit_price:
            raise ValueError("discount is larger than quantity x unit_price")
        return self

    def to_domain(self) -> Line:
        return Line(self.line_id, self.sku, self.category, self.quantity, self.unit_price, self.discount)


class TransactionIn(Strict):
    transaction_id: CallerId = Field(description="the till's or shop's own id; unique per store, for ever")
    type: SaleType
    store_id: StoreId | None = Field(default=None, description="defaults to the key's store")
    occurred_at: Timestamp
    customer: CustomerRefIn | None = None
    lines: list[LineIn] = Field(min_length=1, max_length=500)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    total: Money = Field(description="sum of (quantity x unit_price - discount)")
    coupons: list[Id] = Field(default_factory=list, max_length=20)
    original_transaction_id: CallerId | None = Field(default=None, description="the sale a return refers to")
    original_store_id: StoreId | None = Field(
        default=None, description="where that sale happened; default: here"
    )
    order_status: OrderStatus | None = Field(default=None, description="online orders; default placed")

    @field_validator("lines")
    @classmethod
    def _unique_line_ids(cls, lines: list[LineIn]) -> list[LineIn]:
        seen: set[str] = set()
        for line in lines:
            if line.line_id in seen:
                raise ValueError(f"line_id {line.line_id!r} appears twice")
            seen.add(line.line_id)
        return lines

    def to_command(self, fingerprint: str) -> RecordCommand:
        from loyalty.services.transactions import RecordCommand  # the services load on first use

        return RecordCommand(
            transaction_id=self.transaction_id,
            type=self.type,
            store_id=self.store_id,
            occurred_at=self.occurred_at.astimezone(UTC),
            customer=self.customer.to_ref() if self.customer else None,
            lines=[line.to_domain() for line in self.lines],
            currency=self.currency,
            total=self.total,
            fingerprint=fingerprint,
            coupons=list(self.coupons),
            original_transaction_id=self.original_transaction_id,
            original_store_id=self.original_store_id,
            order_status=self.order_status,
        )


class AppliedOfferOut(Model):
    offer_id: str
    amount: str = Field(description="money the offer took off the sale; 0.00 for points effects")


class IgnoredLinkOut(Model):
    type: str
    value: str


class CustomerIgnoredOut(Model):
    reason: str = Field(description="placeholder-link: the link is a placeholder that identifies nobody")
    link: IgnoredLinkOut


class ReceiptNoteOut(Model):
    code: str = Field(
        description="backdated: recorded without earning (older than the programme's max_backdate_days); "
        "offer_not_given: an offer the engine would apply whose discount the lines do not carry"
    )
    detail: str


class CashbackOut(Model):
    amount: str = Field(
        description="promotional cash credited by the programme's cashback rules; negative: what a "
        "return or cancellation took back"
    )
    currency: str
    account_id: str = Field(description="the customer's promotional-cash account (GET .../accounts)")
    expires_at: datetime | None = Field(description="when the cash expires")
    shortfall: str = Field(
        default="0.00",
        description="on a return: cashback it could not take back because the cash was already spent",
    )


class ReceiptOut(Model):
    transaction_id: str
    store_id: str
    type: SaleType
    customer_id: str | None
    member: bool
    points_earned: int = Field(description="negative on a return")
    points_balance: int | None = Field(description="available + pending after this transaction (members)")
    tier: str | None
    tier_changed: bool
    offers_applied: list[AppliedOfferOut] = Field(default_factory=list)
    coupons_redeemed: list[str] = Field(default_factory=list, description="coupons this sale consumed")
    points_if_member: int = Field(description="what a non-member would have earned as a member")
    total: str
    currency: str
    order_status: OrderStatus | None
    customer_ignored: CustomerIgnoredOut | None = Field(
        default=None,
        description="the customer named by the sale was not used (a placeholder link): recorded as anonymous",
    )
    notes: list[ReceiptNoteOut] = Field(
        default_factory=list, description="how the platform recorded the sale, where a till should know"
    )
    cashback: CashbackOut | None = Field(
        default=None, description="promotional cash this sale credited (or this return took back); null: none"
    )
    cashback_if_member: str = Field(
        default="0.00", description="the cashback a member would have been credited (non-members' receipts)"
    )

    @classmethod
    def of(cls, r: Receipt) -> ReceiptOut:
        return cls(
            transaction_id=r.transaction_id,
            store_id=r.store_id,
            type=r.type,
            customer_id=r.customer_id,
            member=r.member,
            points_earned=r.points_earned,
            points_balance=r.points_balance,
            tier=r.tier,
            tier_changed=r.tier_changed,
            points_if_member=r.points_if_member,
            offers_applied=[
                AppliedOfferOut(offer_id=o.offer_id, amount=money(o.amount)) for o in r.offers_applied
            ],
            coupons_redeemed=list(r.coupons_redeemed),
            total=money(r.total),
            currency=r.currency,
            order_status=r.order_status,
            customer_ignored=CustomerIgnoredOut(
                reason=r.customer_ignored.ignored or "",
                link=IgnoredLinkOut(type=r.customer_ignored.link.type, value=r.customer_ignored.link.value),
            )
            if r.customer_ignored is not None
            else None,
            notes=[ReceiptNoteOut(code=n.code, detail=n.detail) for n in r.notes],
            cashback=CashbackOut(
                amount=str(from_cents(r.cashback)),
                currency=r.currency,
                account_id=r.cashback_account_id,
                expires_at=r.cashback_expires_at,
                shortfall=str(from_cents(r.cashback_shortfall)),
            )
            if r.cashback_account_id is not None and (r.cashback or r.cashback_shortfall)
            else None,
            cashback_if_member=str(from_cents(r.cashback_if_member)),
        )


def render_receipt(receipt: Receipt) -> str:
    return ReceiptOut.of(receipt).model_dump_json()


class LineOut(Model):
    line_id: str
    sku: str
    category: str | None
    quantity: str
    unit_price: str
    discount: str
    amount: str
    points: int
    returned_quantity: str
    cashback: str = Field(default="0.00", description="promotional cash the line gave")


class TransactionOut(Model):
    transaction_id: str
    store_id: str
    channel: str
    type: SaleType
    occurred_at: datetime
    recorded_at: datetime
    customer_id: str | None
    member: bool
    currency: str
    total: str
    lines: list[LineOut]
    points_earned: int
    points_reversed: int
    order_status: OrderStatus | None
    original_store_id: str | None
    original_transaction_id: str | None
    cashback: str = Field(
        default="0.00", description="promotional cash credited (negative on a return: what it took back)"
    )
    cashback_reversed: str = Field(
        default="0.00", description="on a sale: cashback claimed back so far by returns and cancellations"
    )
    cashback_shortfall: str = Field(
        default="0.00", description="cashback that could not be taken back: the cash was spent already"
    )
    cashback_account_id: str | None = Field(default=None, description="the promotional-cash account")

    @classmethod
    def of(cls, r: TransactionRecord) -> TransactionOut:
        return cls(
            transaction_id=r.transaction_id,
            store_id=r.store_id,
            channel=r.channel,
            type=r.type,
            occurred_at=r.occurred_at,
            recorded_at=r.recorded_at,
            customer_id=r.customer_id,
            member=r.member,
            currency=r.currency,
            total=money(r.total),
            lines=[
                LineOut(
                    line_id=rl.line.line_id,
                    sku=rl.line.sku,
                    category=rl.line.category,
                    quantity=str(rl.line.quantity.normalize()),
                    unit_price=money(rl.line.unit_price),
                    discount=money(rl.line.discount),
                    amount=money(rl.line.amount),
                    points=rl.points,
                    returned_quantity=str(rl.returned_quantity.normalize()),
                    cashback=str(from_cents(rl.cashback)),
                )
                for rl in r.lines
            ],
            points_earned=r.points_earned,
            points_reversed=r.points_reversed,
            order_status=r.order_status,
            original_store_id=r.original_store_id,
            original_transaction_id=r.original_transaction_id,
            cashback=str(from_cents(r.cashback)),
            cashback_reversed=str(from_cents(r.cashback_reversed)),
            cashback_shortfall=str(from_cents(r.cashback_shortfall)),
            cashback_account_id=r.cashback_account_id,
        )


class TransactionList(Model):
    items: list[TransactionOut]
    next_cursor: str | None


class LedgerEntryOut(Model):
    entry_id: str
    at: datetime
    points: int = Field(description="signed")
    reason: str
    balance_after: int
    transaction_id: str | None
    store_id: str | None
    redemption_id: str | None
    original_transaction_id: str | None = Field(
        default=None, description="on a return's entry: the sale whose points it takes back"
    )
    original_store_id: str | None = Field(default=None, description="where that sale happened")
    actor: str = Field(description="the API key that caused it, or the job that did")
    remaining: int | None = Field(description="for an earn: what is left of the lot")
    pending_until: datetime | None
    expires_at: datetime | None
    rule_id: str | None = Field(default=None, description="reason event: the event earn rule it earned by")
    event_id: str | None = Field(default=None, description="reason event: the event (unique in store_id)")

    @classmethod
    def of(cls, e: LedgerEntry) -> LedgerEntryOut:
        return cls(
            entry_id=e.entry_id,
            at=e.at,
            points=e.points,
            reason=e.reason.value,
            balance_after=e.balance_after,
            transaction_id=e.transaction_id,
            store_id=e.store_id,
            redemption_id=e.redemption_id,
            original_transaction_id=e.original_transaction_id,
            original_store_id=e.original_store_id,
            actor=e.actor,
            remaining=e.remaining,
            pending_until=e.pending_until,
            expires_at=e.expires_at,
            rule_id=e.rule_id,
            event_id=e.event_id,
        )


class LedgerList(Model):
    items: list[LedgerEntryOut]
    next_cursor: str | None


class OrderStatusPatch(Strict):
    order_status: OrderStatus
