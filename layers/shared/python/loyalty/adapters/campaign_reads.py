"""What the campaign report and the backtest read from the table: a saved campaign and a saved
segment's rule.

`StoredCampaigns` is the report's catalogue until the campaign service (loyalty.services.campaigns,
`CampaignCatalogue`) is wired in its place by the composition root: it reads the definition item
`CAMPAIGN#<id>` / `DEF`, its fields as the `Campaign` model names them (at the top level, or under
`definition` as a map or JSON text).
"""

from __future__ import annotations

import json
from typing import Any

from loyalty.adapters.codec import plain
from loyalty.adapters.dynamo import DynamoTable
from loyalty.adapters.segment_definitions import SegmentDefinitionRepository
from loyalty.domain.campaigns import Campaign
from loyalty.domain.errors import CampaignNotFound


class StoredCampaigns:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def get(self, campaign_id: str) -> Campaign:
        item = self._table.get(f"CAMPAIGN#{campaign_id}", "DEF")
        if item is None or item.get("deleted"):
            raise CampaignNotFound(f"no campaign {campaign_id[:64]!r}", campaign_id=campaign_id[:64])
        raw: Any = item.get("definition", item)
        if isinstance(raw, str):
            raw = json.loads(raw)
        fields = {k: v for k, v in plain(dict(raw)).items() if k in Campaign.model_fields}
        fields.setdefault("campaign_id", campaign_id)
        return Campaign.model_validate(fields)

    def triggered(self) -> list[Campaign]:  # the report never asks
        return []


class SavedSegmentRules:
    def __init__(self, repo: SegmentDefinitionRepository) -> None:
        self._repo = repo

    def rule(self, segment_id: str) -> Any | None:
        found = self._repo.get(segment_id)
        return found[0].rule if found else None
