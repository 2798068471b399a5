"""The campaign report (treatment against control, uplift, cost) and the backtest, over the lake.

Both read the lake through the reports' `ReportQueries` port (DuckDB locally, Athena on AWS) with
the SQL of loyalty.services.campaign_report_sql; the statistics are loyalty.domain.uplift's.

- `report`: the campaign's receipts (the `campaign_actions` kind), each customer once in the
  group of their first receipt, and their sales in the `window_days` after it.
- `backtest`: who the campaign's segment held at a past `as_of` (its rule evaluated over the
  change rows written up to then), split by the campaign's control hash, and how they bought in
  the `window_days` after it. A birthday or inactivity campaign's derived segment
  (`campaign-trigger-<id>`) is its audience when it exists; a campaign without a segment reaches
  every live customer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from loyalty.domain.campaigns import Campaign
from loyalty.domain.errors import ValidationFailed
from loyalty.domain.programme import Programme
from loyalty.domain.segments import Node, parse_rule
from loyalty.domain.uplift import Estimate, Group, Uplift, money, ratio, uplift
from loyalty.services import campaign_report_sql, report_sql, segment_sql
from loyalty.services.campaign_ports import CampaignCatalogue
from loyalty.services.ports import Clock
from loyalty.services.reports import ReportQueries, _timestamp

MAX_WINDOW_DAYS = 365
CHANNELS = campaign_report_sql.CHANNELS


class SegmentRules(Protocol):
    def rule(self, segment_id: str) -> Any | None:
        """The saved segment's rule as JSON, None when there is no such segment."""
        ...


def derived_segment_id(campaign_id: str) -> str:
    """The segment a birthday or inactivity campaign keeps for its trigger (loyalty.services.campaigns)."""
    return f"campaign-trigger-{campaign_id}"


@dataclass(frozen=True)
class GroupFigures:
    customers: int
    converted: int
    conversion_rate: Decimal | None
    revenue: Decimal
    revenue_per_customer: Decimal | None

    @classmethod
    def of(cls, group: Group) -> GroupFigures:
        per_customer = (group.revenue / group.customers) if group.customers else None
        return cls(
            customers=group.customers,
            converted=group.converted,
            conversion_rate=ratio(group.conversion_rate),
            revenue=money(group.revenue) or Decimal("0.00"),
            revenue_per_customer=money(per_customer),
        )


@dataclass(frozen=True)
class CampaignCost:
    points: int
    amount: Decimal
    coupons_issued: int
    coupons_redeemed: int
    messages: dict[str, int]


@dataclass(frozen=True)
class CampaignReport:
    campaign_id: str
    window_days: int
    treatment: GroupFigures
    control: GroupFigures
    uplift: Uplift
    cost: CampaignCost
    as_of: datetime | None

    CSV_COLUMNS = ("group", "customers", "converted", "conversion_rate", "revenue", "revenue_per_customer")

    def csv_rows(self) -> list[dict[str, Any]]:
        """One line per group (the CSV download)."""
        return [
            {"group": name, **vars(figures)}
            for name, figures in (("treatment", self.treatment), ("control", self.control))
        ]


@dataclass(frozen=True)
class Backtest:
    campaign_id: str
    segment_id: str | None
    as_of: datetime
    window_days: int
    audience: int
    treatment: GroupFigures
    control: GroupFigures
    lake_as_of: datetime | None

    CSV_COLUMNS = ("group", "customers", "converted", "conversion_rate", "revenue", "revenue_per_customer")

    def csv_rows(self) -> list[dict[str, Any]]:
        return [
            {"group": name, **vars(figures)}
            for name, figures in (("treatment", self.treatment), ("control", self.control))
        ]


def rounded(estimate: Estimate) -> dict[str, Any]:
    return {
        "value": ratio(estimate.value),
        "ci_low": ratio(estimate.ci_low),
        "ci_high": ratio(estimate.ci_high),
        "reason": estimate.reason,
    }


def rounded_money(estimate: Estimate) -> dict[str, Any]:
    return {
        "value": money(estimate.value),
        "ci_low": money(estimate.ci_low),
        "ci_high": money(estimate.ci_high),
        "reason": estimate.reason,
    }


def _int(value: Any) -> int:
    return int(value) if value not in (None, "") else 0


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal("0")


def _group(row: dict[str, Any] | None) -> Group:
    if row is None:
        return Group(0, 0)
    return Group(
        _int(row["customers"]), _int(row["converted"]), _dec(row["revenue"]), _dec(row["revenue_squares"])
    )


def check_window(window_days: int, loc: tuple[str, ...]) -> None:
    if not 1 <= window_days <= MAX_WINDOW_DAYS:
        raise ValidationFailed.at(loc, f"window_days lies between 1 and {MAX_WINDOW_DAYS}")


@dataclass
class CampaignReports:
    queries: ReportQueries
    campaigns: CampaignCatalogue
    segments: SegmentRules
    programme: Callable[[], Programme]
    clock: Clock

    def _as_of(self, start: date | None, manifest: Any) -> datetime | None:
        rows = self.queries.run(report_sql.as_of(start, manifest))
        return _timestamp(rows[0]["as_of"]) if rows else None

    def report(self, campaign_id: str, window_days: int) -> CampaignReport:
        check_window(window_days, ("query", "window_days"))
        campaign = self.campaigns.get(campaign_id)  # CampaignNotFound: 404
        manifest = self.queries.manifest()
        since = campaign.created_at.astimezone(UTC).date()
        statement = campaign_report_sql.report(campaign.campaign_id, window_days, since, manifest)
        rows = self.queries.run(segment_sql.render(statement, self.queries.dialect))
        groups = {r["outcome"]: r for r in rows if r["row_kind"] == "group"}
        cost_row = next((r for r in rows if r["row_kind"] == "cost"), {})
        treatment, control = _group(groups.get("actioned")), _group(groups.get("control"))
        cost = CampaignCost(
            points=_int(cost_row.get("points")),
            amount=money(_dec(cost_row.get("amount"))) or Decimal("0.00"),
            coupons_issued=_int(cost_row.get("coupons_issued")),
            coupons_redeemed=_int(cost_row.get("coupons_redeemed")),
            messages={ch: _int(cost_row.get(f"messages_{ch}")) for ch in CHANNELS},
        )
        return CampaignReport(
            campaign_id=campaign.campaign_id,
            window_days=window_days,
            treatment=GroupFigures.of(treatment),
            control=GroupFigures.of(control),
            uplift=uplift(treatment, control),
            cost=cost,
            as_of=self._as_of(since, manifest),
        )

    def audience_rule(self, campaign: Campaign) -> tuple[str | None, Node | None]:
        """The segment a backtest evaluates, and its rule (None: every live customer)."""
        candidates = []
        if campaign.trigger.type in ("birthday", "inactivity"):
            candidates.append(derived_segment_id(campaign.campaign_id))
        if campaign.audience.segment_id:
            candidates.append(campaign.audience.segment_id)
        for segment_id in candidates:
            raw = self.segments.rule(segment_id)
            if raw is not None:
                return segment_id, parse_rule(raw)
        if campaign.audience.segment_id:  # named, but gone since
            raise ValidationFailed.at(
                ("body", "audience", "segment_id"),
                f"the campaign's segment {campaign.audience.segment_id!r} no longer exists",
            )
        return None, None

    def backtest(self, campaign_id: str, as_of: datetime, window_days: int) -> Backtest:
        check_window(window_days, ("body", "window_days"))
        now = self.clock.now()
        as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        if as_of > now:
            raise ValidationFailed.at(("body", "as_of"), "as_of must lie in the past")
        if as_of + timedelta(days=window_days) > now:
            raise ValidationFailed.at(
                ("body", "window_days"),
                f"the window after as_of must have passed: at most {(now - as_of).days} days from this as_of",
            )
        campaign = self.campaigns.get(campaign_id)
        segment_id, rule = self.audience_rule(campaign)
        manifest = self.queries.manifest()
        statement = campaign_report_sql.backtest(
            rule,
            as_of,
            window_days,
            self.programme(),
            campaign_id=campaign.campaign_id,
            control_percent=campaign.control_group.percent,
            members_only=campaign.audience.members_only,
            manifest=manifest,
        )
        rows = {r["grp"]: r for r in self.queries.run(segment_sql.render(statement, self.queries.dialect))}
        treatment, control = _group(rows.get("treatment")), _group(rows.get("control"))
        return Backtest(
            campaign_id=campaign.campaign_id,
            segment_id=segment_id,
            as_of=as_of,
            window_days=window_days,
            audience=treatment.customers + control.customers,
            treatment=GroupFigures.of(treatment),
            control=GroupFigures.of(control),
            lake_as_of=self._as_of(as_of.date(), manifest),
        )
