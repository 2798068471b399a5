"""The reports' SQL, written once: Athena (Trino) runs it on AWS, DuckDB over the same Parquet locally.

Only constructs both engines share (checked in tests: each statement parses as Trino with sqlglot
and runs in DuckDB). The tables are the lake's change tables, one per kind (Glue tables on AWS,
DuckDB views locally, loyalty.adapters.report_queries); each report derives the current state
itself - the latest image per key (`row_number() OVER (PARTITION BY change_key ORDER BY
change_seq DESC) = 1`, dropped when that latest change is a removal). Once compaction has run
(loyalty.services.compaction), the manifest it swaps names a snapshot generation: the reports then
read the `<kind>_snapshot` tables of that generation plus the few change rows newer than it, and
deduplicate only those - the same answer, without deduplicating the whole history each time. Each
report names the columns it reads, so Athena scans only those.

Parameters are substituted as literals only after validation: dates are `datetime.date` values
(rendered as `TIMESTAMP` literals), interval and dimension come from closed enumerations. Nothing a
client types reaches the text otherwise.

The transactions' `dt` partition is the day the change was written; a sale is written on or after
the day it occurred (a till's clock a little ahead is allowed a day), so `dt >= from - 1 day` prunes
every partition before the period without losing a sale. Ratios (average basket, shares,
retention) are computed by the service from these sums, the same way for both engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, timedelta
from typing import Literal

from loyalty.services.lake import KINDS, LakeManifest, snapshot_table

Interval = Literal["day", "week", "month"]
Dimension = Literal["store", "channel"]

REMOVALS = "('REMOVE', 'EXPIRE')"
# The kinds the reports read (the Glue snapshot tables on AWS are made for these).
REPORTED_KINDS = ("customers", "transactions", "ledger", "stores", "campaign_actions", "coupons")


def _columns(table: str, columns: Sequence[str] | None) -> list[str]:
    kind = next(k for k in KINDS if k.name == table)
    names = [c.name for c in kind.all_columns] + ["dt"]
    if columns is None:
        return names
    unknown = set(columns) - set(names)
    if unknown:
        raise ValueError(f"{table} has no column {sorted(unknown)}")
    return list(columns)


def current(
    table: str,
    floor: date | None = None,
    manifest: LakeManifest | None = None,
    columns: Sequence[str] | None = None,
) -> str:
    """The current state of a kind: its latest change per key, unless that change removed it.

    Without a manifest, from every change row (those with `dt >= floor - 1 day` when a floor is
    given). With one, from the snapshot of its generation and the change rows of the days after
    its `closed_through`: snapshot rows whose key changed since are replaced by the latest of those
    changes. Both answer the same rows (loyalty.services.compaction says why). `columns` are the
    ones the caller reads (all, and `dt`, by default): what Athena scans is what is named."""
    names = _columns(table, columns)
    chosen = ", ".join(f"c.{n}" for n in names)
    dt_floor = f" AND c.dt >= {_partition_floor(floor)}" if floor else ""
    if manifest is None:
        return f"""
    SELECT {chosen} FROM (
        SELECT c.*, row_number() OVER (PARTITION BY c.change_key ORDER BY c.change_seq DESC) AS latest
        FROM {table} AS c WHERE true{dt_floor}
    ) AS c
    WHERE c.latest = 1 AND c.op NOT IN {REMOVALS}"""
    # The newer change rows are read once (both engines take a WITH inside a subquery).
    return f"""
    WITH recent AS (
        SELECT c.*, row_number() OVER (PARTITION BY c.change_key ORDER BY c.change_seq DESC) AS latest
        FROM {table} AS c WHERE c.dt > '{manifest.closed_through.isoformat()}'{dt_floor}
    )
    SELECT {chosen} FROM {snapshot_table(table)} AS c
    WHERE c.generation = '{manifest.generation}'{dt_floor}
        AND c.change_key NOT IN (SELECT r.change_key FROM recent AS r)
    UNION ALL
    SELECT {chosen} FROM recent AS c
    WHERE c.latest = 1 AND c.op NOT IN {REMOVALS}"""


def _ts(value: date) -> str:
    return f"TIMESTAMP '{value.isoformat()} 00:00:00.000'"


def _partition_floor(start: date) -> str:
    return f"'{(start - timedelta(days=1)).isoformat()}'"


TXN_COLUMNS = ("occurred_at", "store_id", "channel", "txn_type", "total", "customer_id", "member")
SALE_REVENUE = "CASE WHEN t.txn_type = 'return' THEN -t.total ELSE t.total END"


def activity(
    start: date, end: date, interval: Interval, by: Dimension, manifest: LakeManifest | None = None
) -> str:
    """Per period and store (or channel): sales, revenue net of returns, who bought, new members,
    points earned and redeemed. `end` is inclusive."""
    if interval not in ("day", "week", "month") or by not in ("store", "channel"):
        raise ValueError("interval and dimension come from closed sets")
    until = end + timedelta(days=1)
    txn_dim = "t.store_id" if by == "store" else "t.channel"
    ledger_dim = "l.store_id" if by == "store" else "s.channel"
    member_dim = "m.origin_store_id" if by == "store" else "s.channel"
    unused = "channel" if by == "store" else "store_id"  # of the sales: Athena reads what is named
    return f"""
WITH txn AS ({current("transactions", start, manifest, tuple(c for c in TXN_COLUMNS if c != unused))}
),
stores_now AS ({current("stores", None, manifest, ("store_id", "channel"))}
),
ledger_now AS ({current("ledger", start, manifest, ("entry_at", "store_id", "reason", "points"))}
),
members_now AS ({current("customers", None, manifest, ("member", "enrolled_at", "origin_store_id"))}
),
bought AS (
    -- One row per period, dimension, customer and member flag: the distinct counts below then
    -- count rows instead of keeping three distinct sets per group over every sale.
    SELECT
        CAST(date_trunc('{interval}', t.occurred_at) AS DATE) AS period,
        {txn_dim} AS dimension,
        t.customer_id,
        t.member,
        SUM(CASE WHEN t.txn_type = 'sale' THEN 1 ELSE 0 END) AS sales,
        SUM({SALE_REVENUE}) AS revenue
    FROM txn AS t
    WHERE t.occurred_at >= {_ts(start)} AND t.occurred_at < {_ts(until)}
    GROUP BY 1, 2, 3, 4
),
sales AS (
    SELECT
        b.period,
        b.dimension,
        SUM(b.sales) AS transactions,
        SUM(b.revenue) AS revenue,
        COUNT(DISTINCT CASE WHEN b.sales > 0 THEN b.customer_id END) AS customers,
        SUM(CASE WHEN b.sales > 0 AND b.customer_id IS NOT NULL AND b.member THEN 1 ELSE 0 END) AS members,
        SUM(CASE WHEN b.sales > 0 AND b.customer_id IS NOT NULL AND NOT b.member THEN 1 ELSE 0 END)
            AS non_members,
        SUM(CASE WHEN b.customer_id IS NULL THEN b.sales ELSE 0 END) AS anonymous,
        0 AS new_members,
        0 AS points_earned,
        0 AS points_redeemed
    FROM bought AS b
    GROUP BY 1, 2
),
points AS (
    SELECT
        CAST(date_trunc('{interval}', l.entry_at) AS DATE) AS period,
        {ledger_dim} AS dimension,
        0 AS transactions,
        CAST(0 AS DECIMAL(38, 2)) AS revenue,
        0 AS customers,
        0 AS members,
        0 AS non_members,
        0 AS anonymous,
        0 AS new_members,
        SUM(CASE WHEN l.reason IN ('earn', 'retro_credit', 'event', 'challenge', 'campaign') AND l.points > 0
            THEN l.points ELSE 0 END) AS points_earned,
        SUM(CASE WHEN l.reason = 'redeem' THEN -l.points ELSE 0 END) AS points_redeemed
    FROM ledger_now AS l
    LEFT JOIN stores_now AS s ON s.store_id = l.store_id
    WHERE l.entry_at >= {_ts(start)} AND l.entry_at < {_ts(until)}
    GROUP BY 1, 2
),
enrolments AS (
    SELECT
        CAST(date_trunc('{interval}', m.enrolled_at) AS DATE) AS period,
        {member_dim} AS dimension,
        0 AS transactions,
        CAST(0 AS DECIMAL(38, 2)) AS revenue,
        0 AS customers,
        0 AS members,
        0 AS non_members,
        0 AS anonymous,
        COUNT(*) AS new_members,
        0 AS points_earned,
        0 AS points_redeemed
    FROM members_now AS m
    LEFT JOIN stores_now AS s ON s.store_id = m.origin_store_id
    WHERE m.member AND m.enrolled_at >= {_ts(start)} AND m.enrolled_at < {_ts(until)}
    GROUP BY 1, 2
)
SELECT
    period,
    dimension,
    SUM(transactions) AS transactions,
    SUM(revenue) AS revenue,
    SUM(customers) AS customers,
    SUM(members) AS members,
    SUM(non_members) AS non_members,
    SUM(anonymous) AS anonymous,
    SUM(new_members) AS new_members,
    SUM(points_earned) AS points_earned,
    SUM(points_redeemed) AS points_redeemed
FROM (
    SELECT * FROM sales
    UNION ALL
    SELECT * FROM points
    UNION ALL
    SELECT * FROM enrolments
) AS facts
GROUP BY period, dimension
ORDER BY period, dimension
"""


def members_vs_non_members(start: date, end: date, manifest: LakeManifest | None = None) -> str:
    """Per group (members, non_members, anonymous): sales, revenue net of returns, gross sales
    value, distinct customers. A customer who enrolled during the period counts in both groups:
    each sale is grouped by the member flag it was recorded with."""
    until = end + timedelta(days=1)
    return f"""
WITH txn AS ({current("transactions", start, manifest, TXN_COLUMNS[:1] + TXN_COLUMNS[3:])}
),
bought AS (
    -- One row per group and customer: counting them needs no distinct set over every sale.
    SELECT
        CASE WHEN t.customer_id IS NULL THEN 'anonymous'
            WHEN t.member THEN 'members' ELSE 'non_members' END AS grp,
        t.customer_id,
        SUM(CASE WHEN t.txn_type = 'sale' THEN 1 ELSE 0 END) AS sales,
        SUM({SALE_REVENUE}) AS revenue,
        SUM(CASE WHEN t.txn_type = 'sale' THEN t.total ELSE CAST(0 AS DECIMAL(38, 2)) END) AS sales_value
    FROM txn AS t
    WHERE t.occurred_at >= {_ts(start)} AND t.occurred_at < {_ts(until)}
    GROUP BY 1, 2
)
SELECT
    b.grp,
    SUM(b.sales) AS transactions,
    SUM(b.revenue) AS revenue,
    SUM(b.sales_value) AS sales_value,
    SUM(CASE WHEN b.sales > 0 AND b.customer_id IS NOT NULL THEN 1 ELSE 0 END) AS customers
FROM bought AS b
GROUP BY 1
ORDER BY 1
"""


COHORT_COLUMNS = ("customer_id", "member", "enrolled_at", "merged_into")


def cohorts(manifest: LakeManifest | None = None) -> str:
    """Members by enrolment month, and how many of each cohort bought in each month after it
    (offset 0 is the month they enrolled)."""
    return f"""
WITH members_now AS ({current("customers", None, manifest, COHORT_COLUMNS)}
),
txn AS ({current("transactions", None, manifest, ("customer_id", "occurred_at", "txn_type"))}
),
cohort AS (
    SELECT m.customer_id, CAST(date_trunc('month', m.enrolled_at) AS DATE) AS cohort_month
    FROM members_now AS m
    WHERE m.member AND m.enrolled_at IS NOT NULL AND m.merged_into IS NULL
),
bought AS (
    SELECT DISTINCT t.customer_id, CAST(date_trunc('month', t.occurred_at) AS DATE) AS month
    FROM txn AS t
    WHERE t.txn_type = 'sale' AND t.customer_id IS NOT NULL
),
sizes AS (
    SELECT cohort_month, COUNT(*) AS cohort_size FROM cohort GROUP BY cohort_month
),
active AS (
    SELECT c.cohort_month, date_diff('month', c.cohort_month, b.month) AS month_offset,
        COUNT(DISTINCT c.customer_id) AS active
    FROM cohort AS c
    JOIN bought AS b ON b.customer_id = c.customer_id AND b.month >= c.cohort_month
    GROUP BY 1, 2
)
SELECT s.cohort_month, s.cohort_size, a.month_offset, COALESCE(a.active, 0) AS active
FROM sizes AS s
LEFT JOIN active AS a ON a.cohort_month = s.cohort_month
ORDER BY 1, 3
"""


def as_of(start: date | None = None, manifest: LakeManifest | None = None) -> str:
    """The newest change the lake holds of what the reports read. With a manifest, the snapshots'
    part is the newest change compaction saw (kept in the manifest) and only the days after
    `closed_through` are read."""
    floor = f" AND dt >= {_partition_floor(start)}" if start else ""
    recent = f" AND dt > '{manifest.closed_through.isoformat()}'" if manifest else ""
    parts = [
        f"SELECT MAX(changed_at) AS newest FROM transactions WHERE true{floor}{recent}",
        f"SELECT MAX(changed_at) AS newest FROM ledger WHERE true{floor}{recent}",
        f"SELECT MAX(changed_at) AS newest FROM customers WHERE true{recent}",
    ]
    if manifest is not None:
        for kind in ("transactions", "ledger", "customers"):
            moment = manifest.newest.get(kind)
            covered = (
                start is None or kind == "customers" or start - timedelta(days=1) <= manifest.closed_through
            )
            if moment is not None and covered:
                stamp = (
                    moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")
                )
                parts.append(f"SELECT TIMESTAMP '{stamp}' AS newest")
    union = "\n    UNION ALL\n    ".join(parts)
    return f"""
SELECT MAX(newest) AS as_of FROM (
    {union}
) AS newest_changes
"""
