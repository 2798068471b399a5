"""Stored-value accounts: merchandise credit and promotional cash issued to a customer, spending
from any account or gift card (once per redemption_id), its reversal, and the movements.

Every balance movement is one transaction of the account (guarded by its version) and its ledger
entry; a redemption adds its record (keyed by redemption_id: once, for ever), whose stored answer
is what the caller rendered (`render`), so a replayed redemption_id answers as the first call did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from loyalty.adapters.idempotency import IdempotencyStore
from loyalty.adapters.redemptions import RedemptionRecord, RedemptionRepository
from loyalty.adapters.stored_value import (
    AccountMovement,
    Message,
    StaleAccount,
    StoredValueRepository,
    account_from_item,
    account_pk,
)
from loyalty.domain import events as ev
from loyalty.domain.access import Principal
from loyalty.domain.customers import Customer
from loyalty.domain.errors import (
    AccountNotFound,
    AccountNotUsable,
    Forbidden,
    InsufficientBalance,
    ServiceUnavailable,
    ValidationFailed,
)
from loyalty.domain.ids import is_plausible_id, new_id
from loyalty.domain.stored_value import Account, AccountKind, from_cents, to_cents
from loyalty.services.account_access import ATTEMPTS, AccountAccess, redeemed_event
from loyalty.services.config import StoreService
from loyalty.services.ports import (
    Clock,
    Idempotency,
    backoff,
    idempotency_ops,
    replay_caller_owned,
    replay_if_recorded,
)


@dataclass(frozen=True)
class Spent:
    record: RedemptionRecord
    account: Account
    amount: int


class AccountService:
    def __init__(
        self,
        *,
        accounts: StoredValueRepository,
        redemptions: RedemptionRepository,
        access: AccountAccess,
        stores: StoreService,
        idempotency: IdempotencyStore,
        clock: Clock,
        resolve_customer: Callable[[str], Customer],
    ) -> None:
        self._accounts = accounts
        self._redemptions = redemptions
        self._access = access
        self._stores = stores
        self._idempotency = idempotency
        self._clock = clock
        self._resolve_customer = resolve_customer

    def issue_account(
        self,
        customer_id: str,
        kind: AccountKind,
        amount: Decimal,
        currency: str,
        expires_at: datetime | None,
        principal: Principal,
        idempotency: Idempotency = None,
    ) -> Account:
        if kind is AccountKind.PROMO_CASH and not principal.is_admin:
            raise Forbidden("promotional cash is issued by admins (and campaigns)")
        if kind is AccountKind.GIFT_CARD:
            raise ValidationFailed.at(("body", "kind"), "gift cards are sold with POST /v1/gift-cards")
        replay_if_recorded(self._idempotency, idempotency)
        # After the replay check: a customer erased or merged away since still gets the first answer.
        customer_id = self._resolve_customer(customer_id).customer_id
        self._access.currency(currency)
        now = self._clock.now()
        if expires_at is not None and expires_at <= now:
            raise ValidationFailed.at(("body", "expires_at"), "lies in the past")
        if kind is AccountKind.PROMO_CASH and expires_at is None:
            expires_at = now + timedelta(days=90)  # promotional cash always expires
        account = Account(
            account_id=new_id(),
            kind=kind,
            currency=currency,
            balance=to_cents(amount),
            created_at=now,
            customer_id=customer_id,
            store_id=principal.store_id,
            expires_at=expires_at,
            ledger_seq=1,
        )
        self._accounts.commit(
            [
                self._accounts.create_op(account),
                self._accounts.movement_op(
                    AccountMovement(
                        account.account_id,
                        1,
                        now,
                        account.balance,
                        "issue",
                        account.balance,
                        principal.key_id,
                        principal.store_id,
                    )
                ),
                *idempotency_ops(self._idempotency, idempotency, account, now),
            ]
        )
        return account

    def accounts_of(self, customer_id: str) -> list[Account]:
        return self._accounts.accounts_of(customer_id)

    def redeem(
        self,
        number: str,
        redemption_id: str,
        amount: Decimal,
        store_id: str | None,
        principal: Principal,
        fingerprint: str,
        pin: str | None = None,
        customer_id: str | None = None,
        idempotency: Idempotency = None,
        *,
        render: Callable[[Spent], str],
    ) -> Spent:
        replay_if_recorded(self._idempotency, idempotency)
        return self.spend(
            number,
            redemption_id,
            amount,
            store_id,
            principal,
            fingerprint,
            pin,
            customer_id,
            idempotency,
            render=render,
        )

    def spend(
        self,
        number: str,
        redemption_id: str,
        amount: Decimal,
        store_id: str | None,
        principal: Principal,
        fingerprint: str,
        pin: str | None = None,
        customer_id: str | None = None,
        idempotency: Idempotency = None,
        *,
        render: Callable[[Spent], str],
    ) -> Spent:
        """`redeem` once its caller has answered a replayed Idempotency-Key (RedemptionService).
        `render`: the body a replayed redemption_id answers, as the route that spent it answered;
        it is written in the transaction that spends."""
        store = self._stores.for_request(principal, store_id).store_id
        cents = to_cents(amount)
        for attempt in range(ATTEMPTS):
            backoff(attempt)
            account = self._spendable(number, store, redemption_id, fingerprint, customer_id, principal, pin)
            now = self._clock.now()
            _ensure_can_spend(account, cents, now)
            after = account.moved(-cents, now)
            record = RedemptionRecord(
                redemption_id=redemption_id,
                kind="stored_value",
                store_id=store,
                customer_id=account.customer_id,
                created_at=now,
                actor=principal.key_id,
                points=0,
                account_id=account.account_id,
                amount=cents,
            )
            spent = Spent(record, after, cents)
            events = [redeemed_event(account, after, cents, store, redemption_id=redemption_id)]
            try:
                self._accounts.commit(
                    [
                        self._redemptions.put_op(record, render(spent), fingerprint, ev.outbox(events)),
                        self._accounts.update_op(after, account.version),
                        self._accounts.movement_op(
                            AccountMovement(
                                account.account_id,
                                after.ledger_seq,
                                now,
                                -cents,
                                "redeem",
                                after.balance,
                                principal.key_id,
                                store,
                                redemption_id=redemption_id,
                            )
                        ),
                        *idempotency_ops(self._idempotency, idempotency, spent, now),
                    ]
                )
                return spent
            except StaleAccount:
                continue
        raise ServiceUnavailable("the account kept changing; retry")

    def _spendable(
        self,
        number: str,
        store: str,
        redemption_id: str,
        fingerprint: str,
        customer_id: str | None,
        principal: Principal,
        pin: str | None,
    ) -> Account:
        """The account to spend from, in one round trip with the redemption record (a replayed
        redemption_id answers as the first time), checked for its owner and an e-card's PIN."""
        key = (account_pk(number), "ACCOUNT")
        existing, items = self._redemptions.load(
            store, redemption_id, [key] if is_plausible_id(number) else []
        )
        if existing is not None:
            replay_caller_owned(existing, fingerprint, "redemption")
        if key not in items:
            raise AccountNotFound("no such gift card or account")
        account = account_from_item(items[key])
        account.ensure_spent_for(customer_id)
        self._access.require_pin(account, principal, pin)
        return account

    def reverse(
        self, record: RedemptionRecord, principal: Principal, idempotency: Idempotency = None
    ) -> Spent:
        """Put a stored-value redemption back on its account; reversing twice changes nothing.
        The caller (RedemptionService.reverse) has answered a replayed Idempotency-Key already."""
        assert record.account_id is not None
        for attempt in range(ATTEMPTS):
            backoff(attempt)
            account = self._access.account(record.account_id)
            if record.status == "reversed":
                return self._access.unchanged(Spent(record, account, record.amount or 0), idempotency)
            now = self._clock.now()
            cents = record.amount or 0
            after = account.moved(cents, now)
            reversed_record = record.reversed(now)
            spent = Spent(reversed_record, after, cents)
            try:
                self._accounts.commit(
                    [
                        self._redemptions.reverse_op(reversed_record, []),
                        self._accounts.update_op(after, account.version),
                        self._accounts.movement_op(
                            AccountMovement(
                                account.account_id,
                                after.ledger_seq,
                                now,
                                cents,
                                "reverse",
                                after.balance,
                                principal.key_id,
                                record.store_id,
                                redemption_id=record.redemption_id,
                            )
                        ),
                        *idempotency_ops(self._idempotency, idempotency, spent, now),
                    ]
                )
                return spent
            except StaleAccount:
                found = self._redemptions.get(record.store_id, record.redemption_id)
                record = found[0] if found else record
                continue
        raise ServiceUnavailable("the account kept changing; retry")

    def messages(
        self, limit: int, cursor: str | None, filters: dict[str, str] | None = None
    ) -> tuple[list[Message], str | None]:
        return self._accounts.messages(limit, cursor, filters)

    def ledger(
        self, number: str, limit: int, cursor: str | None, principal: Principal, pin: str | None = None
    ) -> tuple[list[AccountMovement], str | None]:
        """An e-card's movements show its balance: online they need its PIN, as the balance does."""
        self._access.require_pin(self._access.account(number), principal, pin)
        return self._accounts.ledger(number, limit, cursor)


def _ensure_can_spend(account: Account, cents: int, now: datetime) -> None:
    if account.is_expired(now) or account.status != "active":
        raise AccountNotUsable("the account is expired or closed", available="0.00")
    available = account.available(now)
    if available < cents:
        raise InsufficientBalance(
            f"{from_cents(available)} available, {from_cents(cents)} asked",
            available=str(from_cents(available)),
            currency=account.currency,
        )
