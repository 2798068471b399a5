"""What Lambda's event source mapping and EventBridge Scheduler do on AWS, done locally.

`StreamPoller` reads the table's stream from DynamoDB Local and hands batches to the publisher
function's real handler (one thread per table: records of a shard stay in order). `Ticker` runs a
scheduled function's real handler on an interval. Tests call `poll_once` / the handler directly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from loyalty_local.gateway import LambdaContext, load_handler

log = logging.getLogger(__name__)


class StreamPoller:
    def __init__(
        self, session: Any, table_name: str, handler: Callable[[dict[str, Any], Any], Any] | None = None
    ):
        self._streams = session.client("dynamodbstreams")
        self._table_name = table_name
        self._dynamodb = session.client("dynamodb")
        self._handler = handler or load_handler("publisher")
        self._iterators: dict[str, str | None] = {}
        self._stream_arn: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0

    def _arn(self) -> str:
        if self._stream_arn is None:
            table = self._dynamodb.describe_table(TableName=self._table_name)["Table"]
            self._stream_arn = str(table["LatestStreamArn"])
        return self._stream_arn

    def poll_once(self) -> int:
        """Deliver every record written so far; returns how many records were handed over."""
        arn = self._arn()
        delivered = 0
        shards = self._streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self._streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            while self._iterators[shard_id]:
                page = self._streams.get_records(ShardIterator=self._iterators[shard_id], Limit=100)
                records = page.get("Records", [])
                if records:
                    self._deliver(records, arn)
                    delivered += len(records)
                self._iterators[shard_id] = page.get("NextShardIterator")
                if not records:
                    break
        return delivered

    def _deliver(self, records: list[dict[str, Any]], arn: str) -> None:
        batch = [{**record, "eventSourceARN": arn} for record in records]
        for attempt in range(5):
            result = self._handler({"Records": batch}, LambdaContext("publisher"))
            failures = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
            if not failures:
                return
            # Like Lambda: retry from the first failed record on.
            first = next(i for i, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] in failures)
            batch = batch[first:]
            time.sleep(0.2 * 2**attempt)
        self.failures += len(batch)

    def start(self, interval: float = 0.5) -> StreamPoller:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.poll_once()
                except Exception:  # keep polling; the records stay in the stream
                    self.failures += 1
                    log.exception("stream poll failed")
                self._stop.wait(interval)

        self._thread = threading.Thread(target=loop, name="stream-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)


class Ticker:
    """Runs a scheduled function's handler every `interval` seconds (EventBridge Scheduler's job)."""

    def __init__(self, function: str, interval: float) -> None:
        self._handler = load_handler(function)
        self._function = function
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Ticker:
        def loop() -> None:
            while not self._stop.wait(self._interval):
                try:
                    self._handler({"source": "aws.scheduler"}, LambdaContext(self._function))
                except Exception:  # the next tick tries again, as the schedule would
                    log.exception("scheduled %s failed", self._function)

        self._thread = threading.Thread(target=loop, name=f"ticker-{self._function}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
