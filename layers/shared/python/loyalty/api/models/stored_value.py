"""API models: stored value."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from loyalty.adapters.stored_value import HoldRecord
from loyalty.api.models.common import (
    CallerId,
    Count,
    Name,
    PositiveMoney,
    StoreId,
    Strict,
    Timestamp,
    _email,
    money,
)
from loyalty.domain.stored_value import Account, AccountKind, from_cents
from loyalty.services.stored_value import Spent


class DeliveryIn(Strict):
    email: Annotated[str, StringConstraints(min_length=3, max_length=254)] = Field(
        json_schema_extra={"format": "email"}
    )

    _valid_email = field_validator("email")(_email)
    name: Name | None = None
    message: str | None = Field(default=None, max_length=500)


class GiftCardIn(Strict):
    amount: PositiveMoney
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    store_id: StoreId | None = Field(default=None, description="defaults to the key's store")
    card_number: str | None = Field(
        default=None, min_length=12, max_length=23, description="activating a physical card"
    )
    delivery: DeliveryIn | None = Field(default=None, description="an e-card: number and PIN go by email")

    @model_validator(mode="after")
    def _physical_or_e_card(self) -> GiftCardIn:
        if (self.card_number is None) == (self.delivery is None):
            raise ValueError("give either card_number (a physical card) or delivery (an e-card)")
        return self


class AccountOut(BaseModel):
    account_id: str = Field(description="for a gift card: its number")
    kind: AccountKind
    currency: str
    balance: str
    available: str = Field(description="the balance less live holds (0 once expired)")
    held: str
    expires_at: datetime | None
    customer_id: str | None
    status: str

    @classmethod
    def of(cls, a: Account, now: datetime) -> AccountOut:
        return cls(
            account_id=a.account_id,
            kind=a.kind,
            currency=a.currency,
            balance=money(from_cents(a.balance)),
            available=money(from_cents(a.available(now))),
            held=money(from_cents(a.held(now))),
            expires_at=a.expires_at,
            customer_id=a.customer_id,
            status="expired" if a.is_expired(now) else a.status,
        )


class GiftCardOut(AccountOut):
    card_number: str
    e_card: bool = Field(description="true: the PIN went to the buyer's email")


class AccountList(BaseModel):
    items: list[AccountOut]


class AccountIssueIn(Strict):
    kind: Literal["merchandise_credit", "promo_cash"]
    amount: PositiveMoney
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    expires_at: Timestamp | None = Field(default=None, description="promotional cash: default 90 days")


class GiftCardRedeemIn(Strict):
    redemption_id: CallerId
    amount: PositiveMoney
    store_id: StoreId | None = None


class SpentOut(BaseModel):
    redemption_id: str
    amount: str
    balance: str
    available: str
    currency: str

    @classmethod
    def of(cls, spent: Spent, now: datetime) -> SpentOut:
        return cls(
            redemption_id=spent.record.redemption_id,
            amount=money(from_cents(spent.amount)),
            balance=money(from_cents(spent.account.balance)),
            available=money(from_cents(spent.account.available(now))),
            currency=spent.account.currency,
        )


def render_spent(spent: Spent) -> str:
    return SpentOut.of(spent, spent.record.created_at).model_dump_json()


class ReloadIn(Strict):
    amount: PositiveMoney


class HoldIn(Strict):
    hold_id: CallerId
    amount: PositiveMoney
    expires_in_seconds: Count = Field(default=7 * 24 * 3600, ge=1, le=30 * 24 * 3600)


class CaptureIn(Strict):
    amount: PositiveMoney


class HoldOut(BaseModel):
    hold_id: str
    kind: str = Field(description="stored_value (amounts are money) or points (amounts are points)")
    account_id: str = Field(description="the gift card or account; for points, the customer")
    amount: str
    captured: str
    status: str
    expires_at: datetime
    balance: str | None = None
    available: str | None = None

    @classmethod
    def of(cls, h: HoldRecord, now: datetime, account: Account | None = None) -> HoldOut:
        status = "expired" if h.status == "held" and now >= h.expires_at else h.status
        points = h.kind == "points"
        return cls(
            hold_id=h.hold_id,
            kind=h.kind,
            account_id=h.account_id,
            amount=str(h.amount) if points else money(from_cents(h.amount)),
            captured=str(h.captured) if points else money(from_cents(h.captured)),
            status=status,
            expires_at=h.expires_at,
            balance=money(from_cents(account.balance)) if account else None,
            available=money(from_cents(account.available(now))) if account else None,
        )


class MovementOut(BaseModel):
    seq: int
    at: datetime
    amount: str = Field(description="signed")
    reason: str
    balance_after: str
    actor: str = Field(description="the API key that moved it")
    store_id: str | None
    redemption_id: str | None
    hold_id: str | None


class MovementList(BaseModel):
    items: list[MovementOut]
    next_cursor: str | None


class MessageOut(BaseModel):
    message_id: str
    kind: str
    to: str
    subject: str
    body: str
    status: str = Field(description="queued | sending | sent | failed (gave up after repeated failures)")
    created_at: datetime
    attempts: int = Field(default=0, description="sending attempts so far")
    sent_at: datetime | None = None
    provider_message_id: str | None = Field(default=None, description="the email service's message id")
    last_error: str | None = Field(default=None, description="why the last attempt failed (an error code)")
    next_attempt_at: datetime | None = Field(default=None, description="when a queued message is due again")


class MessageList(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None
