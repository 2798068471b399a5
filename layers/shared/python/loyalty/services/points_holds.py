"""Holds on points for web orders: points reserved (still in the balance, not spendable
elsewhere), then captured (spent from the lots that expire first) or released; the hourly sweep
settles the ones that expire."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from loyalty.adapters.customers import StaleCustomer
from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.stored_value import HoldRecord, StoredValueRepository
from loyalty.adapters.transactions import StaleTransaction, TransactionRepository
from loyalty.domain import events as ev
from loyalty.domain.access import Principal
from loyalty.domain.customers import Customer
from loyalty.domain.errors import (
    ConcurrentUpdate,
    HoldNotCapturable,
    IdempotencyKeyMismatch,
    InsufficientBalance,
    ServiceUnavailable,
    ValidationFailed,
)
from loyalty.domain.ids import is_caller_id
from loyalty.services.ports import (
    Clock,
    Idempotency,
    backoff,
    idempotency_ops,
    record_unchanged,
    replay_if_recorded,
)
from loyalty.services.redemption_common import ActiveCustomers, spend_points

if TYPE_CHECKING:
    from loyalty.adapters.idempotency import IdempotencyStore

_ATTEMPTS = 12
_T = TypeVar("_T")


class PointsHolds:
    def __init__(
        self,
        *,
        transactions: TransactionRepository,
        holds: StoredValueRepository,
        lookup: ActiveCustomers,
        idempotency: IdempotencyStore,
        clock: Clock,
    ) -> None:
        self._txns = transactions
        self._holds = holds
        self._lookup = lookup
        self._idempotency = idempotency
        self._clock = clock

    def hold_points(
        self,
        customer_id: str,
        hold_id: str,
        points: int,
        expires_in_seconds: int,
        principal: Principal,
        idempotency: Idempotency = None,
    ) -> tuple[HoldRecord, Customer]:
        """Reserve points for a web order: they stay in the balance but cannot be spent elsewhere.
        The hold is the placing key's store's (a hold_id is unique per store); the customer is
        answered as the hold leaves them."""
        replay_if_recorded(self._idempotency, idempotency)
        store = principal.store_id
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            existing = self._holds.find_hold(store, hold_id) if is_caller_id(hold_id) else None
            customer = self._lookup.resolve(customer_id)
            if existing is not None:
                same = existing.kind == "points" and existing.customer_id == customer.customer_id
                if not same or existing.amount != points:
                    raise IdempotencyKeyMismatch("this hold_id was already used for another hold")
                return self._unchanged((existing, customer), idempotency)
            now = self._clock.now()
            if customer.spendable(now) < points:
                raise InsufficientBalance(
                    f"{customer.spendable(now)} points available",
                    available=customer.spendable(now),
                    held=customer.points_held(now),
                )
            until = now + timedelta(seconds=expires_in_seconds)
            record = HoldRecord(
                hold_id,
                customer.customer_id,
                points,
                until,
                now,
                store,
                kind="points",
                customer_id=customer.customer_id,
            )
            updated = replace(
                customer,
                points_holds={**customer.live_points_holds(now), record.ref: (points, until)},
                updated_at=now,
                version=customer.version + 1,
            )
            try:
                self._txns.commit(
                    [
                        self._holds.hold_put_op(record),
                        self._txns.profile_op(updated, customer.version),
                        *idempotency_ops(self._idempotency, idempotency, (record, updated), now),
                    ]
                )
                return record, updated
            except (StaleCustomer, StaleTransaction):
                continue  # the profile changed, or the same hold arrived meanwhile: look again
        raise ServiceUnavailable("the points kept changing; retry")

    def capture_points_hold(
        self, hold: HoldRecord, points: int, principal: Principal, idempotency: Idempotency = None
    ) -> tuple[HoldRecord, Customer]:
        """Spend (up to) the held points from the lots that expire first; the rest is freed."""
        assert hold.customer_id is not None
        replay_if_recorded(self._idempotency, idempotency)
        principal.ensure_store(hold.store_id)  # a hold belongs to the store that placed it
        customer_id = hold.customer_id
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            hold = (self._holds.get_hold(hold.ref) or hold) if attempt else hold
            customer = self._lookup.resolve(customer_id)
            if hold.status == "captured" and hold.captured == points:
                return self._unchanged((hold, customer), idempotency)  # a retried capture
            if hold.status != "held":
                raise HoldNotCapturable(f"the hold is {hold.status}", hold_status=hold.status)
            now = self._clock.now()
            if now >= hold.expires_at:
                raise HoldNotCapturable("the hold expired and its points went back", hold_status="expired")
            if points > hold.amount:
                raise ValidationFailed.at(("body", "amount"), f"more than held ({hold.amount} points)")
            spend = spend_points(
                self._txns,
                customer,
                points,
                now,
                consistent=attempt > 2,
                store_id=hold.store_id,
                redemption_id=f"hold:{hold.hold_id}",
                actor=principal.key_id,
            )
            if spend is None:
                continue
            captured, after = _captured(hold, customer, points, spend.spent.customer, now)
            ops: list[TxOp] = [
                self._holds.hold_update_op(captured),
                *spend.ops,
                self._txns.profile_op(after, customer.version, ev.outbox([_captured_event(captured, after)])),
                *idempotency_ops(self._idempotency, idempotency, (captured, after), now),
            ]
            try:
                self._txns.commit(ops)
                return captured, after
            except (StaleCustomer, StaleTransaction, ConcurrentUpdate):
                latest = self._holds.get_hold(hold.ref)
                if latest is not None and latest.status != "held":
                    raise HoldNotCapturable(
                        f"the hold is {latest.status}", hold_status=latest.status
                    ) from None
                continue
        raise ServiceUnavailable("the points kept changing; retry")

    def release_points_hold(
        self, hold: HoldRecord, idempotency: Idempotency = None
    ) -> tuple[HoldRecord, Customer]:
        """Give held points back (idempotent); the customer is answered as the release leaves them."""
        assert hold.customer_id is not None
        replay_if_recorded(self._idempotency, idempotency)
        customer_id = hold.customer_id
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            hold = (self._holds.get_hold(hold.ref) or hold) if attempt else hold
            if hold.status != "held" and hold.status not in ("released", "expired"):
                raise HoldNotCapturable(f"the hold is {hold.status}", hold_status=hold.status)
            customer = self._lookup.resolve(customer_id)
            now = self._clock.now()
            # Released, expired or past its expiry: its points are free already (the hourly sweep
            # settles the record of an expired one).
            if hold.status != "held" or now >= hold.expires_at:
                return self._unchanged((hold, customer), idempotency)
            released = replace(hold, status="released", version=hold.version + 1)
            holds = {k: v for k, v in customer.live_points_holds(now).items() if k != hold.ref}
            after = replace(customer, points_holds=holds, updated_at=now, version=customer.version + 1)
            try:
                self._txns.commit(
                    [
                        self._holds.hold_update_op(released),
                        self._txns.profile_op(after, customer.version),
                        *idempotency_ops(self._idempotency, idempotency, (released, after), now),
                    ]
                )
                return released, after
            except (StaleCustomer, StaleTransaction, ConcurrentUpdate):
                latest = self._holds.get_hold(hold.ref)
                if latest is not None and latest.status == "released":
                    continue  # released meanwhile: answered with the customer as it is now
                if latest is not None and latest.status != "held":
                    raise HoldNotCapturable(
                        f"the hold is {latest.status}", hold_status=latest.status
                    ) from None
                continue
        raise ServiceUnavailable("the points kept changing; retry")

    def _unchanged(self, result: _T, idempotency: Idempotency) -> _T:
        record_unchanged(self._idempotency, idempotency, result, self._clock.now(), self._txns.commit)
        return result


def _captured(
    hold: HoldRecord, customer: Customer, points: int, spent: Customer, now: datetime
) -> tuple[HoldRecord, Customer]:
    """The hold captured, and the customer with the points spent and the hold gone."""
    holds = {k: v for k, v in customer.live_points_holds(now).items() if k != hold.ref}
    captured = replace(hold, status="captured", captured=points, version=hold.version + 1)
    after = replace(spent, points_holds=holds, updated_at=now, version=customer.version + 1)
    return captured, after


def _captured_event(captured: HoldRecord, after: Customer) -> ev.DomainEvent:
    return ev.DomainEvent(
        ev.POINTS_REDEEMED,
        {
            "customer_id": after.customer_id,
            "points": captured.captured,
            "balance": after.points.balance,
            "hold_id": captured.hold_id,
            "store_id": captured.store_id,
        },
    )
