from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

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
    replay_guards,
    reply,
    request_fingerprint,
    stored,
)
from loyalty.api.models.common import CustomerRefIn, PathId
from loyalty.api.models.stored_value import (
    AccountIssueIn,
    AccountList,
    AccountOut,
    CaptureIn,
    GiftCardIn,
    GiftCardOut,
    GiftCardRedeemIn,
    HoldIn,
    HoldOut,
    MessageList,
    MessageOut,
    MovementList,
    MovementOut,
    PointsHoldOut,
    ReloadIn,
    SpentOut,
    StoreQuery,
    render_spent,
)
from loyalty.bootstrap import container
from loyalty.domain.customers import Customer
from loyalty.domain.stored_value import Account, AccountKind, from_cents
from loyalty.observability import count

if TYPE_CHECKING:
    from loyalty.adapters.stored_value import HoldRecord
    from loyalty.domain.replay import StoredResponse
    from loyalty.services.accounts import Spent
    from loyalty.services.gift_cards import Sold

PIN_HEADER = "x-gift-card-pin"
TAGS = ["stored value"]


def _gift_card(account: Account, now: datetime) -> GiftCardOut:
    return GiftCardOut(
        **AccountOut.of(account, now).model_dump(),
        card_number=account.account_id,
        e_card=account.pin_hash is not None,
    )


def _sold(sold: Sold) -> StoredResponse:
    return stored(_gift_card(sold.account, container().clock.now()), 201)


def _reloaded(account: Account) -> StoredResponse:
    return stored(_gift_card(account, container().clock.now()))


def _issued(account: Account) -> StoredResponse:
    return stored(AccountOut.of(account, container().clock.now()), 201)


def _spent(spent: Spent) -> StoredResponse:
    return stored(SpentOut.of(spent, container().clock.now()), 201)


def _held(hold: HoldRecord) -> StoredResponse:
    return stored(HoldOut.of(hold, container().clock.now()), 201)


def _settled(result: tuple[HoldRecord, Account | Customer]) -> StoredResponse:
    """A captured or released hold: a points hold answers in points with its customer."""
    hold, holder = result
    now = container().clock.now()
    if isinstance(holder, Customer):
        return stored(PointsHoldOut.of(hold, now, holder))
    return stored(HoldOut.of(hold, now, holder))


def make_router() -> Router:
    """A fresh router: one per handler instance, because powertools keeps request state on it."""
    router = Router()

    def pin() -> str | None:
        return router.current_event.headers.get(PIN_HEADER)

    def owner(customer: CustomerRefIn | None) -> str | None:
        return container().redemptions.customer_id_of(customer.to_ref()) if customer else None

    @router.post(
        "/v1/gift-cards",
        summary="Sell a gift card: activate a physical card number, or an e-card emailed with its PIN",
        tags=TAGS,
        responses={201: docs.model(GiftCardOut, "the card"), 409: docs.PROBLEM, 422: docs.PROBLEM},
    )
    def sell(body: GiftCardIn):
        sold = container().gift_cards.sell_gift_card(
            body.amount,
            body.currency,
            body.store_id,
            principal(router),
            card_number=body.card_number,
            email=body.delivery.email if body.delivery else None,
            name=body.delivery.name if body.delivery else None,
            message=body.delivery.message if body.delivery else None,
            idempotency=replay_guards(router, _sold, body.request_id, body.store_id),
        )
        count("GiftCardsSold")
        return reply(_sold(sold))

    @router.get(
        "/v1/gift-cards/<card_number>",
        summary="A gift card's balance (a till's key, or the e-card's PIN in x-gift-card-pin)",
        tags=TAGS,
        responses={
            200: docs.model(GiftCardOut, "the card"),
            403: docs.PROBLEM,
            404: docs.PROBLEM,
            409: docs.PROBLEM,
        },
    )
    def balance(card_number: PathId):
        account = container().gift_cards.balance(card_number, principal(router), pin())
        return ok(_gift_card(account, container().clock.now()))

    @router.post(
        "/v1/gift-cards/<card_number>/redeem",
        summary="Spend from a gift card (partial redemption allowed); exactly once per redemption_id",
        tags=TAGS,
        responses={201: docs.model(SpentOut, "spent"), 409: docs.PROBLEM, 422: docs.PROBLEM},
    )
    def redeem(card_number: PathId, body: GiftCardRedeemIn):
        fingerprint = request_fingerprint("POST", router.current_event.path, router.current_event.body)
        spent = container().accounts.redeem(
            card_number,
            body.redemption_id,
            body.amount,
            body.store_id,
            principal(router),
            fingerprint,
            pin(),
            customer_id=owner(body.customer),
            idempotency=idempotency(router, _spent),
            render=render_spent,
        )
        return reply(_spent(spent))

    @router.post(
        "/v1/gift-cards/<card_number>/reload",
        summary="Add value to a gift card (only a gift card: 409 not-a-gift-card otherwise)",
        tags=TAGS,
        responses={200: docs.model(GiftCardOut, "the card"), 409: docs.PROBLEM, 422: docs.PROBLEM},
    )
    def reload(card_number: PathId, body: ReloadIn):
        account = container().gift_cards.reload(
            card_number,
            body.amount,
            principal(router),
            idempotency=replay_guards(router, _reloaded, body.request_id),
        )
        return reply(_reloaded(account))

    @router.post(
        "/v1/gift-cards/<card_number>/holds",
        summary="Authorise an amount for a web order (captured on shipment, released on cancellation)",
        tags=TAGS,
        responses={201: docs.model(HoldOut, "held"), 409: docs.PROBLEM, 422: docs.PROBLEM},
    )
    def hold(card_number: PathId, body: HoldIn):
        record = container().money_holds.hold(
            card_number,
            body.hold_id,
            body.amount,
            body.expires_in_seconds,
            principal(router),
            pin(),
            customer_id=owner(body.customer),
            idempotency=idempotency(router, _held),
        )
        return reply(_held(record))

    @router.post(
        "/v1/holds/<hold_id>/capture",
        summary="Take up to the held amount (money) or points; an admin key names the hold's store_id",
        tags=TAGS,
        responses={
            200: docs.model(HoldOut | PointsHoldOut, "captured"),
            403: docs.PROBLEM,
            404: docs.PROBLEM,
            409: docs.PROBLEM,
            422: docs.PROBLEM,
        },
    )
    def capture(hold_id: PathId, body: CaptureIn, store_id: StoreQuery = None):
        caller, guard = principal(router), idempotency(router, _settled)
        settled = container().holds.capture(hold_id, caller, body.amount, body.points, store_id, guard)
        return reply(_settled(settled))

    @router.post(
        "/v1/holds/<hold_id>/release",
        summary="Give the held amount back (a cancelled order); idempotent; an admin key names the store_id",
        tags=TAGS,
        responses={
            200: docs.model(HoldOut | PointsHoldOut, "released"),
            403: docs.PROBLEM,
            404: docs.PROBLEM,
            409: docs.PROBLEM,
        },
    )
    def release(hold_id: PathId, store_id: StoreQuery = None):
        caller, guard = principal(router), idempotency(router, _settled)
        return reply(_settled(container().holds.release(hold_id, caller, store_id, guard)))

    @router.get(
        "/v1/customers/<customer_id>/accounts", summary="A customer's stored-value accounts", tags=TAGS
    )
    def customer_accounts(customer_id: PathId) -> AccountList:
        customer = container().resolver.get(customer_id)
        now = container().clock.now()
        return AccountList(
            items=[AccountOut.of(a, now) for a in container().accounts.accounts_of(customer.customer_id)]
        )

    @router.post(
        "/v1/customers/<customer_id>/accounts",
        summary="Issue merchandise credit (tills: a return without receipt) or promotional cash (admins)",
        tags=TAGS,
        responses={201: docs.model(AccountOut, "the account"), 403: docs.PROBLEM, 422: docs.PROBLEM},
    )
    def issue_account(customer_id: PathId, body: AccountIssueIn):
        account = container().accounts.issue_account(
            customer_id,
            AccountKind(body.kind),
            body.amount,
            body.currency,
            body.expires_at,
            principal(router),
            idempotency=replay_guards(router, _issued, body.request_id),
        )
        return reply(_issued(account))

    @router.get(
        "/v1/accounts/<account_id>/ledger",
        summary="Every movement of an account, newest first",
        tags=TAGS,
        responses={
            200: docs.model(MovementList, "the movements, newest first"),
            409: docs.PROBLEM,  # card-locked: too many wrong PINs for an e-card
        },
    )
    def account_ledger(
        account_id: PathId,
        limit: Annotated[int | None, Query(ge=1, le=200)] = None,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
    ) -> MovementList:
        moves, next_cursor = container().accounts.ledger(
            account_id, page(limit), cursor_in(router, cursor), principal(router), pin()
        )
        return MovementList(
            items=[
                MovementOut(
                    seq=m.seq,
                    at=m.at,
                    amount=str(from_cents(m.amount)),
                    reason=m.reason,
                    balance_after=str(from_cents(m.balance_after)),
                    actor=m.actor,
                    store_id=m.store_id,
                    redemption_id=m.redemption_id,
                    hold_id=m.hold_id,
                    transaction_id=m.transaction_id,
                    original_transaction_id=m.original_transaction_id,
                )
                for m in moves
            ],
            next_cursor=cursor_out(router, next_cursor),
        )

    @router.get(
        "/v1/admin/outbox",
        summary="Messages on every channel (and e-card emails) and what became of them, newest first",
        tags=TAGS,
    )
    def outbox(
        limit: Annotated[int | None, Query(ge=1, le=200)] = None,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
        customer_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        campaign_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        channel: Annotated[Literal["email", "sms", "mail", "api"] | None, Query()] = None,
        status: Annotated[
            Literal["queued", "deferred", "sending", "sent", "failed", "suppressed"] | None, Query()
        ] = None,
    ) -> MessageList:
        wanted = {"customer_id": customer_id, "campaign_id": campaign_id, "kind": channel, "status": status}
        filters = {name: value for name, value in wanted.items() if value is not None}
        messages, next_cursor = container().accounts.messages(page(limit), cursor_in(router, cursor), filters)
        return MessageList(
            items=[
                MessageOut(
                    message_id=m.message_id,
                    kind=m.kind,
                    to=m.to,
                    subject=m.subject,
                    body=m.shown_body,
                    status=m.status,
                    created_at=m.created_at,
                    attempts=m.attempts,
                    sent_at=m.sent_at,
                    provider_message_id=m.provider_message_id,
                    last_error=m.last_error,
                    next_attempt_at=m.next_attempt_at if m.status in ("queued", "deferred") else None,
                    channel=m.channel or m.kind,
                    customer_id=m.customer_id,
                    campaign_id=m.campaign_id,
                    template_id=m.template_id,
                    cause=m.cause,
                    reason=m.reason,
                    opened_at=m.opened_at,
                    clicked_at=m.clicked_at,
                )
                for m in messages
            ],
            next_cursor=cursor_out(router, next_cursor),
        )

    return router
