"""Customer events in the table. Key layout:

EVENT#<store_id>#<event_id>   EVENT     one event; its key is the dedupe key (for ever, no TTL).
                                        On the timeline (gsi3) of CUST#<customer_id> or, for an
                                        anonymous visitor, ANON#<anonymous_id>.
LINK#anonymous_id#<id>        LINK      an identified visitor (codec.link_item); in gsi2 under
                                        IDENTIFIED#<shard> until its attribution's second pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from loyalty.adapters.codec import (
    IDENTIFICATION_SHARDS,
    from_iso,
    link_pk,
    plain,
    storable,
    to_iso,
)
from loyalty.adapters.dynamo import DynamoTable, Item, TransactionCancelled, TxOp
from loyalty.adapters.timeline import anonymous_owner, customer_owner, timeline_fields
from loyalty.domain import events as ev
from loyalty.domain.customer_events import CustomerEvent
from loyalty.domain.links import ANONYMOUS_ID, Link

EVENT_SK = "EVENT"
TIMELINE_INDEX = "gsi3"


def event_pk(store_id: str, event_id: str) -> str:
    return f"EVENT#{store_id}#{event_id}"


def anonymous_link(anonymous_id: str) -> Link:
    return Link(ANONYMOUS_ID, anonymous_id)


@dataclass(frozen=True)
class Identified:
    """An anonymous_id link whose attribution's second pass is due."""

    anonymous_id: str
    customer_id: str


@dataclass
class Refused(Exception):
    """Some ops of a batch write failed their condition: which events exist already (their index
    in the ops), and which anonymous ids turned out to be linked meanwhile (id -> customer)."""

    duplicates: set[int]
    linked: dict[str, str]
    other: bool  # something else (a new customer's link taken meanwhile): resolve again


class CustomerEventRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    # ---- reads ----------------------------------------------------------------------------
    def existing(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (store_id, event_id) are stored already. Eventually consistent: a hint that saves
        writing known duplicates; the conditional put still decides."""
        items = self._table.batch_get([(event_pk(s, e), EVENT_SK) for s, e in keys], consistent=False)
        return {(str(i["store_id"]), str(i["event_id"])) for i in items}

    def get_many(self, keys: Sequence[tuple[str, str]]) -> list[CustomerEvent]:
        items = self._table.batch_get([(event_pk(s, e), EVENT_SK) for s, e in keys])
        return [event_from_item(i) for i in items if "occurred_at" in i]

    def anonymous_event_keys(self, anonymous_id: str, limit: int = 100) -> list[tuple[str, str]]:
        """The (store_id, event_id) of an anonymous visitor's events still on its own timeline,
        oldest first. The index is eventually consistent: callers re-read what they move."""
        items, _ = self._table.query(
            anonymous_owner(anonymous_id),
            index=TIMELINE_INDEX,
            limit=limit,
        )
        keys = []
        for item in items:
            ref = (item.get("tl") or {}).get("ref") or {}
            if ref.get("store_id") and ref.get("event_id"):
                keys.append((str(ref["store_id"]), str(ref["event_id"])))
        return keys

    def link_owners(self, anonymous_ids: Sequence[str]) -> dict[str, str]:
        items = self._table.batch_get([(link_pk(anonymous_link(a)), "LINK") for a in anonymous_ids])
        return {str(i["link_value"]): str(i["customer_id"]) for i in items if i.get("customer_id")}

    def identified_due(
        self, shard: int, until: datetime, cursor: str | None
    ) -> tuple[list[Identified], str | None]:
        items, next_cursor = self._table.query(
            f"IDENTIFIED#{shard}",
            index="gsi2",
            sk_max=(to_iso(until) or "") + "#\uffff",
            limit=100,
            cursor=cursor,
        )
        return [Identified(str(i["link_value"]), str(i["customer_id"])) for i in items], next_cursor

    shards = IDENTIFICATION_SHARDS

    # ---- writes ---------------------------------------------------------------------------
    def put_op(self, event: CustomerEvent, label: str) -> TxOp:
        return self._table.put_op(event_to_item(event), "attribute_not_exists(pk)", label=label)

    def unlinked_op(self, anonymous_id: str, label: str) -> TxOp:
        """An anonymous visitor's event may land on its ANON# timeline only while the visitor is
        unidentified: checked in the same transaction, so none lands there after the link."""
        return self._table.condition_check_op(
            link_pk(anonymous_link(anonymous_id)), "LINK", "attribute_not_exists(pk)", label=label
        )

    def write(self, ops: Sequence[TxOp]) -> None:
        """Commit a batch's ops at once; Refused says which conditions failed."""
        try:
            self._table.transact(ops)
        except TransactionCancelled as cancelled:
            duplicates: set[int] = set()
            linked: dict[str, str] = {}
            other = False
            for index, (reason, op) in enumerate(zip(cancelled.reasons, ops, strict=True)):
                if reason.code != "ConditionalCheckFailed":
                    continue
                if op.label.startswith("event:"):
                    duplicates.add(index)
                elif op.label.startswith("anon:") and reason.old_item and reason.old_item.get("customer_id"):
                    linked[op.label.removeprefix("anon:")] = str(reason.old_item["customer_id"])
                else:
                    other = True
            raise Refused(duplicates, linked, other) from None

    def commit(self, ops: Sequence[TxOp]) -> None:
        self._table.transact(ops)

    def attribute_op(self, event: CustomerEvent, customer_id: str, member: bool, label: str) -> TxOp:
        """Move an anonymous visitor's event onto its customer's timeline, with the event the
        activity worker counts; only while it still is the visitor's (a second mover finds it gone)."""
        moved = replace(event, customer_id=customer_id, member=member)
        return self._table.update_op(
            event_pk(event.store_id, event.event_id),
            EVENT_SK,
            "SET #tlpk = :owner, #customer_id = :customer, #member = :member, "
            "#outbox = list_append(if_not_exists(#outbox, :empty), :attributed)",
            condition="#tlpk = :anon AND attribute_not_exists(#customer_id)",
            values={
                ":owner": customer_owner(customer_id),
                ":customer": customer_id,
                ":member": member,
                ":empty": [],
                ":attributed": ev.outbox([moved.attributed()]),
                ":anon": anonymous_owner(event.anonymous_id or ""),
            },
            label=label,
        )

    def attribute(self, ops: Sequence[TxOp]) -> set[int]:
        """Run moves; the indexes of those that were no longer the visitor's (moved already)."""
        try:
            self._table.transact(ops)
        except TransactionCancelled as cancelled:
            return {i for i, r in enumerate(cancelled.reasons) if r.code == "ConditionalCheckFailed"}
        return set()

    def clear_due(self, identified: Identified) -> None:
        """The second pass is done: the link leaves the due index (if it still is this customer's)."""
        try:
            self._table.transact(
                [
                    self._table.update_op(
                        link_pk(anonymous_link(identified.anonymous_id)),
                        "LINK",
                        "REMOVE #gsi2pk, #gsi2sk",
                        condition="#customer_id = :customer",
                        values={":customer": identified.customer_id},
                        label="link",
                    )
                ]
            )
        except TransactionCancelled:
            return  # detached or moved meanwhile: a link put again is due again by itself


def event_to_item(event: CustomerEvent) -> Item:
    item: Item = {
        "pk": event_pk(event.store_id, event.event_id),
        "sk": EVENT_SK,
        "event_id": event.event_id,
        "store_id": event.store_id,
        "channel": event.channel,
        "type": event.type,
        "customer_id": event.customer_id,
        "anonymous_id": event.anonymous_id,
        "member": event.member,
        "occurred_at": to_iso(event.occurred_at),
        "received_at": to_iso(event.received_at),
        "properties": storable(event.properties),
        "outbox": ev.outbox([event.recorded()]),
    }
    owner = (
        customer_owner(event.customer_id)
        if event.customer_id
        else anonymous_owner(event.anonymous_id)
        if event.anonymous_id
        else None
    )
    if owner is not None:  # an event of nobody at all (a store visit counter) is on no timeline
        item |= timeline_fields(
            owner,
            event.occurred_at,
            "event",
            event.type,
            event.summary,
            {"store_id": event.store_id, "event_id": event.event_id},
            storable(event.properties),
        )
    return item


def event_from_item(item: dict[str, Any]) -> CustomerEvent:
    return CustomerEvent(
        event_id=str(item["event_id"]),
        store_id=str(item["store_id"]),
        channel=str(item.get("channel") or ""),
        type=str(item["type"]),
        occurred_at=from_iso(item["occurred_at"]) or datetime.min,
        received_at=from_iso(item["received_at"]) or datetime.min,
        properties=plain(item.get("properties") or {}),
        customer_id=str(item["customer_id"]) if item.get("customer_id") else None,
        anonymous_id=str(item["anonymous_id"]) if item.get("anonymous_id") else None,
        member=bool(item.get("member")),
    )
