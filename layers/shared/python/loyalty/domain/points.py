"""The points ledger: every movement of a member's points, as one pure decision each.

Earning, taking back, spending, restoring a reversed redemption, maturing and expiring each take
the profile (and the lots they touch) as read and answer the profile afterwards, the ledger entries
to write, what each touched lot keeps, and the events to publish. Services load, call one of
these, and write what it answers: no service adds or subtracts points itself.

The profile answered carries the new points, tier progress and ledger sequence; its version and
`updated_at` are the writer's (the service that guards the write).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from loyalty.domain import events as ev
from loyalty.domain import lots as lot_summary
from loyalty.domain.customers import Customer, PointsSummary
from loyalty.domain.ledger import LedgerEntry, LedgerReason, TransactionRecord
from loyalty.domain.lots import OpenLot, SpendableLot
from loyalty.domain.programme import Programme
from loyalty.domain.sales import (
    Earn,
    Line,
    add_months,
    compute_earn,
    lines_total,
    lot_dates,
    month_key,
    prune_months,
)
from loyalty.domain.stores import Store
from loyalty.domain.tiers import effective_tier

Due = tuple[datetime | None, str | None]  # when the sweep next looks at a lot, and what it does then
LotUpdate = tuple[LedgerEntry, int]  # a lot as read, and what it keeps afterwards


def next_due(entry: LedgerEntry, programme: Programme, now: datetime) -> Due:
    """When the sweep next has to look at a lot: it matures, leaves the tier window, or expires."""
    if entry.pending_until and now < entry.pending_until:
        return entry.pending_until, "mature"
    if entry.earn_month:
        year, month = (int(part) for part in entry.earn_month.split("-"))
        horizon = add_months(datetime(year, month, 1, tzinfo=now.tzinfo), programme.tier_window_months)
        if now < horizon and (entry.expires_at is None or horizon < entry.expires_at):
            return horizon, "tier"
    if entry.expires_at and (entry.remaining or 0) > 0:
        return entry.expires_at, "expire"
    return None, None


def tier_event(customer_id: str, before: str | None, after: str | None, reason: str) -> ev.DomainEvent:
    return ev.DomainEvent(
        ev.TIER_CHANGED, {"customer_id": customer_id, "from": before, "to": after, "reason": reason}
    )


# ---- earn -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Earned:
    customer: Customer
    entry: LedgerEntry | None  # the lot; None when nothing was earned
    due: Due
    events: tuple[ev.DomainEvent, ...]


def earn(
    customer: Customer,
    programme: Programme,
    now: datetime,
    *,
    points: int,
    line_points: dict[str, int],
    earned_at: datetime,
    transaction_id: str | None,
    store_id: str,
    reason: LedgerReason = LedgerReason.EARN,
    rules: tuple[str, ...] = (),
    actor: str = "system",
    event: tuple[str, str] | None = None,
    available_now: bool = False,
) -> Earned:
    """A sale's (or a retro-credited sale's) points: a new lot, pending until the return window has
    passed, and its month's tier progress. Earning nothing still prunes the tier months.

    `event`: (event id, rule id) of an event earn, whose lot nothing can return: it is available
    at once, and its entry and PointsEarned name the rule and the event. `available_now`: points
    no sale backs (a campaign's gift), which nothing can return either."""
    earn_month = month_key(earned_at)
    months = dict(customer.earned_by_month)
    months[earn_month] = months.get(earn_month, 0) + points
    months = prune_months(months, now, programme.tier_window_months)
    pending_until, expires_at = lot_dates(programme, earned_at)
    if event is not None or available_now:
        pending_until = min(pending_until, now)
    pending = now < pending_until
    before = customer.points
    summary = PointsSummary(
        available=before.available + (0 if pending else points),
        pending=before.pending + (points if pending else 0),
        lifetime=before.lifetime + points,
    )
    if not points:
        return Earned(replace(customer, points=summary, earned_by_month=months), None, (None, None), ())
    seq = customer.ledger_seq + 1
    entry = LedgerEntry(
        customer_id=customer.customer_id,
        seq=seq,
        at=now,
        points=points,
        reason=reason,
        balance_after=summary.balance,
        transaction_id=transaction_id,
        store_id=store_id,
        remaining=points,
        pending_until=pending_until,
        expires_at=expires_at,
        line_points=line_points,
        earn_month=earn_month,
        actor=actor,
        event_id=event[0] if event else None,
        rule_id=event[1] if event else None,
    )
    payload: dict[str, object] = {
        "customer_id": customer.customer_id,
        "points": points,
        "balance": summary.balance,
        "transaction_id": transaction_id,
        "store_id": store_id,
    }
    if reason is LedgerReason.EARN:
        payload.update(rules=list(rules), pending_until=pending_until, expires_at=expires_at)
    else:
        payload["reason"] = reason.value
    if event is not None:
        payload.update(event_id=event[0], rule_id=event[1], rules=[event[1]], expires_at=expires_at)
    lots = lot_summary.advance(customer.lots, customer.ledger_seq, seq, [entry])
    updated = replace(customer, points=summary, earned_by_month=months, ledger_seq=seq, lots=lots)
    event_out = ev.DomainEvent(ev.POINTS_EARNED, payload)
    return Earned(updated, entry, next_due(entry, programme, now), (event_out,))


@dataclass(frozen=True)
class EventEarned:
    customer: Customer  # points, tier progress, ledger sequence and tier afterwards
    lots: tuple[tuple[str, LedgerEntry, Due], ...]  # rule id, its lot, when the sweep looks at it
    events: tuple[ev.DomainEvent, ...]  # one PointsEarned per rule, TierChanged


def earn_for_event(
    customer: Customer,
    programme: Programme,
    now: datetime,
    *,
    rule_points: list[tuple[str, int]],
    event_id: str,
    store_id: str,
    occurred_at: datetime,
    actor: str = "job:activity",
) -> EventEarned:
    """A member's points for one event: a lot per rule that earns (each an ordinary earn, so
    expiry, tier progress and the sweep treat it like any other), and the tier it may reach."""
    tier_before = effective_tier(customer, programme, now)
    updated = customer
    lots: list[tuple[str, LedgerEntry, Due]] = []
    events: list[ev.DomainEvent] = []
    for rule_id, points in rule_points:
        earned = earn(
            updated,
            programme,
            now,
            points=points,
            line_points={},
            earned_at=min(occurred_at, now),
            transaction_id=None,
            store_id=store_id,
            reason=LedgerReason.EVENT,
            actor=actor,
            event=(event_id, rule_id),
        )
        updated = earned.customer
        if earned.entry is not None:
            lots.append((rule_id, earned.entry, earned.due))
            events.extend(earned.events)
    tier_after = effective_tier(updated, programme, now)
    if tier_after != tier_before:
        events.append(tier_event(customer.customer_id, tier_before, tier_after, "event"))
    return EventEarned(replace(updated, tier=tier_after), tuple(lots), tuple(events))


@dataclass(frozen=True)
class MemberSale:
    customer: Customer  # points, tier progress, ledger sequence, stats and tier afterwards
    earn: Earn
    earned: Earned
    tier_before: str | None
    tier_after: str | None
    events: tuple[ev.DomainEvent, ...]  # tier changed (the earn rides on TransactionRecorded)


def member_sale(
    customer: Customer,
    programme: Programme,
    store: Store,
    lines: list[Line],
    now: datetime,
    *,
    occurred_at: datetime,
    transaction_id: str,
    backdated: bool,
    multipliers: tuple[tuple[frozenset[str], Decimal], ...] = (),
    bonus_points: int = 0,
    actor: str = "system",
) -> MemberSale:
    """A member's sale: it earns as their tier, the earn rules and the offers say (nothing when
    backdated), counts in their stats, and may move their tier."""
    tier_before = effective_tier(customer, programme, now)
    by_rules = compute_earn(programme, store, lines, tier_before or programme.base_tier, occurred_at)
    points = Earn({}, ()) if backdated else by_rules.adjusted(multipliers, bonus_points)
    # A lot and its tier progress date from the sale, not from when a till got round to
    # sending it (a sale a few minutes "ahead" by a till's clock counts as now).
    earned = earn(
        customer,
        programme,
        now,
        points=points.total,
        line_points=points.line_points,
        earned_at=min(occurred_at, now),
        transaction_id=transaction_id,
        store_id=store.store_id,
        rules=points.rules_applied,
        actor=actor,
    )
    tier_after = effective_tier(earned.customer, programme, now)
    stats = customer.stats.with_sale(lines_total(lines), occurred_at)
    # The sale's TransactionRecorded carries its earn (points, balance, rules, the lot's dates):
    # one event per sale instead of two, so no PointsEarned for a sale (retro credits, event
    # earns and challenge rewards still publish theirs).
    events: tuple[ev.DomainEvent, ...] = ()
    if tier_after != tier_before:
        events = (*events, tier_event(customer.customer_id, tier_before, tier_after, "sale"))
    updated = replace(earned.customer, stats=stats, tier=tier_after)
    return MemberSale(updated, points, earned, tier_before, tier_after, events)


# ---- take back (returns and cancellations) ----------------------------------------------------


class TakenBack(NamedTuple):
    customer: Customer
    from_lot: int  # what came out of the sale's own lot (the rest came out of the balance)
    entry: LedgerEntry


def take_back(
    customer: Customer,
    lot: LedgerEntry | None,
    points: int,
    programme: Programme,
    now: datetime,
    reason: LedgerReason,
    original: TransactionRecord,
    own: tuple[str, str] | None = None,
    actor: str = "system",
) -> TakenBack:
    """Points come back out of the sale's own lot; what was spent already comes out of the balance,
    which may go negative (the ledger shows it)."""
    from_lot = min(max(lot.remaining or 0, 0), points) if lot is not None else 0
    shortfall = points - from_lot
    lot_pending = lot is not None and lot.pending_until is not None and now < lot.pending_until
    before = customer.points
    summary = PointsSummary(
        available=before.available - (0 if lot_pending else from_lot) - shortfall,
        pending=before.pending - (from_lot if lot_pending else 0),
        lifetime=before.lifetime - points,
    )
    months = dict(customer.earned_by_month)
    earn_month = (
        lot.earn_month
        if lot is not None and lot.earn_month
        else month_key(min(original.occurred_at, original.recorded_at))
    )
    months[earn_month] = months.get(earn_month, 0) - points
    months = prune_months(months, now, programme.tier_window_months)
    seq = customer.ledger_seq + 1
    entry = LedgerEntry(
        customer_id=customer.customer_id,
        seq=seq,
        at=now,
        points=-points,
        reason=reason,
        balance_after=summary.balance,
        transaction_id=own[1] if own else original.transaction_id,
        store_id=own[0] if own else original.store_id,
        original_transaction_id=original.transaction_id if own else None,
        original_store_id=original.store_id if own else None,
        actor=actor,
    )
    changed = [replace(lot, remaining=(lot.remaining or 0) - from_lot)] if lot and from_lot else []
    lots = lot_summary.advance(customer.lots, customer.ledger_seq, seq, changed)
    updated = replace(customer, points=summary, earned_by_month=months, ledger_seq=seq, lots=lots)
    return TakenBack(updated, from_lot, entry)


# ---- spend and restore (redemptions, captured holds, reversals) ----------------------------------


@dataclass(frozen=True)
class Spent:
    customer: Customer
    entry: LedgerEntry
    lots: tuple[tuple[SpendableLot, int], ...]  # a lot as read, and what it keeps
    taken: dict[int, int]  # lot seq -> points


def spend(
    customer: Customer,
    open_lots: Sequence[SpendableLot],
    points: int,
    now: datetime,
    *,
    store_id: str | None,
    redemption_id: str,
    actor: str,
) -> Spent | None:
    """Take `points` from the lots that expire first (pending and expired lots are not spendable).
    None when the lots given do not cover it: the open-lot index lags the profile by a moment."""
    chosen: list[tuple[SpendableLot, int]] = []
    left = points
    for lot in open_lots:
        if left <= 0:
            break
        if (lot.pending_until and now < lot.pending_until) or (lot.expires_at and now >= lot.expires_at):
            continue
        n = min(lot.remaining or 0, left)
        if n > 0:
            chosen.append((lot, n))
            left -= n
    if left > 0:
        return None
    before = customer.points
    summary = PointsSummary(before.available - points, before.pending, before.lifetime)
    seq = customer.ledger_seq + 1
    entry = LedgerEntry(
        customer_id=customer.customer_id,
        seq=seq,
        at=now,
        points=-points,
        reason=LedgerReason.REDEEM,
        balance_after=summary.balance,
        store_id=store_id,
        redemption_id=redemption_id,
        actor=actor,
    )
    kept = [
        OpenLot(lot.customer_id, lot.seq, (lot.remaining or 0) - n, lot.expires_at, lot.pending_until)
        for lot, n in chosen
    ]
    lots = lot_summary.advance(customer.lots, customer.ledger_seq, seq, kept)
    return Spent(
        replace(customer, points=summary, ledger_seq=seq, lots=lots),
        entry,
        tuple((lot, (lot.remaining or 0) - n) for lot, n in chosen),
        {lot.seq: n for lot, n in chosen},
    )


@dataclass(frozen=True)
class Restored:
    customer: Customer
    entries: tuple[LedgerEntry, ...]
    lots: tuple[LotUpdate, ...]
    restored: int
    expired: int
    events: tuple[ev.DomainEvent, ...]


def restore(
    customer: Customer,
    taken: Mapping[int, int],
    lots: Mapping[int, LedgerEntry | None],
    now: datetime,
    *,
    store_id: str,
    redemption_id: str,
    actor: str,
) -> Restored:
    """Put back exactly what a redemption took, into the same lots. A lot that expired meanwhile,
    or is gone (it went back to its owner when a merge was undone), takes nothing back: the ledger
    shows that part as expiring."""
    updates: list[LotUpdate] = []
    restored = expired = 0
    for seq, points in sorted(taken.items()):
        lot = lots.get(seq)
        if lot is None or (lot.expires_at is not None and now >= lot.expires_at):
            expired += points
            continue
        updates.append((lot, (lot.remaining or 0) + points))
        restored += points
    before = customer.points
    summary = PointsSummary(before.available + restored, before.pending, before.lifetime)
    seq = customer.ledger_seq + 1
    entries = [
        LedgerEntry(
            customer_id=customer.customer_id,
            seq=seq,
            at=now,
            points=restored + expired,
            reason=LedgerReason.REVERSE,
            balance_after=summary.balance + expired,
            store_id=store_id,
            redemption_id=redemption_id,
            actor=actor,
        )
    ]
    if expired:
        seq += 1
        entries.append(
            LedgerEntry(
                customer_id=customer.customer_id,
                seq=seq,
                at=now,
                points=-expired,
                reason=LedgerReason.EXPIRE,
                balance_after=summary.balance,
                store_id=store_id,
                redemption_id=redemption_id,
                actor=actor,
            )
        )
    event = ev.DomainEvent(
        ev.POINTS_REDEMPTION_REVERSED,
        {
            "customer_id": customer.customer_id,
            "points": restored,
            "expired": expired,
            "redemption_id": redemption_id,
            "balance": summary.balance,
        },
    )
    changed = [replace(lot, remaining=remaining) for lot, remaining in updates]
    after = lot_summary.advance(customer.lots, customer.ledger_seq, seq, changed)
    updated = replace(customer, points=summary, ledger_seq=seq, lots=after)
    return Restored(updated, tuple(entries), tuple(updates), restored, expired, (event,))


# ---- the sweep: mature, tier review, expire ----------------------------------------------------


@dataclass(frozen=True)
class Swept:
    customer: Customer  # with its tier as the window now makes it
    kind: str  # mature | tier | expire
    remaining: int  # what the lot keeps
    due: Due  # when the sweep looks at the lot next
    entry: LedgerEntry | None  # an expiry's ledger entry
    events: tuple[ev.DomainEvent, ...]
    expired_points: int
    tier_changed: bool


def sweep_lot(customer: Customer, lot: LedgerEntry, programme: Programme, now: datetime) -> Swept | None:
    """What falls due on a lot now: it matures, leaves the tier window, or what is left of it
    expires; the tier follows. None when nothing is due (yet)."""
    kind = lot.due_kind
    if not kind:
        return None
    remaining = lot.remaining or 0
    before = customer.points
    summary = before
    entry = None
    events: list[ev.DomainEvent] = []
    if kind == "mature":
        if lot.pending_until and now < lot.pending_until:
            return None
        moved = max(remaining, 0)
        summary = PointsSummary(before.available + moved, before.pending - moved, before.lifetime)
        due = next_due(replace(lot, pending_until=now), programme, now)
    elif kind == "tier":
        due = next_due(replace(lot, earn_month=None), programme, now)
    else:  # expire
        if lot.expires_at and now < lot.expires_at:
            return None
        due = (None, None)
        if remaining > 0:
            summary = PointsSummary(before.available - remaining, before.pending, before.lifetime)
            entry = LedgerEntry(
                customer_id=customer.customer_id,
                seq=customer.ledger_seq + 1,
                at=now,
                points=-remaining,
                reason=LedgerReason.EXPIRE,
                balance_after=summary.balance,
                transaction_id=lot.transaction_id,
                store_id=lot.store_id,
                actor="job:sweeper",
            )
            events.append(
                ev.DomainEvent(
                    ev.POINTS_EXPIRED,
                    {
                        "customer_id": customer.customer_id,
                        "points": remaining,
                        "lot": lot.entry_id,
                        "balance": entry.balance_after,
                    },
                )
            )
    seq = entry.seq if entry else customer.ledger_seq
    closed = [replace(lot, remaining=0)] if kind == "expire" else []
    lots = lot_summary.advance(customer.lots, customer.ledger_seq, seq, closed)
    updated = replace(customer, points=summary, ledger_seq=seq, lots=lots)
    tier = effective_tier(updated, programme, now)
    if tier != customer.tier:
        events.append(tier_event(customer.customer_id, customer.tier, tier, "window"))
    return Swept(
        customer=replace(updated, tier=tier),
        kind=kind,
        remaining=0 if kind == "expire" else remaining,
        due=due,
        entry=entry,
        events=tuple(events),
        expired_points=max(remaining, 0) if kind == "expire" else 0,
        tier_changed=tier != customer.tier,
    )
