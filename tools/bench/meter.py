"""Counting DynamoDB round trips and capacity: botocore hooks on the Container's client, and
DynamoDB's published pricing rules applied to the requests and responses themselves."""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from loyalty.resources import TABLE

READ_OPS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
WRITE_OPS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


# ---- counting DynamoDB round trips and capacity -------------------------------------------------

# The single table's indexes: an item carrying an index's keys is written there too, as a copy of
# the whole item (projection ALL: gsi1, gsi2) or of its keys and a few attributes (gsi3: `tl`).
INDEXES = tuple((index.name, index.partition_key, index.sort_key) for index in TABLE.indexes)
_INDEX_ATTRIBUTES = {
    index.name: None
    if index.projection is None
    else frozenset(
        {TABLE.partition_key, TABLE.sort_key, index.partition_key, index.sort_key, *index.projection}
    )
    for index in TABLE.indexes
}


def index_copy_size(image: dict[str, Any], index: str) -> int:
    """The size of an item's copy in an index (what DynamoDB bills an index write by)."""
    kept = _INDEX_ATTRIBUTES[index]
    return item_size(image if kept is None else {k: v for k, v in image.items() if k in kept})


def touches_index(written: Written, index: str) -> bool:
    """An update rewrites an INCLUDE index's copy only when it sets its keys or projected attributes;
    a Put or a Delete always does (an ALL index is rewritten by any change)."""
    kept = _INDEX_ATTRIBUTES[index]
    if kept is None or written.action != "Update":
        return True
    return bool(kept & written.updated)


_ASSIGNMENT = re.compile(r"(#?[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(:[A-Za-z0-9_]+)")


@dataclass
class Written:
    """One item a write call touched, as the request names it; priced after the call."""

    table: str
    action: str  # Put | Update | Delete | ConditionCheck
    transactional: bool
    key: dict[str, Any]
    image: dict[str, Any] | None = None  # a Put's new image is in the request
    updated: frozenset[str] = frozenset()  # the attributes an Update's expression names


@dataclass
class Priced:
    """One written item priced by DynamoDB's rules."""

    kind: str  # the key's shape, e.g. TXN/TXN, CUST/PROFILE, CUST/LEDGER
    action: str
    size: int  # bytes: the Put's item, an Update's new image read back; a Delete counts 1 KB
    units: float  # 1 WCU per started KB, 2 in a transaction
    indexes: tuple[str, ...]  # the indexes the item is written to: 1 WCU per started KB each
    largest: tuple[tuple[str, int], ...] = ()  # its three largest attributes, (name, bytes)
    index_units: float = 0.0  # WCU of its index copies (each sized by what its index projects)


@dataclass
class CallCost:
    reads: int = 0
    writes: int = 0
    other: int = 0
    attempts: int = 0  # HTTP requests sent: more than calls means botocore retried
    rcu: float = 0.0  # as DynamoDB Local reports it
    wcu: float = 0.0  # as DynamoDB Local reports it
    rcu_estimate: float = 0.0  # the same reads priced by DynamoDB's published rules
    written: list[Written] = field(default_factory=list)
    priced: list[Priced] = field(default_factory=list)  # filled by settle_writes, off the clock
    events: list[str] = field(default_factory=list)  # detail types of the outbox entries written
    pending_events: list[str] = field(default_factory=list)  # those of the call in flight
    ops: list[str] = field(default_factory=list)
    reads_of: list[str] = field(default_factory=list)  # each read named: its key, keys or partition
    dynamo_ms: float = 0.0  # in DynamoDB calls: botocore's validation, (de)serialisation and the wait

    @property
    def calls(self) -> int:
        return self.reads + self.writes + self.other

    @property
    def wcu_estimate(self) -> float:
        return sum(p.units + p.index_units for p in self.priced)


class DynamoMeter:
    """Counts what one DynamoDB client does, through its botocore event system.

    Only calls made between start() and stop() count, so set-up reads (the authorizer verdict a
    scenario needs, the item sizes looked up afterwards) never land in a handler's figures.
    """

    def __init__(self) -> None:
        self.current = CallCost()
        self.active = False
        self._request: dict[str, Any] = {}
        self._sent_at = 0.0

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-parameter-build.dynamodb", self._begin, unique_id="bench-begin")
        events.register("before-call.dynamodb", self._before_call, unique_id="bench-before-call")
        events.register("after-call.dynamodb", self._after_call, unique_id="bench-after-call")
        events.register("before-send.dynamodb", self._before_send, unique_id="bench-before-send")

    def attach_other(self, client: Any) -> None:
        """Calls to other services (the pepper from Secrets Manager) are listed, not counted."""
        client.meta.events.register("before-call", self._before_other, unique_id="bench-before-other")

    def _before_other(self, model: Any, **_: Any) -> None:
        if self.active:
            self.current.ops.append(f"{model.service_model.service_name}:{model.name}")

    def start(self) -> CallCost:
        self.current = CallCost()
        self.active = True
        return self.current

    def stop(self) -> None:
        self.active = False

    def _begin(self, **_: Any) -> None:
        """The start of a DynamoDB call, before botocore validates and serialises the parameters."""
        self._sent_at = time.perf_counter()

    def _before_call(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if not self.active:
            return
        op = str(model.name)
        self.current.ops.append(op)
        body = json.loads(params.get("body") or b"{}")
        self._request = body
        if op in READ_OPS:
            self.current.reads += 1
            self.current.reads_of.append(read_label(op, body))
        elif op in WRITE_OPS:
            self.current.writes += 1
            self.current.pending_events = []
            for action, spec, transactional in _write_actions(op, body):
                self._note_write(action, spec, transactional)
        else:
            self.current.other += 1

    def _note_write(self, action: str, spec: dict[str, Any], transactional: bool) -> None:
        item = spec.get("Item")
        key = spec.get("Key") or {
            name: item[name] for name in (TABLE.partition_key, TABLE.sort_key) if item and name in item
        }
        names = spec.get("ExpressionAttributeNames") or {}
        updated = frozenset(
            names.get(token, token)
            for token in re.findall(r"#?[A-Za-z_][A-Za-z0-9_]*", spec.get("UpdateExpression", ""))
        )
        self.current.written.append(
            Written(str(spec["TableName"]), action, transactional, key, item, updated)
        )
        self.current.pending_events.extend(outbox_entries(action, spec))

    def _before_send(self, **_: Any) -> None:
        if self.active:
            self.current.attempts += 1

    def _after_call(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        if not self.active:
            return
        self.current.dynamo_ms += (time.perf_counter() - self._sent_at) * 1000
        op = str(model.name)
        if op in WRITE_OPS and not parsed.get("Error"):  # a cancelled write publishes nothing
            self.current.events.extend(self.current.pending_events)
        self.current.pending_events = []
        if op in READ_OPS and not parsed.get("Error"):
            self.current.rcu_estimate += read_units(op, self._request, parsed)
        consumed = parsed.get("ConsumedCapacity") or []
        if isinstance(consumed, dict):  # single-item calls; batch and transaction calls give a list
            consumed = [consumed]
        for entry in consumed:
            read, write = entry.get("ReadCapacityUnits"), entry.get("WriteCapacityUnits")
            if read is None and write is None:  # ReturnConsumedCapacity=TOTAL gives only the total
                units = float(entry.get("CapacityUnits") or 0.0)
                read, write = (units, 0.0) if op in READ_OPS else (0.0, units)
            self.current.rcu += float(read or 0.0)
            self.current.wcu += float(write or 0.0)


def read_label(op: str, body: dict[str, Any]) -> str:
    """A read in a few words: a GetItem's key shape, a BatchGetItem's number of keys, a Query's
    partition (and index)."""
    if op == "GetItem":
        return f"GetItem {_kind(body.get('Key', {}))}"
    if op == "BatchGetItem":
        keys = sum(len(spec.get("Keys", [])) for spec in body.get("RequestItems", {}).values())
        return f"BatchGetItem({keys} keys)"
    if op == "Query":
        partition = str(body.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S", "?"))
        index = f" ({body['IndexName']})" if "IndexName" in body else ""
        return f"Query {partition.split('#', 1)[0]}{index}"
    return op


def _write_actions(op: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
    """(action, spec, transactional) for every item a write request names, in wire format."""
    actions: list[tuple[str, dict[str, Any], bool]] = []
    if op == "TransactWriteItems":
        for entry in body.get("TransactItems", []):
            action, spec = next(iter(entry.items()))
            actions.append((str(action), spec, True))
        return actions
    if op == "BatchWriteItem":
        for table, requests in body.get("RequestItems", {}).items():
            for request in requests:
                if "PutRequest" in request:
                    actions.append(("Put", {"TableName": table, **request["PutRequest"]}, False))
                else:
                    actions.append(("Delete", {"TableName": table, **request["DeleteRequest"]}, False))
        return actions
    return [(op.removesuffix("Item"), body, False)]  # PutItem, UpdateItem, DeleteItem


def outbox_entries(action: str, spec: dict[str, Any]) -> list[str]:
    """The detail types of the domain events a write carries in its item's `outbox` attribute
    (the stream publishes each to EventBridge once the write commits)."""
    value: Any = None
    if action == "Put":
        value = spec["Item"].get("outbox")
    elif action == "Update":
        names = spec.get("ExpressionAttributeNames", {})
        for name, placeholder in _ASSIGNMENT.findall(str(spec.get("UpdateExpression", ""))):
            if names.get(name, name) == "outbox":
                value = spec.get("ExpressionAttributeValues", {}).get(placeholder)
    entries = value.get("L", []) if isinstance(value, dict) else []
    return [str(e.get("M", {}).get("detail_type", {}).get("S", "?")) for e in entries]


def _read_unit(size: int, consistent: bool) -> float:
    """1 RRU per started 4 KB strongly consistent, half eventually; a missing item costs the minimum."""
    return max(1, math.ceil(size / 4096)) * (1.0 if consistent else 0.5)


def read_units(op: str, request: dict[str, Any], parsed: dict[str, Any]) -> float:
    """What a successful read costs by DynamoDB's rules, from the request and its parsed answer."""
    if op == "GetItem":
        item = parsed.get("Item")
        return _read_unit(item_size(item) if item else 0, bool(request.get("ConsistentRead")))
    if op == "BatchGetItem":  # each key priced as its own GetItem, rounded up item by item
        total = 0.0
        for table, spec in request.get("RequestItems", {}).items():
            consistent = bool(spec.get("ConsistentRead"))
            found = parsed.get("Responses", {}).get(table, [])
            unprocessed = len((parsed.get("UnprocessedKeys") or {}).get(table, {}).get("Keys", []))
            missing = max(0, len(spec.get("Keys", [])) - len(found) - unprocessed)
            total += sum(_read_unit(item_size(i), consistent) for i in found)
            total += missing * _read_unit(0, consistent)
        return total
    if op in ("Query", "Scan"):  # the items' sizes summed, then rounded up once; indexes read eventually
        size = sum(item_size(i) for i in parsed.get("Items", []))
        return _read_unit(size, bool(request.get("ConsistentRead")) and "IndexName" not in request)
    if op == "TransactGetItems":
        responses = parsed.get("Responses", [])
        return sum(2 * _read_unit(item_size(r["Item"]) if r.get("Item") else 0, True) for r in responses)
    return 0.0


def kb(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def settle_writes(cost: CallCost, client: Any) -> None:
    """Price each written item as DynamoDB does: 1 WCU per started KB, 2 in a transaction (a
    ConditionCheck is priced like a write here), plus 1 WCU per started KB for each index the item
    is in (projection ALL: the index copy is the whole item). A Put is sized from its request; an
    Update or ConditionCheck by the item as it is now, read back here, off the clock (DynamoDB bills
    the larger of the old and new image; ours only grow); a deleted item, gone by now, counts 1 KB."""
    for written in cost.written:
        image = written.image
        if image is None and written.action in ("Update", "ConditionCheck") and written.key:
            image = client.get_item(TableName=written.table, Key=written.key, ConsistentRead=True).get("Item")
        size = item_size(image) if image else 1024
        indexes = tuple(
            name
            for name, pk, sk in INDEXES
            if image and pk in image and sk in image and touches_index(written, name)
        )
        index_units = sum(kb(index_copy_size(image, name)) for name in indexes) if image else 0.0
        units = kb(size) * (2 if written.transactional else 1)
        attributes = sorted(
            ((name, len(name.encode()) + _value_size(value)) for name, value in (image or {}).items()),
            key=lambda kv: -kv[1],
        )
        cost.priced.append(
            Priced(
                _kind(written.key), written.action, size, units, indexes, tuple(attributes[:3]), index_units
            )
        )


def _kind(key: dict[str, Any]) -> str:
    pk = str(key.get(TABLE.partition_key, {}).get("S", "?"))
    sk = str(key.get(TABLE.sort_key, {}).get("S", "?"))
    return f"{pk.split('#', 1)[0]}/{sk.split('#', 1)[0]}"


def item_size(item: dict[str, Any]) -> int:
    """An item's size in bytes by DynamoDB's rules (attribute names plus values), wire format."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:  # noqa: PLR0911 - one return per operation
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        digits = str(inner).lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":  # bytes once parsed, base64 text in a request body
        return len(inner) if isinstance(inner, bytes) else len(str(inner)) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in inner)
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: v}) for v in inner)
    return 0
