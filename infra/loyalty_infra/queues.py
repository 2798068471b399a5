"""Dead-letter queues: where what could not be delivered or processed waits to be looked at."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

# SQS's maximum: time to notice, diagnose and redrive.
DEAD_LETTER_RETENTION = Duration.days(14)


def dead_letter_queue(scope: Construct, construct_id: str, *, holds: str) -> sqs.Queue:
    """An SQS queue encrypted with SQS-managed keys whose policy refuses any request without TLS.

    SSE-SQS rather than a KMS key: EventBridge Scheduler and Lambda send to it with their roles
    alone, with no key policy to keep in step. `holds` says what lands in it (for the nag reason).
    """
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=DEAD_LETTER_RETENTION,
    )
    Validations.of(queue).acknowledge(
        Acknowledgment(
            id="AwsSolutions-SQS3",
            reason=(
                f"This queue is itself a dead-letter queue ({holds}); nothing consumes it automatically, "
                "so a dead-letter queue of its own would never receive anything."
            ),
        )
    )
    return queue
