"""Recording sales (and, through the same load, returns): the points, tiers and stats they move.

A sale is one TransactWriteItems: the transaction record (whose key is the dedupe key and which
carries the response to replay and the events to publish), the profile's counters (guarded by the
profile's version) and, for a member who earned points, the ledger entry that is also the lot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from loyalty.adapters.customers import CustomerRepository, LinksTaken, StaleCustomer
from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.idempotency import IdempotencyStore
from loyalty.adapters.stored_value import AccountMovement, StoredValueRepository
from loyalty.adapters.transactions import (
    Loaded,
    StaleTransaction,
    TierChange,
    TransactionRepository,
    receipt_state_of,
    transaction_from_item,
)
from loyalty.domain import events as ev
from loyalty.domain import links as link_rules
from loyalty.domain import points as points_ledger
from loyalty.domain.access import Principal
from loyalty.domain.coupons import normalise_code
from loyalty.domain.customers import (
    Customer,
    CustomerRef,
    CustomerStatus,
    identified_non_member,
)
from loyalty.domain.errors import FieldError, ServiceUnavailable, ValidationFailed
from loyalty.domain.ids import new_id
from loyalty.domain.ledger import TransactionRecord
from loyalty.domain.links import Identity
from loyalty.domain.money import cents
from loyalty.domain.programme import Programme
from loyalty.domain.sales import (
    CashbackEarn,
    Earn,
    SaleType,
    compute_cashback,
    compute_earn,
    is_backdated,
    lines_total,
)
from loyalty.domain.stored_value import Account, cashback_account
from loyalty.domain.stores import Store
from loyalty.domain.tiers import tier_direction
from loyalty.services.config import ProgrammeService, StoreService
from loyalty.services.offer_evaluation import offer_keys
from loyalty.services.offers import Catalogue
from loyalty.services.ports import Clock, IdempotencyRequest, backoff, idempotency_ops, replay_caller_owned
from loyalty.services.receipts import (
    Plan,
    Receipt,
    ReceiptNote,
    RecordCommand,
    detail,
    new_record,
    put_record_op,
    receipt_for,
    resolve_named,
    sale_earn,
    stored_receipt,
)
from loyalty.services.returns import Returns
from loyalty.services.sale_offers import AppliedOffers, SaleOffers

_ATTEMPTS = 12
MAX_FUTURE = timedelta(minutes=5)  # till clocks drift; a sale from tomorrow is a bug, not a sale


@dataclass(frozen=True)
class _Sale:
    """A sale being decided: what was sent, where, and what the platform adds to its answer."""

    command: RecordCommand
    store: Store
    programme: Programme
    now: datetime
    offers: AppliedOffers
    actor: str
    render: Callable[[Receipt], str]  # the answer stored beside the record, replayed by transaction_id

    @property
    def backdated(self) -> bool:
        return is_backdated(self.programme, self.command.occurred_at, self.now)

    @property
    def notes(self) -> list[ReceiptNote]:
        notes = list(self.offers.notes)
        if self.backdated:
            # Recorded (it happened, and counts in stats and reports) but earns nothing: refusing
            # it would leave a till's offline queue stuck on a sale it cannot change.
            notes.append(
                ReceiptNote(
                    "backdated",
                    f"occurred_at is more than the programme's max_backdate_days "
                    f"({self.programme.max_backdate_days}) ago: recorded without earning points",
                )
            )
        return notes

    @property
    def cashback(self) -> CashbackEarn:
        """The promotional cash the sale gives a member by the programme's cashback rules."""
        if self.backdated:
            return CashbackEarn({})
        return compute_cashback(
            self.programme, self.store, list(self.command.lines), self.command.occurred_at
        )

    @property
    def points_if_member(self) -> int:
        """What the sale would have earned a member of the base tier (for non-members' receipts)."""
        if self.backdated:
            return 0
        command = self.command
        return compute_earn(
            self.programme, self.store, list(command.lines), self.programme.base_tier, command.occurred_at
        ).total

    def record(
        self,
        customer: Customer | None,
        earn: Earn | None = None,
        lot_seq: int | None = None,
        cash: Account | None = None,
    ) -> TransactionRecord:
        cashback = self.cashback
        record = new_record(
            self.command,
            self.store,
            self.now,
            customer_id=customer.customer_id if customer else None,
            member=earn is not None,
            line_points=earn.line_points if earn else {},
            points=earn.total if earn else 0,
            points_if_member=self.points_if_member,
            lot_seq=lot_seq,
            line_cashback=cashback.line_cents if cash is not None else None,
            cashback_if_member=cashback.total,
        )
        if cash is not None:
            record = replace(record, cashback_account_id=cash.account_id, cashback_expires_at=cash.expires_at)
        return self.offers.stamp(record)


class SaleService:
    def __init__(
        self,
        *,
        transactions: TransactionRepository,
        customers: CustomerRepository,
        stores: StoreService,
        programme: ProgrammeService,
        idempotency: IdempotencyStore,
        clock: Clock,
        resolve_customer: Callable[[str], Customer],
        returns: Returns,
        accounts: StoredValueRepository,
        sale_offers: SaleOffers | None = None,
    ) -> None:
        self._accounts = accounts  # the promotional-cash accounts cashback credits
        self._txns = transactions
        self._customers = customers
        self._stores = stores
        self._programme = programme
        self._idempotency = idempotency
        self._clock = clock
        self._resolve_customer = resolve_customer  # follows merges; raises CustomerNotFound
        self._returns = returns
        self._sale_offers = sale_offers

    def record(
        self,
        command: RecordCommand,
        principal: Principal,
        idempotency: IdempotencyRequest | None = None,
        *,
        render: Callable[[Receipt], str],
    ) -> Receipt:
        """`render`: the body the route answers, stored with the record so that a replayed
        transaction_id answers it byte for byte (the route owns the response's shape)."""
        store = self._stores.for_request(principal, command.store_id)
        programme = self._programme.current()
        self._validate(command, programme)
        identity = _identity(command.customer, programme)
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
            catalogue = (
                self._sale_offers.catalogue() if self._sale_offers and command.type is SaleType.SALE else None
            )
            loaded = self._load(command, store, customer_id, catalogue, codes, render)
            customer = loaded.customer
            if customer_id is not None and (customer is None or customer.status is not CustomerStatus.ACTIVE):
                customer = resolve_named(self._resolve_customer, customer_id)
            creating = link is not None and customer is None
            if link is not None and customer is None:
                customer = identified_non_member(new_id(), link, store.store_id, now, version=0)
            try:
                if command.type is SaleType.SALE:
                    offers = self._offers_for(
                        catalogue, command, store, programme, customer, now, codes, loaded
                    )
                    sale = _Sale(command, store, programme, now, offers, principal.key_id, render)
                    plan = self._plan_sale(sale, customer, creating, ignored)
                else:
                    plan = self._returns.plan_return(
                        command, store, programme, customer, loaded.original, now, principal.key_id, render
                    )
                extra = idempotency_ops(self._idempotency, idempotency, plan.receipt, now)
                self._txns.commit([*plan.ops, *extra])
                return plan.receipt
            except (StaleCustomer, StaleTransaction, LinksTaken):
                continue  # someone changed the profile, the original or the link meanwhile: again
        raise ServiceUnavailable("the customer's records kept changing; retry")

    def _load(
        self,
        command: RecordCommand,
        store: Store,
        customer_id: str | None,
        catalogue: Catalogue | None,
        codes: Sequence[str],
        render: Callable[[Receipt], str],
    ) -> Loaded:
        """One round trip: the record (a replay), the profile, the original of a return, and the
        counters of the offers and coupons the sale may use."""
        original_key = None
        if command.type is SaleType.RETURN and command.original_transaction_id:
            original_key = (command.original_store_id or store.store_id, command.original_transaction_id)
        loaded = self._txns.load(
            store.store_id,
            command.transaction_id,
            customer_id,
            original_key,
            offer_keys(catalogue, customer_id, codes, list(command.lines), store) if catalogue else (),
        )
        if loaded.existing is not None:
            existing = loaded.existing
            state = receipt_state_of(existing)
            if state is not None and existing.get("fingerprint") == command.fingerprint:
                answer = render(stored_receipt(transaction_from_item(existing), state))
                existing = {**existing, "status_code": 201, "body": answer}
            replay_caller_owned(existing, command.fingerprint, "transaction_id")
        return loaded

    def _offers_for(
        self,
        catalogue: Catalogue | None,
        command: RecordCommand,
        store: Store,
        programme: Programme,
        customer: Customer | None,
        now: datetime,
        codes: Sequence[str],
        loaded: Loaded,
    ) -> AppliedOffers:
        if catalogue is None or self._sale_offers is None:
            return AppliedOffers()
        return self._sale_offers.for_sale(
            catalogue, command, store, programme, customer, now, codes, loaded.extras
        )

    # ---- deciding a sale ----------------------------------------------------------------------
    def _plan_sale(
        self, sale: _Sale, customer: Customer | None, creating: bool, ignored: Identity | None
    ) -> Plan:
        if customer is None:  # anonymous: kept for member-versus-non-member reporting
            record = sale.record(None)
            receipt = replace(receipt_for(record, None, None, False, sale.notes), customer_ignored=ignored)
            return Plan([*sale.offers.ops, self._put(sale, record, receipt, [])], receipt)
        if not customer.member:
            return self._plan_non_member_sale(sale, customer, creating)
        return self._plan_member_sale(sale, customer)

    def _plan_non_member_sale(self, sale: _Sale, customer: Customer, creating: bool) -> Plan:
        """An identified non-member's sale counts in their stats; it earns nothing."""
        record = sale.record(customer)
        stats = customer.stats.with_sale(lines_total(list(sale.command.lines)), sale.command.occurred_at)
        updated = replace(customer, stats=stats, updated_at=sale.now, version=customer.version + 1)
        receipt = receipt_for(record, None, None, False, sale.notes)
        ops: list[TxOp] = [*sale.offers.ops, self._put(sale, record, receipt, [])]
        if creating:
            ops.extend(self._customers.create_ops(replace(updated, version=1)))
        else:
            ops.append(self._txns.profile_op(updated, customer.version))
        return Plan(ops, receipt)

    def _plan_member_sale(self, sale: _Sale, customer: Customer) -> Plan:
        """A member's sale earns (as their tier and the offers say) and may move their tier."""
        decided = points_ledger.member_sale(
            customer,
            sale.programme,
            sale.store,
            list(sale.command.lines),
            sale.now,
            occurred_at=sale.command.occurred_at,
            transaction_id=sale.command.transaction_id,
            backdated=sale.backdated,
            multipliers=sale.offers.multipliers,
            bonus_points=sale.offers.bonus_points,
            actor=sale.actor,
        )
        updated = replace(decided.customer, updated_at=sale.now, version=customer.version + 1)
        entry = decided.earned.entry
        cashback = sale.cashback
        cash = None
        if cashback.total > 0:
            cash = cashback_account(
                new_id(),
                customer.customer_id,
                sale.programme.currency,
                cashback.total,
                sale.store.store_id,
                sale.now,
                cashback.expires_days,
            )
        record = sale.record(customer, decided.earn, entry.seq if entry else None, cash)
        tier_changed = decided.tier_after != decided.tier_before
        receipt = receipt_for(record, updated.points.balance, decided.tier_after, tier_changed, sale.notes)
        ops: list[TxOp] = [
            *sale.offers.ops,
            self._put(
                sale, record, receipt, list(decided.events), sale_earn(entry, decided.earn.rules_applied)
            ),
            self._txns.profile_op(updated, customer.version),
        ]
        if entry is not None:
            ops.append(self._txns.put_ledger_op(entry, *decided.earned.due))
        if cash is not None:
            ops.extend(self._cashback_ops(cash, sale))
        if tier_changed:
            change = TierChange(
                customer.customer_id,
                updated.version,
                sale.now,
                decided.tier_before,
                decided.tier_after,
                "sale",
                tier_direction(sale.programme, decided.tier_before, decided.tier_after),
            )
            ops.append(self._txns.tier_change_op(change))
        return Plan(ops, receipt)

    def _cashback_ops(self, cash: Account, sale: _Sale) -> list[TxOp]:
        """The promotional-cash account the sale credits and its first movement, naming the sale."""
        movement = AccountMovement(
            cash.account_id,
            1,
            sale.now,
            cash.balance,
            "cashback",
            cash.balance,
            sale.actor,
            sale.store.store_id,
            transaction_id=sale.command.transaction_id,
        )
        return [self._accounts.create_op(cash), self._accounts.movement_op(movement)]

    def _put(
        self,
        sale: _Sale,
        record: TransactionRecord,
        receipt: Receipt,
        events: list[ev.DomainEvent],
        earn: dict[str, object] | None = None,
    ) -> TxOp:
        """The sale's record, with the answer to replay and its events (the recorded one first)."""
        return put_record_op(self._txns, record, receipt, sale.render, sale.command.fingerprint, events, earn)

    # ---- checks -------------------------------------------------------------------------------
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
            raise ValidationFailed(detail(errors), errors=errors)


def _identity(ref: CustomerRef | None, programme: Programme) -> Identity | None:
    if ref is None or ref.link_type is None:
        return None
    try:
        return programme.identify(ref.link_type, ref.link_value or "")
    except link_rules.LinkInvalid as bad:
        raise ValidationFailed.at(("body", "customer", "link", bad.field), bad.msg) from None
