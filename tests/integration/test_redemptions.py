"""Points and coupon redemptions against DynamoDB Local: exactly once, never below zero, reversible."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from loyalty.adapters.transactions import TransactionRepository
from loyalty.api.models.redemptions import render_redemption
from loyalty.api.models.transactions import render_receipt
from loyalty.bootstrap import Container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customers import Consents, CustomerRef, Profile
from loyalty.domain.errors import (
    CouponNotRedeemable,
    Forbidden,
    IdempotencyKeyMismatch,
    InsufficientBalance,
    RedemptionReversed,
    ValidationFailed,
)
from loyalty.domain.offers import Offer
from loyalty.domain.sales import Line, SaleType
from loyalty.services.customers import EnrolCommand, RawLink
from loyalty.services.redemptions import RedeemCommand
from loyalty.services.replay import IdempotentReplay
from loyalty.services.transactions import RecordCommand

POS = Principal("key-pos", KeyKind.POS, "ams-01")
WEB = Principal("key-web", KeyKind.WEB, "web-nl")


def member_with(container: Container, *earns: str) -> str:
    email = f"m{uuid.uuid4().hex[:10]}@example.com"
    cid = container.customers.enrol(
        EnrolCommand(
            [RawLink("email", email)],
            Profile(),
            Consents(),
            True,
            None,
        ),
        POS,
    ).customer.customer_id
    for i, price in enumerate(earns):
        container.transactions.record(
            RecordCommand(
                transaction_id=f"E{i}-{email}",
                type=SaleType.SALE,
                store_id=None,
                occurred_at=container.clock.now(),
                customer=CustomerRef(customer_id=cid),
                lines=[Line("1", "X", None, Decimal(1), Decimal(price))],
                currency="EUR",
                total=Decimal(price),
                fingerprint=f"E{i}-{email}",
            ),
            POS,
            render=render_receipt,
        )
    return cid


def redeem(rid: str, cid: str, points: int) -> RedeemCommand:
    return RedeemCommand(
        rid, "points", None, CustomerRef(customer_id=cid), fingerprint=f"{rid}/{points}", points=points
    )


def balanced(container: Container, cid: str) -> Any:
    customer = container.customers.get(cid)
    ledger = TransactionRepository(container.table).all_ledger(cid)
    assert customer.points.available + customer.points.pending == sum(e.points for e in ledger)
    lots = [e for e in ledger if e.remaining is not None]
    assert all(0 <= (e.remaining or 0) <= e.points for e in lots)
    return customer


def test_spends_the_lots_that_expire_first_and_reverses_into_them(container: Container, clock: Any) -> None:
    cid = member_with(container, "3.00")  # lot 1: 30 points
    clock.advance(days=40)
    container.transactions.record(
        RecordCommand(
            "E9",
            SaleType.SALE,
            None,
            clock.now(),
            CustomerRef(customer_id=cid),
            [Line("1", "X", None, Decimal(1), Decimal("5.00"))],
            "EUR",
            Decimal("5.00"),
            "E9",
        ),
        POS,
        render=render_receipt,
    )  # lot 2: 50 points, expires later
    result = container.redemptions.redeem(redeem("R1", cid, 40), POS, render=render_redemption)
    assert result.balance_after == 40
    assert result.record.taken == {1: 30, 2: 10}
    customer = balanced(container, cid)
    assert customer.points.available == 40
    lots = {
        lot.seq: lot.remaining
        for lot in TransactionRepository(container.table).open_lots(cid, consistent=True)
    }
    assert lots == {2: 40}

    back = container.redemptions.reverse("R1", POS)
    assert back.record.status == "reversed"
    assert balanced(container, cid).points.available == 80
    lots = {
        lot.seq: lot.remaining
        for lot in TransactionRepository(container.table).open_lots(cid, consistent=True)
    }
    assert lots == {1: 30, 2: 50}
    again = container.redemptions.reverse("R1", POS)  # idempotent
    assert again.record.status == "reversed"
    assert balanced(container, cid).points.available == 80
    with pytest.raises(RedemptionReversed):
        container.redemptions.redeem(redeem("R1", cid, 40), POS, render=render_redemption)


def test_a_reversal_after_expiry_shows_the_expired_part(container: Container, clock: Any) -> None:
    cid = member_with(container, "2.00")  # 20 points, expire in 24 months
    container.redemptions.redeem(redeem("R1", cid, 15), POS, render=render_redemption)
    clock.current = datetime(2028, 12, 1, tzinfo=UTC)
    container.redemptions.reverse("R1", POS)
    customer = balanced(container, cid)
    assert customer.points.available == 5  # the 15 came back already expired
    reasons = [(e.reason.value, e.points) for e in TransactionRepository(container.table).all_ledger(cid)][:2]
    assert reasons == [("expire", -15), ("reverse", 15)]


def test_not_enough_pending_and_non_members(container: Container) -> None:
    programme = container.programme.current()
    container.programme.replace(programme.model_copy(update={"pending_days": 14}))
    cid = member_with(container, "10.00")  # 100 pending points
    with pytest.raises(InsufficientBalance) as caught:
        container.redemptions.redeem(redeem("R1", cid, 10), POS, render=render_redemption)
    assert caught.value.extra == {"available": 0, "pending": 100, "held": 0}
    assert balanced(container, cid).points.pending == 100


def test_exactly_once_per_redemption_id(container: Container) -> None:
    cid = member_with(container, "5.00")
    first = container.redemptions.redeem(redeem("R1", cid, 20), POS, render=render_redemption)
    with pytest.raises(IdempotentReplay) as replay:
        container.redemptions.redeem(redeem("R1", cid, 20), POS, render=render_redemption)
    assert json.loads(replay.value.body)["balance_after"] == first.balance_after == 30
    with pytest.raises(IdempotencyKeyMismatch):
        container.redemptions.redeem(redeem("R1", cid, 21), POS, render=render_redemption)
    with pytest.raises(Forbidden):
        container.redemptions.redeem(
            RedeemCommand("R2", "points", "web-nl", CustomerRef(customer_id=cid), "f", points=1),
            POS,
            render=render_redemption,
        )
    assert balanced(container, cid).points.available == 30


def test_hundred_concurrent_redemptions_of_ten_against_fifty_succeed_five_times(container: Container) -> None:
    cid = member_with(container, "2.00", "1.00", "2.00")  # 50 points in three lots

    def attempt(i: int) -> str:
        try:
            container.redemptions.redeem(redeem(f"C{i}", cid, 10), POS, render=render_redemption)
            return "ok"
        except InsufficientBalance:
            return "insufficient"

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(attempt, range(100)))
    assert outcomes.count("ok") == 5
    assert outcomes.count("insufficient") == 95
    customer = balanced(container, cid)
    assert customer.points.available == 0
    assert TransactionRepository(container.table).open_lots(cid, consistent=True) == []


def test_concurrent_redeem_and_reverse_keep_the_ledger_balanced(container: Container) -> None:
    cid = member_with(container, "10.00")  # 100 points
    for i in range(5):
        container.redemptions.redeem(redeem(f"P{i}", cid, 10), POS, render=render_redemption)

    def work(i: int) -> int:
        if i < 5:
            container.redemptions.reverse(f"P{i}", POS)
            return 0
        try:
            container.redemptions.redeem(redeem(f"N{i}", cid, 15), POS, render=render_redemption)
            return 1
        except InsufficientBalance:
            return 0

    with ThreadPoolExecutor(max_workers=10) as pool:
        spent = sum(pool.map(work, range(12)))
    customer = balanced(container, cid)
    assert 3 <= spent <= 6  # 50 left at first, 100 once every reversal landed
    assert customer.points.available == 100 - 15 * spent
    assert customer.points.available >= 0


def test_coupon_redemption_outside_a_sale_is_single_use(container: Container) -> None:
    cid = member_with(container)
    container.offers.create_offer(
        Offer.model_validate(
            {
                "offer_id": "free-coffee",
                "name": "A free coffee",
                "requires_coupon": True,
                "effect": {"type": "percent_off", "value": "100", "categories": ["coffee"]},
            }
        )
    )
    code = container.offers.issue_coupon(cid, "free-coffee", None, "api", 1).code
    command = RedeemCommand("K1", "coupon", None, CustomerRef(customer_id=cid), "k1", coupon=code)

    def attempt(i: int) -> str:
        try:
            container.redemptions.redeem(
                RedeemCommand(f"K{i}", "coupon", None, CustomerRef(customer_id=cid), f"k{i}", coupon=code),
                POS,
                render=render_redemption,
            )
            return "ok"
        except CouponNotRedeemable as refused:
            return str(refused.extra["reason"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count("ok") == 1
    assert set(outcomes) - {"ok"} == {"used"}
    winner = outcomes.index("ok")
    container.redemptions.reverse(f"K{winner}", POS)
    assert container.offers.get_coupon(code).uses == 0
    assert command.coupon == code


def test_rewards_catalogue_with_limited_stock(container: Container) -> None:
    from loyalty.domain.errors import RewardUnavailable
    from loyalty.domain.rewards import Reward

    container.offers.put_reward(Reward(reward_id="mug", name="A mug", points=20, stock=2), create=True)
    cids = [member_with(container, "5.00") for _ in range(3)]  # 50 points each

    def take(i: int) -> str:
        try:
            command = RedeemCommand(
                f"M{i}", "points", None, CustomerRef(customer_id=cids[i % 3]), f"m{i}", reward_id="mug"
            )
            container.redemptions.redeem(command, POS, render=render_redemption)
            return "ok"
        except RewardUnavailable:
            return "gone"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(take, range(6)))
    assert outcomes.count("ok") == 2
    spent = sum(50 - balanced(container, cid).points.available for cid in cids)
    assert spent == 40
    winner = outcomes.index("ok")
    container.redemptions.reverse(f"M{winner}", POS)  # the mug goes back on the shelf
    again = RedeemCommand("M99", "points", None, CustomerRef(customer_id=cids[0]), "m99", reward_id="mug")
    assert container.redemptions.redeem(again, POS, render=render_redemption).record.reward_id == "mug"
    container.offers.put_reward(
        Reward(reward_id="mug", name="A mug", points=20, stock=2, status="paused"), create=False
    )
    with pytest.raises(RewardUnavailable):
        container.redemptions.redeem(
            RedeemCommand("M100", "points", None, CustomerRef(customer_id=cids[1]), "m100", reward_id="mug"),
            POS,
            render=render_redemption,
        )


def test_points_holds_block_spending_until_captured_released_or_expired(
    container: Container, clock: Any
) -> None:
    from loyalty.domain.errors import HoldNotCapturable

    cid = member_with(container, "10.00")  # 100 points
    hold, _ = container.redemptions.hold_points(cid, "PH1", 70, 3600, WEB)
    assert container.redemptions.hold_points(cid, "PH1", 70, 3600, WEB)[0] == hold  # a retried hold
    with pytest.raises(InsufficientBalance) as caught:
        container.redemptions.redeem(redeem("R1", cid, 40), WEB, render=render_redemption)
    assert caught.value.extra["available"] == 30
    with pytest.raises(ValidationFailed):
        container.redemptions.capture_points_hold(hold, 71, WEB)
    captured, after = container.redemptions.capture_points_hold(hold, 60, WEB)
    assert (captured.status, after.points.available + after.points.pending) == ("captured", 40)
    customer = balanced(container, cid)
    assert customer.spendable(clock.now()) == 40  # the 10 held but not captured are free again
    assert customer.points_holds == {}

    second, _ = container.redemptions.hold_points(cid, "PH2", 40, 60, WEB)
    released, _ = container.redemptions.release_points_hold(second)
    assert released.status == "released"
    assert balanced(container, cid).spendable(clock.now()) == 40
    third, _ = container.redemptions.hold_points(cid, "PH3", 40, 60, WEB)
    assert balanced(container, cid).spendable(clock.now()) == 0
    clock.advance(seconds=61)
    assert balanced(container, cid).spendable(clock.now()) == 40  # expired: free by itself
    with pytest.raises(HoldNotCapturable):
        container.redemptions.capture_points_hold(third, 10, WEB)
    assert (
        container.redemptions.redeem(redeem("R2", cid, 40), WEB, render=render_redemption).balance_after == 0
    )
