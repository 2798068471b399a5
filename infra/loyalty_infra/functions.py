"""One Lambda function per FunctionDef and JobDef in the route table, plus the authorizer.

Every function gets the same runtime, architecture, layers, environment and logging; what differs
is taken from its definition (memory, timeout, description) and from NEEDS, the one place that says
which data each function may touch. A function missing from NEEDS fails the synth, so a new
function never silently inherits permissions. Two grants follow from a JobDef's own flags instead:
`publishes_events` gives events:PutEvents on the bus (see `needs_of`), and `consumes_stream` gives
stream read through the event source that the OutboxStream construct attaches.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace

from aws_cdk import Duration, Size, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from loyalty.resources import (
    AUTHORIZER,
    CAMPAIGN_RUNS_BUCKET,
    FUNCTIONS,
    JOBS,
    LAKE_BUCKET,
    LAKE_DATABASE,
    MERGE_QUEUE,
    PRINT_BUCKET,
    SEGMENT_QUEUE,
    FunctionDef,
    JobDef,
    QueueDef,
    construct_name,
)
from loyalty_infra.config import (
    ASSET_EXCLUDES,
    DEPS_LAYER_DIR,
    FUNCTIONS_DIR,
    SHARED_LAYER_DIR,
    DeploySettings,
)
from loyalty_infra.data import DataTable
from loyalty_infra.events import DomainEventBus
from loyalty_infra.lake import Lake
from loyalty_infra.waivers import (
    CAMPAIGN_RUN_FILES_PREFIX,
    PRINT_FILES_PREFIX,
    SMS_NEEDS_ANY_RESOURCE,
    TABLE_KEY_DATA_KEYS,
    XRAY_NEEDS_ANY_RESOURCE,
    waive,
)

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
HANDLER = "handler.handler"
METRICS_NAMESPACE = "Loyalty"

# What the code calls (see loyalty.adapters.dynamo): TransactWriteItems is authorised per item as
# Put/Update/Delete/ConditionCheck. No Scan, no BatchWriteItem, no table-management actions.
TABLE_READ_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
)
TABLE_WRITE_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")


class TableAccess(enum.Enum):
    NONE = "none"
    READ = "read"
    READ_WRITE = "read-write"


@dataclass(frozen=True)
class Needs:
    table: TableAccess = TableAccess.NONE
    pepper: bool = False  # reads the API-key pepper secret (it hashes keys)
    cursor_key: bool = False  # reads the list-cursor key (it serves paged lists)
    publish_events: bool = False  # events:PutEvents on the domain bus; set from JobDef.publishes_events
    send_email: bool = False  # ses:SendEmail from the configured sender address only (gets SENDER_EMAIL)
    enqueue: tuple[QueueDef, ...] = ()  # sqs:SendMessage on these work queues (gets their URLs)
    send_sms: bool = False  # sns:Publish to phone numbers (no topic)
    print_files: str | None = None  # "write" (put print files) or "read" (list them); gets PRINT_BUCKET
    webhook: bool = False  # reads the brand's webhook secret (the api channel); gets WEBHOOK_SECRET
    lake_write: bool = False  # puts Parquet objects into the lake bucket (gets LAKE_BUCKET)
    lake_query: bool = False  # queries the lake through the Athena workgroup and Glue tables
    # The campaign runs bucket: "prepare" (read and write runs/) or "read" (read runs/);
    # gets CAMPAIGN_RUNS_BUCKET.
    campaign_runs: str | None = None
    lake_compact: bool = False  # rewrites the lake's objects: compaction and erasure (gets LAKE_BUCKET)
    # Creates, updates and deletes schedules in the campaign schedule group and passes the role they
    # invoke campaign-schedule with (gets CAMPAIGN_SCHEDULE_GROUP, its target and role ARNs).
    campaign_schedules: bool = False


# Domain events leave through the outbox (written with the change, published from the stream), so
# no HTTP function and no job but the publisher may put events on the bus.
NEEDS: Mapping[str, Needs] = {
    "health": Needs(),
    # Queues merges (POST /v1/merges, links with on_conflict merge) and erases profiles; serves
    # the timeline, a paged list (the cursor key).
    "customers": Needs(table=TableAccess.READ_WRITE, enqueue=(MERGE_QUEUE,), cursor_key=True),
    "admin": Needs(table=TableAccess.READ_WRITE, pepper=True, cursor_key=True),
    "transactions": Needs(table=TableAccess.READ_WRITE, cursor_key=True),
    # Evaluates carts (reads) and issues coupons (writes).
    "cart": Needs(table=TableAccess.READ_WRITE, cursor_key=True),
    # Also saves segments, and queues a new or changed rule's background pass on the segments queue.
    "offers": Needs(table=TableAccess.READ_WRITE, cursor_key=True, enqueue=(SEGMENT_QUEUE,)),
    # Saves campaign definitions and their derived segments (whose background pass it queues on the
    # segments queue), and keeps scheduled campaigns' schedules (Scheduler: see `campaign_schedules`).
    "campaigns": Needs(
        table=TableAccess.READ_WRITE, cursor_key=True, enqueue=(SEGMENT_QUEUE,), campaign_schedules=True
    ),
    # Reads the campaign and starts its run (the state machine: the run control's grant).
    "campaign-schedule": Needs(table=TableAccess.READ_WRITE),
    # Both hash gift-card PINs with the pepper (stored-value redemptions go through redemptions).
    "redemptions": Needs(table=TableAccess.READ_WRITE, pepper=True),
    "accounts": Needs(table=TableAccess.READ_WRITE, pepper=True, cursor_key=True),
    # Stores templates and reads the programme that names them; no secret but the cursor key (which
    # also checks unsubscribe links); lists the print files.
    "messaging": Needs(table=TableAccess.READ_WRITE, cursor_key=True, print_files="read"),
    AUTHORIZER.name: Needs(table=TableAccess.READ, pepper=True),
    # Jobs: the sweeper queries gsi2 for what falls due and writes ledger and profiles.
    "sweeper": Needs(table=TableAccess.READ_WRITE),
    # Reads only the stream (granted with its event source) and publishes: no table access at all.
    "publisher": Needs(),
    # Reads queued messages (by key and the pending index), claims and marks them, sends through SES,
    # SNS (SMS) and the print-file bucket; the cursor key derives the unsubscribe links' key.
    "mailer": Needs(
        table=TableAccess.READ_WRITE,
        send_email=True,
        cursor_key=True,
        send_sms=True,
        print_files="write",
        webhook=True,
    ),
    # Moves a merged profile's records (receive and delete come with its SQS event source).
    "merger": Needs(table=TableAccess.READ_WRITE),
    # Reads transactions, challenges and badges; writes progress, badges, rewards (receive and
    # delete come with its SQS event source).
    "activity": Needs(table=TableAccess.READ_WRITE),
    # Keeps events (conditional puts), makes identified non-members and links anonymous ids.
    "events": Needs(table=TableAccess.READ_WRITE),
    # Queries the due identifications (gsi2) and a visitor's timeline (gsi3), moves its events.
    "attribution": Needs(table=TableAccess.READ_WRITE),
    # Reads the programme and templates, puts messages (receive and delete come with its event source).
    "triggers": Needs(table=TableAccess.READ_WRITE),
    # Finds the customer by email link and turns email consent off (receive and delete come with its
    # event source).
    "feedback": Needs(table=TableAccess.READ_WRITE),
    # Reads only the stream (granted with its event source) and puts Parquet into the lake bucket.
    "lake": Needs(lake_write=True),
    # Reads the lake through Athena; reads the programme (tiers and the default time zone that
    # segment previews evaluate with); no secret.
    "reports": Needs(table=TableAccess.READ, lake_query=True),
    # Reads the lake through Athena and writes scores onto profiles (conditional UpdateItems).
    "scores": Needs(table=TableAccess.READ_WRITE, lake_query=True),
    # The campaign run's tasks (loyalty.campaigns): Prepare reads the audience and writes the batch
    # files; Batch reads its batch file and marks items; Finish reads the outcomes, writes the run.
    # Reads the campaign and its segment's member rows, notes the audience on the run's record;
    # reads a manifest already written (a retried run reuses it) and writes the batch files.
    "campaign-prepare": Needs(table=TableAccess.READ_WRITE, campaign_runs="prepare"),
    "campaign-batch": Needs(table=TableAccess.READ_WRITE, campaign_runs="read"),
    "campaign-finish": Needs(table=TableAccess.READ_WRITE),
    # Reads profiles, transactions (gsi1), timelines (gsi3), the segments and the due index (gsi2);
    # writes memberships, member rows and size counters; its sweep sends due customers back onto
    # its own queue, for its consumers to evaluate in parallel, and a segment's background pass
    # reads the live customers from the lake (Athena) and queues its next page there (receive and
    # delete come with its event source; the schedule's invoke with its Scheduler role).
    "segments": Needs(table=TableAccess.READ_WRITE, lake_query=True, enqueue=(SEGMENT_QUEUE,)),
    # Rewrites the lake's objects (no table, no Athena); receive and delete on the erasure queue
    # come with its event source.
    "compactor": Needs(lake_compact=True),
}

Definition = FunctionDef | JobDef


def needs_of(definition: Definition) -> Needs:
    """NEEDS for the function, with event publishing taken from the JobDef's flag."""
    needs = NEEDS[definition.name]
    if isinstance(definition, JobDef) and definition.publishes_events:
        needs = replace(needs, publish_events=True)
    return needs


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        data: DataTable,
        bus: DomainEventBus,
        pepper: secretsmanager.ISecret,
        cursor_key: secretsmanager.ISecret,
        work_queues: Mapping[str, sqs.IQueue] | None = None,
        print_bucket: s3.IBucket | None = None,
        configuration_set: str | None = None,
        webhook_secret: secretsmanager.ISecret | None = None,
        lake: Lake | None = None,
        campaign_runs_bucket: s3.IBucket | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._lake = lake
        self._campaign_runs_bucket = campaign_runs_bucket
        self._webhook_secret = webhook_secret
        self._configuration_set = configuration_set
        self._work_queues = dict(work_queues or {})
        self._print_bucket = print_bucket
        self._settings = settings
        self._data = data
        self._bus = bus
        self._pepper = pepper
        self._cursor_key = cursor_key
        definitions: tuple[Definition, ...] = (*FUNCTIONS, AUTHORIZER, *JOBS)
        names = [d.name for d in definitions]
        if len(names) != len(set(names)):
            raise ValueError(f"function and job names must be unique: {sorted(names)}")
        if set(names) != set(NEEDS):
            raise ValueError(
                f"NEEDS and the route table's functions differ: missing {sorted(set(names) - set(NEEDS))}, "
                f"stale {sorted(set(NEEDS) - set(names))}"
            )
        if not (DEPS_LAYER_DIR / "python").is_dir():
            raise FileNotFoundError(
                f"{DEPS_LAYER_DIR / 'python'} is missing: run `make deps-layer` before synthesising"
            )
        self.layers: list[lambda_.ILayerVersion] = [
            lambda_.LayerVersion(
                self,
                "SharedLayer",
                code=lambda_.Code.from_asset(str(SHARED_LAYER_DIR), exclude=list(ASSET_EXCLUDES)),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
                description="loyalty: the platform's shared code",
            ),
            lambda_.LayerVersion(
                self,
                "DepsLayer",
                code=lambda_.Code.from_asset(str(DEPS_LAYER_DIR), exclude=list(ASSET_EXCLUDES)),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
                description="Third-party dependencies (powertools, pydantic, ...) built for arm64",
            ),
        ]
        self.environment = {
            "TABLE_NAME": data.table.table_name,
            "EVENT_BUS_NAME": bus.bus.event_bus_name,
            # The secret's ARN: functions fetch the value at run time with their own grant.
            "API_KEY_PEPPER_SECRET": pepper.secret_arn,
            "CURSOR_KEY_SECRET": cursor_key.secret_arn,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "TRACING_ENABLED": "true" if settings.tracing else "false",
        }
        self.by_name: dict[str, lambda_.Function] = {f.name: self._function(f) for f in FUNCTIONS}
        self.authorizer = self._function(AUTHORIZER)
        # Jobs: no route reaches them; the Schedules and OutboxStream constructs wire their triggers.
        self.jobs: dict[str, lambda_.Function] = {j.name: self._function(j) for j in JOBS}

    def _function(self, definition: Definition) -> lambda_.Function:
        name = construct_name(definition.name)
        code_dir = FUNCTIONS_DIR / definition.name
        if not (code_dir / "handler.py").is_file():
            raise FileNotFoundError(f"{code_dir / 'handler.py'} is missing for function {definition.name!r}")
        log_group = logs.LogGroup(self, f"{name}Logs", retention=self._settings.log_retention)
        # A role per function, writing only to its own log group: no AWSLambdaBasicExecutionRole.
        role = iam.Role(
            self,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"loyalty {definition.name} function",
        )
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            name,
            description=definition.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(code_dir), exclude=list(ASSET_EXCLUDES)),
            layers=self.layers,
            memory_size=definition.memory_mb,
            timeout=Duration.seconds(definition.timeout_s),
            ephemeral_storage_size=(
                Size.mebibytes(definition.tmp_mb)
                if isinstance(definition, JobDef) and definition.tmp_mb
                else None
            ),
            environment={
                **self.environment,
                "POWERTOOLS_SERVICE_NAME": definition.name,
                **({"SENDER_EMAIL": self._settings.sender_email} if needs_of(definition).send_email else {}),
                **{
                    q.env_var: self._work_queues[q.logical_id].queue_url for q in needs_of(definition).enqueue
                },
                **self._messaging_environment(needs_of(definition)),
                **self._lake_environment(needs_of(definition)),
                **self._campaign_environment(needs_of(definition)),
            },
            log_group=log_group,
            role=role,
            tracing=lambda_.Tracing.ACTIVE if self._settings.tracing else lambda_.Tracing.DISABLED,
        )
        self._grant(role, needs_of(definition))
        # The pinned runtime and the rest that holds for every function: waivers.apply_waivers.
        if self._settings.tracing:
            waive(role.node.find_child("DefaultPolicy"), XRAY_NEEDS_ANY_RESOURCE)
        return function

    def _messaging_environment(self, needs: Needs) -> dict[str, str]:
        env: dict[str, str] = {}
        if needs.print_files and self._print_bucket is not None:
            env[PRINT_BUCKET.env_var] = self._print_bucket.bucket_name
        if needs.send_email or needs.print_files:
            env["PUBLIC_BASE_URL"] = self._settings.public_base_url
        if needs.send_email and self._configuration_set:
            env["SES_CONFIGURATION_SET"] = self._configuration_set
        if needs.webhook and self._webhook_secret is not None:
            env["WEBHOOK_SECRET"] = self._webhook_secret.secret_arn
        return env

    def _campaign_environment(self, needs: Needs) -> dict[str, str]:
        if needs.campaign_runs is None:
            return {}
        if self._campaign_runs_bucket is None:
            raise ValueError("a function needs the campaign runs bucket but the stack made none")
        return {CAMPAIGN_RUNS_BUCKET.env_var: self._campaign_runs_bucket.bucket_name}

    def _lake_environment(self, needs: Needs) -> dict[str, str]:
        if not (needs.lake_write or needs.lake_query or needs.lake_compact):
            return {}
        if self._lake is None:
            raise ValueError("a function needs the data lake but the stack made none")
        environment = {LAKE_BUCKET.env_var: self._lake.bucket.bucket_name}
        if needs.lake_query:
            environment |= {
                "REPORT_ENGINE": "athena",
                "ATHENA_WORKGROUP": self._lake.workgroup.ref,
                "LAKE_DATABASE": LAKE_DATABASE,
            }
        return environment

    def _grant(self, role: iam.Role, needs: Needs) -> None:
        table = self._data.table
        if needs.table is not TableAccess.NONE:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="ReadData",
                    actions=list(TABLE_READ_ACTIONS),
                    resources=[table.table_arn, *self._data.index_arns()],
                )
            )
        if needs.table is TableAccess.READ_WRITE:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="WriteData", actions=list(TABLE_WRITE_ACTIONS), resources=[table.table_arn]
                )
            )
        key = self._data.key
        if key is not None and needs.table is TableAccess.READ:
            key.grant_decrypt(role)
        elif key is not None and needs.table is TableAccess.READ_WRITE:
            key.grant_encrypt_decrypt(role)
            waive(role.node.find_child("DefaultPolicy"), TABLE_KEY_DATA_KEYS)
        if needs.pepper:
            self._pepper.grant_read(role)
        if needs.cursor_key:
            self._cursor_key.grant_read(role)
        for queue in needs.enqueue:
            self._work_queues[queue.logical_id].grant_send_messages(role)
        if needs.lake_write and self._lake is not None:
            self._lake.grant_write(role)
        if needs.lake_query and self._lake is not None:
            self._lake.grant_query(role)
        if needs.lake_compact and self._lake is not None:
            self._lake.grant_compact(role)
        if needs.publish_events:
            # events:PutEvents on this one bus, for the platform's Source and DetailTypes only.
            self._bus.grant_publish(role)
        self._grant_messaging(role, needs)
        self._grant_campaign_runs(role, needs)
        if needs.send_email:
            # SES authorises a send against the identity that covers the From address: the address
            # itself or its verified domain. Only those two, and only with that exact From address.
            stack = Stack.of(role)
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="SendEmail",
                    actions=["ses:SendEmail"],
                    resources=[
                        stack.format_arn(service="ses", resource="identity", resource_name=identity)
                        for identity in (self._settings.sender_email, self._settings.sender_domain)
                    ]
                    # A send naming the configuration set (bounce and complaint events) is
                    # authorised against it too.
                    + [
                        stack.format_arn(service="ses", resource="configuration-set", resource_name=name)
                        for name in (self._configuration_set,)
                        if name
                    ],
                    conditions={"StringEquals": {"ses:FromAddress": self._settings.sender_email}},
                )
            )

    def _grant_campaign_runs(self, role: iam.Role, needs: Needs) -> None:
        bucket = self._campaign_runs_bucket
        if needs.campaign_runs is None or bucket is None:
            return
        if needs.campaign_runs == "prepare":
            statements = [
                iam.PolicyStatement(
                    sid="ReadWriteRunFiles",
                    actions=["s3:GetObject", "s3:PutObject"],
                    resources=[bucket.arn_for_objects("runs/*")],
                ),
            ]
        else:
            statements = [
                iam.PolicyStatement(
                    sid="ReadRunFiles", actions=["s3:GetObject"], resources=[bucket.arn_for_objects("runs/*")]
                )
            ]
        for statement in statements:
            role.add_to_principal_policy(statement)
        waive(role.node.find_child("DefaultPolicy"), CAMPAIGN_RUN_FILES_PREFIX)

    def _grant_messaging(self, role: iam.Role, needs: Needs) -> None:
        """The print-file bucket (one prefix), SMS and the webhook secret."""
        if needs.webhook and self._webhook_secret is not None:
            self._webhook_secret.grant_read(role)
        if needs.print_files and self._print_bucket is not None:
            bucket = self._print_bucket
            if needs.print_files == "write":
                statement = iam.PolicyStatement(
                    sid="WritePrintFiles",
                    actions=["s3:PutObject"],
                    resources=[bucket.arn_for_objects("print/*")],
                )
            else:
                statement = iam.PolicyStatement(
                    sid="ListPrintFiles",
                    actions=["s3:ListBucket"],
                    resources=[bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": ["print/*"]}},
                )
            role.add_to_principal_policy(statement)
            waive(role.node.find_child("DefaultPolicy"), PRINT_FILES_PREFIX)
        if needs.send_sms:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="SendSms",
                    actions=["sns:Publish"],
                    resources=["*"],
                )
            )
            waive(role.node.find_child("DefaultPolicy"), SMS_NEEDS_ANY_RESOURCE)
