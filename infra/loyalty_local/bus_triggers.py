"""Bus rules with a Lambda or Step Functions target, locally (resources.BusTriggerDef).

moto delivers a rule's events to SQS (how the activity and message-trigger rules work locally, see
provision.create_bus_rule) but fails `put_events` outright when a rule targets a function or a
state machine (design.md). So each trigger is made in moto as the same rule (the same pattern, so
moto's own matching decides) with a tap queue as its target, and a `QueuePoller` hands what arrives
to the real target: the function's handler in-process (the event as EventBridge sends it to Lambda),
or StartExecution named after the rule and the event id, so a redelivered event starts nothing
twice. A delivery that fails is received again after a second, up to five times (EventBridge
retries for 24 hours, then dead-letters), then lands in the tap's dead-letter queue.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from loyalty.domain.events import SOURCE
from loyalty.resources import BusTriggerDef
from loyalty_local.gateway import Handler, LambdaContext, load_handler
from loyalty_local.jobs import QueuePoller

TAP_PREFIX = "loyalty-local-tap-"
TAP_MAX_RECEIVES = 5


@dataclass(frozen=True)
class Tap:
    trigger: BusTriggerDef
    queue_url: str
    dead_letter_url: str


def create_trigger(session: Any, trigger: BusTriggerDef, bus_name: str, prefix: str = "") -> Tap:
    """The rule (its real pattern) with a tap queue as target, and the tap's dead-letter queue."""
    sqs, events = session.client("sqs"), session.client("events")
    name = f"{prefix}{TAP_PREFIX}{trigger.local_name}"[-75:]
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": TAP_MAX_RECEIVES})
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"{prefix}{trigger.local_name}"
    pattern = {"source": [SOURCE], "detail-type": list(trigger.detail_types)}
    events.put_rule(Name=rule, EventBusName=bus_name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=rule, EventBusName=bus_name, Targets=[{"Id": "LocalTap", "Arn": arn}])
    return Tap(trigger, str(url), str(dlq_url))


def execution_name(trigger: BusTriggerDef, event: Mapping[str, Any]) -> str:
    """One execution per (rule, event): Step Functions refuses a second start under the same name."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{trigger.local_name}-{event.get('id', '')}")[-80:]


class TriggerDelivery:
    """The handler a tap's QueuePoller calls: each message is one event for the trigger's target."""

    def __init__(
        self,
        session: Any,
        trigger: BusTriggerDef,
        *,
        state_machine_arns: Mapping[str, str] | None = None,
        handler_for: Callable[[str], Handler] = load_handler,
    ) -> None:
        self._trigger = trigger
        self._sfn = session.client("stepfunctions")
        self._arns = dict(state_machine_arns or {})
        self._handler = handler_for(trigger.function) if trigger.function else None

    def __call__(self, batch: dict[str, Any], context: Any) -> dict[str, Any]:
        failures = []
        for record in batch["Records"]:
            try:
                self.deliver(json.loads(record["body"]))
            except Exception:
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    def deliver(self, event: dict[str, Any]) -> None:
        payload = event.get("detail", {}) if self._trigger.input_path == "$.detail" else event
        if self._handler is not None:
            self._handler(payload, LambdaContext(str(self._trigger.function)))
            return
        arn = self._arns[str(self._trigger.state_machine)]
        try:
            self._sfn.start_execution(
                stateMachineArn=arn, name=execution_name(self._trigger, event), input=json.dumps(payload)
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise


def trigger_poller(
    session: Any,
    tap: Tap,
    *,
    state_machine_arns: Mapping[str, str] | None = None,
    handler_for: Callable[[str], Handler] = load_handler,
) -> QueuePoller:
    delivery = TriggerDelivery(
        session, tap.trigger, state_machine_arns=state_machine_arns, handler_for=handler_for
    )
    return QueuePoller(session, tap.queue_url, f"trigger-{tap.trigger.local_name}", handler=delivery)
