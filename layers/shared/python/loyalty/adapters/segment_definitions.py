"""Saved segments as the admin API keeps them, with their sizes and members (the membership
worker's side, the same keys, is loyalty.adapters.segments).

SEGMENT#<segment_id>            SEGMENT          the definition      (gsi1: SEGMENTS / <segment_id>)
SEGMENT#<segment_id>            SIZE#<shard>     members in a shard  (`n`: ADD ±1 by the worker)
SEGMEMBERS#<segment_id>#<shard> CUST#<id>        one member          (`entered_at`)
SEGMENTS                        VERSION          bumped on every PUT and DELETE (the worker's cache check)

The definition and its size counters share a partition, so one Query answers a segment with its
size. Members are spread over 16 partitions by customer (no hot partition when a big segment fills
up); a page merges them in customer_id order. The rule is stored as the JSON text it was given.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loyalty.adapters.codec import PROFILE_SK, customer_pk, from_iso, to_iso
from loyalty.adapters.dynamo import DynamoTable, Item, TransactionCancelled, TxOp
from loyalty.domain.segment_definitions import Evaluation, SegmentDefinition

SEGMENT_SK = "SEGMENT"
SIZE_PREFIX = "SIZE#"
SHARDS = 16
CATALOGUE_KEY = ("SEGMENTS", "VERSION")
OFFERS_CATALOGUE_KEY = ("OFFERS", "VERSION")  # offers, price groups, challenges and badges


def segment_pk(segment_id: str) -> str:
    return f"SEGMENT#{segment_id}"


def members_pk(segment_id: str, shard: int) -> str:
    return f"SEGMEMBERS#{segment_id}#{shard}"


@dataclass(frozen=True)
class Member:
    customer_id: str
    entered_at: datetime | None


class SegmentExists(Exception):
    """A create lost the race to another create of the same id."""


class StaleSegment(Exception):
    """The definition changed (or went) since it was read."""


class CatalogueMoved(Exception):
    """An offer, challenge or badge was saved while a delete checked who uses the segment."""


class SegmentDefinitionRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    # ---- definitions ------------------------------------------------------------------------
    def get(self, segment_id: str) -> tuple[SegmentDefinition, int] | None:
        """The definition and its size: one Query over the segment's partition."""
        items, _ = self._table.query(segment_pk(segment_id), limit=SHARDS + 8, consistent=True)
        definition = next((i for i in items if i["sk"] == SEGMENT_SK), None)
        if definition is None:
            return None
        return definition_from_item(definition), _size(items)

    def definition(self, segment_id: str) -> SegmentDefinition | None:
        item = self._table.get(segment_pk(segment_id), SEGMENT_SK)
        return definition_from_item(item) if item else None

    def sizes(self, segment_ids: Sequence[str]) -> dict[str, int]:
        keys = [(segment_pk(s), f"{SIZE_PREFIX}{n}") for s in segment_ids for n in range(SHARDS)]
        found = self._table.batch_get(keys, consistent=False) if keys else []
        sizes = dict.fromkeys(segment_ids, 0)
        for item in found:
            segment_id = str(item["pk"]).removeprefix("SEGMENT#")
            sizes[segment_id] = sizes.get(segment_id, 0) + int(item.get("n") or 0)
        return sizes

    def list_page(self, limit: int, cursor: str | None) -> tuple[list[SegmentDefinition], str | None]:
        items, next_cursor = self._table.query("SEGMENTS", index="gsi1", limit=limit, cursor=cursor)
        return [definition_from_item(i) for i in items if i.get("sk") == SEGMENT_SK], next_cursor

    def all(self) -> list[SegmentDefinition]:
        found: list[SegmentDefinition] = []
        cursor = None
        while True:
            page, cursor = self.list_page(200, cursor)
            found.extend(page)
            if cursor is None:
                return found

    def create(self, definition: SegmentDefinition, extra: Sequence[TxOp] = ()) -> None:
        op = self._table.put_op(_to_item(definition), "attribute_not_exists(pk)", label="segment")
        try:
            self._table.transact([op, self._bump(definition.updated_at), *extra])
        except TransactionCancelled as cancelled:
            if cancelled.failed("segment"):
                raise SegmentExists(definition.segment_id) from None
            raise

    def replace(
        self, definition: SegmentDefinition, expected_version: int, extra: Sequence[TxOp] = ()
    ) -> None:
        """A new version over the one read. The evaluation is written only when the rule changed
        (a new pass): otherwise a running pass's progress, written meanwhile, must stay."""
        sets = ["#name = :name", "#description = :description", "#version = :version", "#updated_at = :now"]
        values: dict[str, Any] = {
            ":name": definition.name,
            ":description": definition.description,
            ":version": definition.version,
            ":now": to_iso(definition.updated_at),
            ":expected": expected_version,
        }
        names = {
            "#name": "name",
            "#description": "description",
            "#version": "version",
            "#updated_at": "updated_at",
        }
        if definition.evaluation.rule_version == definition.version:
            sets += ["#rule = :rule", "#evaluation = :evaluation"]
            values |= {
                ":rule": json.dumps(definition.rule),
                ":evaluation": _evaluation_map(definition.evaluation),
            }
            names |= {"#rule": "rule", "#evaluation": "evaluation"}
        op = self._table.update_op(
            segment_pk(definition.segment_id),
            SEGMENT_SK,
            "SET " + ", ".join(sets),
            "#version = :expected",
            names=names,
            values=values,
            label="segment",
        )
        try:
            self._table.transact([op, self._bump(definition.updated_at), *extra])
        except TransactionCancelled as cancelled:
            if cancelled.failed("segment"):
                raise StaleSegment(definition.segment_id) from None
            raise

    def delete(self, segment_id: str, expected_version: int, offers_version: int, now: datetime) -> None:
        """Delete the definition as read, provided no offer, challenge or badge was saved since the
        caller checked them (the offers' catalogue version): a use cannot slip in between."""
        offers_unchanged = (
            "attribute_not_exists(#version) OR #version = :seen"
            if offers_version
            else "attribute_not_exists(#version)"
        )
        try:
            self._table.transact(
                [
                    self._table.delete_op(
                        segment_pk(segment_id),
                        SEGMENT_SK,
                        "#version = :expected",
                        names={"#version": "version"},
                        values={":expected": expected_version},
                        label="segment",
                    ),
                    self._table.condition_check_op(
                        *OFFERS_CATALOGUE_KEY,
                        offers_unchanged,
                        names={"#version": "version"},
                        values={":seen": offers_version} if offers_version else None,
                        label="offers",
                    ),
                    self._bump(now),
                ]
            )
        except TransactionCancelled as cancelled:
            if cancelled.failed("offers"):
                raise CatalogueMoved(segment_id) from None
            raise StaleSegment(segment_id) from None

    def offers_version(self) -> int:
        item = self._table.get(*OFFERS_CATALOGUE_KEY)
        return int(item["version"]) if item else 0

    def catalogue_version(self) -> int:
        """One small read tells a warm worker whether its cached rules are still current."""
        item = self._table.get(*CATALOGUE_KEY, consistent=False)
        return int(item["version"]) if item else 0

    def _bump(self, now: datetime) -> TxOp:
        return self._table.update_op(
            *CATALOGUE_KEY,
            "SET #version = if_not_exists(#version, :zero) + :one, #updated_at = :now",
            names={"#version": "version", "#updated_at": "updated_at"},
            values={":zero": 0, ":one": 1, ":now": to_iso(now)},
            label="catalogue",
        )

    # ---- the background pass ----------------------------------------------------------------
    def record_pass(self, segment_id: str, before: Evaluation, after: Evaluation) -> bool:
        """Write the pass's new state if it is still the one `before` read (same pass, same
        cursor); False when another delivery of the message, or a newer rule, got there first."""
        try:
            self._table.transact(
                [
                    self._table.update_op(
                        segment_pk(segment_id),
                        SEGMENT_SK,
                        "SET #evaluation = :after",
                        "#evaluation.#pass_id = :pass AND #evaluation.#cursor = :cursor"
                        " AND #evaluation.#status = :status",
                        names={
                            "#evaluation": "evaluation",
                            "#pass_id": "pass_id",
                            "#cursor": "cursor",
                            "#status": "status",
                        },
                        values={
                            ":after": _evaluation_map(after),
                            ":pass": before.pass_id,
                            ":cursor": before.cursor,
                            ":status": before.status,
                        },
                        label="segment",
                    )
                ]
            )
        except TransactionCancelled:
            return False
        return True

    # ---- members ----------------------------------------------------------------------------
    def members(self, segment_id: str, after: str | None, limit: int) -> tuple[list[Member], bool]:
        """Up to `limit` members after customer `after`, in customer_id order, and whether more
        follow: each shard gives its first limit + 1, and the merge keeps the smallest."""
        shards: list[list[Member]] = []
        for shard in range(SHARDS):
            if after is None:
                items, _ = self._table.query(
                    members_pk(segment_id, shard), sk_prefix="CUST#", limit=limit + 1
                )
            else:
                items, _ = self._table.query(
                    members_pk(segment_id, shard), sk_min=f"CUST#{after}", sk_max="CUST$", limit=limit + 2
                )
            shards.append(
                [
                    Member(str(i["sk"]).removeprefix("CUST#"), from_iso(i.get("entered_at")))
                    for i in items
                    if i["sk"] != f"CUST#{after}"
                ][: limit + 1]
            )
        merged = list(heapq.merge(*shards, key=lambda m: m.customer_id))
        return merged[:limit], len(merged) > limit

    def member_flags(self, customer_ids: Sequence[str]) -> dict[str, bool]:
        """Whether each customer is a member of the programme now (their profile's flag)."""
        items = self._table.batch_get([(customer_pk(c), PROFILE_SK) for c in customer_ids], consistent=False)
        return {str(i["customer_id"]): bool(i.get("member")) for i in items}


def _size(items: Sequence[Item]) -> int:
    return sum(int(i.get("n") or 0) for i in items if str(i["sk"]).startswith(SIZE_PREFIX))


def _evaluation_map(e: Evaluation) -> dict[str, Any]:
    return {
        "status": e.status,
        "rule_version": e.rule_version,
        "pass_id": e.pass_id,
        "requested_at": to_iso(e.requested_at),
        "evaluated": e.evaluated,
        "total": e.total,
        "started_at": to_iso(e.started_at),
        "finished_at": to_iso(e.finished_at),
        "cursor": e.cursor,
        "previous": e.previous,
        "snapshot": to_iso(e.snapshot),
        "progressed_at": to_iso(e.progressed_at),
        "resumes": e.resumes,
    }


def _clean(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v is not None}


def _to_item(d: SegmentDefinition) -> Item:
    return {
        "pk": segment_pk(d.segment_id),
        "sk": SEGMENT_SK,
        "gsi1pk": "SEGMENTS",
        "gsi1sk": d.segment_id,
        "type": "segment",
        "segment_id": d.segment_id,
        "name": d.name,
        "description": d.description,
        "rule": json.dumps(d.rule),
        "version": d.version,
        "created_at": to_iso(d.created_at),
        "updated_at": to_iso(d.updated_at),
        "evaluation": _clean(_evaluation_map(d.evaluation)),
    }


def definition_from_item(item: Item) -> SegmentDefinition:
    e = item.get("evaluation") or {}
    created_at = from_iso(item.get("created_at")) or datetime.fromtimestamp(0, UTC)
    return SegmentDefinition(
        segment_id=str(item["segment_id"]),
        name=str(item["name"]),
        description=str(item.get("description") or ""),
        rule=json.loads(str(item["rule"])),
        version=int(item["version"]),
        created_at=created_at,
        updated_at=from_iso(item.get("updated_at")) or created_at,
        evaluation=Evaluation(
            status=e.get("status", "pending"),
            rule_version=int(e.get("rule_version") or item["version"]),
            pass_id=str(e.get("pass_id") or ""),
            requested_at=from_iso(e.get("requested_at")) or created_at,
            evaluated=int(e.get("evaluated") or 0),
            total=int(e["total"]) if e.get("total") is not None else None,
            started_at=from_iso(e.get("started_at")),
            finished_at=from_iso(e.get("finished_at")),
            cursor=str(e.get("cursor") or ""),
            previous=str(e["previous"]) if e.get("previous") is not None else None,
            snapshot=from_iso(e.get("snapshot")),
            progressed_at=from_iso(e.get("progressed_at")),
            resumes=int(e.get("resumes") or 0),
        ),
    )
