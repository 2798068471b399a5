"""The timeline index's attributes (gsi3): what puts a record on a person's timeline.

Any item that belongs on a customer's (or an anonymous visitor's) timeline carries `tlpk` (whose),
`tlsk` (when, what, which) and `tl` (the timeline item exactly as the API returns it), so the first
page of a timeline is one Query and no second read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from loyalty.adapters.codec import to_iso


def customer_owner(customer_id: str) -> str:
    return f"CUST#{customer_id}"


def anonymous_owner(anonymous_id: str) -> str:
    return f"ANON#{anonymous_id}"


def timeline_fields(
    owner_pk: str,
    at: datetime,
    kind: str,
    type_: str,
    summary: str,
    ref: Mapping[str, Any],
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """`ref` names the record (its ids, in a fixed order): they make the sort key unique."""
    when = to_iso(at) or ""
    unique = "#".join(str(v) for v in ref.values())
    return {
        "tlpk": owner_pk,
        "tlsk": f"{when}#{kind}#{unique}",
        "tl": {
            "at": when,
            "kind": kind,
            "type": type_,
            "summary": summary,
            "ref": dict(ref),
            "data": dict(data),
        },
    }
