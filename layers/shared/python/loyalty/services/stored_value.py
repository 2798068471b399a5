"""Gift cards, merchandise credit and promotional cash, one handle on their use cases: gift cards
(services/gift_cards.py), accounts and spending (services/accounts.py) and holds on money
(services/holds.py). The routes call the use-case services; the redemption service spends and
reverses through this handle, and the tests and benches drive stored value through it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from loyalty.adapters.redemptions import RedemptionRecord
from loyalty.adapters.stored_value import AccountMovement, HoldRecord, Message
from loyalty.domain.access import Principal
from loyalty.domain.stored_value import Account, AccountKind
from loyalty.services.account_access import AccountAccess
from loyalty.services.accounts import AccountService, Spent
from loyalty.services.gift_cards import GiftCardService, Sold
from loyalty.services.holds import StoredValueHolds
from loyalty.services.ports import Idempotency


class StoredValueService:
    def __init__(
        self,
        *,
        access: AccountAccess,
        gift_cards: GiftCardService,
        accounts: AccountService,
        holds: StoredValueHolds,
    ) -> None:
        self._access = access
        self._gift_cards = gift_cards
        self._accounts = accounts
        self._holds = holds

    # ---- gift cards -------------------------------------------------------------------------
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
        return self._gift_cards.sell_gift_card(
            amount, currency, store_id, principal, card_number, email, name, message, idempotency
        )

    def balance(self, number: str, principal: Principal, pin: str | None) -> Account:
        return self._gift_cards.balance(number, principal, pin)

    def reload(
        self, number: str, amount: Decimal, principal: Principal, idempotency: Idempotency = None
    ) -> Account:
        return self._gift_cards.reload(number, amount, principal, idempotency)

    # ---- accounts and spending --------------------------------------------------------------
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
        return self._accounts.issue_account(
            customer_id, kind, amount, currency, expires_at, principal, idempotency
        )

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
        return self._accounts.redeem(
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
        return self._accounts.spend(
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

    def reverse(
        self, record: RedemptionRecord, principal: Principal, idempotency: Idempotency = None
    ) -> Spent:
        return self._accounts.reverse(record, principal, idempotency)

    def ledger(
        self, number: str, limit: int, cursor: str | None, principal: Principal, pin: str | None = None
    ) -> tuple[list[AccountMovement], str | None]:
        return self._accounts.ledger(number, limit, cursor, principal, pin)

    def messages(
        self, limit: int, cursor: str | None, filters: dict[str, str] | None = None
    ) -> tuple[list[Message], str | None]:
        return self._accounts.messages(limit, cursor, filters)

    # ---- holds on money ---------------------------------------------------------------------
    def hold(
        self,
        number: str,
        hold_id: str,
        amount: Decimal,
        expires_in_seconds: int,
        principal: Principal,
        pin: str | None = None,
        customer_id: str | None = None,
        idempotency: Idempotency = None,
    ) -> HoldRecord:
        return self._holds.hold(
            number, hold_id, amount, expires_in_seconds, principal, pin, customer_id, idempotency
        )

    def capture(
        self,
        hold_id: str,
        amount: Decimal,
        principal: Principal,
        store_id: str | None = None,
        idempotency: Idempotency = None,
    ) -> tuple[HoldRecord, Account]:
        return self._holds.capture(hold_id, amount, principal, store_id, idempotency)

    def release(
        self,
        hold_id: str,
        principal: Principal,
        store_id: str | None = None,
        idempotency: Idempotency = None,
    ) -> tuple[HoldRecord, Account]:
        return self._holds.release(hold_id, principal, store_id, idempotency)

    def find_hold(self, hold_id: str, principal: Principal, store_id: str | None = None) -> HoldRecord:
        return self._holds.find_hold(hold_id, principal, store_id)

    def _account(self, number: str) -> Account:
        return self._access.account(number)


__all__ = ["Spent", "StoredValueService"]
