"""Marketers' saved segments: served by the offers function, with the offers and challenges whose
audiences name them (the delete's in-use check reads those documents, and the function is warm for
marketers' tools anyway). Issue 20 opens these routes to a marketer key kind."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import Router

from loyalty.api import docs
from loyalty.api.http import cursor_in, cursor_out, idempotency, no_content, ok, page, reply, stored
from loyalty.api.models.common import PathId
from loyalty.api.models.segments import (
    SegmentList,
    SegmentMemberList,
    SegmentMemberOut,
    SegmentOut,
    SegmentPut,
)
from loyalty.bootstrap import container
from loyalty.domain.segment_definitions import SegmentId
from loyalty.domain.segments import dump_rule

if TYPE_CHECKING:
    from loyalty.domain.replay import StoredResponse

TAGS = ["segments"]
Limit = Annotated[int | None, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=2048)]


def _saved(result: Any) -> StoredResponse:
    view, created = result
    return stored(SegmentOut.of(view), 201 if created else 200)


def add_routes(router: Router) -> None:
    @router.put(
        "/v1/admin/segments/<segment_id>",
        summary="Create or replace a segment (a new or changed rule is evaluated for every customer "
        "in the background; see `evaluation`)",
        tags=TAGS,
        responses={
            201: docs.model(SegmentOut, "created"),
            200: docs.model(SegmentOut, "replaced"),
            409: docs.PROBLEM,
            422: docs.PROBLEM,
        },
    )
    def put_segment(segment_id: SegmentId, body: SegmentPut):
        result = container().segments.put(
            segment_id,
            name=body.name,
            description=body.description,
            rule=dump_rule(body.rule),  # checked by the model already; stored as contract JSON
            idempotency=idempotency(router, _saved),
        )
        return reply(_saved(result))

    @router.get("/v1/admin/segments", summary="List segments, each with its size", tags=TAGS)
    def list_segments(limit: Limit = None, cursor: Cursor = None) -> SegmentList:
        views, next_cursor = container().segments.list_segments(page(limit), cursor_in(router, cursor))
        return SegmentList(
            items=[SegmentOut.of(v) for v in views], next_cursor=cursor_out(router, next_cursor)
        )

    @router.get(
        "/v1/admin/segments/<segment_id>",
        summary="A segment, with its size and the progress of its background evaluation",
        tags=TAGS,
        responses={200: docs.model(SegmentOut, "the segment"), 404: docs.PROBLEM},
    )
    def get_segment(segment_id: PathId):
        return ok(SegmentOut.of(container().segments.get(segment_id)))

    @router.delete(
        "/v1/admin/segments/<segment_id>",
        summary="Delete a segment (409 naming the offers, challenges and campaigns that still use it)",
        tags=TAGS,
        responses={204: docs.empty("deleted"), 404: docs.PROBLEM, 409: docs.PROBLEM},
    )
    def delete_segment(segment_id: PathId):
        container().segments.delete(segment_id)
        return no_content()

    @router.get(
        "/v1/admin/segments/<segment_id>/customers",
        summary="The segment's members, in customer_id order",
        tags=TAGS,
        responses={200: docs.model(SegmentMemberList, "a page of members"), 404: docs.PROBLEM},
    )
    def segment_customers(segment_id: PathId, limit: Limit = None, cursor: Cursor = None):
        members, after = container().segments.members(segment_id, cursor_in(router, cursor), page(limit))
        return ok(
            SegmentMemberList(
                items=[
                    SegmentMemberOut(customer_id=m.customer_id, member=m.member, entered_at=m.entered_at)
                    for m in members
                ],
                next_cursor=cursor_out(router, after),
            )
        )
