"""The programme configuration: one item, PROGRAMME / CONFIG."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from loyalty.adapters.codec import to_iso
from loyalty.adapters.dynamo import DynamoTable

if TYPE_CHECKING:
    from loyalty.domain.programme import Programme


class ProgrammeRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def get(self) -> Programme | None:
        from loyalty.domain.programme import Programme  # pydantic models cost cold-start time

        item = self._table.get("PROGRAMME", "CONFIG", consistent=False)
        return Programme.model_validate_json(item["config"]) if item else None

    def put(self, programme: Programme, now: datetime) -> None:
        self._table.put(
            {
                "pk": "PROGRAMME",
                "sk": "CONFIG",
                "config": programme.model_dump_json(),
                "updated_at": to_iso(now),
            }
        )
