"""Returns and cancellations: what comes back of a sale, its points, its spend and its offers.

A return is recorded as a transaction of its own (naming the sale it returns); a cancelled or
returned order has no record of its own, so the order itself carries what happened. Either way it
is one TransactWriteItems: the record or the order, the original's returned quantities (guarded by
its version), the profile (guarded by its version), the sale's lot and the ledger entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.stored_value import AccountMovement, StoredValueRepository
from loyalty.adapters.transactions import TierChange, TransactionRepository
from loyalty.domain import events as ev
from loyalty.domain import points as points_ledger
from loyalty.domain.customers import Customer
from loyalty.domain.errors import FieldError, TransactionCustomerMismatch, ValidationFailed
from loyalty.domain.ledger import LedgerReason, TransactionRecord
from loyalty.domain.money import ZERO, cents
from loyalty.domain.programme import Programme
from loyalty.domain.sales import Line, OrderStatus, SaleType, paid_for
from loyalty.domain.stored_value import cash_to_take_back
from loyalty.domain.stores import Store
from loyalty.domain.tiers import effective_tier, tier_direction
from loyalty.services.receipts import (
    Plan,
    Receipt,
    RecordCommand,
    detail,
    new_record,
    put_record_op,
    receipt_for,
    resolve_named,
)
from loyalty.services.sale_offers import SaleOffers


@dataclass(frozen=True)
class Reversal:
    """Quantities of a sale coming back: by a return (`command`) or by the order's new status."""

    store: Store
    programme: Programme
    customer: Customer | None
    original: TransactionRecord | None
    returned: dict[str, Decimal]
    now: datetime
    reason: LedgerReason
    actor: str = "system"
    command: RecordCommand | None = None  # a return's own record; None for a cancelled order
    render: Callable[[Receipt], str] | None = None  # the answer stored with a return's own record
    new_status: OrderStatus | None = None

    @property
    def points_back(self) -> int:
        return self.original.points_back(self.returned) if self.original is not None else 0

    @property
    def refund(self) -> Decimal:
        """What the customer's spend loses."""
        if self.original is not None and self.original.customer_id is None:
            return ZERO  # an anonymous sale never counted in anyone's spend: its return cannot either
        if self.command is not None:
            return self.command.total  # bounded line by line by what was paid (returned_quantities)
        return self.original.paid_back(self.returned) if self.original is not None else ZERO


@dataclass(frozen=True)
class _CashBack:
    """What a reversal does to the sale's cashback: claimed (its lines' share), taken from the
    promotional cash, and the part already spent that it could not take."""

    ops: list[TxOp]
    claimed: int = 0
    taken: int = 0
    shortfall: int = 0


@dataclass
class _CustomerAfter:
    ops: list[TxOp]
    events: list[ev.DomainEvent]
    balance: int | None = None
    tier: str | None = None
    tier_changed: bool = False


class Returns:
    def __init__(
        self,
        *,
        transactions: TransactionRepository,
        resolve_customer: Callable[[str], Customer],
        accounts: StoredValueRepository,
        sale_offers: SaleOffers | None = None,
    ) -> None:
        self._accounts = accounts  # where a sale's cashback went, and comes back from
        self._txns = transactions
        self._resolve_customer = resolve_customer  # follows merges; raises CustomerNotFound
        self._sale_offers = sale_offers

    def plan_return(
        self,
        command: RecordCommand,
        store: Store,
        programme: Programme,
        customer: Customer | None,
        original: TransactionRecord | None,
        now: datetime,
        actor: str,
        render: Callable[[Receipt], str],
    ) -> Plan:
        returned: dict[str, Decimal] = {}
        if command.original_transaction_id:
            customer = self._check_original(command, store, customer, original)
            assert original is not None
            returned = returned_quantities(command.lines, original)
        elif customer is not None:
            # Without the sale nothing bounds the refund, so a return that would move a profile's
            # spend or points must name it; a return without a receipt is recorded anonymously.
            raise ValidationFailed.at(
                ("body", "original_transaction_id"),
                "a customer's return names the sale it returns (a return without a receipt is sent "
                "without a customer)",
            )
        return self.reverse(
            Reversal(
                store,
                programme,
                customer,
                original,
                returned,
                now,
                LedgerReason.RETURN,
                actor,
                command=command,
                render=render,
            )
        )

    def _check_original(
        self,
        command: RecordCommand,
        store: Store,
        customer: Customer | None,
        original: TransactionRecord | None,
    ) -> Customer | None:
        """The sale a return names exists and is the customer's (or a profile merged into theirs);
        a return without a customer is its sale's customer's."""
        if original is None or original.type is not SaleType.SALE:
            where = command.original_store_id or store.store_id
            raise ValidationFailed.at(
                ("body", "original_transaction_id"),
                f"no sale {command.original_transaction_id!r} in store {where}",
            )
        if customer is not None and original.customer_id not in (None, customer.customer_id):
            survivor = (
                resolve_named(self._resolve_customer, original.customer_id) if original.customer_id else None
            )
            if survivor is None or survivor.customer_id != customer.customer_id:
                raise TransactionCustomerMismatch(
                    "the original sale belongs to another customer", customer_id=customer.customer_id
                )
        if customer is None and original.customer_id:
            customer = resolve_named(self._resolve_customer, original.customer_id)
        return customer

    def reverse(self, reversal: Reversal) -> Plan:
        """Take back the points (and tier progress) of returned quantities; record what happened."""
        original = reversal.original
        points_back = reversal.points_back
        ops = self._give_back(reversal)
        cash = self._cash_back(reversal)
        ops.extend(cash.ops)
        updated_original = None
        if original is not None:
            updated_original = original.with_returned(
                reversal.returned, points_back, cash.claimed, cash.shortfall
            )
            if reversal.new_status is not None:
                updated_original = replace(updated_original, order_status=reversal.new_status)
        after = self._customer_after(reversal, points_back)
        ops.extend(after.ops)
        if updated_original is not None:
            ops.append(
                self._txns.update_transaction_op(updated_original, original.version if original else 0)
            )
        if reversal.command is not None:
            assert reversal.render is not None  # a return always comes with its route's answer
            return self._with_return_record(
                reversal, reversal.command, reversal.render, points_back, cash, after, ops
            )
        assert updated_original is not None
        receipt = receipt_for(
            replace(
                updated_original,
                points_earned=-points_back,
                cashback=-cash.taken,
                cashback_shortfall=cash.shortfall,
            ),
            after.balance,
            after.tier,
            after.tier_changed,
        )
        if after.events:
            # The original carries the events of a cancellation (there is no new record to hold them).
            ops[-1] = self._txns.update_transaction_op(
                updated_original, original.version if original else 0, ev.outbox(after.events)
            )
        return Plan(ops, receipt)

    def _give_back(self, reversal: Reversal) -> list[TxOp]:
        """The offers' counts and coupons of a sale that this brings back in full."""
        original = reversal.original
        if original is None or self._sale_offers is None:
            return []
        if original.fully_returned or not original.returned_in_full_by(reversal.returned):
            return []
        return self._sale_offers.give_back(original, reversal.now)

    def _cash_back(self, reversal: Reversal) -> _CashBack:
        """Cashback comes back like points, line by line pro rata; unlike points, promotional cash
        never goes below zero: what was spent already is recorded as the shortfall."""
        original = reversal.original
        if original is None or original.cashback_account_id is None:
            return _CashBack([])
        claimed = original.cashback_back(reversal.returned)
        if claimed <= 0:
            return _CashBack([])
        account = self._accounts.get(original.cashback_account_id)
        taken, shortfall = cash_to_take_back(account, claimed, reversal.now)
        if account is None or not taken:
            return _CashBack([], claimed, 0, shortfall)
        after = account.moved(-taken, reversal.now)
        command = reversal.command
        movement = AccountMovement(
            account.account_id,
            after.ledger_seq,
            reversal.now,
            -taken,
            reversal.reason.value,
            after.balance,
            reversal.actor,
            reversal.store.store_id if command is not None else original.store_id,
            transaction_id=command.transaction_id if command is not None else original.transaction_id,
            original_transaction_id=original.transaction_id if command is not None else None,
        )
        ops = [self._accounts.update_op(after, account.version), self._accounts.movement_op(movement)]
        return _CashBack(ops, claimed, taken, shortfall)

    def _customer_after(self, reversal: Reversal, points_back: int) -> _CustomerAfter:
        """The profile's spend, points and tier after the reversal, and the writes that say so."""
        customer, original, now = reversal.customer, reversal.original, reversal.now
        after = _CustomerAfter([], [])
        if customer is None:
            return after
        stats = replace(customer.stats, spend=max(ZERO, cents(customer.stats.spend - reversal.refund)))
        updated = replace(customer, stats=stats, updated_at=now, version=customer.version + 1)
        tier_before = effective_tier(customer, reversal.programme, now)
        if customer.member and points_back and original is not None and original.lot_seq is not None:
            lot = self._txns.lot(original.customer_id or customer.customer_id, original.lot_seq)
            # A return's entry names the return itself (and the sale it returns); a
            # cancellation has no record of its own, so its entry names the order.
            command = reversal.command
            own = (reversal.store.store_id, command.transaction_id) if command is not None else None
            updated, from_lot, entry = points_ledger.take_back(
                updated,
                lot,
                points_back,
                reversal.programme,
                now,
                reversal.reason,
                original,
                own,
                reversal.actor,
            )
            if lot is not None and from_lot:
                after.ops.append(self._txns.update_lot_op(lot, (lot.remaining or 0) - from_lot))
            after.ops.append(self._txns.put_ledger_op(entry))
        after.tier = effective_tier(updated, reversal.programme, now)
        updated = replace(updated, tier=after.tier)
        after.tier_changed = after.tier != tier_before
        if after.tier_changed:
            after.events.append(
                points_ledger.tier_event(customer.customer_id, tier_before, after.tier, reversal.reason.value)
            )
        after.balance = updated.points.balance if customer.member else None
        after.ops.append(self._txns.profile_op(updated, customer.version))
        if after.tier_changed:
            change = TierChange(
                customer.customer_id,
                updated.version,
                now,
                tier_before,
                after.tier,
                reversal.reason.value,
                tier_direction(reversal.programme, tier_before, after.tier),
            )
            after.ops.append(self._txns.tier_change_op(change))
        return after

    def _with_return_record(
        self,
        reversal: Reversal,
        command: RecordCommand,
        render: Callable[[Receipt], str],
        points_back: int,
        cash: _CashBack,
        after: _CustomerAfter,
        ops: list[TxOp],
    ) -> Plan:
        """A return's own record comes first in the transaction, carrying the events."""
        customer = reversal.customer
        record = new_record(
            command,
            reversal.store,
            reversal.now,
            customer_id=customer.customer_id if customer else None,
            member=bool(customer and customer.member),
            line_points={},
            points=-points_back,
            points_if_member=0,
            lot_seq=None,
        )
        if cash.claimed:
            assert reversal.original is not None
            record = replace(
                record,
                cashback=-cash.taken,
                cashback_shortfall=cash.shortfall,
                cashback_account_id=reversal.original.cashback_account_id,
                cashback_expires_at=reversal.original.cashback_expires_at,
            )
        receipt = receipt_for(record, after.balance, after.tier, after.tier_changed)
        put = put_record_op(self._txns, record, receipt, render, command.fingerprint, after.events)
        return Plan([put, *ops], receipt)


def returned_quantities(lines: Sequence[Line], original: TransactionRecord) -> dict[str, Decimal]:
    """The quantities a return brings back, each checked against what is left of its sale's line."""
    errors: list[FieldError] = []
    returned: dict[str, Decimal] = {}
    for index, line in enumerate(lines):
        error = _line_error(index, line, original)
        if error is not None:
            errors.append(error)
        else:
            returned[line.line_id] = line.quantity
    if errors:
        raise ValidationFailed(detail(errors), errors=errors)
    return returned


def _line_error(index: int, line: Line, original: TransactionRecord) -> FieldError | None:
    recorded = original.line(line.line_id)
    if recorded is None:
        return FieldError(("body", "lines", index, "line_id"), "the original sale has no such line")
    if line.sku != recorded.line.sku:
        return FieldError(
            ("body", "lines", index, "sku"),
            f"line {line.line_id!r} of the original sale is {recorded.line.sku!r}",
        )
    if line.quantity > recorded.returnable:
        return FieldError(
            ("body", "lines", index, "quantity"),
            f"more than is left to return ({recorded.returnable} of {recorded.line.quantity})",
        )
    # A refund may be smaller than what was paid (a damaged item), never larger: the money
    # and the customer's spend cannot come back more than once.
    paid = paid_for(recorded.line, recorded.returned_quantity, line.quantity)
    if line.amount > paid:
        return FieldError(
            ("body", "lines", index, "unit_price"),
            f"refunds {line.amount} for {line.quantity} of line {line.line_id!r}, "
            f"which were paid {paid} (net of the sale's discounts)",
        )
    return None
