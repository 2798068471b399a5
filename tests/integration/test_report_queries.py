"""DuckDB reading the lake from moto's S3 through its httpfs extension, written there by the lake
writer's S3 adapter. (Athena's adapter is checked with botocore's Stubber in
tests/unit/test_athena_queries.py: moto 5.2 answers Athena's JSON protocol, and this botocore
speaks Athena's rest-json, which moto answers 404.)"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import boto3

from loyalty.adapters.lake import S3Lake
from loyalty.adapters.report_queries import DuckDBQueries
from loyalty.services.lake import LakeWriter, StreamChange
from loyalty.services.reports import ReportService
from loyalty_local.provision import create_lake_bucket


def test_duckdb_reads_what_the_lake_writer_put_in_s3(aws_session: boto3.session.Session) -> None:
    s3 = aws_session.client("s3")
    bucket = f"lake-{uuid.uuid4().hex[:10]}"
    create_lake_bucket(s3, bucket)
    item: dict[str, Any] = {
        "pk": "TXN#ams-01#T1",
        "sk": "TXN",
        "type": "transaction",
        "store_id": "ams-01",
        "transaction_id": "T1",
        "txn_type": "sale",
        "channel": "pos",
        "occurred_at": "2026-03-02T10:00:00Z",
        "customer_id": None,
        "member": False,
        "total": "7.00",
    }
    change = StreamChange(
        "INSERT", {"pk": item["pk"], "sk": "TXN"}, item, None, "1", datetime(2026, 3, 2, 10, tzinfo=UTC)
    )
    LakeWriter(files=S3Lake(s3=s3, bucket=bucket)).write([change])
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["transactions/dt=2026-03-02/" + "1".zfill(40) + "-" + "1".zfill(40) + ".parquet"]

    reports = ReportService(queries=DuckDBQueries.over_s3(s3, bucket, aws_session.get_credentials()))
    (anonymous,) = [
        r
        for r in reports.members_vs_non_members(date(2026, 3, 1), date(2026, 3, 31)).rows
        if r["group"] == "anonymous"
    ]
    assert (anonymous["transactions"], str(anonymous["revenue"])) == (1, "7.00")
