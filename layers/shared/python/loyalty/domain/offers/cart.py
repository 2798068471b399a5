"""The cart at personal prices: price groups applied to each line, money in cents, lines looked
up by SKU and category (step 1 of the engine)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from loyalty.domain.errors import ValidationFailed
from loyalty.domain.offers.model import CartContext, CartLine, GroupPrice, PriceGroup
from loyalty.domain.offers.money import _half_up, _to_cents


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
