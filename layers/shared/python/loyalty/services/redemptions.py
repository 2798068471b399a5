"""Spending points and coupons: exactly once per redemption_id, never below zero, reversible.

A points redemption is one TransactWriteItems: the redemption record (its key is the dedupe key;
it holds which lots gave how much, and the response to replay), each lot it spends from (guarded
by what the lot held when read), the ledger entry, and the profile's counters (guarded by the
profile's version). Lots that expire first are spent first; pending points are not spendable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.offers import CouponRecord, OfferRepository, coupon_key, read_coupon, reward_use_key
from loyalty.adapters.redemptions import RedemptionRecord, RedemptionRepository, redemption_key
from loyalty.adapters.repositories import CustomerRepository, StaleCustomer, customer_from_item, customer_pk
from loyalty.adapters.stored_value import HoldRecord, StoredValueRepository
from loyalty.adapters.transactions import StaleTransaction, TransactionRepository
from loyalty.domain import events as ev
from loyalty.domain import links as link_rules
from loyalty.domain import points as points_ledger
from loyalty.domain.access import Principal
from loyalty.domain.customers import Customer, CustomerRef, CustomerStatus
from loyalty.domain.errors import (
    ConcurrentUpdate,
    CouponNotRedeemable,
    HoldNotCapturable,
    IdempotencyKeyMismatch,
    InsufficientBalance,
    RedemptionNotFound,
    RewardNotFound,
    RewardUnavailable,
    ServiceUnavailable,
    ValidationFailed,
)
from loyalty.domain.ids import is_caller_id
from loyalty.services.config import ProgrammeService, StoreService
from loyalty.services.offers import normalise_code
from loyalty.services.ports import (
    Clock,
    Idempotency,
    backoff,
    idempotency_ops,
    record_unchanged,
    rendering,
    replay_caller_owned,
    replay_if_recorded,
)

if TYPE_CHECKING:
    from loyalty.adapters.repositories import IdempotencyStore
    from loyalty.domain.rewards import Reward
    from loyalty.services.offers import OfferService
    from loyalty.services.stored_value import Spent, StoredValueService

_ATTEMPTS = 12
_T = TypeVar("_T")


@dataclass(frozen=True)
class RedeemCommand:
    redemption_id: str
    kind: str  # points | coupon | stored_value
    store_id: str | None
    customer: CustomerRef
    fingerprint: str
    points: int | None = None
    coupon: str | None = None
    order_ref: str | None = None
    reward_id: str | None = None
    account_id: str | None = None
    amount: Decimal | None = None


@dataclass(frozen=True)
class _Spend:
    spent: points_ledger.Spent
    ops: list[TxOp]  # the lots' updates and the ledger entry


@dataclass(frozen=True)
class Redemption:
    record: RedemptionRecord
    balance_after: int | None
    available: int | None


class RedemptionService:
    def __init__(
        self,
        redemptions: RedemptionRepository,
        transactions: TransactionRepository,
        customers: CustomerRepository,
        offers: OfferRepository,
        stores: StoreService,
        programme: ProgrammeService,
        clock: Clock,
        render: Callable[[Redemption], str],
        resolve_customer: Callable[[str], Customer],
        idempotency: IdempotencyStore,
        stored_value: StoredValueService | None = None,
        catalogue: OfferService | None = None,
        holds: StoredValueRepository | None = None,
    ) -> None:
        self._redemptions = redemptions
        self._txns = transactions
        self._customers = customers
        self._offers = offers
        self._stores = stores
        self._programme = programme
        self._clock = clock
        self._render = render
        self._resolve_customer = resolve_customer
        self._idempotency = idempotency
        self._stored_value = stored_value
        self._catalogue = catalogue
        self._holds = holds

    # ---- redeem ---------------------------------------------------------------------------
    def redeem(
        self, command: RedeemCommand, principal: Principal, idempotency: Idempotency = None
    ) -> Redemption:
        replay_if_recorded(self._idempotency, idempotency)
        store_id = self._stores.for_request(principal, command.store_id).store_id
        customer_id = self.customer_id_of(command.customer)
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
                idempotency=rendering(idempotency, _of_spent),
                render=lambda spent: self._render(_of_spent(spent)),
            )
            return _of_spent(spent)
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
                customer = self._resolve(customer_id)  # merged away, erased or unknown
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
                    )
                coupon_item = items.get(coupon_key(code)) if code else None
                coupon = read_coupon(coupon_item) if coupon_item else None
                return self._redeem_coupon(command, store_id, customer, principal, now, coupon, idempotency)
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
    ) -> Redemption:
        if reward is not None:
            self._check_reward(reward, stock_used, now)
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
        spend = self._spend(
            customer, wanted, now, consistent, store_id, command.redemption_id, principal.key_id
        )
        if spend is None:
            # The open-lot index lags the profile by a moment: read the lots again, consistently.
            raise StaleCustomer(customer.customer_id)
        spent = spend.spent
        balance = spent.entry.balance_after
        record = RedemptionRecord(
            redemption_id=command.redemption_id,
            kind="points",
            store_id=store_id,
            customer_id=customer.customer_id,
            created_at=now,
            actor=principal.key_id,
            points=wanted,
            order_ref=command.order_ref,
            reward_id=reward.reward_id if reward else None,
            taken=spent.taken,
            ledger_seq=spent.entry.seq,
            balance_after=balance,
        )
        result = Redemption(record, balance, spent.customer.points.available)
        events = [
            ev.DomainEvent(
                ev.POINTS_REDEEMED,
                {
                    "customer_id": customer.customer_id,
                    "points": wanted,
                    "balance": balance,
                    "redemption_id": command.redemption_id,
                    "store_id": store_id,
                    "order_ref": command.order_ref,
                    "reward_id": reward.reward_id if reward else None,
                },
            )
        ]
        ops: list[TxOp] = [
            self._redemptions.put_op(record, self._render(result), command.fingerprint, ev.outbox(events)),
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

    def _spend(
        self,
        customer: Customer,
        points: int,
        now: datetime,
        consistent: bool,
        store_id: str | None,
        redemption_id: str,
        actor: str,
    ) -> _Spend | None:
        """The ledger's spend from the lots as read, and the writes it makes (the lots' updates, then
        the ledger entry). None when the lots read do not cover it (the index lags)."""
        lots = self._txns.open_lots(customer.customer_id, consistent)
        spent = points_ledger.spend(
            customer, lots, points, now, store_id=store_id, redemption_id=redemption_id, actor=actor
        )
        if spent is None:
            return None
        ops = [self._txns.update_lot_op(lot, remaining) for lot, remaining in spent.lots]
        ops.append(self._txns.put_ledger_op(spent.entry))
        return _Spend(spent, ops)

    def _redeem_coupon(
        self,
        command: RedeemCommand,
        store_id: str,
        customer: Customer,
        principal: Principal,
        now: datetime,
        coupon: CouponRecord | None,
        idempotency: Idempotency = None,
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
                    self._redemptions.put_op(record, self._render(result), command.fingerprint, []),
                    self._offers.use_coupon_op(coupon),
                    *idempotency_ops(self._idempotency, idempotency, result, now),
                ]
            )
        except StaleCustomer:
            latest = self._offers.get_coupon(code)
            state = latest.state(now) if latest else "unknown"
            raise CouponNotRedeemable(f"the coupon is {state}", reason=state, code=code) from None
        return result

    # ---- reverse --------------------------------------------------------------------------
    def reverse(
        self,
        redemption_id: str,
        principal: Principal,
        store_id: str | None = None,
        idempotency: Idempotency = None,
    ) -> Redemption:
        """Put back exactly what was taken, into the same lots; a lot that expired meanwhile gets
        nothing back, and the ledger shows that part as expired. Reversing twice changes nothing,
        and answers the balance as it is now (a replayed Idempotency-Key: the first answer)."""
        replay_if_recorded(self._idempotency, idempotency)
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            record = self.get(redemption_id, principal, store_id)
            if record.status == "reversed":
                return self._unchanged(Redemption(record, self._balance_now(record), None), idempotency)
            if record.kind == "stored_value":
                assert self._stored_value is not None
                return _of_spent(
                    self._stored_value.reverse(record, principal, rendering(idempotency, _of_spent))
                )
            now = self._clock.now()
            reversed_record = record.reversed(now)
            try:
                if record.kind == "coupon":
                    coupon = self._offers.get_coupon(record.coupon or "")
                    result = Redemption(reversed_record, None, None)
                    ops: list[TxOp] = [
                        self._redemptions.reverse_op(reversed_record, []),
                        *idempotency_ops(self._idempotency, idempotency, result, now),
                    ]
                    if coupon is not None and coupon.uses > 0:
                        ops.append(self._offers.use_coupon_op(coupon, -1))
                    self._txns.commit(ops)
                    return result
                return self._reverse_points(reversed_record, now, principal.key_id, idempotency)
            except (StaleCustomer, StaleTransaction):
                continue
        raise ServiceUnavailable("the balance kept changing; retry")

    def _reverse_points(
        self, record: RedemptionRecord, now: datetime, actor: str, idempotency: Idempotency = None
    ) -> Redemption:
        assert record.customer_id is not None
        customer = self._resolve(record.customer_id)
        lots = {seq: self._txns.lot(record.customer_id, seq) for seq in sorted(record.taken)}
        restored = points_ledger.restore(
            customer,
            record.taken,
            lots,
            now,
            store_id=record.store_id,
            redemption_id=record.redemption_id,
            actor=actor,
        )
        ops: list[TxOp] = [self._txns.update_lot_op(lot, remaining) for lot, remaining in restored.lots]
        ops.extend(self._txns.put_ledger_op(e) for e in restored.entries)
        after = replace(restored.customer, updated_at=now, version=customer.version + 1)
        ops.append(self._txns.profile_op(after, customer.version))
        balance = after.points.balance
        events = list(restored.events)
        ops.append(self._redemptions.reverse_op(record, ev.outbox(events)))
        if record.reward_id and self._catalogue is not None:
            reward = self._catalogue.get_reward(record.reward_id)
            if reward.stock is not None:
                ops.append(self._offers.reward_stock_op(reward.reward_id, reward.stock, -1))
        result = Redemption(replace(record, balance_after=balance), balance, after.points.available)
        self._txns.commit([*ops, *idempotency_ops(self._idempotency, idempotency, result, now)])
        return result

    # ---- holds on points ----------------------------------------------------------------------
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
        assert self._holds is not None
        replay_if_recorded(self._idempotency, idempotency)
        store = principal.store_id
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            existing = self._holds.find_hold(store, hold_id) if is_caller_id(hold_id) else None
            customer = self._resolve(customer_id)
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
        assert self._holds is not None
        assert hold.customer_id is not None
        replay_if_recorded(self._idempotency, idempotency)
        principal.ensure_store(hold.store_id)  # a hold belongs to the store that placed it
        customer_id = hold.customer_id
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            hold = (self._holds.get_hold(hold.ref) or hold) if attempt else hold
            customer = self._resolve(customer_id)
            if hold.status == "captured" and hold.captured == points:
                return self._unchanged((hold, customer), idempotency)  # a retried capture
            if hold.status != "held":
                raise HoldNotCapturable(f"the hold is {hold.status}", hold_status=hold.status)
            now = self._clock.now()
            if now >= hold.expires_at:
                raise HoldNotCapturable("the hold expired and its points went back", hold_status="expired")
            if points > hold.amount:
                raise ValidationFailed.at(("body", "amount"), f"more than held ({hold.amount} points)")
            spend = self._spend(
                customer, points, now, attempt > 2, hold.store_id, f"hold:{hold.hold_id}", principal.key_id
            )
            if spend is None:
                continue
            balance = spend.spent.entry.balance_after
            holds = {k: v for k, v in customer.live_points_holds(now).items() if k != hold.ref}
            captured = replace(hold, status="captured", captured=points, version=hold.version + 1)
            events = [
                ev.DomainEvent(
                    ev.POINTS_REDEEMED,
                    {
                        "customer_id": customer.customer_id,
                        "points": points,
                        "balance": balance,
                        "hold_id": hold.hold_id,
                        "store_id": hold.store_id,
                    },
                )
            ]
            after = replace(
                spend.spent.customer,
                points_holds=holds,
                updated_at=now,
                version=customer.version + 1,
            )
            ops: list[TxOp] = [
                self._holds.hold_update_op(captured),
                *spend.ops,
                self._txns.profile_op(after, customer.version, ev.outbox(events)),
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
        assert self._holds is not None
        assert hold.customer_id is not None
        replay_if_recorded(self._idempotency, idempotency)
        customer_id = hold.customer_id
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            hold = (self._holds.get_hold(hold.ref) or hold) if attempt else hold
            if hold.status != "held" and hold.status not in ("released", "expired"):
                raise HoldNotCapturable(f"the hold is {hold.status}", hold_status=hold.status)
            customer = self._resolve(customer_id)
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

    def get(self, redemption_id: str, principal: Principal, store_id: str | None = None) -> RedemptionRecord:
        """A store's redemption: a redemption_id is unique per store, so a till's key finds its own
        store's (naming another store is 403) and an admin key names the store. Another store's
        redemption with the same id never answers."""
        scope = principal.ensure_store(store_id)
        if scope is None:
            raise ValidationFailed.at(("query", "store_id"), "an admin key names the store of the redemption")
        found = self._redemptions.get(scope, redemption_id) if is_caller_id(redemption_id) else None
        if found is None:
            raise RedemptionNotFound(f"no redemption {redemption_id[:64]!r} in store {scope!r}")
        return found[0]

    def _balance_now(self, record: RedemptionRecord) -> int | None:
        """A points redemption's customer's balance (available + pending) as it is now."""
        if record.kind != "points" or record.customer_id is None:
            return None
        try:
            customer = self._resolve(record.customer_id)
        except ValidationFailed:
            return None  # erased since: there is no balance to tell
        return customer.points.balance

    # ---- helpers --------------------------------------------------------------------------
    def _unchanged(self, result: _T, idempotency: Idempotency) -> _T:
        record_unchanged(self._idempotency, idempotency, result, self._clock.now(), self._txns.commit)
        return result

    def customer_id_of(self, ref: CustomerRef) -> str:
        """The customer a ref names: its id as given, or the owner of its link (422 if none)."""
        if ref.link_type is None:
            return ref.customer_id or ""
        try:
            identity = self._programme.current().identify(ref.link_type, ref.link_value or "")
        except link_rules.LinkInvalid as bad:
            raise ValidationFailed.at(("body", "customer", "link", bad.field), bad.msg) from None
        if not identity.usable:
            raise ValidationFailed.at(
                ("body", "customer", "link", "value"),
                "a placeholder value identifies nobody",
                link_rules.PLACEHOLDER,
            )
        owner = self._customers.owner_of(identity.link)
        if owner is None:
            raise ValidationFailed.at(("body", "customer", "link"), "no customer has this link")
        return owner

    def _resolve(self, customer_id: str) -> Customer:
        from loyalty.domain.errors import CustomerNotFound

        try:
            customer = self._resolve_customer(customer_id)
        except CustomerNotFound:
            raise ValidationFailed.at(
                ("body", "customer", "customer_id"), f"no customer {customer_id[:64]}"
            ) from None
        if customer.status is not CustomerStatus.ACTIVE:
            raise ValidationFailed.at(("body", "customer", "customer_id"), "the customer is not active")
        return customer


def _of_spent(spent: Spent) -> Redemption:
    """A stored-value redemption as /v1/redemptions answers it."""
    return Redemption(spent.record, None, None)


__all__ = ["InsufficientBalance", "RedeemCommand", "Redemption", "RedemptionService", "redemption_key"]
