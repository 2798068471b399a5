"""What Lambda's event source mapping and EventBridge Scheduler do on AWS, done locally.

`StreamPoller` reads the table's stream from DynamoDB Local and hands batches to a stream job's
real handler (the publisher, the mailer: one poller and thread per job, as each has its own event
source mapping on AWS; records of a shard stay in order). Lambda's event filters are not applied
here: the handlers ignore the records they are not for. `Ticker` runs a
scheduled function's real handler on an interval. Tests call `poll_once` / the handler directly.

A stream poller that has found nothing for a few polls in a row polls every IDLE_POLL_SECONDS
instead, until it is kicked (`kick()`): the runtime kicks its stream pollers whenever a function
ran (a request through the gateway, a queue batch, a tick, a stream batch), which is when the table
may have changed. An idle platform (a test worker's, after its last end-to-end test) then costs
little, and a write is seen as soon as before, or sooner.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from loyalty.bootstrap import Container, bound_container
from loyalty_local.events import scheduler_event, sqs_event, stream_event
from loyalty_local.gateway import LambdaContext, load_handler

log = logging.getLogger(__name__)

# What the deployed stream event source mappings allow (loyalty_infra.outbox): 10 retries.
STREAM_RETRIES = 10
# After this many empty polls a stream poller waits for a kick, or this long at most.
IDLE_AFTER_POLLS = 4
IDLE_POLL_SECONDS = 2.0

Notify = Callable[[], None]


def _nothing() -> None:
    return None


class _Background:
    """One daemon thread running a loop until `stop()`; with `container` set, the handlers it calls
    use that platform's container whatever the process's is (a test may swap that meanwhile)."""

    _stop: threading.Event
    _thread: threading.Thread | None
    container: Container | None = None
    on_delivered: Notify  # called after the loop's function ran: the runtime kicks its stream pollers

    def _start_thread(self, name: str, loop: Callable[[], None]) -> None:
        def bound_loop() -> None:
            with bound_container(self.container):
                loop()

        self._thread = threading.Thread(target=bound_loop, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)


class StreamPoller(_Background):
    def __init__(
        self,
        session: Any,
        table_name: str,
        handler: Callable[[dict[str, Any], Any], Any] | None = None,
        function: str = "publisher",
    ):
        self._streams = session.client("dynamodbstreams")
        self._table_name = table_name
        self._dynamodb = session.client("dynamodb")
        self._function = function
        self._handler = handler or load_handler(function)
        self._iterators: dict[str, str | None] = {}
        self._stream_arn: str | None = None
        self._stop = threading.Event()
        self._kicked = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0
        self.failed_batches: list[list[dict[str, Any]]] = []
        self.on_delivered = _nothing

    def kick(self) -> None:
        """The table may have changed: an idle poller polls now (a busy one polls every `interval`)."""
        self._kicked.set()

    def stop(self) -> None:
        self._stop.set()
        self._kicked.set()
        super().stop()

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
        batch = stream_event(records, arn)["Records"]
        # Like the deployed event source mapping: retry from the first failed record on, up to
        # STREAM_RETRIES times, then hand the rest to the on-failure destination (here a list
        # that tests assert stays empty) and move on.
        for attempt in range(STREAM_RETRIES + 1):
            try:
                result = self._handler({"Records": batch}, LambdaContext(self._function))
                failures = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
            except Exception:  # the whole invocation failed: Lambda retries the whole batch
                log.exception("%s failed a batch", self._function)
                failures = {batch[0]["dynamodb"]["SequenceNumber"]}
            if not failures:
                return
            first = next(i for i, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] in failures)
            batch = batch[first:]
            time.sleep(min(0.1 * 2**attempt, 1.0))
        self.failures += len(batch)
        self.failed_batches.append(batch)

    def start(self, interval: float = 0.5, idle_interval: float = IDLE_POLL_SECONDS) -> StreamPoller:
        def loop() -> None:
            empty = 0
            while not self._stop.is_set():
                self._kicked.clear()
                try:
                    delivered = self.poll_once()
                except Exception:  # keep polling; the records stay in the stream
                    self.failures += 1
                    log.exception("stream poll failed")
                    delivered = 0
                if delivered:
                    self.on_delivered()
                empty = 0 if delivered else empty + 1
                if empty < IDLE_AFTER_POLLS:
                    self._stop.wait(interval)
                elif self._kicked.wait(idle_interval):
                    empty = 0

        self._start_thread(f"stream-{self._function}", loop)
        return self


class QueuePoller(_Background):
    """Lambda's SQS event source, locally: receive a batch, hand it to the function's handler, delete
    what succeeded. What failed becomes visible again after `retry_delay` seconds (Lambda waits the
    queue's visibility timeout; locally a shorter wait keeps demos and tests quick) and, after the
    queue's maxReceiveCount deliveries, SQS moves it to the dead-letter queue.

    One thread per queue: moto hands one FIFO message group to two consumers at once (design.md)."""

    def __init__(
        self,
        session: Any,
        queue_url: str,
        function: str,
        handler: Callable[[dict[str, Any], Any], Any] | None = None,
        retry_delay: int = 1,
    ) -> None:
        self._sqs = session.client("sqs")
        self._url = queue_url
        self._function = function
        self._handler = handler or load_handler(function)
        self._retry_delay = retry_delay
        self._arn: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0
        self.on_delivered = _nothing

    def _queue_arn(self) -> str:
        if self._arn is None:
            attributes = self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])
            self._arn = str(attributes["Attributes"]["QueueArn"])
        return self._arn

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Deliver one batch; returns how many messages it held."""
        messages = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        records = sqs_event(messages, self._queue_arn(), self._sqs.meta.region_name)["Records"]
        try:
            result = self._handler({"Records": records}, LambdaContext(self._function))
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        except Exception:  # the whole batch failed, as Lambda would count it
            log.exception("%s failed a batch", self._function)
            failed = {r["messageId"] for r in records}
        for message in messages:
            if message["MessageId"] in failed:
                self.failures += 1
                self._sqs.change_message_visibility(
                    QueueUrl=self._url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=self._retry_delay,
                )
            else:
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        self.on_delivered()
        return len(messages)

    def drain(self, idle_rounds: int = 3, max_seconds: float = 120.0) -> None:
        """Poll until the queue stays empty for a few rounds (tests, and the storm)."""
        deadline = time.monotonic() + max_seconds
        idle = 0
        while idle < idle_rounds and time.monotonic() < deadline:
            if self.poll_once():
                idle = 0
            else:
                idle += 1
                time.sleep(self._retry_delay / 2 if self.failures else 0.05)

    def start(self, interval: float = 0.2) -> QueuePoller:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    if not self.poll_once(wait_seconds=1):
                        self._stop.wait(interval)
                except Exception:  # keep polling; the messages stay in the queue
                    log.exception("queue poll failed")
                    self._stop.wait(1.0)

        self._start_thread(f"queue-{self._function}", loop)
        return self


class Ticker(_Background):
    """Runs a scheduled function's handler every `interval` seconds (EventBridge Scheduler's job)."""

    def __init__(self, function: str, interval: float) -> None:
        self._handler = load_handler(function)
        self._function = function
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_delivered = _nothing

    def start(self) -> Ticker:
        def loop() -> None:
            while not self._stop.wait(self._interval):
                try:
                    self._handler(scheduler_event(self._function), LambdaContext(self._function))
                except Exception:  # the next tick tries again, as the schedule would
                    log.exception("scheduled %s failed", self._function)
                self.on_delivered()

        self._start_thread(f"ticker-{self._function}", loop)
        return self
