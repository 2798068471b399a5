"""Request and response models: the machine-readable contract (the OpenAPI is built from them)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from loyalty.adapters.offers import CouponRecord
from loyalty.adapters.redemptions import RedemptionRecord
from loyalty.adapters.stored_value import HoldRecord
from loyalty.domain.access import KeyKind
from loyalty.domain.customers import Consents, Customer, Profile
from loyalty.domain.ledger import LedgerEntry, TransactionRecord
from loyalty.domain.links import Link
from loyalty.domain.programme import Programme
from loyalty.domain.sales import Line, OrderStatus, SaleType
from loyalty.domain.stored_value import Account, AccountKind, from_cents
from loyalty.domain.stores import Channel, Store
from loyalty.domain.tiers import TierProgress, effective_tier, tier_progress
from loyalty.services.cart import CartCommand, CartLineInput, CartResult
from loyalty.services.customers import EnrolCommand, OnConflict, ProfilePatch, RawLink
from loyalty.services.redemptions import RedeemCommand, Redemption
from loyalty.services.stored_value import Spent
from loyalty.services.transactions import (
    CustomerRef,
    Receipt,
    RecordCommand,
)

StoreId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTES_BYTES = 4096


def money(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01'))}"


class Strict(BaseModel):
    # Unknown fields are refused, not ignored: a typo in a till's payload must not pass silently.
    model_config = ConfigDict(extra="forbid")


def _check_attributes(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_ATTRIBUTES:
        raise ValueError(f"at most {MAX_ATTRIBUTES} attributes")
    if len(json.dumps(value)) > MAX_ATTRIBUTES_BYTES:
        raise ValueError(f"attributes take at most {MAX_ATTRIBUTES_BYTES} bytes as JSON")
    for key in value:
        if not key or len(key) > 64:
            raise ValueError("attribute names have 1 to 64 characters")
    return value


def _check_birthday(value: date | None) -> date | None:
    if value is not None and not date(1900, 1, 1) <= value <= datetime.now(UTC).date():
        raise ValueError("birthday must be between 1900-01-01 and today")
    return value


# ---- customers -----------------------------------------------------------------------------


class LinkIn(Strict):
    type: str = Field(min_length=1, max_length=40, examples=["email"])
    value: str = Field(min_length=1, max_length=254, examples=["jane@example.com"])


class LinkOut(BaseModel):
    type: str
    value: str


class ProfileIn(Strict):
    first_name: Name | None = None
    last_name: Name | None = None
    birthday: date | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    _attributes = field_validator("attributes")(_check_attributes)
    _birthday = field_validator("birthday")(_check_birthday)

    def to_domain(self) -> Profile:
        return Profile(self.first_name, self.last_name, self.birthday, dict(self.attributes))


class ConsentsIn(Strict):
    email: bool = False
    sms: bool = False
    mail: bool = False


class CustomerCreate(Strict):
    links: list[LinkIn] = Field(default_factory=list, max_length=20)
    profile: ProfileIn = Field(default_factory=ProfileIn)
    consents: ConsentsIn = Field(default_factory=ConsentsIn)
    member: bool = Field(default=True, description="false records an identified non-member")
    store_id: StoreId | None = Field(default=None, description="defaults to the key's store")

    def to_command(self) -> EnrolCommand:
        return EnrolCommand(
            links=[RawLink(link.type, link.value) for link in self.links],
            profile=self.profile.to_domain(),
            consents=Consents(**self.consents.model_dump()),
            member=self.member,
            store_id=self.store_id,
        )


class ProfilePatchIn(Strict):
    first_name: Name | None = None
    last_name: Name | None = None
    birthday: date | None = None
    attributes: dict[str, Any] | None = Field(
        default=None, description="merged key by key; null deletes a key"
    )

    _attributes = field_validator("attributes")(lambda v: v if v is None else _check_attributes(v))
    _birthday = field_validator("birthday")(_check_birthday)


class ConsentsPatchIn(Strict):
    email: bool | None = None
    sms: bool | None = None
    mail: bool | None = None


class CustomerPatch(Strict):
    profile: ProfilePatchIn | None = None
    consents: ConsentsPatchIn | None = None
    member: Literal[True] | None = Field(default=None, description="true enrols an identified non-member")

    def to_patch(self) -> ProfilePatch:
        fields: dict[str, Any] = {}
        attributes = None
        if self.profile is not None:
            sent = self.profile.model_dump(exclude_unset=True)
            attributes = sent.pop("attributes", None)
            fields = sent
        consents = self.consents.model_dump(exclude_unset=True, exclude_none=True) if self.consents else {}
        return ProfilePatch(fields=fields, attributes=attributes, consents=consents, member=self.member)


class LinkAdd(Strict):
    type: str = Field(min_length=1, max_length=40)
    value: str = Field(min_length=1, max_length=254)
    on_conflict: OnConflict = OnConflict.REJECT


class PointsOut(BaseModel):
    available: int
    pending: int
    lifetime: int


class StatsOut(BaseModel):
    transactions: int
    spend: str = Field(examples=["0.00"])
    currency: str
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None


class ProfileOut(BaseModel):
    first_name: str | None
    last_name: str | None
    birthday: date | None
    attributes: dict[str, Any]


class ConsentsOut(BaseModel):
    email: bool
    sms: bool
    mail: bool


def _link_order(link: Link) -> tuple[str, str]:
    return link.type, link.value


class TierProgressOut(BaseModel):
    points_in_window: int = Field(description="points earned in the programme's rolling window")
    next_tier: str | None
    points_to_next_tier: int | None

    @classmethod
    def of(cls, progress: TierProgress | None) -> TierProgressOut | None:
        if progress is None:
            return None
        return cls(
            points_in_window=progress.points_in_window,
            next_tier=progress.next_tier,
            points_to_next_tier=progress.points_to_next_tier,
        )


class CustomerView(BaseModel):
    """The 360° view of one customer."""

    customer_id: str
    member: bool
    status: str
    profile: ProfileOut
    consents: ConsentsOut
    links: list[LinkOut]
    card: str | None = Field(description="the loyalty card barcode, when the customer has one")
    tier: str | None
    tier_progress: TierProgressOut | None
    points: PointsOut
    accounts: list[dict[str, Any]]
    stats: StatsOut
    segments: list[str]
    coupons_available: int
    created_at: datetime
    enrolled_at: datetime | None
    merged_from: list[str] | None = None

    @classmethod
    def of(
        cls, c: Customer, programme: Programme, now: datetime, requested_id: str | None = None
    ) -> CustomerView:
        merged_from = None
        if requested_id and requested_id != c.customer_id:
            merged_from = [requested_id]
        return cls(
            customer_id=c.customer_id,
            member=c.member,
            status=c.status.value,
            profile=ProfileOut(
                first_name=c.profile.first_name,
                last_name=c.profile.last_name,
                birthday=c.profile.birthday,
                attributes=c.profile.attributes,
            ),
            consents=ConsentsOut(email=c.consents.email, sms=c.consents.sms, mail=c.consents.mail),
            links=[LinkOut(type=link.type, value=link.value) for link in sorted(c.links, key=_link_order)],
            card=c.card.value if c.card else None,
            tier=effective_tier(c, programme, now),
            tier_progress=TierProgressOut.of(tier_progress(c, programme, now)),
            points=PointsOut(
                available=c.points.available, pending=c.points.pending, lifetime=c.points.lifetime
            ),
            accounts=[],
            stats=StatsOut(
                transactions=c.stats.transactions,
                spend=money(c.stats.spend),
                currency=programme.currency,
                first_purchase_at=c.stats.first_purchase_at,
                last_purchase_at=c.stats.last_purchase_at,
            ),
            segments=[],
            coupons_available=0,
            created_at=c.created_at,
            enrolled_at=c.enrolled_at,
            merged_from=merged_from,
        )


# ---- admin ---------------------------------------------------------------------------------


class ApiKeyCreate(Strict):
    kind: KeyKind
    store_id: StoreId | None = None
    name: Name


class ApiKeyOut(BaseModel):
    key_id: str
    kind: KeyKind
    store_id: str | None
    name: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyIssued(ApiKeyOut):
    api_key: str = Field(description="the secret; shown only in this response")


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]
    next_cursor: str | None


class StorePut(Strict):
    channel: Channel
    format: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    name: Name | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    _attributes = field_validator("attributes")(_check_attributes)

    def to_domain(self, store_id: str) -> Store:
        return Store(store_id, self.channel, self.format, self.name, dict(self.attributes))


class StoreOut(BaseModel):
    store_id: str
    channel: Channel
    format: str | None
    name: str | None
    attributes: dict[str, Any]

    @classmethod
    def of(cls, store: Store) -> StoreOut:
        return cls(
            store_id=store.store_id,
            channel=store.channel,
            format=store.format,
            name=store.name,
            attributes=store.attributes,
        )


class StoreList(BaseModel):
    items: list[StoreOut]
    next_cursor: str | None


class Health(BaseModel):
    status: Literal["ok"]
    version: str


# ---- transactions --------------------------------------------------------------------------

Money = Annotated[Decimal, Field(ge=0, le=Decimal("10000000"), decimal_places=2, examples=["12.50"])]
Quantity = Annotated[Decimal, Field(gt=0, le=Decimal("100000"), decimal_places=3, examples=["1"])]
CallerId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$")]


class LinkRefIn(Strict):
    type: str = Field(min_length=1, max_length=40)
    value: str = Field(min_length=1, max_length=254)


class CustomerRefIn(Strict):
    """Who bought: by platform id, or by a link (card, email ...); leave `customer` out when anonymous."""

    customer_id: str | None = Field(default=None, max_length=64)
    link: LinkRefIn | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> CustomerRefIn:
        if (self.customer_id is None) == (self.link is None):
            raise ValueError("give either customer_id or link")
        return self

    def to_ref(self) -> CustomerRef:
        if self.link is not None:
            return CustomerRef(link_type=self.link.type, link_value=self.link.value)
        return CustomerRef(customer_id=self.customer_id)


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
    occurred_at: AwareDatetime
    customer: CustomerRefIn | None = None
    lines: list[LineIn] = Field(min_length=1, max_length=500)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    total: Money = Field(description="sum of (quantity x unit_price - discount)")
    coupons: list[str] = Field(default_factory=list, max_length=20)
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


class AppliedOfferOut(BaseModel):
    offer_id: str
    amount: str = Field(description="money the offer took off the sale; 0.00 for points effects")


class ReceiptOut(BaseModel):
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
        )


def render_receipt(receipt: Receipt) -> str:
    return ReceiptOut.of(receipt).model_dump_json()


class LineOut(BaseModel):
    line_id: str
    sku: str
    category: str | None
    quantity: str
    unit_price: str
    discount: str
    amount: str
    points: int
    returned_quantity: str


class TransactionOut(BaseModel):
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
                )
                for rl in r.lines
            ],
            points_earned=r.points_earned,
            points_reversed=r.points_reversed,
            order_status=r.order_status,
            original_store_id=r.original_store_id,
            original_transaction_id=r.original_transaction_id,
        )


class TransactionList(BaseModel):
    items: list[TransactionOut]
    next_cursor: str | None


class LedgerEntryOut(BaseModel):
    entry_id: str
    at: datetime
    points: int = Field(description="signed")
    reason: str
    balance_after: int
    transaction_id: str | None
    store_id: str | None
    redemption_id: str | None
    actor: str = Field(description="the API key that caused it, or the job that did")
    remaining: int | None = Field(description="for an earn: what is left of the lot")
    pending_until: datetime | None
    expires_at: datetime | None

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
            actor=e.actor,
            remaining=e.remaining,
            pending_until=e.pending_until,
            expires_at=e.expires_at,
        )


class LedgerList(BaseModel):
    items: list[LedgerEntryOut]
    next_cursor: str | None


class OrderStatusPatch(Strict):
    order_status: OrderStatus


# ---- cart, offers, coupons ------------------------------------------------------------------


class CartLineIn(Strict):
    line_id: str = Field(min_length=1, max_length=64)
    sku: str = Field(min_length=1, max_length=64)
    category: str | None = Field(default=None, min_length=1, max_length=64)
    quantity: Quantity
    unit_price: Money

    def to_input(self) -> CartLineInput:
        return CartLineInput(self.line_id, self.sku, self.category, self.quantity, self.unit_price)


class CartIn(Strict):
    customer: CustomerRefIn | None = None
    store_id: StoreId | None = Field(default=None, description="defaults to the key's store")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    lines: list[CartLineIn] = Field(min_length=1, max_length=500)
    coupons: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20
    )

    @field_validator("lines")
    @classmethod
    def _unique_line_ids(cls, lines: list[CartLineIn]) -> list[CartLineIn]:
        if len({line.line_id for line in lines}) != len(lines):
            raise ValueError("line_ids must be unique")
        return lines

    def to_command(self) -> CartCommand:
        return CartCommand(
            customer=self.customer.to_ref() if self.customer else None,
            store_id=self.store_id,
            currency=self.currency,
            lines=[line.to_input() for line in self.lines],
            coupons=list(self.coupons),
        )


class CartLineOut(BaseModel):
    line_id: str
    unit_price: str
    price: str = Field(description="the customer's personal unit price")
    discount: str = Field(description="offers' discount on the whole line")


class CartDiscountOut(BaseModel):
    offer_id: str
    name: str
    amount: str
    coupon: str | None


class PersonalPriceOut(BaseModel):
    source: str
    id: str
    name: str
    line_ids: list[str]
    saving: str


class RejectedCouponOut(BaseModel):
    code: str
    reason: str


class NearMissOut(BaseModel):
    offer_id: str
    message: str


class ExplanationOut(BaseModel):
    offer_id: str
    applied: bool
    reason: str


class CartOut(BaseModel):
    customer_id: str | None
    member: bool
    currency: str
    lines: list[CartLineOut]
    discounts: list[CartDiscountOut]
    personal_prices: list[PersonalPriceOut]
    bonus_points: int
    points_to_earn: int
    points_if_member: int
    subtotal: str
    discount_total: str
    total: str
    rejected_coupons: list[RejectedCouponOut]
    near_misses: list[NearMissOut]
    explanations: list[ExplanationOut] | None = None

    @classmethod
    def of(cls, r: CartResult) -> CartOut:
        e = r.evaluation
        return cls(
            customer_id=r.customer.customer_id if r.customer else None,
            member=bool(r.customer and r.customer.member),
            currency=r.currency,
            lines=[
                CartLineOut(
                    line_id=ln.line_id,
                    unit_price=money(ln.unit_price),
                    price=money(ln.price),
                    discount=money(ln.discount),
                )
                for ln in e.lines
            ],
            discounts=[
                CartDiscountOut(offer_id=d.offer_id, name=d.name, amount=money(d.amount), coupon=d.coupon)
                for d in e.discounts
            ],
            personal_prices=[
                PersonalPriceOut(
                    source=p.source, id=p.id, name=p.name, line_ids=list(p.line_ids), saving=money(p.saving)
                )
                for p in e.personal_prices
            ],
            bonus_points=e.bonus_points,
            points_to_earn=r.points_to_earn,
            points_if_member=r.points_if_member,
            subtotal=money(e.subtotal),
            discount_total=money(e.discount_total),
            total=money(e.total),
            rejected_coupons=[RejectedCouponOut(code=c.code, reason=c.reason) for c in e.rejected_coupons],
            near_misses=[NearMissOut(offer_id=n.offer_id, message=n.message) for n in e.near_misses],
            explanations=(
                [
                    ExplanationOut(offer_id=x.offer_id, applied=x.applied, reason=x.reason)
                    for x in e.explanations
                ]
                if e.explanations is not None
                else None
            ),
        )


class CouponIssueIn(Strict):
    offer_id: str = Field(min_length=1, max_length=64)
    valid_until: AwareDatetime | None = None
    source: Literal["manual", "api"] = "api"
    max_uses: int = Field(default=1, ge=1, le=1000, description="1: single use")


class CouponOut(BaseModel):
    code: str
    offer_id: str
    customer_id: str | None
    issued_at: datetime
    valid_until: datetime | None
    max_uses: int
    uses: int
    state: str = Field(description="active, used, expired or revoked")
    source: str

    @classmethod
    def of(cls, c: CouponRecord, now: datetime) -> CouponOut:
        return cls(
            code=c.code,
            offer_id=c.offer_id,
            customer_id=c.customer_id,
            issued_at=c.issued_at,
            valid_until=c.valid_until,
            max_uses=c.max_uses,
            uses=c.uses,
            state=c.state(now),
            source=c.source,
        )


class CouponList(BaseModel):
    items: list[CouponOut]
    next_cursor: str | None


class PriceGroupMemberOut(BaseModel):
    group_id: str
    customer_id: str
    member: bool


# ---- redemptions -----------------------------------------------------------------------------


class RedemptionIn(Strict):
    redemption_id: CallerId = Field(description="the caller's id; takes effect once, for ever")
    store_id: StoreId | None = Field(default=None, description="defaults to the key's store")
    customer: CustomerRefIn
    kind: Literal["points", "coupon", "stored_value"]
    points: int | None = Field(default=None, gt=0, le=100_000_000)
    coupon: str | None = Field(default=None, min_length=1, max_length=64)
    reward_id: str | None = Field(default=None, max_length=64)
    account_id: str | None = Field(default=None, max_length=64)
    amount: Money | None = None
    order_ref: str | None = Field(default=None, max_length=128)

    @model_validator(mode="after")
    def _what_to_spend(self) -> RedemptionIn:
        if self.kind == "coupon" and self.coupon is None:
            raise ValueError("a coupon redemption names the coupon")
        if self.kind == "stored_value" and (self.account_id is None or self.amount is None):
            raise ValueError("a stored-value redemption names the account_id and the amount")
        if self.amount is not None and self.amount <= 0:
            raise ValueError("amount must be more than 0")
        if self.kind == "points" and self.points is None and self.reward_id is None:
            raise ValueError("a points redemption names the points or the reward")
        return self

    def to_command(self, fingerprint: str) -> RedeemCommand:
        return RedeemCommand(
            redemption_id=self.redemption_id,
            kind=self.kind,
            store_id=self.store_id,
            customer=self.customer.to_ref(),
            fingerprint=fingerprint,
            points=self.points,
            coupon=self.coupon,
            order_ref=self.order_ref,
            reward_id=self.reward_id,
            account_id=self.account_id,
            amount=self.amount,
        )


class RedemptionOut(BaseModel):
    redemption_id: str
    kind: str
    status: str = Field(description="done or reversed")
    store_id: str
    customer_id: str | None
    points: int
    coupon: str | None
    reward_id: str | None
    account_id: str | None
    amount: str | None = Field(description="stored value: the money spent")
    order_ref: str | None
    balance_after: int | None = Field(description="points balance (available + pending) afterwards")
    created_at: datetime
    reversed_at: datetime | None

    @classmethod
    def of(cls, r: RedemptionRecord, balance_after: int | None = None) -> RedemptionOut:
        return cls(
            redemption_id=r.redemption_id,
            kind=r.kind,
            status=r.status,
            store_id=r.store_id,
            customer_id=r.customer_id,
            points=r.points,
            coupon=r.coupon,
            reward_id=r.reward_id,
            account_id=r.account_id,
            amount=money(Decimal(r.amount) / 100) if r.amount is not None else None,
            order_ref=r.order_ref,
            balance_after=balance_after if balance_after is not None else r.balance_after,
            created_at=r.created_at,
            reversed_at=r.reversed_at,
        )


def render_redemption(result: Redemption) -> str:
    return RedemptionOut.of(result.record, result.balance_after).model_dump_json()


# ---- stored value ------------------------------------------------------------------------------

PositiveMoney = Annotated[Decimal, Field(gt=0, le=Decimal("100000"), decimal_places=2, examples=["25.00"])]


class DeliveryIn(Strict):
    email: EmailStr
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
    expires_at: AwareDatetime | None = Field(default=None, description="promotional cash: default 90 days")


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
    expires_in_seconds: int = Field(default=7 * 24 * 3600, ge=1, le=30 * 24 * 3600)


class CaptureIn(Strict):
    amount: PositiveMoney


class PointsHoldIn(Strict):
    hold_id: CallerId
    points: int = Field(gt=0, le=100_000_000)
    expires_in_seconds: int = Field(default=7 * 24 * 3600, ge=1, le=30 * 24 * 3600)


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
    status: str
    created_at: datetime


class MessageList(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None
