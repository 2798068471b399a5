"""Entry point of the campaign-schedule function: a scheduled campaign's schedule fired.

EventBridge Scheduler invokes it (asynchronously) with the input the campaign's schedule carries
(loyalty.adapters.campaign_schedules)::

    {"campaign_id": "spring-sale", "scheduled_time": "2027-03-29T07:00:00Z"}

and it starts the campaign's run `sched-<scheduled time, compact>` (`sched-20270329T070000Z`): a
repeated delivery of the same occurrence names the same run, which starts nothing twice. A campaign
that is no longer an active schedule campaign (paused, ended, deleted since) starts nothing; that is
logged and answered, not raised, so Lambda does not retry it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol, cast

from aws_lambda_powertools.metrics import MetricUnit

from loyalty.bootstrap import container
from loyalty.domain.campaign_runs import InvalidTaskInput
from loyalty.domain.errors import CampaignNotFound, CampaignNotRunnable
from loyalty.observability import logger, metrics


class RunControl(Protocol):
    """Starts a campaign's run (loyalty.services.campaign_run_control, the composition root's
    `campaign_run_control`): CampaignNotFound, CampaignNotRunnable unless active manual/schedule."""

    def start(self, campaign_id: str, *, run_id: str, trigger: str) -> Any: ...


def _run_control() -> RunControl:
    return cast(RunControl, cast(Any, container()).campaign_run_control)


def scheduled_run_id(scheduled_time: str) -> str:
    """`sched-` and the occurrence's time in UTC, compact (`sched-20270329T070000Z`)."""
    try:
        moment = datetime.fromisoformat(scheduled_time.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidTaskInput(f"scheduled_time is not a time: {scheduled_time[:40]!r}") from None
    if moment.tzinfo is None:
        raise InvalidTaskInput("scheduled_time has no offset")
    return f"sched-{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def _input(event: dict[str, Any]) -> tuple[str, str]:
    campaign_id, scheduled_time = event.get("campaign_id"), event.get("scheduled_time")
    if not isinstance(campaign_id, str) or not campaign_id or not isinstance(scheduled_time, str):
        raise InvalidTaskInput('the input is {"campaign_id", "scheduled_time"}')
    return campaign_id, scheduled_time


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def start_scheduled_run(event: dict[str, Any], context: Any) -> dict[str, Any]:
    campaign_id, scheduled_time = _input(event)
    run_id = scheduled_run_id(scheduled_time)
    logger.append_keys(campaign_id=campaign_id, run_id=run_id)
    try:
        _run_control().start(campaign_id, run_id=run_id, trigger="schedule")
    except (CampaignNotFound, CampaignNotRunnable) as exc:
        logger.warning("scheduled run not started", extra={"reason": type(exc).__name__, "detail": str(exc)})
        return {"campaign_id": campaign_id, "run_id": run_id, "started": False, "reason": type(exc).__name__}
    metrics.add_metric(name="CampaignScheduledRuns", unit=MetricUnit.Count, value=1)
    return {"campaign_id": campaign_id, "run_id": run_id, "started": True}
