"""Previews of unsaved rules: exact counts over every live customer, from the data lake.

The rule is read by the domain (`parse_rule`, through the API's SegmentRule field: a bad rule is a
422 naming its place), compiled to one statement (loyalty.services.segment_sql.preview, the same semantics as
`loyalty.domain.segments.evaluate`) and run by the lake's engine: DuckDB locally, Athena on AWS.
The answer is as of the lake's newest change (`as_of`, a minute behind the table at most locally);
time conditions are evaluated at the clock's now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loyalty.domain.programme import Programme
from loyalty.domain.segments import Node
from loyalty.services import segment_sql
from loyalty.services.ports import Clock
from loyalty.services.reports import ReportQueries


@dataclass(frozen=True)
class Preview:
    count: int
    members: int
    non_members: int
    reachable: dict[str, int]
    sample: list[str]
    as_of: datetime | None


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def _as_of(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace(" UTC", ""))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class SegmentPreview:
    queries: ReportQueries
    programme: Callable[[], Programme]
    clock: Clock

    def preview(self, rule: Node) -> Preview:
        """`rule` as `parse_rule` read it (the API's SegmentRule field)."""
        # The compacted lake's snapshot generation, read once: the statement reads only that one.
        statement = segment_sql.preview(rule, self.clock.now(), self.programme(), self.queries.manifest())
        rows = self.queries.run(segment_sql.render(statement, self.queries.dialect))
        counts = next(row for row in rows if row["row_kind"] == "counts")
        count, members = _int(counts["matched"]), _int(counts["members"])
        return Preview(
            count=count,
            members=members,
            non_members=count - members,
            reachable={channel: _int(counts[f"reachable_{channel}"]) for channel in ("email", "sms", "mail")},
            sample=sorted(str(row["customer_id"]) for row in rows if row["row_kind"] == "sample"),
            as_of=_as_of(counts["as_of"]),
        )
