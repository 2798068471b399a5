"""Where campaign runs keep their files (S3), their outcomes and their records (the table).

Keys: a run's record `CAMPAIGN#<campaign>` / `RUN#<run_id>` (status, attempt, execution, counts:
services.campaign_run_control reads and lists these); the workflow's summary
`CAMPRUN#<campaign>#<run>` / `RUN` and one outcome per batch under the same partition
(`BATCH#<n>`, a few thousand per run at most: summed while the run runs).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from loyalty.adapters.dynamo import DynamoTable, Item, TransactionCancelled, TxOp
from loyalty.adapters.segments import SHARDS, SegmentRepository
from loyalty.domain.campaign_runs import (
    BatchOutcome,
    CampaignRun,
    InvalidTaskInput,
    RunCounts,
    RunRef,
    RunStatus,
    RunSummary,
)

RUN_SK_PREFIX = "RUN#"


def run_pk(run: RunRef) -> str:
    return f"CAMPRUN#{run.campaign_id}#{run.run_id}"


def record_key(campaign_id: str, run_id: str) -> tuple[str, str]:
    return f"CAMPAIGN#{campaign_id}", f"{RUN_SK_PREFIX}{run_id}"


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
        found = self.find_json(key)
        if found is None:
            raise InvalidTaskInput(f"{key} does not exist")
        return found

    def find_json(self, key: str) -> Any | None:
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        return json.loads(body)


class SegmentMembers:
    """A segment's members, shard by shard (each shard's in customer id order)."""

    def __init__(self, table: DynamoTable) -> None:
        self._segments = SegmentRepository(table)

    def members(self, segment_id: str) -> Iterator[str]:
        for shard in range(SHARDS):
            yield from self._segments.members(segment_id, shard)


def counts_to_item(counts: RunCounts) -> dict[str, Any]:
    return {
        "audience": counts.audience,
        "control": counts.control,
        "actioned": counts.actioned,
        "skipped": {k: v for k, v in counts.skipped.items() if v},
        "failed": counts.failed,
    }


def counts_from_item(raw: Mapping[str, Any] | None) -> RunCounts:
    if not raw:
        return RunCounts()
    return RunCounts(
        audience=int(raw.get("audience", 0)),
        control=int(raw.get("control", 0)),
        actioned=int(raw.get("actioned", 0)),
        skipped={str(k): int(v) for k, v in (raw.get("skipped") or {}).items()},
        failed=int(raw.get("failed", 0)),
    )


def outcome_from_item(item: Item) -> BatchOutcome:
    return BatchOutcome(
        batch=int(item["batch"]),
        items=int(item["items"]),
        done=int(item["done"]),
        first_time=int(item["first_time"]),
        failed=int(item["failed"]),
        error=item.get("error"),
        counts=counts_from_item(item.get("counts")),
    )


class DynamoRunLedger:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

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
                "counts": counts_to_item(outcome.counts),
            }
        )

    def batch_outcome(self, run: RunRef, batch: int) -> BatchOutcome | None:
        item = self._table.get(run_pk(run), f"BATCH#{batch:06d}")
        return outcome_from_item(item) if item else None

    def batch_outcomes(self, run: RunRef) -> list[BatchOutcome]:
        outcomes: list[BatchOutcome] = []
        cursor: str | None = None
        while True:
            page, cursor = self._table.query(
                run_pk(run), sk_prefix="BATCH#", limit=1000, cursor=cursor, consistent=True
            )
            outcomes.extend(outcome_from_item(i) for i in page)
            if cursor is None:
                return outcomes

    def save_summary(self, run: RunRef, summary: RunSummary, finished_at: str) -> None:
        self._table.put({"pk": run_pk(run), "sk": "RUN", **summary.as_dict(), "finished_at": finished_at})

    def summary(self, run: RunRef) -> dict[str, Any] | None:
        return self._table.get(run_pk(run), "RUN")


def record_from_item(item: Item) -> CampaignRun:
    return CampaignRun(
        campaign_id=str(item["campaign_id"]),
        run_id=str(item["run_id"]),
        status=item["status"],
        trigger=str(item.get("trigger", "manual")),
        attempt=int(item.get("attempt", 1)),
        execution=str(item.get("execution", "")),
        started_at=str(item["started_at"]),
        finished_at=item.get("finished_at"),
        audience=int(item["audience"]) if item.get("audience") is not None else None,
        counts=counts_from_item(item["counts"]) if item.get("counts") else None,
        error=item.get("error"),
    )


class DynamoRunRecords:
    """Runs' records, one per run under their campaign's partition (listed newest first: run ids
    the service makes start with the start time)."""

    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def create(self, run: CampaignRun, extra: Sequence[TxOp] = ()) -> CampaignRun | None:
        pk, sk = record_key(run.campaign_id, run.run_id)
        item = {
            "pk": pk,
            "sk": sk,
            "campaign_id": run.campaign_id,
            "run_id": run.run_id,
            "status": run.status,
            "trigger": run.trigger,
            "attempt": run.attempt,
            "execution": run.execution,
            "started_at": run.started_at,
        }
        try:
            self._table.transact([self._table.put_op(item, "attribute_not_exists(pk)"), *extra])
        except TransactionCancelled:
            existing = self.get(run.campaign_id, run.run_id)
            if existing is None:
                raise  # not the run: an idempotency record written meanwhile (the caller replays it)
            return existing
        return None

    def get(self, campaign_id: str, run_id: str) -> CampaignRun | None:
        item = self._table.get(*record_key(campaign_id, run_id))
        return record_from_item(item) if item else None

    def list(self, campaign_id: str, limit: int, cursor: str | None) -> tuple[list[CampaignRun], str | None]:
        items, next_cursor = self._table.query(
            f"CAMPAIGN#{campaign_id}",
            sk_prefix=RUN_SK_PREFIX,
            limit=limit,
            cursor=cursor,
            newest_first=True,
            consistent=True,
        )
        return [record_from_item(i) for i in items], next_cursor

    def restart(self, run: CampaignRun, attempt: int, execution: str, started_at: str) -> bool:
        op = self._table.update_op(
            *record_key(run.campaign_id, run.run_id),
            "SET #status = :running, #attempt = :attempt, #execution = :execution, "
            "#started_at = :started REMOVE #finished_at, #counts, #error",
            condition="#status = :was AND #attempt = :was_attempt",
            values={
                ":running": "running",
                ":attempt": attempt,
                ":execution": execution,
                ":started": started_at,
                ":was": run.status,
                ":was_attempt": run.attempt,
            },
        )
        return self._applied(op)

    def cancel(self, run: CampaignRun, finished_at: str) -> bool:
        op = self._table.update_op(
            *record_key(run.campaign_id, run.run_id),
            "SET #status = :cancelled, #finished_at = :at",
            condition="#status = :running AND #attempt = :attempt",
            values={
                ":cancelled": "cancelled",
                ":at": finished_at,
                ":running": "running",
                ":attempt": run.attempt,
            },
        )
        return self._applied(op)

    def fail(self, run: CampaignRun, error: str, finished_at: str) -> bool:
        op = self._table.update_op(
            *record_key(run.campaign_id, run.run_id),
            "SET #status = :failed, #finished_at = :at, #error = :error",
            condition="#status = :running AND #attempt = :attempt",
            values={
                ":failed": "failed",
                ":at": finished_at,
                ":error": error[:500],
                ":running": "running",
                ":attempt": run.attempt,
            },
        )
        return self._applied(op)

    def set_audience(self, run: RunRef, audience: int) -> None:
        op = self._table.update_op(
            *record_key(run.campaign_id, run.run_id),
            "SET #audience = :n",
            condition="attribute_exists(pk)",
            values={":n": audience},
        )
        self._applied(op)  # no record (an execution started by hand): Finish makes one

    def finish(self, run: RunRef, summary: RunSummary, finished_at: str) -> RunStatus:
        op = self._table.update_op(
            *record_key(run.campaign_id, run.run_id),
            "SET #status = :status, #finished_at = :at, #counts = :counts, #audience = :audience, "
            "#error = :error, #campaign_id = :campaign, #run_id = :run, "
            "#started_at = if_not_exists(#started_at, :at), #trigger = if_not_exists(#trigger, :trigger), "
            "#attempt = if_not_exists(#attempt, :one), #execution = if_not_exists(#execution, :none)",
            condition="attribute_not_exists(pk) OR #status = :running",
            values={
                ":status": summary.status,
                ":at": finished_at,
                ":counts": counts_to_item(summary.counts),
                ":audience": summary.items,
                ":error": summary.error,
                ":campaign": run.campaign_id,
                ":run": run.run_id,
                ":trigger": "execution",
                ":one": 1,
                ":none": "",
                ":running": "running",
            },
        )
        if self._applied(op):
            return "succeeded" if summary.status == "succeeded" else "failed"
        found = self.get(run.campaign_id, run.run_id)
        return found.status if found is not None else "failed"

    def _applied(self, op: Any) -> bool:
        try:
            self._table.transact([op])
        except TransactionCancelled:
            return False
        return True
