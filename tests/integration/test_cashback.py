"""Cashback on sales against DynamoDB Local: credited once with the sale, reversed like points."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any

from loyalty.adapters.stored_value import StoredValueRepository
from loyalty.adapters.transactions import transaction_from_item
from loyalty.api.models.transactions import render_receipt
from loyalty.bootstrap import Container
from loyalty.domain.customers import Consents, Profile
from loyalty.domain.programme import Programme
from loyalty.domain.sales import OrderStatus, SaleType
from loyalty.domain.stored_value import Account, AccountKind
from loyalty.services.customers import EnrolCommand, RawLink
from loyalty.services.receipts import detail_from_record
from loyalty.services.replay import IdempotentReplay
from tests.conftest import FixedClock
from tests.integration.test_transactions import POS, WEB, by_id, command, line, member

FIVE_PERCENT_COFFEE = {
    "rule_id": "coffee-cashback",
    "name": "5% back on coffee",
    "categories": ["coffee"],
    "cashback": {"percent": "5", "expires_days": 90},
}


def with_rules(container: Container, *rules: dict[str, Any]) -> None:
    body = container.programme.current().model_dump(mode="json")
    body["earn_rules"] = list(rules)
    container.programme.replace(Programme.model_validate(body))


def cash_accounts(container: Container, customer_id: str) -> list[Account]:
    return [a for a in container.accounts.accounts_of(customer_id) if a.kind is AccountKind.PROMO_CASH]


def movements(container: Container, account_id: str) -> list[Any]:
    moves, _ = StoredValueRepository(container.table).ledger(account_id, 100, None)
    return list(reversed(moves))


def assert_cash_balanced(container: Container, account: Account) -> Account:
    stored = StoredValueRepository(container.table).get(account.account_id)
    assert stored is not None
    assert stored.balance == sum(m.amount for m in movements(container, account.account_id))
    assert stored.balance >= 0
    return stored


def body(receipt: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(render_receipt(receipt))
    return parsed


COFFEES = [line("1", "3", "4.00", category="coffee"), line("2", "1", "9.99", category="cake")]


def test_a_members_sale_credits_promotional_cash_in_the_same_transaction(
    container: Container, clock: FixedClock
) -> None:
    with_rules(container, FIVE_PERCENT_COFFEE)
    jane = member(container)
    receipt = container.transactions.record(command("S1", COFFEES, by_id(jane)), POS, render=render_receipt)
    [account] = cash_accounts(container, jane.customer_id)
    out = body(receipt)["cashback"]
    assert out == {
        "amount": "0.60",  # 5% of 12.00 paid for coffee; the cake gives nothing
        "currency": "EUR",
        "account_id": account.account_id,
        "expires_at": "2027-02-20T10:00:00Z",  # 90 days after it was credited
        "shortfall": "0.00",
    }
    assert receipt.points_earned == 120 + 99  # points as before: cashback rules give no points
    assert account.balance == 60 and account.customer_id == jane.customer_id
    assert [
        (m.reason, m.amount, m.transaction_id, m.store_id) for m in movements(container, account.account_id)
    ] == [("cashback", 60, "S1", "ams-01")]
    record = container.transactions.get("ams-01", "S1")
    assert [rl.cashback for rl in record.lines] == [
        60,
        0,
    ] and record.cashback_account_id == account.account_id


def test_a_replayed_sale_credits_nothing_more_even_at_once(container: Container) -> None:
    with_rules(container, FIVE_PERCENT_COFFEE)
    jane = member(container)
    sale = command("S1", COFFEES, by_id(jane))

    def send(_: int) -> str:
        try:
            return render_receipt(container.transactions.record(sale, POS, render=render_receipt))
        except IdempotentReplay as replay:
            return replay.body

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = set(pool.map(send, range(16)))
    assert len(answers) == 1  # every replay answers as the first call did
    [account] = cash_accounts(container, jane.customer_id)
    assert assert_cash_balanced(container, account).balance == 60


def test_the_best_percentage_per_line_rounded_down_to_the_cent(container: Container) -> None:
    ten = {
        **FIVE_PERCENT_COFFEE,
        "rule_id": "ten",
        "skus": ["ESP"],
        "cashback": {"percent": "10", "expires_days": 30},
    }
    with_rules(container, FIVE_PERCENT_COFFEE, ten)
    jane = member(container)
    lines = [
        line("1", "1", "3.99", sku="ESP", category="coffee"),
        line("2", "1", "3.99", sku="LAT", category="coffee"),
    ]
    receipt = container.transactions.record(command("S1", lines, by_id(jane)), POS, render=render_receipt)
    # 10% of 3.99 = 39.9 cents -> 39; 5% of 3.99 = 19.95 cents -> 19. The longest expiry of the two.
    assert body(receipt)["cashback"]["amount"] == "0.58"
    assert body(receipt)["cashback"]["expires_at"] == "2027-02-20T10:00:00Z"


def test_non_members_get_no_cash_but_hear_what_they_would_have(container: Container) -> None:
    with_rules(container, FIVE_PERCENT_COFFEE)
    guest = container.customers.enrol(
        EnrolCommand([RawLink("email", "g@example.com")], Profile(), Consents(), False, None), POS
    ).customer
    receipt = container.transactions.record(command("S1", COFFEES, by_id(guest)), POS, render=render_receipt)
    assert body(receipt)["cashback"] is None and body(receipt)["cashback_if_member"] == "0.60"
    assert cash_accounts(container, guest.customer_id) == []
    anonymous = container.transactions.record(command("S2", COFFEES, None), POS, render=render_receipt)
    assert body(anonymous)["cashback_if_member"] == "0.60"


def test_a_partial_return_takes_back_exactly_its_lines_share(container: Container) -> None:
    with_rules(container, FIVE_PERCENT_COFFEE)
    jane = member(container)
    container.transactions.record(command("S1", COFFEES, by_id(jane)), POS, render=render_receipt)
    [account] = cash_accounts(container, jane.customer_id)
    first = container.transactions.record(
        command(
            "R1",
            [line("1", "1", "4.00", category="coffee")],
            by_id(jane),
            kind=SaleType.RETURN,
            original="S1",
        ),
        POS,
        render=render_receipt,
    )
    assert body(first)["cashback"] == {
        "amount": "-0.20",
        "currency": "EUR",
        "account_id": account.account_id,
        "expires_at": "2027-02-20T10:00:00Z",
        "shortfall": "0.00",
    }
    assert assert_cash_balanced(container, account).balance == 40
    cake = container.transactions.record(
        command(
            "R2", [line("2", "1", "9.99", category="cake")], by_id(jane), kind=SaleType.RETURN, original="S1"
        ),
        POS,
        render=render_receipt,
    )
    assert body(cake)["cashback"] is None  # the cake gave no cashback
    rest = container.transactions.record(
        command(
            "R3",
            [line("1", "2", "4.00", category="coffee")],
            by_id(jane),
            kind=SaleType.RETURN,
            original="S1",
        ),
        POS,
        render=render_receipt,
    )
    assert body(rest)["cashback"]["amount"] == "-0.40"
    assert assert_cash_balanced(container, account).balance == 0
    assert [
        (m.reason, m.amount, m.transaction_id, m.original_transaction_id)
        for m in movements(container, account.account_id)
    ] == [
        ("cashback", 60, "S1", None),
        ("return", -20, "R1", "S1"),
        ("return", -40, "R3", "S1"),
    ]
    assert container.transactions.get("ams-01", "S1").cashback_reversed == 60


def test_a_return_after_the_cash_was_spent_takes_what_is_left_and_records_the_shortfall(
    container: Container,
) -> None:
    with_rules(container, FIVE_PERCENT_COFFEE)
    jane = member(container)
    container.transactions.record(command("S1", COFFEES, by_id(jane)), POS, render=render_receipt)
    [account] = cash_accounts(container, jane.customer_id)
    container.accounts.redeem(
        account.account_id,
        "spend-1",
        Decimal("0.50"),
        "ams-01",
        POS,
        "fp",
        customer_id=jane.customer_id,
        render=lambda spent: "{}",
    )
    back = container.transactions.record(
        command(
            "R1",
            [line("1", "3", "4.00", category="coffee")],
            by_id(jane),
            kind=SaleType.RETURN,
            original="S1",
        ),
        POS,
        render=render_receipt,
    )
    assert body(back)["cashback"]["amount"] == "-0.10" and body(back)["cashback"]["shortfall"] == "0.50"
    assert assert_cash_balanced(container, account).balance == 0  # never below zero
    record = container.transactions.get("ams-01", "S1")
    assert (record.cashback_reversed, record.cashback_shortfall) == (60, 50)
    recorded = container.transactions.get("ams-01", "R1")
    assert (recorded.cashback, recorded.cashback_shortfall) == (-10, 50)


def test_a_cancelled_order_reverses_all_its_cashback(container: Container) -> None:
    with_rules(container, FIVE_PERCENT_COFFEE)
    jane = member(container)
    container.transactions.record(
        command("O1", COFFEES, by_id(jane), store="web-nl"), WEB, render=render_receipt
    )
    [account] = cash_accounts(container, jane.customer_id)
    container.transactions.record(
        command(
            "R1",
            [line("1", "1", "4.00", category="coffee")],
            by_id(jane),
            kind=SaleType.RETURN,
            original="O1",
            store="web-nl",
        ),
        WEB,
        render=render_receipt,
    )
    cancelled = container.transactions.set_order_status("web-nl", "O1", OrderStatus.CANCELLED, WEB)
    assert (cancelled.cashback, cancelled.cashback_shortfall) == (-40, 0)
    assert assert_cash_balanced(container, account).balance == 0
    assert [(m.reason, m.amount, m.transaction_id) for m in movements(container, account.account_id)] == [
        ("cashback", 60, "O1"),
        ("return", -20, "R1"),
        ("cancel", -40, "O1"),
    ]


def test_a_backdated_sale_gives_no_cashback(container: Container, clock: FixedClock) -> None:
    with_rules(container, FIVE_PERCENT_COFFEE)
    jane = member(container)
    old = command("S1", COFFEES, by_id(jane), at=clock.now() - timedelta(days=60))
    receipt = container.transactions.record(old, POS, render=render_receipt)
    assert body(receipt)["cashback"] is None and cash_accounts(container, jane.customer_id) == []


def test_the_sales_event_says_what_was_credited(container: Container) -> None:
    with_rules(container, FIVE_PERCENT_COFFEE)
    jane = member(container)
    container.transactions.record(command("S1", COFFEES, by_id(jane)), POS, render=render_receipt)
    item = container.table.get("TXN#ams-01#S1", "TXN")
    assert item is not None
    # The outbox names the record for the fields it holds; the publisher renders them back.
    detail = json.loads(detail_from_record(item["outbox"][0], transaction_from_item(item)))
    assert detail["cashback"] == "0.60" and detail["cashback_if_member"] == "0.60"
    assert detail["cashback_account_id"] == cash_accounts(container, jane.customer_id)[0].account_id


def test_programmes_without_cashback_create_no_accounts(container: Container) -> None:
    jane = member(container)
    receipt = container.transactions.record(command("S1", COFFEES, by_id(jane)), POS, render=render_receipt)
    assert body(receipt)["cashback"] is None and body(receipt)["cashback_if_member"] == "0.00"
    assert cash_accounts(container, jane.customer_id) == []
