"""The direct-mail print files' bucket (resources.PRINT_BUCKET): private, TLS only, expiring.

The mailer writes one CSV per batch under print/; the messaging function lists them for the
console; the brand's mail house is given the files by whoever runs the programme (a presigned URL
or a replication rule, outside this stack)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from loyalty.resources import PRINT_BUCKET
from loyalty_infra.waivers import PRINT_FILES_BUCKET, waive


class PrintFiles(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        retention = PRINT_BUCKET.retention_days
        assert retention is not None, "print files expire"
        self.bucket = s3.Bucket(
            self,
            PRINT_BUCKET.logical_id,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(retention),
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        waive(self.bucket, PRINT_FILES_BUCKET)
