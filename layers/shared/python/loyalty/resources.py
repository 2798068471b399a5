"""The one definition of the platform's AWS resources, read by the CDK app and the local runtime.

Nothing here imports boto3 or CDK: both sides turn these plain descriptions into real resources.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IndexDef:
    name: str
    partition_key: str
    sort_key: str
    # The non-key attributes the index holds: None projects ALL; a tuple projects the keys and
    # those attributes only (INCLUDE), so each index write costs by what it holds, not the item.
    projection: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TableDef:
    logical_id: str
    local_name: str
    partition_key: str
    sort_key: str
    indexes: tuple[IndexDef, ...]
    ttl_attribute: str


# Single-table design (see docs/design.md, "Data model"). Every key is a string.
TABLE = TableDef(
    logical_id="Data",
    local_name="loyalty-data",
    partition_key="pk",
    sort_key="sk",
    indexes=(
        # gsi1: a customer's history (transactions newest first), stores, lists
        IndexDef("gsi1", "gsi1pk", "gsi1sk"),
        # gsi2: sparse, what falls due on a day (lots maturing, reaching the tier horizon, expiring)
        IndexDef("gsi2", "gsi2pk", "gsi2sk"),
        # gsi3: sparse, a person's timeline (CUST#<id> | ANON#<id> / <occurred_at>#<kind>#<id>);
        # it holds only the ready-made timeline item `tl`, so a page is one Query and stays small
        IndexDef("gsi3", "tlpk", "tlsk", projection=("tl",)),
    ),
    ttl_attribute="expires_at",
)


@dataclass(frozen=True)
class BusDef:
    logical_id: str
    local_name: str


EVENT_BUS = BusDef(logical_id="DomainEvents", local_name="loyalty-events")


@dataclass(frozen=True)
class QueueDef:
    """An SQS work queue (FIFO unless `fifo` is false) with its dead-letter queue."""

    logical_id: str
    local_name: str  # a FIFO queue's ends in .fifo, as SQS requires
    visibility_timeout_s: int
    max_receive_count: int  # deliveries before a message goes to the dead-letter queue
    env_var: str  # how the functions that send to it learn its URL
    fifo: bool = True

    @property
    def dead_letter_name(self) -> str:
        suffix = ".fifo" if self.fifo else ""
        return self.local_name.removesuffix(".fifo") + "-dlq" + suffix


# Identity merges: FIFO per survivor, so merges into one profile run in the order they were asked.
MERGE_QUEUE = QueueDef(
    logical_id="Merges",
    local_name="loyalty-merges.fifo",
    visibility_timeout_s=360,  # the merge worker's timeout (300 s) and a margin, as Lambda advises
    max_receive_count=5,
    env_var="MERGE_QUEUE_URL",
)


# Customer events and transactions for the activity worker (challenges, punch cards, badges, event
# earn rules). Standard, not FIFO: every effect is keyed and conditional, so order and duplicates do
# not matter, and a standard queue takes whatever rate the bus delivers.
ACTIVITY_QUEUE = QueueDef(
    logical_id="Activity",
    local_name="loyalty-activity",
    visibility_timeout_s=360,  # six times the worker's timeout (60 s), as Lambda advises
    max_receive_count=5,
    env_var="ACTIVITY_QUEUE_URL",
    fifo=False,
)


@dataclass(frozen=True)
class BusRuleDef:
    """A rule on the platform's bus sending the platform's events of these detail-types to a queue."""

    logical_id: str
    local_name: str
    detail_types: tuple[str, ...]
    target: QueueDef


ACTIVITY_RULE = BusRuleDef(
    logical_id="ActivityFeed",
    local_name="loyalty-activity-feed",
    detail_types=("CustomerEventRecorded", "CustomerEventAttributed", "TransactionRecorded"),
    target=ACTIVITY_QUEUE,
)
# Enrolments and earns for the message triggers (welcome, points-earned confirmation). Standard:
# each message is keyed by its cause, so duplicates and order do not matter.
MESSAGE_TRIGGER_QUEUE = QueueDef(
    logical_id="MessageTriggers",
    local_name="loyalty-message-triggers",
    visibility_timeout_s=180,  # six times the job's timeout (30 s)
    max_receive_count=5,
    env_var="MESSAGE_TRIGGER_QUEUE_URL",
    fifo=False,
)
MESSAGE_TRIGGER_RULE = BusRuleDef(
    logical_id="MessageTriggerFeed",
    local_name="loyalty-message-trigger-feed",
    detail_types=("CustomerEnrolled", "TransactionRecorded"),
    target=MESSAGE_TRIGGER_QUEUE,
)
# Everything that can change a customer's segment membership, for the segments worker (which
# evaluates that customer from scratch) and segadmin's background-evaluation pages. Standard: an
# evaluation reads the state as it is now, so order and duplicates do not matter.
SEGMENT_QUEUE = QueueDef(
    logical_id="Segments",
    local_name="loyalty-segments",
    visibility_timeout_s=360,  # six times the worker's timeout (60 s), as Lambda advises
    max_receive_count=5,
    env_var="SEGMENT_QUEUE_URL",
    fifo=False,
)
SEGMENT_RULE = BusRuleDef(
    logical_id="SegmentFeed",
    local_name="loyalty-segment-feed",
    detail_types=(
        "TransactionRecorded",
        "CustomerEventRecorded",
        "CustomerEventAttributed",
        "CustomerEnrolled",
        "CustomerUpdated",
        "TierChanged",
        "PointsEarned",
        "PointsExpired",
        "PointsRedeemed",
        "PointsRedemptionReversed",
        "BadgeEarned",
        "CustomersMerged",
        "MergeUndone",
        "CustomerErased",
        "ScoresUpdated",
    ),
    target=SEGMENT_QUEUE,
)

# Erasures for the lake: the compaction job rewrites the personal kinds' files without the erased
# customer. Standard: erasing twice removes nothing more.
LAKE_ERASURE_QUEUE = QueueDef(
    logical_id="LakeErasures",
    local_name="loyalty-lake-erasures",
    visibility_timeout_s=6 * 900,  # six times the job's timeout (900 s), as Lambda advises
    max_receive_count=5,
    env_var="LAKE_ERASURE_QUEUE_URL",
    fifo=False,
)
LAKE_ERASURE_RULE = BusRuleDef(
    logical_id="LakeErasureFeed",
    local_name="loyalty-lake-erasure-feed",
    detail_types=("CustomerErased",),
    target=LAKE_ERASURE_QUEUE,
)
BUS_RULES: tuple[BusRuleDef, ...] = (ACTIVITY_RULE, MESSAGE_TRIGGER_RULE, SEGMENT_RULE, LAKE_ERASURE_RULE)


@dataclass(frozen=True)
class BusTriggerDef:
    """A rule on the platform's bus that invokes a function or starts a state machine with the
    platform's events of these detail-types (campaign triggers). Locally moto cannot deliver to
    either: loyalty_local.bus_triggers taps the rule into a queue and delivers from there."""

    logical_id: str
    local_name: str
    detail_types: tuple[str, ...]
    function: str | None = None  # a JobDef's name
    state_machine: str | None = None  # a state machine definition's logical_id
    input_path: str | None = None  # "$.detail": the target gets the event's detail only

    def __post_init__(self) -> None:
        if (self.function is None) == (self.state_machine is None):
            raise ValueError(f"{self.logical_id}: a trigger has one target, a function or a state machine")
        if self.input_path not in (None, "$", "$.detail"):
            raise ValueError(f"{self.logical_id}: input_path is $ or $.detail")


# None yet: the campaign triggers (enrolment, tier change, segment entered, ...) come with campaigns.
BUS_TRIGGERS: tuple[BusTriggerDef, ...] = ()

# SES's bounces and complaints (the configuration set's SNS topic delivers into it): standard, as
# applying one twice changes nothing.
EMAIL_FEEDBACK_QUEUE = QueueDef(
    logical_id="EmailFeedback",
    local_name="loyalty-email-feedback",
    visibility_timeout_s=180,
    max_receive_count=5,
    env_var="EMAIL_FEEDBACK_QUEUE_URL",
    fifo=False,
)


@dataclass(frozen=True)
class BucketDef:
    logical_id: str
    local_name: str  # locally, in moto's S3 (a test session's gets its table's prefix)
    env_var: str  # how the functions that use it learn its name
    retention_days: int | None = None  # objects expire after this many days (None: kept)


# Direct-mail print files (CSV per batch) for the brand's mail house: private, encrypted, expiring.
PRINT_BUCKET = BucketDef(
    logical_id="PrintFiles", local_name="loyalty-print-files", env_var="PRINT_BUCKET", retention_days=90
)


# The data lake: the table's business records as Parquet change rows (loyalty.services.lake), by
# kind and day (<kind>/dt=YYYY-MM-DD/<batch>.parquet). Glue and Athena read it on AWS, DuckDB locally.
LAKE_BUCKET = BucketDef(logical_id="Lake", local_name="loyalty-lake", env_var="LAKE_BUCKET")
# The Glue database (AWS) whose tables describe the lake; locally DuckDB views of the same names.
LAKE_DATABASE = "loyalty_lake"

# Campaign runs' working files: the audience each run exports from its segment (batch files and
# their manifest, runs/<campaign>/<run>/...) and the Distributed Map's result manifests
# (results/...). Working files only: they expire.
CAMPAIGN_RUNS_BUCKET = BucketDef(
    logical_id="CampaignRuns",
    local_name="loyalty-campaign-runs",
    env_var="CAMPAIGN_RUNS_BUCKET",
    retention_days=30,
)


# ---- functions and jobs: what the CDK app deploys and the local runtime runs ---------------------
# The route table (loyalty.api.routes) says which function serves each route; these say what each
# function is.


def construct_name(function_name: str) -> str:
    """The CDK construct id of a function or job (`campaign-batch` -> `CampaignBatch`): its template
    resource is found by it locally (loyalty_local.stepfunctions)."""
    return "".join(part.capitalize() for part in function_name.replace("_", "-").split("-"))


@dataclass(frozen=True)
class FunctionDef:
    name: str
    description: str
    memory_mb: int = 512
    timeout_s: int = 10


FUNCTIONS: tuple[FunctionDef, ...] = (
    # Also serves Swagger UI and the OpenAPI document, whose first build (all routers' models)
    # takes a few seconds at 256 MB: hence more memory and time than a liveness check needs.
    FunctionDef(
        "health", "Liveness, version, Swagger UI and the OpenAPI document", memory_mb=512, timeout_s=10
    ),
    FunctionDef("customers", "Enrolment, lookup, profiles and identity links"),
    FunctionDef("admin", "API keys, stores and the programme"),
    FunctionDef("transactions", "Sales, returns, order status, history and the points ledger"),
    FunctionDef("cart", "Real-time cart evaluation and personal coupons", memory_mb=1024),
    FunctionDef("offers", "Marketers' offers and price groups"),
    FunctionDef("campaigns", "Campaign definitions, their schedules and runs"),
    FunctionDef("redemptions", "Spending points, coupons and stored value, and reversing it"),
    FunctionDef("accounts", "Gift cards, merchandise credit, promotional cash and holds"),
    FunctionDef("messaging", "Message templates, checked in Jinja2's sandbox"),
    FunctionDef("events", "Customer events: batches of behaviour, anonymous visitors and identification"),
    # DuckDB (locally) and the Athena client read the lake: more memory than an API function, and a
    # report may take a few seconds of Athena's time.
    FunctionDef(
        "reports",
        "Reports over the data lake: activity, members vs non-members, cohorts",
        memory_mb=2048,
        timeout_s=29,
    ),
)

AUTHORIZER = FunctionDef("authorizer", "Checks hashed API keys for API Gateway", memory_mb=256, timeout_s=3)


@dataclass(frozen=True)
class JobDef:
    """A function no route reaches: run on a schedule, or fed by the table's stream."""

    name: str
    description: str
    memory_mb: int = 512
    timeout_s: int = 60
    schedule: str | None = None  # an EventBridge Scheduler expression
    consumes_stream: bool = False  # gets the table's stream records named by `stream_records`
    publishes_events: bool = False
    # Which stream records invoke it (a Lambda event filter in loyalty_infra.outbox): "outbox"
    # (writes that carry domain events), "messages" (new MESSAGE items: emails to send) or "lake"
    # (every change to a business record: the lake writer).
    stream_records: str = "outbox"
    consumes_queue: QueueDef | None = None  # an SQS queue's messages, with partial batch failures
    # The local ticker's interval when it must be shorter than the runtime's default (a minute).
    local_interval_s: float | None = None
    tmp_mb: int | None = None  # /tmp beyond Lambda's 512 MB (the compactor's local copies of files)


JOBS: tuple[JobDef, ...] = (
    JobDef(
        "sweeper",
        "Matures pending points, reviews tiers, expires lots, settles expired holds (hourly)",
        timeout_s=600,
        schedule="rate(1 hour)",
    ),
    JobDef(
        "publisher",
        "Publishes the outbox of every committed change to the EventBridge bus",
        timeout_s=60,
        consumes_stream=True,
        publishes_events=True,
    ),
    JobDef(
        "mailer",
        "Sends queued messages (email, SMS, print files, webhooks): new ones from the stream; retries "
        "and quiet-hours deferrals every 5 minutes",
        memory_mb=256,
        timeout_s=120,
        schedule="rate(5 minutes)",
        consumes_stream=True,
        stream_records="messages",
    ),
    JobDef(
        "lake",
        "Appends every change to the table's business records to the data lake as Parquet",
        memory_mb=1024,
        timeout_s=120,
        consumes_stream=True,
        stream_records="lake",
    ),
    JobDef(
        "compactor",
        "Compacts the lake's closed days and snapshots its current state (hourly); rewrites the "
        "personal kinds' files without an erased customer (from the bus)",
        memory_mb=3008,
        timeout_s=900,
        schedule="rate(1 hour)",
        consumes_queue=LAKE_ERASURE_QUEUE,
        # A previous snapshot, the new one and a day's files at once (loyalty.services.compaction).
        tmp_mb=10240,
    ),
    JobDef(
        "merger",
        "Runs identity merges and their undos from the FIFO merge queue; re-sends stale ones (5 min)",
        memory_mb=1024,
        timeout_s=300,
        schedule="rate(5 minutes)",
        consumes_queue=MERGE_QUEUE,
    ),
    JobDef(
        "triggers",
        "Queues welcome and points-earned messages from enrolments and sales (the programme's triggers)",
        memory_mb=256,
        timeout_s=30,
        consumes_queue=MESSAGE_TRIGGER_QUEUE,
    ),
    JobDef(
        "feedback",
        "Turns email consent off for SES's permanent bounces and complaints",
        memory_mb=256,
        timeout_s=30,
        consumes_queue=EMAIL_FEEDBACK_QUEUE,
    ),
    JobDef(
        "activity",
        "Applies customer events and transactions to challenges, punch cards and badges",
        memory_mb=512,
        timeout_s=60,
        consumes_queue=ACTIVITY_QUEUE,
    ),
    # The campaign run's tasks (CAMPAIGN_RUN): invoked by the state machine only.
    JobDef(
        "campaign-prepare",
        "Campaign run, first step: exports the run's audience to S3 as batch files and a manifest",
        memory_mb=1024,
        timeout_s=300,
    ),
    JobDef(
        "campaign-batch",
        "Campaign run: applies one batch of the audience, each item once; records a failed batch",
        memory_mb=512,
        timeout_s=120,
    ),
    JobDef(
        "campaign-finish",
        "Campaign run, last step: counts the batches and marks the run succeeded or failed",
        memory_mb=512,
        timeout_s=120,
    ),
    # Invoked by the campaign's own EventBridge Scheduler schedule (CAMPAIGN_SCHEDULES): starts a run.
    JobDef(
        "campaign-schedule",
        "Starts a scheduled campaign's run when its EventBridge Scheduler schedule fires",
        memory_mb=256,
        timeout_s=30,
    ),
    JobDef(
        "attribution",
        "Second pass of identifications: moves identified visitors' anonymous events onto their customer",
        memory_mb=512,
        timeout_s=300,
        schedule="rate(5 minutes)",
    ),
    JobDef(
        "segments",
        "Keeps segment memberships: evaluates customers whose facts changed (bus → queue) and, every "
        "minute, those whose rules' answers fall due with the passage of time",
        memory_mb=1024,
        timeout_s=60,
        schedule="rate(1 minute)",
        consumes_queue=SEGMENT_QUEUE,
        local_interval_s=10.0,
    ),
    JobDef(
        "scores",
        "Computes customers' RFM quintiles from the data lake and writes the changed ones (daily)",
        memory_mb=2048,  # DuckDB locally; on AWS the statement runs in Athena and this waits for it
        timeout_s=900,
        schedule="rate(1 day)",
        local_interval_s=300.0,  # a full recomputation: every five minutes is plenty for a demo
    ),
)


# ---- state machines: what the CDK app deploys and the local runtime executes ----------------------


@dataclass(frozen=True)
class RetryDef:
    """A Task's Retry: the first retry after `interval_s`, each next one `backoff_rate` times later
    (at most `max_delay_s`, with full jitter), `max_attempts` retries in all."""

    interval_s: int
    backoff_rate: float
    max_attempts: int
    max_delay_s: int


@dataclass(frozen=True)
class CampaignRunMachineDef:
    """The campaign run workflow (loyalty_infra.campaign_runs builds it; loyalty.campaigns has its
    tasks and their input/output contract): Prepare exports the audience as batch files, a
    Distributed Map runs Batch over them (failures caught and recorded), Finish marks the run."""

    logical_id: str
    local_name: str
    description: str
    prepare: str  # the JobDef names of its Lambda tasks
    batch: str
    finish: str
    bucket: BucketDef
    batch_size: int  # items per batch file (Prepare batches: no ItemBatcher, see loyalty.campaigns)
    max_concurrency: int  # batches in flight at once
    batch_retry: RetryDef
    # Errors the batch's Retry leaves alone (retrying cannot help): straight to the Catch.
    not_retried: tuple[str, ...]
    timeout_s: int
    # How the functions that start, stop and read runs learn the machine's ARN (the campaigns API
    # function and the campaign-schedule job; loyalty_infra.campaign_runs grants them).
    arn_env_var: str = "CAMPAIGN_RUN_STATE_MACHINE_ARN"
    # The functions and jobs that start, stop and describe its executions (they get arn_env_var).
    controllers: tuple[str, ...] = ("campaigns", "campaign-schedule")


CAMPAIGN_RUN = CampaignRunMachineDef(
    logical_id="CampaignRun",
    local_name="loyalty-campaign-run",
    description="A campaign run: the audience exported in batches, each batch applied once, counted",
    prepare="campaign-prepare",
    batch="campaign-batch",
    finish="campaign-finish",
    bucket=CAMPAIGN_RUNS_BUCKET,
    batch_size=100,
    max_concurrency=40,
    # 1, 2, 4, 8, 16 s (jittered): a throttled table or a cold start gets half a minute.
    batch_retry=RetryDef(interval_s=1, backoff_rate=2.0, max_attempts=5, max_delay_s=30),
    not_retried=("InvalidTaskInput",),
    timeout_s=6 * 3600,
)
STATE_MACHINES: tuple[CampaignRunMachineDef, ...] = (CAMPAIGN_RUN,)


@dataclass(frozen=True)
class ScheduleGroupDef:
    """An EventBridge Scheduler schedule group whose schedules the platform makes at run time (one
    per scheduled campaign, loyalty.domain.campaign_definitions.schedule_name), all invoking one
    JobDef through one role."""

    logical_id: str
    local_name: str  # the group's name (locally in moto's Scheduler)
    target: str  # the JobDef the schedules invoke
    env_var: str  # how the functions that keep the schedules learn the group's name
    target_env_var: str  # ... the target function's ARN
    role_env_var: str  # ... the role Scheduler assumes to invoke it
    dead_letter_env_var: str  # ... the queue where invocations Scheduler gave up on land


# Scheduled campaigns (loyalty.adapters.campaign_schedules): an active campaign with a schedule
# trigger has one schedule here; the campaigns function creates, updates and deletes it.
CAMPAIGN_SCHEDULES = ScheduleGroupDef(
    logical_id="CampaignSchedules",
    local_name="loyalty-campaigns",
    target="campaign-schedule",
    env_var="CAMPAIGN_SCHEDULE_GROUP",
    target_env_var="CAMPAIGN_SCHEDULE_TARGET_ARN",
    role_env_var="CAMPAIGN_SCHEDULER_ROLE_ARN",
    dead_letter_env_var="CAMPAIGN_SCHEDULE_DEAD_LETTER_ARN",
)


@dataclass(frozen=True)
class ConsoleDef:
    """The marketers' console: static files (console/, built by `make console` into build/console)
    served at `path` by the local gateway and, on AWS, from S3 behind CloudFront (loyalty_infra.
    console), both with these response headers. The page loads only its own script and stylesheet
    and calls only its own origin's API (CloudFront sends /v1/* to API Gateway), so the policy
    allows nothing else: no CDN, no inline script or style, no framing."""

    path: str
    index: str
    content_security_policy: str
    headers: tuple[tuple[str, str], ...]

    def response_headers(self) -> dict[str, str]:
        return {"Content-Security-Policy": self.content_security_policy, **dict(self.headers)}


CONSOLE = ConsoleDef(
    path="/console",
    index="index.html",
    content_security_policy=(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'; object-src 'none'"
    ),
    headers=(
        ("Strict-Transport-Security", "max-age=63072000; includeSubDomains; preload"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
    ),
)
