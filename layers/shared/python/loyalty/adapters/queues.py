"""SQS work queues: merge requests (FIFO, in order per customer) and background jobs (standard)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class SqsWorkQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def send(self, body: dict[str, str], group: str, dedupe_id: str) -> None:
        # The dedupe id makes a retried send within SQS's five-minute window a no-op.
        self._client.send_message(
            QueueUrl=self._url,
            MessageBody=json.dumps(body, sort_keys=True),
            MessageGroupId=group,
            MessageDeduplicationId=dedupe_id,
        )


class SqsJobQueue:
    """A standard SQS queue of background work (a segment's evaluation pass): no groups, no
    dedupe ids, so the work itself must tolerate a message delivered twice."""

    MAX_DELAY_SECONDS = 900  # SQS's limit

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def send(self, body: Mapping[str, Any], delay_seconds: int = 0) -> None:
        self._client.send_message(
            QueueUrl=self._url,
            MessageBody=json.dumps(dict(body), sort_keys=True),
            DelaySeconds=max(0, min(delay_seconds, self.MAX_DELAY_SECONDS)),
        )
