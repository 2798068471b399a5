"""The campaign run workflow's three tasks (Prepare, Batch, Finish) over ports.

loyalty.campaigns holds the Lambda entry points and the input/output contract of each task; this
module is what they ask. The seams the campaign work plugs into:

- `AudienceSource`: where a run's audience comes from (today a list of ids in S3; a segment's
  export later);
- `ItemAction`: what a run does to one item (today: mark it done, once; a campaign's actions —
  coupon, points, message — later), called with the run and the item, keyed by both;
- `RunFiles` / `RunLedger`: where batch files and outcomes are kept (S3, the table).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from loyalty.domain.campaign_runs import (
    BatchOutcome,
    InvalidTaskInput,
    RunRef,
    RunSummary,
    batches,
    checked_item,
    summarise,
    unique_items,
)
from loyalty.services.ports import Clock


@dataclass(frozen=True)
class AudienceLocation:
    bucket: str
    key: str

    @classmethod
    def of(cls, raw: object) -> AudienceLocation:
        if not isinstance(raw, dict) or not all(
            isinstance(raw.get(k), str) and raw[k] for k in ("bucket", "key")
        ):
            raise InvalidTaskInput("audience must be {bucket, key} naming the audience file")
        return cls(str(raw["bucket"]), str(raw["key"]))


class AudienceSource(Protocol):
    def items(self, location: AudienceLocation) -> Iterator[str]: ...


class RunFiles(Protocol):
    bucket: str

    def put_json(self, key: str, value: Any) -> None: ...

    def get_json(self, key: str) -> Any: ...


class RunLedger(Protocol):
    def mark_item(self, run: RunRef, item: str) -> bool:
        """Record the item as done for the run, once (a conditional put); True the first time."""
        ...

    def save_batch(self, run: RunRef, outcome: BatchOutcome) -> None: ...

    def batch_outcomes(self, run: RunRef) -> list[BatchOutcome]: ...

    def save_summary(self, run: RunRef, summary: RunSummary, finished_at: str) -> None: ...


class ItemAction(Protocol):
    def apply(self, run: RunRef, item: str) -> bool:
        """Apply the run's action to one item, at most once per (run, item); True if this call did."""
        ...


class MarkDone:
    """The action until campaigns bring theirs: the item is marked done for the run, once."""

    def __init__(self, *, ledger: RunLedger) -> None:
        self._ledger = ledger

    def apply(self, run: RunRef, item: str) -> bool:
        return self._ledger.mark_item(run, item)


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


def run_prefix(run: RunRef) -> str:
    return f"runs/{run.campaign_id}/{run.run_id}/"


class CampaignRuns:
    def __init__(
        self,
        *,
        audience: AudienceSource,
        files: RunFiles,
        ledger: RunLedger,
        action: ItemAction,
        clock: Clock,
        batch_size: int,
    ) -> None:
        self._audience = audience
        self._files = files
        self._ledger = ledger
        self._action = action
        self._clock = clock
        self._batch_size = batch_size

    def prepare(self, run: RunRef, location: AudienceLocation, batch_size: int | None = None) -> Prepared:
        """Export the audience as batch files and their manifest. Deterministic: a restarted run
        writes the same files again, so a batch number names the same items every time."""
        items = unique_items(self._audience.items(location))
        prefix = run_prefix(run)
        manifest = []
        for number, chunk in batches(items, batch_size or self._batch_size):
            key = f"{prefix}batches/{number:06d}.json"
            self._files.put_json(key, {"batch": number, "items": list(chunk)})
            manifest.append({"batch": number, "key": key, "items": len(chunk)})
        # Written last: a manifest names only batch files that exist.
        manifest_key = f"{prefix}manifest.json"
        self._files.put_json(manifest_key, manifest)
        return Prepared(self._files.bucket, manifest_key, len(manifest), len(items))

    def apply_batch(self, run: RunRef, batch: int, key: str) -> BatchOutcome:
        """Apply the action to every item of one batch file and record the batch's outcome. An
        exception leaves the outcome unrecorded: the state machine retries the whole batch, and the
        items already done are skipped by their keys."""
        body = self._files.get_json(self._checked_key(run, key))
        if (
            not isinstance(body, dict)
            or body.get("batch") != batch
            or not isinstance(body.get("items"), list)
        ):
            raise InvalidTaskInput(f"{key} is not batch {batch} of this run")
        items: Sequence[str] = [checked_item(item) for item in body["items"]]
        first_time = sum(1 for item in items if self._action.apply(run, item))
        outcome = BatchOutcome(batch=batch, items=len(items), done=len(items), first_time=first_time)
        self._ledger.save_batch(run, outcome)
        return outcome

    def record_failure(self, run: RunRef, batch: int, items: int, error: str) -> BatchOutcome:
        """The Catch's record of a batch whose attempts all failed: every item of it counts failed
        (some may have been applied before the failure; a restart completes them once)."""
        outcome = BatchOutcome(batch=batch, items=items, failed=items, error=error[:500])
        self._ledger.save_batch(run, outcome)
        return outcome

    def finish(self, run: RunRef, prepared: Prepared | None, error: str | None) -> RunSummary:
        if prepared is None:
            summary = summarise(0, 0, [], error or "the audience was not exported")
        else:
            summary = summarise(prepared.batches, prepared.items, self._ledger.batch_outcomes(run), error)
        self._ledger.save_summary(run, summary, self._clock.now().isoformat())
        return summary

    def _checked_key(self, run: RunRef, key: str) -> str:
        # A batch reads only its own run's files, whatever the map item says.
        if not key.startswith(run_prefix(run) + "batches/"):
            raise InvalidTaskInput(f"{key} is not a batch file of this run")
        return key
