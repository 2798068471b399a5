"""Campaigns as marketers define them, and the rules every part of a campaign's life shares. No I/O.

A campaign is a trigger (who starts it and when), an audience (a segment, members only or not),
actions given in order (a coupon, points, promotional cash, a message that may use what the earlier
actions gave), a control group held out at random, and limits (recipients, a budget, re-entry).

Everything a campaign gives one customer on one *occasion* (a run of a manual or scheduled campaign;
an event, a birthday, a lapse, a segment entry for a triggered one) is written in one conditional
transaction keyed by (campaign, occasion, customer): a retried batch, a redriven run, an event
delivered twice give nothing twice (loyalty.services.campaign_actions).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import ConfigDict, Field, field_validator, model_validator

from loyalty.domain import events as ev
from loyalty.domain.attributes import check_storable
from loyalty.domain.models import Model
from loyalty.domain.offers.model import PositiveMoney
from loyalty.domain.values import Timestamp

CampaignId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
CampaignStatus: TypeAlias = Literal["draft", "active", "paused", "ended"]

# The bus detail-types an event trigger may name: what happens to one customer, with its id in the
# detail (`customer_id`).
TRIGGER_EVENTS: frozenset[str] = frozenset(
    {
        ev.CUSTOMER_ENROLLED,
        ev.TIER_CHANGED,
        ev.SEGMENT_ENTERED,
        ev.SEGMENT_EXITED,
        ev.CUSTOMER_EVENT_RECORDED,
        ev.TRANSACTION_RECORDED,
        ev.CHALLENGE_COMPLETED,
        ev.BADGE_EARNED,
        ev.POINTS_EARNED,
    }
)


class _Config(Model):
    model_config = ConfigDict(extra="forbid")


class ManualTrigger(_Config):
    """A marketer starts each run (POST /v1/admin/campaigns/{id}/runs)."""

    type: Literal["manual"]


class ScheduleTrigger(_Config):
    """One time (`at`) or recurring (`cron`, AWS cron syntax, in `timezone`): EventBridge Scheduler
    starts a run when due, while the campaign is active."""

    type: Literal["schedule"]
    at: Timestamp | None = None
    cron: str | None = Field(default=None, examples=["cron(0 9 ? * MON *)"], max_length=100)
    timezone: str = Field(default="UTC", max_length=64, examples=["Europe/Amsterdam"])

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleTrigger:
        if (self.at is None) == (self.cron is None):
            raise ValueError("a schedule is either one time (`at`) or recurring (`cron`)")
        return self


class EventTrigger(_Config):
    """An EventBridge rule on the platform's bus: each matching event of one customer is an
    occasion. `where` compares detail fields for equality (a customer event's `type`, a segment
    entered's `segment_id`, a tier change's `to`); `properties.<name>` reaches a customer event's
    properties."""

    type: Literal["event"]
    event: str = Field(examples=["CustomerEnrolled"])
    where: dict[str, Any] = Field(default_factory=dict, max_length=10)

    _storable = field_validator("where")(check_storable)

    @field_validator("event")
    @classmethod
    def _known_event(cls, event: str) -> str:
        if event not in TRIGGER_EVENTS:
            raise ValueError(f"unknown event {event!r}: use one of {', '.join(sorted(TRIGGER_EVENTS))}")
        return event


class BirthdayTrigger(_Config):
    """Each customer `days_before` their birthday, once a year."""

    type: Literal["birthday"]
    days_before: int = Field(default=0, ge=0, le=60)


class InactivityTrigger(_Config):
    """Win-back: a customer whose last purchase is `days` old, once per lapse (a purchase ends it)."""

    type: Literal["inactivity"]
    days: int = Field(ge=1, le=3650)


Trigger = Annotated[
    ManualTrigger | ScheduleTrigger | EventTrigger | BirthdayTrigger | InactivityTrigger,
    Field(discriminator="type"),
]


class CampaignAudience(_Config):
    segment_id: Id | None = Field(default=None, description="null: every customer (of the occasion)")
    members_only: bool = False


class CouponAction(_Config):
    type: Literal["coupon"]
    offer_id: Id
    valid_days: int = Field(default=30, ge=1, le=3650)


class PointsAction(_Config):
    type: Literal["points"]
    points: int = Field(ge=1, le=1_000_000)


class PromoCashAction(_Config):
    type: Literal["promo_cash"]
    amount: PositiveMoney
    expires_days: int = Field(default=90, ge=1, le=3650)


class MessageAction(_Config):
    """A message with the template's channel; the template may use what earlier actions gave
    (`{{ coupon.code }}`, `{{ coupon.valid_until }}`, `{{ campaign.points }}`,
    `{{ campaign.promo_cash }}`)."""

    type: Literal["message"]
    template_id: Id


Action = Annotated[CouponAction | PointsAction | PromoCashAction | MessageAction, Field(discriminator="type")]


class ControlGroup(_Config):
    percent: int = Field(default=0, ge=0, le=90)


class Budget(_Config):
    points: int | None = Field(default=None, ge=1)
    amount: PositiveMoney | None = None


class Limits(_Config):
    max_recipients: int | None = Field(default=None, ge=1)
    budget: Budget | None = None
    reentry_days: int | None = Field(default=None, ge=1, le=3650)


class CampaignDefinition(_Config):
    """What a PUT carries (the contract's body)."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    trigger: Trigger
    audience: CampaignAudience = Field(default_factory=CampaignAudience)
    actions: list[Action] = Field(min_length=1, max_length=10)
    control_group: ControlGroup = Field(default_factory=ControlGroup)
    limits: Limits = Field(default_factory=Limits)
    status: CampaignStatus = "draft"


class Campaign(CampaignDefinition):
    """A saved campaign: the definition with its id and version."""

    campaign_id: CampaignId
    version: int = 1
    created_at: Timestamp
    updated_at: Timestamp

    @property
    def triggered(self) -> bool:
        return self.trigger.type in ("event", "birthday", "inactivity")

    @property
    def live(self) -> bool:
        return self.status == "active"


# ---- shared rules -----------------------------------------------------------------------------

SkipReason: TypeAlias = Literal[
    "not_member",  # members_only and the customer is not a member
    "not_in_audience",  # a triggered campaign's customer outside its segment
    "gone",  # erased, merged away or never existed
    "no_consent",  # the message's channel is not consented (or has no address)
    "suppressed",  # the customer's messages are suppressed (status, bounces, complaints)
    "frequency_capped",  # the channel's cap would be passed
    "already_received",  # this occasion (or within reentry_days) already actioned, incl. merged profiles
    "over_budget",  # the points or money budget cannot pay this customer's actions
    "max_recipients",  # the campaign reached limits.max_recipients
]
SKIP_REASONS: tuple[str, ...] = SkipReason.__args__  # type: ignore[attr-defined]


def in_control(campaign_id: str, customer_id: str, percent: int) -> bool:
    """The stable, random hold-out: the same answer for a (campaign, customer) on every run, every
    machine; independent between campaigns. No minimum audience."""
    if percent <= 0:
        return False
    digest = hashlib.sha256(f"control\n{campaign_id}\n{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 < percent * 100


@dataclass(frozen=True)
class Occasion:
    """What a customer is actioned once for: `run:<run_id>`, `event:<id>`, `birthday:<year>`,
    `lapse:<last purchase date>`, `entry:<segment>:<entered_at>`, `enrolment`."""

    key: str
    run_id: str | None = None  # the run it belongs to (manual and scheduled campaigns)


@dataclass(frozen=True)
class Cost:
    """What actioning customers costs: summed over an audience for a dry run, per customer for the
    budget."""

    points: int = 0
    amount: Decimal = Decimal("0.00")
    coupons: int = 0
    messages: dict[str, int] = field(default_factory=dict)  # channel -> messages

    def plus(self, other: Cost) -> Cost:
        messages = dict(self.messages)
        for channel, n in other.messages.items():
            messages[channel] = messages.get(channel, 0) + n
        return Cost(
            self.points + other.points, self.amount + other.amount, self.coupons + other.coupons, messages
        )


def cost_of(campaign: CampaignDefinition, channels: dict[str, str]) -> Cost:
    """One customer's cost; `channels` maps each message action's template_id to its channel."""
    points = sum(a.points for a in campaign.actions if isinstance(a, PointsAction))
    amount = sum((a.amount for a in campaign.actions if isinstance(a, PromoCashAction)), Decimal("0.00"))
    coupons = sum(1 for a in campaign.actions if isinstance(a, CouponAction))
    messages: dict[str, int] = {}
    for action in campaign.actions:
        if isinstance(action, MessageAction):
            channel = channels.get(action.template_id, "email")
            messages[channel] = messages.get(channel, 0) + 1
    return Cost(points, amount, coupons, messages)


Outcome: TypeAlias = Literal["actioned", "control", "skipped", "failed"]


@dataclass(frozen=True)
class ActResult:
    """What one customer came to on one occasion. `given` holds what the actions gave (a coupon's
    code and valid_until, points, promo cash account id, message ids), for templates and the run."""

    customer_id: str
    outcome: Outcome
    reason: SkipReason | None = None
    cost: Cost = field(default_factory=Cost)
    given: dict[str, Any] = field(default_factory=dict)
    first_time: bool = True  # False: this occasion's outcome was already recorded (a retry)
