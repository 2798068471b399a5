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

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from loyalty.domain.offers.cart import _Cart
from loyalty.domain.offers.conditions import _Checker, _repeat_near_miss, _why_nothing
from loyalty.domain.offers.effects import _money_off, _Off, _Trial, _trial, _units
from loyalty.domain.offers.index import OfferIndex, _Prepared
from loyalty.domain.offers.model import (
    REPEATING_EFFECTS,
    Allowance,
    CartContext,
    CartLine,
    CouponInput,
    PriceGroup,
    RejectReason,
)
from loyalty.domain.offers.money import _half_up, _money
from loyalty.domain.offers.result import (
    BonusApplied,
    DiscountApplied,
    Evaluation,
    Explanation,
    LineResult,
    MultiplierApplied,
    NearMiss,
    PersonalPrice,
    RejectedCoupon,
    UnitsTaken,
    UnitsUnavailable,
)
from loyalty.domain.offers.stacking import _UNCHECKED, _decide, _UnitRun
from loyalty.domain.offers.units import _unavailable_units, _Units
from loyalty.domain.offers.words import APPLIED, LIMIT_REACHED


def evaluate(  # noqa: C901, PLR0912, PLR0915 - the algorithm of the note above; to split
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
