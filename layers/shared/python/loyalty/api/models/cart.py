"""API models: cart."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    Field,
    StringConstraints,
    field_validator,
)

from loyalty.api.models.common import (
    Count,
    CustomerRefIn,
    Money,
    Quantity,
    RequestId,
    StoreId,
    Strict,
    Timestamp,
    money,
)
from loyalty.domain.models import Model

if TYPE_CHECKING:
    from loyalty.adapters.offers import CouponRecord
    from loyalty.services.cart import CartCommand, CartLineInput, CartResult


class CartLineIn(Strict):
    line_id: str = Field(min_length=1, max_length=64)
    sku: str = Field(min_length=1, max_length=64)
    category: str | None = Field(default=None, min_length=1, max_length=64)
    quantity: Quantity
    unit_price: Money

    def to_input(self) -> CartLineInput:
        from loyalty.services.cart import CartLineInput  # the services load on first use

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
        from loyalty.services.cart import CartCommand

        return CartCommand(
            customer=self.customer.to_ref() if self.customer else None,
            store_id=self.store_id,
            currency=self.currency,
            lines=[line.to_input() for line in self.lines],
            coupons=list(self.coupons),
        )


class CartLineOut(Model):
    line_id: str
    unit_price: str
    price: str = Field(description="the customer's personal unit price")
    discount: str = Field(description="offers' discount on the whole line")


class CartDiscountOut(Model):
    offer_id: str
    name: str
    amount: str
    coupon: str | None


class PersonalPriceOut(Model):
    source: str
    id: str
    name: str
    line_ids: list[str]
    saving: str


class RejectedCouponOut(Model):
    code: str
    reason: str


class NearMissOut(Model):
    offer_id: str
    message: str


class UnitsTakenOut(Model):
    line_id: str
    quantity: str = Field(description="how much of the line the offer acted on (held, for exclusive_units)")
    discount: str = Field(description="the money it took off that part")


class UnitsUnavailableOut(Model):
    line_id: str
    quantity: str
    offer_id: str = Field(description="the exclusive_units offer that holds these units")


class ExplanationOut(Model):
    offer_id: str
    applied: bool
    reason: str
    units: list[UnitsTakenOut] = Field(
        default_factory=list, description="applied offers: the lines they took"
    )
    unavailable: list[UnitsUnavailableOut] = Field(
        default_factory=list,
        description="exclusive_units offers that did not apply: the target units other offers held",
    )


class CartOut(Model):
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
                    ExplanationOut(
                        offer_id=x.offer_id,
                        applied=x.applied,
                        reason=x.reason,
                        units=[
                            UnitsTakenOut(
                                line_id=u.line_id, quantity=_quantity(u.quantity), discount=money(u.discount)
                            )
                            for u in x.units
                        ],
                        unavailable=[
                            UnitsUnavailableOut(
                                line_id=u.line_id, quantity=_quantity(u.quantity), offer_id=u.offer_id
                            )
                            for u in x.unavailable
                        ],
                    )
                    for x in e.explanations
                ]
                if e.explanations is not None
                else None
            ),
        )


def _quantity(value: Decimal) -> str:
    return format(value.normalize(), "f")


class CouponIssueIn(Strict):
    request_id: RequestId = None
    offer_id: str = Field(min_length=1, max_length=64)
    valid_until: Timestamp | None = None
    source: Literal["manual", "api"] = "api"
    max_uses: Count = Field(default=1, ge=1, le=1000, description="1: single use")


class CouponOut(Model):
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


class CouponList(Model):
    items: list[CouponOut]
    next_cursor: str | None


class PriceGroupMemberOut(Model):
    group_id: str
    customer_id: str
    member: bool
