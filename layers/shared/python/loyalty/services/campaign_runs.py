"""The campaign run workflow's three tasks (Prepare, Batch, Finish) over ports.

loyalty.campaigns holds the Lambda entry points and the input/output contract of each task; this
module is what they ask. The seams:

- `CampaignCatalogue` / `CampaignActor` (services.campaign_ports): the campaign, and who actions one
  customer on one occasion (`act`, keyed by campaign, occasion and customer: a retried batch, a
  restarted run, a run retried after a cancel give nobody anything twice);
- `SegmentAudience`: the members of the campaign's segment, exported once per run;
- `RunFiles` / `RunLedger`: batch files (S3) and batch outcomes (the table);
- `RunRecords`: the run's record (CAMPAIGN#<id> / RUN#<run_id>), shared with
  services.campaign_run_control, which starts, cancels and retries runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Protocol

from loyalty.adapters.dynamo import TxOp
from loyalty.domain.campaign_runs import (
    BatchOutcome,
    CampaignRun,
    InvalidTaskInput,
    RunRef,
    RunStatus,
    RunSummary,
    batches,
    checked_item,
    summarise,
    unique_items,
)
from loyalty.domain.campaigns import Campaign, Occasion
from loyalty.domain.errors import CampaignNotFound
from loyalty.services.campaign_ports import CampaignActor, CampaignCatalogue
from loyalty.services.ports import Clock


class SegmentAudience(Protocol):
    def members(self, segment_id: str) -> Iterable[str]:
        """Every member of the segment now, in a stable order."""
        ...


class RunFiles(Protocol):
    bucket: str

    def put_json(self, key: str, value: Any) -> None: ...

    def get_json(self, key: str) -> Any:
        """Raises InvalidTaskInput when there is no such file."""
        ...

    def find_json(self, key: str) -> Any | None: ...


class RunLedger(Protocol):
    def save_batch(self, run: RunRef, outcome: BatchOutcome) -> None: ...

    def batch_outcome(self, run: RunRef, batch: int) -> BatchOutcome | None: ...

    def batch_outcomes(self, run: RunRef) -> list[BatchOutcome]: ...

    def save_summary(self, run: RunRef, summary: RunSummary, finished_at: str) -> None: ...


class RunRecords(Protocol):
    def create(self, run: CampaignRun, extra: Sequence[TxOp] = ()) -> CampaignRun | None:
        """Write the record (with `extra`, in one transaction) unless the run exists; None when
        written, else the existing one. Raises TransactionCancelled when only `extra` failed."""
        ...

    def get(self, campaign_id: str, run_id: str) -> CampaignRun | None: ...

    def list(self, campaign_id: str, limit: int, cursor: str | None) -> tuple[list[CampaignRun], str | None]:
        """Newest first."""
        ...

    def restart(self, run: CampaignRun, attempt: int, execution: str, started_at: str) -> bool:
        """Move an ended run (its status and attempt as read) to a new running attempt; False when
        someone else changed it first."""
        ...

    def cancel(self, run: CampaignRun, finished_at: str) -> bool:
        """Mark a running attempt cancelled; False when it had ended (or moved on) first."""
        ...

    def fail(self, run: CampaignRun, error: str, finished_at: str) -> bool:
        """Mark a running attempt failed (its execution ended without Finish); False when it had
        ended (or moved on) first."""
        ...

    def set_audience(self, run: RunRef, audience: int) -> None: ...

    def finish(self, run: RunRef, summary: RunSummary, finished_at: str) -> RunStatus:
        """Write the final counts and status unless the record says cancelled (then those stay);
        a run started without a record (an execution started by hand) gets one. The status kept."""
        ...


@dataclass(frozen=True)
class Prepared:
    bucket: str
    manifest_key: str
    batches: int
    items: int

    def as_dict(self) -> dict[str, object]:
        return {
            "bucket": self.bucket,
            "manifest_key": self.manifest_key,
            "batches": self.batches,
            "items": self.items,
        }


PUT_WORKERS = 16


def run_prefix(run: RunRef) -> str:
    return f"runs/{run.campaign_id}/{run.run_id}/"


def run_occasion(run: RunRef) -> Occasion:
    """What a run's customers are actioned once for."""
    return Occasion(f"run:{run.run_id}", run.run_id)


class CampaignRuns:
    def __init__(
        self,
        *,
        catalogue: CampaignCatalogue,
        actor: CampaignActor,
        audience: SegmentAudience,
        files: RunFiles,
        ledger: RunLedger,
        records: RunRecords,
        clock: Clock,
        batch_size: int,
    ) -> None:
        self._catalogue = catalogue
        self._actor = actor
        self._audience = audience
        self._files = files
        self._ledger = ledger
        self._records = records
        self._clock = clock
        self._batch_size = batch_size

    def _campaign(self, run: RunRef) -> Campaign:
        try:
            return self._catalogue.get(run.campaign_id)
        except CampaignNotFound:
            # Deleted since the run started: no retry brings it back.
            raise InvalidTaskInput(f"campaign {run.campaign_id} does not exist") from None

    def prepare(self, run: RunRef, batch_size: int | None = None) -> Prepared:
        """Export the campaign's segment as batch files and their manifest, once per run: a retried
        or restarted run reuses the manifest, so a batch number names the same customers every
        time and the run's audience is the segment as it was when the run first started."""
        prefix = run_prefix(run)
        manifest_key = f"{prefix}manifest.json"
        existing = self._files.find_json(manifest_key)
        if isinstance(existing, list):
            items = sum(int(entry["items"]) for entry in existing)
            return Prepared(self._files.bucket, manifest_key, len(existing), items)
        campaign = self._campaign(run)
        if campaign.audience.segment_id is None:
            raise InvalidTaskInput(f"campaign {run.campaign_id} has no audience segment to run over")
        members = unique_items(self._audience.members(campaign.audience.segment_id))
        manifest = [
            {"batch": number, "key": f"{prefix}batches/{number:06d}.json", "items": len(chunk)}
            for number, chunk in batches(members, batch_size or self._batch_size)
        ]
        size = batch_size or self._batch_size

        def write(entry: dict[str, Any]) -> None:
            start = int(entry["batch"]) * size
            self._files.put_json(
                str(entry["key"]), {"batch": entry["batch"], "items": list(members[start : start + size])}
            )

        # A million customers are 10,000 files: written 16 at a time, well inside Prepare's timeout.
        with ThreadPoolExecutor(max_workers=PUT_WORKERS) as pool:
            list(pool.map(write, manifest))
        # Written last: a manifest names only batch files that exist.
        self._files.put_json(manifest_key, manifest)
        self._records.set_audience(run, len(members))
        return Prepared(self._files.bucket, manifest_key, len(manifest), len(members))

    def apply_batch(self, run: RunRef, batch: int, key: str) -> BatchOutcome:
        """Act on every customer of one batch file and record the batch's outcome. An exception
        leaves the outcome unrecorded: the state machine retries the whole batch, and the customers
        already answered get their recorded outcome back (`act` is keyed). A batch a retried run
        finds complete is not acted on again."""
        saved = self._ledger.batch_outcome(run, batch)
        if saved is not None and saved.complete:
            return BatchOutcome(
                batch=saved.batch, items=saved.items, done=saved.done, first_time=0, counts=saved.counts
            )
        body = self._files.get_json(self._checked_key(run, key))
        if (
            not isinstance(body, dict)
            or body.get("batch") != batch
            or not isinstance(body.get("items"), list)
        ):
            raise InvalidTaskInput(f"{key} is not batch {batch} of this run")
        items: Sequence[str] = [checked_item(item) for item in body["items"]]
        campaign = self._campaign(run)
        occasion = run_occasion(run)
        outcome = BatchOutcome.of(batch, [self._actor.act(campaign, occasion, item) for item in items])
        self._ledger.save_batch(run, outcome)
        return outcome

    def record_failure(self, run: RunRef, batch: int, items: int, error: str) -> BatchOutcome:
        """The Catch's record of a batch whose attempts all failed."""
        outcome = BatchOutcome.caught(batch, items, error)
        self._ledger.save_batch(run, outcome)
        return outcome

    def finish(self, run: RunRef, prepared: Prepared | None, error: str | None) -> RunSummary:
        if prepared is None:
            summary = summarise(0, 0, [], error or "the audience was not exported")
        else:
            summary = summarise(prepared.batches, prepared.items, self._ledger.batch_outcomes(run), error)
        finished_at = self._clock.now().isoformat()
        self._ledger.save_summary(run, summary, finished_at)
        status = self._records.finish(run, summary, finished_at)
        if status == "cancelled":
            return replace(summary, status="cancelled")
        return summary

    def _checked_key(self, run: RunRef, key: str) -> str:
        # A batch reads only its own run's files, whatever the map item says.
        if not key.startswith(run_prefix(run) + "batches/"):
            raise InvalidTaskInput(f"{key} is not a batch file of this run")
        return key
