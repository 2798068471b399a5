"""Routes of the reports over the data lake (served by the reports function)."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import Router

from loyalty.api import docs
from loyalty.api.http import ok
from loyalty.api.models.reports import (
    ActivityReport,
    ActivityRow,
    CohortReport,
    CohortRow,
    GroupRow,
    MembersReport,
)
from loyalty.api.routers import campaign_reports, segment_preview
from loyalty.bootstrap import container
from loyalty.services.reports import Report

TAGS = ["reports"]
Format = Annotated[Literal["json", "csv"], Query(description="csv: the same rows as text/csv")]
From = Annotated[date, Query(alias="from", description="First day (UTC), inclusive")]
To = Annotated[date, Query(description="Last day (UTC), inclusive; at most two years after from")]
CSV_RESPONSE = {
    "description": "the rows as CSV (format=csv)",
    "content": {"text/csv": {"schema": {"type": "string"}}},
}


def json_or_csv(model: Any, description: str) -> OpenAPIResponse:
    """The report as JSON, or with format=csv the same rows as text/csv."""
    return {
        "description": description,
        "content": {
            "application/json": {"model": model},
            "text/csv": {"schema": {"type": "string", "description": "a header row, then one line per row"}},
        },
    }


def as_csv(report: Report) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(report.columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(report.rows)
    as_of = report.as_of.isoformat() if report.as_of else ""
    return Response(200, "text/csv", out.getvalue(), headers={"X-As-Of": as_of})


def make_router() -> Router:
    """A fresh router: one per handler instance, because powertools keeps request state on it."""
    router = Router()

    @router.get(
        "/v1/admin/reports/activity",
        summary="Activity by day, week or month and by store or channel",
        tags=TAGS,
        responses={200: json_or_csv(ActivityReport, "the report"), 422: docs.PROBLEM},
    )
    def activity(
        start: From,
        to: To,
        interval: Annotated[Literal["day", "week", "month"], Query()] = "day",
        by: Annotated[Literal["store", "channel"], Query()] = "store",
        format: Format = "json",
    ):
        report = container().reports.activity(start, to, interval, by)
        if format == "csv":
            return as_csv(report)
        rows = [ActivityRow.model_validate(r) for r in report.rows]
        return ok(ActivityReport(as_of=report.as_of, interval=interval, by=by, rows=rows))

    @router.get(
        "/v1/admin/reports/members-vs-non-members",
        summary="Members, identified non-members and anonymous sales compared",
        tags=TAGS,
        responses={200: json_or_csv(MembersReport, "the report"), 422: docs.PROBLEM},
    )
    def members_vs_non_members(start: From, to: To, format: Format = "json"):
        report = container().reports.members_vs_non_members(start, to)
        if format == "csv":
            return as_csv(report)
        return ok(MembersReport(as_of=report.as_of, rows=[GroupRow.model_validate(r) for r in report.rows]))

    @router.get(
        "/v1/admin/reports/cohorts",
        summary="Retention of members by enrolment month",
        tags=TAGS,
        responses={200: json_or_csv(CohortReport, "the report"), 422: docs.PROBLEM},
    )
    def cohorts(
        by: Annotated[Literal["enrolment_month"], Query()] = "enrolment_month",
        format: Format = "json",
    ):
        report = container().reports.cohorts()
        if format == "csv":
            return as_csv(report)
        return ok(
            CohortReport(as_of=report.as_of, by=by, rows=[CohortRow.model_validate(r) for r in report.rows])
        )

    segment_preview.add_routes(router)  # it reads the lake too
    campaign_reports.add_routes(router)  # and so do the campaign report and the backtest
    return router
