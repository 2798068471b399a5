"""Where campaign runs keep their files (S3) and their outcomes (the table).

Keys: a run's record `CAMPRUN#<campaign>#<run>` / `RUN`, one outcome per batch under the same
partition (`BATCH#<n>`, a few thousand per run at most) and one marker per (run, item) in a
partition of its own (`CAMPRUN#<campaign>#<run>#ITEM#<item>` / `ITEM`), so a million items spread
over the table instead of heating one partition.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from loyalty.adapters.dynamo import DynamoTable, TransactionCancelled
from loyalty.domain.campaign_runs import BatchOutcome, InvalidTaskInput, RunRef, RunSummary
from loyalty.services.campaign_runs import AudienceLocation


def run_pk(run: RunRef) -> str:
    return f"CAMPRUN#{run.campaign_id}#{run.run_id}"


def item_pk(run: RunRef, item: str) -> str:
    return f"{run_pk(run)}#ITEM#{item}"


class S3RunFiles:
    """JSON files in the campaign runs bucket."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    def put_json(self, key: str, value: Any) -> None:
        self._client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(value, separators=(",", ":")).encode(),
            ContentType="application/json",
        )

    def get_json(self, key: str) -> Any:
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                raise InvalidTaskInput(f"{key} does not exist") from None
            raise
        return json.loads(body)


class S3AudienceList:
    """An audience file: one item id per line (blank lines skipped)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def items(self, location: AudienceLocation) -> Iterator[str]:
        try:
            body = self._client.get_object(Bucket=location.bucket, Key=location.key)["Body"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "NoSuchBucket", "404"):
                raise InvalidTaskInput(f"no audience file at s3://{location.bucket}/{location.key}") from None
            raise
        for line in body.iter_lines():
            text = line.decode("utf-8").strip()
            if text:
                yield text


class DynamoRunLedger:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def mark_item(self, run: RunRef, item: str) -> bool:
        marker = {
            "pk": item_pk(run, item),
            "sk": "ITEM",
            "campaign_id": run.campaign_id,
            "run_id": run.run_id,
            "item": item,
        }
        try:
            self._table.transact([self._table.put_op(marker, "attribute_not_exists(pk)")])
        except TransactionCancelled:
            return False
        return True

    def is_marked(self, run: RunRef, item: str) -> bool:
        return self._table.get(item_pk(run, item), "ITEM") is not None

    def save_batch(self, run: RunRef, outcome: BatchOutcome) -> None:
        self._table.put(
            {
                "pk": run_pk(run),
                "sk": f"BATCH#{outcome.batch:06d}",
                "batch": outcome.batch,
                "items": outcome.items,
                "done": outcome.done,
                "first_time": outcome.first_time,
                "failed": outcome.failed,
                "error": outcome.error,
            }
        )

    def batch_outcomes(self, run: RunRef) -> list[BatchOutcome]:
        outcomes: list[BatchOutcome] = []
        cursor: str | None = None
        while True:
            page, cursor = self._table.query(
                run_pk(run), sk_prefix="BATCH#", limit=1000, cursor=cursor, consistent=True
            )
            outcomes.extend(
                BatchOutcome(
                    batch=int(i["batch"]),
                    items=int(i["items"]),
                    done=int(i["done"]),
                    first_time=int(i["first_time"]),
                    failed=int(i["failed"]),
                    error=i.get("error"),
                )
                for i in page
            )
            if cursor is None:
                return outcomes

    def save_summary(self, run: RunRef, summary: RunSummary, finished_at: str) -> None:
        self._table.put({"pk": run_pk(run), "sk": "RUN", **summary.as_dict(), "finished_at": finished_at})

    def summary(self, run: RunRef) -> dict[str, Any] | None:
        return self._table.get(run_pk(run), "RUN")
