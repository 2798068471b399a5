"""API models: identity merges, export and erasure."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import Field

from loyalty.api.models.common import Strict
from loyalty.api.models.customers import CustomerView
from loyalty.domain.models import Model

if TYPE_CHECKING:
    from loyalty.domain.merges import MergeRecord


class MergeCreate(Strict):
    survivor_id: str = Field(min_length=1, max_length=64, description="the profile that stays")
    merged_id: str = Field(
        min_length=1, max_length=64, description="the profile that joins it and becomes a tombstone"
    )
    reason: str | None = Field(default=None, max_length=500)


class MergeAccepted(Model):
    merge_id: str
    status: str
    survivor_id: str
    merged_id: str

    @classmethod
    def of(cls, r: MergeRecord) -> MergeAccepted:
        return cls(
            merge_id=r.merge_id,
            status=r.status.value,
            survivor_id=r.survivor_id or r.requested_survivor_id,
            merged_id=r.merged_id,
        )


class UndoView(Model):
    requested_at: datetime | None = None
    finished_at: datetime | None = None
    returned: dict[str, int] = Field(
        default_factory=dict, description="what went back to the restored profile"
    )
    stayed: dict[str, Any] = Field(
        default_factory=dict,
        description="what stayed with the survivor: links moved or detached since, points spent or expired "
        "from the returned lots while merged, records created after the merge",
    )
    refused: str | None = None


class MergeView(Model):
    merge_id: str
    status: str = Field(description="queued, running, done, failed, undo_queued, undoing or undone")
    survivor_id: str = Field(description="the live profile the merge ran into")
    requested_survivor_id: str
    merged_id: str
    reason: str | None
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    moved: dict[str, int] = Field(description="what moved to the survivor, by kind of record")
    error: str | None
    undo: UndoView | None

    @classmethod
    def of(cls, r: MergeRecord) -> MergeView:
        undo = None
        if r.undo:
            u = r.undo
            undo = UndoView(
                requested_at=u.get("requested_at"),
                finished_at=u.get("finished_at"),
                returned=dict(u.get("returned") or {}),  # type: ignore[call-overload]
                stayed=dict(u.get("stayed") or {}),  # type: ignore[call-overload]
                refused=u.get("refused"),
            )
        return cls(
            merge_id=r.merge_id,
            status=r.status.value,
            survivor_id=r.survivor_id or r.requested_survivor_id,
            requested_survivor_id=r.requested_survivor_id,
            merged_id=r.merged_id,
            reason=r.reason,
            requested_at=r.requested_at,
            started_at=r.started_at,
            finished_at=r.finished_at,
            moved=dict(r.counts or {}),
            error=r.error,
            undo=undo,
        )


class CustomerExport(Model):
    """Everything held on one person (GDPR Art. 15 and 20)."""

    exported_at: datetime
    customer: CustomerView
    transactions: list[dict[str, Any]]
    ledger: list[dict[str, Any]]
    coupons: list[dict[str, Any]]
    redemptions: list[dict[str, Any]]
    accounts: list[dict[str, Any]]
    holds: list[dict[str, Any]]
    offer_uses: list[dict[str, Any]]
    merges: list[dict[str, Any]]
    timeline: list[dict[str, Any]] = Field(
        default_factory=list,
        description="the person's timeline, newest first (items as the timeline shows them)",
    )
