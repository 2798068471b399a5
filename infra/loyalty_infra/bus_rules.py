"""Rules on the domain bus that feed work queues (the activity worker's), from loyalty.resources."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from loyalty.resources import BUS_RULES, BusRuleDef
from loyalty_infra.events import EVENT_SOURCE


class BusRules(Construct):
    """One rule per definition: the platform's own events of the listed detail-types, to the queue.

    The target's queue policy lets only this rule send (aws:SourceArn); what EventBridge cannot
    deliver after its retries goes to the queue's dead-letter queue, beside what the worker failed."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus: events.IEventBus,
        queues: Mapping[str, sqs.IQueue],
        dead_letters: Mapping[str, sqs.IQueue],
        definitions: tuple[BusRuleDef, ...] = BUS_RULES,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rules: dict[str, events.Rule] = {}
        for definition in definitions:
            queue_id = definition.target.logical_id
            self.rules[definition.logical_id] = events.Rule(
                self,
                definition.logical_id,
                event_bus=bus,
                description=f"{', '.join(definition.detail_types)} to the {queue_id} queue",
                event_pattern=events.EventPattern(
                    source=[EVENT_SOURCE], detail_type=list(definition.detail_types)
                ),
                targets=[
                    targets.SqsQueue(
                        queues[queue_id],
                        dead_letter_queue=dead_letters[queue_id],
                        retry_attempts=185,
                        max_event_age=Duration.hours(24),
                    )
                ],
            )
