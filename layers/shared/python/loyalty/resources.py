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


# Single-table design (see README "Data model"). Every key is a string.
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
