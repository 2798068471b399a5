"""Per-unit exclusivity: exclusive_units offers holding units of lines, one priority at a time."""

from __future__ import annotations

from decimal import Decimal

from loyalty.domain.offers.cart import _Cart
from loyalty.domain.offers.conditions import _Checker, _repeat_near_miss
from loyalty.domain.offers.effects import _free_value, _money_off, _Off, _units
from loyalty.domain.offers.index import _Prepared
from loyalty.domain.offers.model import REPEATING_EFFECTS
from loyalty.domain.offers.money import _quantity
from loyalty.domain.offers.result import NearMiss, UnitsUnavailable
from loyalty.domain.offers.words import UNITS_TAKEN


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

    def run(self, group: list[_Prepared]) -> list[tuple[_Prepared, _Off]]:  # noqa: PLR0912 - one branch per effect
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


def _unavailable_units(cart: _Cart, targets: list[int]) -> tuple[UnitsUnavailable, ...]:
    return tuple(
        UnitsUnavailable(cart.lines[i].line_id, Decimal(milli).scaleb(-3), holder)
        for i in targets
        for holder, milli in (cart.lines[i].holders or ())
    )
