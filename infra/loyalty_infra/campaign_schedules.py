"""Scheduled campaigns' EventBridge Scheduler group, and who may put schedules in it.

The schedules themselves are made at run time, one per active schedule campaign, by the functions
whose NEEDS say `campaign_schedules` (the campaigns function: loyalty.adapters.campaign_schedules).
This construct makes what they need and nothing more:

- the schedule group (resources.CAMPAIGN_SCHEDULES);
- the role Scheduler assumes for those schedules: only Scheduler, for this account and this group
  (confused-deputy guard), allowed to invoke the campaign-schedule function's unqualified ARN and to
  send to the dead-letter queue;
- the dead-letter queue, also the function's on-failure destination for the asynchronous
  invocations Scheduler makes (as the jobs' schedules have: loyalty_infra.schedules);
- on each keeper function: scheduler:Create/Update/Delete/GetSchedule on the group's schedules,
  iam:PassRole of that role to Scheduler only, and the environment naming the group, the target, the
  role and the queue.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from loyalty.resources import CAMPAIGN_SCHEDULES, ScheduleGroupDef
from loyalty_infra.functions import NEEDS
from loyalty_infra.queues import dead_letter_queue
from loyalty_infra.waivers import CAMPAIGN_SCHEDULES_IN_GROUP, waive

# The function's own asynchronous retries of a run that failed to start (Lambda's default, said here).
ASYNC_RETRY_ATTEMPTS = 2
ASYNC_MAX_EVENT_AGE = Duration.hours(1)
SCHEDULE_ACTIONS = (
    "scheduler:CreateSchedule",
    "scheduler:UpdateSchedule",
    "scheduler:DeleteSchedule",
    "scheduler:GetSchedule",
)


class CampaignSchedules(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, lambda_.Function],
        jobs: Mapping[str, lambda_.Function],
        definition: ScheduleGroupDef = CAMPAIGN_SCHEDULES,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        target = jobs[definition.target]
        # Named by CloudFormation (no name given): one group per stage, found through its Ref.
        self.group = scheduler.CfnScheduleGroup(self, "Group")
        group_name, group_arn = self.group.ref, self.group.attr_arn
        self.dead_letter = dead_letter_queue(
            self,
            "DeadLetters",
            holds=f"scheduled campaign runs that Scheduler or Lambda gave up on ({target})",
        )
        self.role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": stack.account,
                        "aws:SourceArn": group_arn,
                    }
                },
            ),
            description="EventBridge Scheduler: campaign schedules invoke the campaign-schedule job",
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="InvokeCampaignSchedule",
                actions=["lambda:InvokeFunction"],
                resources=[target.function_arn],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DeadLetter", actions=["sqs:SendMessage"], resources=[self.dead_letter.queue_arn]
            )
        )
        target.configure_async_invoke(
            retry_attempts=ASYNC_RETRY_ATTEMPTS,
            max_event_age=ASYNC_MAX_EVENT_AGE,
            on_failure=destinations.SqsDestination(self.dead_letter),
        )
        schedules_arn = stack.format_arn(
            service="scheduler", resource="schedule", resource_name=f"{group_name}/*"
        )
        keepers = [name for name, needs in NEEDS.items() if needs.campaign_schedules]
        for name in keepers:
            keeper = functions.get(name) or jobs[name]
            keeper.add_environment(definition.env_var, group_name)
            keeper.add_environment(definition.target_env_var, target.function_arn)
            keeper.add_environment(definition.role_env_var, self.role.role_arn)
            keeper.add_environment(definition.dead_letter_env_var, self.dead_letter.queue_arn)
            assert keeper.role is not None
            keeper.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="KeepCampaignSchedules", actions=list(SCHEDULE_ACTIONS), resources=[schedules_arn]
                )
            )
            keeper.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="PassSchedulerRole",
                    actions=["iam:PassRole"],
                    resources=[self.role.role_arn],
                    conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
                )
            )
            waive(keeper.role.node.find_child("DefaultPolicy"), CAMPAIGN_SCHEDULES_IN_GROUP)
