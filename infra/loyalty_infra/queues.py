"""Dead-letter queues: where what could not be delivered or processed waits to be looked at."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

# SQS's maximum: time to notice, diagnose and redrive.
DEAD_LETTER_RETENTION = Duration.days(14)
# Construct metadata saying what lands in a dead-letter queue: its depth alarm says it.
HOLDS_METADATA = "loyalty:holds"


def dead_letter_queue(scope: Construct, construct_id: str, *, holds: str) -> sqs.Queue:
    """An SQS queue encrypted with SQS-managed keys whose policy refuses any request without TLS.

    SSE-SQS rather than a KMS key: EventBridge Scheduler and Lambda send to it with their roles
    alone, with no key policy to keep in step. `holds` says what lands in it (for its depth alarm).
    Being a dead-letter queue, it has none of its own: waivers.IS_DEAD_LETTER_QUEUE, applied to every
    queue that something names as its dead-letter target.
    """
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=DEAD_LETTER_RETENTION,
    )
    queue.node.add_metadata(HOLDS_METADATA, holds)
    return queue
