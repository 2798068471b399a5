"""The reports' SQL over a small lake with hand-computed answers, and each statement parsed as
Trino (Athena's dialect) by sqlglot and run by DuckDB: SQL written once, two engines.

The lake (January 2026 unless said):
- stores ams-01 (pos) and web-nl (online);
- Ann: created a non-member (origin ams-01), buys 10.00 at ams-01 on the 5th, enrols on the 10th,
  buys 20.00 at web-nl on the 15th as a member (20 points), returns 5.00 of it at web-nl on 3 Feb;
  the sale of the 15th is modified later (an order status): still one sale;
- Bob: a member since 20 Dec 2025 (origin web-nl), buys 30.00 at ams-01 on the 6th (30 points),
  redeems 10 points at ams-01 on the 20th;
- an anonymous sale of 4.00 at ams-01 on the 7th;
- a sale of 99.00 written and then removed (deleted): it counts nowhere.

Every answer holds on three layouts of the same changes: change rows only; compacted through 20
January (the snapshot, and change rows after it, some of them newer images of snapshot rows); and
everything compacted.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlglot

from loyalty.adapters.lake import FolderLake
from loyalty.adapters.lake_compaction import DuckDBParquetWork
from loyalty.adapters.report_queries import DuckDBQueries
from loyalty.domain.errors import ValidationFailed
from loyalty.services import report_sql
from loyalty.services.compaction import LakeCompactor
from loyalty.services.lake import LakeWriter, StreamChange
from loyalty.services.reports import ReportService


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Stream:
    def __init__(self) -> None:
        self.changes: list[StreamChange] = []

    def put(self, when: str, item: dict[str, Any], name: str = "INSERT") -> None:
        keys = {"pk": item["pk"], "sk": item["sk"]}
        new, old = (None, item) if name == "REMOVE" else (item, None)
        seq = str(len(self.changes) + 1)
        self.changes.append(StreamChange(name, keys, new, old, seq, at(when)))


def customer(
    customer_id: str, member: bool, enrolled: str | None, origin: str, version: int
) -> dict[str, Any]:
    return {
        "pk": f"CUST#{customer_id}",
        "sk": "PROFILE",
        "type": "customer",
        "customer_id": customer_id,
        "member": member,
        "status": "active",
        "created_at": "2025-12-01T00:00:00Z",
        "enrolled_at": enrolled,
        "origin_store_id": origin,
        "version": version,
        "profile": {"first_name": "Ann"},
    }


def txn(
    store: str,
    txn_id: str,
    kind: str,
    when: str,
    customer_id: str | None,
    member: bool,
    total: str,
    channel: str,
) -> dict[str, Any]:
    return {
        "pk": f"TXN#{store}#{txn_id}",
        "sk": "TXN",
        "type": "transaction",
        "store_id": store,
        "transaction_id": txn_id,
        "txn_type": kind,
        "channel": channel,
        "occurred_at": when,
        "recorded_at": when,
        "customer_id": customer_id,
        "member": member,
        "currency": "EUR",
        "total": total,
        "lines": [],
        "version": 1,
    }


def entry(customer_id: str, seq: int, when: str, points: int, reason: str, store: str) -> dict[str, Any]:
    return {
        "pk": f"CUST#{customer_id}",
        "sk": f"LEDGER#{seq:012d}",
        "type": "ledger",
        "customer_id": customer_id,
        "seq": seq,
        "at": when,
        "points": points,
        "reason": reason,
        "store_id": store,
    }


# The layouts: when compaction ran (None: never). Closed days end a day before `now`'s yesterday.
LAYOUTS = {
    "changes": None,
    "compacted through 20 Jan": "2026-01-22T00:00:00",
    "compacted": "2026-03-01T00:00:00",
}


@pytest.fixture(scope="module", params=list(LAYOUTS))
def reports(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> ReportService:
    root = tmp_path_factory.mktemp("lake")
    s = Stream()
    s.put(
        "2025-11-01T00:00:00",
        {"pk": "STORE#ams-01", "sk": "STORE", "type": "store", "store_id": "ams-01", "channel": "pos"},
    )
    s.put(
        "2025-11-01T00:00:00",
        {"pk": "STORE#web-nl", "sk": "STORE", "type": "store", "store_id": "web-nl", "channel": "online"},
    )
    s.put("2025-12-20T09:00:00", customer("bob", True, "2025-12-20T09:00:00Z", "web-nl", 1))
    s.put("2026-01-02T09:00:00", customer("ann", False, None, "ams-01", 1))
    s.put(
        "2026-01-05T12:00:00",
        txn("ams-01", "A1", "sale", "2026-01-05T12:00:00Z", "ann", False, "10.00", "pos"),
    )
    s.put(
        "2026-01-06T12:00:00",
        txn("ams-01", "B1", "sale", "2026-01-06T12:00:00Z", "bob", True, "30.00", "pos"),
    )
    s.put("2026-01-06T12:00:00", entry("bob", 1, "2026-01-06T12:00:00Z", 30, "earn", "ams-01"))
    s.put(
        "2026-01-07T12:00:00", txn("ams-01", "X1", "sale", "2026-01-07T12:00:00Z", None, False, "4.00", "pos")
    )
    s.put(
        "2026-01-08T12:00:00",
        txn("ams-01", "D1", "sale", "2026-01-08T12:00:00Z", None, False, "99.00", "pos"),
    )
    s.put(
        "2026-01-08T12:05:00",
        txn("ams-01", "D1", "sale", "2026-01-08T12:00:00Z", None, False, "99.00", "pos"),
        "REMOVE",
    )
    s.put("2026-01-10T09:00:00", customer("ann", True, "2026-01-10T09:00:00Z", "ams-01", 2), "MODIFY")
    s.put(
        "2026-01-15T12:00:00",
        txn("web-nl", "A2", "sale", "2026-01-15T12:00:00Z", "ann", True, "20.00", "online"),
    )
    s.put("2026-01-15T12:00:00", entry("ann", 1, "2026-01-15T12:00:00Z", 20, "earn", "web-nl"))
    s.put("2026-01-20T12:00:00", entry("bob", 2, "2026-01-20T12:00:00Z", -10, "redeem", "ams-01"))
    s.put(
        "2026-02-03T12:00:00",
        txn("web-nl", "A2R", "return", "2026-02-03T12:00:00Z", "ann", True, "5.00", "online"),
    )
    s.put(
        "2026-02-03T12:00:00",
        {
            **txn("web-nl", "A2", "sale", "2026-01-15T12:00:00Z", "ann", True, "20.00", "online"),
            "order_status": "returned",
            "version": 2,
        },
        "MODIFY",
    )
    LakeWriter(files=FolderLake(root=root)).write(s.changes)
    compacted_at = LAYOUTS[request.param]
    if compacted_at is not None:
        done = LakeCompactor(
            objects=FolderLake(root=root), parquet=DuckDBParquetWork(), now=lambda: at(compacted_at)
        ).compact()
        assert done.outcome == "compacted"
    return ReportService(queries=DuckDBQueries.over_folder(root))


def figures(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        row[k]
        for k in (
            "transactions",
            "revenue",
            "customers",
            "members",
            "non_members",
            "anonymous",
            "new_members",
            "points_earned",
            "points_redeemed",
        )
    )


def test_activity_by_month_and_store(reports: ReportService) -> None:
    report = reports.activity(date(2026, 1, 1), date(2026, 2, 28), "month", "store")
    got = {(r["period"], r["store"]): figures(r) for r in report.rows}
    assert got == {
        ("2026-01-01", "ams-01"): (3, Decimal("44.00"), 2, 1, 1, 1, 1, 30, 10),  # Ann a non-member then
        ("2026-01-01", "web-nl"): (1, Decimal("20.00"), 1, 1, 0, 0, 0, 20, 0),
        ("2026-02-01", "web-nl"): (0, Decimal("-5.00"), 0, 0, 0, 0, 0, 0, 0),  # the return, in its month
    }
    assert report.as_of == datetime(2026, 2, 3, 12, 0, tzinfo=UTC)


def test_activity_by_day_and_channel(reports: ReportService) -> None:
    report = reports.activity(date(2026, 1, 5), date(2026, 1, 6), "day", "channel")
    got = {(r["period"], r["channel"]): figures(r)[:6] for r in report.rows}
    assert got == {
        ("2026-01-05", "pos"): (1, Decimal("10.00"), 1, 0, 1, 0),
        ("2026-01-06", "pos"): (1, Decimal("30.00"), 1, 1, 0, 0),
    }


def test_activity_by_week(reports: ReportService) -> None:
    report = reports.activity(date(2026, 1, 1), date(2026, 1, 31), "week", "channel")
    got = {(r["period"], r["channel"]): r["transactions"] for r in report.rows if r["transactions"]}
    # ISO weeks begin on Monday: 5 Jan and 12 Jan 2026
    assert got == {("2026-01-05", "pos"): 3, ("2026-01-12", "online"): 1}


def test_members_vs_non_members(reports: ReportService) -> None:
    report = reports.members_vs_non_members(date(2026, 1, 1), date(2026, 1, 31))
    got = {r["group"]: r for r in report.rows}
    assert (got["members"]["transactions"], got["members"]["revenue"], got["members"]["customers"]) == (
        2,
        Decimal("50.00"),
        2,
    )
    assert got["members"]["average_basket"] == Decimal("25.00")
    assert got["members"]["share_of_revenue"] == Decimal("0.7812")  # 50 of 64, rounded half to even
    assert (got["non_members"]["transactions"], got["non_members"]["revenue"]) == (1, Decimal("10.00"))
    assert got["non_members"]["purchases_per_customer"] == Decimal("1.0000")
    assert (got["anonymous"]["transactions"], got["anonymous"]["customers"]) == (1, 0)
    assert got["anonymous"]["purchases_per_customer"] is None
    assert got["anonymous"]["share_of_revenue"] == Decimal("0.0625")


def test_cohorts_by_enrolment_month(reports: ReportService) -> None:
    got = [(r["cohort"], r["cohort_size"], r["month_offset"], r["active"]) for r in reports.cohorts().rows]
    assert got == [("2025-12", 1, 1, 1), ("2026-01", 1, 0, 1)]


def test_bad_ranges_are_refused_naming_the_field(reports: ReportService) -> None:
    with pytest.raises(ValidationFailed) as reversed_range:
        reports.activity(date(2026, 2, 1), date(2026, 1, 1), "day", "store")
    assert reversed_range.value.errors[0].loc == ("query", "from")
    with pytest.raises(ValidationFailed) as too_long:
        reports.members_vs_non_members(date(2016, 1, 1), date(2026, 1, 1))
    assert too_long.value.errors[0].loc == ("query", "to")
    with pytest.raises(ValidationFailed) as first_day_ever:  # a day before it would overflow
        reports.activity(date(1, 1, 1), date(1, 1, 2), "day", "store")
    assert first_day_ever.value.errors[0].loc == ("query", "from")
    with pytest.raises(ValidationFailed) as last_day_ever:
        reports.members_vs_non_members(date(9999, 12, 30), date(9999, 12, 31))
    assert last_day_ever.value.errors[0].loc == ("query", "from")


def statements(manifest: report_sql.LakeManifest | None) -> list[str]:
    return [
        *(
            report_sql.activity(date(2026, 1, 1), date(2026, 1, 31), i, d, manifest)  # type: ignore[arg-type]
            for i in ("day", "week", "month")
            for d in ("store", "channel")
        ),
        report_sql.members_vs_non_members(date(2026, 1, 1), date(2026, 1, 31), manifest),
        report_sql.cohorts(manifest),
        report_sql.as_of(date(2026, 1, 1), manifest),
        report_sql.as_of(None, manifest),
    ]


@pytest.mark.parametrize("index", range(len(statements(None))))
def test_each_statement_parses_as_trino_and_runs_in_duckdb(reports: ReportService, index: int) -> None:
    sql = statements(reports.queries.manifest())[index]
    parsed = sqlglot.parse_one(sql, read="trino")
    assert parsed is not None
    # Trino's own rendering of it runs in DuckDB too: nothing in the text leans on one engine.
    reports.queries.run(parsed.sql(dialect="trino"))
    reports.queries.run(sql)


def test_the_reports_read_only_the_snapshot_tables_glue_describes(reports: ReportService) -> None:
    """Glue has `<kind>_snapshot` tables for REPORTED_KINDS only (loyalty_infra.lake): a report
    reading another kind's snapshot would fail on Athena and nowhere else."""
    manifest = reports.queries.manifest() or report_sql.LakeManifest(
        "20260101T000000-0", date(2026, 1, 1), {}
    )
    from loyalty.services import campaign_report_sql

    read: set[str] = set()
    campaign = campaign_report_sql.report("spring", 30, date(2026, 1, 1), manifest)
    for sql in [*statements(manifest), campaign]:
        tables = {t.name for t in sqlglot.parse_one(sql, read="trino").find_all(sqlglot.exp.Table)}
        read |= {t.removesuffix("_snapshot") for t in tables if t.endswith("_snapshot")}
    assert read == set(report_sql.REPORTED_KINDS)
