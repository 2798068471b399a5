"""The loyalty programme's configuration: currency, earn rate, tiers and windows."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from loyalty.domain.attributes import check_storable
from loyalty.domain.links import Identity, identify
from loyalty.domain.models import Model
from loyalty.domain.values import Count, Factor, Id, Points, Timestamp


class Tier(Model):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=32)
    threshold: Points = Field(ge=0, description="points earned in the rolling window to reach the tier")
    multiplier: Factor = Field(ge=0, le=10, decimal_places=2)


class RuleWhere(Model):
    model_config = ConfigDict(extra="forbid")
    channels: list[Id] = Field(default_factory=list, max_length=10, description="pos, online, app")
    stores: list[Id] = Field(default_factory=list, max_length=1000)
    store_formats: list[Id] = Field(default_factory=list, max_length=200)
    store_attributes: dict[str, Any] = Field(default_factory=dict)

    _storable = field_validator("store_attributes")(check_storable)


class EarnRule(Model):
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
