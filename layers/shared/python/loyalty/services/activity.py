"""The activity worker: customer events and transactions from the bus, applied to challenges,
punch cards and badges, and to the programme's event earn rules (services/event_earning.py).

Each activity (an event by store and event id, a transaction by store and transaction id) is
applied at most once per customer: everything it changes is written in one transaction with its
source record, which must not exist yet, and every progress item, the counters and the profile at
the version read. A conflict means someone else wrote first: read again and decide again, so the
same event delivered fifty times counts once and two events completing one challenge give one
reward. Non-members take no part: nothing is counted or kept for them (what they do before joining
does not count after).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from loyalty.adapters.codec import from_iso, to_iso
from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.gamification import (
    ActivityConflict,
    ActivityState,
    GamificationRepository,
    SourceRecord,
)
from loyalty.adapters.offers import CouponRecord, OfferRepository
from loyalty.adapters.transactions import TransactionRepository
from loyalty.domain import events as ev
from loyalty.domain import points as points_ledger
from loyalty.domain.activity import RecordedEvent
from loyalty.domain.coupons import valid_until as coupon_valid_until
from loyalty.domain.customers import Customer, CustomerStatus
from loyalty.domain.errors import CustomerNotFound, ServiceUnavailable
from loyalty.domain.gamification import (
    Activity,
    Challenge,
    Counters,
    Progress,
    Sale,
    Step,
    admits,
    advance,
    count_event,
    event_source,
    newly_earned,
    no_longer_counting,
    sale_source,
    tracked_event_types,
    withdraw,
)
from loyalty.domain.ledger import LedgerReason, TransactionRecord
from loyalty.domain.sales import SaleType
from loyalty.services.config import ProgrammeService, StoreService
from loyalty.services.offers import new_coupon_code
from loyalty.services.ports import Clock

if TYPE_CHECKING:
    from loyalty.services.gamification import Definitions

ATTEMPTS = 10
COUPON_SOURCE = "challenge"


@dataclass(frozen=True)
class Applied:
    """What one message did: applied | duplicate | ignored (anonymous, unknown, non-member) |
    nothing (no challenge or badge cared)."""

    outcome: str
    completed: tuple[str, ...] = ()
    badges: tuple[str, ...] = ()


@dataclass
class _Plan:
    customer: Customer
    counters: Counters
    ops: list[TxOp] = field(default_factory=list)
    profile_events: list[ev.DomainEvent] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)


class ActivityWorker:
    def __init__(
        self,
        *,
        repo: GamificationRepository,
        transactions: TransactionRepository,
        offers: OfferRepository,
        stores: StoreService,
        programme: ProgrammeService,
        resolve_customer: Callable[[str], Customer],
        clock: Clock,
        earn_on_event: Callable[[RecordedEvent], object],
        link_message: Callable[[RecordedEvent], object] = lambda _event: None,
        new_code: Callable[[], str] = new_coupon_code,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._repo = repo
        self._txns = transactions
        self._offers = offers
        self._stores = stores
        self._programme = programme
        self._resolve_customer = resolve_customer
        self._clock = clock
        self._earn_on_event = earn_on_event
        self._link_message = link_message
        self._new_code = new_code
        self._sleep = sleep

    def handle(self, detail_type: str, detail: Mapping[str, Any], definitions: Definitions) -> Applied:
        if detail_type in (ev.CUSTOMER_EVENT_RECORDED, ev.CUSTOMER_EVENT_ATTRIBUTED):
            # Event earn rules first (each earn is once per event and rule, so a redelivery after
            # a later failure earns nothing more), then challenges and badges, which may count the
            # points just earned (lifetime_points).
            recorded = RecordedEvent.from_detail(detail)
            self._earn_on_event(recorded)
            # An email_open / email_click names the message it is about: linked once, for
            # members and non-members alike (before the shortcut below).
            self._link_message(recorded)
        if not definitions.any_live:  # no challenge or badge: not a single read more
            return Applied("nothing")
        if detail_type == ev.TRANSACTION_RECORDED:
            return self._transaction(detail, definitions)
        if detail_type in (ev.CUSTOMER_EVENT_RECORDED, ev.CUSTOMER_EVENT_ATTRIBUTED):
            return self._event(detail, definitions)
        return Applied("ignored")

    # ---- what the message is ----------------------------------------------------------------
    def _event(self, detail: Mapping[str, Any], definitions: Definitions) -> Applied:
        customer_id = detail.get("customer_id")
        if not customer_id:  # an anonymous visitor: counted when an identification attributes it
            return Applied("ignored")
        activity = Activity(
            source=event_source(str(detail["store_id"]), str(detail["event_id"])),
            at=from_iso(detail["occurred_at"]) or self._clock.now(),
            store_id=str(detail["store_id"]),
            event_type=str(detail["type"]),
            properties=dict(detail.get("properties") or {}),
        )
        return self._apply(str(customer_id), activity, definitions)

    def _transaction(self, detail: Mapping[str, Any], definitions: Definitions) -> Applied:
        customer_id = detail.get("customer_id")
        if not customer_id:
            return Applied("ignored")
        record = self._txns.get(str(detail["store_id"]), str(detail["transaction_id"]))
        if record is None:  # not this table's, or gone: nothing to count
            return Applied("ignored")
        if record.type is SaleType.RETURN:
            return self._return(str(customer_id), record, definitions)
        sale = self._sale_of(record)
        if sale is None:
            return Applied("ignored")
        activity = Activity(
            source=sale_source(record.store_id, record.transaction_id),
            at=record.occurred_at,
            store_id=record.store_id,
            sale=sale,
        )
        return self._apply(str(customer_id), activity, definitions)

    def _sale_of(self, record: TransactionRecord) -> Sale | None:
        """The sale as it stands: the units still with the customer (returns taken off)."""
        store = self._stores.find(record.store_id)
        if store is None:
            return None
        lines = tuple(
            replace(
                rl.line,
                quantity=rl.returnable,
                discount=rl.line.discount * rl.returnable / rl.line.quantity
                if rl.line.quantity
                else Decimal(0),
            )
            for rl in record.lines
        )
        return Sale(store, lines)

    # ---- applying ---------------------------------------------------------------------------
    def _load(
        self,
        customer_id: str,
        challenge_ids: list[str],
        source: str,
        original: str | None = None,
        segments: bool = False,
    ) -> ActivityState | None:
        state = self._repo.load(customer_id, challenge_ids, source, original, segments=segments)
        customer = state.customer
        if customer is not None and customer.status is CustomerStatus.MERGED:
            try:  # the sale or event named a profile merged since: its survivor takes part
                survivor = self._resolve_customer(customer_id).customer_id
            except CustomerNotFound:
                return None
            state = self._repo.load(survivor, challenge_ids, source, original, segments=segments)
            customer = state.customer
        if customer is None or customer.status is not CustomerStatus.ACTIVE or not customer.member:
            return None
        return state

    def _apply(self, customer_id: str, activity: Activity, definitions: Definitions) -> Applied:
        candidates = [c for c in definitions.challenges if c.live_at(activity.at)]
        for attempt in range(ATTEMPTS):
            state = self._load(
                customer_id,
                [c.challenge_id for c in candidates],
                activity.source,
                # The memberships only when some candidate's audience names segments.
                segments=any(c.audience.segments for c in candidates),
            )
            if state is None:
                return Applied("ignored")
            if state.source is not None:
                return Applied("duplicate")
            plan = self._plan(state, activity, candidates, definitions)
            if plan is None:
                return Applied("nothing")
            try:
                self._repo.commit(plan.ops)
            except ActivityConflict:
                self._backoff(attempt)
                continue
            earned = tuple(b for b in plan.counters.badges if b not in state.counters.badges)
            return Applied("applied", tuple(plan.completed), earned)
        raise ServiceUnavailable("the customer's challenge records kept changing; retry")

    def _plan(
        self, state: ActivityState, activity: Activity, candidates: list[Challenge], definitions: Definitions
    ) -> _Plan | None:
        assert state.customer is not None
        customer, now = state.customer, self._clock.now()
        plan = _Plan(
            customer,
            count_event(state.counters, activity.event_type, tracked_event_types(definitions.badges)),
        )
        counted: dict[str, tuple[int, tuple[str, ...]]] = {}
        for challenge in candidates:
            if not admits(challenge, customer, activity.at, state.segments):
                continue
            before = state.progress.get(challenge.challenge_id) or Progress(challenge.challenge_id)
            step = advance(challenge, before, activity)
            if step is None:
                continue
            counted[challenge.challenge_id] = (step.cycle, step.counted)
            self._progress(plan, challenge, before, step, activity, now)
        if plan.completed and any(b.when.metric == "challenges_completed" for b in definitions.badges):
            plan.counters = replace(
                plan.counters, challenges_completed=plan.counters.challenges_completed + len(plan.completed)
            )
        self._badges(plan, definitions, activity)
        if not counted and plan.counters == state.counters:
            return None
        plan.ops.append(
            self._repo.source_op(customer.customer_id, SourceRecord(activity.source, counted), now)
        )
        if plan.counters != state.counters:
            plan.ops.append(self._repo.counters_op(customer.customer_id, plan.counters, now))
        if plan.customer != customer:
            updated = replace(plan.customer, updated_at=now)
            plan.ops.append(self._repo.profile_op(updated, customer.version, ev.outbox(plan.profile_events)))
        return plan

    def _progress(
        self,
        plan: _Plan,
        challenge: Challenge,
        before: Progress,
        step: Step,
        activity: Activity,
        now: datetime,
    ) -> None:
        after = replace(step.progress, updated_at=activity.at)
        customer_id = plan.customer.customer_id
        if step.completed:
            reward = self._reward(plan, challenge, after.completions, activity, now)
            after = replace(after, last_reward=reward)
            completed = ev.DomainEvent(
                ev.CHALLENGE_COMPLETED,
                {
                    "customer_id": customer_id,
                    "challenge_id": challenge.challenge_id,
                    "completion": after.completions,
                    "completed_at": activity.at,
                    "reward": reward,
                },
            )
            plan.ops.append(
                self._repo.completion_op(
                    customer_id,
                    challenge.challenge_id,
                    challenge.name,
                    after.completions,
                    activity.at,
                    reward,
                    ev.outbox([completed]),
                )
            )
            plan.completed.append(challenge.challenge_id)
        counts = {t.task_id: t.count for t in challenge.tasks}
        plan.ops.append(self._repo.progress_op(customer_id, before, after, challenge.name, counts))

    def _reward(
        self, plan: _Plan, challenge: Challenge, completion: int, activity: Activity, now: datetime
    ) -> dict[str, Any]:
        """The reward of one completion, written in the completion's own transaction."""
        customer_id = plan.customer.customer_id
        coupon_reward = challenge.reward.coupon
        if coupon_reward is None:
            points = int(challenge.reward.points or 0)
            earned = points_ledger.earn(
                plan.customer,
                self._programme.current(),
                now,
                points=points,
                line_points={},
                earned_at=now,
                transaction_id=f"{challenge.challenge_id}#{completion}",
                store_id=activity.store_id,
                reason=LedgerReason.CHALLENGE,
                actor=f"challenge:{challenge.challenge_id}",
            )
            assert earned.entry is not None
            plan.customer = earned.customer
            plan.ops.append(self._txns.put_ledger_op(earned.entry, *earned.due))
            plan.profile_events.extend(earned.events)
            return {"points": points, "ledger_seq": earned.entry.seq}
        valid_until = coupon_valid_until(
            now, coupon_reward.valid_days, self._offer_until(coupon_reward.offer_id)
        )
        coupon = CouponRecord(
            code=self._new_code(),
            offer_id=coupon_reward.offer_id,
            customer_id=customer_id,
            issued_at=now,
            valid_until=valid_until,
            max_uses=1,
            uses=0,
            source=COUPON_SOURCE,
        )
        plan.ops.append(self._offers.new_coupon_op(coupon))
        return {
            "coupon": {"code": coupon.code, "offer_id": coupon.offer_id, "valid_until": to_iso(valid_until)}
        }

    def _offer_until(self, offer_id: str) -> datetime | None:
        from loyalty.domain.offers import Offer

        stored = self._offers.get_document("OFFER", offer_id)
        return Offer.model_validate_json(stored.document).valid_until if stored else None

    def _badges(self, plan: _Plan, definitions: Definitions, activity: Activity) -> None:
        earned = newly_earned(definitions.badges, plan.customer, plan.counters)
        if not earned:
            return
        at = activity.at
        plan.counters = replace(
            plan.counters, badges={**plan.counters.badges, **{b.badge_id: at for b in earned}}
        )
        plan.customer = replace(
            plan.customer, badges={**plan.customer.badges, **{b.badge_id: at for b in earned}}
        )
        for badge in earned:
            event = ev.DomainEvent(
                ev.BADGE_EARNED,
                {
                    "customer_id": plan.customer.customer_id,
                    "badge_id": badge.badge_id,
                    "name": badge.name,
                    "metric": badge.when.metric,
                    "earned_at": at,
                },
            )
            plan.ops.append(
                self._repo.badge_op(
                    plan.customer.customer_id, badge.badge_id, badge.name, at, ev.outbox([event])
                )
            )

    # ---- returns ----------------------------------------------------------------------------
    def _return(self, customer_id: str, record: TransactionRecord, definitions: Definitions) -> Applied:
        """A return takes back what its sale counted, for the purchase tasks the sale no longer
        qualifies for, while the cycle it counted in runs (after a completion: nothing)."""
        if not record.original_store_id or not record.original_transaction_id:
            return Applied("ignored")
        original = self._txns.get(record.original_store_id, record.original_transaction_id)
        sale = self._sale_of(original) if original else None
        if sale is None:
            return Applied("ignored")
        source = sale_source(record.store_id, record.transaction_id)
        original_source = sale_source(record.original_store_id, record.original_transaction_id)
        challenges = {c.challenge_id: c for c in definitions.challenges}
        for attempt in range(ATTEMPTS):
            state = self._load(customer_id, list(challenges), source, original_source)
            if state is None:
                return Applied("ignored")
            if state.source is not None:
                return Applied("duplicate")
            ops = self._withdrawals(state, challenges, sale, record.occurred_at)
            if not ops:
                return Applied("nothing")
            assert state.customer is not None
            ops.append(
                self._repo.source_op(state.customer.customer_id, SourceRecord(source), self._clock.now())
            )
            try:
                self._repo.commit(ops)
            except ActivityConflict:
                self._backoff(attempt)
                continue
            return Applied("applied")
        raise ServiceUnavailable("the customer's challenge records kept changing; retry")

    def _withdrawals(
        self, state: ActivityState, challenges: Mapping[str, Challenge], sale: Sale, at: datetime
    ) -> list[TxOp]:
        original = state.original
        assert state.customer is not None
        if original is None:
            return []
        customer_id = state.customer.customer_id
        ops: list[TxOp] = []
        withdrawn = set(original.withdrawn)
        for challenge_id, (cycle, task_ids) in original.counted.items():
            challenge, progress = challenges.get(challenge_id), state.progress.get(challenge_id)
            if challenge is None or progress is None:
                continue
            gone = [
                t
                for t in no_longer_counting(challenge, task_ids, sale)
                if f"{challenge_id}/{t}" not in withdrawn
            ]
            after = withdraw(challenge, progress, gone, cycle, sale.store.store_id) if gone else None
            if after is None:
                continue
            withdrawn |= {f"{challenge_id}/{t}" for t in gone}
            counts = {t.task_id: t.count for t in challenge.tasks}
            ops.append(
                self._repo.progress_op(
                    customer_id, progress, replace(after, updated_at=at), challenge.name, counts
                )
            )
        if ops:
            ops.append(self._repo.withdraw_op(customer_id, original, frozenset(withdrawn)))
        return ops

    def _backoff(self, attempt: int) -> None:
        self._sleep(min(0.02 * 2**attempt, 0.5) * (0.5 + random.random()))  # noqa: S311 - jitter
