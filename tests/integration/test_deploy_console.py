"""`make deploy-console` puts the build under console/ with content types and removes stale files."""

from __future__ import annotations

import uuid
from pathlib import Path

import boto3

from tools.deploy_console import upload


def test_upload_puts_the_build_and_removes_what_it_no_longer_has(
    aws_session: boto3.session.Session, tmp_path: Path
) -> None:
    s3 = aws_session.client("s3")
    bucket = f"console-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": aws_session.region_name})
    s3.put_object(Bucket=bucket, Key="console/old-bundle.js", Body=b"old")
    s3.put_object(Bucket=bucket, Key="elsewhere/keep.txt", Body=b"not the console's")
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "app.js").write_text("export {};")
    (tmp_path / "app.css").write_text("body{}")

    put, deleted = upload(s3, bucket, tmp_path)

    assert put == ["console/app.css", "console/app.js", "console/index.html"]
    assert deleted == ["console/old-bundle.js"]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["console/app.css", "console/app.js", "console/index.html", "elsewhere/keep.txt"]
    head = s3.head_object(Bucket=bucket, Key="console/app.js")
    assert head["ContentType"] == "text/javascript; charset=utf-8"
    assert head["CacheControl"] == "no-cache"
    assert s3.head_object(Bucket=bucket, Key="console/index.html")["ContentType"].startswith("text/html")
