"""The preview of an unsaved segment rule (served by the reports function: it reads the lake)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import Router

from loyalty.api import docs
from loyalty.api.http import ok
from loyalty.api.models.segment_preview import SegmentPreviewIn, SegmentPreviewOut
from loyalty.bootstrap import container


def add_routes(router: Router) -> None:
    @router.post(
        "/v1/admin/segments/preview",
        summary="Exact counts, reachability and a sample for a rule, over every live customer",
        tags=["segments"],
        responses={200: docs.model(SegmentPreviewOut, "the counts"), 422: docs.PROBLEM},
    )
    def preview_segment(body: SegmentPreviewIn):
        return ok(SegmentPreviewOut.of(container().segment_preview.preview(body.rule)))
