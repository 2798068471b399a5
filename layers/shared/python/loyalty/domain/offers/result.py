"""The answer for a cart: what the engine gives back (plain frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from loyalty.domain.offers.model import RejectReason


@dataclass(frozen=True, slots=True)
class LineResult:
    line_id: str
    unit_price: Decimal
    price: Decimal  # personal unit price: price groups and fixed_price offers
    discount: Decimal  # offers' money on the whole line, at most round(quantity x price)


@dataclass(frozen=True, slots=True)
class DiscountApplied:
    offer_id: str
    name: str
    amount: Decimal
    coupon: str | None = None


@dataclass(frozen=True, slots=True)
class PersonalPrice:
    source: Literal["price_group", "offer"]
    id: str
    name: str
    line_ids: tuple[str, ...]
    saving: Decimal
    coupon: str | None = None


@dataclass(frozen=True, slots=True)
class BonusApplied:
    offer_id: str
    name: str
    points: int
    coupon: str | None = None


@dataclass(frozen=True, slots=True)
class MultiplierApplied:
    offer_id: str
    name: str
    line_ids: tuple[str, ...]
    multiplier: Decimal
    coupon: str | None = None


@dataclass(frozen=True, slots=True)
class RejectedCoupon:
    code: str
    reason: RejectReason


@dataclass(frozen=True, slots=True)
class NearMiss:
    offer_id: str
    message: str


@dataclass(frozen=True, slots=True)
class UnitsTaken:
    """Part of a line an applied offer acted on: how much of it, and the money it took off."""

    line_id: str
    quantity: Decimal
    discount: Decimal


@dataclass(frozen=True, slots=True)
class UnitsUnavailable:
    """Part of a target line an exclusive_units offer could not have: another one holds it."""

    line_id: str
    quantity: Decimal
    offer_id: str  # the holder


@dataclass(frozen=True, slots=True)
class Explanation:
    offer_id: str
    applied: bool
    reason: str
    units: tuple[UnitsTaken, ...] = ()
    unavailable: tuple[UnitsUnavailable, ...] = ()


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The answer for a cart (see the module documentation for how each figure is made).

    ``discounts`` lists the money offers (Σ amount = ``discount_total``); ``personal_prices`` the
    savings of price groups and fixed_price offers (Σ saving = ``subtotal - personal_subtotal``);
    ``bonuses`` and ``multipliers`` what the caller turns into points; ``applied_offer_ids`` every
    applied offer in stacking order (what a sale records against limits and budgets);
    ``coupons_applied`` the codes the sale consumes.
    """

    lines: tuple[LineResult, ...]
    discounts: tuple[DiscountApplied, ...]
    personal_prices: tuple[PersonalPrice, ...]
    bonuses: tuple[BonusApplied, ...]
    bonus_points: int
    multipliers: tuple[MultiplierApplied, ...]
    subtotal: Decimal
    personal_subtotal: Decimal
    discount_total: Decimal
    total: Decimal
    rejected_coupons: tuple[RejectedCoupon, ...]
    near_misses: tuple[NearMiss, ...]
    applied_offer_ids: tuple[str, ...]
    coupons_applied: tuple[str, ...]
    explanations: tuple[Explanation, ...] | None = None
