"""EventBridge Scheduler schedules for every JobDef that has a `schedule`.

Each scheduled job gets its own schedule (flexible time window off), its own execution role allowed
lambda:InvokeFunction on that one function's ARN and sqs:SendMessage on its dead-letter queue, a
retry policy, and that dead-letter queue. The same queue is the function's on-failure destination
for the asynchronous invocation Scheduler makes, so one queue holds every run that did not happen:
deliveries Scheduler gave up on and runs the function failed after Lambda's own retries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jsii
from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from loyalty.resources import JOBS, JobDef, construct_name
from loyalty_infra.queues import dead_letter_queue

# A run is hourly at most: one that cannot start within the hour is superseded by the next one.
SCHEDULER_RETRY_ATTEMPTS = 5
SCHEDULER_MAX_EVENT_AGE = Duration.hours(1)
# The function's own asynchronous retries (Lambda's default is 2; said here, not inherited).
ASYNC_RETRY_ATTEMPTS = 2
ASYNC_MAX_EVENT_AGE = Duration.hours(1)
SCHEDULE_GROUP = "default"


@jsii.implements(scheduler.IScheduleTarget)
class _InvokeFunction:
    """A Lambda target whose role may invoke exactly the function's unqualified ARN.

    aws_scheduler_targets.LambdaInvoke grants through `grantInvoke`, which adds `<arn>:*` (every
    version and alias) and would need a cdk-nag acknowledgement; Scheduler only ever invokes the
    unqualified ARN given here, so the grant is written by hand instead.
    """

    def __init__(
        self,
        function: lambda_.IFunction,
        *,
        role: iam.IRole,
        dead_letter: sqs.IQueue,
        payload: scheduler.ScheduleTargetInput,
    ) -> None:
        self._function = function
        self._role = role
        self._dead_letter = dead_letter
        self._payload = payload

    def bind(self, _schedule: scheduler.ISchedule) -> scheduler.ScheduleTargetConfig:
        return scheduler.ScheduleTargetConfig(
            arn=self._function.function_arn,
            role=self._role,
            input=self._payload,
            dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(
                arn=self._dead_letter.queue_arn
            ),
            retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                maximum_retry_attempts=SCHEDULER_RETRY_ATTEMPTS,
                maximum_event_age_in_seconds=int(SCHEDULER_MAX_EVENT_AGE.to_seconds()),
            ),
        )


class Schedules(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        jobs: Mapping[str, lambda_.Function],
        definitions: Sequence[JobDef] = JOBS,
    ) -> None:
        super().__init__(scope, construct_id)
        self.schedules: dict[str, scheduler.Schedule] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        for job in definitions:
            if job.schedule is None:
                continue
            if job.name not in jobs:
                raise ValueError(f"job {job.name!r} has a schedule but no function")
            self._schedule(job, jobs[job.name])

    def _schedule(self, job: JobDef, function: lambda_.Function) -> None:
        assert job.schedule is not None
        name = construct_name(job.name)
        stack = Stack.of(self)
        dead_letter = dead_letter_queue(
            self, f"{name}DeadLetters", holds=f"{job.name} runs that Scheduler or Lambda gave up on"
        )
        # Only Scheduler, for this account's default schedule group (confused-deputy guard).
        role = iam.Role(
            self,
            f"{name}SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": stack.account,
                        "aws:SourceArn": stack.format_arn(
                            service="scheduler", resource="schedule-group", resource_name=SCHEDULE_GROUP
                        ),
                    }
                },
            ),
            description=f"EventBridge Scheduler: invokes the loyalty {job.name} job",
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="InvokeJob", actions=["lambda:InvokeFunction"], resources=[function.function_arn]
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DeadLetter", actions=["sqs:SendMessage"], resources=[dead_letter.queue_arn]
            )
        )
        # Scheduler invokes asynchronously: a run that fails inside the function lands here too.
        function.configure_async_invoke(
            retry_attempts=ASYNC_RETRY_ATTEMPTS,
            max_event_age=ASYNC_MAX_EVENT_AGE,
            on_failure=destinations.SqsDestination(dead_letter),
        )
        payload = scheduler.ScheduleTargetInput.from_object(
            {
                "job": job.name,
                "scheduled_time": scheduler.ContextAttribute.scheduled_time,
                "execution_id": scheduler.ContextAttribute.execution_id,
            }
        )
        self.schedules[job.name] = scheduler.Schedule(
            self,
            f"{name}Schedule",
            description=job.description,
            schedule=scheduler.ScheduleExpression.expression(job.schedule),
            time_window=scheduler.TimeWindow.off(),
            target=_InvokeFunction(function, role=role, dead_letter=dead_letter, payload=payload),
        )
        self.dead_letter_queues[job.name] = dead_letter
