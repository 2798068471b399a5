"""Behaviour conditions: purchases and events counted in a window that ends now.

With time alone a window only loses facts (it has no end but now, and a fact once inside stays
until the window's start passes it), so the answer can change only when a counted fact leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from loyalty.domain.segments.facts import CustomerFacts, EventFact, LineFact, PurchaseFact, Verdict
from loyalty.domain.segments.model import CountRange, EventSpec, MoneyRange, PurchasedSpec
from loyalty.domain.segments.paths import number
from loyalty.domain.segments.windows import Duration, back, leaves_at

# One counted fact: when it happened, what it adds to the count and to the spend.
_Movement = tuple[datetime, int, Decimal]
_Holds = Callable[[int, Decimal], bool]
_ZERO = Decimal(0)


def purchased_verdict(spec: PurchasedSpec, facts: CustomerFacts, now: datetime) -> Verdict:
    start = back(now, spec.within)
    movements = [
        movement
        for purchase in facts.purchases
        if purchase.occurred_at >= start and _at_store(spec, purchase)
        for movement in _purchase_movement(spec, purchase)
    ]

    def holds(count: int, spend: Decimal) -> bool:
        if spec.count is None and spec.spend is None:
            return count >= 1
        return (spec.count is None or in_range(spec.count, count)) and (
            spec.spend is None or in_range(spec.spend, spend)
        )

    return _verdict(movements, spec.within, holds)


def event_verdict(spec: EventSpec, facts: CustomerFacts, now: datetime) -> Verdict:
    start = back(now, spec.within)
    movements = [
        (event.occurred_at, 1, _ZERO)
        for event in facts.events
        if event.type == spec.type and event.occurred_at >= start and _where_holds(spec.where, event)
    ]
    wanted = spec.count

    def holds(count: int, _spend: Decimal) -> bool:
        return count >= 1 if wanted is None else in_range(wanted, count)

    return _verdict(movements, spec.within, holds)


def in_range(bounds: CountRange | MoneyRange, value: int | Decimal) -> bool:
    """Every bound given holds for `value`."""
    checks = (
        (bounds.eq, lambda b: value == b),
        (bounds.gt, lambda b: value > b),
        (bounds.gte, lambda b: value >= b),
        (bounds.lt, lambda b: value < b),
        (bounds.lte, lambda b: value <= b),
    )
    return all(check(bound) for bound, check in checks if bound is not None)


def _verdict(movements: list[_Movement], within: Duration, holds: _Holds) -> Verdict:
    count = sum(m[1] for m in movements)
    spend = sum((m[2] for m in movements), _ZERO)
    matches = holds(count, spend)
    # Play the departures forward: the first one after which the answer differs is the change.
    departures: dict[datetime, tuple[int, Decimal]] = {}
    for occurred_at, counted, spent in movements:
        leaves = leaves_at(occurred_at, within)
        was = departures.get(leaves, (0, _ZERO))
        departures[leaves] = (was[0] + counted, was[1] + spent)
    for leaves in sorted(departures):
        counted, spent = departures[leaves]
        count, spend = count - counted, spend - spent
        if holds(count, spend) is not matches:
            return Verdict(matches, leaves)
    return Verdict(matches, None)


def _at_store(spec: PurchasedSpec, purchase: PurchaseFact) -> bool:
    if spec.stores and purchase.store_id not in spec.stores:
        return False
    if spec.channels and purchase.channel not in spec.channels:
        return False
    return all(purchase.store_attributes.get(k, _ABSENT) == v for k, v in spec.store_attributes.items())


_ABSENT: Any = object()


def _line_matches(spec: PurchasedSpec, line: LineFact) -> bool:
    if not spec.skus and not spec.categories:
        return True
    return line.sku in spec.skus or (line.category is not None and line.category in spec.categories)


def _purchase_movement(spec: PurchasedSpec, purchase: PurchaseFact) -> Iterable[_Movement]:
    lines = [line for line in purchase.lines if _line_matches(spec, line)]
    amount = sum((line.amount for line in lines), _ZERO)
    if purchase.type == "sale":
        if lines or not (spec.skus or spec.categories):
            yield purchase.occurred_at, 1, amount
    elif lines:
        yield purchase.occurred_at, 0, -amount


def _where_holds(where: Mapping[str, Any], event: EventFact) -> bool:
    return all(json_equal(event.properties.get(name), wanted) for name, wanted in where.items())


def json_equal(left: Any, right: Any) -> bool:
    """Equality as JSON has it: true is not 1, and 2 equals 2.0 (and the string "2" neither)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    if isinstance(left, int | float | Decimal) and isinstance(right, int | float | Decimal):
        return number(left) == number(right)
    return type(left) is type(right) and bool(left == right)
