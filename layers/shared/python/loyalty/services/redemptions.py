"""Spending points and coupons: exactly once per redemption_id, never below zero, reversible.

A points redemption is one TransactWriteItems: the redemption record (its key is the dedupe key;
it holds which lots gave how much, and the response to replay), each lot it spends from (guarded
by what the lot held when read), the ledger entry, and the profile's counters (guarded by the
profile's version). Lots that expire first are spent first; pending points are not spendable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from loyalty.adapters.codec import customer_from_item, customer_pk
from loyalty.adapters.customers import CustomerRepository, StaleCustomer
from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.offers import CouponRecord, OfferRepository, coupon_key, read_coupon, reward_use_key
from loyalty.adapters.redemptions import RedemptionRecord, RedemptionRepository
from loyalty.adapters.stored_value import HoldRecord, StoredValueRepository
from loyalty.adapters.transactions import StaleTransaction, TransactionRepository
from loyalty.domain import events as ev
from loyalty.domain.access import Principal
from loyalty.domain.coupons import normalise_code
from loyalty.domain.customers import Customer, CustomerRef, CustomerStatus
from loyalty.domain.errors import (
    CouponNotRedeemable,
    InsufficientBalance,
    RewardNotFound,
    RewardUnavailable,
    ServiceUnavailable,
    ValidationFailed,
)
from loyalty.domain.points import Spent
from loyalty.services.config import ProgrammeService, StoreService
from loyalty.services.points_holds import PointsHolds
from loyalty.services.ports import (
    Clock,
    Idempotency,
    backoff,
    idempotency_ops,
    rendering,
    replay_caller_owned,
    replay_if_recorded,
)
from loyalty.services.redemption_common import (
    ActiveCustomers,
    RedeemCommand,
    Redemption,
    of_spent,
    spend_points,
    store_redemption,
)
from loyalty.services.redemption_reversals import RedemptionReversals

if TYPE_CHECKING:
    from loyalty.adapters.idempotency import IdempotencyStore
    from loyalty.domain.rewards import Reward
    from loyalty.services.offers import OfferService
    from loyalty.services.stored_value import StoredValueService

_ATTEMPTS = 12


class RedemptionService:
    """Points and coupon redemptions (stored value is its own service's); reversals and holds on
    points live in their own modules, answered here for the routers."""

    def __init__(
        self,
        *,
        redemptions: RedemptionRepository,
        transactions: TransactionRepository,
        customers: CustomerRepository,
        offers: OfferRepository,
        stores: StoreService,
        programme: ProgrammeService,
        clock: Clock,
        resolve_customer: Callable[[str], Customer],
        idempotency: IdempotencyStore,
        stored_value: StoredValueService | None = None,
        catalogue: OfferService | None = None,
        holds: StoredValueRepository | None = None,
    ) -> None:
        self._redemptions = redemptions
        self._txns = transactions
        self._offers = offers
        self._stores = stores
        self._clock = clock
        self._idempotency = idempotency
        self._stored_value = stored_value
        self._catalogue = catalogue
        self._lookup = ActiveCustomers(
            customers=customers, programme=programme, resolve_customer=resolve_customer
        )
        self._reversals = RedemptionReversals(
            redemptions=redemptions,
            transactions=transactions,
            offers=offers,
            lookup=self._lookup,
            idempotency=idempotency,
            clock=clock,
            stored_value=stored_value,
            catalogue=catalogue,
        )
        self._holds = (
            PointsHolds(
                transactions=transactions,
                holds=holds,
                lookup=self._lookup,
                idempotency=idempotency,
                clock=clock,
            )
            if holds is not None
            else None
        )

    # ---- redeem ---------------------------------------------------------------------------
    def redeem(
        self,
        command: RedeemCommand,
        principal: Principal,
        idempotency: Idempotency = None,
        *,
        render: Callable[[Redemption], str],
    ) -> Redemption:
        """`render`: the body the route answers, stored with the redemption so that a replayed
        redemption_id answers it byte for byte (the route owns the response's shape)."""
        replay_if_recorded(self._idempotency, idempotency)
        store_id = self._stores.for_request(principal, command.store_id).store_id
        customer_id = self._lookup.customer_id_of(command.customer)
        if command.kind == "stored_value":
            assert self._stored_value is not None
            assert command.account_id is not None
            assert command.amount is not None
            # No profile read: the account names its owner, and the redemption checks it.
            spent = self._stored_value.spend(
                command.account_id,
                command.redemption_id,
                command.amount,
                store_id,
                principal,
                command.fingerprint,
                customer_id=customer_id,
                idempotency=rendering(idempotency, of_spent),
                render=lambda spent: render(of_spent(spent)),
            )
            return of_spent(spent)
        code = normalise_code(command.coupon) if command.coupon else None
        reward = self._cached_reward(command.reward_id) if command.reward_id else None
        extra = [(customer_pk(customer_id), "PROFILE")]
        if code:
            extra.append(coupon_key(code))
        if reward is not None and reward.stock is not None:
            extra.append(reward_use_key(reward.reward_id))
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            # One round trip: the record (a replay), the profile, the coupon or the reward's stock.
            existing, items = self._redemptions.load(store_id, command.redemption_id, extra)
            if existing is not None:
                replay_caller_owned(existing, command.fingerprint, "redemption")
            profile = items.get((customer_pk(customer_id), "PROFILE"))
            customer = customer_from_item(profile) if profile else None
            if customer is None or customer.status is not CustomerStatus.ACTIVE:
                customer = self._lookup.resolve(customer_id)  # merged away, erased or unknown
            now = self._clock.now()
            try:
                if command.kind == "points":
                    used = items.get(reward_use_key(reward.reward_id)) if reward else None
                    return self._redeem_points(
                        command,
                        store_id,
                        customer,
                        principal,
                        now,
                        consistent=attempt > 2,
                        reward=reward,
                        stock_used=int(used["uses"]) if used else 0,
                        idempotency=idempotency,
                        render=render,
                    )
                coupon_item = items.get(coupon_key(code)) if code else None
                coupon = read_coupon(coupon_item) if coupon_item else None
                return self._redeem_coupon(
                    command, store_id, customer, principal, now, coupon, idempotency, render=render
                )
            except (StaleCustomer, StaleTransaction):
                continue
        raise ServiceUnavailable("the balance kept changing; retry")

    def _redeem_points(
        self,
        command: RedeemCommand,
        store_id: str,
        customer: Customer,
        principal: Principal,
        now: datetime,
        consistent: bool,
        reward: Reward | None = None,
        stock_used: int = 0,
        idempotency: Idempotency = None,
        *,
        render: Callable[[Redemption], str],
    ) -> Redemption:
        wanted = self._points_wanted(command, customer, now, reward, stock_used)
        spend = spend_points(
            self._txns,
            customer,
            wanted,
            now,
            consistent=consistent,
            store_id=store_id,
            redemption_id=command.redemption_id,
            actor=principal.key_id,
        )
        if spend is None:
            # The open-lot index lags the profile by a moment: read the lots again, consistently.
            raise StaleCustomer(customer.customer_id)
        spent = spend.spent
        result = _points_redemption(command, store_id, customer, principal, now, reward, spent)
        record = result.record
        events = [_redeemed_event(record, command, reward)]
        ops: list[TxOp] = [
            self._redemptions.put_op(record, render(result), command.fingerprint, ev.outbox(events)),
            *spend.ops,
            self._txns.profile_op(
                replace(
                    spent.customer,
                    updated_at=now,
                    version=customer.version + 1,
                    points_holds=customer.live_points_holds(now),
                ),
                customer.version,
            ),
            *idempotency_ops(self._idempotency, idempotency, result, now),
        ]
        if reward is not None and reward.stock is not None:
            ops.append(self._offers.reward_stock_op(reward.reward_id, reward.stock, 1))
        try:
            self._txns.commit(ops)
        except StaleCustomer:
            if reward is not None and self._catalogue and self._catalogue.reward_stock_left(reward) == 0:
                raise RewardUnavailable("the reward is out of stock", reward_id=reward.reward_id) from None
            raise
        return result

    @staticmethod
    def _points_wanted(
        command: RedeemCommand, customer: Customer, now: datetime, reward: Reward | None, stock_used: int
    ) -> int:
        """What the redemption spends (a reward's price), if the customer can spend it."""
        if reward is not None:
            RedemptionService._check_reward(reward, stock_used, now)
        wanted = reward.points if reward else command.points or 0
        if command.points is not None and reward is not None and command.points != reward.points:
            raise ValidationFailed.at(("body", "points"), f"the reward costs {reward.points} points")
        if not customer.member:
            raise InsufficientBalance("an identified non-member has no points", available=0)
        if customer.spendable(now) < wanted:
            raise InsufficientBalance(
                f"{customer.spendable(now)} points available, {wanted} asked",
                available=customer.spendable(now),
                pending=customer.points.pending,
                held=customer.points_held(now),
            )
        return wanted

    def _cached_reward(self, reward_id: str) -> Reward:
        """From the cached catalogue: a change reaches redemptions within its 10 s bound."""
        assert self._catalogue is not None
        reward = self._catalogue.catalogue().rewards.get(reward_id)
        if reward is None:
            raise RewardNotFound(f"no reward {reward_id[:64]!r}")
        return reward

    @staticmethod
    def _check_reward(reward: Reward, stock_used: int, now: datetime) -> None:
        reason = reward.unavailable_because(now)
        if reason is None and reward.stock is not None and stock_used >= reward.stock:
            reason = "out of stock"
        if reason:
            raise RewardUnavailable(f"the reward is {reason}", reward_id=reward.reward_id)

    def _redeem_coupon(
        self,
        command: RedeemCommand,
        store_id: str,
        customer: Customer,
        principal: Principal,
        now: datetime,
        coupon: CouponRecord | None,
        idempotency: Idempotency = None,
        *,
        render: Callable[[Redemption], str],
    ) -> Redemption:
        code = normalise_code(command.coupon or "")
        if coupon is None:
            raise CouponNotRedeemable("no such coupon", reason="unknown", code=code)
        if coupon.customer_id not in (None, customer.customer_id):
            raise CouponNotRedeemable("the coupon belongs to another customer", reason="not_yours", code=code)
        state = coupon.state(now)
        if state != "active":
            raise CouponNotRedeemable(f"the coupon is {state}", reason=state, code=code)
        record = RedemptionRecord(
            redemption_id=command.redemption_id,
            kind="coupon",
            store_id=store_id,
            customer_id=customer.customer_id,
            created_at=now,
            actor=principal.key_id,
            coupon=code,
            order_ref=command.order_ref,
        )
        result = Redemption(record, None, None)
        try:
            self._txns.commit(
                [
                    self._redemptions.put_op(record, render(result), command.fingerprint, []),
                    self._offers.use_coupon_op(coupon),
                    *idempotency_ops(self._idempotency, idempotency, result, now),
                ]
            )
        except StaleCustomer:
            latest = self._offers.get_coupon(code)
            state = latest.state(now) if latest else "unknown"
            raise CouponNotRedeemable(f"the coupon is {state}", reason=state, code=code) from None
        return result

    # ---- get, reverse, holds (their own modules) -------------------------------------------------
    def get(self, redemption_id: str, principal: Principal, store_id: str | None = None) -> RedemptionRecord:
        return store_redemption(self._redemptions, redemption_id, principal, store_id)

    def reverse(
        self,
        redemption_id: str,
        principal: Principal,
        store_id: str | None = None,
        idempotency: Idempotency = None,
    ) -> Redemption:
        return self._reversals.reverse(redemption_id, principal, store_id, idempotency)

    def hold_points(
        self,
        customer_id: str,
        hold_id: str,
        points: int,
        expires_in_seconds: int,
        principal: Principal,
        idempotency: Idempotency = None,
    ) -> tuple[HoldRecord, Customer]:
        assert self._holds is not None
        return self._holds.hold_points(
            customer_id, hold_id, points, expires_in_seconds, principal, idempotency
        )

    def capture_points_hold(
        self, hold: HoldRecord, points: int, principal: Principal, idempotency: Idempotency = None
    ) -> tuple[HoldRecord, Customer]:
        assert self._holds is not None
        return self._holds.capture_points_hold(hold, points, principal, idempotency)

    def release_points_hold(
        self, hold: HoldRecord, idempotency: Idempotency = None
    ) -> tuple[HoldRecord, Customer]:
        assert self._holds is not None
        return self._holds.release_points_hold(hold, idempotency)

    def customer_id_of(self, ref: CustomerRef) -> str:
        """The customer a ref names: its id as given, or the owner of its link (422 if none)."""
        return self._lookup.customer_id_of(ref)


def _points_redemption(
    command: RedeemCommand,
    store_id: str,
    customer: Customer,
    principal: Principal,
    now: datetime,
    reward: Reward | None,
    spent: Spent,
) -> Redemption:
    """The record of a points redemption, and its answer."""
    balance = spent.entry.balance_after
    record = RedemptionRecord(
        redemption_id=command.redemption_id,
        kind="points",
        store_id=store_id,
        customer_id=customer.customer_id,
        created_at=now,
        actor=principal.key_id,
        points=-spent.entry.points,
        order_ref=command.order_ref,
        reward_id=reward.reward_id if reward else None,
        taken=spent.taken,
        ledger_seq=spent.entry.seq,
        balance_after=balance,
    )
    return Redemption(record, balance, spent.customer.points.available)


def _redeemed_event(
    record: RedemptionRecord, command: RedeemCommand, reward: Reward | None
) -> ev.DomainEvent:
    return ev.DomainEvent(
        ev.POINTS_REDEEMED,
        {
            "customer_id": record.customer_id,
            "points": record.points,
            "balance": record.balance_after,
            "redemption_id": command.redemption_id,
            "store_id": record.store_id,
            "order_ref": command.order_ref,
            "reward_id": reward.reward_id if reward else None,
        },
    )


__all__ = ["RedeemCommand", "Redemption", "RedemptionService"]
