"""A customer event as the activity worker receives it from the bus (`CustomerEventRecorded` and
`CustomerEventAttributed` share this detail): the one value the worker hands to every rule that
reacts to behaviour (event earn rules, challenges, badges)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def _instant(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        at = value
    elif isinstance(value, str) and value:
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{name}: an RFC 3339 timestamp") from None
    else:
        raise ValueError(f"{name}: an RFC 3339 timestamp")
    if at.tzinfo is None:
        raise ValueError(f"{name}: a timestamp with its offset")
    return at.astimezone(UTC)


@dataclass(frozen=True)
class RecordedEvent:
    event_id: str
    store_id: str
    type: str
    occurred_at: datetime
    received_at: datetime
    channel: str | None = None
    customer_id: str | None = None
    anonymous_id: str | None = None
    member: bool = False  # at receipt
    properties: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """What identifies the event for ever: its id is unique per store."""
        return f"{self.store_id}#{self.event_id}"

    @classmethod
    def from_detail(cls, detail: Mapping[str, Any]) -> RecordedEvent:
        """The bus event's detail (docs/events.md, CustomerEventRecorded) as a value; a malformed
        detail raises ValueError naming the field (the worker sends it to its dead-letter queue)."""
        for name in ("event_id", "store_id", "type"):
            if not isinstance(detail.get(name), str) or not detail[name]:
                raise ValueError(f"{name}: a non-empty string")
        properties = detail.get("properties")
        properties = {} if properties is None else properties
        if not isinstance(properties, Mapping):
            raise ValueError("properties: an object")
        return cls(
            event_id=str(detail["event_id"]),
            store_id=str(detail["store_id"]),
            type=str(detail["type"]),
            occurred_at=_instant(detail.get("occurred_at"), "occurred_at"),
            received_at=_instant(detail.get("received_at") or detail.get("occurred_at"), "received_at"),
            channel=detail.get("channel"),
            customer_id=detail.get("customer_id") or None,
            anonymous_id=detail.get("anonymous_id") or None,
            member=bool(detail.get("member")),
            properties=dict(properties),
        )
