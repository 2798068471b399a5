"""Reports over the data lake: the SQL of loyalty.services.report_sql, run by whichever engine the
`ReportQueries` port is (Athena on AWS, DuckDB locally), and the ratios computed here from its sums
so both engines answer alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Protocol

from loyalty.domain.errors import ValidationFailed
from loyalty.services import report_sql
from loyalty.services.lake import LakeManifest
from loyalty.services.report_sql import Dimension, Interval

MAX_RANGE_DAYS = 2 * 366  # "a range over two years" is refused
CENT = Decimal("0.01")
RATIO = Decimal("0.0001")


class ReportQueries(Protocol):
    """Runs one SQL statement over the lake and answers its rows as dicts of plain values; and
    tells which compacted snapshots the lake has (None before the first compaction). `dialect`
    names the engine's SQL ("trino" for Athena, "duckdb"), for statements that need rendering for
    it (loyalty.services.segment_sql)."""

    dialect: str

    def run(self, sql: str) -> list[dict[str, Any]]: ...

    def manifest(self) -> LakeManifest | None: ...


@dataclass(frozen=True)
class Report:
    as_of: datetime | None
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]


def _int(value: Any) -> int:
    return int(value) if value is not None and value != "" else 0


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT) if value is not None and value != "" else Decimal("0.00")


def _ratio(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(RATIO, rounding=ROUND_HALF_EVEN)


def _day(value: Any) -> str:
    return str(value)[:10]


def _timestamp(value: Any) -> datetime | None:
    """The lake's timestamps are UTC without a zone (Parquet TIMESTAMP_MS, Athena's text): say so."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace(" UTC", ""))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


EARLIEST, LATEST = date(1970, 1, 1), date(2999, 12, 31)  # beyond them, date arithmetic overflows


def check_range(start: date, end: date) -> None:
    for name, day in (("from", start), ("to", end)):
        if not EARLIEST <= day <= LATEST:
            raise ValidationFailed.at(("query", name), f"{name} must lie between {EARLIEST} and {LATEST}")
    if start > end:
        raise ValidationFailed.at(("query", "from"), "from must be on or before to")
    if (end - start).days > MAX_RANGE_DAYS:
        raise ValidationFailed.at(("query", "to"), f"a report covers at most {MAX_RANGE_DAYS} days")


@dataclass
class ReportService:
    queries: ReportQueries

    def _as_of(self, start: date | None, manifest: LakeManifest | None) -> datetime | None:
        rows = self.queries.run(report_sql.as_of(start, manifest))
        return _timestamp(rows[0]["as_of"]) if rows else None

    def activity(self, start: date, end: date, interval: Interval, by: Dimension) -> Report:
        check_range(start, end)
        # One manifest per report: its as_of and its rows read the same snapshot generation.
        manifest = self.queries.manifest()
        as_of = self._as_of(start, manifest)
        rows = [
            {
                "period": _day(r["period"]),
                by: r["dimension"],
                "transactions": _int(r["transactions"]),
                "revenue": _money(r["revenue"]),
                "customers": _int(r["customers"]),
                "members": _int(r["members"]),
                "non_members": _int(r["non_members"]),
                "anonymous": _int(r["anonymous"]),
                "new_members": _int(r["new_members"]),
                "points_earned": _int(r["points_earned"]),
                "points_redeemed": _int(r["points_redeemed"]),
            }
            for r in self.queries.run(report_sql.activity(start, end, interval, by, manifest))
        ]
        columns = ("period", by, "transactions", "revenue", "customers", "members", "non_members",
                   "anonymous", "new_members", "points_earned", "points_redeemed")  # fmt: skip
        return Report(as_of, columns, rows)

    def members_vs_non_members(self, start: date, end: date) -> Report:
        check_range(start, end)
        manifest = self.queries.manifest()
        as_of = self._as_of(start, manifest)
        found = {
            r["grp"]: r for r in self.queries.run(report_sql.members_vs_non_members(start, end, manifest))
        }
        total = sum((_money(r["revenue"]) for r in found.values()), Decimal("0.00"))
        rows = []
        for group in ("members", "non_members", "anonymous"):
            r = found.get(group, {})
            transactions, customers = _int(r.get("transactions")), _int(r.get("customers"))
            revenue, sales_value = _money(r.get("revenue")), _money(r.get("sales_value"))
            basket = _ratio(sales_value, transactions)
            rows.append(
                {
                    "group": group,
                    "transactions": transactions,
                    "revenue": revenue,
                    "customers": customers,
                    "average_basket": basket.quantize(CENT) if basket is not None else None,
                    "purchases_per_customer": _ratio(transactions, customers),
                    "share_of_revenue": _ratio(revenue, total),
                }
            )
        columns = ("group", "transactions", "revenue", "customers", "average_basket",
                   "purchases_per_customer", "share_of_revenue")  # fmt: skip
        return Report(as_of, columns, rows)

    def cohorts(self) -> Report:
        manifest = self.queries.manifest()
        as_of = self._as_of(None, manifest)
        rows = []
        for r in self.queries.run(report_sql.cohorts(manifest)):
            size = _int(r["cohort_size"])
            offset = r["month_offset"]
            rows.append(
                {
                    "cohort": _day(r["cohort_month"])[:7],
                    "cohort_size": size,
                    "month_offset": _int(offset) if offset is not None and offset != "" else None,
                    "active": _int(r["active"]),
                    "retention": _ratio(_int(r["active"]), size) if offset not in (None, "") else None,
                }
            )
        columns = ("cohort", "cohort_size", "month_offset", "active", "retention")
        return Report(as_of, columns, rows)
