"""API models: the campaign report (treatment against control) and the backtest."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from loyalty.api.models.reports import AS_OF
from loyalty.domain.models import Model
from loyalty.domain.values import Timestamp
from loyalty.services.campaign_reports import (
    MAX_WINDOW_DAYS,
    Backtest,
    CampaignReport,
    GroupFigures,
    rounded,
    rounded_money,
)

Reason = Literal["no_treatment", "no_control", "no_control_conversions", "too_few_customers"]


class GroupOut(Model):
    customers: int = Field(description="Customers in the group (each once, from their first receipt)")
    converted: int = Field(description="Of them, those who bought within window_days after it")
    conversion_rate: Decimal | None = Field(description="converted / customers (null: no customer)")
    revenue: Decimal = Field(description="What they bought in their windows, net of returns")
    revenue_per_customer: Decimal | None = Field(description="revenue / customers")

    @classmethod
    def of(cls, figures: GroupFigures) -> GroupOut:
        return cls.model_validate(vars(figures))


class EstimateOut(Model):
    value: Decimal | None
    ci_low: Decimal | None = Field(description="The 95% confidence interval's lower end")
    ci_high: Decimal | None = Field(description="The 95% confidence interval's upper end")
    reason: Reason | None = Field(default=None, description="Why the figure is null (or has no interval)")


class UpliftOut(Model):
    absolute: EstimateOut = Field(
        description="Treatment's conversion rate minus control's (Newcombe's hybrid score interval)"
    )
    relative: EstimateOut = Field(description="Treatment's rate over control's, minus one (log risk ratio)")
    revenue_per_customer: EstimateOut = Field(description="Treatment's minus control's (Welch's interval)")


class CouponsOut(Model):
    issued: int
    redeemed: int


class MessagesOut(Model):
    email: int
    sms: int
    mail: int
    api: int


class CostOut(Model):
    points: int = Field(description="Points given to the treatment group")
    amount: Decimal = Field(description="Promotional cash given")
    coupons: CouponsOut
    messages: MessagesOut = Field(description="Messages queued, by channel")


class CampaignReportOut(Model):
    campaign_id: str
    window_days: int
    treatment: GroupOut = Field(description="The customers actioned")
    control: GroupOut = Field(description="The customers held out")
    uplift: UpliftOut
    cost: CostOut
    as_of: datetime | None = Field(description=AS_OF)

    @classmethod
    def of(cls, report: CampaignReport) -> CampaignReportOut:
        cost = report.cost
        return cls(
            campaign_id=report.campaign_id,
            window_days=report.window_days,
            treatment=GroupOut.of(report.treatment),
            control=GroupOut.of(report.control),
            uplift=UpliftOut(
                absolute=EstimateOut.model_validate(rounded(report.uplift.absolute)),
                relative=EstimateOut.model_validate(rounded(report.uplift.relative)),
                revenue_per_customer=EstimateOut.model_validate(
                    rounded_money(report.uplift.revenue_per_customer)
                ),
            ),
            cost=CostOut(
                points=cost.points,
                amount=cost.amount,
                coupons=CouponsOut(issued=cost.coupons_issued, redeemed=cost.coupons_redeemed),
                messages=MessagesOut.model_validate(cost.messages),
            ),
            as_of=report.as_of,
        )


class BacktestIn(Model):
    as_of: Timestamp = Field(description="The past instant the campaign is evaluated at")
    window_days: int = Field(default=30, ge=1, le=MAX_WINDOW_DAYS, description="Days of buying after as_of")


class BacktestOut(Model):
    campaign_id: str
    segment_id: str | None = Field(description="The segment evaluated (null: every live customer)")
    as_of: datetime
    window_days: int
    audience: int = Field(description="Live customers the segment held at as_of (members only if so defined)")
    treatment: GroupOut = Field(description="Those the control hash would have actioned")
    control: GroupOut = Field(description="Those it would have held out")
    lake_as_of: datetime | None = Field(description=AS_OF)

    @classmethod
    def of(cls, backtest: Backtest) -> BacktestOut:
        return cls(
            campaign_id=backtest.campaign_id,
            segment_id=backtest.segment_id,
            as_of=backtest.as_of,
            window_days=backtest.window_days,
            audience=backtest.audience,
            treatment=GroupOut.of(backtest.treatment),
            control=GroupOut.of(backtest.control),
            lake_as_of=backtest.lake_as_of,
        )
