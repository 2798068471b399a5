"""Which triggered campaigns an event on the bus starts, and the occasion it is for. No I/O.

A triggered campaign acts on one customer per *occasion*, and the occasion key decides what counts
as "the same again" (CampaignActor writes one receipt per campaign, occasion and customer):

- an event trigger on `CustomerEnrolled`: `enrolment` (a second enrolment event gives nothing);
- an event trigger on `SegmentEntered` (`where` picks the segment): `entry:<segment>:<entered_at>`,
  `limits.reentry_days` being the actor's check of the customer's LAST receipt;
- an event trigger on any other event: `event:<the domain event's id>` (a redelivery gives nothing;
  a customer event's id is the caller's, unique per store: `event:<store_id>:<event_id>`);
- birthday, on entering `campaign-trigger-<id>`: `birthday:<year of the birthday coming>`;
- inactivity, on entering `campaign-trigger-<id>`: `lapse:<date of the last purchase>` (once per
  lapse: a purchase starts a new one).

Birthday and inactivity campaigns are realised as a derived segment per campaign (kept by the
campaign service); its real-time entry is the moment to act.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from loyalty.domain import events as ev
from loyalty.domain.campaign_definitions import trigger_segment_id
from loyalty.domain.campaigns import (
    TRIGGER_EVENTS,
    BirthdayTrigger,
    Campaign,
    EventTrigger,
    InactivityTrigger,
    Occasion,
    SkipReason,
)
from loyalty.domain.segments.windows import next_birthday

_MISSING = object()


def derived_segment_id(campaign_id: str) -> str:
    """The segment a birthday or inactivity campaign's customers enter when it is their moment
    (the campaign service keeps it: loyalty.domain.campaign_definitions)."""
    return trigger_segment_id(campaign_id)


@dataclass(frozen=True)
class TriggerEvent:
    """One bus event, as far as triggers care: its detail-type, detail, the customer it is about
    and a stable id (the domain event's own id, the same however often the bus delivers it)."""

    detail_type: str
    detail: Mapping[str, Any]
    event_id: str
    customer_id: str

    @classmethod
    def from_bus(cls, envelope: Mapping[str, Any]) -> TriggerEvent | None:
        """The event EventBridge hands the function; None when it is not one a trigger can use
        (another type, no customer, no id)."""
        detail_type = envelope.get("detail-type")
        detail = envelope.get("detail")
        if detail_type not in TRIGGER_EVENTS or not isinstance(detail, Mapping):
            return None
        customer_id = detail.get("customer_id")
        event_id = detail.get("event_id") or envelope.get("id")
        if not isinstance(customer_id, str) or not customer_id or not event_id:
            return None
        return cls(str(detail_type), detail, str(event_id), customer_id)


@dataclass(frozen=True)
class TriggerFacts:
    """What the occasion and the audience check need to know of the customer (one read)."""

    customer_id: str
    member: bool
    segments: frozenset[str]  # the segments the customer is in now
    birthday: date | None = None
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))  # the profile's, else the programme's
    last_purchase_at: datetime | None = None


def value_at(detail: Mapping[str, Any], path: str) -> Any:
    """A detail field by dotted path (`type`, `properties.sku`); _MISSING when absent."""
    value: Any = detail
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def where_holds(where: Mapping[str, Any], detail: Mapping[str, Any]) -> bool:
    """Every `where` field equals the detail's (a customer event's properties as `properties.x`).
    A bool never equals a number (True is not 1 here)."""
    for path, expected in where.items():
        actual = value_at(detail, path)
        if actual is _MISSING or isinstance(actual, bool) != isinstance(expected, bool):
            return False
        if actual != expected:
            return False
    return True


def matches(campaign: Campaign, event: TriggerEvent) -> bool:
    """Whether the event starts the campaign (its status is the caller's concern)."""
    trigger = campaign.trigger
    if isinstance(trigger, EventTrigger):
        return trigger.event == event.detail_type and where_holds(trigger.where, event.detail)
    if isinstance(trigger, BirthdayTrigger | InactivityTrigger):
        return event.detail_type == ev.SEGMENT_ENTERED and event.detail.get(
            "segment_id"
        ) == derived_segment_id(campaign.campaign_id)
    return False


def needs_facts(campaign: Campaign) -> bool:
    """Whether deciding needs the customer's facts: an audience to check, a birthday or a lapse."""
    return (
        campaign.audience.members_only
        or campaign.audience.segment_id is not None
        or isinstance(campaign.trigger, BirthdayTrigger | InactivityTrigger)
    )


def entered_at(event: TriggerEvent) -> datetime | None:
    """A SegmentEntered event's instant (`at`), in UTC."""
    raw = event.detail.get("at")
    if not isinstance(raw, str):
        return None
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def occasion_for(campaign: Campaign, event: TriggerEvent, facts: TriggerFacts | None) -> Occasion | None:
    """The occasion the (matching) event is for; None when there is none to act on (a birthday
    campaign's customer without a birthday, an inactivity one's without a purchase, an entry
    without its instant)."""
    trigger = campaign.trigger
    if isinstance(trigger, BirthdayTrigger):
        return _birthday(event, facts)
    if isinstance(trigger, InactivityTrigger):
        if facts is None or facts.last_purchase_at is None:
            return None
        return Occasion(f"lapse:{facts.last_purchase_at.astimezone(UTC).date().isoformat()}")
    return _of_event(event)


def _of_event(event: TriggerEvent) -> Occasion | None:
    if event.detail_type == ev.CUSTOMER_ENROLLED:
        return Occasion("enrolment")
    if event.detail_type == ev.SEGMENT_ENTERED:
        return _entry(event)
    if event.detail_type == ev.CUSTOMER_EVENT_RECORDED and event.detail.get("store_id"):
        # A customer event's id is the caller's, unique with its store only (docs/events.md).
        return Occasion(f"event:{event.detail['store_id']}:{event.event_id}")
    return Occasion(f"event:{event.event_id}")


def _birthday(event: TriggerEvent, facts: TriggerFacts | None) -> Occasion | None:
    """The year of the birthday the entry is for: the next one on or after the customer's local
    date of entry (the derived segment enters them `days_before` it, and keeps them to the day)."""
    at = entered_at(event)
    if facts is None or facts.birthday is None or at is None:
        return None
    today = at.astimezone(facts.timezone).date()
    return Occasion(f"birthday:{next_birthday(facts.birthday, today).year}")


def _entry(event: TriggerEvent) -> Occasion | None:
    at = entered_at(event)
    segment = event.detail.get("segment_id")
    if at is None or not segment:
        return None
    return Occasion(f"entry:{segment}:{_stamp(at)}")


def audience_skip(campaign: Campaign, facts: TriggerFacts) -> SkipReason | None:
    """Why the customer is outside the campaign's audience, or None when inside."""
    if campaign.audience.members_only and not facts.member:
        return "not_member"
    segment = campaign.audience.segment_id
    if segment is not None and segment not in facts.segments:
        return "not_in_audience"
    return None
