"""The catalogue index: offers compiled once and filed by what they target, so a cart only
looks at the offers that could match it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from loyalty.domain.offers.model import CartLine, CouponInput, Offer
from loyalty.domain.offers.money import _to_cents
from loyalty.domain.stores import Store

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
