"""What a built stack holds, found by looking rather than listed by hand.

Monitoring and the waivers iterate over whatever functions and queues exist, so a new function or
queue is watched (and waived, where that follows) without an edit here. A queue counts as a
dead-letter queue when some resource in the stack names it as where its failures go: another
queue's redrive policy, a subscription's redrive policy, a function's dead-letter config, an
asynchronous-invocation or event-source-mapping on-failure destination, a schedule's or a rule
target's dead-letter config.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import IConstruct


def functions(scope: IConstruct) -> list[lambda_.Function]:
    """Every Lambda function under the scope, in construct-tree order."""
    return [node for node in scope.node.find_all() if isinstance(node, lambda_.Function)]


def queues(scope: IConstruct) -> list[sqs.CfnQueue]:
    return [node for node in scope.node.find_all() if isinstance(node, sqs.CfnQueue)]


def dead_letter_queues(stack: Stack) -> list[sqs.CfnQueue]:
    """Every queue of the stack that some resource names as its dead-letter target."""
    targets = {resolved_key(stack, arn) for arn in _dead_letter_targets(stack)}
    return [queue for queue in queues(stack) if resolved_key(stack, queue.attr_arn) in targets]


def _dead_letter_targets(stack: Stack) -> Iterator[Any]:
    for node in stack.node.find_all():
        if isinstance(node, sqs.CfnQueue | sns.CfnSubscription):
            yield _get(stack.resolve(node.redrive_policy), "deadLetterTargetArn")
        elif isinstance(node, lambda_.CfnFunction):
            yield _get(stack.resolve(node.dead_letter_config), "targetArn")
        elif isinstance(node, lambda_.CfnEventInvokeConfig | lambda_.CfnEventSourceMapping):
            yield _get(stack.resolve(node.destination_config), "onFailure", "destination")
        elif isinstance(node, scheduler.CfnSchedule):
            yield _get(stack.resolve(node.target), "deadLetterConfig", "arn")
        elif isinstance(node, events.CfnRule):
            for target in stack.resolve(node.targets) or []:
                yield _get(target, "deadLetterConfig", "arn")


def _get(value: Any, *path: str) -> Any:
    """A nested value of a resolved property, whichever case its keys come in; None if absent."""
    for key in path:
        if isinstance(value, str):  # a redrive policy may be given as a JSON string
            try:
                value = json.loads(value)
            except ValueError:
                return None
        if not isinstance(value, dict):
            return None
        value = value.get(key, value.get(key[:1].upper() + key[1:]))
    return value


def resolved_key(stack: Stack, value: Any) -> str:
    """A resolved value (an ARN token, a GetAtt) as a string to compare by."""
    return json.dumps(stack.resolve(value), sort_keys=True)
