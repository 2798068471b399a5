"""A campaign's runs and its dry run (served by the campaigns function, with the definitions)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import Router

from loyalty.api import docs
from loyalty.api.http import cursor_in, cursor_out, idempotency, ok, page, reply, stored
from loyalty.api.models.campaign_runs import DryRunOut, RunList, RunOut
from loyalty.api.models.common import PathId
from loyalty.bootstrap import container

if TYPE_CHECKING:
    from loyalty.domain.replay import StoredResponse
    from loyalty.services.campaign_run_control import RunView

TAGS = ["campaigns"]
Limit = Annotated[int | None, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=2048)]


def _started(view: RunView) -> StoredResponse:
    return stored(RunOut.of(view), 202)


def add_routes(router: Router) -> None:
    @router.post(
        "/v1/admin/campaigns/<campaign_id>/runs",
        summary="Start a run of a manual or scheduled campaign now (a Step Functions execution)",
        tags=TAGS,
        responses={
            202: docs.model(RunOut, "started: status running"),
            404: docs.PROBLEM,
            409: docs.PROBLEM,
        },
    )
    def start_run(campaign_id: PathId):
        started = container().campaign_run_control.start(
            campaign_id, idempotency=idempotency(router, _started)
        )
        return reply(_started(started))

    @router.get(
        "/v1/admin/campaigns/<campaign_id>/runs",
        summary="The campaign's runs, newest first, each with its counts",
        tags=TAGS,
        responses={200: docs.model(RunList, "a page of runs"), 404: docs.PROBLEM},
    )
    def list_runs(campaign_id: PathId, limit: Limit = None, cursor: Cursor = None):
        views, next_cursor = container().campaign_run_control.list(
            campaign_id, page(limit), cursor_in(router, cursor)
        )
        return ok(RunList(items=[RunOut.of(v) for v in views], next_cursor=cursor_out(router, next_cursor)))

    @router.get(
        "/v1/admin/campaigns/<campaign_id>/runs/<run_id>",
        summary="A run: its status and counts (summed from its batches while it runs)",
        tags=TAGS,
        responses={200: docs.model(RunOut, "the run"), 404: docs.PROBLEM},
    )
    def get_run(campaign_id: PathId, run_id: PathId):
        return ok(RunOut.of(container().campaign_run_control.get(campaign_id, run_id)))

    @router.post(
        "/v1/admin/campaigns/<campaign_id>/runs/<run_id>/cancel",
        summary="Cancel a running run (its execution is stopped; what it gave stays given)",
        tags=TAGS,
        responses={200: docs.model(RunOut, "cancelled"), 404: docs.PROBLEM, 409: docs.PROBLEM},
    )
    def cancel_run(campaign_id: PathId, run_id: PathId):
        return ok(RunOut.of(container().campaign_run_control.cancel(campaign_id, run_id)))

    @router.post(
        "/v1/admin/campaigns/<campaign_id>/runs/<run_id>/retry",
        summary="Retry a failed or cancelled run: a new execution under the same run id, nobody "
        "given anything twice",
        tags=TAGS,
        responses={
            202: docs.model(RunOut, "retrying: status running"),
            404: docs.PROBLEM,
            409: docs.PROBLEM,
        },
    )
    def retry_run(campaign_id: PathId, run_id: PathId):
        return ok(RunOut.of(container().campaign_run_control.retry(campaign_id, run_id)), 202)

    @router.post(
        "/v1/admin/campaigns/<campaign_id>/dry-run",
        summary="What a run would do now: audience, control, eligible, exclusions by reason, cost, "
        "a sample; nothing is written",
        tags=TAGS,
        responses={200: docs.model(DryRunOut, "the dry run"), 404: docs.PROBLEM, 409: docs.PROBLEM},
    )
    def dry_run(campaign_id: PathId):
        return ok(DryRunOut.of(container().campaign_run_control.dry_run(campaign_id)))
