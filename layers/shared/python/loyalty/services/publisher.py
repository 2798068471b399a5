"""Turns table stream records into the domain events their writes carried (the outbox).

An item's `outbox` lists the events of the write that produced it. A record publishes the
entries of its new image that its old image did not already hold, so an unrelated later write
never re-publishes old events. Delivery is at least once: consumers dedupe by `event_id`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from loyalty.adapters.events import EventBridgePublisher, OutgoingEvent

_deserializer = TypeDeserializer()


def _outbox(image: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not image or "outbox" not in image:
        return []
    value = _deserializer.deserialize(image["outbox"])
    return list(value or [])


def events_of(record: Mapping[str, Any]) -> list[OutgoingEvent]:
    if record.get("eventName") not in ("INSERT", "MODIFY"):
        return []
    change = record.get("dynamodb") or {}
    before = {str(e["id"]) for e in _outbox(change.get("OldImage"))}
    return [
        OutgoingEvent(str(e["id"]), str(e["detail_type"]), str(e["detail"]))
        for e in _outbox(change.get("NewImage"))
        if str(e["id"]) not in before
    ]


class OutboxPublisher:
    def __init__(self, *, bus: EventBridgePublisher) -> None:
        self._bus = bus

    def publish_record(self, record: Mapping[str, Any]) -> int:
        events = events_of(record)
        if events:
            self._bus.publish(events)
        return len(events)

    def publish_records(self, records: Sequence[Mapping[str, Any]]) -> int:
        return sum(self.publish_record(r) for r in records)
