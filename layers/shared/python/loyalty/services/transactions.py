"""The transaction routes' one entry: sales, returns, orders, retro credit and history.

Each use case lives in its own module — `sales` (and the offers a sale applies, `sale_offers`),
`returns` (returns and cancellations), `order_status`, `retro_credit`, `history` — with the
command and receipt they share in `receipts`. This class wires them from the ports it is given
and keeps the surface the routers and the enrolment use.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from loyalty.adapters.customers import CustomerRepository
from loyalty.adapters.idempotency import IdempotencyStore
from loyalty.adapters.offers import OfferRepository
from loyalty.adapters.stored_value import StoredValueRepository
from loyalty.adapters.transactions import TransactionRepository
from loyalty.domain.access import Principal
from loyalty.domain.customers import Customer
from loyalty.domain.ledger import LedgerEntry, TransactionRecord
from loyalty.domain.sales import OrderStatus
from loyalty.services.config import ProgrammeService, StoreService
from loyalty.services.history import TransactionHistory
from loyalty.services.offers import OfferService
from loyalty.services.order_status import OrderStatusService
from loyalty.services.ports import Clock, IdempotencyRequest
from loyalty.services.receipts import Receipt, RecordCommand
from loyalty.services.retro_credit import RetroCredit, RetroCreditService
from loyalty.services.returns import Returns
from loyalty.services.sale_offers import SaleOffers
from loyalty.services.sales import SaleService


class TransactionService:
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
        accounts: StoredValueRepository,
        offers: OfferService | None = None,
        offer_repo: OfferRepository | None = None,
    ) -> None:
        sale_offers = (
            SaleOffers(offers=offers, offer_repo=offer_repo)
            if offers is not None and offer_repo is not None
            else None
        )
        returns = Returns(
            transactions=transactions,
            resolve_customer=resolve_customer,
            accounts=accounts,
            sale_offers=sale_offers,
        )
        self.sales = SaleService(
            transactions=transactions,
            customers=customers,
            stores=stores,
            programme=programme,
            idempotency=idempotency,
            clock=clock,
            resolve_customer=resolve_customer,
            returns=returns,
            accounts=accounts,
            sale_offers=sale_offers,
        )
        self.orders = OrderStatusService(
            transactions=transactions,
            stores=stores,
            programme=programme,
            idempotency=idempotency,
            clock=clock,
            resolve_customer=resolve_customer,
            returns=returns,
        )
        self.retro = RetroCreditService(transactions=transactions, stores=stores, programme=programme)
        self.reads = TransactionHistory(transactions=transactions, resolve_customer=resolve_customer)

    def record(
        self,
        command: RecordCommand,
        principal: Principal,
        idempotency: IdempotencyRequest | None = None,
        *,
        render: Callable[[Receipt], str],
    ) -> Receipt:
        return self.sales.record(command, principal, idempotency, render=render)

    def set_order_status(
        self,
        store_id: str,
        transaction_id: str,
        status: OrderStatus,
        principal: Principal,
        idempotency: IdempotencyRequest | None = None,
    ) -> Receipt:
        return self.orders.set_order_status(store_id, transaction_id, status, principal, idempotency)

    def retro_credit(self, customer: Customer, now: datetime) -> RetroCredit:
        return self.retro.retro_credit(customer, now)

    def get(self, store_id: str, transaction_id: str) -> TransactionRecord:
        return self.reads.get(store_id, transaction_id)

    def receipt_of(self, record: TransactionRecord) -> Receipt:
        return self.reads.receipt_of(record)

    def history(
        self, customer_id: str, limit: int, cursor: str | None
    ) -> tuple[list[TransactionRecord], str | None]:
        return self.reads.history(customer_id, limit, cursor)

    def ledger(
        self, customer_id: str, limit: int, cursor: str | None
    ) -> tuple[list[LedgerEntry], str | None]:
        return self.reads.ledger(customer_id, limit, cursor)


__all__ = ["Receipt", "RecordCommand", "TransactionService"]
