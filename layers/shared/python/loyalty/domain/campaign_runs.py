"""A campaign run's arithmetic: its ids, its batches and the sum Finish makes. No I/O.

A run is one execution of the campaign run workflow (resources.CAMPAIGN_RUN) or several: a run
stopped or failed midway is restarted under the same `run_id`, and everything it did before counts
(each item's effect is keyed by run and item, each batch's outcome by run and batch number).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

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
class BatchOutcome:
    """What one batch came to, as last recorded (a retry or a restart records it again).

    `done`: items whose effect exists after this batch (now or by an earlier attempt); `first_time`:
    those this attempt applied; `failed`: items of a batch whose every attempt failed (all of it)."""

    batch: int
    items: int
    done: int = 0
    first_time: int = 0
    failed: int = 0
    error: str | None = None


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
        }


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
        status="succeeded" if succeeded else "failed",
        items=expected_items,
        done=done,
        failed=failed,
        batches=expected_batches,
        batches_failed=batches_failed,
        batches_missing=missing,
        error=error,
    )
