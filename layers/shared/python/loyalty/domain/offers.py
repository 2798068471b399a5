"""Real-time cart offers, personal prices and personal coupons: the pure offer engine.

Nothing here does I/O or reads a clock: the caller resolves the customer, the store, the coupons
(their status) and the offers' remaining allowances, and passes ``now`` in the context.

How a cart is evaluated, in order:

1. **Personal prices from price groups.** A customer belongs to the groups the caller assigned
   (``CartContext.price_groups``) and to every group whose ``members`` rule matches their tier or
   profile attributes. Each group entry gives a unit price (``price``, or ``percent_off`` the
   shelf price, rounded half-up to cents) for a SKU or a category; the lowest applicable price wins
   (ties: lowest ``group_id``), and a group never raises a price above ``unit_price``.
2. **Which offers apply.** The index hands over only the offers that can match the cart (by SKU,
   category, store or channel); each is checked in a fixed order and the first failed condition
   is its reason (status, dates, where, audience, coupon, limits, products, thresholds). The
   thresholds are measured on the personal prices from step 1, before any offer.
   ``condition.skus``/``categories`` (and ``effect.skus``/``categories``) match a line whose SKU
   *or* category is listed; both empty means every line. ``min_quantity`` and ``min_subtotal``
   count the lines matching the condition. ``audience.first_purchase: false`` means "anyone";
   ``true`` means only a customer's first purchase. An offer with a per-customer limit never
   applies to an anonymous cart (nothing to count it against).
3. **Stacking**, over the offers that would give something, in the order priority (higher first),
   exclusive before exclusive_units before others at the same priority, then ``offer_id``:

   - ``exclusive``: applies alone (cart level). If nothing has applied yet when it is reached,
     it applies (of several exclusive offers at that same priority, the one that gives most) and
     blocks every offer after it; if a higher-priority offer already applied, it is skipped.
   - ``best_of``: all best_of offers compete, once, where the first of them is reached: the one
     that gives most applies (ties: higher priority, then ``offer_id``); it stacks with stackables.
   - ``stackable``: applies.
   - ``exclusive_units``: per-unit exclusivity (step 5a). A unit held by one exclusive_units
     offer is not available to another exclusive_units offer; stackable and best_of offers
     still combine with it (they say so explicitly). Here they go on like stackables; an
     exclusive offer reached after one of them whose conditions hold is skipped.

   "Gives most" compares, for each offer alone on the step-1 prices: money off, then bonus points,
   then multiplier.
4. **Fixed personal prices**: applied ``fixed_price`` offers set the unit ``price`` of their lines
   (the lowest wins; never above the step-1 price). Like price groups they show in ``price`` and in
   ``personal_prices``, not in ``discounts``.
5. **Discounts**: the other applied offers, one after the other in the stacking order above, each
   on what is left of each line after the earlier ones (so 10% then 10% is 19%), never below zero.
   Per effect:

   - ``percent_off`` on ``lines``: value % of each target line's remaining amount, rounded half-up
     to cents per line. On ``basket``: value % of the target lines' remaining total, rounded once.
   - ``amount_off`` on ``lines``: value off **per unit** of each target line (so one line of 3 and
     three lines of 1 get the same), capped at what is left of the line. On ``basket``: value off
     once per cart (capped at the target lines' remaining total).
   - ``buy_x_get_y``: for every ``buy`` + ``get`` whole units of the target lines, the ``get``
     cheapest units (by what is left per unit) are free; at most ``max_applications`` groups.
     A group is made of the cheapest units (the free ones and the ones bought).
   - ``bundle_price``: whole units of the target lines, cheapest first (``pick:
     "most_expensive"``: dearest first; ties: cart order), in bundles of ``bundle`` units, each
     bundle costing ``value``; at most ``max_applications`` bundles. A bundle's saving (what its
     units are worth now minus the price) is split over its units pro rata to their value by
     largest remainder. A bundle that would cost at least what its units are worth is not
     formed (its units stay free, at full price), nor are the units left over.
   - ``bonus_points``: ``value`` points once per cart when a target line is in it.
   - ``points_multiplier``: reported in ``multipliers`` with the target lines; the caller computes
     the points (the engine knows no earn rates). Points are reported whoever the customer is; only
     members earn them.

   5a. **exclusive_units offers** are taken together, one priority at a time, where their turn
   comes in the order above. Each is checked then (not before), and only if one of its target
   lines still has a free unit; its conditions count only the units still free for it
   (``min_quantity`` their quantity, ``min_subtotal`` their value at the step-1 prices). The
   offers of that priority go in the order of what each would give on the free units (most
   first; ties: consideration order), each on the units the ones before it left free, and
   hold the units they act on: every unit of its target lines for ``percent_off`` /
   ``amount_off`` (lines and basket alike), the units of its groups for ``buy_x_get_y`` (bought
   and free), the units of its bundles for ``bundle_price``. A stacking offer's money on a line
   with held units comes off the held and the free part pro rata to what is left of each.

   A basket-level amount is allocated to its lines pro rata to what is left of each, by the
   largest-remainder method (ties: cart order), so line discounts add up to the amount exactly
   and no line goes below zero. An offer chosen in step 3 that ends up giving nothing here (a
   lower fixed price won, or earlier offers left nothing) is dropped and explained as such.
6. **Near misses**: an offer that fails only on ``min_subtotal`` or only on ``min_quantity``, with
   the cart at :data:`NEAR_MISS_SHARE` of the threshold or more, gives "spend 5.30 more for 10% off
   coffee" / "add 1 more coffee for ..."; a ``buy_x_get_y`` offer one group short gives "add 1 more
   coffee to get 1 free", a ``bundle_price`` offer at least half a bundle short "add 1 more coffee
   to get 2 coffee for 5.00" — neither once ``max_applications`` is reached. An exclusive_units
   offer's near miss counts its free units, and is not given while another offer holds units of
   its lines (more of them could go to that offer instead).

``explain=True`` checks every offer of the index (paused and draft ones too, not only the
candidates) and gives each its reason: "applied", or the first failed condition ("channel pos not
in [online]", "tier bronze not in [silver, gold]", "needs coupon", "min_subtotal 20.00 not reached
(14.70)", "valid_until passed (...)", "paused", "limit reached"), or what beat it ("blocked by
exclusive offer X", "best_of offer X gives more", "no units free: ... line 1 (2 held by X)").
Each explanation also lists ``units``: for an applied offer, the part of each line it acted on
(held, for exclusive_units) and the money it took off there; and ``unavailable``: for an
exclusive_units offer that did not apply, the units of its target lines other offers held. Nothing
else in the evaluation changes.

Totals: ``subtotal`` = Σ round(quantity x unit_price); ``personal_subtotal`` = Σ round(quantity x
price); ``discount_total`` = Σ line discounts = Σ ``discounts[].amount`` (offers only; personal-price
savings are ``subtotal - personal_subtotal`` and are itemised in ``personal_prices``);
``total`` = ``personal_subtotal - discount_total``.

Limits: ``limits.per_customer`` counts this customer's sales that applied the offer,
``limits.budget`` counts every sale that applied it (redemptions, not money). The caller turns its
counters into an :data:`Allowance` per offer (see :func:`remaining_uses`); an offer counts once
per cart (however many groups or bundles it forms there), so any allowance above zero lets it
apply.

Speed: the index compiles each offer once (sets, cents, whether it restricts anything beyond its
products); a cart answers each distinct condition once, however many offers share it, and an
exclusive_units offer whose units are all held costs one dictionary look-up.

Coupons arrive already resolved (:class:`CouponInput`). A coupon with status ``ok`` unlocks its
offer's ``requires_coupon``; the first ``ok`` coupon per offer (in the order given) is used and
reported on what the offer applied, for the sale to consume. Coupons not used are returned in
``rejected_coupons``: their own status, or ``limit_reached`` / ``not_applicable``.

Same input, same output: every choice is ordered (priority, offer_id, cart order), nothing depends
on the order of the offers or price groups given.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from loyalty.domain.attributes import check_storable
from loyalty.domain.errors import FieldError, ValidationFailed
from loyalty.domain.ids import new_id
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


class _Config(BaseModel):
    # Unknown fields are refused, not ignored: a typo in an offer must not pass silently.
    model_config = ConfigDict(extra="forbid")


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
    def _consistent(self) -> Effect:
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


# ---- the result ----------------------------------------------------------------------------


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


# ---- the index -----------------------------------------------------------------------------

_MISSING: Any = object()
APPLIED = "applied"
LIMIT_REACHED = "limit reached"
UNITS_TAKEN = "no units free: every target unit is held by another exclusive_units offer"


_RANK = {"exclusive": 0, "exclusive_units": 1, "stackable": 2, "best_of": 2}


def _order_key(offer: Offer) -> tuple[int, int, str]:
    return (-offer.priority, _RANK[offer.stacking], offer.offer_id)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """An offer with its lists turned into sets and its numbers into integers, once per index."""

    offer: Offer
    cond_skus: frozenset[str]
    cond_categories: frozenset[str]
    effect_skus: frozenset[str]
    effect_categories: frozenset[str]
    channels: frozenset[str]
    stores: frozenset[str]
    formats: frozenset[str]
    tiers: frozenset[str]
    price_groups: frozenset[str]
    segments: frozenset[str]
    min_subtotal: int | None  # cents
    value_cents: int | None  # amount_off, fixed_price, bundle_price
    percent_bp: int | None  # percent_off, in hundredths of a percent
    # Compiled once so a cart pays only for what the offer really restricts:
    live: bool  # status active
    gated: bool  # anything to check about the store, audience, coupon or limits
    units: bool  # exclusive_units
    deferred: bool  # a live exclusive_units offer: checked in its turn, not with the others
    thresholds: bool  # condition.min_quantity or min_subtotal
    priority: int
    cond_key: int  # condition.skus/categories, numbered per index (lines matching it are cached per cart)
    effect_key: int
    cart_key: int  # the whole cart condition (lists as written, thresholds): its answer is cached per cart
    kind: str  # effect.type
    basket: bool  # effect.applies_to == "basket"

    @classmethod
    def of(cls, offer: Offer, cond_key: int = 0, effect_key: int = 0, cart_key: int = 0) -> _Prepared:
        effect, where, audience, condition = offer.effect, offer.where, offer.audience, offer.condition
        value = effect.value
        gated = bool(
            where.channels
            or where.stores
            or where.store_formats
            or where.store_attributes
            or audience.members_only
            or audience.tiers
            or audience.price_groups
            or audience.segments
            or audience.first_purchase
            or offer.requires_coupon
            or offer.limits.per_customer is not None
            or offer.limits.budget is not None
        )
        return cls(
            offer=offer,
            live=offer.status == "active",
            gated=gated,
            units=offer.stacking == "exclusive_units",
            deferred=offer.stacking == "exclusive_units" and offer.status == "active",
            priority=offer.priority,
            thresholds=condition.min_quantity is not None or condition.min_subtotal is not None,
            cond_key=cond_key,
            effect_key=effect_key,
            cart_key=cart_key,
            kind=effect.type,
            basket=effect.applies_to == "basket",
            cond_skus=frozenset(condition.skus),
            cond_categories=frozenset(condition.categories),
            effect_skus=frozenset(effect.skus),
            effect_categories=frozenset(effect.categories),
            channels=frozenset(where.channels),
            stores=frozenset(where.stores),
            formats=frozenset(where.store_formats),
            tiers=frozenset(audience.tiers),
            price_groups=frozenset(audience.price_groups),
            segments=frozenset(audience.segments),
            min_subtotal=_to_cents(condition.min_subtotal) if condition.min_subtotal is not None else None,
            value_cents=(
                _to_cents(value)
                if value is not None and effect.type in ("amount_off", "fixed_price", "bundle_price")
                else None
            ),
            percent_bp=_to_cents(value) if value is not None and effect.type == "percent_off" else None,
        )


class OfferIndex:
    """Offers indexed by what they target, so a cart only looks at offers that could match it.

    Each live offer is filed under one key, the most selective it has: a coupon-gated offer under
    its own id (looked at only when the cart carries a usable coupon for it); else its condition's
    SKUs and categories (a cart without one cannot meet the condition); else its effect's (nothing
    to act on without them); else its stores; else its channels; else in the small bucket every
    cart looks at. Paused and draft offers are kept for ``explain`` only. Build once, reuse for
    many carts: the index is immutable.
    """

    __slots__ = (
        "_by_category",
        "_by_channel",
        "_by_coupon",
        "_by_sku",
        "_by_store",
        "_entries",
        "_everywhere",
        "_where",
    )

    def __init__(self, entries: tuple[_Prepared, ...], buckets: dict[str, dict[str, list[int]]]) -> None:
        def frozen(kind: str) -> dict[str, tuple[int, ...]]:
            return {key: tuple(positions) for key, positions in buckets.get(kind, {}).items()}

        self._entries = entries
        self._where = {entry.offer.offer_id: pos for pos, entry in enumerate(entries)}
        self._by_coupon = frozen("coupon")
        self._by_sku = frozen("sku")
        self._by_category = frozen("category")
        self._by_store = frozen("store")
        self._by_channel = frozen("channel")
        self._everywhere = frozen("everywhere").get("", ())

    @classmethod
    def build(cls, offers: Sequence[Offer]) -> OfferIndex:
        seen: set[str] = set()
        for offer in offers:
            if offer.offer_id in seen:
                raise ValueError(f"offer {offer.offer_id!r} is given twice")
            seen.add(offer.offer_id)
        keys: dict[tuple[frozenset[str], frozenset[str]], int] = {}
        conditions: dict[tuple[Any, ...], int] = {}

        def key(skus: Sequence[str], categories: Sequence[str]) -> int:
            return keys.setdefault((frozenset(skus), frozenset(categories)), len(keys))

        def cart_key(offer: Offer) -> int:
            c, e = offer.condition, offer.effect
            written = (tuple(c.skus), tuple(c.categories), c.min_quantity, c.min_subtotal)
            return conditions.setdefault((*written, tuple(e.skus), tuple(e.categories)), len(conditions))

        entries = tuple(
            _Prepared.of(
                o,
                key(o.condition.skus, o.condition.categories),
                key(o.effect.skus, o.effect.categories),
                cart_key(o),
            )
            for o in sorted(offers, key=_order_key)
        )
        buckets: dict[str, dict[str, list[int]]] = {}
        for pos, entry in enumerate(entries):
            if entry.offer.status != "active":
                continue
            filed: list[tuple[str, str]]
            if entry.offer.requires_coupon:
                filed = [("coupon", entry.offer.offer_id)]
            elif entry.cond_skus or entry.cond_categories:
                filed = [("sku", s) for s in entry.cond_skus] + [
                    ("category", c) for c in entry.cond_categories
                ]
            elif entry.effect_skus or entry.effect_categories:
                filed = [("sku", s) for s in entry.effect_skus]
                filed += [("category", c) for c in entry.effect_categories]
            elif entry.stores:
                filed = [("store", s) for s in entry.stores]
            elif entry.channels:
                filed = [("channel", c) for c in entry.channels]
            else:
                filed = [("everywhere", "")]
            for kind, where in filed:
                buckets.setdefault(kind, {}).setdefault(where, []).append(pos)
        return cls(entries, buckets)

    @property
    def offers(self) -> tuple[Offer, ...]:
        """Every offer given to build, in the order they are considered."""
        return tuple(e.offer for e in self._entries)

    @property
    def live_count(self) -> int:
        return sum(1 for e in self._entries if e.offer.status == "active")

    def __len__(self) -> int:
        return len(self._entries)

    def candidates(
        self, lines: Iterable[CartLine], store: Store, coupons: Iterable[CouponInput] = ()
    ) -> list[Offer]:
        """The offers a cart has to look at: a superset of those that can apply to it."""
        lines = list(lines)
        positions = self._positions(
            {line.sku for line in lines},
            {line.category for line in lines if line.category is not None},
            store,
            {c.offer_id for c in coupons if c.status == "ok" and c.offer_id is not None},
        )
        return [self._entries[p].offer for p in positions]

    def _positions(
        self, skus: Iterable[str], categories: Iterable[str], store: Store, coupon_offers: Iterable[str]
    ) -> list[int]:
        found: set[int] = set(self._everywhere)
        for offer_id in coupon_offers:
            found.update(self._by_coupon.get(offer_id, ()))
        for sku in skus:
            found.update(self._by_sku.get(sku, ()))
        for category in categories:
            found.update(self._by_category.get(category, ()))
        found.update(self._by_store.get(store.store_id, ()))
        found.update(self._by_channel.get(str(store.channel), ()))
        return sorted(found)


# ---- numbers: the engine counts money in integer cents and quantities in thousandths ----------


def _half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-up (both non-negative, denominator above zero)."""
    return (2 * numerator + denominator) // (2 * denominator)


def _to_cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value(rounding=ROUND_HALF_UP))


_CENT = Decimal("0.01")


def _money(amount_cents: int) -> Decimal:
    return Decimal(amount_cents) * _CENT  # exact, and always two places


def _quantity(milli: int) -> str:
    return _num(Decimal(milli).scaleb(-3))


def _allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` cents pro rata to ``weights`` by largest remainder (ties: first); total ≤ Σ."""
    whole = sum(weights)
    if total <= 0 or whole <= 0:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    remainders = [total * w % whole for w in weights]
    left = total - sum(shares)
    if left:
        for i in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
            shares[i] += 1
    return shares


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _listed(values: Iterable[str]) -> str:
    return "[" + ", ".join(values) + "]"  # in the offer's own order


def _json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def _products(skus: Sequence[str], categories: Sequence[str]) -> str:
    return ", ".join([*categories, *skus])


def _which(skus: Sequence[str], categories: Sequence[str]) -> str:
    parts = []
    if skus:
        parts.append(f"skus {_listed(skus)}")
    if categories:
        parts.append(f"categories {_listed(categories)}")
    return " or ".join(parts)


def describe_effect(effect: Effect) -> str:
    """What the offer gives, in words for a customer ("10% off coffee")."""
    named = _products(effect.skus, effect.categories)
    target = named or ("your basket" if effect.applies_to == "basket" else "every item")
    value = effect.value if effect.value is not None else Decimal(0)
    match effect.type:
        case "percent_off":
            return f"{_num(value)}% off {target}"
        case "amount_off":
            each = "each " if effect.applies_to == "lines" and named else ""
            return f"{value} off {each}{target}"
        case "fixed_price":
            return f"{named} at {value}"
        case "bonus_points":
            return f"{int(value)} bonus points" + (f" with {named}" if named else "")
        case "points_multiplier":
            return f"{_num(value)}x points on {target}"
        case "bundle_price":
            cap = f" (up to {effect.max_applications})" if effect.max_applications is not None else ""
            return f"{effect.bundle} {named} for {value}{cap}"
        case _:
            cap = f" (up to {effect.max_applications} times)" if effect.max_applications is not None else ""
            return f"buy {effect.buy} get {effect.get} free on {named}{cap}"


# ---- evaluation ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Line:
    line_id: str
    sku: str
    category: str | None
    unit_price: Decimal
    milli: int  # quantity in thousandths
    price: int  # personal unit price, cents
    gross: int  # cents: quantity x unit_price
    base: int  # cents: quantity x price
    before_offers: int  # cents: base from price groups, before fixed_price offers (thresholds)
    discount: int = 0  # cents taken by offers so far
    # The part no exclusive_units offer holds yet: its quantity and what is left of its money.
    free_milli: int = 0
    free_left: int = 0
    holders: list[tuple[str, int]] | None = None  # (offer_id, milli held), in the order they took


class _Cart:
    """The cart at personal prices, with its lines looked up by SKU and category."""

    __slots__ = ("all", "answers", "by_category", "by_sku", "group_savings", "groups", "lines", "matched")

    def __init__(
        self, lines: Sequence[CartLine], context: CartContext, price_groups: Sequence[PriceGroup]
    ) -> None:
        self.groups = set(context.price_groups) | {
            g.group_id for g in price_groups if g.includes(context.tier, context.attributes)
        }
        sku_prices: dict[str, list[tuple[str, GroupPrice]]] = {}
        category_prices: dict[str, list[tuple[str, GroupPrice]]] = {}
        for group in sorted(price_groups, key=lambda g: g.group_id):
            if group.group_id not in self.groups:
                continue
            for entry in group.prices:
                if entry.sku is not None:
                    sku_prices.setdefault(entry.sku, []).append((group.group_id, entry))
                elif entry.category is not None:
                    category_prices.setdefault(entry.category, []).append((group.group_id, entry))
        self.lines: list[_Line] = []
        self.by_sku: dict[str, list[int]] = {}
        self.by_category: dict[str, list[int]] = {}
        self.group_savings: dict[str, list[tuple[int, int]]] = {}  # group -> (line, cents saved)
        self.matched: dict[int, list[int]] = {}  # an index's sku/category key -> lines (see lines_for)
        # an index's cart condition -> (reason, start of a near-miss message, targets)
        self.answers: dict[int, tuple[str | None, str | None, list[int]]] = {}
        seen: set[str] = set()
        for i, line in enumerate(lines):
            if line.line_id in seen:
                raise ValidationFailed.at(("lines", i, "line_id"), f"duplicate line_id {line.line_id!r}")
            seen.add(line.line_id)
            shelf = _to_cents(line.unit_price)
            price, source = shelf, None
            entries = sku_prices.get(line.sku, [])
            if line.category is not None and line.category in category_prices:
                entries = entries + category_prices[line.category]
            for group_id, entry in entries:  # lowest price wins; ties: lowest group id
                candidate = _to_cents(entry.unit_price(line.unit_price))
                if candidate < price or (candidate == price and source is not None and group_id < source):
                    price, source = candidate, group_id
            milli = int((line.quantity * 1000).to_integral_value(rounding=ROUND_HALF_UP))
            gross, base = _half_up(milli * shelf, 1000), _half_up(milli * price, 1000)
            self.lines.append(
                _Line(line.line_id, line.sku, line.category, line.unit_price, milli, price, gross, base, base)
            )
            if source is not None and base < gross:
                self.group_savings.setdefault(source, []).append((i, gross - base))
            self.by_sku.setdefault(line.sku, []).append(i)
            if line.category is not None:
                self.by_category.setdefault(line.category, []).append(i)
        self.all = list(range(len(self.lines)))

    def matching(self, skus: frozenset[str], categories: frozenset[str]) -> list[int]:
        """Lines whose SKU or category is listed (every line when nothing is), in cart order."""
        if not skus and not categories:
            return self.all
        if len(skus) + len(categories) > len(self.lines):
            return [i for i, line in enumerate(self.lines) if line.sku in skus or line.category in categories]
        found: set[int] = set()
        for sku in skus:
            found.update(self.by_sku.get(sku, ()))
        for category in categories:
            found.update(self.by_category.get(category, ()))
        return sorted(found)

    def lines_for(self, key: int, skus: frozenset[str], categories: frozenset[str]) -> list[int]:
        """``matching``, once per cart for each distinct list: on a dense catalogue many offers
        target the same category."""
        found = self.matched.get(key)
        if found is None:
            found = self.matched[key] = self.matching(skus, categories)
        return found

    def start_units(self) -> None:
        """Personal prices are final (fixed prices included): every unit is free to be held."""
        for line in self.lines:
            line.free_milli, line.free_left = line.milli, line.base


@dataclass(slots=True)
class _Trial:
    """What an offer gives on its own, on the personal prices from price groups."""

    targets: list[int]
    per_line: dict[int, int] = field(default_factory=dict)  # cents off (saved, for fixed_price)
    bonus: int = 0
    multiplier: Decimal | None = None
    money_off: bool = False  # a money effect gives something (per_line left empty: not compared)

    @property
    def key(self) -> tuple[int, int, Decimal]:
        return (sum(self.per_line.values()), self.bonus, self.multiplier or Decimal(0))

    @property
    def gives(self) -> bool:
        return (
            bool(self.per_line)
            or self.money_off
            or self.bonus > 0
            or (self.multiplier is not None and bool(self.targets))
        )


@dataclass(slots=True)
class _Off:
    """What a money effect takes: cents off per line (no zeros) and, per line, the quantity (milli)
    it acts on and what that part was worth before it (for exclusive_units offers: what they hold)."""

    off: dict[int, int]
    taken: dict[int, tuple[int, int]]  # line -> (milli, cents it was worth)
    applications: int = 0  # groups or bundles formed (buy_x_get_y, bundle_price)


def _money_off(
    entry: _Prepared, cart: _Cart, targets: list[int], units: bool = False, split: bool = True
) -> _Off:
    """A money effect on what is left of the target lines now.

    ``units``: on the part of each line no exclusive_units offer holds (its quantity, what is left
    of its money) — an exclusive_units offer can only take units still free for it. Otherwise on
    the whole line, held units included (a stacking offer combines with anything). ``split``
    False: only the total counts (ranking), so a bundle's saving is not split over its lines.
    """
    lines = cart.lines
    if units:
        qty = [lines[i].free_milli for i in targets]
        left = [lines[i].free_left for i in targets]
    else:
        qty = [lines[i].milli for i in targets]
        left = [lines[i].base - lines[i].discount for i in targets]
    kind = entry.kind
    applications = 0
    off: list[int]
    take: list[int]
    worth: list[int]
    if kind == "percent_off":
        assert entry.percent_bp is not None
        bp = entry.percent_bp
        if entry.basket:
            off = _allocate(_half_up(sum(left) * bp, 10_000), left)
        else:
            off = [_half_up(amount * bp, 10_000) for amount in left]
        take, worth = qty, left
    elif kind == "amount_off":
        assert entry.value_cents is not None
        value = entry.value_cents
        if entry.basket:
            off = _allocate(min(value, sum(left)), left)
        else:
            off = [min(amount, _half_up(q * value, 1000)) for q, amount in zip(qty, left, strict=True)]
        take, worth = qty, left
    elif kind == "buy_x_get_y":
        off, take, worth, applications = _free_units(entry.offer.effect, qty, left)
    elif kind == "bundle_price":
        off, take, worth, applications = _bundles(entry, qty, left, split)
    else:
        return _Off({}, {})
    result = {i: amount for i, amount in zip(targets, off, strict=True) if amount > 0}
    repeating = kind in REPEATING_EFFECTS
    taken = {
        i: (take[k], worth[k])
        for k, i in enumerate(targets)
        if take[k] > 0 and (off[k] > 0 or repeating)  # the bought units of a group count as taken
    }
    return _Off(result, taken, applications)


def _by_unit_value(qty: list[int], left: list[int], whole: list[int], dearest: bool) -> list[int]:
    """Positions with whole units, cheapest unit first (or dearest first); ties: cart order."""
    ks = [k for k in range(len(qty)) if whole[k]]
    if len(ks) < 2:
        return ks
    # left / qty scaled by 10**18 and floored: two different values (cents over at most 10**8
    # thousandths) differ by at least 10**-16, so the order is the exact one, without Fractions.
    if dearest:
        return sorted(ks, key=lambda k: (-(left[k] * _SCALE // qty[k]), k))
    return sorted(ks, key=lambda k: (left[k] * _SCALE // qty[k], k))


_SCALE = 10**18


def _part(left: int, qty: int, start: int, stop: int) -> int:
    """What units [start, stop) (in milli) of a part worth ``left`` over ``qty`` are worth; the parts
    of one line add up to ``left`` exactly."""
    return _half_up(left * stop, qty) - _half_up(left * start, qty)


def _free_units(
    effect: Effect, qty: list[int], left: list[int]
) -> tuple[list[int], list[int], list[int], int]:
    """buy_x_get_y: every buy + get whole units (up to max_applications groups), the get cheapest
    units free; the group's units are the cheapest ones."""
    assert effect.buy is not None
    assert effect.get is not None
    size = effect.buy + effect.get
    whole = [q // 1000 for q in qty]
    groups = sum(whole) // size
    if effect.max_applications is not None:
        groups = min(groups, effect.max_applications)
    free, grouped = groups * effect.get, groups * size
    n = len(qty)
    off, take, worth = [0] * n, [0] * n, [0] * n
    for k in _by_unit_value(qty, left, whole, dearest=False):
        if grouped <= 0:
            break
        units = min(whole[k], grouped)
        grouped -= units
        take[k] = units * 1000
        worth[k] = _part(left[k], qty[k], 0, units * 1000)
        gratis = min(units, free)
        free -= gratis
        if gratis:
            off[k] = _part(left[k], qty[k], 0, gratis * 1000)
    return off, take, worth, groups


def _bundles(
    entry: _Prepared, qty: list[int], left: list[int], split: bool = True
) -> tuple[list[int], list[int], list[int], int]:
    """bundle_price: whole units in bundles of ``bundle`` in ``pick`` order, each bundle costing
    the price (its saving split over its units pro rata to their value, largest remainder); a
    bundle that would cost at least as much as its units is not formed and its units stay free
    at full price, as do the units left over."""
    effect = entry.offer.effect
    assert effect.bundle is not None
    assert entry.value_cents is not None
    size, price, cap = effect.bundle, entry.value_cents, effect.max_applications
    whole = [q // 1000 for q in qty]
    n = len(qty)
    off, take, worth, used = [0] * n, [0] * n, [0] * n, [0] * n
    order = _by_unit_value(qty, left, whole, dearest=effect.pick == "most_expensive")
    at, formed = 0, 0
    while cap is None or formed < cap:
        parts: list[tuple[int, int, int]] = []  # (position, units, their value)
        need = size
        while need and at < len(order):
            k = order[at]
            units = min(whole[k] - used[k], need)
            parts.append((k, units, _part(left[k], qty[k], used[k] * 1000, (used[k] + units) * 1000)))
            used[k] += units
            need -= units
            if used[k] == whole[k]:
                at += 1
        if need:
            break  # not enough units left for a bundle: they pay full price
        value = sum(v for _, _, v in parts)
        if value <= price:
            continue
        if split:
            shares = _allocate(value - price, [v for _, _, v in parts])
        else:
            shares = [value - price] + [0] * (len(parts) - 1)
        for (k, units, v), share in zip(parts, shares, strict=True):
            off[k] += share
            take[k] += units * 1000
            worth[k] += v
        formed += 1
    return off, take, worth, formed


def _gives_money(entry: _Prepared, cart: _Cart, targets: list[int]) -> bool:
    """Whether ``_money_off`` on the untouched cart would give anything, without computing it all."""
    lines = cart.lines
    if entry.kind == "percent_off":
        assert entry.percent_bp is not None
        if entry.basket:
            return _half_up(sum(lines[i].base for i in targets) * entry.percent_bp, 10_000) > 0
        return any(_half_up(lines[i].base * entry.percent_bp, 10_000) > 0 for i in targets)
    if entry.kind == "amount_off":
        assert entry.value_cents is not None
        if entry.basket:
            return any(lines[i].base > 0 for i in targets)
        value = entry.value_cents
        return any(lines[i].base > 0 and _half_up(lines[i].milli * value, 1000) > 0 for i in targets)
    return bool(_money_off(entry, cart, targets).off)


def _trial(entry: _Prepared, cart: _Cart, targets: list[int], compare: bool) -> _Trial:
    """What the offer gives alone; money amounts only when ``compare`` (exclusive, best_of) needs them."""
    effect = entry.offer.effect
    trial = _Trial(targets)
    kind = entry.kind
    if kind == "bonus_points":
        assert effect.value is not None
        trial.bonus = int(effect.value)
    elif kind == "points_multiplier":
        trial.multiplier = effect.value
    elif kind == "fixed_price":
        assert entry.value_cents is not None
        for i in targets:
            line = cart.lines[i]
            if entry.value_cents < line.price:
                trial.per_line[i] = line.base - _half_up(line.milli * entry.value_cents, 1000)
    elif compare:
        trial.per_line = _money_off(entry, cart, targets).off
    else:
        trial.money_off = _gives_money(entry, cart, targets)
    return trial


def _units(cart: _Cart, targets: list[int], free: bool = False) -> int:
    lines = cart.lines
    if free:
        return sum(lines[i].free_milli // 1000 for i in targets)
    return sum(lines[i].milli // 1000 for i in targets)


def _why_nothing(entry: _Prepared, cart: _Cart, targets: list[int]) -> str:
    effect = entry.offer.effect
    if effect.type == "fixed_price":
        return f"price already at or below {effect.value}"
    if effect.type == "buy_x_get_y":
        assert effect.buy is not None
        assert effect.get is not None
        return (
            f"buy {effect.buy} get {effect.get}: {_units(cart, targets)} of {effect.buy + effect.get} units"
        )
    if effect.type == "bundle_price":
        units = _units(cart, targets)
        if units < (effect.bundle or 0):
            return f"bundle of {effect.bundle}: {units} units"
        return f"no bundle of {effect.bundle} costs more than {effect.value}"
    return "nothing to discount"


def _repeat_near_miss(
    entry: _Prepared, units: int, applications: int, named_units: str | None = None
) -> NearMiss | None:
    """ "add 1 more coffee to get 1 free" / "add 1 more coffee to get 2 coffee for 5.00", when the
    cart is short of one more group or bundle and the offer's cap would still allow it."""
    effect = entry.offer.effect
    cap = effect.max_applications
    if cap is not None and applications >= cap:
        return None
    named = named_units or _products(effect.skus, effect.categories)
    if effect.type == "buy_x_get_y":
        assert effect.buy is not None
        assert effect.get is not None
        group = effect.buy + effect.get
        if units % group < effect.buy:
            return None
        missing = group - units % group
        more = " more" if units >= group else ""
        return NearMiss(entry.offer.offer_id, f"add {missing} more {named} to get {effect.get}{more} free")
    assert effect.bundle is not None
    rest = units % effect.bundle
    if rest == 0 or 2 * rest < effect.bundle:  # less than half a bundle: not near
        return None
    missing = effect.bundle - rest
    return NearMiss(
        entry.offer.offer_id,
        f"add {missing} more {named} to get {effect.bundle} for {effect.value}",
    )


class _Checker:
    """Whether one offer's conditions hold; the first failed condition is the reason."""

    __slots__ = ("allowances", "cart", "context", "coupon_for", "coupon_problem")

    def __init__(
        self,
        cart: _Cart,
        context: CartContext,
        coupon_for: dict[str, str],
        coupon_problem: dict[str, str],
        allowances: Mapping[str, Allowance],
    ) -> None:
        self.cart = cart
        self.context = context
        self.coupon_for = coupon_for
        self.coupon_problem = coupon_problem
        self.allowances = allowances

    def check(self, entry: _Prepared) -> tuple[str | None, NearMiss | None, list[int]]:
        """(why it does not apply, or None; a near miss; the lines it acts on)."""
        if not entry.live:
            return str(entry.offer.status), None, []
        offer, now = entry.offer, self.context.now
        if offer.valid_from is not None and now < offer.valid_from:
            return f"not valid before {offer.valid_from.isoformat()}", None, []
        if offer.valid_until is not None and now >= offer.valid_until:
            return f"valid_until passed ({offer.valid_until.isoformat()})", None, []
        if entry.gated or (self.allowances and offer.offer_id in self.allowances):
            reason = self._offer_conditions(entry)
            if reason is not None:
                return reason, None, []
        return self._cart_conditions(entry)

    def _offer_conditions(self, entry: _Prepared) -> str | None:
        """Store, audience, coupon and limits (dates are checked before)."""
        offer, ctx, store = entry.offer, self.context, self.context.store
        if entry.channels and str(store.channel) not in entry.channels:
            return f"channel {store.channel} not in {_listed(offer.where.channels)}"
        if entry.stores and store.store_id not in entry.stores:
            return f"store {store.store_id} not in {_listed(offer.where.stores)}"
        if entry.formats and store.format not in entry.formats:
            return f"store format {store.format or 'none'} not in {_listed(offer.where.store_formats)}"
        for key, wanted in sorted(offer.where.store_attributes.items()):
            actual = store.attributes.get(key, _MISSING)
            if actual is _MISSING:
                return f"store attribute {key} missing, needs {_json(wanted)}"
            if actual != wanted:
                return f"store attribute {key} is {_json(actual)}, needs {_json(wanted)}"
        if offer.audience.members_only and not ctx.member:
            return "members only"
        if entry.tiers and ctx.tier not in entry.tiers:
            return f"tier {ctx.tier or 'none'} not in {_listed(offer.audience.tiers)}"
        if entry.price_groups and entry.price_groups.isdisjoint(self.cart.groups):
            return f"not in any of price groups {_listed(offer.audience.price_groups)}"
        if entry.segments and entry.segments.isdisjoint(ctx.segments):
            return f"not in any of segments {_listed(offer.audience.segments)}"
        if offer.audience.first_purchase and not ctx.first_purchase:
            return "not a first purchase"
        if offer.requires_coupon and offer.offer_id not in self.coupon_for:
            problem = self.coupon_problem.get(offer.offer_id)
            return "needs coupon" + (f" ({problem})" if problem else "")
        if offer.limits.per_customer is not None and ctx.customer_id is None:
            return "per-customer limit needs an identified customer"
        allowance = self.allowances.get(offer.offer_id)
        if allowance is not None and allowance <= 0:
            return LIMIT_REACHED
        return None

    def _cart_conditions(
        self, entry: _Prepared, free: bool = False
    ) -> tuple[str | None, NearMiss | None, list[int]]:
        """The cart conditions; ``free``: counting only the units no exclusive_units offer holds.

        On the whole cart the answer is the same for every offer with the same condition and
        targets, so it is worked out once per cart (a dense catalogue repeats them a lot)."""
        if free:
            reason, message, targets = self._cart_test(entry, True)
        else:
            answer = self.cart.answers.get(entry.cart_key)
            if answer is None:
                answer = self.cart.answers[entry.cart_key] = self._cart_test(entry, False)
            reason, message, targets = answer
        if message is not None:
            return (
                reason,
                NearMiss(entry.offer.offer_id, f"{message} for {describe_effect(entry.offer.effect)}"),
                [],
            )
        return reason, None, targets

    def _cart_test(self, entry: _Prepared, free: bool) -> tuple[str | None, str | None, list[int]]:
        offer, cart, condition = entry.offer, self.cart, entry.offer.condition
        qualifying = cart.lines_for(entry.cond_key, entry.cond_skus, entry.cond_categories)
        if not qualifying and (entry.cond_skus or entry.cond_categories):
            return f"no line matches condition {_which(condition.skus, condition.categories)}", None, []
        targets = cart.lines_for(entry.effect_key, entry.effect_skus, entry.effect_categories)
        if not targets:
            if entry.effect_skus or entry.effect_categories:
                return (
                    f"no line matches effect {_which(offer.effect.skus, offer.effect.categories)}",
                    None,
                    [],
                )
            return "the cart is empty", None, []
        if condition.min_quantity is None and entry.min_subtotal is None:
            return None, None, targets
        failed: list[tuple[str, str | None]] = []  # (reason, the start of a near-miss message)
        named = _products(condition.skus, condition.categories)
        lines = cart.lines
        free_words = " on units still free" if free else ""
        if condition.min_quantity is not None:
            need = condition.min_quantity * 1000
            if free:
                have = sum(lines[i].free_milli for i in qualifying)
            else:
                have = sum(lines[i].milli for i in qualifying)
            if have < need:
                failed.append(
                    (
                        f"min_quantity {condition.min_quantity} not reached{free_words} ({_quantity(have)})",
                        f"add {_quantity(need - have)} more {named or 'items'}"
                        if have >= need * NEAR_MISS_SHARE
                        else None,
                    )
                )
        if entry.min_subtotal is not None:
            if free:  # at personal prices, before offers, like every threshold
                spent = sum(
                    _half_up(lines[i].before_offers * lines[i].free_milli, lines[i].milli) for i in qualifying
                )
            else:
                spent = sum(lines[i].before_offers for i in qualifying)
            if spent < entry.min_subtotal:
                on = f" on {named}" if named else ""
                failed.append(
                    (
                        f"min_subtotal {condition.min_subtotal} not reached{free_words} ({_money(spent)})",
                        f"spend {_money(entry.min_subtotal - spent)} more{on}"
                        if spent >= entry.min_subtotal * NEAR_MISS_SHARE
                        else None,
                    )
                )
        if failed:
            reason, message = failed[0]
            return reason, message if len(failed) == 1 else None, []
        return None, None, targets


_UNCHECKED = _Trial([], money_off=True)  # an exclusive_units offer before its turn


@dataclass(slots=True)
class _UnitRun(_Trial):
    """The live exclusive_units offers of one priority, as one item in consideration order: on a
    dense catalogue that is hundreds of offers the later steps need not walk one by one."""

    priority: int = 0
    group: list[_Prepared] = field(default_factory=list)


def _decide(
    eligible: list[tuple[_Prepared, _Trial]], reasons: dict[str, str], holds: Callable[[_Prepared], bool]
) -> list[int]:
    """Positions in ``eligible`` (already in consideration order) that go on, by the stacking rules.

    exclusive_units offers go on like stackable ones here, unchecked: their conditions and which
    units each gets are decided in their turn. ``holds`` checks one when an exclusive offer needs
    to know whether an earlier offer applies."""
    applied: list[int] = []
    settled: set[int] = set()
    blocker: str | None = None
    for k, (entry, _) in enumerate(eligible):
        if k in settled:
            continue
        offer = entry.offer
        if blocker is not None:
            reasons[offer.offer_id] = f"blocked by exclusive offer {blocker}"
        elif offer.stacking == "exclusive":
            before = [j for j in applied if not eligible[j][0].units or holds(eligible[j][0])]
            if before:
                first = eligible[before[0]][0].offer.offer_id
                reasons[offer.offer_id] = f"exclusive, and offer {first} applies already"
                continue
            peers = [
                j
                for j in range(k, len(eligible))
                if eligible[j][0].offer.stacking == "exclusive"
                and eligible[j][0].offer.priority == offer.priority
            ]
            winner = max(peers, key=lambda j: eligible[j][1].key)  # the first of equals
            blocker = eligible[winner][0].offer.offer_id
            applied.append(winner)
            for j in peers:
                settled.add(j)
                if j != winner:
                    reasons[eligible[j][0].offer.offer_id] = f"exclusive offer {blocker} gives more"
        elif offer.stacking == "best_of":
            group = [j for j in range(k, len(eligible)) if eligible[j][0].offer.stacking == "best_of"]
            winner = max(group, key=lambda j: eligible[j][1].key)  # the first of equals
            applied.append(winner)
            for j in group:
                settled.add(j)
                if j != winner:
                    name = eligible[winner][0].offer.offer_id
                    reasons[eligible[j][0].offer.offer_id] = f"best_of offer {name} gives more"
        else:
            applied.append(k)
    return sorted(applied)


class _Units:
    """exclusive_units offers taking units, one priority at a time: within a priority the offer
    that gives most on the units still free goes first (ties: offer_id), each on what the ones
    before it left free. A held unit is not available to any other exclusive_units offer."""

    __slots__ = ("cart", "checker", "explain", "free", "misses", "reasons")

    def __init__(
        self,
        cart: _Cart,
        checker: _Checker,
        reasons: dict[str, str],
        explain: bool,
    ) -> None:
        self.cart = cart
        self.checker = checker
        self.reasons = reasons
        self.explain = explain
        self.misses: dict[str, NearMiss] = {}
        self.free: dict[int, bool] = {}  # effect key -> any target unit free (until the next hold)

    def run(self, group: list[_Prepared]) -> list[tuple[_Prepared, _Off]]:
        """The offers of one priority that take units, in the order they took them, with what they took.

        Their conditions are checked here, in their turn, and only for offers whose target lines
        still have free units: on a dense catalogue most offers find their units held already,
        and that is all they cost."""
        cart, checker, free, reasons, explain = self.cart, self.checker, self.free, self.reasons, self.explain
        lines = cart.lines
        ranked: list[tuple[int, int, _Prepared, list[int]]] = []
        for pos, entry in enumerate(group):
            key = entry.effect_key
            open_ = free.get(key)
            if open_ is None:  # no line at all goes on to check, which names that
                targets = cart.lines_for(key, entry.effect_skus, entry.effect_categories)
                open_ = free[key] = not targets or any(lines[i].free_milli for i in targets)
            if not open_:
                if entry.gated:  # "limit reached" must win, as it decides a coupon's rejection reason
                    reason, _, _ = checker.check(entry)
                    if reason is not None:
                        reasons[entry.offer.offer_id] = reason
                        continue
                if explain:  # otherwise nobody reads the reason: say nothing, fast
                    self._unavailable(entry, cart.matched[key])
                continue
            reason, miss, targets = checker.check(entry)
            if reason is not None:
                self._not_met(entry, reason, miss)
                continue
            value = _free_value(entry, cart, targets)
            ranked.append((-value, pos, entry, targets))
        ranked.sort(key=lambda r: (r[0], r[1]))  # most value first; ties: consideration order
        taking: list[tuple[_Prepared, _Off]] = []
        for _, _, entry, targets in ranked:
            if not self._any_free(entry.effect_key, targets):
                self._unavailable(entry, targets)
                continue
            if entry.thresholds:  # without thresholds the whole-cart answer stands
                reason, miss, _ = checker._cart_conditions(entry, free=True)
                if reason is not None:
                    self._not_met(entry, reason, miss)
                    continue
            off = _money_off(entry, cart, targets, units=True)
            if entry.kind in REPEATING_EFFECTS:
                miss = _repeat_near_miss(entry, _units(cart, targets, free=True), off.applications)
                if miss is not None:
                    self.misses[entry.offer.offer_id] = miss
            if not off.off:
                self._unavailable(entry, targets, "nothing to discount on the units still free")
                continue
            self._hold(entry.offer.offer_id, off)
            taking.append((entry, off))
        return taking

    def _not_met(self, entry: _Prepared, reason: str, miss: NearMiss | None) -> None:
        self.reasons[entry.offer.offer_id] = reason
        # "spend 5 more on coffee" only while no other offer holds coffee: more coffee could go to
        # that offer instead, so the promise would not hold.
        if miss is not None and not self._held(entry):
            self.misses[entry.offer.offer_id] = miss

    def _held(self, entry: _Prepared) -> bool:
        lines = self.cart.lines
        qualifying = self.cart.lines_for(entry.cond_key, entry.cond_skus, entry.cond_categories)
        targets = self.cart.lines_for(entry.effect_key, entry.effect_skus, entry.effect_categories)
        return any(lines[i].holders for i in qualifying) or any(lines[i].holders for i in targets)

    def _any_free(self, key: int, targets: list[int]) -> bool:
        free = self.free.get(key)
        if free is None:
            lines = self.cart.lines
            free = self.free[key] = any(lines[i].free_milli for i in targets)
        return free

    def _hold(self, offer_id: str, off: _Off) -> None:
        self.free.clear()
        lines = self.cart.lines
        for i, (milli, worth) in off.taken.items():
            line = lines[i]
            line.free_milli -= milli
            line.free_left -= worth
            if line.holders is None:
                line.holders = []
            line.holders.append((offer_id, milli))

    def _unavailable(self, entry: _Prepared, targets: list[int], why: str = "") -> None:
        offer_id = entry.offer.offer_id
        if not self.explain:
            self.reasons[offer_id] = why or UNITS_TAKEN
            return
        if not why:  # explain: a condition that fails anyway is the better reason (never a near miss)
            reason, _, _ = self.checker.check(entry)
            if reason is not None:
                self.reasons[offer_id] = reason
                return
        held = [
            f"line {self.cart.lines[i].line_id} ({_quantity(milli)} held by {holder})"
            for i in targets
            for holder, milli in (self.cart.lines[i].holders or ())
        ]
        detail = "; ".join(held) if held else "none held"
        self.reasons[offer_id] = f"{why or UNITS_TAKEN}: {detail}"


def _free_value(entry: _Prepared, cart: _Cart, targets: list[int]) -> int:
    """What ``_money_off`` on the free units would give in all, without building it (ranking)."""
    lines, kind = cart.lines, entry.kind
    if kind == "percent_off":
        assert entry.percent_bp is not None
        bp = entry.percent_bp
        if entry.basket:
            return _half_up(sum(lines[i].free_left for i in targets) * bp, 10_000)
        return sum(_half_up(lines[i].free_left * bp, 10_000) for i in targets)
    if kind == "amount_off":
        assert entry.value_cents is not None
        value = entry.value_cents
        if entry.basket:
            return min(value, sum(lines[i].free_left for i in targets))
        return sum(min(lines[i].free_left, _half_up(lines[i].free_milli * value, 1000)) for i in targets)
    return sum(_money_off(entry, cart, targets, units=True, split=False).off.values())


def _unavailable_units(cart: _Cart, targets: list[int]) -> tuple[UnitsUnavailable, ...]:
    return tuple(
        UnitsUnavailable(cart.lines[i].line_id, Decimal(milli).scaleb(-3), holder)
        for i in targets
        for holder, milli in (cart.lines[i].holders or ())
    )


def evaluate(
    lines: Sequence[CartLine],
    context: CartContext,
    index: OfferIndex,
    price_groups: Sequence[PriceGroup] = (),
    coupons: Sequence[CouponInput] = (),
    allowances: Mapping[str, Allowance] | None = None,
    *,
    explain: bool = False,
) -> Evaluation:
    """Personal prices, offers, coupons and near misses for a cart. Pure and deterministic.

    ``allowances`` maps offer ids to what is left of their limits (missing: unlimited). Raises
    ``ValidationFailed`` for duplicate line ids. With ``explain``, every offer in the index (paused
    and draft ones too) gets an explanation; the rest of the evaluation is the same either way.
    """
    cart = _Cart(lines, context, price_groups)

    # Coupons: the first usable coupon per offer unlocks it; the others are rejected.
    coupon_for: dict[str, str] = {}
    coupon_problem: dict[str, str] = {}
    rejected: list[tuple[int, str, RejectReason]] = []
    usable: list[tuple[int, str, str]] = []  # (position, code, offer_id)
    seen_codes: set[str] = set()
    for pos, coupon in enumerate(coupons):
        if coupon.code in seen_codes:
            continue
        seen_codes.add(coupon.code)
        if coupon.status != "ok":
            rejected.append((pos, coupon.code, coupon.status))
            if coupon.offer_id is not None:
                coupon_problem.setdefault(coupon.offer_id, f"coupon {coupon.code} {coupon.status}")
        elif coupon.offer_id is None or coupon.offer_id in coupon_for:
            rejected.append((pos, coupon.code, "not_applicable"))
        else:
            coupon_for[coupon.offer_id] = coupon.code
            usable.append((pos, coupon.code, coupon.offer_id))

    # Which offers' conditions hold, and what each would give on its own.
    checker = _Checker(cart, context, coupon_for, coupon_problem, allowances or {})
    entries = index._entries
    positions: Iterable[int] = (
        range(len(entries))
        if explain
        else index._positions(cart.by_sku.keys(), cart.by_category.keys(), context.store, coupon_for.keys())
    )
    reasons: dict[str, str] = {}
    near_misses: list[tuple[int, NearMiss]] = []
    eligible: list[tuple[_Prepared, _Trial]] = []
    repeating: list[tuple[int, _Prepared, list[int]]] = []  # buy_x_get_y, bundle_price: near misses
    gave_nothing: set[str] = set()
    check = checker.check
    plain = True  # only stackable and exclusive_units offers: nothing for _decide to settle
    unit_run: _UnitRun | None = None
    for pos in positions:
        entry = entries[pos]
        if entry.deferred:  # checked in its turn, if any of its units are still free
            if unit_run is not None and unit_run.priority == entry.priority and eligible[-1][1] is unit_run:
                unit_run.group.append(entry)
            else:
                unit_run = _UnitRun([], money_off=True, priority=entry.priority, group=[entry])
                eligible.append((entry, unit_run))
            continue
        offer_id = entry.offer.offer_id
        reason, miss, targets = check(entry)
        if reason is not None:
            reasons[offer_id] = reason
            if miss is not None:
                near_misses.append((pos, miss))
            continue
        compare = entry.offer.stacking in ("exclusive", "best_of")
        plain = plain and not compare
        trial = _trial(entry, cart, targets, compare=compare)
        if entry.kind in REPEATING_EFFECTS and not entry.units:
            repeating.append((pos, entry, targets))
        if not trial.gives:
            reasons[offer_id] = _why_nothing(entry, cart, targets)
            gave_nothing.add(offer_id)
            continue
        eligible.append((entry, trial))
    if plain:
        chosen = eligible
    else:  # one by one, for the stacking rules; they come together again in their turn below
        eligible = [
            pair
            for item in eligible
            for pair in (
                [(e, _UNCHECKED) for e in item[1].group] if isinstance(item[1], _UnitRun) else [item]
            )
        ]
        chosen = [eligible[k] for k in _decide(eligible, reasons, lambda e: check(e)[0] is None)]

    # Fixed personal prices: per line the lowest wins (ties: the first in consideration order).
    best: dict[int, tuple[int, str]] = {}  # line -> (unit price in cents, offer_id)
    for entry, trial in chosen:
        if entry.kind == "fixed_price":
            assert entry.value_cents is not None
            for i in trial.per_line:
                if i not in best or entry.value_cents < best[i][0]:
                    best[i] = (entry.value_cents, entry.offer.offer_id)
    fixed_savings: dict[str, list[tuple[int, int]]] = {}
    for i in sorted(best):
        price, offer_id = best[i]
        line = cart.lines[i]
        base = _half_up(line.milli * price, 1000)
        fixed_savings.setdefault(offer_id, []).append((i, line.base - base))
        line.price, line.base = price, base
    cart.start_units()

    personal: list[PersonalPrice] = []
    names = {g.group_id: g.name for g in price_groups}
    for group_id in sorted(cart.group_savings):
        saved = cart.group_savings[group_id]
        line_ids = tuple(cart.lines[i].line_id for i, _ in saved)
        personal.append(
            PersonalPrice(
                "price_group", group_id, names[group_id], line_ids, _money(sum(s for _, s in saved))
            )
        )

    # Then the rest, one after the other, each on what the earlier ones left; exclusive_units
    # offers of one priority together, on the units still free.
    applied: list[str] = []
    discounts: list[DiscountApplied] = []
    bonuses: list[BonusApplied] = []
    multipliers: list[MultiplierApplied] = []
    took: dict[str, dict[int, tuple[int, int]]] = {}  # explain: offer -> line -> (milli, cents off)
    formed: dict[str, int] = {}  # groups or bundles each stacking offer formed
    units = _Units(cart, checker, reasons, explain)
    k = 0
    while k < len(chosen):
        entry, trial = chosen[k]
        offer = entry.offer
        if entry.units:
            if isinstance(trial, _UnitRun):
                end, group = k + 1, trial.group
            else:
                end, priority = k + 1, entry.priority
                while end < len(chosen) and chosen[end][0].units and chosen[end][0].priority == priority:
                    end += 1
                group = [e for e, _ in chosen[k:end]]
            for unit_entry, off in units.run(group):
                _take(cart, off, units=True)
                unit_offer = unit_entry.offer
                code = coupon_for.get(unit_offer.offer_id)
                discounts.append(
                    DiscountApplied(unit_offer.offer_id, unit_offer.name, _money(sum(off.off.values())), code)
                )
                if explain:
                    took[unit_offer.offer_id] = {
                        i: (milli, off.off.get(i, 0)) for i, (milli, _) in off.taken.items()
                    }
                reasons[unit_offer.offer_id] = APPLIED
                applied.append(unit_offer.offer_id)
            k = end
            continue
        k += 1
        code = coupon_for.get(offer.offer_id)
        kind = entry.kind
        if kind == "fixed_price":
            saved = fixed_savings.get(offer.offer_id, [])
            if not saved:
                reasons[offer.offer_id] = "a lower personal price applies"
                continue
            line_ids = tuple(cart.lines[i].line_id for i, _ in saved)
            amount = _money(sum(s for _, s in saved))
            personal.append(PersonalPrice("offer", offer.offer_id, offer.name, line_ids, amount, code))
        elif kind == "bonus_points":
            bonuses.append(BonusApplied(offer.offer_id, offer.name, trial.bonus, code))
        elif kind == "points_multiplier":
            assert trial.multiplier is not None
            line_ids = tuple(cart.lines[i].line_id for i in trial.targets)
            multipliers.append(
                MultiplierApplied(offer.offer_id, offer.name, line_ids, trial.multiplier, code)
            )
        else:
            off = _money_off(entry, cart, trial.targets)
            if not off.off:
                reasons[offer.offer_id] = "nothing left to discount after earlier offers"
                continue
            _take(cart, off, units=False)
            formed[offer.offer_id] = off.applications
            if explain:
                took[offer.offer_id] = {i: (cart.lines[i].milli, amount) for i, amount in off.off.items()}
            discounts.append(DiscountApplied(offer.offer_id, offer.name, _money(sum(off.off.values())), code))
        reasons[offer.offer_id] = APPLIED
        applied.append(offer.offer_id)
    applied_set = set(applied)

    for (
        pos,
        entry,
        targets,
    ) in repeating:  # "add 1 more to get 1 free", unless something else stood in the way
        offer_id = entry.offer.offer_id
        if offer_id in applied_set or offer_id in gave_nothing:
            miss = _repeat_near_miss(entry, _units(cart, targets), formed.get(offer_id, 0))
            if miss is not None:
                near_misses.append((pos, miss))
    for offer_id, miss in units.misses.items():
        near_misses.append((index._where[offer_id], miss))
    for pos, code, offer_id in usable:
        if offer_id not in applied_set:
            rejected.append(
                (pos, code, "limit_reached" if reasons.get(offer_id) == LIMIT_REACHED else "not_applicable")
            )

    personal_subtotal = sum(line.base for line in cart.lines)
    discount_total = sum(line.discount for line in cart.lines)
    return Evaluation(
        lines=tuple(
            LineResult(line.line_id, line.unit_price, _money(line.price), _money(line.discount))
            for line in cart.lines
        ),
        discounts=tuple(discounts),
        personal_prices=tuple(personal),
        bonuses=tuple(bonuses),
        bonus_points=sum(b.points for b in bonuses),
        multipliers=tuple(multipliers),
        subtotal=_money(sum(line.gross for line in cart.lines)),
        personal_subtotal=_money(personal_subtotal),
        discount_total=_money(discount_total),
        total=_money(personal_subtotal - discount_total),
        rejected_coupons=tuple(RejectedCoupon(code, why) for _, code, why in sorted(rejected)),
        near_misses=tuple(miss for _, miss in sorted(near_misses, key=lambda m: m[0])),
        applied_offer_ids=tuple(applied),
        coupons_applied=tuple(coupon_for[o] for o in applied if o in coupon_for),
        explanations=_explanations(entries, cart, reasons, applied_set, took) if explain else None,
    )


def _take(cart: _Cart, off: _Off, units: bool) -> None:
    """Book an applied money effect on its lines (an exclusive_units offer's units are held already)."""
    lines = cart.lines
    for i, amount in off.off.items():
        line = lines[i]
        if not units and line.free_left:
            # A stacking offer's money comes off the free part and the held part pro rata to what
            # is left of each, so a later exclusive_units offer sees what the free units are worth.
            left = line.base - line.discount
            line.free_left -= amount if line.free_left == left else _half_up(amount * line.free_left, left)
        line.discount += amount


def _explanations(
    entries: tuple[_Prepared, ...],
    cart: _Cart,
    reasons: dict[str, str],
    applied: set[str],
    took: dict[str, dict[int, tuple[int, int]]],
) -> tuple[Explanation, ...]:
    out = []
    for entry in entries:
        offer_id = entry.offer.offer_id
        taken = took.get(offer_id, {})
        units = tuple(
            UnitsTaken(cart.lines[i].line_id, Decimal(milli).scaleb(-3), _money(amount))
            for i, (milli, amount) in sorted(taken.items())
        )
        unavailable: tuple[UnitsUnavailable, ...] = ()
        if entry.units and offer_id not in applied:
            targets = cart.lines_for(entry.effect_key, entry.effect_skus, entry.effect_categories)
            unavailable = _unavailable_units(cart, targets)
        out.append(Explanation(offer_id, offer_id in applied, reasons[offer_id], units, unavailable))
    return tuple(out)
