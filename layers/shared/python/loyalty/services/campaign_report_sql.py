"""The campaign report's and the backtest's SQL, written once in Athena's dialect (Trino) and
rendered by sqlglot for the engine that runs it (loyalty.services.segment_sql.render).

The report: each customer of the campaign counts once, in the group of their first receipt
(`actioned`: treatment; `control`: held out), from that receipt's `acted_at`; they converted when
they made a sale in the `window_days` after it, and their revenue is what they bought in it, net of
returns (as the other reports count revenue). The cost sums what the actioned receipts gave, and
counts their coupons redeemed (a coupon's current `uses`, found by the digest of its key that the
receipt carries: loyalty.services.lake.CAMPAIGN_ACTIONS).

The backtest: the campaign's segment evaluated as the table held it at `as_of` (the segment
preview's SQL over the change rows written up to then), each member's control hash computed in
SQL (`control_bucket`, the same value as loyalty.domain.campaigns.in_control: a test compares
them), and each member's sales in the window after `as_of` from the lake's current state.

Every literal a client could influence is the campaign's id (checked against the catalogue, and
quoted by sqlglot) and integers and instants the service validated.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from loyalty.domain.programme import Programme
from loyalty.domain.segments import Node
from loyalty.services.lake import LakeManifest
from loyalty.services.report_sql import current
from loyalty.services.segment_sql import lit, matched_as_of, ts

RECEIPT_COLUMNS = (
    "campaign_id", "customer_id", "outcome", "acted_at", "points", "amount", "coupon_key", "message_channels",
)  # fmt: skip
CHANNELS = ("email", "sms", "mail", "api")
REVENUE = "CASE WHEN t.txn_type = 'return' THEN -t.total ELSE t.total END"


def report(campaign_id: str, window_days: int, since: date, manifest: LakeManifest | None = None) -> str:
    """Rows of `row_kind` 'group' (per outcome: customers, converted, revenue, revenue_squares) and
    one 'cost' row. `since`: no receipt is older (the campaign's creation): the sales read start
    there."""
    if not 1 <= window_days <= 3660:
        raise ValueError("window_days is validated by the service")
    receipts = current("campaign_actions", None, manifest, RECEIPT_COLUMNS)
    txn = current("transactions", since, manifest, ("customer_id", "occurred_at", "txn_type", "total"))
    coupons = current("coupons", None, manifest, ("change_key", "uses"))
    messages = ",\n        ".join(
        f"SUM(CASE WHEN contains(r.message_channels, {lit(ch)}) THEN 1 ELSE 0 END) AS messages_{ch}"
        for ch in CHANNELS
    )
    no_messages = ", ".join(f"NULL AS messages_{ch}" for ch in CHANNELS)
    return f"""
WITH receipts AS (
    SELECT * FROM ({receipts}
    ) AS r WHERE r.campaign_id = {lit(campaign_id)}
),
exposed AS (
    -- Each customer once, in the group of their first receipt, from its time.
    SELECT f.customer_id, f.outcome, f.acted_at FROM (
        SELECT r.customer_id, r.outcome, r.acted_at,
            row_number() OVER (PARTITION BY r.customer_id ORDER BY r.acted_at, r.outcome) AS nth
        FROM receipts AS r
        WHERE r.outcome IN ('actioned', 'control') AND r.customer_id IS NOT NULL
    ) AS f WHERE f.nth = 1
),
txn AS ({txn}
),
bought AS (
    SELECT
        e.customer_id,
        e.outcome,
        SUM(CASE WHEN t.txn_type = 'sale' THEN 1 ELSE 0 END) AS sales,
        COALESCE(SUM({REVENUE}), CAST(0 AS DECIMAL(38, 2))) AS revenue
    FROM exposed AS e
    LEFT JOIN txn AS t ON t.customer_id = e.customer_id
        AND t.occurred_at >= e.acted_at AND t.occurred_at < e.acted_at + INTERVAL '{window_days}' DAY
    GROUP BY e.customer_id, e.outcome
),
coupons_now AS ({coupons}
)
SELECT
    'group' AS row_kind,
    b.outcome,
    COUNT(*) AS customers,
    SUM(CASE WHEN b.sales > 0 THEN 1 ELSE 0 END) AS converted,
    SUM(b.revenue) AS revenue,
    SUM(b.revenue * b.revenue) AS revenue_squares,
    NULL AS points, NULL AS amount, NULL AS coupons_issued, NULL AS coupons_redeemed, {no_messages}
FROM bought AS b
GROUP BY b.outcome
UNION ALL
SELECT
    'cost' AS row_kind,
    NULL AS outcome, NULL AS customers, NULL AS converted, NULL AS revenue, NULL AS revenue_squares,
    SUM(COALESCE(r.points, 0)) AS points,
    SUM(COALESCE(r.amount, CAST(0 AS DECIMAL(38, 2)))) AS amount,
    SUM(CASE WHEN r.coupon_key IS NOT NULL THEN 1 ELSE 0 END) AS coupons_issued,
    SUM(CASE WHEN c.uses > 0 THEN 1 ELSE 0 END) AS coupons_redeemed,
        {messages}
FROM receipts AS r
LEFT JOIN coupons_now AS c ON c.change_key = r.coupon_key
WHERE r.outcome = 'actioned'
"""


def backtest(
    rule: Node | None,
    as_of: datetime,
    window_days: int,
    programme: Programme,
    *,
    campaign_id: str,
    control_percent: int,
    members_only: bool,
    manifest: LakeManifest | None = None,
) -> str:
    """Per group ('control', 'treatment'): customers, converted, revenue (and revenue_squares) of
    the segment's live customers at `as_of`, over the `window_days` after it."""
    until = as_of + timedelta(days=window_days)
    txn = current("transactions", as_of.date(), manifest, ("customer_id", "occurred_at", "txn_type", "total"))
    key = f"concat('control', chr(10), {lit(campaign_id)}, chr(10), m.customer_id)"
    held_out = f"control_bucket({key}) < {control_percent * 100}" if control_percent > 0 else "FALSE"
    member = "WHERE m.member" if members_only else ""
    return f"""
{matched_as_of(rule, as_of, programme)},
audience AS (
    SELECT m.customer_id, CASE WHEN {held_out} THEN 'control' ELSE 'treatment' END AS grp
    FROM matched AS m {member}
),
after AS (
    SELECT * FROM ({txn}
    ) AS t WHERE t.occurred_at >= {ts(as_of)} AND t.occurred_at < {ts(until)} AND t.customer_id IS NOT NULL
),
bought AS (
    SELECT a.customer_id, a.grp,
        SUM(CASE WHEN t.txn_type = 'sale' THEN 1 ELSE 0 END) AS sales,
        COALESCE(SUM({REVENUE}), CAST(0 AS DECIMAL(38, 2))) AS revenue
    FROM audience AS a
    LEFT JOIN after AS t ON t.customer_id = a.customer_id
    GROUP BY a.customer_id, a.grp
)
SELECT
    b.grp,
    COUNT(*) AS customers,
    SUM(CASE WHEN b.sales > 0 THEN 1 ELSE 0 END) AS converted,
    SUM(b.revenue) AS revenue,
    SUM(b.revenue * b.revenue) AS revenue_squares
FROM bought AS b
GROUP BY b.grp
"""
