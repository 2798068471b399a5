"""The data lake: its bucket (written by the lake job), the Glue tables that describe it with
partition projection, and the Athena workgroup the reports function queries it through.

- The lake bucket and the query-results bucket: S3-managed encryption, TLS only, all public access
  blocked, versioned, server access logs to a log bucket; lifecycle: lake objects move to
  Infrequent Access after 90 days (reports read recent partitions), old versions (a retried batch
  overwrites its files) expire after 30 days; query results expire after 7 days.
- One Glue table per kind (loyalty.services.lake.KINDS), columns typed as the writer writes them
  (decimal(38,2), timestamp, a string `dt` partition). Partition projection computes the partitions
  from the `dt` range: no crawler and no MSCK REPAIR, and a new day is queryable at once.
- One Glue table per compacted snapshot the reports read, `<kind>_snapshot` (customers,
  transactions, ledger, stores: loyalty.services.compaction writes every kind's, the others are
  for DuckDB and a table each is 1 of CloudFormation's 500 resources), partitioned by `generation`
  with injected projection: a query names the generation the lake's manifest says is current (the
  reports' SQL does), so it reads that generation's files only.
- The workgroup enforces its configuration (clients cannot pick another result location or turn
  encryption off), encrypts results, publishes metrics and cancels any query scanning more than
  BYTES_SCANNED_CUTOFF: a runaway report costs at most that much.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from loyalty.resources import LAKE_DATABASE
from loyalty.services.lake import CHANGE_COLUMNS, GLUE_TYPES, KINDS, SNAPSHOT_PREFIX, Kind, snapshot_table
from loyalty.services.report_sql import REPORTED_KINDS
from loyalty_infra.waivers import (
    ACCESS_LOG_BUCKET,
    LAKE_ERASED_VERSIONS,
    LAKE_NO_EVENT_NOTIFICATIONS,
    LAKE_OBJECTS,
    LAKE_S3_MANAGED_KEY,
    waive,
)

# 10 GB: a report over a year of 10 million customers' transactions scans well under 1 GB (the
# bench's figures, docs/lake); anything above this is a mistake, stopped at $0.05.
BYTES_SCANNED_CUTOFF = 10 * 1024**3
PROJECTION_START = "2024-01-01"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"


def _bucket(scope: Construct, construct_id: str, logs: s3.IBucket | None, **lifecycle: object) -> s3.Bucket:
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=logs,
        server_access_logs_prefix=f"{construct_id.lower()}/" if logs else None,
        removal_policy=RemovalPolicy.RETAIN,
        **lifecycle,  # type: ignore[arg-type]
    )


class Lake(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # S3 lets its logging service write through a bucket policy, not the legacy log-delivery ACL.
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        stack = Stack.of(self)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=True,
            # Enforced ownership: S3 grants its logging service a bucket policy, not a legacy ACL.
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        waive(self.access_logs, ACCESS_LOG_BUCKET)
        self.bucket = _bucket(
            self,
            "Bucket",
            self.access_logs,
            lifecycle_rules=[
                s3.LifecycleRule(
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=Duration.days(90),
                        )
                    ],
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        self.results = _bucket(
            self,
            "QueryResults",
            self.access_logs,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(7),
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        for bucket in (self.access_logs, self.bucket, self.results):
            waive(bucket, LAKE_S3_MANAGED_KEY)
            waive(bucket, LAKE_NO_EVENT_NOTIFICATIONS)
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=LAKE_DATABASE, description="The loyalty platform's data lake (change rows, Parquet)"
            ),
        )
        self.tables = [self._table(kind) for kind in KINDS]
        self.snapshot_tables = [self._snapshot_table(kind) for kind in KINDS if kind.name in REPORTED_KINDS]
        self.workgroup = athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=f"{stack.stack_name}-reports",
            description="Reports over the loyalty data lake",
            state="ENABLED",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=BYTES_SCANNED_CUTOFF,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=self.results.s3_url_for_object("athena/"),
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
        )

    def _table(self, kind: Kind) -> glue.CfnTable:
        location = self.bucket.s3_url_for_object(kind.name)
        table = glue.CfnTable(
            self,
            f"Table{''.join(p.capitalize() for p in kind.name.split('_'))}",
            catalog_id=Stack.of(self).account,
            database_name=LAKE_DATABASE,
            table_input=glue.CfnTable.TableInputProperty(
                name=kind.name,
                description=f"Change rows of {kind.name}: the latest per change_key is current",
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "parquet",
                    "EXTERNAL": "TRUE",
                    "projection.enabled": "true",
                    "projection.dt.type": "date",
                    "projection.dt.format": "yyyy-MM-dd",
                    "projection.dt.range": f"{PROJECTION_START},NOW",
                    "projection.dt.interval": "1",
                    "projection.dt.interval.unit": "DAYS",
                    "storage.location.template": f"{location}/dt=${{dt}}",
                },
                partition_keys=[glue.CfnTable.ColumnProperty(name="dt", type="string")],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    input_format=PARQUET_INPUT,
                    output_format=PARQUET_OUTPUT,
                    serde_info=glue.CfnTable.SerdeInfoProperty(serialization_library=PARQUET_SERDE),
                    columns=[
                        glue.CfnTable.ColumnProperty(name=c.name, type=GLUE_TYPES[c.type])
                        for c in (*CHANGE_COLUMNS, *kind.columns)
                    ],
                ),
            ),
        )
        table.add_dependency(self.database)
        return table

    def _snapshot_table(self, kind: Kind) -> glue.CfnTable:
        location = self.bucket.s3_url_for_object(f"{SNAPSHOT_PREFIX}/{kind.name}")
        table = glue.CfnTable(
            self,
            f"Snapshot{''.join(p.capitalize() for p in kind.name.split('_'))}",
            catalog_id=Stack.of(self).account,
            database_name=LAKE_DATABASE,
            table_input=glue.CfnTable.TableInputProperty(
                name=snapshot_table(kind.name),
                description=f"Current {kind.name} by compaction generation (the manifest names the current)",
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "parquet",
                    "EXTERNAL": "TRUE",
                    "projection.enabled": "true",
                    "projection.generation.type": "injected",
                    "storage.location.template": f"{location}/generation=${{generation}}",
                },
                partition_keys=[glue.CfnTable.ColumnProperty(name="generation", type="string")],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    input_format=PARQUET_INPUT,
                    output_format=PARQUET_OUTPUT,
                    serde_info=glue.CfnTable.SerdeInfoProperty(serialization_library=PARQUET_SERDE),
                    columns=[
                        *(
                            glue.CfnTable.ColumnProperty(name=c.name, type=GLUE_TYPES[c.type])
                            for c in (*CHANGE_COLUMNS, *kind.columns)
                        ),
                        glue.CfnTable.ColumnProperty(name="dt", type="string"),
                    ],
                ),
            ),
        )
        table.add_dependency(self.database)
        return table

    def grant_compact(self, role: iam.IRole) -> None:
        """The compaction job: list, read, write and delete the lake's objects (closed days are
        rewritten, old snapshot generations deleted); delete earlier versions of the personal
        kinds' objects only (an erasure's rewrite must not survive as a noncurrent version). No
        Athena, no Glue, no other bucket."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListLake",
                actions=["s3:ListBucket", "s3:ListBucketVersions"],
                resources=[self.bucket.bucket_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="CompactLake",
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                resources=[self.bucket.arn_for_objects("*")],
            )
        )
        personal = [k.name for k in KINDS if k.personal]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PurgeErasedVersions",
                actions=["s3:DeleteObjectVersion"],
                resources=[
                    *(self.bucket.arn_for_objects(f"{name}/*") for name in personal),
                    *(self.bucket.arn_for_objects(f"{SNAPSHOT_PREFIX}/{name}/*") for name in personal),
                ],
            )
        )
        waive(role.node.find_child("DefaultPolicy"), LAKE_OBJECTS)
        waive(role.node.find_child("DefaultPolicy"), LAKE_ERASED_VERSIONS)

    def grant_write(self, role: iam.IRole) -> None:
        """The lake job: put objects under the lake, nothing else (no read, no delete)."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteLake", actions=["s3:PutObject"], resources=[self.bucket.arn_for_objects("*")]
            )
        )
        waive(role.node.find_child("DefaultPolicy"), LAKE_OBJECTS)

    def grant_query(self, role: iam.IRole) -> None:
        """The reports function: run queries in this workgroup only, read the Glue tables and the
        lake, write and read its own query results."""
        stack = Stack.of(self)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RunReports",
                actions=[
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:StopQueryExecution",
                ],
                resources=[
                    stack.format_arn(service="athena", resource="workgroup", resource_name=self.workgroup.ref)
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadLakeTables",
                actions=["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartitions"],
                resources=[
                    stack.format_arn(service="glue", resource="catalog"),
                    stack.format_arn(service="glue", resource="database", resource_name=LAKE_DATABASE),
                    stack.format_arn(service="glue", resource="table", resource_name=f"{LAKE_DATABASE}/*"),
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadLake",
                actions=["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"],
                resources=[self.bucket.bucket_arn, self.bucket.arn_for_objects("*")],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="QueryResults",
                actions=[
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListBucket",
                    "s3:GetBucketLocation",
                ],
                resources=[self.results.bucket_arn, self.results.arn_for_objects("*")],
            )
        )
        waive(role.node.find_child("DefaultPolicy"), LAKE_OBJECTS)
