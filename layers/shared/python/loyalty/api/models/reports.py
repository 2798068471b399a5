"""API models: reports over the data lake."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from loyalty.domain.models import Model

AS_OF = "The newest change to the platform's records that the answer includes (UTC); null on an empty lake"


class ActivityRow(Model):
    period: str = Field(description="The period's first day (YYYY-MM-DD)")
    store: str | None = Field(default=None, description="With by=store")
    channel: str | None = Field(default=None, description="With by=channel")
    transactions: int = Field(description="Sales")
    revenue: Decimal = Field(description="Sales less returns that occurred in the period")
    customers: int = Field(description="Distinct identified customers who bought")
    members: int
    non_members: int
    anonymous: int = Field(description="Sales without a customer")
    new_members: int = Field(description="Customers who enrolled in the period (by their enrolment store)")
    points_earned: int
    points_redeemed: int


class ActivityReport(Model):
    as_of: datetime | None = Field(description=AS_OF)
    interval: Literal["day", "week", "month"]
    by: Literal["store", "channel"]
    rows: list[ActivityRow]


class GroupRow(Model):
    group: Literal["members", "non_members", "anonymous"]
    transactions: int
    revenue: Decimal
    customers: int
    average_basket: Decimal | None
    purchases_per_customer: Decimal | None
    share_of_revenue: Decimal | None


class MembersReport(Model):
    as_of: datetime | None = Field(description=AS_OF)
    rows: list[GroupRow]


class CohortRow(Model):
    cohort: str = Field(description="The enrolment month (YYYY-MM)")
    cohort_size: int
    month_offset: int | None = Field(description="Months after the enrolment month (0: that month)")
    active: int = Field(description="Members of the cohort who bought in that month")
    retention: Decimal | None = Field(description="active / cohort_size")


class CohortReport(Model):
    as_of: datetime | None = Field(description=AS_OF)
    by: Literal["enrolment_month"]
    rows: list[CohortRow]
