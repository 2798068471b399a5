"""Retro credit: enrolling an identified non-member credits their purchases of the last
`retro_credit_days`, in the enrolment's own transaction, so it happens once."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.transactions import TransactionRepository
from loyalty.domain import events as ev
from loyalty.domain import points as points_ledger
from loyalty.domain.customers import Customer
from loyalty.domain.ledger import LedgerReason, TransactionRecord
from loyalty.domain.programme import Programme
from loyalty.domain.sales import REVERSING_STATUSES, SaleType, compute_earn, is_backdated
from loyalty.domain.tiers import effective_tier
from loyalty.services.config import ProgrammeService, StoreService

# Each credited sale adds two items to the enrolment's transaction (100 items at most in all).
MAX_RETRO_CREDITED_SALES = 30


@dataclass(frozen=True)
class RetroCredit:
    customer: Customer  # with the credited points, tier progress and ledger sequence
    ops: list[TxOp]
    events: list[ev.DomainEvent]


class RetroCreditService:
    def __init__(
        self, *, transactions: TransactionRepository, stores: StoreService, programme: ProgrammeService
    ) -> None:
        self._txns = transactions
        self._stores = stores
        self._programme = programme

    def retro_credit(self, customer: Customer, now: datetime) -> RetroCredit:
        """Ops to add to the enrolment's own transaction: each eligible sale marked credited, and
        its lot."""
        programme = self._programme.current()
        if not programme.retro_credit_days:
            return RetroCredit(customer, [], [])
        since = now - timedelta(days=programme.retro_credit_days)
        eligible = sorted(
            (r for r in self._txns.recent_sales(customer.customer_id, since) if _creditable(r, programme)),
            key=lambda r: r.occurred_at,
        )[:MAX_RETRO_CREDITED_SALES]
        ops: list[TxOp] = []
        events: list[ev.DomainEvent] = []
        updated = customer
        for record in eligible:
            store = self._stores.find(record.store_id)
            if store is None:
                continue
            tier = effective_tier(updated, programme, now) or programme.base_tier
            earn = compute_earn(programme, store, [rl.line for rl in record.lines], tier, record.occurred_at)
            if not earn.total:
                continue
            # As for a sale earning at once: the lot and its tier month date from the sale.
            earned = points_ledger.earn(
                updated,
                programme,
                now,
                points=earn.total,
                line_points=earn.line_points,
                earned_at=min(record.occurred_at, now),
                transaction_id=record.transaction_id,
                store_id=record.store_id,
                reason=LedgerReason.RETRO_CREDIT,
                actor="enrolment:retro-credit",
            )
            assert earned.entry is not None
            updated = earned.customer
            ops.append(
                self._txns.mark_retro_credited_op(record, earn.line_points, earned.entry.seq, earn.total)
            )
            ops.append(self._txns.put_ledger_op(earned.entry, *earned.due))
            events.extend(earned.events)
        return RetroCredit(replace(updated, tier=effective_tier(updated, programme, now)), ops, events)


def _creditable(record: TransactionRecord, programme: Programme) -> bool:
    return (
        record.type is SaleType.SALE
        and not record.retro_credited
        and record.points_earned == 0
        and record.order_status not in REVERSING_STATUSES
        and all(rl.returned_quantity == 0 for rl in record.lines)  # partly returned: not credited
        and not is_backdated(programme, record.occurred_at, record.recorded_at)  # would not have earned
    )
