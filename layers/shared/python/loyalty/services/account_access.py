"""What every stored-value use case shares: the account and hold reads, the PIN check of an
e-card, the programme's currency and the record of an answer a repeated call gives unchanged."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TypeVar

from loyalty.adapters.idempotency import IdempotencyStore
from loyalty.adapters.stored_value import HoldRecord, StaleAccount, StoredValueRepository
from loyalty.domain import events as ev
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.errors import (
    AccountNotFound,
    CardLocked,
    HoldNotFound,
    InvalidPin,
    PinRequired,
    ServiceUnavailable,
    ValidationFailed,
)
from loyalty.domain.ids import is_plausible_id
from loyalty.domain.stored_value import PIN_ATTEMPTS, Account, from_cents, pin_matches, reserve_pin_attempt
from loyalty.services.config import ProgrammeService
from loyalty.services.ports import Clock, Idempotency, backoff, record_unchanged

ATTEMPTS = 12
_T = TypeVar("_T")


class AccountAccess:
    def __init__(
        self,
        *,
        accounts: StoredValueRepository,
        programme: ProgrammeService,
        idempotency: IdempotencyStore,
        pepper: Callable[[], str],
        clock: Clock,
    ) -> None:
        self._accounts = accounts
        self._programme = programme
        self._idempotency = idempotency
        self._pepper = pepper
        self._clock = clock

    def require_pin(self, account: Account, principal: Principal, pin: str | None) -> None:
        if account.pin_hash is not None and principal.kind is KeyKind.WEB:
            self._check_pin(account, pin)

    def unchanged(self, result: _T, idempotency: Idempotency) -> _T:
        record_unchanged(self._idempotency, idempotency, result, self._clock.now(), self._accounts.commit)
        return result

    def account(self, number: str) -> Account:
        account = self._accounts.get(number) if is_plausible_id(number) else None
        if account is None:
            raise AccountNotFound("no such gift card or account")
        return account

    def hold(self, ref: str) -> HoldRecord:
        hold = self._accounts.get_hold(ref)
        if hold is None:
            raise HoldNotFound("the hold is gone")
        return hold

    def _check_pin(self, account: Account, pin: str | None) -> None:
        """A missing PIN is refused without counting. Otherwise the attempt is counted as wrong
        before the PIN is looked at (reserve_pin_attempt), so concurrent guesses cannot outrun the
        lock; a right PIN then clears the count, unless another attempt was counted meanwhile."""
        if not pin:
            raise PinRequired("send the card's PIN in the x-gift-card-pin header")
        for attempt in range(ATTEMPTS):
            backoff(attempt)
            if attempt:
                account = self.account(account.account_id)
            reserved = reserve_pin_attempt(account, self._clock.now())
            try:
                self._accounts.commit(
                    [
                        self._accounts.pin_op(
                            account.account_id, reserved.failures, reserved.locked_until, account.pin_version
                        )
                    ]
                )
                break
            except StaleAccount:
                continue  # another attempt was counted first: count this one after it
        else:
            raise ServiceUnavailable("the card is busy; retry")
        if pin_matches(account, pin, self._pepper()):
            # Only if nothing was counted since ours: a concurrent wrong guess keeps its count.
            with contextlib.suppress(StaleAccount):
                self._accounts.commit(
                    [self._accounts.pin_op(account.account_id, 0, None, account.pin_version + 1)]
                )
            return
        if reserved.locked_until is not None:
            raise CardLocked(
                "too many wrong PINs; the card is locked", locked_until=reserved.locked_until.isoformat()
            )
        raise InvalidPin("wrong PIN", attempts_left=PIN_ATTEMPTS - reserved.failures)

    def currency(self, currency: str) -> None:
        expected = self._programme.current().currency
        if currency != expected:
            raise ValidationFailed.at(("body", "currency"), f"the programme runs in {expected}")


def redeemed_event(
    account: Account, after: Account, cents: int, store_id: str | None, **ref: str
) -> ev.DomainEvent:
    """StoredValueRedeemed: a redemption or a captured hold took `cents` from the account."""
    return ev.DomainEvent(
        ev.STORED_VALUE_REDEEMED,
        {
            "account": masked(account.account_id),
            "kind": account.kind.value,
            "amount": str(from_cents(cents)),
            "currency": account.currency,
            "balance": str(from_cents(after.balance)),
            "store_id": store_id,
            "customer_id": account.customer_id,
            **ref,
        },
    )


def masked(number: str) -> str:
    return "*" * max(0, len(number) - 4) + number[-4:]
