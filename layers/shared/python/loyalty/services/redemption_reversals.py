"""Reversing a redemption: exactly what was taken goes back (points into the same lots, a coupon's
use, a reward's stock, stored value to its account); reversing twice changes nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from loyalty.adapters.customers import StaleCustomer
from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.offers import OfferRepository
from loyalty.adapters.redemptions import RedemptionRecord, RedemptionRepository
from loyalty.adapters.transactions import StaleTransaction, TransactionRepository
from loyalty.domain import events as ev
from loyalty.domain import points as points_ledger
from loyalty.domain.access import Principal
from loyalty.domain.errors import ServiceUnavailable, ValidationFailed
from loyalty.services.ports import (
    Clock,
    Idempotency,
    backoff,
    idempotency_ops,
    record_unchanged,
    rendering,
    replay_if_recorded,
)
from loyalty.services.redemption_common import ActiveCustomers, Redemption, of_spent, store_redemption

if TYPE_CHECKING:
    from loyalty.adapters.idempotency import IdempotencyStore
    from loyalty.services.offers import OfferService
    from loyalty.services.stored_value import StoredValueService

_ATTEMPTS = 12
_T = TypeVar("_T")


class RedemptionReversals:
    def __init__(
        self,
        *,
        redemptions: RedemptionRepository,
        transactions: TransactionRepository,
        offers: OfferRepository,
        lookup: ActiveCustomers,
        idempotency: IdempotencyStore,
        clock: Clock,
        stored_value: StoredValueService | None = None,
        catalogue: OfferService | None = None,
    ) -> None:
        self._redemptions = redemptions
        self._txns = transactions
        self._offers = offers
        self._lookup = lookup
        self._idempotency = idempotency
        self._clock = clock
        self._stored_value = stored_value
        self._catalogue = catalogue

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
            record = store_redemption(self._redemptions, redemption_id, principal, store_id)
            if record.status == "reversed":
                return self._unchanged(Redemption(record, self._balance_now(record), None), idempotency)
            if record.kind == "stored_value":
                assert self._stored_value is not None
                return of_spent(
                    self._stored_value.reverse(record, principal, rendering(idempotency, of_spent))
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
        customer = self._lookup.resolve(record.customer_id)
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

    def _balance_now(self, record: RedemptionRecord) -> int | None:
        """A points redemption's customer's balance (available + pending) as it is now."""
        if record.kind != "points" or record.customer_id is None:
            return None
        try:
            customer = self._lookup.resolve(record.customer_id)
        except ValidationFailed:
            return None  # erased since: there is no balance to tell
        return customer.points.balance

    def _unchanged(self, result: _T, idempotency: Idempotency) -> _T:
        record_unchanged(self._idempotency, idempotency, result, self._clock.now(), self._txns.commit)
        return result
