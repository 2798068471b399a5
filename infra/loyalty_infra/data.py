"""The platform's one DynamoDB table, built from loyalty.resources.TABLE."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from loyalty.resources import TABLE, TableDef


def _string_key(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class DataTable(Construct):
    """On-demand, point-in-time recovery, a stream of new and old images, TTL, retained on delete.

    Encrypted with the AWS-managed key (aws/dynamodb) unless `customer_managed_key` is set, in which
    case a rotating customer-managed KMS key is created and kept with the table.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        definition: TableDef = TABLE,
        customer_managed_key: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.definition = definition
        self.key: kms.Key | None = None
        if customer_managed_key:
            self.key = kms.Key(
                self,
                "Key",
                description="Encrypts the loyalty data table",
                enable_key_rotation=True,
                removal_policy=RemovalPolicy.RETAIN,
            )
        self.table = dynamodb.Table(
            self,
            definition.logical_id,
            partition_key=_string_key(definition.partition_key),
            sort_key=_string_key(definition.sort_key),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            time_to_live_attribute=definition.ttl_attribute,
            encryption=(
                dynamodb.TableEncryption.CUSTOMER_MANAGED
                if self.key is not None
                else dynamodb.TableEncryption.AWS_MANAGED
            ),
            encryption_key=self.key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        for index in definition.indexes:
            # ALL, or (a timeline's gsi3) the keys and a few attributes: index writes cost their size
            include = index.projection is not None
            self.table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_string_key(index.partition_key),
                sort_key=_string_key(index.sort_key),
                projection_type=dynamodb.ProjectionType.INCLUDE if include else dynamodb.ProjectionType.ALL,
                non_key_attributes=list(index.projection or ()) if include else None,
            )

    def index_arns(self) -> list[str]:
        """The ARN of every index by name: Query on an index needs it, and no wildcard is granted."""
        return [f"{self.table.table_arn}/index/{index.name}" for index in self.definition.indexes]
