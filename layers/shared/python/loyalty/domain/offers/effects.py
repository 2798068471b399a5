"""What each effect gives on the target lines: percent and amount off, buy x get y, bundle
prices, and what an offer gives alone (for ranking)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from loyalty.domain.offers.cart import _Cart
from loyalty.domain.offers.index import _Prepared
from loyalty.domain.offers.model import REPEATING_EFFECTS, Effect
from loyalty.domain.offers.money import _allocate, _half_up


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
