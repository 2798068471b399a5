"""Segments' SQL over the lake, written once in Athena's dialect (Trino) and rendered by sqlglot
for whichever engine runs it (DuckDB locally): a rule's preview and the RFM scores.

The statements read the lake's change tables and derive the current state inline (the latest
image per key, `latest`, with only the columns a statement reads). Everything a client typed
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

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlglot
from sqlglot import exp

from loyalty.domain.errors import ValidationFailed
from loyalty.domain.programme import Programme
from loyalty.domain.sales import window_months
from loyalty.domain.segments import (
    All,
    Any_,
    Attr,
    Birthday,
    CountRange,
    Duration,
    EventCond,
    EventSpec,
    MoneyRange,
    Node,
    Not,
    Purchased,
    PurchasedSpec,
)
from loyalty.domain.segments.paths import ATTRIBUTES, Kind, calendar_date, instant, kind_of
from loyalty.domain.segments.windows import back, back_date, next_birthday
from loyalty.services import segment_facets
from loyalty.services.lake import CUSTOMERS, LakeManifest
from loyalty.services.report_sql import REPORTED_KINDS, current

DIALECTS = ("duckdb", "trino")
RFM_WINDOW = timedelta(days=365)


def ts(value: datetime) -> str:
    """A UTC instant as a Trino timestamp literal (the lake's timestamps are UTC, no zone)."""
    moment = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return f"TIMESTAMP '{moment.isoformat(sep=' ', timespec='milliseconds')}'"


def _local_dates(tree: Any) -> Any:
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


# `control_bucket(text)`: the first 8 bytes of the text's SHA-256, big-endian and unsigned, modulo
# 10,000 (loyalty.domain.campaigns.in_control), in 64-bit integers: the high and low 32 bits apart,
# as (hi mod 10^4 * (2^32 mod 10^4) + lo) mod 10^4 (2^32 mod 10^4 = 7296).
_CONTROL_BUCKET = {
    "trino": "((from_base(substr(to_hex(sha256(to_utf8({x}))), 1, 8), 16) % 10000) * 7296"
    " + from_base(substr(to_hex(sha256(to_utf8({x}))), 9, 8), 16)) % 10000",
    "duckdb": "((CAST('0x' || substr(sha256({x}), 1, 8) AS BIGINT) % 10000) * 7296"
    " + CAST('0x' || substr(sha256({x}), 9, 8) AS BIGINT)) % 10000",
}


def _control_buckets(tree: Any, dialect: str) -> Any:
    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and str(node.this).lower() == "control_bucket":
            (text,) = node.expressions
            spelled = _CONTROL_BUCKET[dialect].format(x=text.sql(dialect=dialect))
            return exp.paren(sqlglot.parse_one(spelled, read=dialect))
        return node

    return tree.transform(swap)


def render(sql: str, dialect: str) -> str:
    """The statement in the engine's dialect (parsed as Trino, so it is valid Trino to begin with)."""
    if dialect not in DIALECTS:
        raise ValueError(f"no SQL dialect {dialect!r}")
    tree = sqlglot.parse_one(sql, read="trino")
    return _control_buckets(_local_dates(tree), dialect).sql(dialect=dialect)


_RFM_TXN_COLUMNS = ("customer_id", "txn_type", "occurred_at", "total")
_RFM_CUSTOMER_COLUMNS = ("customer_id", "status", "merged_into", "score_r", "score_f", "score_m")


def rfm(now: datetime, manifest: LakeManifest | None = None) -> str:
    """Per live customer whose scores change: the new r, f, m (NULL: no sale any more, so no
    scores) - only the customers whose stored scores (the lake's copy) differ."""
    since = ts(now - RFM_WINDOW)
    until = ts(now)
    return f"""
WITH live AS (
    SELECT customer_id, score_r, score_f, score_m
    FROM ({latest("customers", _RFM_CUSTOMER_COLUMNS, manifest=manifest)}) AS c
    WHERE status = 'active' AND merged_into IS NULL
),
txn AS (
    SELECT * FROM ({latest("transactions", _RFM_TXN_COLUMNS, manifest=manifest)}
    ) AS t WHERE t.customer_id IS NOT NULL
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


# ---- previews: a rule as one statement ---------------------------------------------------------

SAMPLE_SIZE = 20
_CMP = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_NUMERIC = "DECIMAL(38, 18)"


def lit(text: str) -> str:
    """A string literal as Trino writes it (quotes doubled): the only way client text enters SQL."""
    return exp.Literal.string(text).sql(dialect="trino")


def ts_us(value: datetime) -> str:
    moment = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return f"TIMESTAMP '{moment.isoformat(sep=' ', timespec='microseconds')}'"


def num(value: Decimal | int) -> str:
    text = segment_facets.decimal_text(Decimal(value))
    return f"CAST({lit(text)} AS {_NUMERIC})"


def _floor_date(day: date) -> str:
    """The oldest `dt` partition that can hold a change to a fact of `day` or later (a fact is
    written on or after the day it happened, a till's clock a day ahead allowed)."""
    return lit((day - timedelta(days=1)).isoformat())


@dataclass
class _Compiler:
    now: datetime
    programme: Programme
    ctes: list[str] = field(default_factory=list)
    joins: list[str] = field(default_factory=list)
    purchase_start: datetime | None = None
    event_start: datetime | None = None
    event_types: set[str] = field(default_factory=set)
    stores: bool = False

    # -- the customer's local calendar ------------------------------------------------------
    @property
    def zone(self) -> str:
        return f"COALESCE(c.timezone, {lit(self.programme.messaging.default_timezone)})"

    def by_local_date(self, decide: Callable[[date], str]) -> str:
        """An expression chosen by the customer's local date today, which is one of three dates
        (UTC's, the day before, the day after: time zones lie within a day of UTC)."""
        today = self.now.astimezone(UTC).date()
        arms = " ".join(
            f"WHEN DATE {lit(day.isoformat())} THEN {decide(day)}"
            for day in (today - timedelta(days=1), today, today + timedelta(days=1))
        )
        return f"CASE local_date({self.zone}, {ts_us(self.now)}) {arms} ELSE FALSE END"

    # -- the tree ----------------------------------------------------------------------------
    def rule(self, node: Node, loc: tuple[str | int, ...] = ("body", "rule")) -> str:
        """A predicate over the customer row `c` that is TRUE or FALSE, never NULL (so NOT works)."""
        match node:
            case All():
                return (
                    "(" + " AND ".join(self.rule(c, (*loc, "all", i)) for i, c in enumerate(node.all)) + ")"
                )
            case Any_():
                return "(" + " OR ".join(self.rule(c, (*loc, "any", i)) for i, c in enumerate(node.any)) + ")"
            case Not():
                return f"(NOT {self.rule(node.not_, (*loc, 'not'))})"
            case Attr():
                if node.attr == "profile.birthday" and node.op != "exists":
                    raise ValidationFailed.at(
                        (*loc, node.op),
                        "a preview compares no birth dates: the data lake keeps a birthday's month and "
                        'day only. Use {"birthday": {"within_days": n}} or "exists" here; a saved '
                        "segment evaluates it in full",
                    )
                return f"COALESCE({self.attr(node)}, FALSE)"
            case Birthday():
                return f"COALESCE({self.birthday(node.birthday.within_days)}, FALSE)"
            case Purchased():
                return self.purchased(node.purchased)
            case EventCond():
                return self.event(node.event)
        raise ValueError(f"no SQL for {type(node).__name__}")  # pragma: no cover - the union is closed

    def birthday(self, within_days: int) -> str:
        def days(today: date) -> str:
            near = sorted(
                day.strftime("%m-%d")
                for day in _BIRTHDAYS
                if (next_birthday(day, today) - today).days <= within_days
            )
            if len(near) == len(_BIRTHDAYS):
                return "TRUE"
            if not near:
                return "FALSE"
            return f"c.birthday_md IN ({', '.join(lit(md) for md in near)})"

        return f"(c.birthday_md IS NOT NULL AND {self.by_local_date(days)})"

    def purchased(self, spec: PurchasedSpec) -> str:
        start = back(self.now, spec.within)
        self.purchase_start = min(start, self.purchase_start or start)
        name = f"p{len(self.ctes)}"
        where = [f"t.occurred_at >= {ts_us(start)}"]
        if spec.stores:
            where.append(f"t.store_id IN ({', '.join(lit(s) for s in spec.stores)})")
        if spec.channels:
            where.append(f"t.channel IN ({', '.join(lit(s) for s in spec.channels)})")
        join_store = ""
        if spec.store_attributes:
            self.stores = True
            join_store = "LEFT JOIN stores_now AS s ON s.store_id = t.store_id"
            for key, wanted in spec.store_attributes.items():
                facts = f"json_extract_scalar(s.attribute_facts, '$.{segment_facets.path_key(key)}')"
                where.append(f"COALESCE({facts} = {lit(segment_facets.canonical(wanted))}, FALSE)")
        filtered = bool(spec.skus or spec.categories)
        line_where = []
        if spec.skus:
            line_where.append(f"l.sku IN ({', '.join(lit(s) for s in spec.skus)})")
        if spec.categories:
            line_where.append(f"l.category IN ({', '.join(lit(s) for s in spec.categories)})")
        lines_filter = f"WHERE {' OR '.join(line_where)}" if line_where else ""
        counted = "m.matched > 0" if filtered else "TRUE"
        self.ctes.append(f"""{name} AS (
    SELECT
        t.customer_id,
        SUM(CASE WHEN t.txn_type = 'sale' AND {counted} THEN 1 ELSE 0 END) AS n,
        SUM(CASE WHEN t.txn_type = 'sale' THEN COALESCE(m.amount, 0)
            WHEN t.txn_type = 'return' THEN -COALESCE(m.amount, 0) ELSE 0 END) AS spend
    FROM txn_window AS t
    {join_store}
    LEFT JOIN (
        SELECT l.store_id, l.transaction_id, COUNT(*) AS matched,
            SUM(ROUND(l.quantity * l.unit_price - COALESCE(l.discount, 0), 2)) AS amount
        FROM lines_window AS l
        {lines_filter}
        GROUP BY l.store_id, l.transaction_id
    ) AS m ON m.store_id = t.store_id AND m.transaction_id = t.transaction_id
    WHERE {" AND ".join(where)}
    GROUP BY t.customer_id
)""")
        self.joins.append(f"LEFT JOIN {name} ON {name}.customer_id = c.customer_id")
        n, spend = f"COALESCE({name}.n, 0)", f"COALESCE({name}.spend, 0)"
        if spec.count is None and spec.spend is None:
            return f"({n} >= 1)"
        bounds = [*_bounds(n, spec.count, str), *_bounds(spend, spec.spend, num)]
        return "(" + " AND ".join(bounds) + ")"

    def event(self, spec: EventSpec) -> str:
        start = back(self.now, spec.within)
        self.event_start = min(start, self.event_start or start)
        self.event_types.add(spec.type)
        name = f"e{len(self.ctes)}"
        where = [f"e.event_type = {lit(spec.type)}", f"e.occurred_at >= {ts_us(start)}"]
        for key, wanted in spec.where.items():
            facts = f"json_extract_scalar(e.property_facts, '$.{segment_facets.path_key(key)}')"
            where.append(f"COALESCE({facts}, 'null') = {lit(segment_facets.canonical(wanted))}")
        self.ctes.append(f"""{name} AS (
    SELECT e.customer_id, COUNT(*) AS n
    FROM events_window AS e
    WHERE {" AND ".join(where)}
    GROUP BY e.customer_id
)""")
        self.joins.append(f"LEFT JOIN {name} ON {name}.customer_id = c.customer_id")
        n = f"COALESCE({name}.n, 0)"
        if spec.count is None:
            return f"({n} >= 1)"
        return "(" + " AND ".join(_bounds(n, spec.count, str)) + ")"

    # -- attribute conditions --------------------------------------------------------------
    def attr(self, node: Attr) -> str:
        kind = kind_of(node.attr)
        if kind is Kind.ANY:
            return self.free(node)
        column = self.column(node.attr)
        op, operand = node.op, node.operand
        if op == "exists":
            present = (
                f"COALESCE(cardinality({column}), 0) > 0" if kind is Kind.SET else f"{column} IS NOT NULL"
            )
            return present if operand else f"NOT ({present})"
        if kind is Kind.SET:
            return self.set_of(column, op, operand)
        if op in ("before", "within"):
            return self.timed(kind, column, op, operand)
        render = self.operand_renderer(kind)
        if op == "contains":
            return f"strpos({column}, {lit(operand)}) > 0"
        if op in ("in", "not_in"):
            if not operand:
                return "FALSE" if op == "in" else f"{column} IS NOT NULL"
            listed = f"{column} IN ({', '.join(render(item) for item in operand)})"
            return listed if op == "in" else f"NOT ({listed})"
        return f"{column} {_CMP[op]} {render(operand)}"

    def column(self, path: str) -> str:
        columns = {
            "member": "c.member",
            "status": "COALESCE(c.shown_status, c.status)",
            "tier": "c.tier_now",
            "points.available": "c.points_available",
            "points.pending": "c.points_pending",
            "points.lifetime": "c.points_lifetime",
            "stats.transactions": "c.txn_count",
            "stats.spend": "c.spend",
            "stats.first_purchase_at": "c.first_purchase_at",
            "stats.last_purchase_at": "c.last_purchase_at",
            "created_at": "c.created_at",
            "enrolled_at": "c.enrolled_at",
            "profile.birthday": "c.birthday_md",  # `exists` only (see `rule`)
            "profile.country": "c.country",
            "price_groups": "c.price_groups",
            "badges": "c.badges",
            "scores.r": "c.score_r",
            "scores.f": "c.score_f",
            "scores.m": "c.score_m",
            "scores.rfm": "CASE WHEN c.score_r IS NOT NULL THEN "
            "concat(CAST(c.score_r AS VARCHAR), CAST(c.score_f AS VARCHAR), CAST(c.score_m AS VARCHAR)) END",
            "consents.email": "COALESCE(c.consent_email, FALSE)",
            "consents.sms": "COALESCE(c.consent_sms, FALSE)",
            "consents.mail": "COALESCE(c.consent_mail, FALSE)",
        }
        return columns[path]

    @staticmethod
    def operand_renderer(kind: Kind) -> Callable[[Any], str]:
        if kind is Kind.NUMBER:
            return num
        if kind is Kind.BOOL:
            return lambda value: "TRUE" if value else "FALSE"
        if kind is Kind.INSTANT:
            return ts_us
        return lit

    @staticmethod
    def set_of(column: str, op: str, operand: Any) -> str:
        if op == "contains":
            return f"contains({column}, {lit(operand)})"
        names = sorted(operand)
        if op in ("in", "not_in"):
            some = " OR ".join(f"contains({column}, {lit(name)})" for name in names) or "FALSE"
            some = f"COALESCE(({some}), FALSE)"
            return some if op == "in" else f"NOT {some}"
        size = f"COALESCE(cardinality({column}), 0)"
        same = " AND ".join([f"{size} = {len(names)}", *(f"contains({column}, {lit(n)})" for n in names)])
        same = f"COALESCE(({same}), FALSE)"
        return same if op == "eq" else f"NOT {same}"

    def timed(self, kind: Kind, column: str, op: str, duration: Duration) -> str:
        """`within`: value >= now - duration; `before`: value < now - duration (instants: the one
        timed kind a preview compares, see `rule`)."""
        assert kind is Kind.INSTANT
        compare = ">=" if op == "within" else "<"
        return f"{column} {compare} {ts_us(back(self.now, duration))}"

    def free(self, node: Attr) -> str:
        """A free-form profile attribute, through its typed facts (loyalty.services.segment_facets)."""
        key = segment_facets.path_key(node.attr.removeprefix(ATTRIBUTES))

        def fact(name: str) -> str:
            return f"json_extract_scalar(c.attribute_facts, '$.{key}.{name}')"

        present = f"{fact('x')} IS NOT NULL"
        op, operand = node.op, node.operand
        if op == "exists":
            return present if operand else f"NOT ({present})"
        if op in ("eq", "ne", "in", "not_in"):
            listed = operand if op in ("in", "not_in") else (operand,)
            equal = " OR ".join(self.free_equal(fact, item) for item in listed) or "FALSE"
            equal = f"COALESCE(({equal}), FALSE)"
            return equal if op in ("eq", "in") else f"({present} AND NOT {equal})"
        if op == "contains":
            token = lit(json.dumps(segment_facets.equality_key(operand), ensure_ascii=False))
            in_list = f"COALESCE(strpos({fact('k')}, {token}) > 0, FALSE)"
            if isinstance(operand, str):
                return f"(COALESCE(strpos({fact('t')}, {lit(operand)}) > 0, FALSE) OR {in_list})"
            return in_list
        if op in ("before", "within"):
            compare = ">=" if op == "within" else "<"
            moment = f"{fact('i')} {compare} {lit(segment_facets.instant_text(back(self.now, operand)))}"
            if operand.has_time:
                return f"CASE WHEN {fact('i')} IS NOT NULL THEN {moment} ELSE FALSE END"
            day = self.by_local_date(
                lambda today: f"{fact('d')} {compare} {lit(back_date(today, operand).isoformat())}"
            )
            return (
                f"CASE WHEN {fact('i')} IS NOT NULL THEN {moment} "
                f"WHEN {fact('d')} IS NOT NULL THEN {day} ELSE FALSE END"
            )
        return self.free_order(fact, _CMP[op], operand)

    @staticmethod
    def free_equal(fact: Callable[[str], str], operand: Any) -> str:
        key = segment_facets.equality_key(operand)
        assert key is not None  # operands are strings, numbers or booleans (paths.read_operand)
        form, _, text = key.partition(":")
        return f"{fact(form)} = {lit(text)}"

    @staticmethod
    def free_order(fact: Callable[[str], str], compare: str, operand: Any) -> str:
        """Orders hold only between values of one kind (see the domain's notes)."""
        if isinstance(operand, bool):
            holding = [v for v in (False, True) if _order(v, compare, operand)]
            if not holding:
                return "FALSE"
            return f"{fact('b')} IN ({', '.join(lit('true' if v else 'false') for v in holding)})"
        as_number = segment_facets.as_number(operand)
        numeric = (
            f"TRY_CAST({fact('n')} AS {_NUMERIC}) {compare} {num(as_number)}" if as_number is not None else ""
        )
        if not isinstance(operand, str):
            return numeric
        textual = f"{fact('t')} {compare} {lit(operand)}"

        def kind_first(form: str, typed: str) -> str:
            # The operand's own kind when the value has it too, else both compare as text.
            return (
                f"CASE WHEN {fact(form)} IS NOT NULL THEN {typed} "
                f"WHEN {fact('t')} IS NOT NULL THEN {textual} ELSE FALSE END"
            )

        if as_number is not None:
            return kind_first("n", numeric)
        moment = instant(operand)
        if moment is not None:
            return kind_first("i", f"{fact('i')} {compare} {lit(segment_facets.instant_text(moment))}")
        day = calendar_date(operand)
        if day is not None:
            return kind_first("d", f"{fact('d')} {compare} {lit(day.isoformat())}")
        return textual

    # -- the effective tier now ------------------------------------------------------------
    def tier(self) -> str:
        months = [
            f"COALESCE(TRY_CAST(json_extract_scalar(c.earned_by_month, '$.m{month}') AS BIGINT), 0)"
            for month in (
                key.replace("-", "") for key in window_months(self.now, self.programme.tier_window_months)
            )
        ]
        points = " + ".join(months)
        tiers = self.programme.tiers
        arms = " ".join(f"WHEN {points} >= {t.threshold} THEN {lit(t.name)}" for t in reversed(tiers))
        return f"CASE WHEN NOT c.member THEN NULL {arms} ELSE {lit(tiers[0].name)} END"


def _order(value: bool, compare: str, operand: bool) -> bool:
    return {
        ">": value > operand,
        ">=": value >= operand,
        "<": value < operand,
        "<=": value <= operand,
        "=": value == operand,
        "<>": value != operand,
    }[compare]


_BIRTHDAYS = tuple(date(2000, 1, 1) + timedelta(days=i) for i in range(366))  # 2000: a leap year


def _bounds(value: str, bounds: CountRange | MoneyRange | None, render: Callable[[Any], str]) -> list[str]:
    if bounds is None:
        return []
    return [
        f"{value} {_CMP[name]} {render(getattr(bounds, name))}"
        for name in ("eq", "gt", "gte", "lt", "lte")
        if getattr(bounds, name) is not None
    ]


def preview(rule: Node, now: datetime, programme: Programme, manifest: LakeManifest | None = None) -> str:
    """Counts of the live customers the rule matches at `now` (members, non-members, reachable
    per channel), then up to SAMPLE_SIZE of their ids, and the lake's as_of: rows of `row_kind`
    'counts' (one) and 'sample'."""
    return f"""
{_matched(rule, now, programme, manifest)}
SELECT 'counts' AS row_kind, NULL AS customer_id, COUNT(*) AS matched,
    SUM(CASE WHEN member THEN 1 ELSE 0 END) AS members,
    SUM(CASE WHEN reachable_email THEN 1 ELSE 0 END) AS reachable_email,
    SUM(CASE WHEN reachable_sms THEN 1 ELSE 0 END) AS reachable_sms,
    SUM(CASE WHEN reachable_mail THEN 1 ELSE 0 END) AS reachable_mail,
    (SELECT MAX(newest) FROM (
        SELECT MAX(changed_at) AS newest FROM customers
        UNION ALL SELECT MAX(changed_at) AS newest FROM transactions
        UNION ALL SELECT MAX(changed_at) AS newest FROM events
    ) AS newest_changes) AS as_of
FROM matched
UNION ALL
SELECT 'sample' AS row_kind, customer_id, NULL, NULL, NULL, NULL, NULL, NULL
FROM (
    -- Reversed ids: a ULID's last characters are random, so this is a stable, unbiased pick.
    SELECT customer_id FROM matched ORDER BY reverse(customer_id), customer_id LIMIT {SAMPLE_SIZE}
) AS sample
"""


def members(
    rule: Node | None,
    now: datetime,
    programme: Programme,
    manifest: LakeManifest | None = None,
    *,
    as_of: bool = False,
) -> str:
    """The ids of every live customer the rule (None: every live customer) matches at `now`; with
    `as_of`, over the lake as the table held it at `now` (a backtest: loyalty.services.campaign_reports)."""
    return f"""
{_matched(rule, now, programme, manifest, until=now if as_of else None)}
SELECT customer_id FROM matched ORDER BY customer_id
"""


def latest(
    table: str,
    columns: Iterable[str],
    where: str = "",
    *,
    manifest: LakeManifest | None = None,
    floor: date | None = None,
    until: datetime | None = None,
) -> str:
    """The current state of a kind (its latest change per key, unless that removed it), with only
    the columns named: deduplicating narrow rows is what makes a preview fast, and what Athena scans
    is what is named. With the compacted lake's manifest, a kind that has snapshot tables on AWS
    (report_sql.REPORTED_KINDS) is read as the reports read it - its snapshot and the newer change
    rows (report_sql.current) - and `where` filters the current rows; otherwise the change rows are
    deduplicated here (`dt >= floor - 1 day` when a floor is given). With `until`, the state as the
    table held it then: only the change rows written up to that instant (snapshots, which hold
    the state at their own time, are not read)."""
    names = sorted(set(columns))
    if until is None and manifest is not None and table in REPORTED_KINDS:
        rows = current(table, floor, manifest, names)
        return f"SELECT * FROM ({rows}\n    ) AS c" + (f" WHERE {where}" if where else "")
    chosen = ", ".join(names)
    conditions = [f"c.dt >= {_floor_date(floor)}"] if floor else []
    if until is not None:  # a change is filed under the UTC day it was written
        conditions += [
            f"c.dt <= {lit(until.astimezone(UTC).date().isoformat())}",
            f"c.changed_at <= {ts(until)}",
        ]
    conditions += [where] if where else []
    condition = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"""
    SELECT {chosen} FROM (
        SELECT {chosen}, c.op AS change_op,
            row_number() OVER (PARTITION BY c.change_key ORDER BY c.change_seq DESC) AS change_rank
        FROM {table} AS c{condition}
    ) AS c
    WHERE c.change_rank = 1 AND c.change_op NOT IN ('REMOVE', 'EXPIRE')"""


_MATCHED_COLUMNS = ("customer_id", "member", "status", "reachable_email", "reachable_sms", "reachable_mail")
_TXN_COLUMNS = ("customer_id", "store_id", "transaction_id", "txn_type", "channel", "occurred_at")
_LINE_COLUMNS = ("store_id", "transaction_id", "sku", "category", "quantity", "unit_price", "discount")
_EVENT_COLUMNS = ("customer_id", "event_type", "occurred_at", "property_facts")


def _customer_columns(*expressions: str) -> set[str]:
    """The profile columns the rule reads (as `c.<name>`)."""
    known = {c.name for c in CUSTOMERS.columns}
    found = set()
    for expression in expressions:
        tree = sqlglot.parse_one(f"SELECT {expression}", read="trino")
        found |= {col.name for col in tree.find_all(exp.Column) if col.table == "c" and col.name in known}
    return found


def matched_as_of(rule: Node | None, as_of: datetime, programme: Programme) -> str:
    """The WITH clause ending in `matched` (customer_id, member, reachable_*): the live customers
    the rule (None: every one) matched at `as_of`, over the change rows written up to then."""
    return _matched(rule, as_of, programme, None, until=as_of)


def _matched(
    rule: Node | None,
    now: datetime,
    programme: Programme,
    manifest: LakeManifest | None,
    until: datetime | None = None,
) -> str:
    """The WITH clause ending in `matched`: the live customers the rule matches (every live one
    without a rule); with `until`, over the change rows written up to then only."""
    compiler = _Compiler(now=now, programme=programme)
    predicate = compiler.rule(rule) if rule is not None else "TRUE"
    if until is not None:
        manifest = None
    windows = []
    if compiler.purchase_start is not None:
        floor, start = compiler.purchase_start.astimezone(UTC).date(), ts_us(compiler.purchase_start)
        inner = f"c.occurred_at >= {start}"
        txn = latest("transactions", _TXN_COLUMNS, inner, manifest=manifest, floor=floor, until=until)
        windows.append(f"txn_window AS (SELECT * FROM ({txn}\n) AS t WHERE t.customer_id IS NOT NULL)")
        lines = latest("transaction_lines", _LINE_COLUMNS, inner, manifest=manifest, floor=floor, until=until)
        windows.append(f"lines_window AS ({lines}\n)")
    if compiler.stores:
        stores = latest("stores", ("store_id", "attribute_facts"), manifest=manifest, until=until)
        windows.append(f"stores_now AS ({stores}\n)")
    if compiler.event_start is not None:
        floor, start = compiler.event_start.astimezone(UTC).date(), ts_us(compiler.event_start)
        types = ", ".join(lit(t) for t in sorted(compiler.event_types))
        inner = f"c.event_type IN ({types}) AND c.occurred_at >= {start}"
        events = latest("events", _EVENT_COLUMNS, inner, manifest=manifest, floor=floor, until=until)
        windows.append(f"events_window AS (SELECT * FROM ({events}\n) AS e WHERE e.customer_id IS NOT NULL)")
    tier = compiler.tier() if "c.tier_now" in predicate else "NULL"
    columns = {*_MATCHED_COLUMNS, *_customer_columns(predicate, tier)}
    ctes = ",\n".join(
        [
            f"live AS ({latest('customers', columns, manifest=manifest, until=until)}\n)",
            f"""cust AS (
    SELECT c.*, {tier} AS tier_now
    FROM live AS c
    WHERE c.status = 'active'
)""",
            *windows,
            *compiler.ctes,
            f"""matched AS (
    SELECT c.customer_id, c.member, c.reachable_email, c.reachable_sms, c.reachable_mail
    FROM cust AS c
    {chr(10).join("    " + j for j in compiler.joins)}
    WHERE {predicate}
)""",
        ]
    )
    return f"WITH {ctes}"
