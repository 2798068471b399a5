"""Lake compaction and erasure over a folder lake: the reports answer the same before and after,
whether compaction runs once, twice, crashes anywhere, races another run or the stream writer; and
an erased customer's rows leave every file of the personal kinds and never come back."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from loyalty.adapters.lake import FolderLake
from loyalty.adapters.lake_compaction import DuckDBParquetWork
from loyalty.adapters.report_queries import DuckDBQueries
from loyalty.services.compaction import LakeCompactor
from loyalty.services.lake import MANIFEST_KEY, LakeWriter, StreamChange
from loyalty.services.reports import ReportService

START = datetime(2026, 1, 1, 9, tzinfo=UTC)
DAYS = 10
STORES = ("ams-01", "web-nl")


class Stream:
    """Stream changes with increasing sequence numbers, one `day` at a time."""

    def __init__(self) -> None:
        self.seq = 0

    def change(self, when: datetime, item: dict[str, Any], name: str = "INSERT") -> StreamChange:
        self.seq += 1
        new, old = (None, item) if name == "REMOVE" else (item, None)
        return StreamChange(name, {"pk": item["pk"], "sk": item["sk"]}, new, old, str(self.seq), when)


def profile(cid: str, member: bool, version: int, when: datetime) -> dict[str, Any]:
    return {
        "pk": f"CUST#{cid}", "sk": "PROFILE", "type": "customer", "customer_id": cid, "member": member,
        "status": "active", "created_at": "2025-12-01T00:00:00Z", "origin_store_id": STORES[0],
        "enrolled_at": when.isoformat() if member else None, "version": version,
    }  # fmt: skip


def sale(
    store: str, txn_id: str, when: datetime, cid: str | None, total: str, **extra: Any
) -> dict[str, Any]:
    return {
        "pk": f"TXN#{store}#{txn_id}", "sk": "TXN", "type": "transaction", "store_id": store,
        "transaction_id": txn_id, "txn_type": "sale", "channel": "pos" if store == "ams-01" else "online",
        "occurred_at": when.isoformat(), "recorded_at": when.isoformat(), "customer_id": cid,
        "member": cid is not None, "currency": "EUR", "total": total, "version": 1,
        "lines": [{"line_id": "1", "sku": "S1", "quantity": "1", "unit_price": total}], **extra,
    }  # fmt: skip


def event(event_id: str, cid: str, when: datetime) -> dict[str, Any]:
    return {
        "pk": f"EVENT#{event_id}", "sk": "EVENT", "event_id": event_id, "store_id": "web-nl",
        "channel": "online", "type": "page_view", "customer_id": cid, "member": True,
        "occurred_at": when.isoformat(), "received_at": when.isoformat(),
    }  # fmt: skip


def day_batches(stream: Stream, day: int) -> list[list[StreamChange]]:
    """A day of activity in three small batches: customers, their sales and events, a modified
    sale and a removed one; customer `eve` buys and browses every day."""
    when = START + timedelta(days=day)
    first = [stream.change(when, profile(f"c{day}", day % 2 == 0, 1, when))]
    if day == 0:
        first.append(stream.change(when, profile("eve", True, 1, when)))
        first += [
            stream.change(when, {"pk": f"STORE#{s}", "sk": "STORE", "type": "store", "store_id": s,
                                 "channel": "pos" if s == "ams-01" else "online"})
            for s in STORES
        ]  # fmt: skip
    second = [
        stream.change(when, sale(STORES[day % 2], f"T{day}", when, f"c{day}", f"{10 + day}.00")),
        stream.change(when, sale("ams-01", f"A{day}", when, None, "4.00")),
        stream.change(when, sale("web-nl", f"E{day}", when, "eve", "7.00")),
        stream.change(when, event(f"ev-eve-{day}", "eve", when)),
        stream.change(when, event(f"ev-c{day}", f"c{day}", when)),
    ]
    later = when + timedelta(hours=2)
    third = [
        stream.change(later, sale("ams-01", f"A{day}", when, None, "4.00", order_status="done"), "MODIFY"),
        stream.change(later, sale("ams-01", f"D{day}", when, None, "99.00")),
        stream.change(later + timedelta(minutes=1), sale("ams-01", f"D{day}", when, None, "99.00"), "REMOVE"),
    ]  # fmt: skip
    if day > 0:  # yesterday's customer enrols today: a snapshot row replaced by a newer image
        third.append(stream.change(later, profile(f"c{day - 1}", True, 2, later), "MODIFY"))
    return [first, second, third]


def write_days(root: Path, stream: Stream, days: range) -> None:
    writer = LakeWriter(files=FolderLake(root=root))
    for day in days:
        for batch in day_batches(stream, day):
            writer.write(batch)


def compactor(root: Path, now: datetime, objects: Any = None) -> LakeCompactor:
    return LakeCompactor(
        objects=objects or FolderLake(root=root), parquet=DuckDBParquetWork(), now=lambda: now
    )


def answers(root: Path) -> tuple[Any, ...]:
    """Every report over January, by both dimensions and intervals (as_of left out: it is compared
    separately where it must not move)."""
    service = ReportService(queries=DuckDBQueries.over_folder(root))
    first, last = date(2026, 1, 1), date(2026, 1, 31)
    return (
        *(service.activity(first, last, i, d).rows for i in ("day", "month") for d in ("store", "channel")),  # type: ignore[arg-type]
        service.members_vs_non_members(first, last).rows,
        service.cohorts().rows,
    )


def change_rows(root: Path, kind: str) -> list[tuple[Any, ...]]:
    files = sorted(str(p) for p in (root / kind).glob("dt=*/*.parquet"))
    if not files:
        return []
    return sorted(
        duckdb.sql(
            f"SELECT change_key, change_seq, op FROM read_parquet({files}, hive_partitioning = false)"
        ).fetchall()
    )


def copy_lake(source: Path, target: Path) -> Path:
    for path in source.rglob("*"):
        if path.is_file():
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (target / path.relative_to(source)).write_bytes(path.read_bytes())
    return target


@pytest.fixture(scope="module")
def written_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """Ten days through the stream writer, written once for the module; the sequence number reached."""
    root, stream = tmp_path_factory.mktemp("written") / "lake", Stream()
    write_days(root, stream, range(DAYS))
    return root, stream.seq


@pytest.fixture
def lake(written_lake: tuple[Path, int], tmp_path: Path) -> tuple[Path, Stream]:
    """A copy of the written lake of the test's own (tests compact, erase and write into it), and a
    stream that goes on where the writing stopped."""
    source, seq = written_lake
    stream = Stream()
    stream.seq = seq
    return copy_lake(source, tmp_path / "lake"), stream


def test_compaction_keeps_every_answer_and_rewrites_closed_days_only(
    lake: tuple[Path, Stream], tmp_path: Path
) -> None:
    root, _ = lake
    before, transactions = answers(root), change_rows(root, "transactions")
    now = START + timedelta(days=8)  # days 0..6 are closed (the 7th ended less than a day ago)
    done = compactor(root, now).compact()
    assert (done.outcome, done.closed_through) == ("compacted", "2026-01-07")
    assert answers(root) == before
    assert change_rows(root, "transactions") == transactions  # every change, once
    for day in range(DAYS):
        files = sorted(p.name for p in (root / "transactions" / f"dt=2026-01-{day + 1:02d}").iterdir())
        if day <= 6:
            assert len(files) == 1 and files[0].startswith("compacted-")
        else:
            assert len(files) == 2 and not any(f.startswith("compacted-") for f in files)
    # The snapshot holds the current rows only: no removed sale, one row per key.
    snapshot = next((root / "_snapshots" / "transactions").glob("generation=*/snapshot.parquet"))
    keys = [r[0] for r in duckdb.sql(f"SELECT change_key FROM '{snapshot}'").fetchall()]
    assert len(keys) == len(set(keys)) == 7 * 3 and not any("#D" in k for k in keys)
    # Sorted by the time the reports filter on.
    times = [r[0] for r in duckdb.sql(f"SELECT occurred_at FROM '{snapshot}'").fetchall()]
    assert times == sorted(times)


def test_twice_and_later_runs_change_nothing_the_reports_see(lake: tuple[Path, Stream]) -> None:
    root, stream = lake
    before = answers(root)
    now = START + timedelta(days=5)
    first = compactor(root, now).compact()
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.parquet"))
    again = compactor(root, now).compact()
    assert (first.outcome, again.outcome, again.generation) == ("compacted", "up_to_date", first.generation)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.parquet")) == files
    # Later, with more days written: the next generation builds on the previous one.
    write_days(root, stream, range(DAYS, DAYS + 3))
    full = answers(root)
    later = compactor(root, START + timedelta(days=12)).compact()
    assert later.outcome == "compacted" and answers(root) == full
    assert before != full  # the new days are in the answers, not just old ones repeated


class Crash(Exception):
    pass


class FailingObjects(FolderLake):
    """Fails the n-th write (upload, text write or delete) and every one after it."""

    def __init__(self, root: Path, fail_at: int) -> None:
        super().__init__(root=root)
        self.fail_at, self.calls = fail_at, 0

    def _step(self) -> None:
        self.calls += 1
        if self.calls >= self.fail_at:
            raise Crash(f"write {self.calls}")

    def upload(self, key: str, source: Path, **conditions: Any) -> bool:
        self._step()
        return super().upload(key, source, **conditions)

    def write_text(self, key: str, text: str, **conditions: Any) -> bool:
        self._step()
        return super().write_text(key, text, **conditions)

    def delete(self, keys: Sequence[str]) -> None:
        self._step()
        super().delete(keys)


def test_a_crash_at_any_write_loses_and_doubles_nothing(lake: tuple[Path, Stream], tmp_path: Path) -> None:
    root, _ = lake
    before, transactions, events = (
        answers(root),
        change_rows(root, "transactions"),
        change_rows(root, "events"),
    )
    now = START + timedelta(days=8)
    writes = FailingObjects(copy_lake(root, tmp_path / "count"), 10**9)
    LakeCompactor(objects=writes, parquet=DuckDBParquetWork(), now=lambda: now).compact()
    assert writes.calls > 20  # days, their deletions, snapshots, the manifest
    # The first write, one in each stretch of day files and snapshots, the swap itself.
    for fail_at in sorted({1, *range(2, writes.calls, max(1, writes.calls // 6)), writes.calls}):
        crashed = copy_lake(root, tmp_path / f"crash-{fail_at}")
        with pytest.raises(Crash):
            compactor(crashed, now, FailingObjects(crashed, fail_at)).compact()
        assert answers(crashed) == before  # while crashed, readers see the same
        assert compactor(crashed, now).compact().outcome == "compacted"
        assert answers(crashed) == before
        assert change_rows(crashed, "transactions") == transactions
        assert change_rows(crashed, "events") == events


def test_a_crash_after_the_swap_leaves_a_working_lake(lake: tuple[Path, Stream]) -> None:
    root, _ = lake
    before = answers(root)
    now = START + timedelta(days=8)

    class NoGarbageCollection(FolderLake):
        def delete(self, keys: Sequence[str]) -> None:
            if any(k.startswith("_snapshots/") for k in keys):
                raise Crash("garbage collection")
            super().delete(keys)

    compactor(root, now).compact()
    compactor(root, now + timedelta(days=1)).compact()
    with pytest.raises(Crash):  # the third run swaps, then dies deleting the first generation
        compactor(root, now + timedelta(days=2), NoGarbageCollection(root=root)).compact()
    assert answers(root) == before
    assert compactor(root, now + timedelta(days=2)).compact().generations_deleted == 1


def test_two_runs_at_once_one_swaps_the_other_stands_down(lake: tuple[Path, Stream]) -> None:
    root, _ = lake
    before = answers(root)
    now = START + timedelta(days=8)
    barrier = threading.Barrier(2, timeout=60)

    class Together(FolderLake):
        def write_text(self, key: str, text: str, **conditions: Any) -> bool:
            if key == MANIFEST_KEY:
                barrier.wait()  # both have built their generation before either swaps
            return super().write_text(key, text, **conditions)

    outcomes: list[str] = []
    runs = [
        threading.Thread(
            target=lambda: outcomes.append(compactor(root, now, Together(root=root)).compact().outcome)
        )
        for _ in range(2)
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=120)
    assert sorted(outcomes) == ["compacted", "lost_race"]
    assert answers(root) == before
    # The loser's generation is garbage once it is old enough, never before.
    later = compactor(root, now + timedelta(hours=2)).compact()
    assert later.generations_deleted == 1 and answers(root) == before


def test_the_stream_writer_keeps_writing_while_compaction_runs(lake: tuple[Path, Stream]) -> None:
    root, stream = lake
    now = START + timedelta(days=8)
    done = threading.Event()

    def keep_writing() -> None:
        day = DAYS
        while not done.is_set() and day < DAYS + 6:
            write_days(root, stream, range(day, day + 1))  # open days only: after `now`
            day += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        assert compactor(root, now).compact().outcome == "compacted"
    finally:
        done.set()
        writer.join(timeout=120)
    uncompacted = copy_lake(root, root.parent / "plain")
    for path in uncompacted.glob("_*"):
        for file in sorted(path.rglob("*"), reverse=True):
            file.unlink() if file.is_file() else file.rmdir()
        path.rmdir()
    assert answers(root) == answers(uncompacted)


def files_with_rows_of(root: Path, customer_id: str) -> list[str]:
    """Every Parquet file of the lake (change files and snapshots, every kind) read with DuckDB."""
    found = []
    for path in sorted(root.rglob("*.parquet")):
        source = f"read_parquet('{path}', hive_partitioning = false)"
        columns = duckdb.sql(f"SELECT * FROM {source}").columns
        where = [f"change_key LIKE 'CUST#{customer_id}|%'"]
        if "customer_id" in columns:
            where.append(f"customer_id = '{customer_id}'")
        (count,) = duckdb.sql(f"SELECT count(*) FROM {source} WHERE {' OR '.join(where)}").fetchone() or (0,)
        if count:
            found.append(path.relative_to(root).as_posix())
    return found


def totals_without(root: Path, customer_id: str) -> tuple[Any, ...]:
    """What the reports say about everyone else: revenue and sales per store, from the current
    transactions (the erased customer's sales are business facts and stay, without them)."""
    connection = DuckDBQueries.over_folder(root).connection()
    return tuple(
        connection.execute(
            "SELECT store_id, count(*), sum(total) FROM transactions_current "
            f"WHERE customer_id IS DISTINCT FROM '{customer_id}' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )


def test_erasure_rewrites_every_personal_file_and_compaction_never_brings_rows_back(
    lake: tuple[Path, Stream],
) -> None:
    root, stream = lake
    compactor(root, START + timedelta(days=6)).compact()  # a snapshot, compacted and open days
    others_before = totals_without(root, "eve")
    events_before = change_rows(root, "events")
    assert any(f.startswith("events/") for f in files_with_rows_of(root, "eve"))
    assert any(f.startswith("_snapshots/customers/") for f in files_with_rows_of(root, "eve"))

    erased = compactor(root, START + timedelta(days=6)).erase(["eve"])
    assert erased.files_rewritten > 0 and erased.rows_removed > 0
    # Only business facts of kinds that hold no personal data keep her id: sales and their lines.
    left = files_with_rows_of(root, "eve")
    assert left and all(f.split("/")[0] in ("transactions", "transaction_lines") or
                        f.split("/")[1] in ("transactions", "transaction_lines") for f in left)  # fmt: skip
    assert totals_without(root, "eve") == others_before
    assert len(change_rows(root, "events")) == len(events_before) - DAYS  # one event of hers a day
    # Later days (written as if a lagging stream batch still carried her), and compactions over
    # them: none of her rows comes back into a personal kind's compacted file or snapshot.
    write_days(root, stream, range(DAYS, DAYS + 2))
    compactor(root, START + timedelta(days=20)).compact()
    left = files_with_rows_of(root, "eve")
    assert all(f.split("/")[0] in ("transactions", "transaction_lines") or
               f.split("/")[1] in ("transactions", "transaction_lines") for f in left)  # fmt: skip
    rows = (
        DuckDBQueries.over_folder(root)
        .connection()
        .execute("SELECT count(*) FROM customers_current WHERE customer_id = 'eve'")
        .fetchone()
    )
    assert rows == (0,)


def test_a_customer_erased_while_compaction_runs_is_not_copied_back(lake: tuple[Path, Stream]) -> None:
    root, _ = lake
    now = START + timedelta(days=8)

    class EraseMidway(FolderLake):
        erased = False

        def upload(self, key: str, source: Path, **conditions: Any) -> bool:
            if key.startswith("_snapshots/customers/") and not self.erased:
                # The erasure runs after compaction read the erased ids and built the snapshot,
                # just before it stores it: the erasure cannot see this file, compaction must.
                self.erased = True
                compactor(root, now).erase(["eve"])
            return super().upload(key, source, **conditions)

    assert compactor(root, now, EraseMidway(root=root)).compact().outcome == "compacted"
    left = files_with_rows_of(root, "eve")
    assert all(f.split("/")[0] in ("transactions", "transaction_lines") or
               f.split("/")[1] in ("transactions", "transaction_lines") for f in left)  # fmt: skip


def test_erasure_before_compaction_filters_the_first_snapshot(lake: tuple[Path, Stream]) -> None:
    root, _ = lake
    run: Callable[[], Any] = compactor(root, START + timedelta(days=8)).compact
    compactor(root, START).erase(["c3"])
    run()
    assert all(
        f.split("/")[0] in ("transactions", "transaction_lines")
        or f.split("/")[1] in ("transactions", "transaction_lines")
        for f in files_with_rows_of(root, "c3")
    )


def test_the_job_compacts_on_its_schedule_and_erases_from_the_bus(
    lake: tuple[Path, Stream], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compactor's handler: the schedule's event compacts; CustomerErased (an EventBridge event
    in an SQS record, as the bus rule delivers it) erases the customer and the profiles merged into
    them; an undecodable message is a batch item failure, not a lost batch."""
    import json

    from loyalty.bootstrap import Container, use_container
    from loyalty.jobs import compact_lake
    from loyalty.settings import Settings
    from loyalty_local.events import scheduler_event, sqs_event
    from loyalty_local.gateway import LambdaContext

    root, _ = lake
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    container = Container(
        Settings(table_name="lake-tests", api_key_pepper_secret="unused", cursor_key_secret="unused")
    )
    container.lake_compactor = compactor(root, START + timedelta(days=8))
    use_container(container)
    try:
        done = compact_lake(scheduler_event("compactor"), LambdaContext("compactor"))
        assert (done["outcome"], done["closed_through"]) == ("compacted", "2026-01-07")
        envelope = {"detail-type": "CustomerErased", "source": "loyalty",
                    "detail": {"customer_id": "c2", "merged_ids": ["eve"]}}  # fmt: skip
        messages = [
            {"MessageId": "m1", "ReceiptHandle": "r1", "Body": json.dumps(envelope)},
            {"MessageId": "m2", "ReceiptHandle": "r2", "Body": "not json"},
        ]
        event = sqs_event(messages, "arn:aws:sqs:eu-west-1:000000000000:erasures", "eu-west-1")
        response = compact_lake(event, LambdaContext("compactor"))
    finally:
        use_container(None)
    assert response["batchItemFailures"] == [{"itemIdentifier": "m2"}]
    for customer_id in ("c2", "eve"):
        assert all(
            f.split("/")[0] in ("transactions", "transaction_lines")
            or f.split("/")[1] in ("transactions", "transaction_lines")
            for f in files_with_rows_of(root, customer_id)
        ), customer_id


def test_a_kind_added_since_the_last_run_gets_its_first_snapshot(lake: tuple[Path, Stream]) -> None:
    from loyalty.services.lake import KINDS

    root, _ = lake
    before = answers(root)
    without_sales = tuple(k for k in KINDS if k.name != "transactions")
    older = LakeCompactor(
        objects=FolderLake(root=root),
        parquet=DuckDBParquetWork(),
        now=lambda: START + timedelta(days=5),
        kinds=without_sales,
    )
    assert older.compact().outcome == "compacted"
    answers(root)  # a kind without snapshots yet: an empty `<kind>_snapshot` view, not an error
    assert compactor(root, START + timedelta(days=8)).compact().outcome == "compacted"
    assert answers(root) == before
