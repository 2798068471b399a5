"""A campaign run's arithmetic: its ids, its batches and the sum Finish makes. No I/O.

A run is one execution of the campaign run workflow (resources.CAMPAIGN_RUN) or several: a run
stopped or failed midway is restarted under the same `run_id`, and everything it did before counts
(each item's effect is keyed by run and item, each batch's outcome by run and batch number).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from loyalty.domain.campaigns import SKIP_REASONS, ActResult

# Ids become parts of table keys, S3 keys and execution names: a conservative alphabet.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
# Audience items (customer ids, later): anything printable that cannot split a key.
_ITEM = re.compile(r"^[^\s#/]{1,128}$")


class InvalidTaskInput(ValueError):
    """A task's input that no retry can mend. The class name is the error the state machine sees:
    the batch's Retry leaves it to the Catch (resources.CAMPAIGN_RUN.not_retried)."""


def checked_id(value: object, field: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidTaskInput(f"{field} must be 1-64 letters, digits or _.:- (got {value!r})")
    return value


def checked_item(value: object) -> str:
    if not isinstance(value, str) or not _ITEM.match(value):
        raise InvalidTaskInput(
            f"an audience item must be 1-128 characters without spaces, # or / ({value!r})"
        )
    return value


@dataclass(frozen=True)
class RunRef:
    campaign_id: str
    run_id: str

    @classmethod
    def of(cls, raw: dict[str, object]) -> RunRef:
        return cls(checked_id(raw.get("campaign_id"), "campaign_id"), checked_id(raw.get("run_id"), "run_id"))


def unique_items(items: Iterable[str]) -> list[str]:
    """The audience in its order, each item once (an export may list a customer twice)."""
    return list(dict.fromkeys(checked_item(item) for item in items))


def batches(items: Sequence[str], size: int) -> Iterator[tuple[int, Sequence[str]]]:
    """(number, items) per batch of at most `size`, numbered from 0 in the audience's order, so a
    restarted run cuts the same batches again."""
    if size < 1:
        raise InvalidTaskInput("batch_size must be at least 1")
    for number, start in enumerate(range(0, len(items), size)):
        yield number, items[start : start + size]


@dataclass(frozen=True)
class RunCounts:
    """What a run's customers came to: held out (`control`), given the campaign (`actioned`), left
    out by reason (`skipped`, every SkipReason present), or in a batch that failed (`failed`)."""

    audience: int = 0
    control: int = 0
    actioned: int = 0
    skipped: Mapping[str, int] = field(default_factory=dict)
    failed: int = 0

    @property
    def answered(self) -> int:
        return self.control + self.actioned + sum(self.skipped.values())

    def plus(self, other: RunCounts) -> RunCounts:
        skipped = dict(self.skipped)
        for reason, n in other.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + n
        return RunCounts(
            self.audience + other.audience,
            self.control + other.control,
            self.actioned + other.actioned,
            skipped,
            self.failed + other.failed,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "audience": self.audience,
            "control": self.control,
            "actioned": self.actioned,
            "skipped": {reason: int(self.skipped.get(reason, 0)) for reason in SKIP_REASONS},
            "failed": self.failed,
        }

    @classmethod
    def of(cls, results: Iterable[ActResult]) -> RunCounts:
        control = actioned = failed = 0
        skipped: dict[str, int] = {}
        for result in results:
            if result.outcome == "control":
                control += 1
            elif result.outcome == "actioned":
                actioned += 1
            elif result.outcome == "skipped":
                reason = result.reason or "gone"
                skipped[reason] = skipped.get(reason, 0) + 1
            else:
                failed += 1
        return cls(0, control, actioned, skipped, failed)


@dataclass(frozen=True)
class BatchOutcome:
    """What one batch came to, as last recorded (a retry or a restart records it again).

    `done`: items answered (actioned, held out or skipped, now or by an earlier attempt);
    `first_time`: those this attempt wrote; `failed`: items of a batch whose every attempt failed
    (all of it) or that the actor answered `failed`; `counts`: the answers by outcome and reason."""

    batch: int
    items: int
    done: int = 0
    first_time: int = 0
    failed: int = 0
    error: str | None = None
    counts: RunCounts = field(default_factory=RunCounts)

    @property
    def complete(self) -> bool:
        """Every item answered and none failed: a later attempt has nothing left to do here."""
        return self.error is None and self.failed == 0 and self.done == self.items

    @classmethod
    def caught(cls, batch: int, items: int, error: str) -> BatchOutcome:
        """The Catch's record of a batch whose attempts all failed: every item of it counts failed
        (some may have been actioned before the failure; a retry answers them once)."""
        return cls(batch=batch, items=items, failed=items, error=error[:500], counts=RunCounts(failed=items))

    @classmethod
    def of(cls, batch: int, results: Sequence[ActResult]) -> BatchOutcome:
        counts = RunCounts.of(results)
        return cls(
            batch=batch,
            items=len(results),
            done=counts.answered,
            first_time=sum(1 for r in results if r.first_time and r.outcome in ("actioned", "control")),
            failed=counts.failed,
            counts=counts,
        )


@dataclass(frozen=True)
class RunSummary:
    status: str  # "succeeded" | "failed"
    items: int  # the audience, deduplicated
    done: int
    failed: int
    batches: int
    batches_failed: int
    batches_missing: int  # batches of the manifest with no outcome (a run stopped, a map that failed)
    error: str | None = None
    counts: RunCounts = field(default_factory=RunCounts)

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "items": self.items,
            "done": self.done,
            "failed": self.failed,
            "batches": self.batches,
            "batches_failed": self.batches_failed,
            "batches_missing": self.batches_missing,
            "error": self.error,
            "counts": self.counts.as_dict(),
        }


def sum_counts(audience: int, outcomes: Iterable[BatchOutcome]) -> RunCounts:
    """A run's counts from its batches' outcomes (the latest of each batch: exact while running)."""
    total = RunCounts(audience=audience)
    for outcome in outcomes:
        total = total.plus(outcome.counts)
    return total


def summarise(
    expected_batches: int, expected_items: int, outcomes: Iterable[BatchOutcome], error: str | None = None
) -> RunSummary:
    """The run succeeded when every batch of its manifest is done, item for item, and no step of
    the workflow failed; otherwise it failed, with what got done counted all the same."""
    by_batch = {o.batch: o for o in outcomes if 0 <= o.batch < expected_batches}
    done = sum(o.done for o in by_batch.values())
    failed = sum(o.failed for o in by_batch.values())
    batches_failed = sum(1 for o in by_batch.values() if o.failed or o.error)
    missing = expected_batches - len(by_batch)
    succeeded = error is None and not missing and not batches_failed and done == expected_items
    return RunSummary(
        counts=sum_counts(expected_items, by_batch.values()),
        status="succeeded" if succeeded else "failed",
        items=expected_items,
        done=done,
        failed=failed,
        batches=expected_batches,
        batches_failed=batches_failed,
        batches_missing=missing,
        error=error,
    )


# ---- a run's record -------------------------------------------------------------------------------

RunStatus: TypeAlias = Literal["running", "succeeded", "failed", "cancelled"]
RunTrigger: TypeAlias = Literal["manual", "schedule"]
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def execution_name(campaign_id: str, run_id: str, attempt: int) -> str:
    """A Step Functions execution name for a run's attempt (at most 80 of [A-Za-z0-9_-]): readable
    parts, and a hash of the exact ids so two runs whose ids differ only in dropped characters (a
    `:` of a scheduled time) never share one. Starting the same name again starts nothing."""
    digest = hashlib.sha256(f"{campaign_id}\n{run_id}".encode()).hexdigest()[:10]
    campaign = _NAME_UNSAFE.sub("_", campaign_id)[:28]
    run = _NAME_UNSAFE.sub("_", run_id)[:32]
    return f"{campaign}-{run}-{digest}-{attempt}"


@dataclass(frozen=True)
class CampaignRun:
    """A run's record (CAMPAIGN#<id> / RUN#<run_id>): which attempt runs which execution, and once
    finished, the counts Finish summed."""

    campaign_id: str
    run_id: str
    status: RunStatus
    trigger: str
    attempt: int
    execution: str
    started_at: str
    finished_at: str | None = None
    audience: int | None = None  # set by Prepare
    counts: RunCounts | None = None  # set by Finish (the final counts)
    error: str | None = None

    @property
    def ref(self) -> RunRef:
        return RunRef(self.campaign_id, self.run_id)
