"""Sales, returns and the points they move: pure rules, no I/O.

Points are earned per line on the amount paid after discounts, times the tier multiplier and the
best matching earn-rule multiplier, rounded down per line (so each line's points can be taken
back exactly on a return), plus flat bonuses of matching rules on the sale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from loyalty.domain.money import CENT, ZERO, cents, floor_int
from loyalty.domain.programme import EarnRule, Programme
from loyalty.domain.stores import Store

BONUS_LINE = "_bonus"  # bonus points of a whole sale are kept under this pseudo line id


class SaleType(StrEnum):
    SALE = "sale"
    RETURN = "return"


class OrderStatus(StrEnum):
    PLACED = "placed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    RETURNED = "returned"


# Which order status may follow which; cancelling or returning reverses every remaining point.
ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PLACED: frozenset({OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED, OrderStatus.CANCELLED, OrderStatus.RETURNED}),
    OrderStatus.DELIVERED: frozenset({OrderStatus.RETURNED}),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.RETURNED: frozenset(),
}
REVERSING_STATUSES = frozenset({OrderStatus.CANCELLED, OrderStatus.RETURNED})


@dataclass(frozen=True, slots=True)
class Line:
    line_id: str
    sku: str
    category: str | None
    quantity: Decimal
    unit_price: Decimal
    discount: Decimal = ZERO

    @property
    def amount(self) -> Decimal:
        """What the customer paid for the line."""
        return cents(self.quantity * self.unit_price - self.discount)


def lines_total(lines: list[Line]) -> Decimal:
    return cents(sum((line.amount for line in lines), ZERO))


@dataclass(frozen=True)
class Earn:
    line_points: dict[str, int]  # line id (or BONUS_LINE) -> points
    rules_applied: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.line_points.values())

    def adjusted(self, multipliers: tuple[tuple[frozenset[str], Decimal], ...], bonus_points: int) -> Earn:
        """Offers' points multipliers on their lines, and their bonus points on the sale."""
        points = dict(self.line_points)
        for line_ids, multiplier in multipliers:
            for line_id in line_ids:
                if line_id in points:
                    points[line_id] = floor_int(Decimal(points[line_id]) * multiplier)
        if bonus_points:
            points[BONUS_LINE] = points.get(BONUS_LINE, 0) + bonus_points
        return Earn(points, self.rules_applied)


def rule_applies_to_sale(rule: EarnRule, store: Store, at: datetime) -> bool:
    if rule.valid_from and at < rule.valid_from:
        return False
    if rule.valid_until and at >= rule.valid_until:
        return False
    where = rule.where
    if where.channels and store.channel.value not in where.channels:
        return False
    if where.stores and store.store_id not in where.stores:
        return False
    if where.store_formats and store.format not in where.store_formats:
        return False
    return all(store.attributes.get(k) == v for k, v in where.store_attributes.items())


def rule_applies_to_line(rule: EarnRule, line: Line) -> bool:
    if rule.skus and line.sku not in rule.skus:
        return False
    return not (rule.categories and line.category not in rule.categories)


def compute_earn(programme: Programme, store: Store, lines: list[Line], tier: str, at: datetime) -> Earn:
    """What a member earns for these lines in this store at this time."""
    multiplier = programme.tier_named(tier).multiplier
    rules = [r for r in programme.sale_rules if r.cashback is None and rule_applies_to_sale(r, store, at)]
    applied: set[str] = set()
    points: dict[str, int] = {}
    for line in lines:
        if line.amount <= 0:
            points[line.line_id] = 0
            continue
        best = Decimal(1)
        for rule in rules:
            if rule.multiplier > best and rule_applies_to_line(rule, line):
                best = rule.multiplier
                applied.add(rule.rule_id)
        points[line.line_id] = floor_int(line.amount * programme.points_per_unit * multiplier * best)
    bonus = 0
    for rule in rules:
        if rule.bonus_points and any(rule_applies_to_line(rule, line) for line in lines):
            bonus += rule.bonus_points
            applied.add(rule.rule_id)
    if bonus:
        points[BONUS_LINE] = bonus
    return Earn(points, tuple(sorted(applied)))


@dataclass(frozen=True)
class CashbackEarn:
    """Promotional cash a sale gives by the programme's cashback rules, in cents per line."""

    line_cents: dict[str, int]
    rules_applied: tuple[str, ...] = ()
    expires_days: int = 0

    @property
    def total(self) -> int:
        return sum(self.line_cents.values())


def compute_cashback(programme: Programme, store: Store, lines: list[Line], at: datetime) -> CashbackEarn:
    """Each line gives the best matching rule's percentage of what was paid for it (after
    discounts), rounded down to the cent per line, so a return takes back each line's share
    exactly. The cash expires after the longest `expires_days` of the rules that gave some."""
    rules = [r for r in programme.sale_rules if r.cashback is not None and rule_applies_to_sale(r, store, at)]
    if not rules:
        return CashbackEarn({})
    cents_by_line: dict[str, int] = {}
    applied: dict[str, int] = {}
    for line in lines:
        best = None
        for rule in rules:
            assert rule.cashback is not None
            if rule_applies_to_line(rule, line) and (best is None or rule.cashback.percent > best[1]):
                best = (rule.rule_id, rule.cashback.percent, rule.cashback.expires_days)
        if best is None or line.amount <= 0:
            continue
        # amount (units) x percent / 100, in cents: amount x percent
        given = floor_int(line.amount * best[1])
        if given > 0:
            cents_by_line[line.line_id] = given
            applied[best[0]] = max(applied.get(best[0], 0), best[2])
    return CashbackEarn(cents_by_line, tuple(sorted(applied)), max(applied.values(), default=0))


def takeback(earned: int, original_quantity: Decimal, returned_before: Decimal, returning: Decimal) -> int:
    """Points a return of `returning` units takes back from a line that earned `earned` points.

    Cumulative rounding: however a line is returned in parts, the parts add up to exactly what it
    earned once every unit is back, and never more.
    """
    if original_quantity <= 0:
        return 0
    after = floor_int(Decimal(earned) * (returned_before + returning) / original_quantity)
    before = floor_int(Decimal(earned) * returned_before / original_quantity)
    return after - before


def offers_carried(money_offers: list[tuple[str, Decimal]], carried: Decimal) -> tuple[str, ...]:
    """Which of the engine's money offers (id, amount, in the engine's order) the till gave, when
    its lines took `carried` off their unit prices.

    A sale records what the till charged, not what the engine would have charged: each offer
    counts while the lines' discounts still cover it (a cent of rounding per offer allowed, as a
    till may round a shared discount differently); an offer whose discount is not there was not
    given, so it is neither recorded nor counted against a budget or a customer's limit.
    """
    given: list[str] = []
    left = carried
    for offer_id, amount in money_offers:
        if amount <= left + CENT:
            given.append(offer_id)
            left -= amount
    return tuple(given)


def paid_for(line: Line, returned_before: Decimal, returning: Decimal) -> Decimal:
    """What the customer paid for `returning` more units of a sold line, net of its discounts.

    Cumulative rounding, as for points: however a line comes back in parts, the refunds it allows
    add up to exactly what was paid for it, and never more.
    """
    if line.quantity <= 0:
        return ZERO
    after = cents(line.amount * (returned_before + returning) / line.quantity)
    before = cents(line.amount * returned_before / line.quantity)
    return after - before


# ---- tiers: points earned in a rolling window of months ---------------------------------------


def month_key(at: datetime) -> str:
    return f"{at.year:04d}-{at.month:02d}"


def window_months(at: datetime, months: int) -> list[str]:
    keys = []
    year, month = at.year, at.month
    for _ in range(months):
        keys.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return keys


def points_in_window(earned_by_month: dict[str, int], at: datetime, months: int) -> int:
    return sum(earned_by_month.get(key, 0) for key in window_months(at, months))


def prune_months(earned_by_month: dict[str, int], at: datetime, months: int) -> dict[str, int]:
    """Keep only the months that can still count (and drop zeros) so the profile stays small."""
    keep = set(window_months(at, months + 1))
    return {k: v for k, v in earned_by_month.items() if k in keep and v != 0}


@dataclass(frozen=True)
class Lot:
    """An earn of points: pending until the return window has passed, then spendable until it expires."""

    lot_id: str
    points: int
    remaining: int
    earned_at: datetime
    pending_until: datetime
    expires_at: datetime
    line_points: dict[str, int] = field(default_factory=dict)

    def is_pending(self, now: datetime) -> bool:
        return now < self.pending_until


def is_backdated(programme: Programme, occurred_at: datetime, now: datetime) -> bool:
    """Older than the programme lets a sale earn: a till syncing offline sales late is the case
    it allows; beyond it a sale could buy a tier or points that have long expired."""
    return occurred_at < now - timedelta(days=programme.max_backdate_days)


def lot_dates(programme: Programme, earned_at: datetime) -> tuple[datetime, datetime]:
    pending_until = earned_at + timedelta(days=programme.pending_days)
    return pending_until, add_months(earned_at, programme.expiry_months)


def add_months(at: datetime, months: int) -> datetime:
    month_index = at.month - 1 + months
    year, month = at.year + month_index // 12, month_index % 12 + 1
    days_in_month = [
        31,
        29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28,
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][month - 1]
    return at.replace(year=year, month=month, day=min(at.day, days_in_month))
