"""The offers a sale applied: evaluated as a cart, recorded and counted in the sale's own
transaction (so a single-use coupon or a budget can never be spent twice), and given back when the
sale is returned in full or cancelled."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.offers import CouponRecord, OfferRepository, read_counters
from loyalty.adapters.segments import segments_in
from loyalty.domain.customers import Customer
from loyalty.domain.ledger import AppliedOffer, TransactionRecord
from loyalty.domain.money import ZERO, cents
from loyalty.domain.programme import Programme
from loyalty.domain.sales import is_backdated, offers_carried
from loyalty.domain.stores import Store
from loyalty.services.offer_evaluation import evaluate_offers
from loyalty.services.offers import Catalogue, OfferService
from loyalty.services.receipts import ReceiptNote, RecordCommand

if TYPE_CHECKING:
    from loyalty.domain.offers import Evaluation


@dataclass(frozen=True)
class AppliedOffers:
    """What the offers engine says a sale applied, and the writes that count it."""

    applied: tuple[AppliedOffer, ...] = ()
    coupons: tuple[str, ...] = ()
    ops: tuple[TxOp, ...] = ()
    bonus_points: int = 0
    multipliers: tuple[tuple[frozenset[str], Decimal], ...] = ()
    notes: tuple[ReceiptNote, ...] = ()

    def stamp(self, record: TransactionRecord) -> TransactionRecord:
        return replace(record, offers_applied=self.applied, coupons_redeemed=self.coupons)


class SaleOffers:
    def __init__(self, *, offers: OfferService, offer_repo: OfferRepository) -> None:
        self._offers = offers
        self._offer_repo = offer_repo

    def catalogue(self) -> Catalogue:
        return self._offers.catalogue()

    def for_sale(
        self,
        catalogue: Catalogue,
        command: RecordCommand,
        store: Store,
        programme: Programme,
        customer: Customer | None,
        now: datetime,
        codes: Sequence[str],
        extras: Sequence[dict[str, Any]],
    ) -> AppliedOffers:
        """Evaluate the sale as a cart; keep what the till gave, and count it."""
        coupons, totals, mine = read_counters(extras)
        evaluation = evaluate_offers(
            catalogue,
            list(command.lines),
            customer,
            store,
            programme,
            now,
            codes,
            coupons,
            totals,
            mine,
            segments=segments_in(extras) if customer else frozenset(),
        )
        amounts = _money_by_offer(evaluation)
        not_given = _not_given(evaluation, amounts, command)
        # Points effects carry no money: they apply as the engine says, unless the sale is too old
        # to earn at all (then they are not given either).
        points_offers = {b.offer_id for b in evaluation.bonuses} | {
            m.offer_id for m in evaluation.multipliers
        }
        backdated = is_backdated(programme, command.occurred_at, now)
        withheld = set(not_given) | (points_offers if backdated else set())
        applied = tuple(
            AppliedOffer(o, cents(amounts.get(o, ZERO)))
            for o in evaluation.applied_offer_ids
            if o not in withheld
        )
        used_codes = tuple(
            code
            for code in evaluation.coupons_applied
            if code not in coupons or coupons[code].offer_id not in withheld
        )
        customer_id = customer.customer_id if customer else None
        return AppliedOffers(
            applied=applied,
            coupons=used_codes,
            ops=tuple(self._count_ops(catalogue, applied, used_codes, coupons, customer_id)),
            bonus_points=0 if backdated else evaluation.bonus_points,
            multipliers=()
            if backdated
            else tuple((frozenset(m.line_ids), m.multiplier) for m in evaluation.multipliers),
            notes=tuple(
                ReceiptNote(
                    "offer_not_given",
                    f"{offer_id} would take {amount} off but the lines do not carry that discount: "
                    "not recorded, and it uses no budget, customer limit or coupon",
                )
                for offer_id, amount in not_given.items()
            ),
        )

    def _count_ops(
        self,
        catalogue: Catalogue,
        applied: tuple[AppliedOffer, ...],
        used_codes: tuple[str, ...],
        coupons: dict[str, CouponRecord],
        customer_id: str | None,
    ) -> list[TxOp]:
        """A use of each limited offer (budget, per customer) and of each coupon."""
        ops: list[TxOp] = []
        for offer_applied in applied:
            offer = catalogue.offers.get(offer_applied.offer_id)
            if offer is not None and (
                offer.limits.budget is not None or offer.limits.per_customer is not None
            ):
                ops.extend(
                    self._offer_repo.use_offer_ops(
                        offer.offer_id, customer_id, offer.limits.budget, offer.limits.per_customer
                    )
                )
        ops.extend(self._offer_repo.use_coupon_op(coupons[code]) for code in used_codes)
        return ops

    def give_back(self, original: TransactionRecord, now: datetime) -> list[TxOp]:
        """A sale returned in full (or cancelled) gives its offers' counts back, and its coupons
        too while they are still valid."""
        catalogue = self._offers.catalogue()
        ops: list[TxOp] = []
        for applied in original.offers_applied:
            offer = catalogue.offers.get(applied.offer_id)
            if offer is not None and (
                offer.limits.budget is not None or offer.limits.per_customer is not None
            ):
                ops.extend(
                    self._offer_repo.use_offer_ops(
                        offer.offer_id,
                        original.customer_id,
                        offer.limits.budget,
                        offer.limits.per_customer,
                        -1,
                    )
                )
        for code in original.coupons_redeemed:
            coupon = self._offer_repo.get_coupon(code)
            still_valid = coupon is not None and (coupon.valid_until is None or now < coupon.valid_until)
            if coupon is not None and still_valid and coupon.uses > 0 and coupon.status == "active":
                ops.append(self._offer_repo.use_coupon_op(coupon, -1))
        return ops


def _money_by_offer(evaluation: Evaluation) -> dict[str, Decimal]:
    """What each offer takes off the sale: its discounts, and its personal prices' savings."""
    amounts: dict[str, Decimal] = {}
    for discount in evaluation.discounts:
        amounts[discount.offer_id] = amounts.get(discount.offer_id, ZERO) + discount.amount
    for personal in evaluation.personal_prices:
        if personal.source == "offer":
            amounts[personal.id] = amounts.get(personal.id, ZERO) + personal.saving
    return amounts


def _not_given(
    evaluation: Evaluation, amounts: dict[str, Decimal], command: RecordCommand
) -> dict[str, Decimal]:
    """The money offers whose discount the sale's lines do not carry: the till did not give them."""
    money = [(o, cents(amounts[o])) for o in evaluation.applied_offer_ids if amounts.get(o, ZERO) > ZERO]
    # Price-group savings are no offer: what the lines took off for them is not an offer's.
    group_savings = sum((p.saving for p in evaluation.personal_prices if p.source == "price_group"), ZERO)
    carried = max(ZERO, sum((ln.discount for ln in command.lines), ZERO) - group_savings)
    given = set(offers_carried(money, carried))
    return {o: amount for o, amount in money if o not in given}
