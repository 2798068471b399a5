"""Segments in the table: the saved definitions (segadmin writes them, this module reads them) and
each customer's memberships (the segments worker writes them). Key layout:

SEGMENT#<id>              SEGMENT        a saved segment: name, description, rule, version,
                                         evaluation; gsi1 SEGMENTS / <id> lists them all
SEGMENT#<id>              SIZE#<shard>   its members in one shard of customers (n, ADD ±1)
SEGMENTS                  VERSION        bumped on every PUT and DELETE: caches of the rules re-read
CUST#<customer_id>        SEGMENTS       one customer's memberships {segment id: {entered_at,
                                         rule_version}}, versioned; while some rule's answer will
                                         change with time alone, gsi2 SEGDUE#<shard> /
                                         <next_change_at>#<customer_id> (the clock sweep's index)
SEGMEMBERS#<id>#<shard>   CUST#<cid>     a member, for paging through a segment's members

The member rows and size counters are written in the same transaction as the customer's item, so
the three always agree; the 16 shards keep every segment's writes off one partition.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from loyalty.adapters.codec import customer_pk, from_iso, plain, to_iso
from loyalty.adapters.dynamo import DynamoTable, Item, TransactionCancelled, TxOp
from loyalty.adapters.timeline import INDEX as TIMELINE_INDEX
from loyalty.adapters.timeline import sort_time
from loyalty.adapters.transactions import transaction_from_item
from loyalty.domain.ledger import TransactionRecord

SHARDS = 16
DEFINITION_SK = "SEGMENT"
LIST_PK = "SEGMENTS"  # gsi1 partition listing every saved segment
CATALOGUE_KEY = ("SEGMENTS", "VERSION")
MEMBERSHIPS_SK = "SEGMENTS"
DUE_PREFIX = "SEGDUE#"
# A Query page of a customer's history: most customers' windows fit in one.
PAGE = 200


def shard_of(customer_id: str) -> int:
    return int(hashlib.sha256(customer_id.encode()).hexdigest(), 16) % SHARDS


def segment_pk(segment_id: str) -> str:
    return f"SEGMENT#{segment_id}"


def members_pk(segment_id: str, customer_id: str) -> str:
    return f"SEGMEMBERS#{segment_id}#{shard_of(customer_id)}"


def memberships_key(customer_id: str) -> tuple[str, str]:
    return customer_pk(customer_id), MEMBERSHIPS_SK


@dataclass(frozen=True)
class StoredSegment:
    """A saved segment as segadmin wrote it; `rule` is the JSON tree as given (not yet parsed)."""

    segment_id: str
    name: str
    rule: Any
    version: int


@dataclass(frozen=True)
class Membership:
    entered_at: datetime
    rule_version: int


@dataclass(frozen=True)
class StoredMemberships:
    """One customer's memberships; `version` 0: never written."""

    customer_id: str
    segments: dict[str, Membership] = field(default_factory=dict)
    version: int = 0
    next_change_at: datetime | None = None
    evaluated_at: datetime | None = None


@dataclass(frozen=True)
class CustomerSnapshot:
    """What one BatchGetItem returns for an evaluation: the profile item, the memberships and the
    catalogue's version counter."""

    profile: Item | None
    memberships: StoredMemberships
    catalogue_version: int


@dataclass(frozen=True)
class StoredEvent:
    occurred_at: datetime
    type: str
    properties: dict[str, Any]
    key: tuple[str, str] | None = None  # (store_id, event_id)


class StaleMemberships(Exception):
    """The customer's memberships changed since they were read (another evaluation wrote first)."""


def memberships_from_item(customer_id: str, item: Item | None) -> StoredMemberships:
    if not item:
        return StoredMemberships(customer_id)
    segments = {
        str(sid): Membership(
            entered_at=from_iso(raw.get("entered_at")) or datetime.min,
            rule_version=int(raw.get("rule_version", 0)),
        )
        for sid, raw in (item.get("segments") or {}).items()
    }
    return StoredMemberships(
        customer_id=customer_id,
        segments=segments,
        version=int(item.get("version", 0)),
        next_change_at=from_iso(item.get("next_change_at")),
        evaluated_at=from_iso(item.get("evaluated_at")),
    )


def rule_of(item: Item) -> Any:
    """The rule as saved: a map, or the JSON text of one (either is read)."""
    raw = item.get("rule")
    if isinstance(raw, str):
        return json.loads(raw)
    return plain(raw)


def definition_from_item(item: Item) -> StoredSegment:
    return StoredSegment(
        segment_id=str(item.get("segment_id") or str(item["pk"]).removeprefix("SEGMENT#")),
        name=str(item.get("name") or ""),
        rule=rule_of(item),
        version=int(item.get("version", 1)),
    )


@dataclass
class MembershipWrite:
    """One atomic step from `before` to the memberships `after`."""

    customer_id: str
    expected_version: int
    segments: dict[str, Membership]
    entered: dict[str, Membership]
    exited: Sequence[str]
    next_change_at: datetime | None
    evaluated_at: datetime
    outbox: list[dict[str, str]]


class SegmentRepository:
    shards = SHARDS

    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    # ---- the saved segments ------------------------------------------------------------------
    def catalogue_version(self) -> int:
        item = self._table.get(*CATALOGUE_KEY)
        return int(item.get("version", 0)) if item else 0

    def definitions(self) -> list[StoredSegment]:
        """Every saved segment (one Query per page of the gsi1 list)."""
        found: list[StoredSegment] = []
        cursor = None
        while True:
            items, cursor = self._table.query(LIST_PK, index="gsi1", limit=100, cursor=cursor)
            found.extend(definition_from_item(i) for i in items if i.get("sk") == DEFINITION_SK)
            if cursor is None:
                return found

    def put_definition(
        self, segment_id: str, name: str, rule: Any, now: datetime, description: str | None = None
    ) -> int:
        """Save a segment as segadmin does (tests, benches and the demo use it): the definition with
        its version moved on and the catalogue's counter bumped, in one transaction."""
        current = self._table.get(segment_pk(segment_id), DEFINITION_SK)
        version = int(current["version"]) + 1 if current else 1
        item = {
            "pk": segment_pk(segment_id),
            "sk": DEFINITION_SK,
            "type": "segment",
            "segment_id": segment_id,
            "name": name,
            "description": description,
            "rule": json.dumps(rule, sort_keys=True),
            "version": version,
            "created_at": current.get("created_at") if current else to_iso(now),
            "updated_at": to_iso(now),
            "gsi1pk": LIST_PK,
            "gsi1sk": segment_id,
        }
        self._table.transact([self._table.put_op(item), self._bump_op(now)])
        return version

    def delete_definition(self, segment_id: str, now: datetime) -> None:
        self._table.transact(
            [self._table.delete_op(segment_pk(segment_id), DEFINITION_SK), self._bump_op(now)]
        )

    def _bump_op(self, now: datetime) -> TxOp:
        return self._table.update_op(
            *CATALOGUE_KEY,
            "ADD #version :one SET #updated_at = :now",
            values={":one": 1, ":now": to_iso(now)},
        )

    def size(self, segment_id: str) -> int:
        """The sum of the shards' counters (one Query on the segment's partition)."""
        items, _ = self._table.query(segment_pk(segment_id), sk_prefix="SIZE#", limit=SHARDS + 1)
        return sum(int(i.get("n", 0)) for i in items)

    def members(self, segment_id: str, shard: int) -> list[str]:
        """Every member in one shard (tests and benches: segadmin pages them for the API)."""
        found: list[str] = []
        cursor = None
        while True:
            items, cursor = self._table.query(
                f"SEGMEMBERS#{segment_id}#{shard}", limit=500, cursor=cursor, consistent=True
            )
            found.extend(str(i["customer_id"]) for i in items)
            if cursor is None:
                return found

    # ---- one customer -------------------------------------------------------------------------
    def snapshot(self, customer_id: str) -> CustomerSnapshot:
        """The profile, the memberships and the catalogue's version: one BatchGetItem."""
        pk = customer_pk(customer_id)
        items = {
            (i["pk"], i["sk"]): i
            for i in self._table.batch_get([(pk, "PROFILE"), (pk, MEMBERSHIPS_SK), CATALOGUE_KEY])
        }
        catalogue = items.get(CATALOGUE_KEY)
        return CustomerSnapshot(
            profile=items.get((pk, "PROFILE")),
            memberships=memberships_from_item(customer_id, items.get((pk, MEMBERSHIPS_SK))),
            catalogue_version=int(catalogue.get("version", 0)) if catalogue else 0,
        )

    def profile_and_memberships(self, customer_id: str) -> tuple[Item | None, StoredMemberships]:
        """The profile item and the memberships: one BatchGetItem."""
        pk = customer_pk(customer_id)
        items = {i["sk"]: i for i in self._table.batch_get([(pk, "PROFILE"), (pk, MEMBERSHIPS_SK)])}
        return items.get("PROFILE"), memberships_from_item(customer_id, items.get(MEMBERSHIPS_SK))

    def memberships(self, customer_id: str) -> StoredMemberships:
        return memberships_from_item(customer_id, self._table.get(*memberships_key(customer_id)))

    def purchases(self, customer_id: str, since: datetime) -> list[TransactionRecord]:
        """The customer's sales and returns that happened at or after `since` (gsi1, newest
        first; a second short of `since`, as ISO instants without fractions sort after those with)."""
        records: list[TransactionRecord] = []
        cursor = None
        while True:
            items, cursor = self._table.query(
                customer_pk(customer_id),
                index="gsi1",
                sk_min="TXN#" + (to_iso(since - timedelta(seconds=1)) or ""),
                sk_max="TXN#\uffff",
                limit=PAGE,
                cursor=cursor,
                newest_first=True,
            )
            records.extend(transaction_from_item(i) for i in items)
            if cursor is None:
                return [r for r in records if r.occurred_at >= since]

    def transaction(self, store_id: str, transaction_id: str) -> TransactionRecord | None:
        from loyalty.adapters.transactions import txn_pk

        item = self._table.get(txn_pk(store_id, transaction_id), "TXN")
        return transaction_from_item(item) if item else None

    def events(self, customer_id: str, since: datetime, types: frozenset[str] | None) -> list[StoredEvent]:
        """The customer's events that happened at or after `since`, from their timeline (gsi3: only
        the small timeline entries are read, and only the events' reach the answer)."""
        values: dict[str, Any] = {":event": "event"}
        expression = "#tl.#kind = :event"
        if types is not None:
            if not types:
                return []
            names = sorted(types)
            values |= {f":t{n}": t for n, t in enumerate(names)}
            expression += " AND #tl.#type IN (" + ", ".join(f":t{n}" for n in range(len(names))) + ")"
        found: list[StoredEvent] = []
        cursor = None
        while True:
            items, cursor = self._table.query(
                customer_pk(customer_id),
                index=TIMELINE_INDEX,
                sk_min=sort_time(since),
                sk_max="\uffff",
                limit=PAGE,
                cursor=cursor,
                filter_expression=expression,
                filter_values=values,
            )
            for item in items:
                tl = item.get("tl") or {}
                at = from_iso(tl.get("at"))
                ref = tl.get("ref") or {}
                key = (str(ref["store_id"]), str(ref["event_id"])) if "event_id" in ref else None
                if at is not None and at >= since:
                    found.append(StoredEvent(at, str(tl.get("type")), plain(tl.get("data") or {}), key))
            if cursor is None:
                return found

    # ---- writing a change -----------------------------------------------------------------------
    def write(self, change: MembershipWrite) -> None:
        """The customer's item (if its version is still the one read), the member rows and the
        size counters, in one transaction; StaleMemberships when another evaluation wrote first."""
        cid = change.customer_id
        pk, sk = memberships_key(cid)
        shard = shard_of(cid)
        item: Item = {
            "pk": pk,
            "sk": sk,
            "type": "segment_memberships",
            "customer_id": cid,
            "segments": {
                sid: {"entered_at": to_iso(m.entered_at), "rule_version": m.rule_version}
                for sid, m in sorted(change.segments.items())
            },
            "version": change.expected_version + 1,
            "evaluated_at": to_iso(change.evaluated_at),
            "next_change_at": to_iso(change.next_change_at),
            "outbox": change.outbox or None,
        }
        if change.next_change_at is not None:
            item["gsi2pk"] = f"{DUE_PREFIX}{shard}"
            # Fixed width (microseconds always): the domain's instants are exact, and "…:00Z" would
            # sort after "…:00.000001Z".
            item["gsi2sk"] = f"{sort_time(change.next_change_at)}#{cid}"
        if change.expected_version:
            condition = "#version = :expected"
            values: Mapping[str, Any] | None = {":expected": change.expected_version}
        else:
            condition, values = "attribute_not_exists(pk)", None
        ops = [self._table.put_op(item, condition, values=values, label="memberships")]
        for sid, membership in sorted(change.entered.items()):
            ops.append(
                self._table.put_op(
                    {
                        "pk": members_pk(sid, cid),
                        "sk": customer_pk(cid),
                        "type": "segment_member",
                        "segment_id": sid,
                        "customer_id": cid,
                        "entered_at": to_iso(membership.entered_at),
                    }
                )
            )
            ops.append(self._size_op(sid, shard, +1))
        for sid in sorted(change.exited):
            ops.append(self._table.delete_op(members_pk(sid, cid), customer_pk(cid)))
            ops.append(self._size_op(sid, shard, -1))
        try:
            self._table.transact(ops)
        except TransactionCancelled as cancelled:
            if "memberships" in cancelled.failed_labels():
                raise StaleMemberships(cid) from None
            raise

    def _size_op(self, segment_id: str, shard: int, delta: int) -> TxOp:
        return self._table.update_op(
            segment_pk(segment_id),
            f"SIZE#{shard}",
            "ADD #n :delta SET #type = :type, #segment_id = :segment",
            values={":delta": delta, ":type": "segment_size", ":segment": segment_id},
        )

    # ---- the clock's index ----------------------------------------------------------------------
    def due(self, shard: int, until: datetime, cursor: str | None) -> tuple[list[str], str | None]:
        """Customers of one shard whose next change is at or before `until`, earliest first."""
        items, next_cursor = self._table.query(
            f"{DUE_PREFIX}{shard}",
            index="gsi2",
            sk_max=sort_time(until) + "#\uffff",
            limit=100,
            cursor=cursor,
        )
        return [str(i["customer_id"]) for i in items], next_cursor


def member_keys(customer_id: str, segment_ids: Sequence[str]) -> list[tuple[str, str]]:
    return [(members_pk(sid, customer_id), customer_pk(customer_id)) for sid in segment_ids]


def segments_in(items: Sequence[Item]) -> frozenset[str]:
    """The segments of the memberships item among items read together (none: no segment)."""
    for item in items:
        if item.get("sk") == MEMBERSHIPS_SK and str(item.get("pk", "")).startswith("CUST#"):
            return frozenset(str(s) for s in (item.get("segments") or {}))
    return frozenset()
