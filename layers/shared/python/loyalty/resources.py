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
BUS_RULES: tuple[BusRuleDef, ...] = (ACTIVITY_RULE, MESSAGE_TRIGGER_RULE, LAKE_ERASURE_RULE)

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


# ---- functions and jobs: what the CDK app deploys and the local runtime runs ---------------------
# The route table (loyalty.api.routes) says which function serves each route; these say what each
# function is.


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
    # How often the local runtime's ticker runs a scheduled job (None: the runtime's default).
    local_every_s: float | None = None
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
    JobDef(
        "attribution",
        "Second pass of identifications: moves identified visitors' anonymous events onto their customer",
        memory_mb=512,
        timeout_s=300,
        schedule="rate(5 minutes)",
    ),
    JobDef(
        "scores",
        "Computes customers' RFM quintiles from the data lake and writes the changed ones (daily)",
        memory_mb=2048,  # DuckDB locally; on AWS the statement runs in Athena and this waits for it
        timeout_s=900,
        schedule="rate(1 day)",
        local_every_s=300.0,  # a full recomputation: every five minutes is plenty for a demo
    ),
)
