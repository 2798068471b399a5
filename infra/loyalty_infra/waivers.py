"""Every exception to the rule packs, with its reason, in this one module.

Three packs check the synthesised stack: cdk-nag's AwsSolutions and Serverless packs (on every
synth, as validation plugins) and checkov (from the infra tests, on the template). A finding is
either fixed in the construct or answered here by a `Waiver`: the rules it answers, in all packs
at once, and why the rule does not fit. Nothing else in the app writes a reason.

Two ways a waiver reaches a resource:

- `waive(construct, WAIVER)` where the construct is made and only its maker knows the waiver
  applies (the public health route, the pepper's rotation, a grant that needs Resource '*');
- `apply_waivers(stack, settings)`, once the stack is built, for what holds for every resource of
  a type (every function's pinned runtime, every log group's encryption) or follows from the
  template itself (a queue that some other resource names as its dead-letter target).

cdk-nag rules become acknowledgements (`Validations.of(...).acknowledge`); checkov checks become
`Metadata.checkov.skip` entries with the reason as the comment, which checkov reports as skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_wafv2 as wafv2
from constructs import IConstruct

from loyalty_infra.config import DeploySettings
from loyalty_infra.inventory import dead_letter_queues

CHECKOV_PREFIX = "CKV"


@dataclass(frozen=True)
class Waiver:
    """An exception: cdk-nag rule ids (with their [finding] suffix where the rule has one) and
    checkov check ids, answered by one reason."""

    rules: tuple[str, ...]
    reason: str

    @property
    def nag_rules(self) -> tuple[str, ...]:
        return tuple(r for r in self.rules if not r.startswith(CHECKOV_PREFIX))

    @property
    def checkov_checks(self) -> tuple[str, ...]:
        return tuple(r for r in self.rules if r.startswith(CHECKOV_PREFIX))


# ---- every function (apply_waivers) ---------------------------------------------------------

PYTHON_RUNTIME_PINNED = Waiver(
    ("AwsSolutions-L1", "Serverless-LambdaLatestVersion"),
    "python3.13 is pinned on purpose: the dependency layer is built from cp313 arm64 binary wheels "
    "(Makefile LAMBDA_PYTHON=3.13) and must match the runtime exactly; moving to a newer Python is a "
    "deliberate change of both together.",
)
FAILURES_HAVE_A_DESTINATION = Waiver(
    ("Serverless-LambdaDLQ", "CKV_AWS_116"),
    "A function dead-letter queue only receives failed asynchronous invocations. API Gateway (routes "
    "and the authorizer) and event source mappings invoke synchronously: failures go back to the "
    "caller, to a stream mapping's on-failure queue, or to the source queue and then its redrive "
    "dead-letter queue. Jobs that EventBridge Scheduler invokes asynchronously have an on-failure "
    "destination (an SQS queue), which records the error as well as the event. Every one of those "
    "queues has a depth alarm.",
)
NO_VPC = Waiver(
    ("CKV_AWS_117",),
    "The functions reach only AWS APIs (DynamoDB, EventBridge, Secrets Manager, SES, SQS) over TLS with "
    "IAM-signed requests; there is no private resource to reach. A VPC would add NAT gateways or "
    "interface endpoints (paid per hour, idle or not) and ENI set-up, without narrowing what the "
    "functions can reach, which their roles already decide.",
)
NO_RESERVED_CONCURRENCY = Waiver(
    ("CKV_AWS_115",),
    "Load is bounded before the functions: stage and usage-plan throttling (and the WAF rate rule when "
    "on) for the API, one batch per shard at a time for stream consumers, one run per schedule for "
    "jobs. Reserving concurrency per function would split the account's pool and turn bursts into "
    "throttles; a Throttles alarm per function watches the account limit instead.",
)
ENVIRONMENT_HOLDS_NO_SECRETS = Waiver(
    ("CKV_AWS_173",),
    "The environment holds resource names, ARNs, switches and the sender address, never a secret: the "
    "pepper is fetched from Secrets Manager by ARN at run time (a test asserts no secret value is in "
    "any environment). Lambda encrypts environments at rest with its service key; a customer-managed "
    "key would protect nothing secret.",
)
TRACING_SWITCHABLE = Waiver(
    ("Serverless-LambdaTracing", "Serverless-APIGWXrayEnabled", "CKV_AWS_73"),
    "X-Ray is switched by the `tracing` context setting, off by default: the X-Ray SDK adds about "
    "400 ms to every cold start (design.md). `-c tracing=true` turns on active tracing for every "
    "function and the API stage; this waiver is then not applied.",
)

# ---- the table, every log group, queue and stage (apply_waivers) ----------------------------

TABLE_KEY_SWITCHABLE = Waiver(
    ("CKV_AWS_119",),
    "The table is encrypted at rest with the AWS-managed key (aws/dynamodb) unless the `tableCmk` "
    "context setting asks for a rotating customer-managed key (billed monthly, with per-request key "
    "charges) for deployments that need key-level control; this waiver is then not applied.",
)

LOGS_SERVICE_ENCRYPTED = Waiver(
    ("CKV_AWS_158",),
    "CloudWatch Logs encrypts every log group at rest with service-managed keys. The logs hold no "
    "request bodies and no secrets (data tracing is off, access logs name the key id, never the key), "
    "so a customer-managed key would add a key and a key policy for the logs service without "
    "narrowing who can read them; IAM decides that.",
)
SQS_MANAGED_ENCRYPTION = Waiver(
    ("CKV_AWS_27",),
    "The queue is encrypted at rest with SQS-managed keys (SqsManagedSseEnabled: true); checkov's "
    "CKV_AWS_27 recognises only KmsMasterKeyId. SSE-SQS rather than a KMS key so that EventBridge "
    "Scheduler, Lambda and SNS deliver to it with their own permissions, no key policy to keep in step.",
)
IS_DEAD_LETTER_QUEUE = Waiver(
    ("AwsSolutions-SQS3", "Serverless-SQSRedrivePolicy"),
    "This queue is itself a dead-letter queue: another queue, function, event source mapping, schedule "
    "or subscription names it as the place for what it could not deliver or process. Nothing consumes "
    "it automatically, so a dead-letter queue of its own would never receive anything; its depth is "
    "alarmed on instead.",
)
NO_RESPONSE_CACHE = Waiver(
    ("CKV_AWS_120",),
    "Answers are per caller and must be current (balances, holds, redemptions, idempotent replays): a "
    "stage cache would serve one request's answer to the next. The authorizer's verdict is cached for "
    "5 s; a stage cache would also be billed per hour whether used or not.",
)
WAF_OPTIONAL = Waiver(
    ("AwsSolutions-APIG3",),
    "The web ACL is a context setting (`-c waf=true` attaches AWS managed rule groups and a per-IP rate "
    "limit, billed monthly per ACL and rule). Without it every non-health route still needs a valid "
    "API key checked by the authorizer, and the stage and usage plan throttle requests.",
)

# ---- where the maker knows (waive) ----------------------------------------------------------

PUBLIC_ROUTE = Waiver(
    ("AwsSolutions-APIG4", "AwsSolutions-COG4", "CKV_AWS_59"),
    "The route is PUBLIC in the route table by design (the contract: health answers without a key); it "
    "reads no data and is covered by stage throttling and, when on, the web ACL.",
)
API_KEYS_NOT_COGNITO = Waiver(
    ("AwsSolutions-COG4",),
    "Callers are tills and shop backends, not signed-in users: they authenticate with API keys checked "
    "(hashed) by the Lambda REQUEST authorizer, so there is no Cognito user pool to validate tokens "
    "against.",
)
API_GATEWAY_LOGGING_ROLE = Waiver(
    (
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AmazonAPIGatewayPushToCloudWatchLogs]",
    ),
    "API Gateway's account-level logging role: AWS's managed policy is exactly the permission API Gateway "
    "documents for execution logs, and the role serves only that.",
)
XRAY_NEEDS_ANY_RESOURCE = Waiver(
    ("AwsSolutions-IAM5[Resource::*]",),
    "X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords do not support resource-level "
    "permissions, so AWS requires Resource '*'.",
)
TABLE_KEY_DATA_KEYS = Waiver(
    ("AwsSolutions-IAM5[Action::kms:GenerateDataKey*]", "AwsSolutions-IAM5[Action::kms:ReEncrypt*]"),
    "Writes to a table encrypted with the customer-managed key need KMS data-key generation and "
    "re-encryption; the grant names only that one key.",
)
LIST_STREAMS_NEEDS_ANY_RESOURCE = Waiver(
    ("AwsSolutions-IAM5[Resource::*]",),
    "dynamodb:ListStreams, which Lambda needs to read the table's stream, does not support "
    "resource-level permissions (Service Authorization Reference), so it is granted on '*'; "
    "DescribeStream, GetShardIterator and GetRecords name only this table's stream.",
)
PEPPER_NOT_ROTATED = Waiver(
    ("AwsSolutions-SMG4",),
    "The pepper is an HMAC key over stored API-key hashes, not a credential for another system: "
    "rotating it makes every issued key fail authentication. It is rotated only as a planned re-keying "
    "(issue new keys, then swap the pepper), never on a schedule.",
)
PEPPER_AWS_MANAGED_KEY = Waiver(
    ("CKV_AWS_149",),
    "The pepper is encrypted with Secrets Manager's AWS-managed key; only the roles that hash keys or "
    "PINs may read it, each by its own grant on this secret. A customer-managed key would add a key "
    "and its policy without narrowing who can read the value.",
)
CURSOR_KEY_NOT_ROTATED = Waiver(
    ("AwsSolutions-SMG4",),
    "The cursor key signs list cursors, which live 24 hours; it is no credential for another system. "
    "Replacing it only makes the cursors in flight a 400 (clients list again from the first page) and "
    "the unsubscribe links in messages already sent invalid (their keyed HMAC derives from it), so it "
    "is replaced by hand when needed rather than by a rotation function.",
)
CURSOR_KEY_AWS_MANAGED_KEY = Waiver(
    ("CKV_AWS_149",),
    "The cursor key is encrypted with Secrets Manager's AWS-managed key; only the roles of the "
    "functions that serve paged lists may read it, each by its own grant on this secret.",
)
SQS_SOURCE_USES_REDRIVE = Waiver(
    ("Serverless-LambdaEventSourceMappingDestination",),
    "An SQS event source mapping has no on-failure destination (Lambda supports those for streams "
    "and Kafka only): a merge message that keeps failing goes to the queue's own dead-letter queue "
    "after maxReceiveCount deliveries, and that queue has a depth alarm.",
)
PRINT_FILES_BUCKET = Waiver(
    ("AwsSolutions-S1", "CKV_AWS_18", "CKV_AWS_145", "CKV2_AWS_62"),
    "Direct-mail print files: written by the mailer and listed by the messaging function only (their "
    "roles' grants), SSE-S3 encrypted, expiring after 90 days. CloudTrail data events are the place "
    "for an access trail if the brand wants one; no other system reacts to new files, so there are no "
    "event notifications.",
)
PRINT_FILES_PREFIX = Waiver(
    ("AwsSolutions-IAM5[Resource::<PrintFiles81538C72.Arn>/print/*]",),
    "The mailer may put objects under print/ of the print-file bucket only, and the messaging function "
    "list that prefix only: the object keys are made per batch, so the grant names the prefix.",
)
SMS_NEEDS_ANY_RESOURCE = Waiver(
    ("AwsSolutions-IAM5[Resource::*]", "CKV_AWS_111"),
    "sns:Publish to a phone number (an SMS) has no resource to name: AWS requires Resource '*' for it. "
    "The role may publish nothing else (no topic is granted) and SNS's account spend limit caps SMS.",
)
WEBHOOK_SECRET_NOT_ROTATED = Waiver(
    ("AwsSolutions-SMG4",),
    "The webhook secret is shared with the brand, which verifies our signatures with it: a rotation "
    "must be agreed with the brand (both secrets accepted for a while), so it is replaced by hand.",
)
WEBHOOK_SECRET_AWS_MANAGED_KEY = Waiver(
    ("CKV_AWS_149",),
    "The webhook secret is encrypted with Secrets Manager's AWS-managed key; only the mailer's role may "
    "read it, by its own grant on this secret.",
)
ACCESS_LOG_BUCKET = Waiver(
    ("AwsSolutions-S1", "CKV_AWS_18"),
    "This bucket receives the server access logs of the lake and query-result buckets; logging its "
    "own access would need another bucket, and so on without end. It is private, encrypted, TLS only "
    "and versioned, and its objects expire after a year.",
)
LAKE_S3_MANAGED_KEY = Waiver(
    ("CKV_AWS_145",),
    "S3-managed keys (SSE-S3) encrypt the lake, its query results and its access logs: the lake holds "
    "pseudonymous ids and business facts, its only personal columns (segment facets) are in the "
    "customers and events kinds, which erasure rewrites (loyalty.services.compaction), and Athena and "
    "Glue read SSE-S3 objects with no key policy to keep in step. A customer-managed key can replace "
    "it by changing the buckets' encryption and granting the reports and lake roles kms:Decrypt.",
)
LAKE_NO_EVENT_NOTIFICATIONS = Waiver(
    ("CKV2_AWS_62",),
    "Nothing reacts to objects landing in these buckets: the lake is read on demand by Athena through "
    "partition projection, query results by the function that ran the query.",
)
LAKE_OBJECTS = Waiver(
    (
        "AwsSolutions-IAM5[Resource::<LakeBucketB1D32E10.Arn>/*]",
        "AwsSolutions-IAM5[Resource::<LakeQueryResultsD271E3DC.Arn>/*]",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/loyalty_lake/*]",
    ),
    "Objects of one bucket: the lake job puts Parquet files under any key of the lake bucket (the key "
    "names the kind, day and batch); the reports function reads the lake's objects and writes and "
    "reads Athena's result objects in the results bucket, and reads the Glue tables of the one lake "
    "database. S3 and Glue authorise objects and tables by ARN, so a prefix is the narrowest grant.",
)
CAMPAIGN_RUN_FILES_BUCKET = Waiver(
    ("AwsSolutions-S1", "CKV_AWS_18", "CKV_AWS_145", "CKV2_AWS_62"),
    "Campaign runs' working files (audience batch files, manifests, map results): written and read by "
    "the campaign run tasks and the run's state machine only (their roles' grants), SSE-S3 encrypted, "
    "expiring after 30 days. They hold item ids, nothing else; CloudTrail data events are the place for "
    "an access trail. Nothing reacts to new objects: the state machine reads the manifest it was told.",
)
CAMPAIGN_RUN_FILES_PREFIX = Waiver(
    ("AwsSolutions-IAM5[Resource::<CampaignRunFilesCampaignRuns7DDA4827.Arn>/runs/*]",),
    "The campaign run tasks write or read batch files and manifests under runs/ of the campaign runs "
    "bucket only: the keys are made per run and batch, so the grant names the prefix.",
)
_RUN_EXECUTIONS = (
    'arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{"Fn::Select":[6,{"Fn::Split":'
    '[":",{"Ref":"CampaignRunStateMachine02FFB800"}]}]}'
)
CAMPAIGN_RUN_ROLE = Waiver(
    (
        "AwsSolutions-IAM5[Resource::<FunctionsCampaignPrepareA059CCA1.Arn>:*]",
        "AwsSolutions-IAM5[Resource::<FunctionsCampaignBatchF2745B86.Arn>:*]",
        "AwsSolutions-IAM5[Resource::<FunctionsCampaignFinish68A59442.Arn>:*]",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<CampaignRunFilesCampaignRuns7DDA4827>/*]",
        "AwsSolutions-IAM5[Resource::*]",
        f"AwsSolutions-IAM5[Resource::{_RUN_EXECUTIONS}:*]",
        f"AwsSolutions-IAM5[Resource::{_RUN_EXECUTIONS}/*:*]",
        "CKV_AWS_111",
    ),
    "The run's state machine role, as CDK writes it for a Lambda task and a Distributed Map: invoking "
    "its three task functions (CDK adds their versions, `<arn>:*`), describing and stopping its own "
    "child executions (`execution:<name>:*`, named by Step Functions per map run), reading the manifest "
    "and writing map results in the campaign runs bucket (object keys made per run), and the "
    "CloudWatch Logs delivery actions, which AWS authorises on Resource '*' only. Nothing outside "
    "this workflow.",
)
CAMPAIGN_RUN_CONTROL = Waiver(
    (f"AwsSolutions-IAM5[Resource::{_RUN_EXECUTIONS}:*]",),
    "The functions that control campaign runs (the campaigns API, the campaign-schedule job) stop and "
    "describe executions of the campaign run state machine only (`execution:<machine>:*`): executions "
    "are named per run and attempt at run time, so the grant names the machine, not the execution.",
)
CAMPAIGN_RUN_TRACING_SWITCHABLE = Waiver(
    ("AwsSolutions-SF2", "Serverless-StepFunctionStateMachineXray"),
    "X-Ray is switched by the `tracing` context setting, off by default, for the functions and the API "
    "alike; `-c tracing=true` turns it on for the campaign run state machine too.",
)

CAMPAIGN_SCHEDULES_IN_GROUP = Waiver(
    (
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:"
        "schedule/<CampaignSchedulesGroup9D474E48>/*]",
    ),
    "The campaigns function creates, updates, reads and deletes one schedule per scheduled campaign, "
    "named after the campaign (campaign-<id>), which marketers create at run time: the grant names the "
    "campaign schedule group's schedules (schedule/<group>/*), no other group, and only those four "
    "actions.",
)

CONSOLE_BUCKET = Waiver(
    ("AwsSolutions-S1", "CKV_AWS_18", "CKV_AWS_145", "CKV2_AWS_62"),
    "The console's bucket holds its static files only (a page, a script, a stylesheet: no data, no "
    "secret, code every signed-in browser receives anyway). CloudFront alone reads it, through origin "
    "access control, and only the deploy step writes it (CloudTrail data events can record that where "
    "wanted); SSE-S3 encrypts it, as a customer-managed key would protect nothing secret and need a key "
    "policy for CloudFront. Nothing reacts to a new file, so there are no event notifications.",
)
CONSOLE_EVERYWHERE = Waiver(
    ("AwsSolutions-CFR1",),
    "Marketers sign in from wherever they work (offices, home, travel): a country allow-list would lock "
    "them out without protecting anything, since every call the console makes needs an admin or "
    "marketer API key that the authorizer checks.",
)
CONSOLE_EDGE_WAF = Waiver(
    ("AwsSolutions-CFR2", "CKV_AWS_68"),
    "A CloudFront web ACL must live in us-east-1 (a stack of its own, billed monthly). The static files "
    "are public code; every /v1/* call goes on to the API stage, which has its regional web ACL when the "
    "`waf` context setting is on, and the authorizer, stage throttling and the usage plan in any case.",
)
CONSOLE_EDGE_LOGS = Waiver(
    ("AwsSolutions-CFR3", "CKV_AWS_86"),
    "CloudFront's standard logs need a bucket with ACLs enabled, which every bucket of the platform "
    "forbids (BucketOwnerEnforced). The calls that matter, /v1/* through this distribution, are logged "
    "by the API stage's access log with the key id; the static files carry nothing personal.",
)
CONSOLE_DEFAULT_CERTIFICATE = Waiver(
    ("AwsSolutions-CFR4", "CKV_AWS_174"),
    "The distribution answers on its *.cloudfront.net name with CloudFront's default certificate, for "
    "which CloudFront fixes the TLS policy itself. The construct asks for TLSv1.2_2021 as the minimum, "
    "which takes effect once a custom domain with an ACM certificate is attached (docs/deploy.md).",
)

LAKE_ERASED_VERSIONS = Waiver(
    (
        "AwsSolutions-IAM5[Resource::<LakeBucketB1D32E10.Arn>/customers/*]",
        "AwsSolutions-IAM5[Resource::<LakeBucketB1D32E10.Arn>/events/*]",
        "AwsSolutions-IAM5[Resource::<LakeBucketB1D32E10.Arn>/_snapshots/customers/*]",
        "AwsSolutions-IAM5[Resource::<LakeBucketB1D32E10.Arn>/_snapshots/events/*]",
    ),
    "The compaction job deletes earlier versions of the objects an erasure rewrote, so the erased "
    "customer's rows do not survive as noncurrent versions; only under the prefixes of the kinds that "
    "may hold personal data (their change files and their snapshots), whose object names are the "
    "days and batches the stream writes, unknown in advance.",
)

ALL: tuple[Waiver, ...] = tuple(value for value in list(globals().values()) if isinstance(value, Waiver))


def waive(construct: IConstruct, waiver: Waiver) -> None:
    """Acknowledge the waiver's cdk-nag rules on the construct (and what is under it) and add its
    checkov checks to the skip list of the construct's CloudFormation resource."""
    for rule in waiver.nag_rules:
        Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=waiver.reason))
    if waiver.checkov_checks:
        resource = _resource(construct)
        current = resource.get_metadata("checkov") or {}
        skips = [
            *current.get("skip", []),
            *({"id": check, "comment": waiver.reason} for check in waiver.checkov_checks),
        ]
        resource.add_metadata("checkov", {**current, "skip": skips})


def apply_waivers(stack: Stack, settings: DeploySettings) -> None:  # noqa: PLR0912 - one branch per rule pack
    """The waivers that hold for a whole resource type or follow from the template. Call it once,
    after every construct of the stack exists."""
    dead_letters = {queue.node.path for queue in dead_letter_queues(stack)}
    firewalled = any(isinstance(node, wafv2.CfnWebACLAssociation) for node in stack.node.find_all())
    for node in stack.node.find_all():
        if isinstance(node, lambda_.CfnFunction):
            for waiver in (
                PYTHON_RUNTIME_PINNED,
                FAILURES_HAVE_A_DESTINATION,
                NO_VPC,
                NO_RESERVED_CONCURRENCY,
                ENVIRONMENT_HOLDS_NO_SECRETS,
            ):
                waive(node, waiver)
            if not settings.tracing:
                waive(node, TRACING_SWITCHABLE)
        elif isinstance(node, dynamodb.CfnTable):
            if not settings.table_cmk:
                waive(node, TABLE_KEY_SWITCHABLE)
        elif isinstance(node, logs.CfnLogGroup):
            waive(node, LOGS_SERVICE_ENCRYPTED)
        elif isinstance(node, sqs.CfnQueue):
            if node.sqs_managed_sse_enabled is True and node.kms_master_key_id is None:
                waive(node, SQS_MANAGED_ENCRYPTION)
            if node.node.path in dead_letters:
                waive(node, IS_DEAD_LETTER_QUEUE)
        elif isinstance(node, apigw.CfnStage):
            waive(node, NO_RESPONSE_CACHE)
            if not settings.tracing:
                waive(node, TRACING_SWITCHABLE)
            if not firewalled:
                waive(node, WAF_OPTIONAL)


def _resource(construct: IConstruct) -> CfnResource:
    if isinstance(construct, CfnResource):
        return construct
    child = construct.node.default_child
    if not isinstance(child, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to carry a checkov skip")
    return child
