"""API models: campaign definitions (the body is the domain's CampaignDefinition)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from loyalty.domain.campaigns import Campaign, CampaignDefinition
from loyalty.domain.models import Model

# What a PUT carries: the contract's body, checked field by field by the domain model (unknown
# fields refused); what it names (segment, offers, templates) is checked by the service.
CampaignPut = CampaignDefinition


class CampaignOut(Campaign):
    """A saved campaign, with where it stands."""

    next_run_at: datetime | None = Field(
        default=None,
        description="an active schedule campaign: when its schedule fires next (UTC); null otherwise",
    )
    trigger_segment_id: str | None = Field(
        default=None,
        description="a birthday or inactivity campaign: the segment kept for its trigger "
        "(campaign-trigger-<campaign_id>), which customers enter when their occasion comes",
    )

    @classmethod
    def of(cls, view: object) -> CampaignOut:
        campaign: Campaign = view.campaign  # type: ignore[attr-defined]
        return cls(
            **campaign.model_dump(),
            next_run_at=view.next_run_at,  # type: ignore[attr-defined]
            trigger_segment_id=view.trigger_segment_id,  # type: ignore[attr-defined]
        )


class CampaignList(Model):
    items: list[CampaignOut]
    next_cursor: str | None
