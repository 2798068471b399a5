"""Earning, taking back, tier windows and lot dates: the pure rules."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty.domain.customers import Consents, Customer, CustomerStatus, PointsSummary, Profile
from loyalty.domain.ledger import LedgerEntry, LedgerReason, RecordedLine, TransactionRecord
from loyalty.domain.points import next_due
from loyalty.domain.points import take_back as _take_back
from loyalty.domain.programme import EarnRule, RuleWhere, default_programme
from loyalty.domain.sales import (
    BONUS_LINE,
    Line,
    SaleType,
    add_months,
    compute_earn,
    is_backdated,
    lot_dates,
    offers_carried,
    paid_for,
    points_in_window,
    prune_months,
    takeback,
    window_months,
)
from loyalty.domain.stores import Channel, Store

AMS = Store("ams-01", Channel.POS, "flagship", attributes={"coffee_corner": True})
WEB = Store("web-nl", Channel.ONLINE)
NOW = datetime(2026, 11, 22, 10, tzinfo=UTC)


def line(line_id: str, qty: str, price: str, discount: str = "0", category: str | None = None) -> Line:
    return Line(line_id, "SKU", category, Decimal(qty), Decimal(price), Decimal(discount))


class TestEarn:
    def test_points_per_line_on_the_amount_paid_rounded_down(self) -> None:
        earn = compute_earn(
            default_programme(), AMS, [line("1", "3", "3.33"), line("2", "1", "10", "0.05")], "bronze", NOW
        )
        assert earn.line_points == {"1": 99, "2": 99}
        assert earn.total == 198

    def test_tier_multiplier(self) -> None:
        programme = default_programme()
        assert compute_earn(programme, AMS, [line("1", "1", "10")], "silver", NOW).total == 125
        assert compute_earn(programme, AMS, [line("1", "1", "10")], "gold", NOW).total == 150

    def test_fully_discounted_lines_earn_nothing(self) -> None:
        assert compute_earn(default_programme(), AMS, [line("1", "1", "10", "10")], "bronze", NOW).total == 0

    def test_best_multiplier_wins_and_bonuses_add_up(self) -> None:
        programme = default_programme().model_copy(
            update={
                "earn_rules": [
                    EarnRule(
                        rule_id="x2",
                        name="x2",
                        where=RuleWhere(store_attributes={"coffee_corner": True}),
                        categories=["coffee"],
                        multiplier=Decimal(2),
                    ),
                    EarnRule(
                        rule_id="x3",
                        name="x3",
                        skus=["SKU"],
                        categories=["coffee"],
                        multiplier=Decimal(3),
                        valid_until=datetime(2026, 1, 1, tzinfo=UTC),
                    ),  # expired
                    EarnRule(
                        rule_id="online", name="online", where=RuleWhere(channels=["online"]), bonus_points=25
                    ),
                    EarnRule(
                        rule_id="flagship",
                        name="flagship",
                        where=RuleWhere(store_formats=["flagship"]),
                        bonus_points=5,
                    ),
                ]
            }
        )
        lines = [line("1", "1", "4", category="coffee"), line("2", "1", "4", category="cake")]
        in_store = compute_earn(programme, AMS, lines, "bronze", NOW)
        assert in_store.line_points == {"1": 80, "2": 40, BONUS_LINE: 5}
        assert in_store.rules_applied == ("flagship", "x2")
        online = compute_earn(programme, WEB, lines, "bronze", NOW)
        assert online.line_points == {"1": 40, "2": 40, BONUS_LINE: 25}

    def test_an_earn_rule_must_do_something(self) -> None:
        with pytest.raises(ValueError, match="multiplier above 1 or bonus"):
            EarnRule(rule_id="nothing", name="nothing")


class TestTakeback:
    @given(
        earned=st.integers(0, 100_000),
        quantity=st.integers(1, 50),
        parts=st.lists(st.integers(1, 10), min_size=1, max_size=20),
    )
    def test_partial_returns_add_up_to_the_earn_and_never_more(
        self, earned: int, quantity: int, parts: list[int]
    ) -> None:
        returned = 0
        total = 0
        for wanted in parts:
            part = min(wanted, quantity - returned)
            if part <= 0:
                break
            taken = takeback(earned, Decimal(quantity), Decimal(returned), Decimal(part))
            assert taken >= 0
            total += taken
            returned += part
            assert total <= earned
        if returned == quantity:
            assert total == earned

    def test_spent_points_come_out_of_the_balance_which_may_go_negative(self) -> None:
        customer = Customer(
            customer_id="C1",
            member=True,
            status=CustomerStatus.ACTIVE,
            profile=Profile(),
            consents=Consents(),
            links=(),
            created_at=NOW,
            points=PointsSummary(available=5, pending=0, lifetime=30),
            earned_by_month={"2026-11": 30},
            ledger_seq=3,
        )
        lot = LedgerEntry(
            "C1",
            1,
            NOW,
            30,
            LedgerReason.EARN,
            30,
            remaining=10,
            pending_until=NOW,
            expires_at=add_months(NOW, 24),
            earn_month="2026-11",
        )
        sale = TransactionRecord(
            "ams-01",
            "S1",
            SaleType.SALE,
            "pos",
            NOW,
            NOW,
            "C1",
            True,
            "EUR",
            Decimal(3),
            (RecordedLine(line("1", "1", "3"), 30),),
            lot_seq=1,
        )
        updated, from_lot, entry = _take_back(
            customer, lot, 30, default_programme(), NOW, LedgerReason.RETURN, sale
        )
        assert from_lot == 10
        assert updated.points.available == 5 - 30
        assert entry.points == -30
        assert entry.balance_after == -25
        assert updated.earned_by_month == {}
        assert updated.points.lifetime == 0


class TestRefundsAndOffers:
    @given(
        quantity=st.integers(1, 12),
        cents_paid=st.integers(1, 100_000),
        parts=st.lists(st.integers(1, 12), min_size=1, max_size=12),
    )
    def test_refunds_in_parts_add_up_to_what_was_paid_and_never_more(
        self, quantity: int, cents_paid: int, parts: list[int]
    ) -> None:
        sold = Line("1", "SKU", None, Decimal(quantity), Decimal(cents_paid) / 100)
        returned, refunded = Decimal(0), Decimal(0)
        for wanted in parts:
            part = min(Decimal(wanted), sold.quantity - returned)
            if part <= 0:
                break
            refunded += paid_for(sold, returned, part)
            returned += part
            assert refunded <= sold.amount
        if returned == sold.quantity:
            assert refunded == sold.amount

    def test_refund_is_net_of_the_sales_discount(self) -> None:
        assert paid_for(line("1", "3", "2.25", "2.25"), Decimal(0), Decimal(1)) == Decimal("1.50")

    def test_only_the_offers_the_lines_carry_are_given(self) -> None:
        offers = [("b2g1", Decimal("2.25")), ("ten-off", Decimal("0.45"))]
        assert offers_carried(offers, Decimal(0)) == ()
        assert offers_carried(offers, Decimal("0.45")) == ("ten-off",)
        assert offers_carried(offers, Decimal("2.69")) == ("b2g1", "ten-off")  # a cent of rounding
        assert offers_carried(offers, Decimal("2.25")) == ("b2g1",)

    def test_backdated_is_older_than_max_backdate_days(self) -> None:
        programme = default_programme()
        assert not is_backdated(programme, datetime(2026, 10, 23, 10, tzinfo=UTC), NOW)
        assert is_backdated(programme, datetime(2026, 10, 23, 9, tzinfo=UTC), NOW)


class TestWindowsAndDates:
    def test_window_counts_the_last_twelve_months(self) -> None:
        months = {"2025-11": 100, "2025-12": 10, "2026-11": 1}
        assert window_months(NOW, 2) == ["2026-11", "2026-10"]
        assert points_in_window(months, NOW, 12) == 11
        assert (
            prune_months(months, NOW, 12) == {"2025-12": 10, "2026-11": 1}
            or prune_months(months, NOW, 12) == months
        )

    def test_add_months_clamps_to_the_end_of_the_month(self) -> None:
        assert add_months(datetime(2026, 1, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)
        assert add_months(datetime(2027, 12, 31, tzinfo=UTC), 2) == datetime(2028, 2, 29, tzinfo=UTC)
        assert add_months(datetime(2026, 11, 22, tzinfo=UTC), 24) == datetime(2028, 11, 22, tzinfo=UTC)

    def test_a_lot_is_due_to_mature_then_for_a_tier_review_then_to_expire(self) -> None:
        programme = default_programme().model_copy(update={"pending_days": 14})
        pending_until, expires_at = lot_dates(programme, NOW)
        lot = LedgerEntry(
            "C1",
            1,
            NOW,
            10,
            LedgerReason.EARN,
            10,
            remaining=10,
            pending_until=pending_until,
            expires_at=expires_at,
            earn_month="2026-11",
        )
        assert next_due(lot, programme, NOW) == (pending_until, "mature")
        after = datetime(2026, 12, 15, tzinfo=UTC)
        assert next_due(lot, programme, after) == (datetime(2027, 11, 1, tzinfo=UTC), "tier")
        assert next_due(lot, programme, datetime(2027, 11, 2, tzinfo=UTC)) == (expires_at, "expire")
        spent = LedgerEntry(
            "C1",
            1,
            NOW,
            10,
            LedgerReason.EARN,
            10,
            remaining=0,
            pending_until=NOW,
            expires_at=expires_at,
            earn_month="2026-11",
        )
        assert next_due(spent, programme, datetime(2027, 11, 2, tzinfo=UTC)) == (None, None)
