"""Lake compaction and erasure: closed days' small files as one file per kind and day, per-kind
snapshots of the current state, and an erased customer's rows out of every file of a personal kind.

The layout it keeps beside the stream writer's `<kind>/dt=<day>/<batch>.parquet`:

- `<kind>/dt=<day>/compacted-<digest>.parquet`: a closed day's change rows, each once, sorted by the
  kind's cluster columns. A day is closed once the stream cannot write into it any more: its
  changes are dated by their stream record's creation time, and a record lives 24 hours in the
  stream (a retried batch rewrites its files at most that long), so `CLOSE_AFTER` (a day) after
  the day ends. Reports never need these files to be compacted; analysts' queries of the change
  tables read fewer objects.
- `_snapshots/<kind>/generation=<g>/snapshot.parquet`: the latest image per key of every change
  row up to and including the manifest's `closed_through`, without removed and expired records
  (the `*_current` views' meaning), sorted by the kind's cluster columns (reports' time columns,
  so Athena skips row groups by their statistics).
- `_lake/manifest.json`: the current generation, what it covers and the previous generation.
  Reports read it first, then read `<kind>_snapshot` of that generation and only the change rows of
  the days after `closed_through` (loyalty.services.report_sql.current): exact, as fresh as the
  stream writer, and they deduplicate a day or two of changes instead of the whole history. A
  key's changes are dated in order (one key, one shard, creation times in order), so a change after
  `closed_through` is always newer than the key's snapshot row.
- `_lake/erased/<customer_id>`: one empty object per erased customer (created, never rewritten,
  so two erasures never race on a list).

Why a crash, a second run or a concurrent writer loses and doubles nothing:

- Every file is written complete under a new name (or, for an erasure, in place with If-Match on
  the version read), and the manifest is swapped last, in one conditional put (If-Match on the
  ETag read at the start, If-None-Match for the first one). Until the swap, readers keep using the
  previous generation; a run that crashes before it leaves only unreferenced files, which a later
  run deletes. Two runs at once: both build a complete generation; one swap wins, the other's
  conditional put fails and it stops (its files are garbage too).
- A day's compacted file is named by a digest of the files it was made of; its inputs are deleted
  only after it is stored. A crash in between leaves the day's changes twice (the compacted file
  and some inputs): the current state is the same (the latest per key is one of two identical
  rows), and the next run compacts the day again, from the compacted file and the leftovers.
- The stream writer never writes into a closed day, and compaction touches no open day.
- Old generations are deleted only when they are neither current nor previous and older than
  `KEEP_GENERATIONS` (an hour: longer than any report reads and any compaction runs), so neither a
  report still reading one nor a concurrent run about to swap to its own loses files.

Erasure (`erase`): the customer's id is recorded in `_lake/erased/` first, then every file of every
personal kind (change files of every day and every snapshot generation) holding a row of them by
customer_id or by change key is rewritten without those rows, conditionally on the version read,
and the earlier versions of a rewritten object are deleted (the bucket is versioned). Compaction
reads the erased ids at its start and filters every file it writes, then reads them again after
its last write and before the swap, scrubbing its own new files of any customer erased meanwhile.
Either compaction's second read sees an id, or the id was recorded after compaction's files were
stored, in which case the erasure's listing (which follows the recording) finds and rewrites them:
no order of the two brings an erased customer's rows back. A stream record older than the erasure
that reaches the lake after it (a lagging or retried stream batch) lands in an open day, which
compaction filters when the day closes.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol

from loyalty.services.lake import (
    ERASED_PREFIX,
    KINDS,
    MANIFEST_KEY,
    SNAPSHOT_PREFIX,
    Kind,
    LakeManifest,
    snapshot_key,
)

CLOSE_AFTER = timedelta(days=1)
KEEP_GENERATIONS = timedelta(hours=1)
COMPACTED = "compacted-"
_DAY = re.compile(r"^(?P<kind>[a-z_]+)/dt=(?P<day>\d{4}-\d{2}-\d{2})/(?P<name>[^/]+\.parquet)$")
_GENERATION_KEY = re.compile(
    rf"^{SNAPSHOT_PREFIX}/(?P<kind>[a-z_]+)/generation=(?P<generation>[0-9A-Za-z-]+)/"
)


class LakeObjects(Protocol):
    """The lake's objects (S3, or a folder in tests and the bench)."""

    def keys(self, prefix: str) -> list[str]: ...

    def download(self, key: str, target: Path) -> str | None: ...

    def upload(
        self, key: str, source: Path, *, if_match: str | None = None, if_absent: bool = False
    ) -> bool: ...

    def read_text(self, key: str) -> tuple[str, str] | None: ...

    def write_text(
        self, key: str, text: str, *, if_match: str | None = None, if_absent: bool = False
    ) -> bool: ...

    def delete(self, keys: Sequence[str]) -> None: ...

    def purge_history(self, key: str) -> None: ...


@dataclass(frozen=True)
class Rewrite:
    rows: int
    newest: datetime | None  # the newest changed_at among the change rows read


class ParquetWork(Protocol):
    def merge_day(
        self, kind: Kind, inputs: Sequence[Path], output: Path, erased: Collection[str]
    ) -> Rewrite: ...

    def build_snapshot(
        self, kind: Kind, previous: Path | None, days: Sequence[Path], output: Path, erased: Collection[str]
    ) -> Rewrite: ...

    def drop_customers(self, kind: Kind, source: Path, output: Path, erased: Collection[str]) -> int: ...


@dataclass
class CompactionReport:
    outcome: str  # compacted | up_to_date | lost_race
    closed_through: str | None = None
    generation: str | None = None
    days_compacted: int = 0
    files_read: int = 0
    rows_read: int = 0
    snapshot_rows: dict[str, int] = field(default_factory=dict)
    newest: dict[str, datetime | None] = field(default_factory=dict)
    generations_deleted: int = 0
    seconds: float = 0.0


@dataclass
class ErasureReport:
    customers: int
    files_rewritten: int = 0
    rows_removed: int = 0


def _generation_time(generation: str) -> datetime | None:
    try:
        return datetime.strptime(generation[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclass
class LakeCompactor:
    objects: LakeObjects
    parquet: ParquetWork
    now: Callable[[], datetime]
    close_after: timedelta = CLOSE_AFTER
    keep_generations: timedelta = KEEP_GENERATIONS
    kinds: tuple[Kind, ...] = KINDS

    # ---- reading the state -----------------------------------------------------------------

    def manifest(self) -> tuple[LakeManifest | None, str | None]:
        found = self.objects.read_text(MANIFEST_KEY)
        if found is None:
            return None, None
        text, tag = found
        return LakeManifest.from_json(text), tag

    def erased(self) -> set[str]:
        return {key.removeprefix(ERASED_PREFIX) for key in self.objects.keys(ERASED_PREFIX)}

    def closed_through(self) -> date:
        """The last day no stream batch can write into any more."""
        return (self.now() - self.close_after).date() - timedelta(days=1)

    # ---- compaction ------------------------------------------------------------------------

    def compact(self) -> CompactionReport:
        began = datetime.now(UTC)
        manifest, tag = self.manifest()
        closed = self.closed_through()
        report = CompactionReport(outcome="up_to_date", closed_through=closed.isoformat())
        if manifest is not None and manifest.closed_through >= closed:
            report.closed_through = manifest.closed_through.isoformat()
            report.generation = manifest.generation
            report.generations_deleted = self._collect_garbage(manifest)
            return report
        erased = self.erased()
        moment = self.now().astimezone(UTC)
        generation = f"{moment:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        written: list[tuple[Kind, str]] = []
        newest: dict[str, datetime | None] = dict(manifest.newest) if manifest else {}
        with tempfile.TemporaryDirectory(prefix="lake-compact-") as tmp:
            work = Path(tmp)
            for kind in self.kinds:
                written.extend(self._compact_kind(kind, manifest, closed, generation, erased, work, report))
                newest[kind.name] = max(
                    filter(None, (newest.get(kind.name), report.newest.get(kind.name))), default=None
                )
            # Customers erased while this run worked: out of what it wrote, before anyone reads it.
            late = self.erased() - erased
            if late:
                self._scrub(written, late, work)
        swapped = LakeManifest(
            generation=generation,
            closed_through=closed,
            newest=newest,
            previous=manifest.generation if manifest else None,
        )
        if tag is None:
            stored = self.objects.write_text(MANIFEST_KEY, swapped.to_json(), if_absent=True)
        else:
            stored = self.objects.write_text(MANIFEST_KEY, swapped.to_json(), if_match=tag)
        if not stored:  # another run swapped first: its generation is as good; ours is garbage
            report.outcome = "lost_race"
            return report
        report.outcome = "compacted"
        report.generation = generation
        report.generations_deleted = self._collect_garbage(swapped)
        report.seconds = (datetime.now(UTC) - began).total_seconds()
        return report

    def _compact_kind(
        self,
        kind: Kind,
        manifest: LakeManifest | None,
        closed: date,
        generation: str,
        erased: Collection[str],
        work: Path,
        report: CompactionReport,
    ) -> list[tuple[Kind, str]]:
        """The kind's newly closed days, each as one file, and its snapshot of `generation`."""
        written: list[tuple[Kind, str]] = []
        # A kind the manifest does not know is new since the last run: all its closed days count.
        known = manifest is not None and kind.name in manifest.newest
        days = self._closed_days(kind, manifest.closed_through if manifest and known else None, closed)
        compacted: list[Path] = []
        for day, keys in sorted(days.items()):
            path, key, merged = self._compact_day(kind, day, keys, work, erased)
            compacted.append(path)
            if key is not None:
                written.append((kind, key))
                report.days_compacted += 1
            report.files_read += len(keys)
            report.rows_read += merged.rows
            report.newest[kind.name] = max(
                filter(None, (report.newest.get(kind.name), merged.newest)), default=None
            )
        previous = None
        if manifest is not None and known:
            previous = work / "previous" / f"{kind.name}.parquet"
            if self.objects.download(snapshot_key(kind.name, manifest.generation), previous) is None:
                raise RuntimeError(f"the current {kind.name} snapshot {manifest.generation} is missing")
        output = work / "snapshots" / f"{kind.name}.parquet"
        built = self.parquet.build_snapshot(kind, previous, compacted, output, erased)
        key = snapshot_key(kind.name, generation)
        self.objects.upload(key, output)
        written.append((kind, key))
        report.snapshot_rows[kind.name] = built.rows
        for leftover in (previous, output, *compacted):
            if leftover is not None:
                leftover.unlink()
        return written

    def _closed_days(self, kind: Kind, after: date | None, through: date) -> dict[date, list[str]]:
        start = f"{kind.name}/dt={after.isoformat()}/~" if after else ""
        days: dict[date, list[str]] = defaultdict(list)
        for key in self.objects.keys(f"{kind.name}/dt="):
            if key <= start:
                continue
            found = _DAY.match(key)
            if found is None or found["kind"] != kind.name:
                continue
            day = date.fromisoformat(found["day"])
            if (after is None or day > after) and day <= through:
                days[day].append(key)
        return days

    def _compact_day(
        self, kind: Kind, day: date, keys: list[str], work: Path, erased: Collection[str]
    ) -> tuple[Path, str | None, Rewrite]:
        """The day as one local file (for the snapshot), and the key it was stored under (None when
        the day was already one compacted file: then nothing is written or deleted)."""
        folder = work / "days" / kind.name / f"dt={day.isoformat()}"
        for _attempt in range(5):
            inputs = [folder / f"input-{i}.parquet" for i in range(len(keys))]
            if all(self.objects.download(k, p) is not None for k, p in zip(keys, inputs, strict=True)):
                break
            # A concurrent run compacted the day meanwhile: read what the day holds now.
            for path in inputs:
                path.unlink(missing_ok=True)
            keys = sorted(k for k in self.objects.keys(f"{kind.name}/dt={day.isoformat()}/") if _DAY.match(k))
        else:
            raise RuntimeError(f"{kind.name} {day} kept changing while it was being compacted")
        output = folder / "day.parquet"
        merged = self.parquet.merge_day(kind, inputs, output, erased)
        for path in inputs:
            path.unlink()
        if len(keys) == 1 and keys[0].rsplit("/", 1)[-1].startswith(COMPACTED):
            return output, None, merged
        digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]
        key = f"{kind.name}/dt={day.isoformat()}/{COMPACTED}{digest}.parquet"
        # Named by its inputs: a concurrent run that compacted the same files stored the same rows.
        self.objects.upload(key, output, if_absent=True)
        self.objects.delete([k for k in keys if k != key])
        return output, key, merged

    def _collect_garbage(self, manifest: LakeManifest) -> int:
        keep = {manifest.generation, manifest.previous}
        horizon = self.now() - self.keep_generations
        doomed: dict[str, list[str]] = defaultdict(list)
        for key in self.objects.keys(f"{SNAPSHOT_PREFIX}/"):
            found = _GENERATION_KEY.match(key)
            if found is None or found["generation"] in keep:
                continue
            made = _generation_time(found["generation"])
            if made is not None and made < horizon:
                doomed[found["generation"]].append(key)
        for keys in doomed.values():
            self.objects.delete(keys)
        return len(doomed)

    # ---- erasure ---------------------------------------------------------------------------

    def erase(self, customer_ids: Iterable[str]) -> ErasureReport:
        ids = sorted({i for i in customer_ids if i})
        for customer_id in ids:
            if "/" in customer_id:
                raise ValueError("a customer id never holds a slash")
            # Recorded first: from here on, no compaction copies their rows into a new file.
            self.objects.write_text(f"{ERASED_PREFIX}{customer_id}", "")
        report = ErasureReport(customers=len(ids))
        if not ids:
            return report
        with tempfile.TemporaryDirectory(prefix="lake-erase-") as tmp:
            targets: list[tuple[Kind, str]] = []
            for kind in self.kinds:
                if kind.personal:
                    targets.extend((kind, k) for k in self.objects.keys(f"{kind.name}/dt="))
                    targets.extend((kind, k) for k in self.objects.keys(f"{SNAPSHOT_PREFIX}/{kind.name}/"))
            files, rows = self._scrub(targets, set(ids), Path(tmp))
        report.files_rewritten, report.rows_removed = files, rows
        return report

    def _scrub(
        self, targets: Sequence[tuple[Kind, str]], ids: Collection[str], work: Path
    ) -> tuple[int, int]:
        """Rewrite each file holding rows of `ids` without them, only over the version read (a
        file changed meanwhile is read again; one deleted meanwhile needs nothing)."""
        files = rows = 0
        for index, (kind, key) in enumerate(targets):
            if not kind.personal:
                continue
            source, output = work / f"scrub-{index}.parquet", work / f"scrubbed-{index}.parquet"
            for _attempt in range(5):
                tag = self.objects.download(key, source)
                if tag is None:
                    break
                removed = self.parquet.drop_customers(kind, source, output, ids)
                if not removed:
                    break
                if self.objects.upload(key, output, if_match=tag):
                    self.objects.purge_history(key)
                    files, rows = files + 1, rows + removed
                    break
            else:
                raise RuntimeError(f"{key} kept changing while it was being scrubbed")
            source.unlink(missing_ok=True)
            output.unlink(missing_ok=True)
        return files, rows
