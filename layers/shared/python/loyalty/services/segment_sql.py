"""Segments' SQL over the lake, written once in Athena's dialect (Trino) and rendered by sqlglot
for whichever engine runs it (DuckDB locally): a rule's preview and the RFM scores.

The statements read the lake's change tables and derive the current state inline (the latest
image per key, loyalty.services.report_sql.current), like the reports. Everything a client typed
reaches the text as a literal built by sqlglot (quoted, escaped), never by string formatting.

Two things the engines spell differently are written once here as markers that `render` turns
into each engine's own form: `local_date(tz)` (today's date in an IANA zone: Trino's
`at_timezone`, DuckDB's `AT TIME ZONE`) and nothing else; the rest (`json_extract_scalar`,
`contains` on arrays, `regexp_like`) sqlglot transpiles itself.

RFM quintiles: over the programme's live customers (active, not merged) with at least one sale in
the lake. Recency is the number of calendar days (UTC) since the last sale (fewer days score higher; dates,
not timestamps, because the engines count the days between two instants differently),
frequency the number of sales in the last 365 days, monetary what they spent in those days (sales
minus returns, as the reports count revenue). Each is `NTILE(5)` over that population, ordered by
the measure and then by customer id, so the split is deterministic; then customers with equal
measures take the lowest tile any of them got (`MIN(...) OVER (PARTITION BY measure)`), so equal
behaviour always scores equally - a measure shared by many customers leaves gaps (a population
where 70% bought once has f scores 1, 4 and 5 only) rather than scoring equal customers apart.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlglot
from sqlglot import exp

from loyalty.services.report_sql import current

DIALECTS = ("duckdb", "trino")
RFM_WINDOW = timedelta(days=365)


def ts(value: datetime) -> str:
    """A UTC instant as a Trino timestamp literal (the lake's timestamps are UTC, no zone)."""
    moment = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return f"TIMESTAMP '{moment.isoformat(sep=' ', timespec='milliseconds')}'"


def _local_dates(tree: exp.Expression) -> exp.Expression:
    """`local_date(zone, instant)` -> the date of the UTC instant in that zone, in sqlglot's own
    node (which each dialect renders in its engine's spelling)."""

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and str(node.this).lower() == "local_date":
            zone, instant = node.expressions
            converted = exp.ConvertTimezone(
                source_tz=exp.Literal.string("UTC"), target_tz=zone, timestamp=instant
            )
            return exp.cast(converted, exp.DataType.build("DATE"))
        return node

    return tree.transform(swap)


def render(sql: str, dialect: str) -> str:
    """The statement in the engine's dialect (parsed as Trino, so it is valid Trino to begin with)."""
    if dialect not in DIALECTS:
        raise ValueError(f"no SQL dialect {dialect!r}")
    tree = sqlglot.parse_one(sql, read="trino")
    return _local_dates(tree).sql(dialect=dialect)


def rfm(now: datetime) -> str:
    """Per live customer whose scores change: the new r, f, m (NULL: no sale any more, so no
    scores) - only the customers whose stored scores (the lake's copy) differ."""
    since = ts(now - RFM_WINDOW)
    until = ts(now)
    return f"""
WITH live AS (
    SELECT customer_id, score_r, score_f, score_m
    FROM ({current("customers")}) AS c
    WHERE status = 'active' AND merged_into IS NULL
),
txn AS ({current("transactions", "c.customer_id IS NOT NULL")}
),
measured AS (
    SELECT
        t.customer_id,
        date_diff('day', CAST(MAX(CASE WHEN t.txn_type = 'sale' THEN t.occurred_at END) AS DATE),
            CAST({until} AS DATE)) AS recency,
        SUM(CASE WHEN t.txn_type = 'sale' AND t.occurred_at >= {since} THEN 1 ELSE 0 END) AS frequency,
        SUM(CASE WHEN t.occurred_at < {since} THEN CAST(0 AS DECIMAL(38, 2))
            WHEN t.txn_type = 'return' THEN -t.total ELSE t.total END) AS monetary
    FROM txn AS t
    JOIN live AS l ON l.customer_id = t.customer_id
    WHERE t.occurred_at <= {until}
    GROUP BY t.customer_id
    HAVING COUNT(CASE WHEN t.txn_type = 'sale' THEN 1 END) > 0
),
tiles AS (
    SELECT
        customer_id, recency, frequency, monetary,
        NTILE(5) OVER (ORDER BY recency DESC, customer_id) AS r_tile,
        NTILE(5) OVER (ORDER BY frequency, customer_id) AS f_tile,
        NTILE(5) OVER (ORDER BY monetary, customer_id) AS m_tile
    FROM measured
),
scored AS (
    SELECT
        customer_id,
        MIN(r_tile) OVER (PARTITION BY recency) AS r,
        MIN(f_tile) OVER (PARTITION BY frequency) AS f,
        MIN(m_tile) OVER (PARTITION BY monetary) AS m
    FROM tiles
)
SELECT l.customer_id, s.r, s.f, s.m
FROM live AS l
LEFT JOIN scored AS s ON s.customer_id = l.customer_id
WHERE (s.customer_id IS NOT NULL AND (
        l.score_r IS DISTINCT FROM s.r OR l.score_f IS DISTINCT FROM s.f OR l.score_m IS DISTINCT FROM s.m))
    OR (s.customer_id IS NULL AND l.score_r IS NOT NULL)
ORDER BY l.customer_id
"""
