"""Gift cards: sell one (a physical card number activated, or an e-card emailed with its PIN),
check its balance, reload it. Spending from one is services/accounts.py; holds services/holds.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.idempotency import IdempotencyStore
from loyalty.adapters.stored_value import (
    AccountMovement,
    AlreadyExists,
    Message,
    StaleAccount,
    StoredValueRepository,
)
from loyalty.domain import events as ev
from loyalty.domain.access import Principal
from loyalty.domain.errors import (
    AccountNotUsable,
    CardExists,
    NotAGiftCard,
    ServiceUnavailable,
    ValidationFailed,
)
from loyalty.domain.ids import new_id
from loyalty.domain.stored_value import (
    Account,
    AccountKind,
    from_cents,
    hash_pin,
    is_valid_card_number,
    new_gift_card_number,
    new_pin,
    to_cents,
)
from loyalty.services.account_access import ATTEMPTS, AccountAccess, masked
from loyalty.services.config import StoreService
from loyalty.services.ports import Clock, Idempotency, backoff, idempotency_ops, replay_if_recorded

GIFT_CARD_VALIDITY_DAYS = 3 * 365


@dataclass(frozen=True)
class Sold:
    account: Account
    pin: str | None  # only for the e-card's own email; never stored or shown again


class GiftCardService:
    def __init__(
        self,
        *,
        accounts: StoredValueRepository,
        access: AccountAccess,
        stores: StoreService,
        idempotency: IdempotencyStore,
        pepper: Callable[[], str],
        clock: Clock,
    ) -> None:
        self._accounts = accounts
        self._access = access
        self._stores = stores
        self._idempotency = idempotency
        self._pepper = pepper
        self._clock = clock

    def sell_gift_card(
        self,
        amount: Decimal,
        currency: str,
        store_id: str | None,
        principal: Principal,
        card_number: str | None = None,
        email: str | None = None,
        name: str | None = None,
        message: str | None = None,
        idempotency: Idempotency = None,
    ) -> Sold:
        store = self._stores.for_request(principal, store_id).store_id
        replay_if_recorded(self._idempotency, idempotency)
        self._access.currency(currency)
        now = self._clock.now()
        pin = None
        if card_number is not None:
            number = card_number.replace(" ", "")
            if not is_valid_card_number(number):
                raise ValidationFailed.at(
                    ("body", "card_number"), "not a card number (12-19 digits, check digit)"
                )
        else:
            number, pin = new_gift_card_number(), new_pin()
        account = Account(
            account_id=number,
            kind=AccountKind.GIFT_CARD,
            currency=currency,
            balance=to_cents(amount),
            created_at=now,
            store_id=store,
            expires_at=now + timedelta(days=GIFT_CARD_VALIDITY_DAYS),
            pin_hash=hash_pin(pin, number, self._pepper()) if pin else None,
            ledger_seq=1,
        )
        ops: list[TxOp] = [
            self._accounts.create_op(
                account,
                ev.outbox([_sold_event(number, amount, currency, store, e_card=pin is not None)]),
            ),
            self._accounts.movement_op(
                AccountMovement(
                    number, 1, now, account.balance, "activate", account.balance, principal.key_id, store
                )
            ),
        ]
        if pin is not None and email:
            ops.append(self._accounts.message_op(_e_card_email(account, pin, email, name, message, now)))
        sold = Sold(account, pin)
        ops += idempotency_ops(self._idempotency, idempotency, sold, now)
        try:
            self._accounts.commit(ops)
        except AlreadyExists:
            raise CardExists(f"card {masked(number)} is already active") from None
        return sold

    def balance(self, number: str, principal: Principal, pin: str | None) -> Account:
        """A till's key may check any card; online, an e-card's balance needs its PIN."""
        account = self._access.account(number)
        self._access.require_pin(account, principal, pin)
        return account

    def reload(
        self, number: str, amount: Decimal, principal: Principal, idempotency: Idempotency = None
    ) -> Account:
        replay_if_recorded(self._idempotency, idempotency)
        for attempt in range(ATTEMPTS):
            backoff(attempt)
            account = self._access.account(number)
            now = self._clock.now()
            if account.kind is not AccountKind.GIFT_CARD:
                raise NotAGiftCard(
                    f"{account.kind.value} changes only by its own issue and refund paths, not a reload"
                )
            if account.is_expired(now) or account.status != "active":
                raise AccountNotUsable("an expired or closed card cannot be reloaded")
            cents = to_cents(amount)
            after = account.moved(cents, now)
            try:
                self._accounts.commit(
                    [
                        self._accounts.update_op(after, account.version),
                        self._accounts.movement_op(
                            AccountMovement(
                                account.account_id,
                                after.ledger_seq,
                                now,
                                cents,
                                "reload",
                                after.balance,
                                principal.key_id,
                                principal.store_id,
                            )
                        ),
                        *idempotency_ops(self._idempotency, idempotency, after, now),
                    ]
                )
                return after
            except StaleAccount:
                continue
        raise ServiceUnavailable("the card kept changing; retry")


def _sold_event(
    number: str, amount: Decimal, currency: str, store: str | None, e_card: bool
) -> ev.DomainEvent:
    return ev.DomainEvent(
        ev.GIFT_CARD_SOLD,
        {
            "card": masked(number),
            "amount": str(amount),
            "currency": currency,
            "store_id": store,
            "kind": "e-card" if e_card else "physical",
        },
    )


def _e_card_email(
    account: Account, pin: str, email: str, name: str | None, message: str | None, now: datetime
) -> Message:
    """The e-card's email: its number and PIN go to the buyer only once."""
    number, amount, currency = account.account_id, from_cents(account.balance), account.currency
    return Message(
        message_id=new_id(),
        to=email,
        subject="Your gift card",
        body=_gift_card_email(number, pin, amount, currency, name, message),
        created_at=now,
        # The outbox shows what was sent, never what spends the card.
        shown_body=_gift_card_email(masked(number), "*" * len(pin), amount, currency, name, message),
    )


def _gift_card_email(
    number: str, pin: str, amount: Decimal, currency: str, name: str | None, message: str | None
) -> str:
    greeting = f"Dear {name}, here" if name else "Here"
    body = f"{greeting} is your gift card: {number}, PIN {pin}, worth {amount} {currency}."
    return body + (f"\n\n{message}" if message else "")
