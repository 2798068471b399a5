"""EventBridge: puts domain events on the bus, ten at a time, retrying entries it refused."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loyalty.domain.events import SOURCE


@dataclass(frozen=True)
class OutgoingEvent:
    event_id: str
    detail_type: str
    detail: str  # JSON


class PublishFailed(Exception):
    pass


class EventBridgePublisher:
    BATCH = 10  # PutEvents takes at most ten entries

    def __init__(self, client: Any, bus_name: str, attempts: int = 3) -> None:
        self._client = client
        self._bus = bus_name
        self._attempts = attempts

    def publish(self, events: Sequence[OutgoingEvent]) -> None:
        for start in range(0, len(events), self.BATCH):
            pending = list(events[start : start + self.BATCH])
            for attempt in range(self._attempts):
                response = self._client.put_events(Entries=[self._entry(e) for e in pending])
                if not response.get("FailedEntryCount"):
                    break
                pending = [e for e, r in zip(pending, response["Entries"], strict=True) if r.get("ErrorCode")]
                time.sleep(0.05 * 2**attempt)
            else:
                raise PublishFailed(f"{len(pending)} events were refused by the bus")

    def _entry(self, event: OutgoingEvent) -> dict[str, Any]:
        return {
            "Source": SOURCE,
            "DetailType": event.detail_type,
            "Detail": event.detail,
            "EventBusName": self._bus,
        }
