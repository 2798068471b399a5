"""The template repository: TEMPLATE#<template_id> / TEMPLATE, listed through gsi1 (TEMPLATES / <id>).

A template the programme names cannot be deleted: the delete and the programme's set of template
ids (adapters/programme.py) meet in one transaction, so neither can slip past the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from loyalty.adapters.codec import from_iso, to_iso
from loyalty.adapters.dynamo import DynamoTable, Item, TransactionCancelled
from loyalty.adapters.programme import PROGRAMME_KEY
from loyalty.domain.ids import is_plausible_id
from loyalty.domain.templates import Channel, Purpose, Template

TEMPLATE_SK = "TEMPLATE"


def template_pk(template_id: str) -> str:
    return f"TEMPLATE#{template_id}"


class TemplateInUseByProgramme(Exception):
    """The programme names the template (welcome, earn confirmation or confirmation)."""


class TemplateRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def get(self, template_id: str) -> Template | None:
        if not is_plausible_id(template_id):
            return None
        item = self._table.get(template_pk(template_id), TEMPLATE_SK)
        return _from_item(item) if item else None

    def get_many(self, template_ids: Iterable[str]) -> dict[str, Template]:
        keys = [(template_pk(t), TEMPLATE_SK) for t in sorted(set(template_ids)) if is_plausible_id(t)]
        found = [_from_item(item) for item in self._table.batch_get(keys)] if keys else []
        return {t.template_id: t for t in found}

    def put(self, template: Template, now: datetime) -> tuple[Template, bool]:
        """Create or replace; the stored template (created_at kept) and whether it was created."""
        old = self._table.get(template_pk(template.template_id), TEMPLATE_SK)
        created_at = from_iso(old["created_at"]) if old else now
        stored = Template(
            template_id=template.template_id,
            channel=template.channel,
            purpose=template.purpose,
            subject=template.subject,
            body=template.body,
            html=template.html,
            placeholders=template.placeholders,
            created_at=created_at,
            updated_at=now,
        )
        self._table.put(_to_item(stored))
        return stored, old is None

    def list(self, limit: int, cursor: str | None) -> tuple[list[Template], str | None]:
        items, next_cursor = self._table.query("TEMPLATES", index="gsi1", limit=limit, cursor=cursor)
        return [_from_item(i) for i in items], next_cursor

    def delete(self, template_id: str) -> bool:
        """Delete it unless the programme names it (TemplateInUseByProgramme); False if there was none."""
        if self.get(template_id) is None:
            return False
        try:
            self._table.transact(
                [
                    self._table.delete_op(
                        template_pk(template_id), TEMPLATE_SK, "attribute_exists(#pk)", label="template"
                    ),
                    self._table.condition_check_op(
                        *PROGRAMME_KEY,
                        "attribute_not_exists(#pk) OR NOT contains(#template_ids, :id)",
                        values={":id": template_id},
                        label="programme",
                    ),
                ]
            )
        except TransactionCancelled as cancelled:
            if cancelled.failed("programme"):
                raise TemplateInUseByProgramme(template_id) from None
            return False  # deleted meanwhile
        return True


def _to_item(t: Template) -> Item:
    return {
        "pk": template_pk(t.template_id),
        "sk": TEMPLATE_SK,
        "gsi1pk": "TEMPLATES",
        "gsi1sk": t.template_id,
        "type": "template",
        "template_id": t.template_id,
        "channel": t.channel.value,
        "purpose": t.purpose.value,
        "subject": t.subject,
        "body": t.body,
        "html": t.html,
        "placeholders": set(t.placeholders) or None,
        "created_at": to_iso(t.created_at),
        "updated_at": to_iso(t.updated_at),
    }


def _from_item(item: Item) -> Template:
    return Template(
        template_id=str(item["template_id"]),
        channel=Channel(item["channel"]),
        purpose=Purpose(item.get("purpose", Purpose.MESSAGE.value)),
        subject=item.get("subject"),
        body=str(item["body"]),
        html=item.get("html"),
        placeholders=frozenset(str(p) for p in (item.get("placeholders") or ())),
        created_at=from_iso(item.get("created_at")),
        updated_at=from_iso(item.get("updated_at")),
    )


template_from_item = _from_item  # the mailer reads a template in its one batch read per message
