"""Create the resources from the same definitions the CDK app uses, and seed the demo programme."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from loyalty.domain.events import SOURCE
from loyalty.resources import (
    ACTIVITY_QUEUE,
    BUS_RULES,
    CAMPAIGN_RUN,
    CAMPAIGN_RUNS_BUCKET,
    CAMPAIGN_SCHEDULES,
    EMAIL_FEEDBACK_QUEUE,
    EVENT_BUS,
    LAKE_BUCKET,
    LAKE_ERASURE_QUEUE,
    MERGE_QUEUE,
    MESSAGE_TRIGGER_QUEUE,
    PRINT_BUCKET,
    SEGMENT_QUEUE,
    TABLE,
    BusRuleDef,
    IndexDef,
    QueueDef,
    TableDef,
)

QUEUES: tuple[QueueDef, ...] = (
    MERGE_QUEUE,
    ACTIVITY_QUEUE,
    MESSAGE_TRIGGER_QUEUE,
    EMAIL_FEEDBACK_QUEUE,
    SEGMENT_QUEUE,
    LAKE_ERASURE_QUEUE,
)

PEPPER_SECRET_NAME = "loyalty/api-key-pepper"  # noqa: S105 - a name, not a value
CURSOR_KEY_SECRET_NAME = "loyalty/cursor-key"  # noqa: S105 - a name, not a value
# The mailer's From address; provisioning verifies it in moto's SES (which refuses unverified senders).
LOCAL_SENDER_EMAIL = "gift-cards@loyalty.example"


@dataclass(frozen=True)
class LocalResources:
    table_name: str
    event_bus_name: str
    pepper_secret: str
    cursor_key_secret: str = CURSOR_KEY_SECRET_NAME
    queue_urls: dict[str, str] = field(default_factory=dict)  # by QueueDef.logical_id
    dead_letter_urls: dict[str, str] = field(default_factory=dict)
    sender_email: str = LOCAL_SENDER_EMAIL
    print_bucket: str = PRINT_BUCKET.local_name
    lake_bucket: str = LAKE_BUCKET.local_name
    campaign_runs_bucket: str = CAMPAIGN_RUNS_BUCKET.local_name
    # The campaign run state machine's ARN, known before loyalty_local.stepfunctions creates it
    # (its name is the prefix and the definition's local name), so the functions' settings carry it.
    campaign_run_arn: str = ""
    # Scheduled campaigns: the group in moto's Scheduler, the function its schedules invoke (made in
    # moto and routed in-process when the runtime runs workflows: runtime.py) and its role's ARN.
    campaign_schedule_group: str = CAMPAIGN_SCHEDULES.local_name
    campaign_schedule_target_arn: str = ""
    campaign_scheduler_role_arn: str = ""

    @property
    def buckets(self) -> dict[str, str]:
        """Local bucket names by BucketDef.logical_id (what the state machines' templates name)."""
        return {
            PRINT_BUCKET.logical_id: self.print_bucket,
            LAKE_BUCKET.logical_id: self.lake_bucket,
            CAMPAIGN_RUNS_BUCKET.logical_id: self.campaign_runs_bucket,
        }

    def function_environment(self) -> dict[str, str]:
        return {
            "TABLE_NAME": self.table_name,
            "EVENT_BUS_NAME": self.event_bus_name,
            "API_KEY_PEPPER_SECRET": self.pepper_secret,
            "CURSOR_KEY_SECRET": self.cursor_key_secret,
            "SENDER_EMAIL": self.sender_email,
            PRINT_BUCKET.env_var: self.print_bucket,
            LAKE_BUCKET.env_var: self.lake_bucket,
            CAMPAIGN_RUNS_BUCKET.env_var: self.campaign_runs_bucket,
            CAMPAIGN_RUN.arn_env_var: self.campaign_run_arn,
            CAMPAIGN_SCHEDULES.env_var: self.campaign_schedule_group,
            CAMPAIGN_SCHEDULES.target_env_var: self.campaign_schedule_target_arn,
            CAMPAIGN_SCHEDULES.role_env_var: self.campaign_scheduler_role_arn,
            "POWERTOOLS_SERVICE_NAME": "loyalty",
            "POWERTOOLS_METRICS_NAMESPACE": "Loyalty",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "TRACING_ENABLED": "false",
            **{q.env_var: self.queue_urls[q.logical_id] for q in QUEUES if q.logical_id in self.queue_urls},
        }


def projection(index: IndexDef) -> dict[str, Any]:
    if index.projection is None:
        return {"ProjectionType": "ALL"}
    return {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(index.projection)}


def index_definition(index: IndexDef) -> dict[str, Any]:
    return {
        "IndexName": index.name,
        "KeySchema": [
            {"AttributeName": index.partition_key, "KeyType": "HASH"},
            {"AttributeName": index.sort_key, "KeyType": "RANGE"},
        ],
        "Projection": projection(index),
    }


def add_missing_indexes(client: Any, definition: TableDef, name: str) -> list[str]:
    """A table kept from an older version (`make run` keeps its data) gets the indexes added since,
    one at a time and backfilled, as a CloudFormation update does on AWS."""
    existing = {
        i["IndexName"]
        for i in client.describe_table(TableName=name)["Table"].get("GlobalSecondaryIndexes", [])
    }
    added = []
    for index in definition.indexes:
        if index.name in existing:
            continue
        client.update_table(
            TableName=name,
            AttributeDefinitions=[
                {"AttributeName": index.partition_key, "AttributeType": "S"},
                {"AttributeName": index.sort_key, "AttributeType": "S"},
            ],
            GlobalSecondaryIndexUpdates=[{"Create": index_definition(index)}],
        )
        for _ in range(600):
            indexes = client.describe_table(TableName=name)["Table"].get("GlobalSecondaryIndexes", [])
            if any(i["IndexName"] == index.name and i.get("IndexStatus") == "ACTIVE" for i in indexes):
                break
            time.sleep(0.1)
        added.append(index.name)
    return added


def create_table(client: Any, definition: TableDef, name: str) -> None:
    attributes = {definition.partition_key, definition.sort_key}
    for index in definition.indexes:
        attributes |= {index.partition_key, index.sort_key}
    try:
        client.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)],
            KeySchema=[
                {"AttributeName": definition.partition_key, "KeyType": "HASH"},
                {"AttributeName": definition.sort_key, "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[index_definition(index) for index in definition.indexes],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        add_missing_indexes(client, definition, name)
        return
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": definition.ttl_attribute}
    )


def create_fifo_queue(sqs: Any, queue: QueueDef, prefix: str = "") -> tuple[str, str]:
    """The queue and its dead-letter queue, as the CDK app makes them (FIFO or standard, as the
    definition says); (dlq url, queue url)."""
    fifo = {"FifoQueue": "true"} if queue.fifo else {}
    dlq_url = sqs.create_queue(
        QueueName=prefix + queue.dead_letter_name,
        Attributes={**fifo, "MessageRetentionPeriod": str(14 * 24 * 3600)},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName=prefix + queue.local_name,
        Attributes={
            **fifo,
            "VisibilityTimeout": str(queue.visibility_timeout_s),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.max_receive_count}
            ),
        },
    )["QueueUrl"]
    return str(dlq_url), str(url)


def create_bus_rule(session: Any, rule: BusRuleDef, resources: LocalResources, prefix: str = "") -> None:
    """The rule and its queue target, as the CDK app makes them (moto delivers rule -> SQS). The
    queue policy that lets EventBridge send is the CDK app's; moto does not check one."""
    sqs, events = session.client("sqs"), session.client("events")
    url = resources.queue_urls[rule.target.logical_id]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    name = prefix + rule.local_name
    pattern = {"source": [SOURCE], "detail-type": list(rule.detail_types)}
    events.put_rule(Name=name, EventBusName=resources.event_bus_name, EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule=name, EventBusName=resources.event_bus_name, Targets=[{"Id": rule.target.logical_id, "Arn": arn}]
    )


def create_schedule_group(scheduler: Any, name: str) -> None:
    """The campaigns' schedule group, as the CDK app makes it (moto keeps it; the local runner,
    loyalty_local.scheduler, fires its schedules)."""
    try:
        scheduler.create_schedule_group(Name=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConflictException":
            raise


def bucket_name(prefix: str, name: str) -> str:
    """S3's rules: lower case, digits, dots and hyphens, at most 63 characters."""
    raw = (prefix + name).lower()
    cleaned = "".join(ch if ch.isalnum() or ch in ".-" else "-" for ch in raw).strip("-.")
    return cleaned[-63:].lstrip("-.")


def create_lake_bucket(s3: Any, name: str) -> None:
    """The lake's bucket as the CDK app makes it: private, encrypted (moto keeps the settings)."""
    try:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": s3.meta.region_name})
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    # Versioned as on AWS: an erasure's rewrite must delete the earlier versions, and locally too.
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def provision(
    session: boto3.session.Session, table_name: str | None = None, pepper: str | None = None
) -> LocalResources:
    """Idempotent: running it against existing resources changes nothing.

    `pepper` keeps key hashes valid across restarts of `make run` (moto forgets its secrets).
    """
    # Tests give each table its own queues, so one test's merges never reach another's worker.
    prefix = f"{table_name}-" if table_name else ""
    sqs = session.client("sqs")
    account = session.client("sts").get_caller_identity()["Account"]
    queue_urls: dict[str, str] = {}
    dead_letter_urls: dict[str, str] = {}
    for queue in QUEUES:
        dead_letter_urls[queue.logical_id], queue_urls[queue.logical_id] = create_fifo_queue(
            sqs, queue, prefix
        )
    resources = LocalResources(
        table_name=table_name or TABLE.local_name,
        event_bus_name=EVENT_BUS.local_name,
        pepper_secret=PEPPER_SECRET_NAME,
        queue_urls=queue_urls,
        dead_letter_urls=dead_letter_urls,
        print_bucket=f"{prefix}{PRINT_BUCKET.local_name}".lower()[:63].rstrip("-"),
        lake_bucket=bucket_name(prefix, LAKE_BUCKET.local_name),
        campaign_runs_bucket=bucket_name(prefix, CAMPAIGN_RUNS_BUCKET.local_name),
        campaign_run_arn=f"arn:aws:states:{session.region_name}:{account}:stateMachine:{prefix}{CAMPAIGN_RUN.local_name}",
        campaign_schedule_group=f"{prefix}{CAMPAIGN_SCHEDULES.local_name}"[-64:],
        campaign_schedule_target_arn=(
            f"arn:aws:lambda:{session.region_name}:{account}:function:{prefix}{CAMPAIGN_SCHEDULES.target}"
        ),
        campaign_scheduler_role_arn=f"arn:aws:iam::{account}:role/{prefix}loyalty-campaign-scheduler"[:2048],
    )
    create_schedule_group(session.client("scheduler"), resources.campaign_schedule_group)
    try:
        s3 = session.client("s3")
        s3.create_bucket(
            Bucket=resources.print_bucket,
            CreateBucketConfiguration={"LocationConstraint": s3.meta.region_name},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    create_lake_bucket(session.client("s3"), resources.lake_bucket)
    create_lake_bucket(session.client("s3"), resources.campaign_runs_bucket)  # private, encrypted alike
    create_table(session.client("dynamodb"), TABLE, resources.table_name)
    events = session.client("events")
    try:
        events.create_event_bus(Name=resources.event_bus_name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise
    for rule in BUS_RULES:
        create_bus_rule(session, rule, resources, prefix)
    try:
        session.client("sesv2").create_email_identity(EmailIdentity=resources.sender_email)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "AlreadyExistsException":
            raise
    secrets_client = session.client("secretsmanager")
    try:
        secrets_client.describe_secret(SecretId=resources.pepper_secret)
    except ClientError:
        secrets_client.create_secret(
            Name=resources.pepper_secret, SecretString=pepper or secrets.token_hex(32)
        )
    try:
        secrets_client.describe_secret(SecretId=resources.cursor_key_secret)
    except ClientError:
        # A new key per moto: cursors issued before a restart of `make run` are then a 400, as
        # after a key replacement on AWS.
        secrets_client.create_secret(Name=resources.cursor_key_secret, SecretString=secrets.token_hex(32))
    return resources
