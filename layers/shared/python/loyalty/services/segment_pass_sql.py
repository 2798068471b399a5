"""The lake queries of a segment's background pass: which customers exist, a page at a time.

Both engines run them (Athena on AWS, DuckDB locally; checked in tests like the reports' SQL). A
pass reads the live customers created up to one `snapshot` (later ones are the real-time worker's),
from the current state (the compacted snapshot and the newer changes when a manifest is given), so
every page comes from the same set, less whoever is merged away or erased meanwhile. Live customers only: the
merged-away and erased are in no segment. Values reach the text only after validation (a
`datetime`, an int, a customer id of the platform's id shape).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from loyalty.domain.ids import is_plausible_id
from loyalty.services.lake import LakeManifest
from loyalty.services.report_sql import current

SEGMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LIVE = "status NOT IN ('merged', 'erased') AND merged_into IS NULL"


def _ts(moment: datetime) -> str:
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return f"TIMESTAMP '{utc.isoformat(sep=' ', timespec='milliseconds')}'"


def _live_as_of(snapshot: datetime, manifest: LakeManifest | None) -> str:
    columns = ("customer_id", "status", "merged_into", "created_at")
    return f"""SELECT * FROM ({current("customers", manifest=manifest, columns=columns)}
) AS state WHERE created_at <= {_ts(snapshot)}"""


def saved_version(segment_id: str) -> str:
    """The newest version of a segment's definition the lake holds (NULL: none yet)."""
    if not SEGMENT_ID.match(segment_id):
        raise ValueError("not a segment id")
    return f"SELECT MAX(version) AS version FROM segments WHERE segment_id = '{segment_id}'"


def live_count(snapshot: datetime, manifest: LakeManifest | None = None) -> str:
    return f"""
SELECT COUNT(*) AS customers FROM ({_live_as_of(snapshot, manifest)}
) AS live
WHERE {LIVE}
"""


def live_page(snapshot: datetime, after: str, limit: int, manifest: LakeManifest | None = None) -> str:
    """The next `limit` live customer ids after `after` ("" for the first page), in id order."""
    if after and not is_plausible_id(after):
        raise ValueError("a page starts after a customer id")
    if not 1 <= limit <= 10_000:
        raise ValueError("a page holds 1 to 10,000 customers")
    return f"""
SELECT customer_id FROM ({_live_as_of(snapshot, manifest)}
) AS live
WHERE {LIVE} AND customer_id > '{after}'
ORDER BY customer_id
LIMIT {limit}
"""
