"""API models: a campaign's runs and its dry run."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field

from loyalty.domain.campaign_runs import RunCounts
from loyalty.domain.models import Model
from loyalty.domain.values import MoneySchema, MoneyText
from loyalty.services.campaign_run_control import DryRun, RunView

Amount = Annotated[Decimal, MoneyText, MoneySchema]


class RunCountsOut(Model):
    audience: int = Field(description="the segment's members when the run started (0 until exported)")
    control: int = Field(description="held out: given nothing, remembered for the report")
    actioned: int
    skipped: dict[str, int] = Field(description="by reason; every reason present, 0 when none")
    failed: int = Field(description="customers of batches whose every attempt failed (a retry redoes them)")

    @classmethod
    def of(cls, counts: RunCounts) -> RunCountsOut:
        return cls.model_validate(counts.as_dict())


class RunOut(Model):
    campaign_id: str
    run_id: str
    status: str = Field(description="running | succeeded | failed | cancelled")
    trigger: str = Field(description="manual | schedule (who started the run)")
    attempt: int = Field(description="1, +1 on every retry (each attempt is one execution)")
    counts: RunCountsOut = Field(description="summed from the batches while the run runs; final once ended")
    started_at: datetime = Field(description="when the current attempt started")
    finished_at: datetime | None
    error: str | None = Field(description="what failed, for a failed run")

    @classmethod
    def of(cls, view: RunView) -> RunOut:
        run = view.run
        return cls(
            campaign_id=run.campaign_id,
            run_id=run.run_id,
            status=run.status,
            trigger=run.trigger,
            attempt=run.attempt,
            counts=RunCountsOut.of(view.counts),
            started_at=datetime.fromisoformat(run.started_at),
            finished_at=datetime.fromisoformat(run.finished_at) if run.finished_at else None,
            error=run.error,
        )


class RunList(Model):
    items: list[RunOut]
    next_cursor: str | None


class CostOut(Model):
    points: int
    amount: Amount = Field(description="promotional cash, in the programme's currency")
    coupons: int
    messages: dict[str, int] = Field(description="by channel: email, sms, mail, api")


class SampleOut(Model):
    customer_id: str
    outcome: str = Field(description="actioned | control | skipped")
    reason: str | None


class DryRunOut(Model):
    audience: int = Field(description="the segment's members now")
    control: int
    eligible: int = Field(description="would be actioned")
    excluded: dict[str, int] = Field(description="by reason; every reason present, 0 when none")
    cost: CostOut = Field(description="of the eligible customers' actions")
    sample: list[SampleOut] = Field(description="the first 20 customers and what they would come to")

    @classmethod
    def of(cls, dry: DryRun) -> DryRunOut:
        sample: list[dict[str, Any]] = [
            {"customer_id": r.customer_id, "outcome": r.outcome, "reason": r.reason} for r in dry.sample
        ]
        return cls(
            audience=dry.audience,
            control=dry.control,
            eligible=dry.eligible,
            excluded=dry.excluded,
            cost=CostOut(
                points=dry.cost.points,
                amount=dry.cost.amount.quantize(Decimal("0.01")),
                coupons=dry.cost.coupons,
                messages=dict(dry.cost.messages),
            ),
            sample=[SampleOut.model_validate(s) for s in sample],
        )
