"""The customer facts a campaign trigger decides with: the profile and the segment memberships in
one BatchGetItem (loyalty.adapters.segments), following a merged-away id to its survivor once."""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from loyalty.adapters.codec import customer_from_item
from loyalty.adapters.segments import SegmentRepository
from loyalty.domain.campaign_triggers import TriggerFacts
from loyalty.domain.customers import CustomerStatus


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


class DynamoTriggerFacts:
    def __init__(self, *, repo: SegmentRepository, zone_of: Callable[[str | None], str]) -> None:
        self._repo = repo
        self._zone_of = zone_of  # the profile's time zone, else the programme's default

    def facts(self, customer_id: str) -> TriggerFacts | None:
        for _ in range(2):  # the id itself, then its survivor if it was merged away
            item, memberships = self._repo.profile_and_memberships(customer_id)
            if not item:
                return None
            customer = customer_from_item(item)
            if customer.status is CustomerStatus.ACTIVE:
                return TriggerFacts(
                    customer_id=customer.customer_id,
                    member=customer.member,
                    segments=frozenset(memberships.segments),
                    birthday=customer.profile.birthday,
                    timezone=_zone(self._zone_of(customer.profile.timezone)),
                    last_purchase_at=customer.stats.last_purchase_at,
                )
            if customer.status is not CustomerStatus.MERGED or not customer.merged_into:
                return None
            customer_id = customer.merged_into
        return None
