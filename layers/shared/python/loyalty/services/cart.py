"""Real-time cart evaluation: personal prices, offers, coupons, points to earn, near misses.

No side effects. A warm evaluation reads once: the profile, the coupons and the limit counters in
one BatchGetItem (plus, every CATALOGUE_SECONDS, one GetItem of the catalogue version).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from loyalty.adapters.codec import customer_from_item
from loyalty.adapters.customers import CustomerRepository
from loyalty.adapters.offers import (
    OfferRepository,
)
from loyalty.domain import links as link_rules
from loyalty.domain.access import Principal
from loyalty.domain.coupons import normalise_code
from loyalty.domain.customers import Customer, CustomerRef
from loyalty.domain.errors import Forbidden, ValidationFailed
from loyalty.domain.programme import Programme
from loyalty.domain.sales import Line
from loyalty.domain.tiers import effective_tier
from loyalty.services.config import ProgrammeService, StoreService
from loyalty.services.offer_evaluation import evaluate_offers, limited_candidates, points_for
from loyalty.services.offers import OfferService
from loyalty.services.ports import Clock

if TYPE_CHECKING:
    from loyalty.domain.offers import Evaluation


@dataclass(frozen=True)
class CartLineInput:
    line_id: str
    sku: str
    category: str | None
    quantity: Decimal
    unit_price: Decimal


@dataclass(frozen=True)
class CartCommand:
    customer: CustomerRef | None
    store_id: str | None
    currency: str
    lines: Sequence[CartLineInput]
    coupons: Sequence[str]


@dataclass(frozen=True)
class CartResult:
    evaluation: Evaluation
    customer: Customer | None
    points_to_earn: int
    points_if_member: int
    currency: str


class CartService:
    def __init__(
        self,
        *,
        offers: OfferService,
        offer_repo: OfferRepository,
        customers: CustomerRepository,
        stores: StoreService,
        programme: ProgrammeService,
        clock: Clock,
    ) -> None:
        self._offers = offers
        self._repo = offer_repo
        self._customers = customers
        self._stores = stores
        self._programme = programme
        self._clock = clock

    def evaluate(self, command: CartCommand, principal: Principal, explain: bool = False) -> CartResult:

        if explain and not principal.is_admin:
            raise Forbidden("explain=true needs an admin key")
        store = self._stores.for_request(principal, command.store_id)
        programme = self._programme.current()
        if command.currency != programme.currency:
            raise ValidationFailed.at(("body", "currency"), f"the programme runs in {programme.currency}")
        now = self._clock.now()
        catalogue = self._offers.catalogue()
        customer_id = self._customer_id(command.customer, programme)
        codes = list(dict.fromkeys(normalise_code(c) for c in command.coupons))
        lines = [Line(ln.line_id, ln.sku, ln.category, ln.quantity, ln.unit_price) for ln in command.lines]
        limited = limited_candidates(catalogue, lines, store, codes)
        profile, coupons, totals, mine, segments = self._repo.load_for_cart(
            customer_id,
            codes,
            [o.offer_id for o in limited if o.limits.budget is not None],
            [o.offer_id for o in limited if o.limits.per_customer is not None] if customer_id else [],
            segments=catalogue.uses_segments,
        )
        customer = customer_from_item(profile) if profile else None
        if customer_id and customer is None:
            raise ValidationFailed.at(("body", "customer", "customer_id"), f"no customer {customer_id[:64]}")
        evaluation = evaluate_offers(
            catalogue,
            lines,
            customer,
            store,
            programme,
            now,
            codes,
            coupons,
            totals,
            mine,
            explain=explain,
            segments=segments,
        )
        tier = effective_tier(customer, programme, now) if customer else None
        member_points = points_for(evaluation, command.lines, programme, store, tier, now)
        base_points = points_for(evaluation, command.lines, programme, store, programme.base_tier, now)
        return CartResult(
            evaluation=evaluation,
            customer=customer,
            points_to_earn=member_points if customer and customer.member else 0,
            points_if_member=base_points,
            currency=programme.currency,
        )

    def _customer_id(self, ref: CustomerRef | None, programme: Programme) -> str | None:
        if ref is None:
            return None
        if ref.link_type is None:
            return ref.customer_id
        try:
            identity = programme.identify(ref.link_type, ref.link_value or "")
        except link_rules.LinkInvalid as bad:
            raise ValidationFailed.at(("body", "customer", "link", bad.field), bad.msg) from None
        if not identity.usable:
            return None  # a placeholder prices as the sale will record it: anonymous
        return self._customers.owner_of(identity.link)  # unknown: an anonymous cart
