"""Holds on a gift card or account: place one for a web order, capture up to it on shipment,
release it on cancellation. A hold only makes part of the balance unavailable, so an expired hold
gives its value back by itself (the hourly sweep then marks it `expired`; releasing it after its
expiry changes nothing). `HoldService` is what the routes call: it decides who settles a hold
(points holds are the redemption service's)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Protocol

from loyalty.adapters.idempotency import IdempotencyStore
from loyalty.adapters.stored_value import (
    AccountMovement,
    AlreadyExists,
    HoldRecord,
    StaleAccount,
    StoredValueRepository,
)
from loyalty.domain import events as ev
from loyalty.domain.access import Principal
from loyalty.domain.customers import Customer
from loyalty.domain.errors import (
    AccountNotUsable,
    HoldNotCapturable,
    HoldNotFound,
    IdempotencyKeyMismatch,
    InsufficientBalance,
    ServiceUnavailable,
    ValidationFailed,
)
from loyalty.domain.ids import is_caller_id
from loyalty.domain.stored_value import Account, Hold, from_cents, to_cents
from loyalty.services.account_access import ATTEMPTS, AccountAccess, redeemed_event
from loyalty.services.ports import Clock, Idempotency, backoff, idempotency_ops, replay_if_recorded

MAX_HOLD_SECONDS = 30 * 24 * 3600


class StoredValueHolds:
    """Holds on money: a gift card or a customer's account."""

    def __init__(
        self,
        *,
        accounts: StoredValueRepository,
        access: AccountAccess,
        idempotency: IdempotencyStore,
        clock: Clock,
    ) -> None:
        self._accounts = accounts
        self._access = access
        self._idempotency = idempotency
        self._clock = clock

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
        replay_if_recorded(self._idempotency, idempotency)
        cents = to_cents(amount)
        if not 0 < expires_in_seconds <= MAX_HOLD_SECONDS:
            raise ValidationFailed.at(("body", "expires_in_seconds"), f"between 1 and {MAX_HOLD_SECONDS}")
        store = principal.store_id  # the placing key's store's hold (None: an admin key's)
        for attempt in range(ATTEMPTS):
            backoff(attempt)
            existing = self._accounts.find_hold(store, hold_id) if is_caller_id(hold_id) else None
            if existing is not None:
                same = existing.kind == "stored_value" and existing.account_id == number
                if not same or existing.amount != cents:
                    raise IdempotencyKeyMismatch("this hold_id was already used for another hold")
                return self._access.unchanged(existing, idempotency)
            account = self._access.account(number)
            account.ensure_spent_for(customer_id)  # a capture spends what the hold reserves
            self._access.require_pin(account, principal, pin)
            now = self._clock.now()
            if account.is_expired(now) or account.status != "active":
                raise AccountNotUsable("the account is expired or closed")
            available = account.available(now)
            if available < cents:
                raise InsufficientBalance(
                    f"{from_cents(available)} available",
                    available=str(from_cents(available)),
                    currency=account.currency,
                )
            record = HoldRecord(
                hold_id,
                account.account_id,
                cents,
                now + timedelta(seconds=expires_in_seconds),
                now,
                store,
            )
            after = replace(
                account,
                holds={**account.live_holds(now), record.ref: Hold(record.ref, cents, record.expires_at)},
                version=account.version + 1,
            )
            try:
                self._accounts.commit(
                    [
                        self._accounts.hold_put_op(record),
                        self._accounts.update_op(after, account.version),
                        *idempotency_ops(self._idempotency, idempotency, record, now),
                    ]
                )
                return record
            except (StaleAccount, AlreadyExists):
                continue
        raise ServiceUnavailable("the account kept changing; retry")

    def capture(
        self,
        hold_id: str,
        amount: Decimal,
        principal: Principal,
        store_id: str | None = None,
        idempotency: Idempotency = None,
    ) -> tuple[HoldRecord, Account]:
        replay_if_recorded(self._idempotency, idempotency)
        cents = to_cents(amount)
        ref = self.find_hold(hold_id, principal, store_id).ref
        for attempt in range(ATTEMPTS):
            backoff(attempt)
            hold = self._access.hold(ref)
            principal.ensure_store(hold.store_id)  # a hold belongs to the store that placed it
            account = self._access.account(hold.account_id)
            if hold.status == "captured" and hold.captured == cents:
                return self._access.unchanged((hold, account), idempotency)  # a retried capture
            now = self._clock.now()
            if hold.status != "held":
                raise HoldNotCapturable(f"the hold is {hold.status}", hold_status=hold.status)
            if now >= hold.expires_at:
                raise HoldNotCapturable("the hold expired and its value went back", hold_status="expired")
            if cents > hold.amount:
                raise ValidationFailed.at(("body", "amount"), f"more than held ({from_cents(hold.amount)})")
            captured = replace(hold, status="captured", captured=cents, version=hold.version + 1)
            after = account.moved(-cents, now)
            after = replace(after, holds={k: h for k, h in after.holds.items() if k != ref})
            try:
                events = [redeemed_event(account, after, cents, hold.store_id, hold_id=hold_id)]
                self._accounts.commit(
                    [
                        self._accounts.hold_update_op(captured),
                        self._accounts.update_op(after, account.version, ev.outbox(events)),
                        self._accounts.movement_op(
                            AccountMovement(
                                account.account_id,
                                after.ledger_seq,
                                now,
                                -cents,
                                "capture",
                                after.balance,
                                principal.key_id,
                                hold.store_id,
                                hold_id=hold_id,
                            )
                        ),
                        *idempotency_ops(self._idempotency, idempotency, (captured, after), now),
                    ]
                )
                return captured, after
            except StaleAccount:
                continue
        raise ServiceUnavailable("the hold kept changing; retry")

    def release(
        self,
        hold_id: str,
        principal: Principal,
        store_id: str | None = None,
        idempotency: Idempotency = None,
    ) -> tuple[HoldRecord, Account]:
        replay_if_recorded(self._idempotency, idempotency)
        ref = self.find_hold(hold_id, principal, store_id).ref
        for attempt in range(ATTEMPTS):
            backoff(attempt)
            hold = self._access.hold(ref)
            principal.ensure_store(hold.store_id)  # a hold belongs to the store that placed it
            account = self._access.account(hold.account_id)
            if hold.status in ("released", "expired"):
                return self._access.unchanged((hold, account), idempotency)
            if hold.status != "held":
                raise HoldNotCapturable(f"the hold is {hold.status}", hold_status=hold.status)
            now = self._clock.now()
            if now >= hold.expires_at:
                # Its value is available already; the hourly sweep settles the record.
                return self._access.unchanged((hold, account), idempotency)
            released = replace(hold, status="released", version=hold.version + 1)
            after = replace(
                account,
                holds={k: h for k, h in account.holds.items() if k != ref},
                version=account.version + 1,
            )
            try:
                self._accounts.commit(
                    [
                        self._accounts.hold_update_op(released),
                        self._accounts.update_op(after, account.version),
                        *idempotency_ops(self._idempotency, idempotency, (released, after), now),
                    ]
                )
                return released, after
            except StaleAccount:
                continue
        raise ServiceUnavailable("the hold kept changing; retry")

    def find_hold(self, hold_id: str, principal: Principal, store_id: str | None = None) -> HoldRecord:
        """The caller's hold: a hold_id is unique per store, so a till's key finds its own store's
        hold (naming another store is 403) and an admin key names the store in `store_id` (none:
        the holds admin keys placed). Another store's hold with the same id never answers."""
        scope = principal.ensure_store(store_id)
        hold = self._accounts.find_hold(scope, hold_id) if is_caller_id(hold_id) else None
        if hold is None:
            raise HoldNotFound(f"no hold {hold_id[:64]!r}")
        return hold


class PointsHolds(Protocol):
    """Who settles a hold on points (the redemption service)."""

    def capture_points_hold(
        self, hold: HoldRecord, points: int, principal: Principal, idempotency: Idempotency = None
    ) -> tuple[HoldRecord, Customer]: ...

    def release_points_hold(
        self, hold: HoldRecord, idempotency: Idempotency = None
    ) -> tuple[HoldRecord, Customer]: ...


class HoldService:
    """Capture and release any hold by its id: a points hold goes to the points side, a hold on
    money to the stored-value side."""

    def __init__(self, *, money: StoredValueHolds, points: PointsHolds) -> None:
        self._money = money
        self._points = points

    def capture(
        self,
        hold_id: str,
        principal: Principal,
        amount: Decimal | None,
        points: int | None,
        store_id: str | None = None,
        idempotency: Idempotency = None,
    ) -> tuple[HoldRecord, Account | Customer]:
        """A points hold captures `points`; its first clients sent a whole-number `amount`, still
        taken. A hold on money captures an `amount`."""
        hold = self._money.find_hold(hold_id, principal, store_id)
        if hold.kind == "points":
            return self._points.capture_points_hold(hold, _points(amount, points), principal, idempotency)
        if amount is None:
            raise ValidationFailed.at(
                ("body", "amount"), "a hold on a gift card or account captures an amount"
            )
        return self._money.capture(hold_id, amount, principal, store_id, idempotency)

    def release(
        self,
        hold_id: str,
        principal: Principal,
        store_id: str | None = None,
        idempotency: Idempotency = None,
    ) -> tuple[HoldRecord, Account | Customer]:
        hold = self._money.find_hold(hold_id, principal, store_id)
        if hold.kind == "points":
            return self._points.release_points_hold(hold, idempotency)
        return self._money.release(hold_id, principal, store_id, idempotency)


def _points(amount: Decimal | None, points: int | None) -> int:
    if points is not None:
        return points
    assert amount is not None
    if amount != amount.to_integral_value():
        raise ValidationFailed.at(("body", "amount"), "a points hold captures whole points")
    return int(amount)
