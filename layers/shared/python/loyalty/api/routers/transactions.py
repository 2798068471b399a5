from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import Router

from loyalty.api import docs
from loyalty.api.http import (
    cursor_in,
    cursor_out,
    idempotency,
    ok,
    page,
    principal,
    reply,
    request_fingerprint,
    stored,
)
from loyalty.api.models.common import PathId, StoreId
from loyalty.api.models.transactions import (
    LedgerEntryOut,
    LedgerList,
    OrderStatusPatch,
    ReceiptOut,
    TransactionIn,
    TransactionList,
    TransactionOut,
    render_receipt,
)
from loyalty.bootstrap import container
from loyalty.observability import count

if TYPE_CHECKING:
    from loyalty.domain.replay import StoredResponse
    from loyalty.services.transactions import Receipt

TAGS = ["transactions"]


def _stored(receipt: Receipt) -> StoredResponse:
    return stored(ReceiptOut.of(receipt), 201)


def _moved(receipt: Receipt) -> StoredResponse:
    return stored(ReceiptOut.of(receipt))


def make_router() -> Router:
    """A fresh router: one per handler instance, because powertools keeps request state on it."""
    router = Router()

    @router.post(
        "/v1/transactions",
        summary="Record a sale or a return (exactly once per store and transaction_id)",
        tags=TAGS,
        responses={
            201: docs.model(ReceiptOut, "recorded (or the first answer, replayed)"),
            409: docs.PROBLEM,
            422: docs.PROBLEM,
        },
    )
    def record(body: TransactionIn):
        event = router.current_event
        fingerprint = request_fingerprint("POST", "/v1/transactions", event.body)
        receipt = container().transactions.record(
            body.to_command(fingerprint),
            principal(router),
            idempotency(router, _stored),
            render=render_receipt,
        )
        count("Sales" if receipt.type.value == "sale" else "Returns")
        if receipt.points_earned > 0:
            count("PointsEarned", receipt.points_earned)
        return reply(_stored(receipt))

    @router.get(
        "/v1/transactions/<store_id>/<transaction_id>",
        summary="One transaction with its lines, points and order status",
        tags=TAGS,
        responses={200: docs.model(TransactionOut, "the transaction"), 404: docs.PROBLEM},
    )
    def get_transaction(store_id: StoreId, transaction_id: PathId):
        return ok(TransactionOut.of(container().transactions.get(store_id, transaction_id)))

    @router.patch(
        "/v1/transactions/<store_id>/<transaction_id>",
        summary="Move an online order on; cancelled or returned reverses its remaining points",
        tags=TAGS,
        responses={
            200: docs.model(ReceiptOut, "the order now"),
            404: docs.PROBLEM,
            409: docs.PROBLEM,
            422: docs.PROBLEM,
        },
    )
    def set_order_status(store_id: StoreId, transaction_id: PathId, body: OrderStatusPatch):
        receipt = container().transactions.set_order_status(
            store_id, transaction_id, body.order_status, principal(router), idempotency(router, _moved)
        )
        return reply(_moved(receipt))

    @router.get(
        "/v1/customers/<customer_id>/transactions",
        summary="Online and offline history with order status, newest first (My Account)",
        tags=TAGS,
    )
    def history(
        customer_id: PathId,
        limit: Annotated[int | None, Query(ge=1, le=200)] = None,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
    ) -> TransactionList:
        records, next_cursor = container().transactions.history(
            customer_id, page(limit), cursor_in(router, cursor)
        )
        return TransactionList(
            items=[TransactionOut.of(r) for r in records], next_cursor=cursor_out(router, next_cursor)
        )

    @router.get(
        "/v1/customers/<customer_id>/ledger",
        summary="Every points movement, newest first; the points add up to available + pending",
        tags=TAGS,
    )
    def ledger(
        customer_id: PathId,
        limit: Annotated[int | None, Query(ge=1, le=200)] = None,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
    ) -> LedgerList:
        entries, next_cursor = container().transactions.ledger(
            customer_id, page(limit), cursor_in(router, cursor)
        )
        return LedgerList(
            items=[LedgerEntryOut.of(e) for e in entries], next_cursor=cursor_out(router, next_cursor)
        )

    return router
