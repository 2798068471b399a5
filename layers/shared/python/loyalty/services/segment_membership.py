"""Real-time segment membership: one customer evaluated from scratch against the saved rules.

Whatever changed (a sale, an event, a profile edit, a merge, the clock), the answer is the same
computation: load the customer's facts, ask the domain, diff with the stored memberships, write
the difference. So the stored membership never depends on the order of the changes that led to it
(the invariant in design.md); concurrent evaluations of one customer race on the memberships
item's version, and the loser reads again and finds nothing left to do.

Round trips of one evaluation: one BatchGetItem (profile, memberships, the catalogue's version
counter), a Query of the purchases and one of the events when some saved rule looks at them (only
as far back as the rules look), and one TransactWriteItems when something changed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from loyalty.adapters.codec import customer_from_item, from_iso
from loyalty.adapters.dynamo import Item
from loyalty.adapters.segments import (
    Membership,
    MembershipWrite,
    SegmentRepository,
    StaleMemberships,
    StoredEvent,
    StoredMemberships,
    StoredSegment,
)
from loyalty.domain import events as ev
from loyalty.domain.customers import Customer, CustomerStatus
from loyalty.domain.errors import ServiceUnavailable
from loyalty.domain.ledger import TransactionRecord
from loyalty.domain.programme import Programme
from loyalty.domain.sales import OrderStatus
from loyalty.domain.scores import Scores
from loyalty.domain.segments import (
    CustomerFacts,
    EventFact,
    LineFact,
    Needs,
    PurchaseFact,
    Rule,
    evaluate,
    needs,
    parse_rule,
)
from loyalty.domain.tiers import effective_tier
from loyalty.services.config import ProgrammeService, StoreService
from loyalty.services.ports import Clock, backoff

log = logging.getLogger(__name__)

SEGMENT_ENTERED = ev.SEGMENT_ENTERED
SEGMENT_EXITED = ev.SEGMENT_EXITED
ATTEMPTS = 8
# A transaction holds at most 100 items: the customer's item and two per change (member row, size).
CHANGES_PER_WRITE = 49
# API functions look at the catalogue's version at most this often (as offers do); the worker reads
# the counter with every customer, so it never evaluates against rules older than that read.
CATALOGUE_SECONDS = 60.0
# Due customers per message when the sweep fans out (a message of ids stays far below SQS's 256 KB,
# and one consumer evaluates them within its timeout).
FAN_OUT_BATCH = 50


# ---- the saved rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedRule:
    segment_id: str
    version: int
    rule: Rule


@dataclass(frozen=True)
class Catalogue:
    version: int
    rules: Mapping[str, SavedRule]
    needs: Needs

    def only(self, segment_id: str | None) -> Mapping[str, SavedRule]:
        if segment_id is None:
            return self.rules
        return {segment_id: self.rules[segment_id]} if segment_id in self.rules else {}


class SegmentCatalogue:
    """The saved rules, parsed once per version of the catalogue (segadmin bumps its counter on
    every PUT and DELETE). A rule that no longer parses (saved by an older rule language) is left
    out and logged rather than failing every customer's evaluation."""

    def __init__(
        self,
        *,
        repo: SegmentRepository,
        ttl: float = CATALOGUE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repo = repo
        self._ttl = ttl
        self._monotonic = monotonic
        self._catalogue: Catalogue | None = None
        self._checked_at = 0.0

    def at_version(self, version: int) -> Catalogue:
        """The rules as of `version` of the counter (read again only when it moved)."""
        if self._catalogue is None or self._catalogue.version != version:
            self._catalogue = self._load(version)
        self._checked_at = self._monotonic()
        return self._catalogue

    def current(self) -> Catalogue:
        if self._catalogue is not None and self._monotonic() - self._checked_at < self._ttl:
            return self._catalogue
        return self.at_version(self._repo.catalogue_version())

    def _load(self, version: int) -> Catalogue:
        rules: dict[str, SavedRule] = {}
        for stored in self._repo.definitions():
            parsed = _parsed(stored)
            if parsed is not None:
                rules[stored.segment_id] = parsed
        return Catalogue(version, rules, needs(r.rule for r in rules.values()))


def _parsed(stored: StoredSegment) -> SavedRule | None:
    try:
        return SavedRule(stored.segment_id, stored.version, parse_rule(stored.rule))
    except Exception:  # a stored rule the current language refuses: that segment only is skipped
        log.warning("saved segment rule does not parse", extra={"segment_id": stored.segment_id})
        return None


# ---- evaluating one customer ----------------------------------------------------------------------


@dataclass(frozen=True)
class MembershipChange:
    customer_id: str
    entered: tuple[str, ...] = ()
    exited: tuple[str, ...] = ()
    segments: frozenset[str] = frozenset()  # the memberships after the evaluation
    next_change_at: datetime | None = None
    written: bool = False
    # The profile was merged away: it left every segment, and its survivor needs evaluating.
    merged_into: str | None = None


@dataclass(frozen=True)
class Seen:
    """What the message that asked for an evaluation already says happened: read by key if the
    (eventually consistent) indexes do not show it yet, so a change is never evaluated without
    the fact that caused it."""

    transactions: tuple[tuple[str, str], ...] = ()  # (store_id, transaction_id)
    events: tuple[tuple[tuple[str, str], StoredEvent], ...] = ()  # ((store_id, event_id), event)


@dataclass
class SweepReport:
    evaluated: int = 0
    changed: int = 0
    queued: int = 0  # sent on to the queue's consumers (see SegmentMembership.sweep)
    more: bool = False  # stopped by the time budget: the rest stays due for the next run


@dataclass
class _Diff:
    segments: dict[str, Membership]
    entered: dict[str, Membership] = field(default_factory=dict)
    exited: list[str] = field(default_factory=list)


class SegmentMembership:
    def __init__(
        self,
        *,
        repo: SegmentRepository,
        catalogue: SegmentCatalogue,
        programme: ProgrammeService,
        stores: StoreService,
        clock: Clock,
        resolve_customer: Callable[[str], Customer],
        fan_out: Callable[[Sequence[str]], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        # Where the sweep sends due customers to be evaluated by the queue's consumers in parallel
        # (the segments queue); None: the sweep evaluates them itself (tests, a bench).
        self._fan_out = fan_out
        self._resolve_customer = resolve_customer  # follows merges; raises CustomerNotFound
        self._repo = repo
        self._catalogue = catalogue
        self._programme = programme
        self._stores = stores
        self._clock = clock
        self._sleep = sleep

    # ---- reads for other use cases ---------------------------------------------------------------
    def memberships(self, customer_id: str) -> dict[str, datetime]:
        """The segments the customer is in now, with when they entered."""
        stored = self._repo.memberships(customer_id)
        return {sid: m.entered_at for sid, m in stored.segments.items()}

    def customer_with_segments(self, customer_id: str) -> tuple[Customer, list[str]]:
        """The live profile an id stands for and its segments: one BatchGetItem for a live id; a
        merged-away id follows to its survivor (CustomerNotFound for an unknown or erased one)."""
        profile, stored = self._repo.profile_and_memberships(customer_id)
        customer = customer_from_item(profile) if profile else None
        if customer is None or customer.status is not CustomerStatus.ACTIVE:
            customer = self._resolve_customer(customer_id)
            stored = self._repo.memberships(customer.customer_id)
        return customer, sorted(stored.segments)

    def answer(self, customer_id: str, *, now: datetime | None = None) -> frozenset[str]:
        """The segments a from-scratch evaluation puts the customer in now, writing nothing (what
        the stored memberships must equal, within the stated delays)."""
        at = now or self._clock.now()
        snapshot = self._repo.snapshot(customer_id)
        catalogue = self._catalogue.at_version(snapshot.catalogue_version)
        customer = customer_from_item(snapshot.profile) if snapshot.profile else None
        if customer is None or customer.status is not CustomerStatus.ACTIVE:
            return frozenset()
        facts = self._facts(customer, snapshot.profile or {}, catalogue.needs, at, Seen())
        return frozenset(self._verdicts(catalogue.rules, facts, at)[0])

    # ---- the evaluation ----------------------------------------------------------------------------
    def evaluate_customer(
        self,
        customer_id: str,
        *,
        now: datetime | None = None,
        only: str | None = None,
        seen: Seen | None = None,
    ) -> MembershipChange:
        """Evaluate the customer against every saved rule (or only segment `only`: a background
        evaluation of one new or changed segment) and store the difference."""
        for attempt in range(ATTEMPTS):
            backoff(attempt, self._sleep)
            at = now or self._clock.now()
            snapshot = self._repo.snapshot(customer_id)
            catalogue = self._catalogue.at_version(snapshot.catalogue_version)
            rules = catalogue.only(only)
            customer = customer_from_item(snapshot.profile) if snapshot.profile else None
            stored = snapshot.memberships
            if customer is None or customer.status is not CustomerStatus.ACTIVE:
                matches: dict[str, SavedRule] = {}
                next_change = None
            else:
                wanted = catalogue.needs if only is None else needs(r.rule for r in rules.values())
                facts = self._facts(customer, snapshot.profile or {}, wanted, at, seen or Seen())
                matches, next_change = self._verdicts(rules, facts, at)
            if only is not None:  # the other rules' next change still stands
                kept = stored.next_change_at if stored.next_change_at and stored.next_change_at > at else None
                next_change = min((t for t in (kept, next_change) if t is not None), default=None)
            in_scope = set(stored.segments) if only is None else {only}
            diff = _diff(stored, matches, in_scope, at)
            merged_into = (
                customer.merged_into if customer and customer.status is CustomerStatus.MERGED else None
            )
            if not diff.entered and not diff.exited and not _moved(stored, diff, next_change):
                return MembershipChange(
                    customer_id,
                    segments=frozenset(stored.segments),
                    next_change_at=next_change,
                    merged_into=merged_into,
                )
            try:
                self._write(stored, diff, next_change, customer, at)
            except StaleMemberships:
                continue
            return MembershipChange(
                customer_id,
                entered=tuple(sorted(diff.entered)),
                exited=tuple(sorted(diff.exited)),
                segments=frozenset(diff.segments),
                next_change_at=next_change,
                written=True,
                merged_into=merged_into,
            )
        raise ServiceUnavailable(f"the segment memberships of {customer_id} kept changing; retry")

    def _verdicts(
        self, rules: Mapping[str, SavedRule], facts: CustomerFacts, at: datetime
    ) -> tuple[dict[str, SavedRule], datetime | None]:
        matches: dict[str, SavedRule] = {}
        next_change: datetime | None = None
        for sid, saved in rules.items():
            verdict = evaluate(saved.rule, facts, at)
            if verdict.matches:
                matches[sid] = saved
            # Only a moment still to come can be due: one at or before now would be due again at once.
            if verdict.changes_at is not None and verdict.changes_at > at:
                next_change = (
                    verdict.changes_at if next_change is None else min(next_change, verdict.changes_at)
                )
        return matches, next_change

    def _write(
        self,
        stored: StoredMemberships,
        diff: _Diff,
        next_change: datetime | None,
        customer: Customer | None,
        at: datetime,
    ) -> None:
        """One transaction per 49 changes (the first carries the version read; each moves it on),
        so even a merge that empties 200 segments leaves items, rows and sizes in step after each."""
        member = bool(customer and customer.member and customer.status is CustomerStatus.ACTIVE)
        changes: list[tuple[str, Membership | None]] = [
            *sorted(diff.entered.items()),
            *((sid, None) for sid in sorted(diff.exited)),
        ]
        steps = [changes[i : i + CHANGES_PER_WRITE] for i in range(0, len(changes), CHANGES_PER_WRITE)] or [
            []
        ]
        segments = dict(stored.segments)
        version = stored.version
        for n, step in enumerate(steps):
            entered = {sid: m for sid, m in step if m is not None}
            exited = [sid for sid, m in step if m is None]
            for sid in exited:
                segments.pop(sid, None)
            segments.update(entered)
            if n == len(steps) - 1:
                segments = dict(diff.segments)  # the last step also carries the rule versions moved on
            events = [
                _event(SEGMENT_ENTERED, stored.customer_id, sid, member, at, m.rule_version)
                for sid, m in entered.items()
            ] + [
                _event(
                    SEGMENT_EXITED,
                    stored.customer_id,
                    sid,
                    member,
                    at,
                    stored.segments[sid].rule_version if sid in stored.segments else 0,
                )
                for sid in exited
            ]
            self._repo.write(
                MembershipWrite(
                    customer_id=stored.customer_id,
                    expected_version=version,
                    segments=dict(segments),
                    entered=entered,
                    exited=exited,
                    next_change_at=next_change,
                    evaluated_at=at,
                    outbox=ev.outbox(events),
                )
            )
            version += 1

    # ---- the facts -----------------------------------------------------------------------------------
    def _facts(
        self, customer: Customer, profile: Item, wanted: Needs, at: datetime, seen: Seen
    ) -> CustomerFacts:
        programme = self._programme.current()
        purchases: tuple[PurchaseFact, ...] = ()
        if wanted.lookback is not None:
            since = at - wanted.lookback
            records = self._repo.purchases(customer.customer_id, since)
            known = {(r.store_id, r.transaction_id) for r in records}
            for key in seen.transactions:
                if key not in known:  # the index has not shown it yet: read it by its key
                    record = self._repo.transaction(*key)
                    if record is not None and record.customer_id == customer.customer_id:
                        records.append(record)
            purchases = tuple(self._purchase(r) for r in records if r.occurred_at >= since and _counts(r))
        events: tuple[EventFact, ...] = ()
        if wanted.event_lookback is not None and wanted.event_types != frozenset():
            since = at - wanted.event_lookback
            stored = self._repo.events(customer.customer_id, since, wanted.event_types)
            known_events = {e.key for e in stored if e.key is not None}
            for key, event in seen.events:
                if (
                    key not in known_events
                    and event.occurred_at >= since
                    and (wanted.event_types is None or event.type in wanted.event_types)
                ):
                    stored.append(event)
            events = tuple(EventFact(e.occurred_at, e.type, e.properties) for e in stored)
        tier = effective_tier(customer, programme, at)
        return CustomerFacts(
            customer=customer,
            tier=tier,
            tier_until=_tier_until(customer, programme, at, tier),
            scores=scores_of(profile),
            purchases=purchases,
            events=events,
            timezone=_zone(programme.messaging.zone_of(customer.profile.timezone)),
        )

    def _purchase(self, record: TransactionRecord) -> PurchaseFact:
        store = self._stores.find(record.store_id)
        return PurchaseFact(
            occurred_at=record.occurred_at,
            type=record.type.value,
            store_id=record.store_id,
            channel=record.channel,
            store_attributes=dict(store.attributes) if store else {},
            lines=tuple(
                LineFact(sku=rl.line.sku, category=rl.line.category, amount=rl.line.amount)
                for rl in record.lines
            ),
        )

    # ---- the clock ------------------------------------------------------------------------------------
    def sweep(self, now: datetime | None = None, budget_s: float = 45.0) -> SweepReport:
        """Every customer whose next change has come: evaluated again (each finds its next one).

        With a queue to fan out to, the sweep only reads the due index and sends the customers on in
        messages of FAN_OUT_BATCH, so a minute with many due customers is evaluated by as many
        consumers as the queue wakes (an entry stays due until its evaluation moves it, so a message
        lost or still waiting is sent again by a later sweep; evaluating twice changes nothing).
        Stops after `budget_s`; what is left stays due and the next run takes it."""
        at = now or self._clock.now()
        started = time.monotonic()
        report = SweepReport()
        for shard in range(self._repo.shards):
            cursor = None
            while True:
                due, cursor = self._repo.due(shard, at, cursor)
                if self._fan_out is not None:
                    for start in range(0, len(due), FAN_OUT_BATCH):
                        self._fan_out(due[start : start + FAN_OUT_BATCH])
                    report.queued += len(due)
                    due = []
                for customer_id in due:
                    if time.monotonic() - started > budget_s:
                        report.more = True
                        return report
                    change = self.evaluate_customer(customer_id, now=at)
                    report.evaluated += 1
                    report.changed += bool(change.entered or change.exited)
                if cursor is None:
                    break
                if time.monotonic() - started > budget_s:
                    report.more = True
                    return report
        return report


def _counts(record: TransactionRecord) -> bool:
    """A cancelled order never became a purchase (its points were reversed with it)."""
    return record.order_status is not OrderStatus.CANCELLED


def _diff(
    stored: StoredMemberships, matches: Mapping[str, SavedRule], in_scope: Iterable[str], at: datetime
) -> _Diff:
    segments = dict(stored.segments)
    diff = _Diff(segments)
    for sid in sorted(set(in_scope) | set(matches)):
        saved = matches.get(sid)
        held = stored.segments.get(sid)
        if saved is None and held is not None:
            diff.exited.append(sid)
            del segments[sid]
        elif saved is not None and held is None:
            diff.entered[sid] = segments[sid] = Membership(at, saved.version)
        elif saved is not None and held is not None and held.rule_version != saved.version:
            segments[sid] = replace(held, rule_version=saved.version)  # still a member under the new rule
    return diff


def _moved(stored: StoredMemberships, diff: _Diff, next_change: datetime | None) -> bool:
    """Whether the item must be written although nobody entered or left."""
    return stored.next_change_at != next_change or diff.segments != stored.segments


def _event(
    detail_type: str, customer_id: str, segment_id: str, member: bool, at: datetime, rule_version: int
) -> ev.DomainEvent:
    return ev.DomainEvent(
        detail_type,
        {
            "customer_id": customer_id,
            "segment_id": segment_id,
            "member": member,
            "at": at,
            "rule_version": rule_version,
        },
    )


def scores_of(profile: Item) -> Scores | None:
    """The RFM scores the scores job wrote onto the profile, if any."""
    raw = profile.get("scores")
    if not isinstance(raw, Mapping) or not all(k in raw for k in ("r", "f", "m")):
        return None
    computed = from_iso(raw.get("computed_at")) or datetime.min
    return Scores(r=int(raw["r"]), f=int(raw["f"]), m=int(raw["m"]), computed_at=computed)


def _tier_until(customer: Customer, programme: Programme, at: datetime, tier: str | None) -> datetime | None:
    """The first month boundary at which the rolling window alone moves the effective tier (its
    months are calendar months of the instant, as the profile counts them); None if none does."""
    if tier is None:
        return None
    year, month = at.year, at.month
    for _ in range(programme.tier_window_months + 1):
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        boundary = datetime(year, month, 1, tzinfo=at.tzinfo)
        if effective_tier(customer, programme, boundary) != tier:
            return boundary
    return None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def seen_in(detail_type: str, detail: Mapping[str, Any]) -> Seen:
    """The facts a bus event itself carries (see Seen)."""
    if detail_type == ev.TRANSACTION_RECORDED and detail.get("store_id") and detail.get("transaction_id"):
        return Seen(transactions=((str(detail["store_id"]), str(detail["transaction_id"])),))
    if detail_type in (ev.CUSTOMER_EVENT_RECORDED, ev.CUSTOMER_EVENT_ATTRIBUTED):
        at = from_iso(detail.get("occurred_at"))
        if at is not None and detail.get("store_id") and detail.get("event_id"):
            key = (str(detail["store_id"]), str(detail["event_id"]))
            event = StoredEvent(at, str(detail.get("type")), dict(detail.get("properties") or {}), key)
            return Seen(events=((key, event),))
    return Seen()


def customers_named(detail_type: str, detail: Mapping[str, Any]) -> Sequence[str]:
    """Whose memberships a bus event may have changed: a merge names both profiles (the merged one
    leaves every segment, the survivor gains its history), an erasure the profiles it erased."""
    if detail_type == ev.CUSTOMERS_MERGED:
        ids = [detail.get("merged_id"), detail.get("survivor_id")]
    elif detail_type == ev.MERGE_UNDONE:
        ids = [detail.get("survivor_id"), detail.get("restored_id")]
    elif detail_type == ev.CUSTOMER_ERASED:
        ids = [detail.get("customer_id"), *(detail.get("merged_ids") or [])]
    else:
        ids = [detail.get("customer_id")]
    return list(dict.fromkeys(str(i) for i in ids if i))
