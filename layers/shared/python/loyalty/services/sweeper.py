"""The scheduled sweep over what falls due: pending points mature, earns leave the tier window
(tiers may drop), what is left of a lot expires with a ledger entry, and holds past their expiry
are settled (status `expired`, gone from the profile's or the account's live holds).

EventBridge Scheduler runs it hourly on AWS; the local runtime runs it on a timer and tests call
`run` with a clock they control. Every step re-reads the lot (or hold) and the profile (or
account) and writes with conditions, so a sweep that runs twice, or beside a sale, a capture or a
release, changes nothing twice: a hold's own version decides between the sweep and a capture.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from loyalty.adapters.customers import CustomerRepository, StaleCustomer
from loyalty.adapters.due import DueIndex
from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.stored_value import HoldRecord, StaleAccount, StoredValueRepository
from loyalty.adapters.transactions import TierChange, TransactionRepository
from loyalty.domain import events as ev
from loyalty.domain.customers import Customer, CustomerStatus
from loyalty.domain.errors import ConcurrentUpdate
from loyalty.domain.ledger import LedgerEntry
from loyalty.domain.points import Swept, sweep_lot
from loyalty.domain.tiers import tier_direction
from loyalty.services.config import ProgrammeService
from loyalty.services.ports import Clock, backoff

_ATTEMPTS = 5


@dataclass
class SweepReport:
    matured: int = 0
    expired_lots: int = 0
    expired_points: int = 0
    tier_reviews: int = 0
    tier_changes: int = 0
    expired_holds: int = 0

    def add(self, swept: Swept) -> None:
        if swept.kind == "mature":
            self.matured += 1
        elif swept.kind == "tier":
            self.tier_reviews += 1
        else:
            self.expired_lots += 1
            self.expired_points += swept.expired_points
        if swept.tier_changed:
            self.tier_changes += 1


class PointsSweeper:
    def __init__(
        self,
        *,
        transactions: TransactionRepository,
        customers: CustomerRepository,
        programme: ProgrammeService,
        clock: Clock,
        due: DueIndex,
        holds: StoredValueRepository,
    ) -> None:
        self._txns = transactions
        self._customers = customers
        self._programme = programme
        self._clock = clock
        self._due = due
        self._holds = holds

    def run(self) -> SweepReport:
        now = self._clock.now()
        report = SweepReport()
        for shard in range(self._due.shards):
            cursor = None
            while True:
                found, cursor = self._due.due(shard, now, cursor)
                for item in found:
                    if isinstance(item, HoldRecord):
                        self._settle_hold(item, now, report)
                    else:
                        self._process(item, now, report)
                if cursor is None:
                    break
        return report

    def _settle_hold(self, due: HoldRecord, now: datetime, report: SweepReport) -> None:
        """A held hold past its expiry becomes `expired` and leaves the live holds of its profile
        (points) or account (stored value), in one transaction guarded by both versions."""
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            hold = self._holds.get_hold(due.ref)  # the index is eventually consistent: re-read
            if hold is None or hold.status != "held" or now < hold.expires_at:
                return  # captured, released or settled meanwhile
            expired = replace(hold, status="expired", version=hold.version + 1)
            ops: list[TxOp] = [self._holds.hold_update_op(expired)]
            try:
                if hold.kind == "points":
                    customer = self._customers.get(hold.customer_id or "")
                    if (
                        customer is not None
                        and customer.status is CustomerStatus.ACTIVE
                        and hold.ref in customer.points_holds
                    ):
                        holds = {k: v for k, v in customer.points_holds.items() if k != hold.ref}
                        updated = replace(
                            customer, points_holds=holds, updated_at=now, version=customer.version + 1
                        )
                        ops.append(self._txns.profile_op(updated, customer.version))
                    self._txns.commit(ops)
                else:
                    account = self._holds.get(hold.account_id)
                    if account is not None and hold.ref in account.holds:
                        after = replace(
                            account,
                            holds={k: h for k, h in account.holds.items() if k != hold.ref},
                            version=account.version + 1,
                        )
                        ops.append(self._holds.update_op(after, account.version))
                    self._holds.commit(ops)
            except (StaleCustomer, StaleAccount, ConcurrentUpdate):
                continue  # the hold, the profile or the account changed: look again
            report.expired_holds += 1
            return

    def _process(self, due: LedgerEntry, now: datetime, report: SweepReport) -> None:
        programme = self._programme.current()
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            lot = self._txns.lot(due.customer_id, due.seq)  # the index is eventually consistent: re-read
            customer = self._customers.get(due.customer_id)
            if lot is None or customer is None or customer.status is not CustomerStatus.ACTIVE:
                return
            swept = sweep_lot(customer, lot, programme, now)
            if swept is None:
                return
            ops = [self._txns.reschedule_lot_op(lot, swept.remaining, *swept.due)]
            if swept.entry is not None:
                ops.append(self._txns.put_ledger_op(swept.entry))
            updated = replace(swept.customer, updated_at=now, version=customer.version + 1)
            events = list(swept.events)
            moved = points_fields(customer, updated)
            if moved and not any(e.detail_type == ev.POINTS_EXPIRED for e in events):
                # Maturing has no event of its own; segment rules on points follow it through this.
                events.append(
                    ev.DomainEvent(
                        ev.CUSTOMER_UPDATED, {"customer_id": customer.customer_id, "fields": moved}
                    )
                )
            ops.append(self._txns.profile_op(updated, customer.version, ev.outbox(events)))
            if swept.tier_changed:
                change = TierChange(
                    customer.customer_id,
                    updated.version,
                    now,
                    customer.tier,
                    updated.tier,
                    "window",
                    tier_direction(programme, customer.tier, updated.tier),
                )
                ops.append(self._txns.tier_change_op(change))
            try:
                self._txns.commit(ops)
            except StaleCustomer:
                continue
            report.add(swept)
            return


def points_fields(before: Customer, after: Customer) -> list[str]:
    """The points figures a sweep moved, by the paths segment rules use."""
    return [
        f"points.{name}"
        for name in ("available", "pending", "lifetime")
        if getattr(before.points, name) != getattr(after.points, name)
    ]
