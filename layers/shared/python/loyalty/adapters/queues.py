"""SQS FIFO: merge requests wait here until the merge worker takes them, in order per customer."""

from __future__ import annotations

import json
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
