"""DuckDB reading the lake from moto's S3 through its httpfs extension, written there by the lake
writer's S3 adapter. (Athena's adapter is checked with botocore's Stubber in
tests/unit/test_athena_queries.py: moto 5.2 answers Athena's JSON protocol, and this botocore
speaks Athena's rest-json, which moto answers 404.)"""

from __future__ import annotations

import tempfile
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import boto3
import duckdb

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


def test_compaction_and_erasure_over_s3_keep_the_answers_and_leave_no_version_behind(
    aws_session: boto3.session.Session,
) -> None:
    """On moto's S3 (versioned, as the CDK app makes the bucket): compaction's conditional puts and
    deletes, reports through httpfs over the snapshot, and an erasure that deletes the earlier
    versions of what it rewrote."""
    from loyalty.adapters.lake_compaction import DuckDBParquetWork
    from loyalty.services.compaction import LakeCompactor

    s3 = aws_session.client("s3")
    bucket = f"lake-{uuid.uuid4().hex[:10]}"
    create_lake_bucket(s3, bucket)
    objects = S3Lake(s3=s3, bucket=bucket)
    changes = []
    for day in range(1, 5):
        when = datetime(2026, 3, day, 10, tzinfo=UTC)
        for cid in ("ann", "bob"):
            profile = {"pk": f"CUST#{cid}", "sk": "PROFILE", "type": "customer", "customer_id": cid,
                       "member": True, "enrolled_at": "2026-03-01T10:00:00Z", "version": day}  # fmt: skip
            sale = {"pk": f"TXN#ams-01#{cid}{day}", "sk": "TXN", "type": "transaction",
                    "store_id": "ams-01", "transaction_id": f"{cid}{day}", "txn_type": "sale",
                    "channel": "pos", "occurred_at": when.isoformat(), "customer_id": cid,
                    "member": True, "total": "3.00"}  # fmt: skip
            for item in (profile, sale):
                seq = str(len(changes) + 1)
                name = "INSERT" if day == 1 else "MODIFY"
                keys = {"pk": item["pk"], "sk": item["sk"]}
                changes.append(StreamChange(name, keys, item, None, seq, when))
    LakeWriter(files=objects).write(changes[: len(changes) // 2])
    LakeWriter(files=objects).write(changes[len(changes) // 2 :])
    reports = ReportService(queries=DuckDBQueries.over_s3(s3, bucket, aws_session.get_credentials()))
    before = reports.members_vs_non_members(date(2026, 3, 1), date(2026, 3, 31)).rows

    compactor = LakeCompactor(objects=objects, parquet=DuckDBParquetWork(),
                              now=lambda: datetime(2026, 3, 4, 12, tzinfo=UTC))  # fmt: skip
    assert compactor.compact().outcome == "compacted"  # 1 and 2 March closed
    assert reports.queries.manifest() is not None
    assert reports.members_vs_non_members(date(2026, 3, 1), date(2026, 3, 31)).rows == before

    done = compactor.erase(["ann"])
    assert done.files_rewritten > 0
    personal = [k for k in objects.keys("") if k.startswith(("customers/", "_snapshots/customers/"))]
    for key in personal:
        versions = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
        assert len([v for v in versions if v["Key"] == key]) == 1, key  # no earlier version of hers
        with tempfile.TemporaryDirectory() as tmp:
            assert objects.download(key, Path(tmp) / "file.parquet") is not None
            source = f"read_parquet('{Path(tmp) / 'file.parquet'}', hive_partitioning = false)"
            (hers,) = duckdb.sql(f"SELECT count(*) FROM {source} WHERE customer_id = 'ann'").fetchone() or (
                0,
            )
        assert hers == 0, key
    assert objects.keys("_lake/erased/") == ["_lake/erased/ann"]
    # Her sales stay, as business facts: the members' totals do not move.
    assert reports.members_vs_non_members(date(2026, 3, 1), date(2026, 3, 31)).rows == before
