"""The timeline index: how any record joins a person's timeline (sparse gsi3).

An item that belongs on a timeline carries three attributes besides its own:

    tlpk  CUST#<customer_id> | ANON#<anonymous_id>        whose timeline
    tlsk  <occurred_at, UTC to the µs>#<kind>#<record id>  newest first by when it happened
    tl    {at, kind, type, summary, ref, data}             the timeline item exactly as the API shows it

gsi3 projects only `tl` (INCLUDE), so the first page of a timeline is one Query and the index holds
no more than it shows. The attributes are written in the same write that creates the record, so a
record is on the timeline exactly when it exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from loyalty.adapters.codec import customer_pk, from_iso, plain, storable, to_iso
from loyalty.adapters.dynamo import DynamoTable, Item, TransactionCancelled, encode_cursor, serialize
from loyalty.domain.timeline import (
    BADGE,
    CAMPAIGN,
    CHALLENGE,
    COUPON,
    EVENT,
    KINDS,
    MERGE,
    MESSAGE,
    POINTS,
    REDEMPTION,
    TIER,
    TRANSACTION,
)

__all__ = [
    "BADGE",
    "CAMPAIGN",
    "CHALLENGE",
    "COUPON",
    "EVENT",
    "INDEX",
    "KINDS",
    "MERGE",
    "MESSAGE",
    "POINTS",
    "REDEMPTION",
    "TIER",
    "TIMELINE_ATTRIBUTES",
    "TRANSACTION",
    "TimelineRepository",
    "anonymous_owner",
    "customer_owner",
    "timeline_fields",
    "timeline_item",
]

INDEX = "gsi3"
TIMELINE_ATTRIBUTES = ("tlpk", "tlsk", "tl")


def customer_owner(customer_id: str) -> str:
    return customer_pk(customer_id)


def anonymous_owner(anonymous_id: str) -> str:
    return f"ANON#{anonymous_id}"


def sort_time(instant: datetime) -> str:
    """Fixed width, so the index orders by time: to_iso leaves out zero microseconds, and
    "…:05Z" would sort after "…:05.250000Z"."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def timeline_fields(
    owner_pk: str,
    at: datetime | str,
    kind: str,
    type_: str,
    summary: str,
    ref: Mapping[str, Any],
    data: Mapping[str, Any],
    *,
    record_id: str | None = None,
) -> dict[str, Any]:
    """The three timeline attributes of one record, to merge into the item being written.

    `record_id` makes the sort key unique among records of one kind at one instant; by default it
    is the ref's values in key order (a transaction's id, an event's store and id, ...), which is
    unique wherever the ref names the record itself.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown timeline kind {kind!r}")
    when = at if isinstance(at, str) else to_iso(at)
    instant = from_iso(when)
    if not when or instant is None:
        raise ValueError("a timeline record needs the time it happened")
    unique = record_id if record_id is not None else "#".join(str(ref[k]) for k in sorted(ref))
    return {
        "tlpk": owner_pk,
        "tlsk": f"{sort_time(instant)}#{kind}#{unique}",
        "tl": {
            "at": when,
            "kind": kind,
            "type": type_,
            "summary": summary,
            "ref": storable(dict(ref)),
            "data": storable(dict(data)),
        },
    }


def timeline_item(tl: Mapping[str, Any]) -> dict[str, Any]:
    """The stored `tl` map as the API shows it (DynamoDB's Decimals back to JSON numbers)."""
    return {
        "at": str(tl.get("at", "")),
        "kind": str(tl.get("kind", "")),
        "type": str(tl.get("type", "")),
        "summary": str(tl.get("summary", "")),
        "ref": plain(dict(tl.get("ref") or {})),
        "data": plain(dict(tl.get("data") or {})),
    }


def _position(item: Item) -> str:
    """A cursor just after `item` in the index (its table and index keys)."""
    return encode_cursor(serialize({k: item[k] for k in ("pk", "sk", "tlpk", "tlsk")}))


class TimelineRepository:
    """Reads a person's timeline from gsi3 and takes it apart on erasure."""

    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def page(
        self, owner_pk: str, kinds: frozenset[str], limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first. Without a kind filter: one Query of `limit` items. With one, DynamoDB
        reads `limit` index items per Query and drops the other kinds after reading (read capacity
        is paid for what it read), so this goes on reading until `limit` items matched or the
        timeline ends; a page that stops mid-Query hands out a cursor just after its last item."""
        filter_expression, filter_values = None, None
        if kinds:
            ordered = sorted(kinds)
            filter_values = {f":k{i}": kind for i, kind in enumerate(ordered)}
            filter_expression = f"#tl.#kind IN ({', '.join(filter_values)})"
        found: list[Item] = []
        while True:
            items, cursor = self._table.query(
                owner_pk,
                index=INDEX,
                limit=limit,
                cursor=cursor,
                newest_first=True,
                filter_expression=filter_expression,
                filter_values=filter_values,
            )
            wanted = limit - len(found)
            if len(items) > wanted:
                found.extend(items[:wanted])
                cursor = _position(found[-1])
            else:
                found.extend(items)
            if cursor is None or len(found) >= limit:
                break
        return [timeline_item(i["tl"]) for i in found if i.get("tl")], cursor

    def keys_of(self, owner_pk: str) -> list[tuple[str, str]]:
        """Every record on the timeline (its table key), as the index shows it now."""
        keys: list[tuple[str, str]] = []
        cursor = None
        while True:
            items, cursor = self._table.query(owner_pk, index=INDEX, limit=200, cursor=cursor)
            keys.extend((str(i["pk"]), str(i["sk"])) for i in items)
            if cursor is None:
                return keys

    def everything(self, owner_pk: str) -> list[dict[str, Any]]:
        """The whole timeline, newest first (for an export)."""
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            items, cursor = self._table.query(
                owner_pk, index=INDEX, limit=200, cursor=cursor, newest_first=True
            )
            out.extend(timeline_item(i["tl"]) for i in items if i.get("tl"))
            if cursor is None:
                return out

    def erase(self, owner_pk: str) -> int:
        """Take every record off this timeline: the index attributes go; an event also loses what it
        said and whose it was, but keeps its key (its event_id stays a duplicate for ever). Each
        record is written only while it is still on this timeline, so an index entry that is
        behind its record (deleted, or moved on) never brings a stub back. Returns how many."""
        erased = 0
        for pk, sk in self.keys_of(owner_pk):
            extra = ", #properties, #customer_id, #anonymous_id" if pk.startswith("EVENT#") else ""
            op = self._table.update_op(
                pk, sk, "REMOVE #tlpk, #tlsk, #tl" + extra, "#tlpk = :owner", values={":owner": owner_pk}
            )
            try:
                self._table.transact([op])
            except TransactionCancelled:
                continue
            erased += 1
        return erased
