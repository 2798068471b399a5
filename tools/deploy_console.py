"""`make deploy-console`: upload the built console (build/console) to its bucket and refresh CloudFront.

After `cdk deploy --all`, the console stack (`Loyalty-<stage>-console`) names its bucket and
distribution in its outputs. This puts every file under console/ with its content type, removes
files the new build no longer has, and invalidates /console/* so browsers get the new build at once.
"""

from __future__ import annotations

import argparse
import mimetypes
import sys
import time
from pathlib import Path
from typing import Any

import boto3

from loyalty.resources import CONSOLE

REPO = Path(__file__).resolve().parents[1]
PREFIX = CONSOLE.path.strip("/") + "/"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def content_type(path: Path) -> str:
    if path.suffix in TYPES:
        return TYPES[path.suffix]
    guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return guessed + "; charset=utf-8" if guessed.startswith("text/") else guessed


def upload(s3: Any, bucket: str, folder: Path) -> tuple[list[str], list[str]]:
    """Put every file of the build under console/, then delete what the build no longer has.
    Returns (put, deleted) keys. index.html and the bundle keep fixed names: no-cache makes
    browsers and CloudFront revalidate them, so a new build is never mixed with an old one."""
    if not (folder / CONSOLE.index).is_file():
        raise SystemExit(f"{folder} holds no console build: run `make console` first")
    put = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = PREFIX + path.relative_to(folder).as_posix()
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=path.read_bytes(),
            ContentType=content_type(path),
            CacheControl="no-cache",
        )
        put.append(key)
    listed = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX)
    stale = [o["Key"] for page in listed for o in page.get("Contents", []) if o["Key"] not in put]
    for start in range(0, len(stale), 1000):
        batch = [{"Key": key} for key in stale[start : start + 1000]]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    return put, stale


def outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def main(argv: list[str] | None = None) -> int:
    summary = (__doc__ or "").splitlines()[0]
    parser = argparse.ArgumentParser(prog="python -m tools.deploy_console", description=summary)
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--dir", default=str(REPO / "build" / "console"))
    args = parser.parse_args(argv)
    found = outputs(boto3.client("cloudformation"), f"Loyalty-{args.stage}-console")
    put, deleted = upload(boto3.client("s3"), found["ConsoleBucketName"], Path(args.dir))
    boto3.client("cloudfront").create_invalidation(
        DistributionId=found["ConsoleDistributionId"],
        InvalidationBatch={
            "Paths": {"Quantity": 1, "Items": [f"{CONSOLE.path}/*"]},
            "CallerReference": f"console-{time.time_ns()}",
        },
    )
    print(f"console: {len(put)} files up, {len(deleted)} removed; {found['ConsoleUrl']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
