"""API models: stored value."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import (
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from loyalty.api.models.common import (
    CallerId,
    Count,
    CustomerRefIn,
    Name,
    PositiveMoney,
    RequestId,
    StoreId,
    Strict,
    Timestamp,
    _email,
    money,
)
from loyalty.domain.models import Model
from loyalty.domain.stored_value import Account, AccountKind, from_cents

if TYPE_CHECKING:
    from loyalty.adapters.stored_value import HoldRecord
    from loyalty.domain.customers import Customer
    from loyalty.services.accounts import Spent


class DeliveryIn(Strict):
    email: Annotated[str, StringConstraints(min_length=3, max_length=254)] = Field(
        json_schema_extra={"format": "email"}
    )

    _valid_email = field_validator("email")(_email)
    name: Name | None = None
    message: str | None = Field(default=None, max_length=500)


class GiftCardIn(Strict):
    request_id: RequestId = None
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


class AccountOut(Model):
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


StoreQuery = Annotated[
    str | None,
    Query(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description=(
            "the store the caller-owned id belongs to (ids are unique per store): a till's or web "
            "shop's key may leave it out (its own store; naming another is 403); an admin key names it"
        ),
    ),
]


class GiftCardOut(AccountOut):
    card_number: str
    e_card: bool = Field(description="true: the PIN went to the buyer's email")


class AccountList(Model):
    items: list[AccountOut]


class AccountIssueIn(Strict):
    request_id: RequestId = None
    kind: Literal["merchandise_credit", "promo_cash"]
    amount: PositiveMoney
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    expires_at: Timestamp | None = Field(default=None, description="promotional cash: default 90 days")


_OWNER = (
    "whom the value is spent for: required when the account belongs to a customer (merchandise "
    "credit, promotional cash, a registered card), which only its owner spends"
)


class GiftCardRedeemIn(Strict):
    redemption_id: CallerId = Field(
        description="the caller's id, unique per store: takes effect once, for ever"
    )
    amount: PositiveMoney
    store_id: StoreId | None = None
    customer: CustomerRefIn | None = Field(default=None, description=_OWNER)


class SpentOut(Model):
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
    request_id: RequestId = None
    amount: PositiveMoney


class HoldIn(Strict):
    hold_id: CallerId = Field(description="the caller's id, unique per store")
    amount: PositiveMoney
    expires_in_seconds: Count = Field(default=7 * 24 * 3600, ge=1, le=30 * 24 * 3600)
    customer: CustomerRefIn | None = Field(default=None, description=_OWNER)


class CaptureIn(Strict):
    """A gift-card hold captures an `amount` of money, a points hold `points` (a points hold still
    takes a whole-number `amount`, as its first clients sent it)."""

    amount: PositiveMoney | None = Field(default=None, description="money: a hold on a gift card or account")
    points: int | None = Field(default=None, strict=True, gt=0, le=100_000_000, description="a points hold")

    @model_validator(mode="after")
    def _amount_or_points(self) -> CaptureIn:
        if (self.amount is None) == (self.points is None):
            raise ValueError("give either amount (a gift-card hold) or points (a points hold)")
        return self


def _hold_status(h: HoldRecord, now: datetime) -> str:
    return "expired" if h.status == "held" and now >= h.expires_at else h.status


class HoldOut(Model):
    """A hold on a gift card or account: amounts are money."""

    hold_id: str
    kind: Literal["stored_value"] = "stored_value"
    store_id: str | None = Field(default=None, description="the store that placed it (null: an admin key)")
    account_id: str = Field(description="the gift card or account")
    amount: str
    captured: str
    status: str
    expires_at: datetime
    balance: str | None = None
    available: str | None = None

    @classmethod
    def of(cls, h: HoldRecord, now: datetime, account: Account | None = None) -> HoldOut:
        return cls(
            hold_id=h.hold_id,
            store_id=h.store_id,
            account_id=h.account_id,
            amount=money(from_cents(h.amount)),
            captured=money(from_cents(h.captured)),
            status=_hold_status(h, now),
            expires_at=h.expires_at,
            balance=money(from_cents(account.balance)) if account else None,
            available=money(from_cents(account.available(now))) if account else None,
        )


class PointsHoldOut(Model):
    """A hold on a customer's points: every number is whole points."""

    hold_id: str
    kind: Literal["points"] = "points"
    store_id: str | None = Field(default=None, description="the store that placed it (null: an admin key)")
    customer_id: str
    account_id: str = Field(description="the customer (as in the first version of this answer)")
    points: int = Field(description="the points held")
    amount: int = Field(description="the points held, as `points` (as in the first version)")
    captured: int = Field(description="the points taken by the capture")
    status: str
    expires_at: datetime
    balance: int = Field(description="the customer's points balance (available + pending) now")
    available: int = Field(description="the points the customer can spend now (less every live hold)")

    @classmethod
    def of(cls, h: HoldRecord, now: datetime, customer: Customer) -> PointsHoldOut:
        return cls(
            hold_id=h.hold_id,
            store_id=h.store_id,
            customer_id=customer.customer_id,
            account_id=customer.customer_id,
            points=h.amount,
            amount=h.amount,
            captured=h.captured,
            status=_hold_status(h, now),
            expires_at=h.expires_at,
            balance=customer.points.available + customer.points.pending,
            available=customer.spendable(now),
        )


class MovementOut(Model):
    seq: int
    at: datetime
    amount: str = Field(description="signed")
    reason: str
    balance_after: str
    actor: str = Field(description="the API key that moved it")
    store_id: str | None
    redemption_id: str | None
    hold_id: str | None
    transaction_id: str | None = Field(
        default=None,
        description="cashback: the sale that credited it, or the return that took it back (in store_id)",
    )
    original_transaction_id: str | None = Field(
        default=None, description="on a return's cashback movement: the sale whose cashback it takes back"
    )


class MovementList(Model):
    items: list[MovementOut]
    next_cursor: str | None


class MessageOut(Model):
    message_id: str
    kind: str
    to: str
    subject: str
    body: str | None = Field(
        description="what was sent, with its secrets masked (an e-card's number and PIN); null for a "
        "message stored before bodies were masked"
    )
    status: str = Field(
        description="queued | deferred (quiet hours: due at next_attempt_at) | sending | sent | "
        "failed (gave up after repeated failures: the dead letters) | suppressed (see reason)"
    )
    created_at: datetime
    attempts: int = Field(default=0, description="sending attempts so far")
    sent_at: datetime | None = None
    provider_message_id: str | None = Field(default=None, description="the email service's message id")
    last_error: str | None = Field(default=None, description="why the last attempt failed (an error code)")
    next_attempt_at: datetime | None = Field(default=None, description="when a queued message is due again")
    channel: str = Field(default="email", description="email | sms | mail | api")
    customer_id: str | None = None
    campaign_id: str | None = None
    template_id: str | None = None
    cause: str | None = Field(
        default=None, description="welcome | earn_confirmation | confirmation | campaign"
    )
    reason: str | None = Field(
        default=None,
        description="why it was suppressed (no-consent, no-address, frequency-cap, customer-not-active ...) "
        "or deferred (quiet-hours)",
    )
    opened_at: datetime | None = Field(
        default=None, description="when an email_open event first named this sent message"
    )
    clicked_at: datetime | None = Field(
        default=None, description="when an email_click event first named this sent message"
    )


class MessageList(Model):
    items: list[MessageOut]
    next_cursor: str | None
