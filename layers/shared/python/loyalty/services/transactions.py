"""Recording sales and returns, and the points, tiers and stats they move.

A sale is one TransactWriteItems: the transaction record (whose key is the dedupe key and which
carries the response to replay and the events to publish), the profile's counters (guarded by the
profile's version) and, for a member who earned points, the ledger entry that is also the lot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.offers import OfferRepository, read_counters
from loyalty.adapters.repositories import CustomerRepository, IdempotencyStore, LinksTaken, StaleCustomer
from loyalty.adapters.transactions import StaleTransaction, TransactionRepository
from loyalty.domain import events as ev
from loyalty.domain import links as link_rules
from loyalty.domain import points as points_ledger
from loyalty.domain.access import Principal
from loyalty.domain.customers import (
    Consents,
    Customer,
    CustomerRef,
    CustomerStatus,
    Profile,
    Stats,
)
from loyalty.domain.errors import (
    CustomerNotFound,
    FieldError,
    InvalidOrderTransition,
    ServiceUnavailable,
    TransactionCustomerMismatch,
    TransactionNotFound,
    ValidationFailed,
)
from loyalty.domain.ids import new_id
from loyalty.domain.ledger import AppliedOffer, LedgerEntry, LedgerReason, RecordedLine, TransactionRecord
from loyalty.domain.links import Identity, Link
from loyalty.domain.money import ZERO, cents, floor_int
from loyalty.domain.points import tier_event
from loyalty.domain.programme import Programme
from loyalty.domain.sales import (
    BONUS_LINE,
    ORDER_TRANSITIONS,
    REVERSING_STATUSES,
    Earn,
    Line,
    OrderStatus,
    SaleType,
    compute_earn,
    is_backdated,
    lines_total,
    offers_carried,
    paid_for,
    takeback,
)
from loyalty.domain.stores import Store
from loyalty.domain.tiers import effective_tier
from loyalty.services.config import ProgrammeService, StoreService
from loyalty.services.offer_evaluation import evaluate_offers, offer_keys
from loyalty.services.offers import Catalogue, OfferService, normalise_code
from loyalty.services.ports import (
    Clock,
    IdempotencyRequest,
    backoff,
    idempotency_ops,
    replay_caller_owned,
    replay_if_recorded,
)

_ATTEMPTS = 12
MAX_FUTURE = timedelta(minutes=5)
# Each credited sale adds two items to the enrolment's transaction (100 items at most in all).
MAX_RETRO_CREDITED_SALES = 30  # till clocks drift; a sale from tomorrow is a bug, not a sale


@dataclass(frozen=True)
class RecordCommand:
    transaction_id: str
    type: SaleType
    store_id: str | None
    occurred_at: datetime
    customer: CustomerRef | None
    lines: Sequence[Line]
    currency: str
    total: Decimal
    fingerprint: str
    coupons: Sequence[str] = ()
    original_transaction_id: str | None = None
    original_store_id: str | None = None
    order_status: OrderStatus | None = None


@dataclass(frozen=True)
class ReceiptNote:
    """Something a till should know about how the platform recorded its sale."""

    code: str  # backdated, offer_not_given
    detail: str


@dataclass(frozen=True)
class Receipt:
    """What POST /v1/transactions answers (and what a replay answers again)."""

    transaction_id: str
    store_id: str
    type: SaleType
    customer_id: str | None
    member: bool
    points_earned: int
    points_balance: int | None
    tier: str | None
    tier_changed: bool
    points_if_member: int
    total: Decimal
    currency: str
    order_status: OrderStatus | None
    offers_applied: tuple[AppliedOffer, ...] = ()
    coupons_redeemed: tuple[str, ...] = ()
    customer_ignored: Identity | None = None  # the sale named a placeholder link: kept anonymous
    notes: tuple[ReceiptNote, ...] = ()


@dataclass(frozen=True)
class RetroCredit:
    customer: Customer  # with the credited points, tier progress and ledger sequence
    ops: list[TxOp]
    events: list[ev.DomainEvent]


@dataclass(frozen=True)
class _SaleOffers:
    """What the offers engine says a sale applied, and the writes that count it."""

    applied: tuple[AppliedOffer, ...] = ()
    coupons: tuple[str, ...] = ()
    ops: tuple[TxOp, ...] = ()
    bonus_points: int = 0
    multipliers: tuple[tuple[frozenset[str], Decimal], ...] = ()
    notes: tuple[ReceiptNote, ...] = ()

    def stamp(self, record: TransactionRecord) -> TransactionRecord:
        return replace(record, offers_applied=self.applied, coupons_redeemed=self.coupons)

    def adjust(self, earn: Earn) -> Earn:
        """Offers' points multipliers on their lines, and their bonus points on the sale."""
        points = dict(earn.line_points)
        for line_ids, multiplier in self.multipliers:
            for line_id in line_ids:
                if line_id in points:
                    points[line_id] = floor_int(Decimal(points[line_id]) * multiplier)
        if self.bonus_points:
            points[BONUS_LINE] = points.get(BONUS_LINE, 0) + self.bonus_points
        return Earn(points, earn.rules_applied)


@dataclass
class _Plan:
    ops: list[TxOp]
    receipt: Receipt


class TransactionService:
    def __init__(
        self,
        transactions: TransactionRepository,
        customers: CustomerRepository,
        stores: StoreService,
        programme: ProgrammeService,
        idempotency: IdempotencyStore,
        clock: Clock,
        render: Callable[[Receipt], str],
        resolve_customer: Callable[[str], Customer],
        offers: OfferService | None = None,
        offer_repo: OfferRepository | None = None,
    ) -> None:
        self._txns = transactions
        self._customers = customers
        self._stores = stores
        self._programme = programme
        self._idempotency = idempotency
        self._clock = clock
        self._render = render
        self._resolve_customer = resolve_customer  # follows merges; raises CustomerNotFound
        self._offers = offers
        self._offer_repo = offer_repo

    # ---- recording ------------------------------------------------------------------------
    def record(
        self, command: RecordCommand, principal: Principal, idempotency: IdempotencyRequest | None = None
    ) -> Receipt:
        store = self._stores.for_request(principal, command.store_id)
        programme = self._programme.current()
        self._validate(command, programme)
        identity = self._identity(command.customer, programme)
        # A placeholder (test@test.com, 0000 ...) identifies nobody: the sale stays anonymous.
        link = identity.link if identity is not None and identity.usable else None
        ignored = identity if identity is not None and not identity.usable else None
        codes = list(dict.fromkeys(normalise_code(c) for c in command.coupons))
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            now = self._clock.now()
            customer_id = command.customer.customer_id if command.customer else None
            if link is not None:
                customer_id = self._customers.owner_of(link)
            original_key = None
            if command.type is SaleType.RETURN and command.original_transaction_id:
                original_key = (command.original_store_id or store.store_id, command.original_transaction_id)
            catalogue = self._offers.catalogue() if self._offers and command.type is SaleType.SALE else None
            loaded = self._txns.load(
                store.store_id,
                command.transaction_id,
                customer_id,
                original_key,
                offer_keys(catalogue, customer_id, codes, list(command.lines), store) if catalogue else (),
            )
            if loaded.existing is not None:
                replay_caller_owned(loaded.existing, command.fingerprint, "transaction_id")
            customer = loaded.customer
            if customer_id is not None and (customer is None or customer.status is not CustomerStatus.ACTIVE):
                customer = self._resolve(customer_id, link is None)
            creating = link is not None and customer is None
            if creating:
                assert link is not None
                customer = self._new_non_member(link, store, now)
            try:
                if command.type is SaleType.SALE:
                    offers = self._offers_for_sale(
                        catalogue, command, store, programme, customer, now, codes, loaded.extras
                    )
                    plan = self._plan_sale(
                        command,
                        store,
                        programme,
                        customer,
                        now,
                        creating,
                        offers,
                        principal.key_id,
                        ignored=ignored,
                    )
                else:
                    plan = self._plan_return(
                        command, store, programme, customer, loaded.original, now, principal.key_id
                    )
                extra = idempotency_ops(self._idempotency, idempotency, plan.receipt, now)
                self._txns.commit([*plan.ops, *extra])
                return plan.receipt
            except (StaleCustomer, StaleTransaction, LinksTaken):
                continue  # someone changed the profile, the original or the link meanwhile: again
        raise ServiceUnavailable("the customer's records kept changing; retry")

    def _plan_sale(
        self,
        command: RecordCommand,
        store: Store,
        programme: Programme,
        customer: Customer | None,
        now: datetime,
        creating: bool,
        offers: _SaleOffers | None = None,
        actor: str = "system",
        *,
        ignored: Identity | None = None,
    ) -> _Plan:
        offers = offers or _SaleOffers()
        lines = list(command.lines)
        amount = lines_total(lines)
        notes = list(offers.notes)
        backdated = is_backdated(programme, command.occurred_at, now)
        if backdated:
            # Recorded (it happened, and counts in stats and reports) but earns nothing: refusing
            # it would leave a till's offline queue stuck on a sale it cannot change.
            notes.append(
                ReceiptNote(
                    "backdated",
                    f"occurred_at is more than the programme's max_backdate_days "
                    f"({programme.max_backdate_days}) ago: recorded without earning points",
                )
            )
        earned_for = compute_earn(programme, store, lines, programme.base_tier, command.occurred_at)
        points_if_member = 0 if backdated else earned_for.total
        # A lot and its tier progress date from the sale, not from when a till got round to
        # sending it (a sale a few minutes "ahead" by a till's clock counts as now).
        earned_at = min(command.occurred_at, now)
        ops: list[TxOp] = list(offers.ops)
        events: list[ev.DomainEvent] = []
        if customer is None:  # anonymous: kept for member-versus-non-member reporting
            record = offers.stamp(
                self._record(command, store, now, None, False, lines, {}, 0, points_if_member, None)
            )
            receipt = replace(_receipt(record, None, None, False, notes), customer_ignored=ignored)
            events.append(_recorded_event(record))
            ops.append(
                self._txns.put_transaction_op(
                    record, self._render(receipt), command.fingerprint, ev.outbox(events)
                )
            )
            return _Plan(ops, receipt)

        stats = _stats_after_sale(customer.stats, amount, command.occurred_at)
        if not customer.member:
            record = offers.stamp(
                self._record(
                    command, store, now, customer.customer_id, False, lines, {}, 0, points_if_member, None
                )
            )
            updated = replace(customer, stats=stats, updated_at=now, version=customer.version + 1)
            receipt = _receipt(record, None, None, False, notes)
            events.append(_recorded_event(record))
            ops.append(
                self._txns.put_transaction_op(
                    record, self._render(receipt), command.fingerprint, ev.outbox(events)
                )
            )
            if creating:
                ops.extend(self._customers.create_ops(replace(updated, version=1)))
            else:
                ops.append(self._txns.profile_op(updated, customer.version))
            return _Plan(ops, receipt)

        tier_before = effective_tier(customer, programme, now)
        earn = offers.adjust(
            compute_earn(programme, store, lines, tier_before or programme.base_tier, command.occurred_at)
        )
        if backdated:
            earn = Earn({}, ())
        earned = points_ledger.earn(
            customer,
            programme,
            now,
            points=earn.total,
            line_points=earn.line_points,
            earned_at=earned_at,
            transaction_id=command.transaction_id,
            store_id=store.store_id,
            rules=earn.rules_applied,
            actor=actor,
        )
        tier_after = effective_tier(earned.customer, programme, now)
        updated = replace(
            earned.customer, stats=stats, tier=tier_after, updated_at=now, version=customer.version + 1
        )
        record = offers.stamp(
            self._record(
                command,
                store,
                now,
                customer.customer_id,
                True,
                lines,
                earn.line_points,
                earn.total,
                points_if_member,
                earned.entry.seq if earned.entry else None,
            )
        )
        receipt = _receipt(record, updated.points.balance, tier_after, tier_after != tier_before, notes)
        events.append(_recorded_event(record))
        events.extend(earned.events)
        if tier_after != tier_before:
            events.append(tier_event(customer.customer_id, tier_before, tier_after, "sale"))
        ops.append(
            self._txns.put_transaction_op(
                record, self._render(receipt), command.fingerprint, ev.outbox(events)
            )
        )
        ops.append(self._txns.profile_op(updated, customer.version))
        if earned.entry is not None:
            ops.append(self._txns.put_ledger_op(earned.entry, *earned.due))
        return _Plan(ops, receipt)

    def _plan_return(
        self,
        command: RecordCommand,
        store: Store,
        programme: Programme,
        customer: Customer | None,
        original: TransactionRecord | None,
        now: datetime,
        actor: str = "system",
    ) -> _Plan:
        returned: dict[str, Decimal] = {}
        if command.original_transaction_id:
            if original is None or original.type is not SaleType.SALE:
                where = command.original_store_id or store.store_id
                raise ValidationFailed.at(
                    ("body", "original_transaction_id"),
                    f"no sale {command.original_transaction_id!r} in store {where}",
                )
            if customer is not None and original.customer_id not in (None, customer.customer_id):
                survivor = self._resolve(original.customer_id, True) if original.customer_id else None
                if survivor is None or survivor.customer_id != customer.customer_id:
                    raise TransactionCustomerMismatch(
                        "the original sale belongs to another customer", customer_id=customer.customer_id
                    )
            if customer is None and original.customer_id:
                customer = self._resolve(original.customer_id, True)
            returned = _returned_quantities(command.lines, original)
        elif customer is not None:
            # Without the sale nothing bounds the refund, so a return that would move a profile's
            # spend or points must name it; a return without a receipt is recorded anonymously.
            raise ValidationFailed.at(
                ("body", "original_transaction_id"),
                "a customer's return names the sale it returns (a return without a receipt is sent "
                "without a customer)",
            )
        return self._reverse(
            command, store, programme, customer, original, returned, now, LedgerReason.RETURN, None, actor
        )

    def _reverse(
        self,
        command: RecordCommand | None,
        store: Store,
        programme: Programme,
        customer: Customer | None,
        original: TransactionRecord | None,
        returned: dict[str, Decimal],
        now: datetime,
        reason: LedgerReason,
        new_status: OrderStatus | None,
        actor: str = "system",
    ) -> _Plan:
        """Take back the points (and tier progress) of returned quantities; record what happened."""
        points_back = 0
        give_back: list[TxOp] = []
        if original is not None:
            for line_id, quantity in returned.items():
                recorded = original.line(line_id)
                assert recorded is not None
                points_back += takeback(
                    recorded.points, recorded.line.quantity, recorded.returned_quantity, quantity
                )
            becomes_full = all(
                rl.returned_quantity + returned.get(rl.line.line_id, ZERO) >= rl.line.quantity
                for rl in original.lines
            )
            if becomes_full and original.bonus_points:
                points_back += original.bonus_points
            if becomes_full and not original.fully_returned:
                give_back = self._give_back(original, now)
        ops: list[TxOp] = list(give_back)
        events: list[ev.DomainEvent] = []
        if command is not None:
            refund = command.total  # bounded line by line by what was paid (_returned_quantities)
        elif original is not None:  # a cancelled order gives back what is left of what was paid
            refund = sum(
                (
                    paid_for(rl.line, rl.returned_quantity, returned.get(rl.line.line_id, ZERO))
                    for rl in original.lines
                ),
                ZERO,
            )
        else:
            refund = ZERO
        if original is not None and original.customer_id is None:
            refund = ZERO  # an anonymous sale never counted in anyone's spend: its return cannot either
        updated_original = None
        if original is not None:
            updated_original = original.with_returned(returned, points_back)
            if new_status is not None:
                updated_original = replace(updated_original, order_status=new_status)
        balance = None
        tier = None
        tier_changed = False
        if customer is not None:
            stats = replace(customer.stats, spend=max(ZERO, cents(customer.stats.spend - refund)))
            updated = replace(customer, stats=stats, updated_at=now, version=customer.version + 1)
            tier_before = effective_tier(customer, programme, now)
            if customer.member and points_back and original is not None and original.lot_seq is not None:
                lot_owner = original.customer_id or customer.customer_id
                lot = self._txns.lot(lot_owner, original.lot_seq)
                # A return's entry names the return itself (and the sale it returns); a
                # cancellation has no record of its own, so its entry names the order.
                own = (store.store_id, command.transaction_id) if command is not None else None
                updated, from_lot, entry = points_ledger.take_back(
                    updated, lot, points_back, programme, now, reason, original, own, actor
                )
                if lot is not None and from_lot:
                    ops.append(self._txns.update_lot_op(lot, (lot.remaining or 0) - from_lot))
                ops.append(self._txns.put_ledger_op(entry))
            tier = effective_tier(updated, programme, now)
            updated = replace(updated, tier=tier)
            tier_changed = tier != tier_before
            if tier_changed:
                events.append(tier_event(customer.customer_id, tier_before, tier, reason.value))
            balance = updated.points.balance if customer.member else None
            ops.append(self._txns.profile_op(updated, customer.version))
        if updated_original is not None:
            ops.append(
                self._txns.update_transaction_op(updated_original, original.version if original else 0)
            )
        if command is not None:
            record = self._record(
                command,
                store,
                now,
                customer.customer_id if customer else None,
                bool(customer and customer.member),
                list(command.lines),
                {},
                -points_back,
                0,
                None,
            )
            receipt = _receipt(record, balance, tier, tier_changed)
            events.insert(0, _recorded_event(record))
            ops.insert(
                0,
                self._txns.put_transaction_op(
                    record, self._render(receipt), command.fingerprint, ev.outbox(events)
                ),
            )
        else:
            assert updated_original is not None
            receipt = _receipt(
                replace(updated_original, points_earned=-points_back), balance, tier, tier_changed
            )
            if events:
                # The original carries the events of a cancellation (there is no new record to hold them).
                ops[-1] = self._txns.update_transaction_op(
                    updated_original, original.version if original else 0, ev.outbox(events)
                )
        return _Plan(ops, receipt)

    # ---- retro credit ---------------------------------------------------------------------
    def retro_credit(self, customer: Customer, now: datetime) -> RetroCredit:
        """What enrolling an identified non-member credits for their purchases of the last
        `retro_credit_days`: ops to add to the enrolment's own transaction, so it happens once."""
        programme = self._programme.current()
        if not programme.retro_credit_days:
            return RetroCredit(customer, [], [])
        since = now - timedelta(days=programme.retro_credit_days)
        eligible = sorted(
            (
                r
                for r in self._txns.recent_sales(customer.customer_id, since)
                if r.type is SaleType.SALE
                and not r.retro_credited
                and r.points_earned == 0
                and r.order_status not in REVERSING_STATUSES
                and all(rl.returned_quantity == 0 for rl in r.lines)  # partly returned: not credited
                and not is_backdated(programme, r.occurred_at, r.recorded_at)  # would not have earned
            ),
            key=lambda r: r.occurred_at,
        )[:MAX_RETRO_CREDITED_SALES]
        ops: list[TxOp] = []
        events: list[ev.DomainEvent] = []
        updated = customer
        for record in eligible:
            store = self._stores.find(record.store_id)
            if store is None:
                continue
            tier = effective_tier(updated, programme, now) or programme.base_tier
            earn = compute_earn(programme, store, [rl.line for rl in record.lines], tier, record.occurred_at)
            if not earn.total:
                continue
            # As for a sale earning at once: the lot and its tier month date from the sale.
            earned = points_ledger.earn(
                updated,
                programme,
                now,
                points=earn.total,
                line_points=earn.line_points,
                earned_at=min(record.occurred_at, now),
                transaction_id=record.transaction_id,
                store_id=record.store_id,
                reason=LedgerReason.RETRO_CREDIT,
                actor="enrolment:retro-credit",
            )
            assert earned.entry is not None
            updated = earned.customer
            ops.append(
                self._txns.mark_retro_credited_op(record, earn.line_points, earned.entry.seq, earn.total)
            )
            ops.append(self._txns.put_ledger_op(earned.entry, *earned.due))
            events.extend(earned.events)
        return RetroCredit(replace(updated, tier=effective_tier(updated, programme, now)), ops, events)

    # ---- offers -----------------------------------------------------------------------------
    def _offers_for_sale(
        self,
        catalogue: Catalogue | None,
        command: RecordCommand,
        store: Store,
        programme: Programme,
        customer: Customer | None,
        now: datetime,
        codes: Sequence[str],
        extras: Sequence[dict[str, Any]],
    ) -> _SaleOffers | None:
        """Evaluate the sale as a cart: what applied is recorded and counted, in the sale's own
        transaction, so a single-use coupon or a budget can never be spent twice."""
        if catalogue is None or self._offer_repo is None:
            return None
        coupons, totals, mine = read_counters(extras)
        evaluation = evaluate_offers(
            catalogue, list(command.lines), customer, store, programme, now, codes, coupons, totals, mine
        )
        amounts: dict[str, Decimal] = {}
        for discount in evaluation.discounts:
            amounts[discount.offer_id] = amounts.get(discount.offer_id, ZERO) + discount.amount
        for personal in evaluation.personal_prices:
            if personal.source == "offer":
                amounts[personal.id] = amounts.get(personal.id, ZERO) + personal.saving
        money = [(o, cents(amounts[o])) for o in evaluation.applied_offer_ids if amounts.get(o, ZERO) > ZERO]
        # Price-group savings are no offer: what the lines took off for them is not an offer's.
        group_savings = sum((p.saving for p in evaluation.personal_prices if p.source == "price_group"), ZERO)
        carried = max(ZERO, sum((ln.discount for ln in command.lines), ZERO) - group_savings)
        given = set(offers_carried(money, carried))
        not_given = {o: amount for o, amount in money if o not in given}
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
        notes = tuple(
            ReceiptNote(
                "offer_not_given",
                f"{offer_id} would take {amount} off but the lines do not carry that discount: "
                "not recorded, and it uses no budget, customer limit or coupon",
            )
            for offer_id, amount in not_given.items()
        )
        customer_id = customer.customer_id if customer else None
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
        return _SaleOffers(
            applied=applied,
            coupons=used_codes,
            ops=tuple(ops),
            bonus_points=0 if backdated else evaluation.bonus_points,
            multipliers=()
            if backdated
            else tuple((frozenset(m.line_ids), m.multiplier) for m in evaluation.multipliers),
            notes=notes,
        )

    def _give_back(self, original: TransactionRecord, now: datetime) -> list[TxOp]:
        """A sale returned in full (or cancelled) gives its offers' counts back, and its coupons
        too while they are still valid."""
        if self._offers is None or self._offer_repo is None:
            return []
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

    # ---- order status ---------------------------------------------------------------------
    def set_order_status(
        self,
        store_id: str,
        transaction_id: str,
        status: OrderStatus,
        principal: Principal,
        idempotency: IdempotencyRequest | None = None,
    ) -> Receipt:
        store_id = principal.ensure_store(store_id) or store_id
        # A replay answers the first call, even once the order has moved on.
        replay_if_recorded(self._idempotency, idempotency)
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            now = self._clock.now()
            record = self._txns.get(store_id, transaction_id)
            if record is None:
                raise TransactionNotFound(f"no transaction {transaction_id!r} in store {store_id}")
            if record.order_status is None:
                raise InvalidOrderTransition("this transaction is not an order (it has no order_status)")
            if record.order_status is status:
                receipt = self._order_receipt(record, now)
                if idempotency is not None:  # nothing to change; the answer is still recorded
                    self._txns.commit(idempotency_ops(self._idempotency, idempotency, receipt, now))
                return receipt
            if status not in ORDER_TRANSITIONS[record.order_status]:
                raise InvalidOrderTransition(
                    f"an order that is {record.order_status.value} cannot become {status.value}",
                    order_status=record.order_status.value,
                )
            programme = self._programme.current()
            store = self._stores.require(store_id)
            try:
                if status in REVERSING_STATUSES:
                    customer = self._resolve(record.customer_id, True) if record.customer_id else None
                    returned = {rl.line.line_id: rl.returnable for rl in record.lines if rl.returnable > 0}
                    reason = LedgerReason.CANCEL if status is OrderStatus.CANCELLED else LedgerReason.RETURN
                    plan = self._reverse(
                        None,
                        store,
                        programme,
                        customer,
                        record,
                        returned,
                        now,
                        reason,
                        status,
                        principal.key_id,
                    )
                    self._txns.commit(
                        [*plan.ops, *idempotency_ops(self._idempotency, idempotency, plan.receipt, now)]
                    )
                    return plan.receipt
                moved = replace(record, order_status=status, version=record.version + 1)
                receipt = self._order_receipt(moved, now)
                self._txns.commit(
                    [
                        self._txns.update_transaction_op(moved, record.version),
                        *idempotency_ops(self._idempotency, idempotency, receipt, now),
                    ]
                )
                return receipt
            except (StaleCustomer, StaleTransaction):
                continue
        raise ServiceUnavailable("the order kept changing; retry")

    # ---- reads ----------------------------------------------------------------------------
    def get(self, store_id: str, transaction_id: str) -> TransactionRecord:
        record = self._txns.get(store_id, transaction_id)
        if record is None:
            raise TransactionNotFound(f"no transaction {transaction_id!r} in store {store_id}")
        return record

    def receipt_of(self, record: TransactionRecord) -> Receipt:
        return _receipt(record, None, None, False)

    def _order_receipt(self, record: TransactionRecord, now: datetime) -> Receipt:
        """An order's answer carries the member's balance and tier whatever the status, as a
        cancellation's does: a client must not have to guess which statuses fill them in."""
        if record.customer_id is None:
            return self.receipt_of(record)
        try:
            customer = self._resolve_customer(record.customer_id)
        except CustomerNotFound:  # erased since: the order stands, the profile is gone
            return self.receipt_of(record)
        if not customer.member:
            return self.receipt_of(record)
        tier = effective_tier(customer, self._programme.current(), now)
        return _receipt(record, customer.points.balance, tier, False)

    def history(
        self, customer_id: str, limit: int, cursor: str | None
    ) -> tuple[list[TransactionRecord], str | None]:
        customer = self._resolve_customer(customer_id)
        return self._txns.history(customer.customer_id, limit, cursor)

    def ledger(
        self, customer_id: str, limit: int, cursor: str | None
    ) -> tuple[list[LedgerEntry], str | None]:
        customer = self._resolve_customer(customer_id)
        return self._txns.ledger(customer.customer_id, limit, cursor)

    # ---- helpers --------------------------------------------------------------------------
    def _validate(self, command: RecordCommand, programme: Programme) -> None:
        errors: list[FieldError] = []
        if command.currency != programme.currency:
            errors.append(
                FieldError(
                    ("body", "currency"),
                    f"the programme runs in {programme.currency}, not {command.currency}",
                )
            )
        if command.occurred_at > self._clock.now() + MAX_FUTURE:
            errors.append(
                FieldError(
                    ("body", "occurred_at"),
                    f"lies in the future (more than {int(MAX_FUTURE.total_seconds() // 60)} minutes "
                    "ahead of the platform's clock)",
                )
            )
        total = lines_total(list(command.lines))
        if cents(command.total) != total:
            errors.append(
                FieldError(("body", "total"), f"the lines add up to {total}, not {cents(command.total)}")
            )
        if command.type is SaleType.SALE and command.original_transaction_id:
            errors.append(
                FieldError(("body", "original_transaction_id"), "only a return names an original sale")
            )
        if errors:
            raise ValidationFailed(_detail(errors), errors=errors)

    def _identity(self, ref: CustomerRef | None, programme: Programme) -> Identity | None:
        if ref is None or ref.link_type is None:
            return None
        try:
            return programme.identify(ref.link_type, ref.link_value or "")
        except link_rules.LinkInvalid as bad:
            raise ValidationFailed.at(("body", "customer", "link", bad.field), bad.msg) from None

    def _resolve(self, customer_id: str, by_id: bool) -> Customer:
        try:
            return self._resolve_customer(customer_id)
        except CustomerNotFound:
            raise ValidationFailed.at(
                ("body", "customer", "customer_id"), f"no customer {customer_id[:64]}"
            ) from None

    def _new_non_member(self, link: Link, store: Store, now: datetime) -> Customer:
        """A guest checkout with an email becomes an identified non-member."""
        return Customer(
            customer_id=new_id(),
            member=False,
            status=CustomerStatus.ACTIVE,
            profile=Profile(),
            consents=Consents(),
            links=(link,),
            created_at=now,
            updated_at=now,
            origin_store_id=store.store_id,
            version=0,
        )

    def _record(
        self,
        command: RecordCommand,
        store: Store,
        now: datetime,
        customer_id: str | None,
        member: bool,
        lines: list[Line],
        line_points: dict[str, int],
        points: int,
        points_if_member: int,
        lot_seq: int | None,
    ) -> TransactionRecord:
        status = command.order_status
        if status is None and store.channel.value == "online" and command.type is SaleType.SALE:
            status = OrderStatus.PLACED
        return TransactionRecord(
            store_id=store.store_id,
            transaction_id=command.transaction_id,
            type=command.type,
            channel=store.channel.value,
            occurred_at=command.occurred_at,
            recorded_at=now,
            customer_id=customer_id,
            member=member,
            currency=command.currency,
            total=cents(command.total),
            lines=tuple(RecordedLine(line, line_points.get(line.line_id, 0)) for line in lines),
            bonus_points=line_points.get(BONUS_LINE, 0),
            points_earned=points,
            points_if_member=points_if_member,
            lot_seq=lot_seq,
            original_store_id=(command.original_store_id or store.store_id)
            if command.original_transaction_id
            else None,
            original_transaction_id=command.original_transaction_id,
            order_status=status,
            coupons=tuple(command.coupons),
        )


# ---- pure helpers ------------------------------------------------------------------------------


def _detail(errors: Sequence[FieldError]) -> str:
    """One problem's detail names each failure, so a client reading only `detail` is not misled."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error.loc[1:] or error.loc)}: {error.msg}" for error in errors
    )


def _stats_after_sale(stats: Stats, amount: Decimal, at: datetime) -> Stats:
    first = stats.first_purchase_at
    last = stats.last_purchase_at
    return Stats(
        transactions=stats.transactions + 1,
        spend=cents(stats.spend + amount),
        first_purchase_at=min(first, at) if first else at,
        last_purchase_at=max(last, at) if last else at,
    )


def _returned_quantities(lines: Sequence[Line], original: TransactionRecord) -> dict[str, Decimal]:
    errors: list[FieldError] = []
    returned: dict[str, Decimal] = {}
    for index, line in enumerate(lines):
        recorded = original.line(line.line_id)
        if recorded is None:
            errors.append(
                FieldError(("body", "lines", index, "line_id"), "the original sale has no such line")
            )
            continue
        if line.sku != recorded.line.sku:
            errors.append(
                FieldError(
                    ("body", "lines", index, "sku"),
                    f"line {line.line_id!r} of the original sale is {recorded.line.sku!r}",
                )
            )
            continue
        if line.quantity > recorded.returnable:
            errors.append(
                FieldError(
                    ("body", "lines", index, "quantity"),
                    f"more than is left to return ({recorded.returnable} of {recorded.line.quantity})",
                )
            )
            continue
        # A refund may be smaller than what was paid (a damaged item), never larger: the money
        # and the customer's spend cannot come back more than once.
        paid = paid_for(recorded.line, recorded.returned_quantity, line.quantity)
        if line.amount > paid:
            errors.append(
                FieldError(
                    ("body", "lines", index, "unit_price"),
                    f"refunds {line.amount} for {line.quantity} of line {line.line_id!r}, "
                    f"which were paid {paid} (net of the sale's discounts)",
                )
            )
            continue
        returned[line.line_id] = line.quantity
    if errors:
        raise ValidationFailed(_detail(errors), errors=errors)
    return returned


def _receipt(
    record: TransactionRecord,
    balance: int | None,
    tier: str | None,
    tier_changed: bool,
    notes: Sequence[ReceiptNote] = (),
) -> Receipt:
    return Receipt(
        transaction_id=record.transaction_id,
        store_id=record.store_id,
        type=record.type,
        customer_id=record.customer_id,
        member=record.member,
        points_earned=record.points_earned,
        points_balance=balance,
        tier=tier,
        tier_changed=tier_changed,
        points_if_member=record.points_if_member,
        total=record.total,
        currency=record.currency,
        order_status=record.order_status,
        offers_applied=record.offers_applied if record.type is SaleType.SALE else (),
        coupons_redeemed=record.coupons_redeemed if record.type is SaleType.SALE else (),
        notes=tuple(notes),
    )


def _recorded_event(record: TransactionRecord) -> ev.DomainEvent:
    return ev.DomainEvent(
        ev.TRANSACTION_RECORDED,
        {
            "transaction_id": record.transaction_id,
            "store_id": record.store_id,
            "channel": record.channel,
            "type": record.type.value,
            "customer_id": record.customer_id,
            "member": record.member,
            "total": str(record.total),
            "currency": record.currency,
            "occurred_at": record.occurred_at,
            "lines": len(record.lines),
            "points_earned": record.points_earned,
            "points_if_member": record.points_if_member,
            "order_status": record.order_status.value if record.order_status else None,
        },
    )
