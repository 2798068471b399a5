"""Domain events: what happened, for campaigns and integrations (schemas in docs/events.md).

They are written in the same transaction as the change they describe (an outbox attribute on
the changed item) and published to EventBridge from the table's stream, so an event is never
lost and never published for a change that did not commit.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from loyalty.domain.ids import new_id

SOURCE = "loyalty.platform"

# The request (or queue message) that caused what is being written: events carry it onto the bus
# and merge messages onto the queue, so one id follows a change from the API to every consumer.
CORRELATION_ID: ContextVar[str | None] = ContextVar("correlation_id", default=None)

TRANSACTION_RECORDED = "TransactionRecorded"
POINTS_EARNED = "PointsEarned"
TIER_CHANGED = "TierChanged"
CUSTOMER_ENROLLED = "CustomerEnrolled"
POINTS_EXPIRED = "PointsExpired"
POINTS_REDEEMED = "PointsRedeemed"
POINTS_REDEMPTION_REVERSED = "PointsRedemptionReversed"
GIFT_CARD_SOLD = "GiftCardSold"
STORED_VALUE_REDEEMED = "StoredValueRedeemed"
CUSTOMERS_MERGED = "CustomersMerged"
MERGE_UNDONE = "MergeUndone"
CUSTOMER_ERASED = "CustomerErased"
# A profile's editable fields changed (profile, attributes, consents, price groups, a lapsed
# confirmation): `fields` names them as segment rules do ("profile.birthday", "consents.email").
CUSTOMER_UPDATED = "CustomerUpdated"
# A customer's segment memberships changed (the segments worker; services/segment_membership.py).
SEGMENT_ENTERED = "SegmentEntered"
SEGMENT_EXITED = "SegmentExited"
CHALLENGE_COMPLETED = "ChallengeCompleted"
BADGE_EARNED = "BadgeEarned"
# Published by the events ingest; the activity worker consumes them.
CUSTOMER_EVENT_RECORDED = "CustomerEventRecorded"
CUSTOMER_EVENT_ATTRIBUTED = "CustomerEventAttributed"
# A customer's RFM scores changed (the scores job): segments on scores re-evaluate them.
SCORES_UPDATED = "ScoresUpdated"
# A campaign actioned a customer on an occasion, or held them out (outcome `control`): on the
# receipt written with what it gave (services/campaign_actions.py).
CAMPAIGN_ACTIONED = "CampaignActioned"


@dataclass(frozen=True)
class DomainEvent:
    detail_type: str
    detail: dict[str, Any]
    event_id: str = field(default_factory=new_id)

    def to_outbox(self) -> dict[str, str]:
        return {
            "id": self.event_id,
            "detail_type": self.detail_type,
            "detail": json.dumps(
                {"event_id": self.event_id, "correlation_id": CORRELATION_ID.get(), **self.detail},
                sort_keys=True,
                default=str,
            ),
        }


def outbox(events: list[DomainEvent]) -> list[dict[str, str]]:
    return [e.to_outbox() for e in events]
