"""What the backtest reads from the table besides the campaign (the campaign service's catalogue):
a saved segment's rule."""

from __future__ import annotations

from typing import Any

from loyalty.adapters.segment_definitions import SegmentDefinitionRepository


class SavedSegmentRules:
    def __init__(self, repo: SegmentDefinitionRepository) -> None:
        self._repo = repo

    def rule(self, segment_id: str) -> Any | None:
        found = self._repo.get(segment_id)
        return found[0].rule if found else None
