"""Sales, returns, the ledger and tiers against DynamoDB Local."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from loyalty.adapters.transactions import TransactionRepository
from loyalty.api.models.transactions import render_receipt
from loyalty.bootstrap import Container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customers import Consents, Customer, CustomerRef, Profile
from loyalty.domain.errors import (
    Forbidden,
    IdempotencyKeyMismatch,
    InvalidOrderTransition,
    TransactionCustomerMismatch,
    ValidationFailed,
)
from loyalty.domain.programme import EarnRule, RuleWhere
from loyalty.domain.sales import Line, OrderStatus, SaleType
from loyalty.services.customers import EnrolCommand, RawLink
from loyalty.services.replay import IdempotentReplay
from loyalty.services.transactions import Receipt, RecordCommand

POS = Principal("key-pos", KeyKind.POS, "ams-01")
WEB = Principal("key-web", KeyKind.WEB, "web-nl")
ADMIN = Principal("key-admin", KeyKind.ADMIN, None)


def line(
    line_id: str, qty: str, price: str, discount: str = "0", sku: str = "SKU", category: str | None = None
) -> Line:
    return Line(line_id, sku, category, Decimal(qty), Decimal(price), Decimal(discount))


def command(
    txn: str,
    lines: list[Line],
    customer: CustomerRef | None,
    *,
    kind: SaleType = SaleType.SALE,
    store: str | None = None,
    at: datetime | None = None,
    original: str | None = None,
    currency: str = "EUR",
    total: Decimal | None = None,
) -> RecordCommand:
    total = total if total is not None else sum((ln.amount for ln in lines), Decimal("0"))
    body = json.dumps([txn, kind.value, [str(ln) for ln in lines], str(customer), original, str(total)])
    return RecordCommand(
        transaction_id=txn,
        type=kind,
        store_id=store,
        occurred_at=at or datetime(2026, 11, 22, 9, 0, tzinfo=UTC),
        customer=customer,
        lines=lines,
        currency=currency,
        total=total,
        fingerprint=str(hash(body)),
        original_transaction_id=original,
    )


def member(container: Container, email: str = "m@example.com") -> Customer:
    cmd = EnrolCommand([RawLink("email", email)], Profile(), Consents(), True, None)
    return container.customers.enrol(cmd, POS).customer


def by_id(customer: Customer) -> CustomerRef:
    return CustomerRef(customer_id=customer.customer_id)


def ledger_sum(container: Container, customer_id: str) -> int:
    return sum(e.points for e in TransactionRepository(container.table).all_ledger(customer_id))


def assert_balanced(container: Container, customer_id: str) -> Customer:
    customer = container.customers.get(customer_id)
    assert customer.points.available + customer.points.pending == ledger_sum(container, customer_id)
    return customer


class TestSales:
    def test_member_earns_ten_points_per_euro_paid_per_line(self, container: Container) -> None:
        jane = member(container)
        receipt = container.transactions.record(
            command("T1", [line("1", "2", "12.50"), line("2", "1", "9.99", "1.00")], by_id(jane)),
            POS,
            render=render_receipt,
        )
        assert receipt.points_earned == 250 + 89
        assert receipt.points_balance == 339
        assert receipt.member is True
        assert receipt.tier == "bronze"
        assert receipt.tier_changed is False
        assert receipt.points_if_member == 339

        jane = assert_balanced(container, jane.customer_id)
        assert jane.points.available == 339
        assert jane.points.lifetime == 339
        assert jane.stats.transactions == 1
        assert jane.stats.spend == Decimal("33.99")
        entries, _ = container.transactions.ledger(jane.customer_id, 50, None)
        assert [(e.points, e.reason.value, e.balance_after, e.remaining, e.actor) for e in entries] == [
            (339, "earn", 339, 339, "key-pos")
        ]
        record = container.transactions.get("ams-01", "T1")
        assert [rl.points for rl in record.lines] == [250, 89]
        assert record.channel == "pos"
        assert record.order_status is None

    def test_non_member_earns_nothing_but_learns_what_they_missed(self, container: Container) -> None:
        guest = container.customers.enrol(
            EnrolCommand([RawLink("email", "g@example.com")], Profile(), Consents(), False, None), POS
        ).customer
        receipt = container.transactions.record(
            command("T1", [line("1", "1", "20.00")], by_id(guest)), POS, render=render_receipt
        )
        assert (receipt.points_earned, receipt.points_balance, receipt.points_if_member) == (0, None, 200)
        assert receipt.member is False
        stored = container.customers.get(guest.customer_id)
        assert stored.stats.transactions == 1
        assert stored.points.available == 0
        assert ledger_sum(container, guest.customer_id) == 0

    def test_anonymous_sales_are_kept(self, container: Container) -> None:
        receipt = container.transactions.record(
            command("A1", [line("1", "1", "5.00")], None), POS, render=render_receipt
        )
        assert receipt.customer_id is None
        assert receipt.points_if_member == 50
        assert container.transactions.get("ams-01", "A1").total == Decimal("5.00")

    def test_guest_checkout_with_an_unknown_email_creates_one_non_member(self, container: Container) -> None:
        ref = CustomerRef(link_type="email", link_value="New.Guest@Example.com")
        first = container.transactions.record(
            command("W1", [line("1", "1", "10.00")], ref), WEB, render=render_receipt
        )
        second = container.transactions.record(
            command("W2", [line("1", "1", "30.00")], ref), WEB, render=render_receipt
        )
        assert first.customer_id is not None
        assert first.customer_id == second.customer_id
        guest = container.customers.lookup("email", "new.guest@example.com")
        assert guest.member is False
        assert guest.stats.transactions == 2
        assert guest.stats.spend == Decimal("40.00")
        history, _ = container.transactions.history(guest.customer_id, 50, None)
        assert [r.transaction_id for r in history] == ["W2", "W1"] or {r.transaction_id for r in history} == {
            "W1",
            "W2",
        }
        assert all(r.order_status is OrderStatus.PLACED for r in history)  # web-nl is an online store

    def test_bad_input_is_refused_and_nothing_is_written(self, container: Container, clock: Any) -> None:
        jane = member(container)
        cases = [
            (command("B1", [line("1", "1", "10.00")], by_id(jane), currency="USD"), ("body", "currency")),
            (
                command("B2", [line("1", "1", "10.00")], by_id(jane), total=Decimal("11.00")),
                ("body", "total"),
            ),
            (
                command("B3", [line("1", "1", "10.00")], by_id(jane), at=clock.now() + timedelta(days=1)),
                ("body", "occurred_at"),
            ),
            (
                command("B4", [line("1", "1", "10.00")], CustomerRef(customer_id="01NOBODY")),
                ("body", "customer", "customer_id"),
            ),
            (
                command("B5", [line("1", "1", "10.00")], CustomerRef(link_type="phone", link_value="12")),
                ("body", "customer", "link", "value"),
            ),
        ]
        for cmd, loc in cases:
            with pytest.raises(ValidationFailed) as caught:
                container.transactions.record(cmd, POS, render=render_receipt)
            assert loc in [e.loc for e in caught.value.errors], (cmd.transaction_id, caught.value.errors)
        with pytest.raises(Forbidden):
            container.transactions.record(
                command("B6", [line("1", "1", "1.00")], None, store="web-nl"), POS, render=render_receipt
            )
        with pytest.raises(ValidationFailed) as caught:
            container.transactions.record(
                command("B7", [line("1", "1", "1.00")], None, store="nowhere"), ADMIN, render=render_receipt
            )
        assert caught.value.errors[0].loc == ("body", "store_id")
        assert ledger_sum(container, jane.customer_id) == 0
        assert container.customers.get(jane.customer_id).stats.transactions == 0


class TestExactlyOnce:
    def test_replay_returns_the_first_receipt_and_a_changed_body_is_refused(
        self, container: Container
    ) -> None:
        jane = member(container)
        cmd = command("T1", [line("1", "1", "10.00")], by_id(jane))
        first = container.transactions.record(cmd, POS, render=render_receipt)
        with pytest.raises(IdempotentReplay) as replay:
            container.transactions.record(cmd, POS, render=render_receipt)
        assert json.loads(replay.value.body)["points_earned"] == first.points_earned == 100
        assert replay.value.status_code == 201
        with pytest.raises(IdempotencyKeyMismatch):
            container.transactions.record(
                command("T1", [line("1", "2", "10.00")], by_id(jane)), POS, render=render_receipt
            )
        assert assert_balanced(container, jane.customer_id).points.available == 100

    def test_fifty_concurrent_replays_earn_once_and_answer_alike(self, container: Container) -> None:
        jane = member(container)
        cmd = command("T-RACE", [line("1", "3", "7.00")], by_id(jane))

        def attempt(_: int) -> dict[str, Any]:
            try:
                receipt: Receipt = container.transactions.record(cmd, POS, render=render_receipt)
                from loyalty.api.models.transactions import ReceiptOut

                return json.loads(ReceiptOut.of(receipt).model_dump_json())
            except IdempotentReplay as replay:
                return json.loads(replay.body)

        with ThreadPoolExecutor(max_workers=16) as pool:
            bodies = list(pool.map(attempt, range(50)))
        assert all(body == bodies[0] for body in bodies)
        assert bodies[0]["points_earned"] == 210
        jane = assert_balanced(container, jane.customer_id)
        assert jane.points.available == 210
        assert jane.stats.transactions == 1

    def test_concurrent_sales_for_one_customer_all_count(self, container: Container) -> None:
        jane = member(container)

        def sale(i: int) -> int:
            return container.transactions.record(
                command(f"C{i}", [line("1", "1", "1.00")], by_id(jane)), POS, render=render_receipt
            ).points_earned

        with ThreadPoolExecutor(max_workers=10) as pool:
            earned = list(pool.map(sale, range(20)))
        assert earned == [10] * 20
        jane = assert_balanced(container, jane.customer_id)
        assert jane.points.available == 200
        assert jane.stats.transactions == 20
        entries = TransactionRepository(container.table).all_ledger(jane.customer_id)
        assert sorted(e.seq for e in entries) == list(range(1, 21))
        assert sorted(e.balance_after for e in entries) == list(range(10, 201, 10))


class TestReturns:
    def test_partial_returns_take_back_exactly_the_lines_pro_rata(self, container: Container) -> None:
        jane = member(container)
        container.transactions.record(
            command("S1", [line("a", "3", "3.33"), line("b", "1", "50.00")], by_id(jane)),
            POS,
            render=render_receipt,
        )  # a: 9.99 -> 99 points, b: 500 points
        takebacks = []
        for i in range(3):
            receipt = container.transactions.record(
                command(f"R{i}", [line("a", "1", "3.33")], None, kind=SaleType.RETURN, original="S1"),
                POS,
                render=render_receipt,
            )
            takebacks.append(-receipt.points_earned)
            assert receipt.customer_id == jane.customer_id  # the original names the customer
        assert takebacks == [33, 33, 33]
        with pytest.raises(ValidationFailed) as caught:
            container.transactions.record(
                command("R9", [line("a", "1", "3.33")], None, kind=SaleType.RETURN, original="S1"),
                POS,
                render=render_receipt,
            )
        assert caught.value.errors[0].loc == ("body", "lines", 0, "quantity")
        jane = assert_balanced(container, jane.customer_id)
        assert jane.points.available == 500
        assert jane.points.lifetime == 500
        assert sum(jane.earned_by_month.values()) == 500
        original = container.transactions.get("ams-01", "S1")
        assert original.points_reversed == 99
        assert original.line("a").returned_quantity == 3  # type: ignore[union-attr]

    def test_return_bigger_than_the_sale_or_of_unknown_lines_is_refused(self, container: Container) -> None:
        jane = member(container)
        container.transactions.record(
            command("S1", [line("a", "2", "5.00")], by_id(jane)), POS, render=render_receipt
        )
        with pytest.raises(ValidationFailed) as caught:
            container.transactions.record(
                command(
                    "R1",
                    [line("a", "3", "5.00"), line("zz", "1", "1.00")],
                    by_id(jane),
                    kind=SaleType.RETURN,
                    original="S1",
                ),
                POS,
                render=render_receipt,
            )
        assert [e.loc for e in caught.value.errors] == [
            ("body", "lines", 0, "quantity"),
            ("body", "lines", 1, "line_id"),
        ]
        with pytest.raises(ValidationFailed) as caught:
            container.transactions.record(
                command("R2", [line("a", "1", "5.00")], by_id(jane), kind=SaleType.RETURN, original="NOPE"),
                POS,
                render=render_receipt,
            )
        assert caught.value.errors[0].loc == ("body", "original_transaction_id")
        assert assert_balanced(container, jane.customer_id).points.available == 100

    def test_return_of_another_customers_sale_is_a_conflict(self, container: Container) -> None:
        jane = member(container, "jane@example.com")
        john = member(container, "john@example.com")
        container.transactions.record(
            command("S1", [line("a", "1", "5.00")], by_id(jane)), POS, render=render_receipt
        )
        with pytest.raises(TransactionCustomerMismatch):
            container.transactions.record(
                command("R1", [line("a", "1", "5.00")], by_id(john), kind=SaleType.RETURN, original="S1"),
                POS,
                render=render_receipt,
            )
        assert assert_balanced(container, jane.customer_id).points.available == 50
        assert assert_balanced(container, john.customer_id).points.available == 0

    def test_concurrent_returns_of_one_line_never_credit_twice(self, container: Container) -> None:
        jane = member(container)
        container.transactions.record(
            command("S1", [line("a", "2", "10.00")], by_id(jane)), POS, render=render_receipt
        )

        def give_back(i: int) -> str:
            try:
                container.transactions.record(
                    command(f"R{i}", [line("a", "1", "10.00")], None, kind=SaleType.RETURN, original="S1"),
                    POS,
                    render=render_receipt,
                )
                return "ok"
            except ValidationFailed:
                return "refused"

        with ThreadPoolExecutor(max_workers=6) as pool:
            outcomes = list(pool.map(give_back, range(6)))
        assert outcomes.count("ok") == 2
        jane = assert_balanced(container, jane.customer_id)
        assert jane.points.available == 0
        assert jane.points.lifetime == 0


class TestTiers:
    def test_tier_follows_points_earned_in_the_window_up_and_down(self, container: Container) -> None:
        jane = member(container)
        big = container.transactions.record(
            command("S1", [line("a", "1", "250.00")], by_id(jane)), POS, render=render_receipt
        )
        assert big.points_earned == 2500
        assert (big.tier, big.tier_changed) == ("silver", True)
        item = container.table.get("TXN#ams-01#S1", "TXN")
        assert item is not None
        # One event per sale: TransactionRecorded carries the earn (no PointsEarned for a sale).
        assert [e["detail_type"] for e in item["outbox"]] == ["TransactionRecorded", "TierChanged"]
        small = container.transactions.record(
            command("S2", [line("a", "1", "10.00")], by_id(jane)), POS, render=render_receipt
        )
        assert small.points_earned == 125  # silver earns 1.25x
        assert small.tier_changed is False
        back = container.transactions.record(
            command("R1", [line("a", "1", "250.00")], None, kind=SaleType.RETURN, original="S1"),
            POS,
            render=render_receipt,
        )
        assert back.points_earned == -2500
        assert (back.tier, back.tier_changed) == ("bronze", True)
        assert assert_balanced(container, jane.customer_id).tier == "bronze"
        returned = container.table.get("TXN#ams-01#R1", "TXN")
        assert returned is not None
        assert [e["detail_type"] for e in returned["outbox"]] == ["TransactionRecorded", "TierChanged"]


class TestEarnRules:
    def test_rules_by_store_attribute_channel_and_category(self, container: Container) -> None:
        programme = container.programme.current()
        container.programme.replace(
            programme.model_copy(
                update={
                    "earn_rules": [
                        EarnRule(
                            rule_id="coffee-x2",
                            name="Double points on coffee in coffee corners",
                            where=RuleWhere(store_attributes={"coffee_corner": True}),
                            categories=["coffee"],
                            multiplier=Decimal(2),
                        ),
                        EarnRule(
                            rule_id="online-bonus",
                            name="50 points for ordering online",
                            where=RuleWhere(channels=["online"]),
                            bonus_points=50,
                        ),
                    ]
                }
            )
        )
        jane = member(container)
        lines = [line("1", "1", "4.00", category="coffee"), line("2", "1", "4.00", category="cake")]
        in_store = container.transactions.record(
            command("S1", lines, by_id(jane)), POS, render=render_receipt
        )
        online = container.transactions.record(command("W1", lines, by_id(jane)), WEB, render=render_receipt)
        assert in_store.points_earned == 80 + 40
        assert online.points_earned == 40 + 40 + 50
        cancelled = container.transactions.set_order_status("web-nl", "W1", OrderStatus.CANCELLED, WEB)
        assert cancelled.points_earned == -130  # the bonus goes too
        assert assert_balanced(container, jane.customer_id).points.available == 120


class TestOrders:
    def test_order_moves_on_and_a_cancellation_reverses_all(self, container: Container) -> None:
        jane = member(container)
        container.transactions.record(
            command("W1", [line("1", "2", "15.00")], by_id(jane)), WEB, render=render_receipt
        )
        assert container.transactions.set_order_status(
            "web-nl", "W1", OrderStatus.SHIPPED, WEB
        ).order_status is (OrderStatus.SHIPPED)
        with pytest.raises(Forbidden):
            container.transactions.set_order_status("web-nl", "W1", OrderStatus.DELIVERED, POS)
        # A partial return first, then the rest of the order comes back.
        container.transactions.record(
            command("RW1", [line("1", "1", "15.00")], by_id(jane), kind=SaleType.RETURN, original="W1"),
            WEB,
            render=render_receipt,
        )
        receipt = container.transactions.set_order_status("web-nl", "W1", OrderStatus.RETURNED, WEB)
        assert receipt.points_earned == -150
        with pytest.raises(InvalidOrderTransition):
            container.transactions.set_order_status("web-nl", "W1", OrderStatus.SHIPPED, WEB)
        again = container.transactions.set_order_status("web-nl", "W1", OrderStatus.RETURNED, WEB)
        assert again.order_status is OrderStatus.RETURNED
        jane = assert_balanced(container, jane.customer_id)
        assert jane.points.available == 0
        reasons = [
            e.reason.value for e in TransactionRepository(container.table).all_ledger(jane.customer_id)
        ]
        assert reasons == ["return", "return", "earn"]

    def test_a_till_sale_is_not_an_order(self, container: Container) -> None:
        container.transactions.record(
            command("S1", [line("1", "1", "1.00")], None), POS, render=render_receipt
        )
        with pytest.raises(InvalidOrderTransition):
            container.transactions.set_order_status("ams-01", "S1", OrderStatus.CANCELLED, POS)


class TestSweep:
    def test_pending_points_mature_then_expire_with_a_ledger_entry(
        self, container: Container, clock: Any
    ) -> None:
        programme = container.programme.current()
        container.programme.replace(programme.model_copy(update={"pending_days": 14, "expiry_months": 24}))
        jane = member(container)
        container.transactions.record(
            command("S1", [line("1", "1", "30.00")], by_id(jane)), POS, render=render_receipt
        )
        jane = assert_balanced(container, jane.customer_id)
        assert (jane.points.available, jane.points.pending) == (0, 300)

        clock.advance(days=15)
        report = container.sweeper.run()
        assert report.matured == 1
        jane = assert_balanced(container, jane.customer_id)
        assert (jane.points.available, jane.points.pending) == (300, 0)

        clock.current = datetime(2027, 11, 2, tzinfo=UTC)  # the earn leaves the 12-month window
        report = container.sweeper.run()
        assert report.tier_reviews == 1
        assert container.sweeper.run().tier_reviews == 0  # nothing twice

        clock.current = datetime(2028, 11, 23, tzinfo=UTC)  # 24 months after the earn
        report = container.sweeper.run()
        assert (report.expired_lots, report.expired_points) == (1, 300)
        jane = assert_balanced(container, jane.customer_id)
        assert jane.points.available == 0
        entries = TransactionRepository(container.table).all_ledger(jane.customer_id)
        assert [(e.reason.value, e.points, e.balance_after) for e in entries] == [
            ("expire", -300, 0),
            ("earn", 300, 300),
        ]
        assert container.sweeper.run().expired_lots == 0

    def test_tier_drops_when_the_window_moves_on(self, container: Container, clock: Any) -> None:
        jane = member(container)
        container.transactions.record(
            command("S1", [line("1", "1", "300.00")], by_id(jane)), POS, render=render_receipt
        )
        assert container.customers.get(jane.customer_id).tier == "silver"
        clock.current = datetime(2027, 11, 1, 1, tzinfo=UTC)
        report = container.sweeper.run()
        assert report.tier_changes == 1
        assert container.customers.get(jane.customer_id).tier == "bronze"


class TestRetroCredit:
    def test_enrolling_credits_recent_purchases_once(self, container: Container, clock: Any) -> None:
        guest = container.customers.enrol(
            EnrolCommand([RawLink("email", "g@example.com")], Profile(), Consents(), False, None), WEB
        ).customer
        ref = by_id(guest)
        container.transactions.record(
            command("OLD", [line("1", "1", "99.00")], ref, at=clock.now()), POS, render=render_receipt
        )
        clock.advance(days=31)  # OLD is now outside the 30-day window
        container.transactions.record(
            command("S1", [line("1", "1", "20.00")], ref, at=clock.now()), POS, render=render_receipt
        )
        container.transactions.record(
            command("S2", [line("1", "2", "5.00")], ref, at=clock.now()), WEB, render=render_receipt
        )
        container.transactions.record(
            command("S3", [line("1", "1", "7.00")], ref, at=clock.now()), POS, render=render_receipt
        )
        container.transactions.record(
            command("R3", [line("1", "1", "7.00")], ref, kind=SaleType.RETURN, original="S3", at=clock.now()),
            POS,
            render=render_receipt,
        )  # returned purchases are not credited
        clock.advance(days=1)

        enrolled = container.customers.enrol(
            EnrolCommand([RawLink("email", "g@example.com")], Profile(), Consents(), True, None), POS
        ).customer

        assert enrolled.member
        assert enrolled.points.available == 200 + 100
        jane = assert_balanced(container, guest.customer_id)
        entries = TransactionRepository(container.table).all_ledger(jane.customer_id)
        assert sorted((e.transaction_id, e.points, e.reason.value) for e in entries) == [
            ("S1", 200, "retro_credit"),
            ("S2", 100, "retro_credit"),
        ]
        assert container.transactions.get("ams-01", "S1").line("1").points == 200  # type: ignore[union-attr]
        # A later return takes the credited points back like any earn.
        back = container.transactions.record(
            command(
                "R1", [line("1", "1", "20.00")], None, kind=SaleType.RETURN, original="S1", at=clock.now()
            ),
            POS,
            render=render_receipt,
        )
        assert back.points_earned == -200
        assert assert_balanced(container, jane.customer_id).points.available == 100
