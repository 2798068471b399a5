"""Identity merges: how two profiles combine and split (placeholder values: `links.is_blocked`).

Pure rules, no I/O. The merge service moves the records; this module decides what the surviving
profile looks like after a merge and what each side holds after an undo.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from loyalty.domain.customers import Consents, Customer, CustomerStatus, PointsSummary, Profile, Stats
from loyalty.domain.links import Link, is_blocked
from loyalty.domain.programme import Programme
from loyalty.domain.sales import points_in_window

__all__ = [
    "MergeRecord",
    "MergeStatus",
    "Split",
    "combine",
    "is_blocked",
    "merge_refusal",
    "over_merge_limit",
    "split",
    "tier_after_merge",
    "undo_refusal",
]


class MergeStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    UNDO_QUEUED = "undo_queued"
    UNDOING = "undoing"
    UNDONE = "undone"


def _newest(a: Customer, b: Customer) -> tuple[Customer, Customer]:
    """(newer, older) by when each profile was last changed."""
    a_at = a.updated_at or a.created_at
    b_at = b.updated_at or b.created_at
    return (b, a) if b_at > a_at else (a, b)


def combine(survivor: Customer, merged: Customer, tier: str | None, now: datetime, merge_id: str) -> Customer:
    """The survivor after absorbing `merged`.

    Profile fields: the newest non-empty value wins (newest = the profile changed last); attributes
    key by key the same way. Consents: the most restrictive (a channel stays allowed only if both
    allowed it). Membership: either. Counters and tier progress add up; first and last purchase span
    both. The merged profile's ledger keeps its numbers shifted by the survivor's `ledger_seq`.
    """
    newer, older = _newest(survivor, merged)
    profile = Profile(
        first_name=newer.profile.first_name or older.profile.first_name,
        last_name=newer.profile.last_name or older.profile.last_name,
        birthday=newer.profile.birthday or older.profile.birthday,
        attributes={**older.profile.attributes, **newer.profile.attributes},
        country=newer.profile.country or older.profile.country,
        timezone=newer.profile.timezone or older.profile.timezone,
        favourite_store_id=newer.profile.favourite_store_id or older.profile.favourite_store_id,
        address=newer.profile.address or older.profile.address,  # whole: lines of two addresses never mix
    )
    consents = Consents(
        email=survivor.consents.email and merged.consents.email,
        sms=survivor.consents.sms and merged.consents.sms,
        mail=survivor.consents.mail and merged.consents.mail,
    )
    months = dict(survivor.earned_by_month)
    for month, points in merged.earned_by_month.items():
        months[month] = months.get(month, 0) + points
    member = survivor.member or merged.member
    enrolled = [at for at in (survivor.enrolled_at, merged.enrolled_at) if at is not None]
    return replace(
        survivor,
        member=member,
        profile=profile,
        consents=consents,
        links=survivor.links + merged.links,
        created_at=min(survivor.created_at, merged.created_at),
        enrolled_at=min(enrolled) if enrolled else None,
        updated_at=now,
        tier=tier if member else None,
        points=PointsSummary(
            survivor.points.available + merged.points.available,
            survivor.points.pending + merged.points.pending,
            survivor.points.lifetime + merged.points.lifetime,
        ),
        stats=_add_stats(survivor.stats, merged.stats),
        merged_from=tuple(dict.fromkeys((*survivor.merged_from, merged.customer_id, *merged.merged_from))),
        version=survivor.version + 1,
        earned_by_month=months,
        ledger_seq=survivor.ledger_seq + merged.ledger_seq,
        price_groups=survivor.price_groups | merged.price_groups,
        points_holds={**survivor.points_holds, **merged.points_holds},
        origin_store_id=survivor.origin_store_id or merged.origin_store_id,
    )


def _add_stats(a: Stats, b: Stats) -> Stats:
    firsts = [at for at in (a.first_purchase_at, b.first_purchase_at) if at is not None]
    lasts = [at for at in (a.last_purchase_at, b.last_purchase_at) if at is not None]
    return Stats(
        transactions=a.transactions + b.transactions,
        spend=a.spend + b.spend,
        first_purchase_at=min(firsts) if firsts else None,
        last_purchase_at=max(lasts) if lasts else None,
    )


@dataclass(frozen=True)
class Split:
    """Both sides after an undo, and what stayed with the survivor."""

    survivor: Customer
    restored: Customer
    points_kept_by_survivor: int  # spent or expired from the returned lots while they were merged


def split(
    survivor: Customer,
    survivor_before: Customer,
    merged: Customer,
    *,
    merged_at: datetime,
    returned_links: tuple[Link, ...],
    returned_holds: tuple[str, ...],
    lots_delta: int,
    returned_pending: int,
    survivor_tier: str | None,
    merged_tier: str | None,
    now: datetime,
) -> Split:
    """Undo a merge: `merged` is the tombstone as it was frozen at the merge (its counters are what
    it brought); `survivor_before` is the survivor's snapshot taken at the merge.

    `lots_delta` is how much the returned lots changed while merged (negative: spent or expired on
    the survivor's side). The merged profile gets its lots back as they are now, so its balance moves
    by `lots_delta`; the survivor keeps everything that happened after the merge.
    """
    brought = merged.points.balance
    total = brought + lots_delta
    restored_points = PointsSummary(total - returned_pending, returned_pending, merged.points.lifetime)
    restored = replace(
        merged,
        status=survivor.status,
        merged_into=None,
        points=restored_points,
        updated_at=now,
        version=merged.version + 1,
        links=tuple(link for link in merged.links if link in returned_links),
        points_holds={k: v for k, v in merged.points_holds.items() if k in returned_holds},
        tier=merged_tier if merged.member else None,
    )
    months = dict(survivor.earned_by_month)
    for month, points in merged.earned_by_month.items():
        left = months.get(month, 0) - points
        if left > 0:
            months[month] = left
        else:
            months.pop(month, None)
    changed_after = (survivor.updated_at or survivor.created_at) > merged_at and survivor.profile != (
        combine(survivor_before, merged, None, merged_at, "").profile
    )
    stats = survivor.stats
    last = stats.last_purchase_at
    first = stats.first_purchase_at
    kept_stats = Stats(
        transactions=max(stats.transactions - merged.stats.transactions, 0),
        spend=max(stats.spend - merged.stats.spend, Decimal("0.00")),
        first_purchase_at=survivor_before.stats.first_purchase_at
        or (first if first is not None and first >= merged_at else None),
        last_purchase_at=last
        if last is not None and last >= merged_at and last != merged.stats.last_purchase_at
        else survivor_before.stats.last_purchase_at,
    )
    enrolled_after = survivor.enrolled_at is not None and survivor.enrolled_at >= merged_at
    member = survivor_before.member or (enrolled_after and survivor.enrolled_at != merged.enrolled_at)
    remaining_from = tuple(
        cid for cid in survivor.merged_from if cid != merged.customer_id and cid not in merged.merged_from
    )
    kept = replace(
        survivor,
        member=member,
        enrolled_at=survivor_before.enrolled_at if not enrolled_after else survivor.enrolled_at,
        profile=survivor.profile if changed_after else survivor_before.profile,
        consents=survivor.consents if changed_after else survivor_before.consents,
        links=tuple(link for link in survivor.links if link not in returned_links),
        points=PointsSummary(
            survivor.points.available - restored_points.available,
            survivor.points.pending - restored_points.pending,
            max(survivor.points.lifetime - merged.points.lifetime, 0),
        ),
        stats=kept_stats,
        merged_from=remaining_from,
        earned_by_month=months,
        price_groups=survivor_before.price_groups | (survivor.price_groups - merged.price_groups),
        points_holds={k: v for k, v in survivor.points_holds.items() if k not in returned_holds},
        tier=survivor_tier if member else None,
        created_at=survivor_before.created_at,
        updated_at=now,
        version=survivor.version + 1,
    )
    return Split(kept, restored, -lots_delta)


@dataclass(frozen=True)
class MergeRecord:
    """The journal of one merge: what was asked, how far it got, and what it moved (for undo)."""

    merge_id: str
    requested_survivor_id: str
    merged_id: str
    reason: str | None
    status: MergeStatus
    requested_at: datetime
    actor: str
    survivor_id: str | None = None  # the live profile it ran into (the requested one, or its survivor)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    step: int = 0  # every committed step bumps it: a replayed step fails its condition
    phase: str = ""
    cursor: str | None = None
    offset: int = 0  # the merged profile's ledger seq n became the survivor's offset + n
    counts: dict[str, int] | None = None
    links_moved: tuple[str, ...] = ()
    holds_moved: tuple[str, ...] = ()
    offer_uses_moved: dict[str, int] | None = None
    survivor_before: dict[str, object] | None = None  # the survivor's profile item at the merge
    error: str | None = None
    undo: dict[str, object] | None = None  # requested_at, finished_at, returned, stayed, accumulators


def merge_refusal(survivor: Customer, merged: Customer, programme: Programme) -> tuple[str, str] | None:
    """Why these two may not merge (and which request field it is about), or None."""
    if survivor.customer_id == merged.customer_id:
        return "a customer cannot be merged into itself", "merged_id"
    for who, loc in ((survivor, "survivor_id"), (merged, "merged_id")):
        if who.status is CustomerStatus.ERASED:
            return f"customer {who.customer_id} was erased", loc
        if who.status is CustomerStatus.MERGED:
            return f"customer {who.customer_id} was merged into {who.merged_into} (a tombstone)", loc
        if who.review:
            return f"customer {who.customer_id} is flagged for review: {who.review}", loc
    if over_merge_limit(survivor, merged, programme):
        return (
            f"customer {survivor.customer_id} would absorb more than "
            f"{programme.max_merges_per_profile} merges; merging stops until a person reviews the profile",
            "survivor_id",
        )
    return None


def over_merge_limit(survivor: Customer, merged: Customer, programme: Programme) -> bool:
    # Merges since a person last reviewed the profile (a review clears the count, not the history).
    since_review = survivor.merge_count - survivor.merges_reviewed
    return since_review + merged.merge_count + 1 > programme.max_merges_per_profile


def tier_after_merge(
    combined: Customer, survivor: Customer, merged: Customer, programme: Programme, now: datetime
) -> str:
    """The higher of both tiers and what the combined window reaches (a merge never demotes)."""
    reached = programme.tier_for(
        points_in_window(combined.earned_by_month, now, programme.tier_window_months)
    )
    held = [programme.tier_named(t) for t in (survivor.tier, merged.tier) if t]
    return max([reached, *held], key=lambda t: t.threshold).name


def undo_refusal(record: MergeRecord, survivor: Customer | None, merged: Customer | None) -> str | None:
    """Why a finished merge can no longer be undone (given both profiles as they are now), or None."""
    if survivor is None or survivor.status is CustomerStatus.ERASED:
        return f"customer {record.survivor_id} was erased: the merge cannot be undone"
    if merged is None or merged.status is CustomerStatus.ERASED:
        return f"customer {record.merged_id} was erased: the merge cannot be undone"
    if survivor.status is CustomerStatus.MERGED:
        return (
            f"customer {record.survivor_id} was since merged into {survivor.merged_into}: "
            "undo that merge first"
        )
    if merged.merged_into != record.survivor_id:
        return f"customer {record.merged_id} is no longer merged into {record.survivor_id}"
    return None
