"""Rules on the domain bus, from loyalty.resources: those that feed work queues (BUS_RULES) and the
triggers that invoke a function or start a state machine (BUS_TRIGGERS; locally delivered through
loyalty_local.bus_triggers, as moto cannot)."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from loyalty.resources import BUS_RULES, BUS_TRIGGERS, BusRuleDef, BusTriggerDef
from loyalty_infra.events import EVENT_SOURCE
from loyalty_infra.queues import dead_letter_queue

# EventBridge's own retry policy for a target (its maximum), then the dead-letter queue.
RETRY_ATTEMPTS = 185
MAX_EVENT_AGE = Duration.hours(24)
# EventBridge invokes a function asynchronously: its retries above cover only the delivery (a
# throttled or missing function). An invocation that fails inside the function is retried by Lambda
# (twice, said here rather than inherited), then goes to the same dead-letter queue as an on-failure
# destination, which records the error with the event. A triggered campaign's moment is gone after
# a few hours, so that is as old as an event may get.
ASYNC_RETRY_ATTEMPTS = 2
ASYNC_MAX_EVENT_AGE = Duration.hours(6)


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
        triggers: tuple[BusTriggerDef, ...] = BUS_TRIGGERS,
        functions: Mapping[str, lambda_.IFunction] | None = None,
        state_machines: Mapping[str, sfn.IStateMachine] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rules: dict[str, events.Rule] = {}
        self._async_configured: set[str] = set()
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
                        retry_attempts=RETRY_ATTEMPTS,
                        max_event_age=MAX_EVENT_AGE,
                    )
                ],
            )
        self.trigger_dead_letters = (
            dead_letter_queue(
                self, "TriggerDeadLetters", holds="bus trigger events EventBridge could not deliver"
            )
            if triggers
            else None
        )
        for trigger in triggers:
            target_name = trigger.function or trigger.state_machine
            self.rules[trigger.logical_id] = events.Rule(
                self,
                trigger.logical_id,
                event_bus=bus,
                description=f"{', '.join(trigger.detail_types)} to {target_name}",
                event_pattern=events.EventPattern(
                    source=[EVENT_SOURCE], detail_type=list(trigger.detail_types)
                ),
                targets=[self._target(trigger, functions or {}, state_machines or {})],
            )

    def _target(
        self,
        trigger: BusTriggerDef,
        functions: Mapping[str, lambda_.IFunction],
        state_machines: Mapping[str, sfn.IStateMachine],
    ) -> events.IRuleTarget:
        message = (
            events.RuleTargetInput.from_event_path(trigger.input_path)
            if trigger.input_path == "$.detail"
            else None
        )
        if trigger.function is not None:
            function = functions[trigger.function]
            if trigger.function not in self._async_configured:
                assert self.trigger_dead_letters is not None
                function.configure_async_invoke(
                    retry_attempts=ASYNC_RETRY_ATTEMPTS,
                    max_event_age=ASYNC_MAX_EVENT_AGE,
                    on_failure=destinations.SqsDestination(self.trigger_dead_letters),
                )
                self._async_configured.add(trigger.function)
            # The function's resource policy lets only this rule invoke it (aws:SourceArn).
            return targets.LambdaFunction(
                function,
                event=message,
                dead_letter_queue=self.trigger_dead_letters,
                retry_attempts=RETRY_ATTEMPTS,
                max_event_age=MAX_EVENT_AGE,
            )
        assert trigger.state_machine is not None
        return targets.SfnStateMachine(
            state_machines[trigger.state_machine],
            input=message,
            dead_letter_queue=self.trigger_dead_letters,
            retry_attempts=RETRY_ATTEMPTS,
            max_event_age=MAX_EVENT_AGE,
        )
