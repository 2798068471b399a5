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
