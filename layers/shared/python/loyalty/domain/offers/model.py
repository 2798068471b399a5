"""The offer documents and their validation: offers (audience, where, condition, effect,
limits), price groups, cart lines, the cart context and coupons as the engine receives them.

What each field means for a cart is in the algorithm note of :mod:`loyalty.domain.offers.engine`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from loyalty.domain.attributes import check_storable
from loyalty.domain.errors import FieldError
from loyalty.domain.ids import new_id
from loyalty.domain.models import Model
from loyalty.domain.money import cents
from loyalty.domain.programme import RuleWhere
from loyalty.domain.stores import Channel, Store
from loyalty.domain.values import (
    Count,
    Factor,
    MoneySchema,
    MoneyText,
    QuantitySchema,
    QuantityText,
    Timestamp,
    checked_decimal,
)

OfferStatus: TypeAlias = Literal["active", "paused", "draft"]
Stacking: TypeAlias = Literal["stackable", "exclusive", "best_of", "exclusive_units"]
EffectType: TypeAlias = Literal[
    "percent_off",
    "amount_off",
    "fixed_price",
    "bonus_points",
    "points_multiplier",
    "buy_x_get_y",
    "bundle_price",
]
BundlePick: TypeAlias = Literal["cheapest", "most_expensive"]
# Effects that take units of lines, so they can hold them under exclusive_units.
UNIT_EFFECTS = frozenset({"percent_off", "amount_off", "buy_x_get_y", "bundle_price"})
# Effects that repeat in one cart (per group, per bundle), so max_applications can cap them.
REPEATING_EFFECTS = frozenset({"buy_x_get_y", "bundle_price"})
AppliesTo: TypeAlias = Literal["lines", "basket"]
CouponStatus: TypeAlias = Literal["ok", "expired", "used", "not_yours", "unknown"]
RejectReason: TypeAlias = Literal[
    "unknown", "expired", "used", "not_yours", "not_applicable", "limit_reached"
]

Allowance: TypeAlias = int | None
"""How many more times an offer may apply (from its limits and counters); None: unlimited."""

# A near miss is reported once the cart has reached this share of a threshold.
NEAR_MISS_SHARE = Decimal("0.5")
MAX_MONEY = Decimal("10000000")
_CHANNELS = frozenset(c.value for c in Channel)

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Label = Annotated[str, Field(min_length=1, max_length=64)]
Sku = Annotated[str, Field(min_length=1, max_length=64)]
Money = Annotated[
    Decimal, MoneyText, Field(ge=0, le=MAX_MONEY, decimal_places=2), MoneySchema, AfterValidator(cents)
]
PositiveMoney = Annotated[
    Decimal, MoneyText, Field(gt=0, le=MAX_MONEY, decimal_places=2), MoneySchema, AfterValidator(cents)
]
Percent = Annotated[Decimal, BeforeValidator(checked_decimal), Field(gt=0, le=100, decimal_places=2)]
Quantity = Annotated[
    Decimal, QuantityText, Field(gt=0, le=Decimal("100000"), decimal_places=3), QuantitySchema
]


class _Config(Model):
    # Unknown fields are refused, not ignored: a typo in an offer must not pass silently.
    model_config = ConfigDict(extra="forbid")


_MISSING: Any = object()


# ---- offers --------------------------------------------------------------------------------


class Audience(_Config):
    """Who may get the offer. Empty lists and false flags restrict nothing."""

    members_only: bool = False
    tiers: list[Label] = Field(default_factory=list, max_length=50)
    price_groups: list[Id] = Field(default_factory=list, max_length=50)
    segments: list[Label] = Field(default_factory=list, max_length=50)
    first_purchase: bool = Field(default=False, description="true: only on the customer's first purchase")


class OfferWhere(RuleWhere):
    """Where the offer applies: every non-empty list must contain the store's value."""

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, channels: list[str]) -> list[str]:
        unknown = [c for c in channels if c not in _CHANNELS]
        if unknown:
            raise ValueError(f"unknown channel {unknown[0]!r}: use {', '.join(sorted(_CHANNELS))}")
        return channels


class Condition(_Config):
    """What the cart must hold. skus/categories select lines (SKU or category listed)."""

    min_subtotal: PositiveMoney | None = Field(
        default=None, description="spend on the matching lines, at personal prices, before offers"
    )
    skus: list[Sku] = Field(default_factory=list, max_length=1000)
    categories: list[Label] = Field(default_factory=list, max_length=200)
    min_quantity: Count | None = Field(default=None, ge=1, le=100_000, description="units of matching lines")


class Effect(_Config):
    """What the offer gives; see the module documentation for each type's arithmetic."""

    type: EffectType
    value: Factor | None = Field(
        default=None,
        description="percent_off: percent; amount_off: money per unit (lines) or once (basket); "
        "fixed_price: unit price; bundle_price: the price of one bundle; bonus_points: points; "
        "points_multiplier: factor",
        examples=["10"],
    )
    applies_to: AppliesTo = "lines"
    skus: list[Sku] = Field(default_factory=list, max_length=1000)
    categories: list[Label] = Field(default_factory=list, max_length=200)
    buy: Count | None = Field(default=None, ge=1, le=1000, description="buy_x_get_y: units to buy")
    get: Count | None = Field(default=None, ge=1, le=1000, description="buy_x_get_y: units free")
    bundle: Count | None = Field(
        default=None, ge=2, le=1000, description="bundle_price: units in one bundle (value is its price)"
    )
    pick: BundlePick = Field(
        default="cheapest",
        description="bundle_price: which units go into bundles first; the units left over pay full price",
    )
    max_applications: Count | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="buy_x_get_y, bundle_price: at most this many groups or bundles in one cart",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Effect:  # noqa: C901, PLR0912 - one rule per field combination
        kind, value = self.type, self.value
        targeted = bool(self.skus or self.categories)
        if self.max_applications is not None and kind not in REPEATING_EFFECTS:
            raise ValueError(f"max_applications belongs to buy_x_get_y and bundle_price, not {kind}")
        if kind == "bundle_price":
            if self.bundle is None:
                raise ValueError("bundle_price needs bundle: the number of units in one bundle")
        elif self.bundle is not None or self.pick != "cheapest":
            raise ValueError(f"bundle and pick belong to bundle_price, not {kind}")
        if kind == "buy_x_get_y":
            if self.buy is None or self.get is None:
                raise ValueError("buy_x_get_y needs both buy and get")
            if value is not None:
                raise ValueError("buy_x_get_y takes no value (the get units are free)")
        elif self.buy is not None or self.get is not None:
            raise ValueError(f"buy and get belong to buy_x_get_y, not {kind}")
        if kind in ("fixed_price", "buy_x_get_y", "bundle_price"):
            if not targeted:
                raise ValueError(f"{kind} needs a target: effect.skus or effect.categories")
            if self.applies_to != "lines":
                raise ValueError(f"{kind} applies to lines, not the basket")
        if kind == "buy_x_get_y":
            return self
        if value is None:
            raise ValueError(f"{kind} needs a value")
        if not value.is_finite():
            raise ValueError("value must be a finite number")
        if kind == "percent_off" and not 0 < value <= 100:
            raise ValueError(f"percent_off value must be above 0 and at most 100, not {value}")
        if kind == "amount_off" and not 0 < value <= MAX_MONEY:
            raise ValueError(f"amount_off value must be a positive amount up to {MAX_MONEY}, not {value}")
        if kind in ("fixed_price", "bundle_price") and not 0 <= value <= MAX_MONEY:
            raise ValueError(f"{kind} value must be an amount from 0 to {MAX_MONEY}, not {value}")
        if kind == "points_multiplier" and not 1 < value <= 100:
            raise ValueError(f"points_multiplier value must be above 1 and at most 100, not {value}")
        if kind == "bonus_points":
            if value != value.to_integral_value() or not 1 <= value <= 1_000_000:
                raise ValueError(f"bonus_points value must be a whole number from 1 to 1000000, not {value}")
            self.value = Decimal(int(value))
        elif value != value.quantize(Decimal("0.01"), rounding=ROUND_FLOOR):  # in range: cannot overflow
            raise ValueError(f"{kind} value takes at most 2 decimal places, not {value}")
        elif kind in ("amount_off", "fixed_price", "bundle_price"):
            self.value = cents(value)
        return self


class Limits(_Config):
    per_customer: Count | None = Field(
        default=None, ge=1, le=1_000_000, description="sales per customer that may apply the offer"
    )
    budget: Count | None = Field(
        default=None,
        ge=1,
        le=1_000_000_000,
        description="redemptions in total: the number of sales, all customers together, that may apply it",
    )


class Offer(_Config):
    offer_id: Id = Field(default_factory=new_id, description="generated when a new offer leaves it out")
    name: str = Field(min_length=1, max_length=200)
    status: OfferStatus = "active"
    valid_from: Timestamp | None = None
    valid_until: Timestamp | None = Field(default=None, description="exclusive: ends at this instant")
    audience: Audience = Field(default_factory=Audience)
    where: OfferWhere = Field(default_factory=OfferWhere)
    condition: Condition = Field(default_factory=Condition)
    effect: Effect
    requires_coupon: bool = False
    stacking: Stacking = "stackable"
    priority: Count = Field(default=0, ge=-1_000_000, le=1_000_000, description="higher first")
    limits: Limits = Field(default_factory=Limits)
    version: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _dates_in_order(self) -> Offer:
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self

    @field_validator("stacking")
    @classmethod
    def _units_need_a_unit_effect(cls, stacking: Stacking, info: ValidationInfo) -> Stacking:
        effect = info.data.get("effect")  # absent when the effect itself was invalid
        if stacking == "exclusive_units" and effect is not None and effect.type not in UNIT_EFFECTS:
            raise ValueError(
                "exclusive_units needs an effect that discounts units (percent_off, amount_off,"
                f" buy_x_get_y, bundle_price), not {effect.type}"
            )
        return stacking


def unknown_references(
    offer: Offer, *, tiers: Collection[str], stores: Collection[str], price_groups: Collection[str]
) -> list[FieldError]:
    """The tiers, stores and price groups an offer names that do not exist. Each would make the
    offer silently apply to nobody, so saving such an offer is refused, naming every one."""
    errors = [
        FieldError(
            ("body", "audience", "tiers", i), f"unknown tier {tier!r}: the programme has {sorted(tiers)}"
        )
        for i, tier in enumerate(offer.audience.tiers)
        if tier not in tiers
    ]
    errors += [
        FieldError(("body", "where", "stores", i), f"unknown store {store!r}")
        for i, store in enumerate(offer.where.stores)
        if store not in stores
    ]
    errors += [
        FieldError(("body", "audience", "price_groups", i), f"unknown price group {group!r}: create it first")
        for i, group in enumerate(offer.audience.price_groups)
        if group not in price_groups
    ]
    return errors


# ---- price groups --------------------------------------------------------------------------


class PriceGroupMembers(_Config):
    """Who belongs besides those assigned explicitly: a tier listed here, or every attribute matching."""

    tiers: list[Label] = Field(default_factory=list, max_length=50)
    attributes: dict[str, Any] = Field(default_factory=dict, max_length=50)

    _storable = field_validator("attributes")(check_storable)


class GroupPrice(_Config):
    """A personal unit price for a SKU or a category: a price, or a percentage off the shelf price."""

    sku: Sku | None = None
    category: Label | None = None
    price: Money | None = None
    percent_off: Percent | None = None

    @model_validator(mode="after")
    def _one_of_each(self) -> GroupPrice:
        if (self.sku is None) == (self.category is None):
            raise ValueError("a group price names either a sku or a category")
        if (self.price is None) == (self.percent_off is None):
            raise ValueError("a group price gives either a price or a percent_off")
        return self

    def unit_price(self, shelf: Decimal) -> Decimal:
        if self.price is not None:
            return min(self.price, shelf)
        assert self.percent_off is not None
        return cents(shelf * (100 - self.percent_off) / 100)


class PriceGroup(_Config):
    group_id: Id
    name: str = Field(min_length=1, max_length=200)
    members: PriceGroupMembers = Field(default_factory=PriceGroupMembers)
    prices: list[GroupPrice] = Field(default_factory=list, max_length=10_000)

    def includes(self, tier: str | None, attributes: Mapping[str, Any]) -> bool:
        """Membership by rule (explicit assignment is the caller's)."""
        if tier is not None and tier in self.members.tiers:
            return True
        wanted = self.members.attributes
        return bool(wanted) and all(attributes.get(k, _MISSING) == v for k, v in wanted.items())


# ---- the cart ------------------------------------------------------------------------------


class CartLine(_Config):
    model_config = ConfigDict(extra="forbid", frozen=True)
    line_id: str = Field(min_length=1, max_length=64)
    sku: Sku
    category: Label | None = None
    quantity: Quantity
    unit_price: Money


@dataclass(frozen=True, slots=True, kw_only=True)
class CartContext:
    """Who is buying, where and when; everything the caller resolved before evaluating."""

    customer_id: str | None = None
    member: bool = False
    tier: str | None = None
    price_groups: AbstractSet[str] = frozenset()  # assigned explicitly (by an admin)
    segments: AbstractSet[str] = frozenset()
    first_purchase: bool = False
    store: Store
    now: datetime
    attributes: Mapping[str, Any] = field(default_factory=dict)  # profile attributes (price groups)

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("now must be timezone-aware")


class CouponInput(_Config):
    """A coupon code from the cart, already looked up by the caller."""

    code: str = Field(min_length=1, max_length=64)
    offer_id: str | None = None
    status: CouponStatus

    @model_validator(mode="after")
    def _ok_names_offer(self) -> CouponInput:
        if self.status == "ok" and self.offer_id is None:
            raise ValueError("a usable coupon names its offer")
        return self


def remaining_uses(limits: Limits, *, used_by_customer: int = 0, used_in_total: int = 0) -> Allowance:
    """The allowance for an offer from its limits and the caller's counters."""
    left = []
    if limits.per_customer is not None:
        left.append(limits.per_customer - used_by_customer)
    if limits.budget is not None:
        left.append(limits.budget - used_in_total)
    return max(0, min(left)) if left else None
