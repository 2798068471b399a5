"""The loyalty programme's configuration: currency, earn rate, tiers and windows."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from loyalty.domain.attributes import check_storable
from loyalty.domain.links import Identity, identify
from loyalty.domain.places import TimeZoneName
from loyalty.domain.values import Count, Factor, Id, Points, Timestamp


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=32)
    threshold: Points = Field(ge=0, description="points earned in the rolling window to reach the tier")
    multiplier: Factor = Field(ge=0, le=10, decimal_places=2)


class RuleWhere(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channels: list[Id] = Field(default_factory=list, max_length=10, description="pos, online, app")
    stores: list[Id] = Field(default_factory=list, max_length=1000)
    store_formats: list[Id] = Field(default_factory=list, max_length=200)
    store_attributes: dict[str, Any] = Field(default_factory=dict)

    _storable = field_validator("store_attributes")(check_storable)


class EarnRule(BaseModel):
    """An extra way to earn: a multiplier on matching lines and/or flat bonus points per sale.

    When several rules match a line, the highest multiplier applies (they do not compound);
    bonus points of every matching rule add up.
    """

    model_config = ConfigDict(extra="forbid")
    rule_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    name: str = Field(min_length=1, max_length=200)
    where: RuleWhere = Field(default_factory=RuleWhere)
    skus: list[Id] = Field(default_factory=list, max_length=1000)
    categories: list[Id] = Field(default_factory=list, max_length=200)
    multiplier: Factor = Field(default=Decimal(1), ge=1, le=100, decimal_places=2)
    bonus_points: Points = Field(default=0, ge=0, le=1_000_000)
    valid_from: Timestamp | None = None
    valid_until: Timestamp | None = None

    @model_validator(mode="after")
    def _does_something(self) -> EarnRule:
        if self.multiplier == 1 and self.bonus_points == 0:
            raise ValueError("an earn rule needs a multiplier above 1 or bonus points")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


MessageChannel = Literal["email", "sms", "mail", "api"]
ClockTime = Annotated[
    str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$"), Field(examples=["21:00"])
]
TemplateId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class FrequencyCap(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max: Count = Field(ge=1, le=1000, description="messages on the channel at most ...")
    per_days: Count = Field(ge=1, le=365, description="... in any window of this many days")


class QuietHours(BaseModel):
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


class Messaging(BaseModel):
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


class Programme(BaseModel):
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
    earn_rules: list[EarnRule] = Field(default_factory=list, max_length=200)
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
    def _unique_rule_ids(cls, rules: list[EarnRule]) -> list[EarnRule]:
        if len({r.rule_id for r in rules}) != len(rules):
            raise ValueError("earn rule ids must be unique")
        return rules

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
