"""API models: redemptions."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from pydantic import (
    Field,
    model_validator,
)

from loyalty.api.models.common import CallerId, Count, CustomerRefIn, Money, Points, StoreId, Strict, money
from loyalty.domain.models import Model

if TYPE_CHECKING:
    from loyalty.adapters.redemptions import RedemptionRecord
    from loyalty.services.redemptions import RedeemCommand, Redemption


class RedemptionIn(Strict):
    redemption_id: CallerId = Field(description="the caller's id; takes effect once, for ever")
    store_id: StoreId | None = Field(default=None, description="defaults to the key's store")
    customer: CustomerRefIn
    kind: Literal["points", "coupon", "stored_value"]
    points: Points | None = Field(default=None, gt=0, le=100_000_000)
    coupon: str | None = Field(default=None, min_length=1, max_length=64)
    reward_id: str | None = Field(default=None, max_length=64)
    account_id: str | None = Field(default=None, max_length=64)
    amount: Money | None = None
    order_ref: str | None = Field(default=None, max_length=128)

    @model_validator(mode="after")
    def _what_to_spend(self) -> RedemptionIn:
        if self.kind == "coupon" and self.coupon is None:
            raise ValueError("a coupon redemption names the coupon")
        if self.kind == "stored_value" and (self.account_id is None or self.amount is None):
            raise ValueError("a stored-value redemption names the account_id and the amount")
        if self.amount is not None and self.amount <= 0:
            raise ValueError("amount must be more than 0")
        if self.kind == "points" and self.points is None and self.reward_id is None:
            raise ValueError("a points redemption names the points or the reward")
        return self

    def to_command(self, fingerprint: str) -> RedeemCommand:
        from loyalty.services.redemption_common import RedeemCommand  # the services load on first use

        return RedeemCommand(
            redemption_id=self.redemption_id,
            kind=self.kind,
            store_id=self.store_id,
            customer=self.customer.to_ref(),
            fingerprint=fingerprint,
            points=self.points,
            coupon=self.coupon,
            order_ref=self.order_ref,
            reward_id=self.reward_id,
            account_id=self.account_id,
            amount=self.amount,
        )


class RedemptionOut(Model):
    redemption_id: str
    kind: str
    status: str = Field(description="done or reversed")
    store_id: str
    customer_id: str | None
    points: int
    coupon: str | None
    reward_id: str | None
    account_id: str | None
    amount: str | None = Field(description="stored value: the money spent")
    order_ref: str | None
    balance_after: int | None = Field(description="points balance (available + pending) afterwards")
    created_at: datetime
    reversed_at: datetime | None

    @classmethod
    def of(cls, r: RedemptionRecord, balance_after: int | None = None) -> RedemptionOut:
        return cls(
            redemption_id=r.redemption_id,
            kind=r.kind,
            status=r.status,
            store_id=r.store_id,
            customer_id=r.customer_id,
            points=r.points,
            coupon=r.coupon,
            reward_id=r.reward_id,
            account_id=r.account_id,
            amount=money(Decimal(r.amount) / 100) if r.amount is not None else None,
            order_ref=r.order_ref,
            balance_after=balance_after if balance_after is not None else r.balance_after,
            created_at=r.created_at,
            reversed_at=r.reversed_at,
        )


def render_redemption(result: Redemption) -> str:
    return RedemptionOut.of(result.record, result.balance_after).model_dump_json()


class PointsHoldIn(Strict):
    hold_id: CallerId
    points: Points = Field(gt=0, le=100_000_000)
    expires_in_seconds: Count = Field(default=7 * 24 * 3600, ge=1, le=30 * 24 * 3600)
