"""What makes a campaign definition sound, and what a saved one implies. No I/O.

The model (loyalty.domain.campaigns) checks each field on its own; `problems` checks the definition
as a whole against what it names — the segment, the offers, the templates — and against the clock:
each problem names its place in the request body, e.g. ("body", "actions", 2, "template_id").

A saved campaign implies, by its trigger and status:
- an EventBridge Scheduler schedule (`schedule_of`), while it is an active schedule campaign;
- a *derived* segment (`trigger_rule`), while it is an active birthday or inactivity campaign: the
  customers whose occasion has come (a birthday within `days_before`, a last purchase `days` ago),
  AND-ed with the audience segment's rule. Real-time segments enter a customer at the right
  moment, and that `SegmentEntered` drives the trigger (loyalty.services.campaign_triggers).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loyalty.domain import events as ev
from loyalty.domain.campaigns import (
    BirthdayTrigger,
    Campaign,
    CampaignDefinition,
    CampaignStatus,
    CouponAction,
    EventTrigger,
    InactivityTrigger,
    MessageAction,
    ScheduleTrigger,
    cost_of,
)
from loyalty.domain.cron import InvalidScheduleExpression, next_fire, zone_of
from loyalty.domain.errors import CampaignNotRunnable, FieldError
from loyalty.domain.templates import Cause, Template, misfit

# The derived segment of a birthday or inactivity campaign (a segment id: at most 64 characters).
TRIGGER_SEGMENT_PREFIX = "campaign-trigger-"
# The campaign's EventBridge Scheduler schedule (a name: at most 64 characters).
SCHEDULE_PREFIX = "campaign-"
# A name only a coupon action before the message gives a campaign template.
COUPON_NAME = "coupon"


@dataclass(frozen=True)
class Named:
    """What the definition names, as found: the ids that exist and the templates by id."""

    segments: Set[str]
    offers: Set[str]
    templates: Mapping[str, Template]


def named_segments(definition: CampaignDefinition) -> set[str]:
    """The segments a definition names: its audience's and an event trigger's `where.segment_id`."""
    found = {definition.audience.segment_id} if definition.audience.segment_id else set()
    trigger = definition.trigger
    if isinstance(trigger, EventTrigger) and trigger.event in (ev.SEGMENT_ENTERED, ev.SEGMENT_EXITED):
        segment_id = trigger.where.get("segment_id")
        if isinstance(segment_id, str):
            found.add(segment_id)
    return found


def problems(
    definition: CampaignDefinition, named: Named, *, now: datetime, previous: Campaign | None = None
) -> list[FieldError]:
    """Every reason the definition cannot be saved, each at its place in the body."""
    return [
        *_audience_problems(definition, named),
        *_trigger_problems(definition, named, now, previous),
        *_action_problems(definition, named),
        *_budget_problems(definition, named),
    ]


def _audience_problems(definition: CampaignDefinition, named: Named) -> list[FieldError]:
    segment_id = definition.audience.segment_id
    if segment_id is None:
        if definition.trigger.type in ("manual", "schedule"):
            return [
                FieldError(
                    ("body", "audience", "segment_id"),
                    f"a {definition.trigger.type} campaign runs over a segment: name one",
                )
            ]
        return []
    if segment_id not in named.segments:
        return [FieldError(("body", "audience", "segment_id"), f"no segment {segment_id!r}")]
    if segment_id.startswith(TRIGGER_SEGMENT_PREFIX):
        return [
            FieldError(
                ("body", "audience", "segment_id"),
                f"{segment_id!r} is another campaign's trigger segment, not an audience",
            )
        ]
    return []


def _trigger_problems(
    definition: CampaignDefinition, named: Named, now: datetime, previous: Campaign | None
) -> list[FieldError]:
    trigger = definition.trigger
    if isinstance(trigger, ScheduleTrigger):
        return _schedule_problems(trigger, now, previous)
    if isinstance(trigger, EventTrigger) and trigger.event in (ev.SEGMENT_ENTERED, ev.SEGMENT_EXITED):
        segment_id = trigger.where.get("segment_id")
        if segment_id is not None and (not isinstance(segment_id, str) or segment_id not in named.segments):
            return [FieldError(("body", "trigger", "where", "segment_id"), f"no segment {segment_id!r}")]
    return []


def _schedule_problems(
    trigger: ScheduleTrigger, now: datetime, previous: Campaign | None
) -> list[FieldError]:
    try:
        zone_of(trigger.timezone)
    except InvalidScheduleExpression as exc:
        return [FieldError(("body", "trigger", "timezone"), str(exc))]
    if trigger.cron is not None:
        problem = _cron_problem(trigger.cron, trigger.timezone, now)
        return [FieldError(("body", "trigger", "cron"), problem)] if problem else []
    assert trigger.at is not None
    unchanged = previous is not None and previous.trigger == trigger
    if trigger.at <= now and not unchanged:  # a one-time schedule that has fired stays as it was
        return [FieldError(("body", "trigger", "at"), "lies in the past")]
    return []


def _cron_problem(cron: str, timezone: str, now: datetime) -> str | None:
    if not cron.strip().startswith("cron("):
        return "write cron(minutes hours day-of-month month day-of-week year)"
    try:
        fires = next_fire(cron, timezone, now)
    except InvalidScheduleExpression as exc:
        return str(exc)
    return None if fires is not None else f"{cron} never fires (searched five years ahead)"


def _action_problems(definition: CampaignDefinition, named: Named) -> list[FieldError]:
    found: list[FieldError] = []
    coupon_before = False
    for i, action in enumerate(definition.actions):
        if isinstance(action, CouponAction):
            coupon_before = True
            if action.offer_id not in named.offers:
                found.append(FieldError(("body", "actions", i, "offer_id"), f"no offer {action.offer_id!r}"))
        elif isinstance(action, MessageAction):
            problem = _template_problem(action, named.templates.get(action.template_id), coupon_before)
            if problem is not None:
                found.append(FieldError(("body", "actions", i, "template_id"), problem))
    return found


def _template_problem(action: MessageAction, template: Template | None, coupon_before: bool) -> str | None:
    if template is None:
        return f"no template {action.template_id!r}"
    reason = misfit(template, Cause.CAMPAIGN)
    if reason is not None:
        return reason
    if COUPON_NAME in template.placeholders and not coupon_before:
        return (
            f"template {template.template_id!r} uses coupon, which only a coupon action before this "
            "message gives"
        )
    return None


def template_misfit(
    definition: CampaignDefinition, template_id: str, template: Template | None
) -> str | None:
    """Why `template` (None: deleted) can no longer serve the definition's messages naming
    `template_id` (None: it can, or none names it)."""
    coupon_before = False
    for action in definition.actions:
        coupon_before = coupon_before or isinstance(action, CouponAction)
        if isinstance(action, MessageAction) and action.template_id == template_id:
            problem = _template_problem(action, template, coupon_before)
            if problem is not None:
                return problem
    return None


def channels_of(definition: CampaignDefinition, templates: Mapping[str, Template]) -> dict[str, str]:
    """Each message action's template_id -> its channel (what cost_of counts messages by)."""
    return {
        a.template_id: templates[a.template_id].channel.value
        for a in definition.actions
        if isinstance(a, MessageAction) and a.template_id in templates
    }


def _budget_problems(definition: CampaignDefinition, named: Named) -> list[FieldError]:
    budget = definition.limits.budget
    if budget is None:
        return []
    cost = cost_of(definition, channels_of(definition, named.templates))
    found: list[FieldError] = []
    if budget.points is not None and budget.points < cost.points:
        found.append(
            FieldError(
                ("body", "limits", "budget", "points"),
                f"{budget.points} points cannot pay one customer's {cost.points}",
            )
        )
    if budget.amount is not None and budget.amount < cost.amount:
        found.append(
            FieldError(
                ("body", "limits", "budget", "amount"),
                f"{budget.amount} cannot pay one customer's {cost.amount} of promotional cash",
            )
        )
    return found


def check_transition(current: CampaignStatus | None, wanted: CampaignStatus, campaign_id: str) -> None:
    """draft, active and paused move freely between each other; ended is final."""
    if current == "ended":
        raise CampaignNotRunnable(
            f"campaign {campaign_id!r} has ended; an ended campaign stays as it is (define a new one)",
            campaign_id=campaign_id,
            status=current,
            wanted=wanted,
        )


# ---- what a saved campaign implies --------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """The EventBridge Scheduler schedule of an active schedule campaign."""

    expression: str  # at(yyyy-mm-ddThh:mm:ss) on the zone's wall clock, or cron(...)
    timezone: str


def schedule_of(campaign: Campaign, now: datetime) -> Schedule | None:
    """The schedule the campaign needs now: an active schedule campaign that fires again."""
    trigger = campaign.trigger
    if not isinstance(trigger, ScheduleTrigger) or campaign.status != "active":
        return None
    if trigger.cron is not None:
        schedule = Schedule(trigger.cron.strip(), trigger.timezone)
    else:
        assert trigger.at is not None
        local = trigger.at.astimezone(zone_of(trigger.timezone))
        schedule = Schedule(f"at({local:%Y-%m-%dT%H:%M:%S})", trigger.timezone)
    return schedule if next_fire(schedule.expression, schedule.timezone, now) is not None else None


def next_run_at(campaign: Campaign, now: datetime) -> datetime | None:
    schedule = schedule_of(campaign, now)
    return next_fire(schedule.expression, schedule.timezone, now) if schedule else None


def _bounded(prefix: str, campaign_id: str) -> str:
    """prefix + id, or, past 64 characters, prefix + a digest of the id (distinct ids stay distinct)."""
    name = f"{prefix}{campaign_id}"
    if len(name) <= 64:
        return name
    return prefix + hashlib.sha256(campaign_id.encode()).hexdigest()[: 64 - len(prefix)]


def trigger_segment_id(campaign_id: str) -> str:
    return _bounded(TRIGGER_SEGMENT_PREFIX, campaign_id)


def schedule_name(campaign_id: str) -> str:
    return _bounded(SCHEDULE_PREFIX, campaign_id)


def has_trigger_segment(definition: CampaignDefinition) -> bool:
    return isinstance(definition.trigger, (BirthdayTrigger, InactivityTrigger))


def trigger_rule(definition: CampaignDefinition, audience_rule: Any | None) -> dict[str, Any] | None:
    """The derived segment's rule: who has reached the trigger's occasion, within the audience."""
    trigger = definition.trigger
    condition: dict[str, Any]
    if isinstance(trigger, BirthdayTrigger):
        condition = {"birthday": {"within_days": trigger.days_before}}
    elif isinstance(trigger, InactivityTrigger):
        condition = {"attr": "stats.last_purchase_at", "before": f"P{trigger.days}D"}
    else:
        return None
    return {"all": [condition, audience_rule]} if audience_rule is not None else condition


def trigger_segment_wanted(campaign: Campaign) -> bool:
    """The derived segment exists while the campaign is active: activating it evaluates everyone
    (so a customer already within their occasion enters then), pausing or ending it stops the
    membership work."""
    return has_trigger_segment(campaign) and campaign.status == "active"
