"""API models: rewards, as the catalogue answers them (with what remains of their stock)."""

from __future__ import annotations

from pydantic import Field

from loyalty.domain.models import Model
from loyalty.domain.rewards import Reward

_REMAINING = "what is left of the stock (null: unlimited)"


class RewardIn(Reward):
    """A reward as it is created or replaced; `remaining`, read back from an answer, is ignored."""

    remaining: int | None = Field(default=None, exclude=True, description=f"read-only: {_REMAINING}")

    def to_reward(self) -> Reward:
        return Reward.model_validate(self.model_dump())


class RewardOut(Reward):
    remaining: int | None = Field(description=_REMAINING)

    @classmethod
    def of(cls, reward: Reward, remaining: int | None) -> RewardOut:
        return cls(**reward.model_dump(), remaining=remaining)


class RewardList(Model):
    items: list[RewardOut]
    next_cursor: str | None
