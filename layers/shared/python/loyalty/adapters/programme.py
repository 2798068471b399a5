"""The programme configuration: one item, PROGRAMME / CONFIG."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from loyalty.adapters.codec import to_iso
from loyalty.adapters.dynamo import DynamoTable

if TYPE_CHECKING:
    from loyalty.domain.programme import Programme

PROGRAMME_KEY = ("PROGRAMME", "CONFIG")


class ProgrammeRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def get(self) -> Programme | None:
        from loyalty.domain.programme import Programme  # pydantic models cost cold-start time

        item = self._table.get(*PROGRAMME_KEY, consistent=False)
        return Programme.model_validate_json(item["config"]) if item else None

    def put(self, programme: Programme, now: datetime, template_ids: Sequence[str] = ()) -> None:
        """Store the programme. The templates it names must exist as it is written (TransactionCancelled
        labelled `template:<id>` otherwise), and their ids are kept beside the document as a set,
        so a template delete can refuse, in the same transaction, to remove one still in use."""
        item = {
            "pk": PROGRAMME_KEY[0],
            "sk": PROGRAMME_KEY[1],
            "config": programme.model_dump_json(),
            "template_ids": set(template_ids) or None,
            "updated_at": to_iso(now),
        }
        checks = [
            self._table.condition_check_op(
                f"TEMPLATE#{template_id}",  # adapters/templates.py's key
                "TEMPLATE",
                "attribute_exists(#pk)",
                label=f"template:{template_id}",
            )
            for template_id in sorted(set(template_ids))
        ]
        self._table.transact([self._table.put_op(item), *checks])
