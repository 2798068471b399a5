"""API models: a person's timeline."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Kind = Literal[
    "transaction",
    "event",
    "points",
    "redemption",
    "tier",
    "coupon",
    "message",
    "badge",
    "challenge",
    "merge",
    "campaign",
]


class TimelineItem(BaseModel):
    at: str = Field(
        description="when it happened (occurred_at), RFC 3339 UTC", examples=["2026-03-01T09:30:00Z"]
    )
    kind: Kind
    type: str = Field(description="what within the kind: sale, return, earn, expire, site_visit, up, ...")
    summary: str
    ref: dict[str, Any] = Field(description="the ids of the record(s) it is about")
    data: dict[str, Any] = Field(
        description="a few figures of the record (points, total, balance_after, ...)"
    )


class TimelinePage(BaseModel):
    items: list[TimelineItem]
    next_cursor: str | None
