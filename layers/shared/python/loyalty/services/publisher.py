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
from loyalty.adapters.transactions import transaction_from_item
from loyalty.domain.ledger import TransactionRecord
from loyalty.services.receipts import FROM_RECORD, detail_from_record

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
    image = change.get("NewImage")
    fresh = [e for e in _outbox(image) if str(e["id"]) not in before]
    written: TransactionRecord | None = None
    if any(e.get("record") == FROM_RECORD for e in fresh):
        # A sale's TransactionRecorded names its record rather than copying it: rendered from
        # the image as written (this stream record's), the same bytes the sale would have stored.
        assert image is not None
        written = transaction_from_item({k: _deserializer.deserialize(v) for k, v in image.items()})
    return [
        OutgoingEvent(
            str(e["id"]),
            str(e["detail_type"]),
            detail_from_record(e, written) if written is not None else str(e["detail"]),
        )
        for e in fresh
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
