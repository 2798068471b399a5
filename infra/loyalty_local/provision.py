"""Create the resources from the same definitions the CDK app uses, and seed the demo programme."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from loyalty.resources import EVENT_BUS, TABLE, TableDef

PEPPER_SECRET_NAME = "loyalty/api-key-pepper"  # noqa: S105 - a name, not a value


@dataclass(frozen=True)
class LocalResources:
    table_name: str
    event_bus_name: str
    pepper_secret: str

    def function_environment(self) -> dict[str, str]:
        return {
            "TABLE_NAME": self.table_name,
            "EVENT_BUS_NAME": self.event_bus_name,
            "API_KEY_PEPPER_SECRET": self.pepper_secret,
            "POWERTOOLS_SERVICE_NAME": "loyalty",
            "POWERTOOLS_METRICS_NAMESPACE": "Loyalty",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "TRACING_ENABLED": "false",
        }


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
            GlobalSecondaryIndexes=[
                {
                    "IndexName": index.name,
                    "KeySchema": [
                        {"AttributeName": index.partition_key, "KeyType": "HASH"},
                        {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in definition.indexes
            ],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        return
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": definition.ttl_attribute}
    )


def provision(
    session: boto3.session.Session, table_name: str | None = None, pepper: str | None = None
) -> LocalResources:
    """Idempotent: running it against existing resources changes nothing.

    `pepper` keeps key hashes valid across restarts of `make run` (moto forgets its secrets).
    """
    resources = LocalResources(
        table_name=table_name or TABLE.local_name,
        event_bus_name=EVENT_BUS.local_name,
        pepper_secret=PEPPER_SECRET_NAME,
    )
    create_table(session.client("dynamodb"), TABLE, resources.table_name)
    events = session.client("events")
    try:
        events.create_event_bus(Name=resources.event_bus_name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise
    secrets_client = session.client("secretsmanager")
    try:
        secrets_client.describe_secret(SecretId=resources.pepper_secret)
    except ClientError:
        secrets_client.create_secret(
            Name=resources.pepper_secret, SecretString=pepper or secrets.token_hex(32)
        )
    return resources
