"""SQS work queues (identity merges, FIFO; the activity feed, standard): the queue, its dead-letter
queue, the consuming job's event source with partial batch failures, and send rights for the
functions that enqueue."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Names
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from loyalty.resources import JOBS, QueueDef
from loyalty_infra.queues import DEAD_LETTER_RETENTION, HOLDS_METADATA
from loyalty_infra.waivers import SQS_SOURCE_USES_REDRIVE, waive


class WorkQueues(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.queues: dict[str, sqs.Queue] = {}
        self.dead_letters: dict[str, sqs.Queue] = {}
        for job in JOBS:
            if job.consumes_queue is not None:
                self._queue(job.consumes_queue, holds=f"messages the {job.name} job failed five times")

    def _queue(self, definition: QueueDef, holds: str) -> None:
        dead_letters = sqs.Queue(
            self,
            f"{definition.logical_id}DeadLetters",
            fifo=True if definition.fifo else None,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DEAD_LETTER_RETENTION,
        )
        dead_letters.node.add_metadata(HOLDS_METADATA, holds)
        self.dead_letters[definition.logical_id] = dead_letters
        self.queues[definition.logical_id] = sqs.Queue(
            self,
            definition.logical_id,
            fifo=True if definition.fifo else None,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(definition.visibility_timeout_s),
            retention_period=DEAD_LETTER_RETENTION,
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=definition.max_receive_count, queue=dead_letters
            ),
        )

    def attach_consumers(self, jobs: Mapping[str, lambda_.Function]) -> None:
        """Lambda's SQS event source: batches of 10, failed records reported one by one."""
        for job in JOBS:
            if job.consumes_queue is None:
                continue
            source = sources.SqsEventSource(
                self.queues[job.consumes_queue.logical_id], batch_size=10, report_batch_item_failures=True
            )
            jobs[job.name].add_event_source(source)
            mapping = jobs[job.name].node.find_child(
                f"SqsEventSource:{Names.node_unique_id(self.queues[job.consumes_queue.logical_id].node)}"
            )
            waive(mapping, SQS_SOURCE_USES_REDRIVE)
