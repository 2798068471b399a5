"""The timeline index: how any record joins a person's timeline (sparse gsi3).

An item that belongs on a timeline carries three attributes besides its own:

    tlpk  CUST#<customer_id> | ANON#<anonymous_id>        whose timeline
    tlsk  <occurred_at, codec.to_iso>#<kind>#<record id>  newest first by when it happened
    tl    {at, kind, type, summary, ref, data}             the timeline item exactly as the API shows it

gsi3 projects only `tl` (INCLUDE), so the first page of a timeline is one Query and the index holds
no more than it shows. The attributes are written in the same write that creates the record, so a
record is on the timeline exactly when it exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from loyalty.adapters.codec import customer_pk, storable, to_iso
from loyalty.domain.timeline import (
    BADGE,
    CHALLENGE,
    COUPON,
    EVENT,
    KINDS,
    MERGE,
    MESSAGE,
    POINTS,
    REDEMPTION,
    TIER,
    TRANSACTION,
)

__all__ = [
    "BADGE",
    "CHALLENGE",
    "COUPON",
    "EVENT",
    "INDEX",
    "KINDS",
    "MERGE",
    "MESSAGE",
    "POINTS",
    "REDEMPTION",
    "TIER",
    "TIMELINE_ATTRIBUTES",
    "TRANSACTION",
    "anonymous_owner",
    "customer_owner",
    "timeline_fields",
]

INDEX = "gsi3"
TIMELINE_ATTRIBUTES = ("tlpk", "tlsk", "tl")


def customer_owner(customer_id: str) -> str:
    return customer_pk(customer_id)


def anonymous_owner(anonymous_id: str) -> str:
    return f"ANON#{anonymous_id}"


def timeline_fields(
    owner_pk: str,
    at: datetime | str,
    kind: str,
    type_: str,
    summary: str,
    ref: Mapping[str, Any],
    data: Mapping[str, Any],
    *,
    record_id: str | None = None,
) -> dict[str, Any]:
    """The three timeline attributes of one record, to merge into the item being written.

    `record_id` makes the sort key unique among records of one kind at one instant; by default it
    is the ref's values in key order (a transaction's id, an event's store and id, ...), which is
    unique wherever the ref names the record itself.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown timeline kind {kind!r}")
    when = at if isinstance(at, str) else to_iso(at)
    if not when:
        raise ValueError("a timeline record needs the time it happened")
    unique = record_id if record_id is not None else "#".join(str(ref[k]) for k in sorted(ref))
    return {
        "tlpk": owner_pk,
        "tlsk": f"{when}#{kind}#{unique}",
        "tl": {
            "at": when,
            "kind": kind,
            "type": type_,
            "summary": summary,
            "ref": storable(dict(ref)),
            "data": storable(dict(data)),
        },
    }
