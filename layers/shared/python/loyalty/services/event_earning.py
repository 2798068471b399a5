"""Event earn rules applied: a member's points for an event (an app install, a review), exactly
once per (event, rule) whatever the retries or concurrency, within each rule's limit per customer.

One TransactWriteItems per event: the profile (guarded by its version), per earning rule a lot in
the ledger, the record that the event earned by the rule (conditional: once, for ever; it carries
the PointsEarned events) and the rule's counter for the period (compare-and-set). Losing a race
reads again: a retry finds the record and earns nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.event_earning import EarnContended, EarnedBy, EventEarningRepository
from loyalty.adapters.transactions import TransactionRepository
from loyalty.domain import events as ev
from loyalty.domain import points as points_ledger
from loyalty.domain.activity import RecordedEvent
from loyalty.domain.customers import Customer, CustomerStatus
from loyalty.domain.errors import CustomerNotFound, MergeInProgress, ServiceUnavailable
from loyalty.domain.event_earning import RuleDecision, decide, limit_period, matching_rules, too_old
from loyalty.domain.programme import EventEarnRule, Programme
from loyalty.services.config import ProgrammeService
from loyalty.services.ports import Clock, backoff

_ATTEMPTS = 12
ACTOR = "job:activity"


@dataclass(frozen=True)
class RuleOutcome:
    rule_id: str
    points: int  # earned now, earned before (already_earned), or that a member would earn
    status: str  # earned | already_earned | limit_reached | not_member | too_old
    ledger_seq: int | None = None  # the lot, when earned (now or before)


@dataclass(frozen=True)
class EventEarnResult:
    event_id: str
    store_id: str
    customer_id: str | None  # the profile that earns (a merged profile's survivor); None: nobody
    member: bool
    rules: tuple[RuleOutcome, ...] = ()

    @property
    def points_earned(self) -> int:
        """Earned by this call (a replay earns nothing more)."""
        return sum(r.points for r in self.rules if r.status == "earned")

    @property
    def points_if_member(self) -> int:
        """What the matching rules would give a member (before limits): non-members' answer."""
        return sum(r.points for r in self.rules if r.status == "not_member")


class EventEarning:
    def __init__(
        self,
        *,
        earnings: EventEarningRepository,
        transactions: TransactionRepository,
        programme: ProgrammeService,
        clock: Clock,
        resolve_customer: Callable[[str], Customer],
    ) -> None:
        self._earnings = earnings
        self._txns = transactions
        self._programme = programme
        self._clock = clock
        self._resolve_customer = resolve_customer  # follows merges; raises CustomerNotFound

    def apply(self, event: RecordedEvent) -> EventEarnResult:
        programme = self._programme.current()
        rules = matching_rules(programme, event)
        nobody = EventEarnResult(event.event_id, event.store_id, None, False)
        if not rules:
            return replace(nobody, customer_id=event.customer_id, member=event.member)
        if event.customer_id is None:  # an anonymous visitor: what a member would have earned
            return replace(nobody, rules=_outcomes(rules, "not_member"))
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            now = self._clock.now()
            try:
                customer = self._resolve_customer(event.customer_id)
            except CustomerNotFound:  # erased since: nobody earns
                return nobody
            if not customer.member or customer.status is not CustomerStatus.ACTIVE:
                return replace(nobody, customer_id=customer.customer_id, rules=_outcomes(rules, "not_member"))
            if too_old(programme, event, now):
                return EventEarnResult(
                    event.event_id, event.store_id, customer.customer_id, True, _outcomes(rules, "too_old")
                )
            earned, counts = self._earnings.load(
                event.store_id,
                event.event_id,
                [r.rule_id for r in rules],
                [
                    (customer.customer_id, r.rule_id, limit_period(r, event.occurred_at))
                    for r in rules
                    if r.limit
                ],
            )
            decisions = decide(rules, event.occurred_at, counts, frozenset(earned))
            stopped = [d.rule.rule_id for d in decisions if d.why_not == "limit_reached"]
            if stopped:
                # A batch read is no snapshot: the counter may have been read after this very
                # event's earn committed, its record before. Look again before saying "limit".
                earned |= self._earnings.load(event.store_id, event.event_id, stopped, [])[0]
                decisions = decide(rules, event.occurred_at, counts, frozenset(earned))
            try:
                return self._earn(event, customer, programme, decisions, earned, now)
            except (EarnContended, MergeInProgress, ServiceUnavailable):
                # The profile, a counter or this event's earns changed meanwhile (or the items
                # stayed busy with concurrent deliveries of the same event): read again.
                continue
        raise ServiceUnavailable("the customer's records kept changing; retry")

    def _earn(
        self,
        event: RecordedEvent,
        customer: Customer,
        programme: Programme,
        decisions: list[RuleDecision],
        earned_before: dict[str, EarnedBy],
        now: datetime,
    ) -> EventEarnResult:
        earning = [d for d in decisions if d.earns]
        outcomes = {
            d.rule.rule_id: _before(d, earned_before.get(d.rule.rule_id)) for d in decisions if not d.earns
        }
        if earning:
            decided = points_ledger.earn_for_event(
                customer,
                programme,
                now,
                rule_points=[(d.rule.rule_id, d.rule.points) for d in earning],
                event_id=event.event_id,
                store_id=event.store_id,
                occurred_at=event.occurred_at,
                actor=ACTOR,
            )
            updated = replace(decided.customer, updated_at=now, version=customer.version + 1)
            ops: list[TxOp] = [self._txns.profile_op(updated, customer.version)]
            # Each rule's record carries its PointsEarned; the last one also a tier change.
            extra = list(decided.events[len(decided.lots) :])
            for index, ((rule_id, entry, due), decision) in enumerate(
                zip(decided.lots, earning, strict=True)
            ):
                events = [decided.events[index], *(extra if index == len(earning) - 1 else [])]
                record = EarnedBy(rule_id, customer.customer_id, entry.points, entry.seq)
                ops.append(self._txns.put_ledger_op(entry, *due))
                ops.append(
                    self._earnings.earned_op(event.store_id, event.event_id, record, now, ev.outbox(events))
                )
                if decision.rule.limit is not None:
                    ops.append(
                        self._earnings.counter_op(
                            customer.customer_id, rule_id, decision.period, decision.counted
                        )
                    )
                outcomes[rule_id] = RuleOutcome(rule_id, entry.points, "earned", entry.seq)
            self._earnings.commit(ops)
        ordered = tuple(outcomes[d.rule.rule_id] for d in decisions)
        return EventEarnResult(event.event_id, event.store_id, customer.customer_id, True, ordered)


def _outcomes(rules: list[EventEarnRule], status: str) -> tuple[RuleOutcome, ...]:
    return tuple(RuleOutcome(r.rule_id, r.points, status) for r in rules)


def _before(decision: RuleDecision, earned: EarnedBy | None) -> RuleOutcome:
    if earned is not None:
        return RuleOutcome(decision.rule.rule_id, earned.points, "already_earned", earned.ledger_seq)
    return RuleOutcome(decision.rule.rule_id, 0, decision.why_not or "limit_reached")
