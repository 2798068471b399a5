"""API models: previews of segment rules over the data lake."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from loyalty.api.models.common import Strict
from loyalty.domain.models import Model
from loyalty.domain.segments import SegmentRule
from loyalty.services.segment_preview import Preview


class SegmentPreviewIn(Strict):
    rule: SegmentRule = Field(
        description="A rule as a segment takes it (see PUT /v1/admin/segments/{segment_id})",
        examples=[
            {"all": [{"attr": "member", "eq": True}, {"purchased": {"within": "P90D", "count": {"gte": 2}}}]}
        ],
    )


class ReachableOut(Model):
    email: int = Field(
        description="matching customers an email may reach: consent, an address, not suppressed"
    )
    sms: int = Field(description="... with SMS consent and a mobile number")
    mail: int = Field(description="... with mail consent and a postal address")


class SegmentPreviewOut(Model):
    count: int = Field(description="live customers (members and identified non-members) the rule matches")
    members: int
    non_members: int
    reachable: ReachableOut
    sample: list[str] = Field(description="up to 20 of the matching customers' ids")
    as_of: datetime | None = Field(
        description="the newest change to the platform's records the counts include (UTC); "
        "null on an empty lake"
    )

    @classmethod
    def of(cls, preview: Preview) -> SegmentPreviewOut:
        return cls(
            count=preview.count,
            members=preview.members,
            non_members=preview.non_members,
            reachable=ReachableOut(**preview.reachable),
            sample=preview.sample,
            as_of=preview.as_of,
        )
