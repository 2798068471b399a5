"""Tiers: what a member's points earned in the rolling window reach, now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from loyalty.domain.customers import Customer
from loyalty.domain.programme import Programme
from loyalty.domain.sales import points_in_window


@dataclass(frozen=True)
class TierProgress:
    points_in_window: int
    next_tier: str | None
    points_to_next_tier: int | None


def effective_tier(customer: Customer, programme: Programme, now: datetime) -> str | None:
    """A member's tier is what their points earned in the rolling window reach, right now."""
    if not customer.member:
        return None
    return programme.tier_for(
        points_in_window(customer.earned_by_month, now, programme.tier_window_months)
    ).name


def tier_progress(customer: Customer, programme: Programme, now: datetime) -> TierProgress | None:
    if not customer.member:
        return None
    points = points_in_window(customer.earned_by_month, now, programme.tier_window_months)
    upcoming = programme.next_tier(points)
    return TierProgress(
        points, upcoming.name if upcoming else None, upcoming.threshold - points if upcoming else None
    )


def tier_direction(programme: Programme, before: str | None, after: str | None) -> str:
    """`up` or `down` by the programme's order of tiers (no tier is below every tier); `changed`
    when a tier is no longer in the programme."""
    rank = {tier.name: i for i, tier in enumerate(programme.tiers)}
    if (before is not None and before not in rank) or (after is not None and after not in rank):
        return "changed"
    low, high = rank.get(before, -1) if before else -1, rank.get(after, -1) if after else -1
    return "up" if high > low else "down"
