"""SES's bounces and complaints, back into the platform: the mailer sends through a configuration
set whose event destination is an encrypted SNS topic; the topic delivers (raw) into the feedback
queue (a WorkQueues queue, consumed by the `feedback` job), which turns the recipient's email
consent off (loyalty.services.email_feedback)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_ses as ses
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from loyalty_infra.config import DeploySettings
from loyalty_infra.queues import dead_letter_queue


class EmailFeedback(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, queue: sqs.IQueue
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        key = kms.Key(
            self,
            "TopicKey",
            description=f"Encrypts the loyalty {settings.stage} SES feedback topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,  # notifications in flight only
            pending_window=Duration.days(7),
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="SesUsesTheKey",
                principals=[iam.ServicePrincipal("ses.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name=f"Loyalty {settings.stage} SES feedback",
            master_key=key,
            enforce_ssl=True,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="SesPublishes",
                principals=[iam.ServicePrincipal("ses.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        # What SNS cannot deliver into the queue waits in a dead-letter queue (with a depth alarm).
        self.delivery_failures = dead_letter_queue(
            self, "DeliveryFailures", holds="SES bounce and complaint notifications SNS could not deliver"
        )
        self.topic.add_subscription(
            subscriptions.SqsSubscription(
                queue, raw_message_delivery=True, dead_letter_queue=self.delivery_failures
            )
        )
        self.configuration_set = ses.ConfigurationSet(
            self, "ConfigurationSet", configuration_set_name=f"loyalty-{settings.stage}"
        )
        self.configuration_set.add_event_destination(
            "Feedback",
            destination=ses.EventDestination.sns_topic(self.topic),
            events=[ses.EmailSendingEvent.BOUNCE, ses.EmailSendingEvent.COMPLAINT],
        )
