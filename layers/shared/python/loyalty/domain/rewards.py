"""Rewards: what points buy, at a points price, while valid and in stock."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from loyalty.domain.models import Model
from loyalty.domain.values import Count, Points, Timestamp


class Reward(Model):
    model_config = ConfigDict(extra="forbid")

    reward_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    name: str = Field(min_length=1, max_length=200)
    points: Points = Field(gt=0, le=100_000_000, description="the points price")
    status: Literal["active", "paused"] = "active"
    valid_from: Timestamp | None = None
    valid_until: Timestamp | None = None
    stock: Count | None = Field(default=None, ge=0, le=100_000_000, description="null: unlimited")
    description: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _dates(self) -> Reward:
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self

    def unavailable_because(self, now: datetime) -> str | None:
        if self.status != "active":
            return "paused"
        if self.valid_from and now < self.valid_from:
            return "not yet valid"
        if self.valid_until and now >= self.valid_until:
            return "no longer valid"
        return None
