"""Whether an offer's conditions hold for a cart (the first failed one is the reason), and its
near misses."""

from __future__ import annotations

from collections.abc import Mapping

from loyalty.domain.offers.cart import _Cart
from loyalty.domain.offers.effects import _units
from loyalty.domain.offers.index import _Prepared
from loyalty.domain.offers.model import _MISSING, NEAR_MISS_SHARE, Allowance, CartContext
from loyalty.domain.offers.money import _half_up, _money, _quantity
from loyalty.domain.offers.result import NearMiss
from loyalty.domain.offers.words import LIMIT_REACHED, _json, _listed, _products, _which, describe_effect


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

    def _offer_conditions(self, entry: _Prepared) -> str | None:  # noqa: PLR0911, PLR0912 - one check per condition
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

    def _cart_test(self, entry: _Prepared, free: bool) -> tuple[str | None, str | None, list[int]]:  # noqa: PLR0912 - one check per condition
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
