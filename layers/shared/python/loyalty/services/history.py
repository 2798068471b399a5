"""Reading what was recorded: one transaction, a customer's transactions and their ledger."""

from __future__ import annotations

from collections.abc import Callable

from loyalty.adapters.transactions import TransactionRepository
from loyalty.domain.customers import Customer
from loyalty.domain.errors import TransactionNotFound
from loyalty.domain.ledger import LedgerEntry, TransactionRecord
from loyalty.services.receipts import Receipt, receipt_for


class TransactionHistory:
    def __init__(
        self, *, transactions: TransactionRepository, resolve_customer: Callable[[str], Customer]
    ) -> None:
        self._txns = transactions
        self._resolve_customer = resolve_customer  # follows merges; raises CustomerNotFound

    def get(self, store_id: str, transaction_id: str) -> TransactionRecord:
        record = self._txns.get(store_id, transaction_id)
        if record is None:
            raise TransactionNotFound(f"no transaction {transaction_id!r} in store {store_id}")
        return record

    def receipt_of(self, record: TransactionRecord) -> Receipt:
        return receipt_for(record, None, None, False)

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
