"""The campaign report and the backtest (served by the reports function: they read the lake)."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import Router

from loyalty.api import docs
from loyalty.api.http import ok
from loyalty.api.models.campaign_reports import BacktestIn, BacktestOut, CampaignReportOut
from loyalty.api.models.common import PathId
from loyalty.bootstrap import container
from loyalty.services.campaign_reports import MAX_WINDOW_DAYS
from loyalty.services.reports import Report

Format = Annotated[Literal["json", "csv"], Query(description="csv: one line per group, as text/csv")]
WindowDays = Annotated[
    int, Query(ge=1, le=MAX_WINDOW_DAYS, description="Days after each customer's receipt a purchase counts")
]


def add_routes(router: Router) -> None:
    from loyalty.api.routers.reports import as_csv, json_or_csv

    @router.get(
        "/v1/admin/reports/campaigns/<campaign_id>",
        summary="A campaign's treatment against its control group: conversion, uplift, cost",
        tags=["reports"],
        responses={
            200: json_or_csv(CampaignReportOut, "the report"),
            404: docs.PROBLEM,
            422: docs.PROBLEM,
        },
    )
    def campaign_report(campaign_id: PathId, window_days: WindowDays = 30, format: Format = "json"):
        report = container().campaign_reports.report(campaign_id, window_days)
        if format == "csv":
            return as_csv(Report(report.as_of, report.CSV_COLUMNS, report.csv_rows()))
        return ok(CampaignReportOut.of(report))

    @router.post(
        "/v1/admin/campaigns/<campaign_id>/backtest",
        summary="The campaign as of a past date over the lake: who it would have reached, how they bought",
        tags=["campaigns"],
        responses={200: json_or_csv(BacktestOut, "the backtest"), 404: docs.PROBLEM, 422: docs.PROBLEM},
    )
    def backtest_campaign(campaign_id: PathId, body: BacktestIn, format: Format = "json"):
        done = container().campaign_reports.backtest(campaign_id, body.as_of, body.window_days)
        if format == "csv":
            return as_csv(Report(done.lake_as_of, done.CSV_COLUMNS, done.csv_rows()))
        return ok(BacktestOut.of(done))
