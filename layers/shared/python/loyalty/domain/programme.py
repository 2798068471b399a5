"""The loyalty programme's configuration: currency, earn rate, tiers and windows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)

from loyalty.domain.attributes import check_storable
from loyalty.domain.links import Identity, identify
from loyalty.domain.models import Model
from loyalty.domain.places import TimeZoneName
from loyalty.domain.values import Count, Factor, Id, Points, Timestamp


class Tier(Model):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=32)
    threshold: Points = Field(ge=0, description="points earned in the rolling window to reach the tier")
    multiplier: Factor = Field(ge=0, le=10, decimal_places=2)


RULE_ID = r"^[A-Za-z0-9_.-]{1,64}$"
MAX_RULES_PER_EVENT = 30


class RuleWhere(Model):
    model_config = ConfigDict(extra="forbid")
    channels: list[Id] = Field(default_factory=list, max_length=10, description="pos, online, app")
    stores: list[Id] = Field(default_factory=list, max_length=1000)
    store_formats: list[Id] = Field(default_factory=list, max_length=200)
    store_attributes: dict[str, Any] = Field(default_factory=dict)

    _storable = field_validator("store_attributes")(check_storable)


class Cashback(Model):
    """Promotional cash instead of points: a percentage of what the customer paid for the matching
    lines, credited in cents (rounded down per line) to a promotional-cash account that expires."""

    model_config = ConfigDict(extra="forbid")
    percent: Factor = Field(gt=0, le=100, decimal_places=2, description='of the amount paid, e.g. "5"')
    expires_days: Count = Field(
        default=90, ge=1, le=3650, description="the cash expires this many days after the sale"
    )


class EarnRule(Model):
    """A sale earn rule: a multiplier on matching lines and/or flat bonus points per sale, or
    cashback (promotional cash) instead of points.

    When several rules match a line, the highest multiplier applies (they do not compound), and so
    does the highest cashback percentage; bonus points of every matching rule add up.
    """

    model_config = ConfigDict(extra="forbid")
    rule_id: str = Field(pattern=RULE_ID)
    name: str = Field(min_length=1, max_length=200)
    where: RuleWhere = Field(default_factory=RuleWhere)
    skus: list[Id] = Field(default_factory=list, max_length=1000)
    categories: list[Id] = Field(default_factory=list, max_length=200)
    multiplier: Factor = Field(default=Decimal(1), ge=1, le=100, decimal_places=2)
    bonus_points: Points = Field(default=0, ge=0, le=1_000_000)
    cashback: Cashback | None = Field(default=None, description="promotional cash instead of points")
    valid_from: Timestamp | None = None
    valid_until: Timestamp | None = None

    @model_validator(mode="after")
    def _does_something(self) -> EarnRule:
        if self.cashback is not None and (self.multiplier != 1 or self.bonus_points):
            raise ValueError(
                "a cashback rule gives promotional cash instead of points: no multiplier or bonus_points"
            )
        if self.cashback is None and self.multiplier == 1 and self.bonus_points == 0:
            raise ValueError("an earn rule needs a multiplier above 1 or bonus points, or cashback")
        _check_validity(self.valid_from, self.valid_until)
        return self


MessageChannel = Literal["email", "sms", "mail", "api"]
ClockTime = Annotated[
    str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$"), Field(examples=["21:00"])
]
TemplateId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class FrequencyCap(Model):
    model_config = ConfigDict(extra="forbid")
    max: Count = Field(ge=1, le=1000, description="messages on the channel at most ...")
    per_days: Count = Field(ge=1, le=365, description="... in any window of this many days")


class QuietHours(Model):
    """A daily window, in the customer's time zone, in which nothing is sent (what falls due in it
    waits until it ends). `start` after `end` spans midnight (21:00 to 08:00)."""

    model_config = ConfigDict(extra="forbid")
    start: ClockTime
    end: ClockTime

    @model_validator(mode="after")
    def _a_window(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours need a start and an end that differ")
        return self

    def release_at(self, at: datetime, zone: tzinfo) -> datetime | None:
        """When a message due at `at` (aware) may go to someone living in `zone`: None when `at` is
        outside the window there, else the instant the window ends (UTC). Wall-clock times: on the
        night clocks change the window still ends at `end` local time (a missing end, inside the
        spring-forward gap, is read with the offset before it, so the message waits past the gap)."""
        start, end = time.fromisoformat(self.start), time.fromisoformat(self.end)
        local = at.astimezone(zone)
        now = local.time().replace(tzinfo=None)
        if start < end:
            quiet = start <= now < end
            ends_on = local.date()
        else:  # spans midnight
            quiet = now >= start or now < end
            ends_on = local.date() + timedelta(days=1) if now >= start else local.date()
        if not quiet:
            return None
        return datetime.combine(ends_on, end, tzinfo=zone).astimezone(UTC)


class Messaging(Model):
    """The contact policy and the built-in triggers (a trigger is off while its template id is null)."""

    model_config = ConfigDict(extra="forbid")
    frequency_caps: dict[MessageChannel, FrequencyCap] = Field(
        default_factory=dict, examples=[{"email": {"max": 3, "per_days": 7}}]
    )
    quiet_hours: QuietHours | None = None
    default_timezone: TimeZoneName = Field(
        default="Europe/Amsterdam", description="for customers whose profile names no time zone"
    )
    welcome_template_id: TemplateId | None = Field(default=None, description="sent when a customer enrols")
    earn_confirmation_template_id: TemplateId | None = Field(
        default=None, description="sent after a member's sale earned points"
    )
    confirm_email: bool = Field(
        default=False, description="double opt-in: web enrolments wait for the emailed link to be followed"
    )
    confirmation_template_id: TemplateId | None = Field(
        default=None, description="the email carrying the confirmation link (confirm_url)"
    )
    confirm_within_days: int = Field(
        default=7,
        ge=1,
        le=90,
        description="an unconfirmed web enrolment lapses (the customer stays a non-member) after this",
    )

    @model_validator(mode="after")
    def _confirmation_has_a_template(self) -> Messaging:
        if self.confirm_email and self.confirmation_template_id is None:
            raise ValueError(
                "confirm_email needs a confirmation_template_id: the email that carries the link"
            )
        return self

    def zone_of(self, profile_timezone: str | None) -> str:
        """The time zone a customer's messages keep: their own, else the programme's default."""
        return profile_timezone or self.default_timezone

    def template_refs(self) -> dict[str, str]:
        """The templates the programme uses, by the field that names each."""
        named = {
            "welcome_template_id": self.welcome_template_id,
            "earn_confirmation_template_id": self.earn_confirmation_template_id,
            "confirmation_template_id": self.confirmation_template_id,
        }
        return {name: template_id for name, template_id in named.items() if template_id is not None}


PropertyName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


def _scalar(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    # One clear message rather than one per member of the union.
    if isinstance(value, bool | int | str) and not (isinstance(value, str) and len(value) > 256):
        return value
    raise ValueError("a string (at most 256 characters), a whole number or a boolean")


PropertyValue = Annotated[StrictBool | StrictInt | StrictStr, WrapValidator(_scalar)]


class EarnLimit(Model):
    model_config = ConfigDict(extra="forbid")
    per_customer: Count = Field(ge=1, le=1_000_000, description="earns at most this many times per customer")
    per: Literal["ever", "day", "month"] = Field(
        description="in each UTC calendar day or month (of the event's occurred_at), or ever"
    )


class EventEarnRule(Model):
    """Points for a customer event (an app install, a review): for members, once per event and
    rule, within the rule's limit per customer."""

    model_config = ConfigDict(extra="forbid")
    rule_id: str = Field(pattern=RULE_ID)
    name: str = Field(min_length=1, max_length=200)
    on_event: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="the event type, e.g. app_install")
    points: Points = Field(ge=1, le=1_000_000)
    where: dict[PropertyName, PropertyValue] = Field(
        default_factory=dict,
        max_length=20,
        description="event properties that must equal these values (strings, whole numbers, booleans)",
    )
    limit: EarnLimit | None = Field(default=None, description="none: every matching event earns")
    valid_from: Timestamp | None = None
    valid_until: Timestamp | None = None

    @model_validator(mode="after")
    def _valid_window(self) -> EventEarnRule:
        _check_validity(self.valid_from, self.valid_until)
        return self

    def matches(self, type_: str, properties: Mapping[str, Any], at: datetime) -> bool:
        """Whether an event of this type and properties, occurring at `at`, earns by this rule."""
        if type_ != self.on_event:
            return False
        if (self.valid_from and at < self.valid_from) or (self.valid_until and at >= self.valid_until):
            return False
        return all(_same(properties.get(name), value) for name, value in self.where.items())


def _same(actual: Any, wanted: bool | int | str) -> bool:
    # A boolean is not the number 1 here (True == 1 in Python): `"verified": true` wants a boolean.
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return isinstance(actual, bool) and isinstance(wanted, bool) and actual is wanted
    return bool(actual == wanted)


def _check_validity(valid_from: datetime | None, valid_until: datetime | None) -> None:
    if valid_from and valid_until and valid_until <= valid_from:
        raise ValueError("valid_until must be after valid_from")


def _one_rule(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """An earn rule is a sale rule or, when it names `on_event`, an event rule: each is validated as
    its own model, so a 422 names the rule's field (earn_rules.0.points), not both shapes' errors."""
    if isinstance(value, dict):
        model = EventEarnRule if "on_event" in value else EarnRule
        return model.model_validate(value)
    if isinstance(value, EarnRule | EventEarnRule):
        return value
    raise ValueError("an earn rule is an object: a sale rule, or an event rule with on_event")


AnyEarnRule = Annotated[EarnRule | EventEarnRule, WrapValidator(_one_rule)]


class Programme(Model):
    model_config = ConfigDict(extra="forbid")
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    points_per_unit: Points = Field(default=10, ge=0, le=10_000, description="points per currency unit spent")
    tiers: list[Tier] = Field(min_length=1)
    tier_window_months: Count = Field(default=12, ge=1, le=60)
    pending_days: Count = Field(default=0, ge=0, le=365)
    expiry_months: Count = Field(default=24, ge=1, le=120)
    retro_credit_days: Count = Field(default=30, ge=0, le=365)
    max_backdate_days: Count = Field(
        default=30,
        ge=0,
        le=365,
        description="a sale whose occurred_at is older than this when it reaches the platform (a till "
        "syncing late) is recorded, and counts in the customer's stats, but earns no points",
    )
    default_phone_region: str = Field(default="NL", pattern=r"^[A-Z]{2}$")
    earn_rules: list[AnyEarnRule] = Field(
        default_factory=list,
        max_length=200,
        description="sale rules (multiplier, bonus_points or cashback) and event rules (on_event)",
    )
    merge_blocked_values: list[Annotated[str, StringConstraints(min_length=1, max_length=254)]] = Field(
        default_factory=list,
        max_length=500,
        description="link values that identify nobody and never join profiles, on top of the built-in "
        "placeholders (null, -1, 0, repeated digits, test@test.com ...)",
    )
    card_scheme: Literal["luhn", "ean13"] | None = Field(
        default=None,
        description="check digit that card links must pass (a card failing it is a 422); none: any "
        "4 to 64 letters, digits or dashes",
    )
    max_merges_per_profile: Count = Field(
        default=100,
        ge=1,
        le=10_000,
        description="beyond this a profile stops merging and is flagged for review",
    )
    messaging: Messaging = Field(default_factory=Messaging)

    @field_validator("tiers")
    @classmethod
    def _tiers_ordered(cls, tiers: list[Tier]) -> list[Tier]:
        thresholds = [t.threshold for t in tiers]
        if thresholds[0] != 0:
            raise ValueError("the first tier must start at 0 points")
        if thresholds != sorted(set(thresholds)):
            raise ValueError("tier thresholds must be strictly increasing")
        if len({t.name for t in tiers}) != len(tiers):
            raise ValueError("tier names must be unique")
        return tiers

    @field_validator("earn_rules")
    @classmethod
    def _unique_rule_ids(cls, rules: list[EarnRule | EventEarnRule]) -> list[EarnRule | EventEarnRule]:
        if len({r.rule_id for r in rules}) != len(rules):
            raise ValueError("earn rule ids must be unique")
        by_event: dict[str, int] = {}
        for rule in rules:
            if isinstance(rule, EventEarnRule):
                by_event[rule.on_event] = by_event.get(rule.on_event, 0) + 1
        crowded = sorted(e for e, n in by_event.items() if n > MAX_RULES_PER_EVENT)
        if crowded:
            # One event's earns are one transaction (three items a rule, at most 100 items).
            raise ValueError(f"at most {MAX_RULES_PER_EVENT} event rules per on_event ({', '.join(crowded)})")
        return rules

    @property
    def sale_rules(self) -> list[EarnRule]:
        return [r for r in self.earn_rules if isinstance(r, EarnRule)]

    @property
    def event_rules(self) -> list[EventEarnRule]:
        return [r for r in self.earn_rules if isinstance(r, EventEarnRule)]

    def identify(self, raw_type: str, raw_value: str) -> Identity:
        """A link as this programme reads it: normalised, checked, and placeholders marked."""
        return identify(
            raw_type,
            raw_value,
            region=self.default_phone_region,
            blocked_values=self.merge_blocked_values,
            card_scheme=self.card_scheme,
        )

    def tier_named(self, name: str | None) -> Tier:
        return next((t for t in self.tiers if t.name == name), self.tiers[0])

    @property
    def base_tier(self) -> str:
        return self.tiers[0].name

    def tier_for(self, points_in_window: int) -> Tier:
        # Below zero (a return read beside a concurrent one) is still the first tier.
        reached = [t for t in self.tiers if points_in_window >= t.threshold]
        return reached[-1] if reached else self.tiers[0]

    def next_tier(self, points_in_window: int) -> Tier | None:
        above = [t for t in self.tiers if t.threshold > points_in_window]
        return above[0] if above else None


def default_programme() -> Programme:
    return Programme(
        tiers=[
            Tier(name="bronze", threshold=0, multiplier=Decimal("1.0")),
            Tier(name="silver", threshold=2500, multiplier=Decimal("1.25")),
            Tier(name="gold", threshold=10000, multiplier=Decimal("1.5")),
        ]
    )
