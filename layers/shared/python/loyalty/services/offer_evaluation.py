"""Feeding the offer engine: the customer's context, coupons and what limits still allow.

Shared by the cart (no side effects) and by a sale (which records and counts what applied).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from loyalty.adapters.offers import CouponRecord, coupon_key, offer_customer_key, offer_total_key
from loyalty.adapters.segments import memberships_key
from loyalty.domain.customers import Customer
from loyalty.domain.money import floor_int
from loyalty.domain.programme import Programme
from loyalty.domain.sales import Line, compute_earn
from loyalty.domain.stores import Store
from loyalty.domain.tiers import effective_tier
from loyalty.services.offers import Catalogue

if TYPE_CHECKING:
    from loyalty.domain.offers import CouponInput, Evaluation, Offer
    from loyalty.services.cart import CartLineInput


def limited_candidates(
    catalogue: Catalogue, lines: Sequence[Line], store: Store, codes: Sequence[str]
) -> list[Offer]:
    """The offers with a budget or per-customer limit that could apply to these lines here.

    Only their counters are read: a catalogue with hundreds of limited offers must not cost a cart
    hundreds of keys. Coupons are not read yet, so with codes in the cart every limited
    coupon-gated offer counts as a candidate too. (Allowances of offers that are not candidates
    are never used: the engine only applies candidates.)
    """
    from loyalty.domain.offers import CartLine

    cart = [
        CartLine(
            line_id=ln.line_id,
            sku=ln.sku,
            category=ln.category,
            quantity=ln.quantity,
            unit_price=ln.unit_price,
        )
        for ln in lines
    ]
    candidates = {o.offer_id: o for o in catalogue.index.candidates(cart, store)}
    if codes:
        candidates.update({o.offer_id: o for o in catalogue.offers.values() if o.requires_coupon})
    return [
        o for o in candidates.values() if o.limits.budget is not None or o.limits.per_customer is not None
    ]


def offer_keys(
    catalogue: Catalogue, customer_id: str | None, codes: Sequence[str], lines: Sequence[Line], store: Store
) -> list[tuple[str, str]]:
    """What an evaluation reads besides the profile: the coupons and the candidates' limit counters."""
    keys = [coupon_key(code) for code in codes]
    if customer_id and catalogue.uses_segments:
        keys.append(memberships_key(customer_id))
    for offer in limited_candidates(catalogue, lines, store, codes):
        if offer.limits.budget is not None:
            keys.append(offer_total_key(offer.offer_id))
        if customer_id and offer.limits.per_customer is not None:
            keys.append(offer_customer_key(customer_id, offer.offer_id))
    return keys


def evaluate_offers(
    catalogue: Catalogue,
    lines: Sequence[Line],
    customer: Customer | None,
    store: Store,
    programme: Programme,
    now: datetime,
    codes: Sequence[str],
    coupons: Mapping[str, CouponRecord],
    totals: Mapping[str, int],
    mine: Mapping[str, int],
    explain: bool = False,
    segments: frozenset[str] = frozenset(),
) -> Evaluation:
    """The engine, fed with the customer's context, coupons and what the limits still allow."""
    from loyalty.domain.offers import CartContext, CartLine, evaluate, remaining_uses

    context = CartContext(
        customer_id=customer.customer_id if customer else None,
        member=bool(customer and customer.member),
        tier=effective_tier(customer, programme, now) if customer else None,
        price_groups=customer.price_groups if customer else frozenset(),
        segments=segments,  # the customer's memberships as stored (kept by the segments worker)
        first_purchase=bool(customer and customer.stats.transactions == 0),
        store=store,
        now=now,
        attributes=customer.profile.attributes if customer else {},
    )
    limited = [
        o
        for o in catalogue.offers.values()
        if o.limits.budget is not None or o.limits.per_customer is not None
    ]
    allowances = {
        o.offer_id: remaining_uses(
            o.limits, used_by_customer=mine.get(o.offer_id, 0), used_in_total=totals.get(o.offer_id, 0)
        )
        for o in limited
    }
    cart_lines = [
        CartLine(
            line_id=ln.line_id,
            sku=ln.sku,
            category=ln.category,
            quantity=ln.quantity,
            unit_price=ln.unit_price,
        )
        for ln in lines
    ]
    return evaluate(
        cart_lines,
        context,
        catalogue.index,
        list(catalogue.price_groups.values()),
        [_coupon_input(code, coupons.get(code), context.customer_id, now) for code in codes],
        allowances,
        explain=explain,
    )


def _coupon_input(
    code: str, coupon: CouponRecord | None, customer_id: str | None, now: datetime
) -> CouponInput:
    from loyalty.domain.offers import CouponInput

    if coupon is None:
        return CouponInput(code=code, status="unknown")
    state = coupon.state(now)
    if state != "active":
        return CouponInput(
            code=code, offer_id=coupon.offer_id, status="used" if state == "used" else "expired"
        )
    if coupon.customer_id is not None and coupon.customer_id != customer_id:
        return CouponInput(code=code, offer_id=coupon.offer_id, status="not_yours")
    return CouponInput(code=code, offer_id=coupon.offer_id, status="ok")


def points_for(
    evaluation: Evaluation,
    lines: Sequence[CartLineInput] | Sequence[Line],
    programme: Programme,
    store: Store,
    tier: str | None,
    at: datetime,
) -> int:
    """What the cart would earn: the programme's earn on what is paid per line, offers' multipliers on
    their lines, plus offers' bonus points."""
    by_id = {ln.line_id: ln for ln in lines}
    paid = [
        Line(
            r.line_id,
            by_id[r.line_id].sku,
            by_id[r.line_id].category,
            by_id[r.line_id].quantity,
            r.price,
            r.discount,
        )
        for r in evaluation.lines
    ]
    earn = compute_earn(programme, store, paid, tier or programme.base_tier, at)
    points = dict(earn.line_points)
    for multiplier in evaluation.multipliers:
        for line_id in multiplier.line_ids:
            if line_id in points:
                points[line_id] = floor_int(Decimal(points[line_id]) * multiplier.multiplier)
    return sum(points.values()) + evaluation.bonus_points
