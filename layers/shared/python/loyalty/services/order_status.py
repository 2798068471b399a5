"""An online order's status: placed, shipped, delivered; cancelling or returning it reverses
every point it still holds (as a return would), in one transaction with the order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from loyalty.adapters.customers import StaleCustomer
from loyalty.adapters.idempotency import IdempotencyStore
from loyalty.adapters.transactions import StaleTransaction, TransactionRepository
from loyalty.domain.access import Principal
from loyalty.domain.customers import Customer
from loyalty.domain.errors import (
    CustomerNotFound,
    InvalidOrderTransition,
    ServiceUnavailable,
    TransactionNotFound,
)
from loyalty.domain.ledger import LedgerReason, TransactionRecord
from loyalty.domain.sales import ORDER_TRANSITIONS, REVERSING_STATUSES, OrderStatus
from loyalty.domain.tiers import effective_tier
from loyalty.services.config import ProgrammeService, StoreService
from loyalty.services.ports import Clock, IdempotencyRequest, backoff, idempotency_ops, replay_if_recorded
from loyalty.services.receipts import Plan, Receipt, receipt_for, resolve_named
from loyalty.services.returns import Returns, Reversal

_ATTEMPTS = 12


class OrderStatusService:
    def __init__(
        self,
        *,
        transactions: TransactionRepository,
        stores: StoreService,
        programme: ProgrammeService,
        idempotency: IdempotencyStore,
        clock: Clock,
        resolve_customer: Callable[[str], Customer],
        returns: Returns,
    ) -> None:
        self._txns = transactions
        self._stores = stores
        self._programme = programme
        self._idempotency = idempotency
        self._clock = clock
        self._resolve_customer = resolve_customer  # follows merges; raises CustomerNotFound
        self._returns = returns

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
            record = self._order(store_id, transaction_id)
            if record.order_status is status:
                receipt = self.order_receipt(record, now)
                if idempotency is not None:  # nothing to change; the answer is still recorded
                    self._txns.commit(idempotency_ops(self._idempotency, idempotency, receipt, now))
                return receipt
            assert record.order_status is not None
            if status not in ORDER_TRANSITIONS[record.order_status]:
                raise InvalidOrderTransition(
                    f"an order that is {record.order_status.value} cannot become {status.value}",
                    order_status=record.order_status.value,
                )
            programme = self._programme.current()
            store = self._stores.require(store_id)
            try:
                if status in REVERSING_STATUSES:
                    customer = (
                        resolve_named(self._resolve_customer, record.customer_id)
                        if record.customer_id
                        else None
                    )
                    plan = self._returns.reverse(
                        Reversal(
                            store,
                            programme,
                            customer,
                            record,
                            returned=record.returnable_quantities,
                            now=now,
                            reason=LedgerReason.CANCEL
                            if status is OrderStatus.CANCELLED
                            else LedgerReason.RETURN,
                            actor=principal.key_id,
                            new_status=status,
                        )
                    )
                else:
                    moved = replace(record, order_status=status, version=record.version + 1)
                    receipt = self.order_receipt(moved, now)
                    plan = Plan([self._txns.update_transaction_op(moved, record.version)], receipt)
                self._txns.commit(
                    [*plan.ops, *idempotency_ops(self._idempotency, idempotency, plan.receipt, now)]
                )
                return plan.receipt
            except (StaleCustomer, StaleTransaction):
                continue
        raise ServiceUnavailable("the order kept changing; retry")

    def _order(self, store_id: str, transaction_id: str) -> TransactionRecord:
        record = self._txns.get(store_id, transaction_id)
        if record is None:
            raise TransactionNotFound(f"no transaction {transaction_id!r} in store {store_id}")
        if record.order_status is None:
            raise InvalidOrderTransition("this transaction is not an order (it has no order_status)")
        return record

    def order_receipt(self, record: TransactionRecord, now: datetime) -> Receipt:
        """An order's answer carries the member's balance and tier whatever the status, as a
        cancellation's does: a client must not have to guess which statuses fill them in."""
        plain = receipt_for(record, None, None, False)
        if record.customer_id is None:
            return plain
        try:
            customer = self._resolve_customer(record.customer_id)
        except CustomerNotFound:  # erased since: the order stands, the profile is gone
            return plain
        if not customer.member:
            return plain
        tier = effective_tier(customer, self._programme.current(), now)
        return receipt_for(record, customer.points.balance, tier, False)
