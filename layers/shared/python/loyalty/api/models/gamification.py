"""API models: challenges and badges as marketers define them, and a customer's standing."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from loyalty.domain.gamification import Badge, Challenge, ChallengeReward, Progress
from loyalty.domain.models import Model


class ChallengeList(Model):
    items: list[Challenge]
    next_cursor: str | None


class BadgeList(Model):
    items: list[Badge]
    next_cursor: str | None


class TaskProgressOut(Model):
    task_id: str
    kind: Literal["event", "purchase"]
    progress: int = Field(description="counted so far in the current round (a punch card's stamps)")
    count: int
    stores: list[str] | None = Field(default=None, description="distinct-store tasks: the stores counted")


class CouponGivenOut(Model):
    code: str
    offer_id: str
    valid_until: datetime | None


class RewardGivenOut(Model):
    points: int | None = None
    coupon: CouponGivenOut | None = None

    @classmethod
    def of(cls, given: dict[str, Any] | None) -> RewardGivenOut | None:
        if not given:
            return None
        coupon = given.get("coupon")
        return cls(
            points=int(given["points"]) if given.get("points") is not None else None,
            coupon=CouponGivenOut.model_validate(coupon) if coupon else None,
        )


class ChallengeProgressOut(Model):
    challenge_id: str
    name: str
    status: str
    repeatable: bool
    valid_from: datetime | None
    valid_until: datetime | None
    tasks: list[TaskProgressOut]
    completed: bool = Field(description="a one-off challenge that was completed (a repeatable one never is)")
    completed_at: datetime | None = Field(description="when it was (last) completed")
    completions: int = Field(description="how often it was completed (rewards given)")
    reward: ChallengeReward = Field(description="what completing it gives")
    reward_given: RewardGivenOut | None = Field(description="the last reward given, if any")

    @classmethod
    def of(cls, challenge: Challenge, progress: Progress) -> ChallengeProgressOut:
        return cls(
            challenge_id=challenge.challenge_id,
            name=challenge.name,
            status=challenge.status,
            repeatable=challenge.repeatable,
            valid_from=challenge.valid_from,
            valid_until=challenge.valid_until,
            tasks=[
                TaskProgressOut(
                    task_id=t.task_id,
                    kind="event" if t.event is not None else "purchase",
                    progress=min(progress.task_progress(t.task_id), t.count),
                    count=t.count,
                    stores=list(progress.stores.get(t.task_id, ()))
                    if t.purchase is not None and t.purchase.distinct_stores
                    else None,
                )
                for t in challenge.tasks
            ],
            completed=progress.finished(challenge),
            completed_at=progress.completed_at,
            completions=progress.completions,
            reward=challenge.reward,
            reward_given=RewardGivenOut.of(dict(progress.last_reward) if progress.last_reward else None),
        )


class CustomerChallengeList(Model):
    items: list[ChallengeProgressOut]
    next_cursor: str | None = Field(default=None, description="always null: every challenge in one page")
