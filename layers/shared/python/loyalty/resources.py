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
    """An SQS FIFO work queue with its dead-letter queue."""

    logical_id: str
    local_name: str  # ends in .fifo, as SQS requires for FIFO queues
    visibility_timeout_s: int
    max_receive_count: int  # deliveries before a message goes to the dead-letter queue
    env_var: str  # how the functions that send to it learn its URL

    @property
    def dead_letter_name(self) -> str:
        return self.local_name.removesuffix(".fifo") + "-dlq.fifo"


# Identity merges: FIFO per survivor, so merges into one profile run in the order they were asked.
MERGE_QUEUE = QueueDef(
    logical_id="Merges",
    local_name="loyalty-merges.fifo",
    visibility_timeout_s=360,  # the merge worker's timeout (300 s) and a margin, as Lambda advises
    max_receive_count=5,
    env_var="MERGE_QUEUE_URL",
)
