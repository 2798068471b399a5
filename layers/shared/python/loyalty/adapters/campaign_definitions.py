"""Saved campaigns as marketers define them.

CAMPAIGN#<campaign_id>   DEF       the definition (JSON `document`, `version`)   (gsi1: CAMPAIGNS / <id>)
OFFERS                   VERSION   bumped when a saved campaign names a segment (see `save`)

The campaign's other items share its partition (SPENT, RUN#...: campact and camprun). The list is
one Query on gsi1, in campaign_id order, as segments, templates and offers are listed.
"""

from __future__ import annotations

from collections.abc import Sequence

from loyalty.adapters.codec import to_iso
from loyalty.adapters.dynamo import DynamoTable, Item, TransactionCancelled, TxOp
from loyalty.adapters.segment_definitions import OFFERS_CATALOGUE_KEY, SEGMENT_SK, segment_pk
from loyalty.domain.campaigns import Campaign

DEFINITION_SK = "DEF"
LIST_PK = "CAMPAIGNS"


def campaign_pk(campaign_id: str) -> str:
    return f"CAMPAIGN#{campaign_id}"


class CampaignExists(Exception):
    """A create lost the race to another create of the same id."""


class StaleCampaign(Exception):
    """The definition changed (or went) since it was read."""


class SegmentGone(Exception):
    """The segment the campaign names was deleted while it was being saved."""


class CampaignRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def get(self, campaign_id: str) -> Campaign | None:
        item = self._table.get(campaign_pk(campaign_id), DEFINITION_SK)
        return _from_item(item) if item else None

    def list_page(self, limit: int, cursor: str | None) -> tuple[list[Campaign], str | None]:
        items, next_cursor = self._table.query(LIST_PK, index="gsi1", limit=limit, cursor=cursor)
        return [_from_item(i) for i in items if i.get("sk") == DEFINITION_SK], next_cursor

    def all(self) -> list[Campaign]:
        found: list[Campaign] = []
        cursor = None
        while True:
            page, cursor = self.list_page(200, cursor)
            found.extend(page)
            if cursor is None:
                return found

    def save(self, campaign: Campaign, expected_version: int | None, extra: Sequence[TxOp] = ()) -> None:
        """Create (expected_version None) or replace the version read. A campaign naming a segment
        checks in the same transaction that the segment still exists and bumps the offers'
        catalogue version, which a segment's delete checks (adapters/segment_definitions.py): a
        delete and a save naming the segment cannot both pass their checks."""
        if expected_version is None:
            op = self._table.put_op(_to_item(campaign), "attribute_not_exists(pk)", label="campaign")
        else:
            op = self._table.put_op(
                _to_item(campaign),
                "#version = :expected",
                names={"#version": "version"},
                values={":expected": expected_version},
                label="campaign",
            )
        ops = [op, *self._segment_guard(campaign), *extra]
        try:
            self._table.transact(ops)
        except TransactionCancelled as cancelled:
            if cancelled.failed("segment"):
                raise SegmentGone(campaign.audience.segment_id) from None
            if cancelled.failed("campaign"):
                raise (CampaignExists if expected_version is None else StaleCampaign)(
                    campaign.campaign_id
                ) from None
            raise

    def delete(self, campaign_id: str, expected_version: int) -> None:
        try:
            self._table.transact(
                [
                    self._table.delete_op(
                        campaign_pk(campaign_id),
                        DEFINITION_SK,
                        "#version = :expected",
                        names={"#version": "version"},
                        values={":expected": expected_version},
                        label="campaign",
                    )
                ]
            )
        except TransactionCancelled:
            raise StaleCampaign(campaign_id) from None

    def _segment_guard(self, campaign: Campaign) -> list[TxOp]:
        segment_id = campaign.audience.segment_id
        if segment_id is None:
            return []
        return [
            self._table.condition_check_op(
                segment_pk(segment_id), SEGMENT_SK, "attribute_exists(pk)", label="segment"
            ),
            self._table.update_op(
                *OFFERS_CATALOGUE_KEY,
                "SET #version = if_not_exists(#version, :zero) + :one, #updated_at = :now",
                names={"#version": "version", "#updated_at": "updated_at"},
                values={":zero": 0, ":one": 1, ":now": to_iso(campaign.updated_at)},
                label="offers",
            ),
        ]


def _to_item(c: Campaign) -> Item:
    return {
        "pk": campaign_pk(c.campaign_id),
        "sk": DEFINITION_SK,
        "gsi1pk": LIST_PK,
        "gsi1sk": c.campaign_id,
        "type": "campaign",
        "campaign_id": c.campaign_id,
        "status": c.status,
        "trigger_type": c.trigger.type,
        "document": c.model_dump_json(),
        "version": c.version,
        "updated_at": to_iso(c.updated_at),
    }


def _from_item(item: Item) -> Campaign:
    return Campaign.model_validate_json(str(item["document"]))
