"""Cashback arithmetic: percent of the amount paid per line, in cents, rounded down; returns take
back each line's share with cumulative rounding; the cash never goes below zero."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from loyalty.domain.ledger import RecordedLine, TransactionRecord
from loyalty.domain.programme import Programme, default_programme
from loyalty.domain.sales import Line, SaleType, compute_cashback, compute_earn
from loyalty.domain.stored_value import Account, AccountKind, Hold, cash_to_take_back, cashback_account
from loyalty.domain.stores import Channel, Store

AMS = Store("ams-01", Channel.POS, "flagship", attributes={"coffee_corner": True})
WEB = Store("web-nl", Channel.ONLINE)
NOW = datetime(2026, 11, 22, 10, tzinfo=UTC)


def line(line_id: str, qty: str, price: str, discount: str = "0", category: str | None = "coffee") -> Line:
    return Line(line_id, "SKU", category, Decimal(qty), Decimal(price), Decimal(discount))


def programme(*rules: dict[str, Any]) -> Programme:
    body = default_programme().model_dump(mode="json")
    body["earn_rules"] = list(rules)
    return Programme.model_validate(body)


def cashback(percent: str, rule_id: str = "cb", days: int = 90, **conditions: Any) -> dict[str, Any]:
    return {
        "rule_id": rule_id,
        "name": rule_id,
        "cashback": {"percent": percent, "expires_days": days},
        **conditions,
    }


def test_percent_of_what_was_paid_after_discounts_rounded_down_per_line() -> None:
    given_ = compute_cashback(
        programme(cashback("5")), AMS, [line("1", "1", "3.99"), line("2", "2", "10.00", "0.50")], NOW
    )
    # 3.99 x 5% = 19.95 cents -> 19; (20.00 - 0.50) x 5% = 97.5 cents -> 97
    assert given_.line_cents == {"1": 19, "2": 97} and given_.total == 116
    assert given_.rules_applied == ("cb",) and given_.expires_days == 90


def test_the_best_percentage_per_line_and_the_longest_expiry_of_the_rules_that_gave() -> None:
    rules = programme(
        cashback("5", "all", 30),
        cashback("12.5", "online", 10, where={"channels": ["online"]}),
        cashback("2", "cake", 365, categories=["cake"]),
    )
    lines = [line("1", "1", "10.00"), line("2", "1", "10.00", category="cake")]
    in_store = compute_cashback(rules, AMS, lines, NOW)
    assert in_store.line_cents == {"1": 50, "2": 50}  # 5% beats the cake's 2%
    assert in_store.rules_applied == ("all",) and in_store.expires_days == 30
    online = compute_cashback(rules, WEB, lines, NOW)
    assert online.line_cents == {"1": 125, "2": 125} and online.expires_days == 10


def test_nothing_without_a_matching_rule_nor_for_free_lines_and_no_points_from_cashback_rules() -> None:
    rules = programme(cashback("5", categories=["coffee"], valid_until="2026-11-01T00:00:00Z"))
    assert compute_cashback(rules, AMS, [line("1", "1", "10.00")], NOW).total == 0  # expired rule
    live = programme(cashback("5", categories=["coffee"]))
    assert compute_cashback(live, AMS, [line("1", "1", "10.00", "10.00")], NOW).total == 0
    assert compute_cashback(live, AMS, [line("1", "1", "0.10")], NOW).total == 0  # half a cent
    # A cashback rule is not a points rule: points stay at the base rate.
    assert compute_earn(live, AMS, [line("1", "1", "10.00")], "bronze", NOW).total == 100


def sale_record(cents_by_line: dict[str, int], quantities: dict[str, str]) -> TransactionRecord:
    lines = tuple(
        RecordedLine(line(lid, qty, "1.00"), 0, cashback=cents_by_line.get(lid, 0))
        for lid, qty in quantities.items()
    )
    return TransactionRecord(
        "ams-01",
        "S1",
        SaleType.SALE,
        "pos",
        NOW,
        NOW,
        "c1",
        True,
        "EUR",
        Decimal("0"),
        lines,
        cashback=sum(cents_by_line.values()),
        cashback_account_id="acc",
    )


@given(
    cents=st.integers(min_value=0, max_value=10_000),
    parts=st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=7),
)
def test_returns_in_parts_take_back_exactly_what_the_line_gave_and_never_more(
    cents: int, parts: list[int]
) -> None:
    quantity = sum(parts)
    record = sale_record({"1": cents}, {"1": str(quantity)})
    taken = []
    for part in parts:
        back = record.cashback_back({"1": Decimal(part)})
        taken.append(back)
        record = record.with_returned({"1": Decimal(part)}, 0, back)
    assert sum(taken) == cents and all(t >= 0 for t in taken)
    assert record.cashback_reversed == cents


def test_a_return_claims_only_its_lines_share() -> None:
    record = sale_record({"1": 45, "2": 0}, {"1": "2", "2": "1"})
    assert record.cashback_back({"1": Decimal(1)}) == 22  # floor(45 / 2)
    assert record.cashback_back({"2": Decimal(1)}) == 0


def account(balance: int, held: int = 0) -> Account:
    holds = {"h": Hold("h", held, NOW + timedelta(hours=1))} if held else {}
    return Account("acc", AccountKind.PROMO_CASH, "EUR", balance, NOW, "c1", holds=holds)


def test_the_cash_comes_back_as_far_as_it_is_there_and_the_rest_is_a_shortfall() -> None:
    assert cash_to_take_back(account(60), 20, NOW) == (20, 0)
    assert cash_to_take_back(account(10), 60, NOW) == (10, 50)  # 50 spent already
    assert cash_to_take_back(account(60, held=50), 60, NOW) == (10, 50)  # a live hold keeps its part
    assert cash_to_take_back(account(60, held=50), 60, NOW + timedelta(hours=2)) == (60, 0)  # hold expired
    assert cash_to_take_back(None, 30, NOW) == (0, 30)
    assert cash_to_take_back(account(0), 0, NOW) == (0, 0)


def test_a_cashback_account_is_promotional_cash_that_expires() -> None:
    cash = cashback_account("acc", "c1", "EUR", 60, "ams-01", NOW, 90)
    assert cash.kind is AccountKind.PROMO_CASH and cash.balance == 60 and cash.ledger_seq == 1
    assert cash.expires_at == NOW + timedelta(days=90) and cash.available(NOW) == 60
    assert cash.available(NOW + timedelta(days=90)) == 0
