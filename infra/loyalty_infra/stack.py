"""The stack: wires the constructs together and says nothing about how each is built."""

from __future__ import annotations

from typing import Any

from aws_cdk import App, CfnOutput, Stack, Tags, Validations
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import Construct

from loyalty.resources import CAMPAIGN_RUN, EMAIL_FEEDBACK_QUEUE
from loyalty_infra.bus_rules import BusRules
from loyalty_infra.campaign_runs import CampaignRunFiles, CampaignRunWorkflow
from loyalty_infra.campaign_schedules import CampaignSchedules
from loyalty_infra.config import DeploySettings
from loyalty_infra.console import ConsoleStack
from loyalty_infra.data import DataTable
from loyalty_infra.email_feedback import EmailFeedback
from loyalty_infra.events import DomainEventBus
from loyalty_infra.functions import Functions
from loyalty_infra.lake import Lake
from loyalty_infra.nested import ApiStack, MonitoringStack
from loyalty_infra.outbox import OutboxStream
from loyalty_infra.print_files import PrintFiles
from loyalty_infra.schedules import Schedules
from loyalty_infra.secrets import ApiKeyPepper, CursorKey, WebhookSecret
from loyalty_infra.waivers import apply_waivers
from loyalty_infra.work_queues import WorkQueues


class LoyaltyStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        self.console: ConsoleStack | None = None  # build() adds it beside this stack
        Tags.of(self).add("project", "loyalty")
        Tags.of(self).add("stage", settings.stage)

        self.data = DataTable(self, "Data", customer_managed_key=settings.table_cmk)
        self.events = DomainEventBus(self, "Events")
        self.pepper = ApiKeyPepper(self, "ApiKeyPepper")
        self.cursor_key = CursorKey(self, "CursorKey")
        self.work_queues = WorkQueues(self, "WorkQueues")
        self.print_files = PrintFiles(self, "PrintFiles")
        self.webhook_secret = WebhookSecret(self, "WebhookSecret")
        self.email_feedback = EmailFeedback(
            self,
            "EmailFeedback",
            settings=settings,
            queue=self.work_queues.queues[EMAIL_FEEDBACK_QUEUE.logical_id],
        )
        self.lake = Lake(self, "Lake")
        self.campaign_run_files = CampaignRunFiles(
            self, "CampaignRunFiles"
        )  # its bucket: CAMPAIGN_RUNS_BUCKET
        self.functions = Functions(
            self,
            "Functions",
            settings=settings,
            data=self.data,
            bus=self.events,
            pepper=self.pepper.secret,
            cursor_key=self.cursor_key.secret,
            work_queues=self.work_queues.queues,
            print_bucket=self.print_files.bucket,
            configuration_set=self.email_feedback.configuration_set.configuration_set_name,
            webhook_secret=self.webhook_secret.secret,
            lake=self.lake,
            campaign_runs_bucket=self.campaign_run_files.bucket,
        )
        self.campaign_run = CampaignRunWorkflow(
            self,
            CAMPAIGN_RUN.logical_id,  # the local runtime finds the state machine by this id
            settings=settings,
            jobs=self.functions.jobs,
            bucket=self.campaign_run_files.bucket,
        )
        for controller in CAMPAIGN_RUN.controllers:
            function = self.functions.by_name.get(controller) or self.functions.jobs.get(controller)
            if function is not None:
                self.campaign_run.grant_run_control(function)
        self.work_queues.attach_consumers(self.functions.jobs)
        self.bus_rules = BusRules(
            self,
            "BusRules",
            bus=self.events.bus,
            queues=self.work_queues.queues,
            dead_letters=self.work_queues.dead_letters,
            functions=self.functions.jobs,
            state_machines={CAMPAIGN_RUN.logical_id: self.campaign_run.state_machine},
        )
        # A nested stack of its own: the API's ~190 resources would take this stack near
        # CloudFormation's 500 (nested.py).
        self.api_stack = ApiStack(
            self,
            "ApiStack",
            settings=settings,
            api_name=f"{self.stack_name}-api",
            functions=self.functions.by_name,
            authorizer_function=self.functions.authorizer,
        )
        self.api = self.api_stack.api
        self.firewall = self.api_stack.firewall
        self.schedules = Schedules(self, "Schedules", jobs=self.functions.jobs)
        # Scheduled campaigns' schedules are made at run time in their own group (campaign_schedules.py).
        self.campaign_schedules = CampaignSchedules(
            self, "CampaignSchedules", functions=self.functions.by_name, jobs=self.functions.jobs
        )
        self.outbox = OutboxStream(self, "Outbox", data=self.data, jobs=self.functions.jobs)
        # Last: monitoring and the waivers look at everything above (every function and queue).
        # Monitoring has a nested stack of its own, as the API has (nested.py).
        self.monitoring_stack = MonitoringStack(
            self,
            "MonitoringStack",
            settings=settings,
            stage=self,
            rest_api=self.api.rest_api,
            data=self.data,
            api_functions=self.functions.by_name.values(),
            authorizer=self.functions.authorizer,
            firewall=self.firewall,
        )
        self.monitoring = self.monitoring_stack.monitoring
        apply_waivers(self, settings)

        CfnOutput(
            self, "ApiUrl", value=self.api.rest_api.url, description="Base URL of the loyalty API stage"
        )
        CfnOutput(self, "TableName", value=self.data.table.table_name, description="The data table")
        CfnOutput(self, "LakeBucketName", value=self.lake.bucket.bucket_name, description="The data lake")
        CfnOutput(
            self, "LakeWorkgroup", value=self.lake.workgroup.ref, description="Athena workgroup for the lake"
        )
        CfnOutput(self, "EventBusName", value=self.events.bus.event_bus_name, description="Domain events bus")
        CfnOutput(
            self, "ApiKeyPepperSecretArn", value=self.pepper.secret.secret_arn, description="Pepper secret"
        )
        CfnOutput(
            self,
            "UsagePlanId",
            value=self.api.usage_plan.usage_plan_id,
            description="Register each API key id here before turning on usagePlanKeys",
        )
        CfnOutput(
            self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn, description="Where alarms notify"
        )
        CfnOutput(
            self,
            "DashboardName",
            value=self.monitoring.dashboard.dashboard_name,
            description="The CloudWatch dashboard",
        )


def stack_id(stage: str) -> str:
    return f"Loyalty-{stage}"


def build(app: App) -> LoyaltyStack:
    """The stack of a stage (the API in a nested stack inside it: nested.py), with cdk-nag's AWS
    Solutions and Serverless checks run on every synth, over the nested stack too (their
    exceptions: waivers.py)."""
    settings = DeploySettings.from_context(app.node)
    stack = LoyaltyStack(
        app,
        stack_id(settings.stage),
        settings=settings,
        description=(
            f"Loyalty platform ({settings.stage}): API, functions, scheduled jobs, outbox relay, "
            "data table, event bus"
        ),
    )
    # The console's hosting is a stack of its own: it has its own life (a CDN and static files) and
    # keeps the platform's stack clear of CloudFormation's 500-resource ceiling.
    stack.console = ConsoleStack(
        app,
        f"{stack_id(settings.stage)}-console",
        rest_api=stack.api.rest_api,
        description=f"Loyalty platform ({settings.stage}): the marketers' console on S3 behind CloudFront",
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    return stack
