"""Gift cards, customer accounts and holds against DynamoDB Local."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from loyalty.adapters.stored_value import StoredValueRepository
from loyalty.api.models.redemptions import render_redemption
from loyalty.api.models.stored_value import render_spent
from loyalty.bootstrap import Container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customers import Consents, CustomerRef, Profile
from loyalty.domain.errors import (
    CardExists,
    CardLocked,
    Forbidden,
    HoldNotCapturable,
    InsufficientBalance,
    InvalidPin,
    ValidationFailed,
)
from loyalty.domain.stored_value import AccountKind, is_valid_card_number
from loyalty.services.customers import EnrolCommand, RawLink
from loyalty.services.redemptions import RedeemCommand
from loyalty.services.replay import IdempotentReplay

POS = Principal("key-pos", KeyKind.POS, "ams-01")
WEB = Principal("key-web", KeyKind.WEB, "web-nl")
ADMIN = Principal("key-admin", KeyKind.ADMIN, None)


def balanced(container: Container, account_id: str) -> Any:
    account = container.stored_value._account(account_id)
    moves, _ = StoredValueRepository(container.table).ledger(account_id, 200, None)
    assert account.balance == sum(m.amount for m in moves)
    assert account.balance >= 0
    return account


def test_physical_card_partial_redemption_reload_and_ledger(container: Container) -> None:
    sold = container.stored_value.sell_gift_card(
        Decimal("50.00"), "EUR", None, POS, card_number="6036 0000 0000 0005"
    )
    number = sold.account.account_id
    assert number == "6036000000000005" and sold.pin is None
    with pytest.raises(CardExists):
        container.stored_value.sell_gift_card(Decimal("10"), "EUR", None, POS, card_number=number)
    with pytest.raises(ValidationFailed):
        container.stored_value.sell_gift_card(Decimal("10"), "EUR", None, POS, card_number="6036000000000004")
    with pytest.raises(ValidationFailed):
        container.stored_value.sell_gift_card(Decimal("10"), "USD", None, POS, card_number="6036000000000013")
    spent = container.stored_value.redeem(
        number, "G1", Decimal("20.00"), None, POS, "f1", render=render_spent
    )
    assert spent.account.balance == 3000
    with pytest.raises(IdempotentReplay):
        container.stored_value.redeem(number, "G1", Decimal("20.00"), None, POS, "f1", render=render_spent)
    with pytest.raises(InsufficientBalance) as caught:
        container.stored_value.redeem(number, "G2", Decimal("30.01"), None, POS, "f2", render=render_spent)
    assert caught.value.extra["available"] == "30.00"
    assert container.stored_value.reload(number, Decimal("5.00"), POS).balance == 3500
    account = balanced(container, number)
    assert account.available(container.clock.now()) == 3500
    moves, _ = StoredValueRepository(container.table).ledger(number, 50, None)
    assert [(m.reason, m.amount, m.balance_after, m.actor) for m in moves] == [
        ("reload", 500, 3500, "key-pos"),
        ("redeem", -2000, 3000, "key-pos"),
        ("activate", 5000, 5000, "key-pos"),
    ]


def test_e_card_pin_email_and_lockout(container: Container) -> None:
    sold = container.stored_value.sell_gift_card(
        Decimal("25"), "EUR", None, WEB, email="ann@example.com", name="Ann"
    )
    number, pin = sold.account.account_id, sold.pin
    assert pin is not None and is_valid_card_number(number) and number.startswith("6036")
    messages, _ = container.stored_value.messages(10, None)
    assert messages[0].to == "ann@example.com" and number in messages[0].body and pin in messages[0].body
    assert container.stored_value.balance(number, POS, None).balance == 2500  # a till needs no PIN
    assert container.stored_value.balance(number, WEB, pin).balance == 2500
    wrong = "000000" if pin != "000000" else "111111"
    for _ in range(4):
        with pytest.raises(InvalidPin):
            container.stored_value.balance(number, WEB, wrong)
    with pytest.raises(CardLocked):
        container.stored_value.balance(number, WEB, wrong)
    with pytest.raises(CardLocked):
        container.stored_value.balance(number, WEB, pin)  # locked even with the right PIN
    container.clock.advance(minutes=16)  # type: ignore[attr-defined]
    assert container.stored_value.balance(number, WEB, pin).balance == 2500


def test_hundred_concurrent_redemptions_of_ten_against_fifty(container: Container) -> None:
    number = container.stored_value.sell_gift_card(
        Decimal("50"), "EUR", None, POS, card_number="6036000000000013"
    ).account.account_id

    def attempt(i: int) -> str:
        try:
            container.stored_value.redeem(
                number, f"C{i}", Decimal("10"), None, POS, f"c{i}", render=render_spent
            )
            return "ok"
        except InsufficientBalance:
            return "insufficient"

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(attempt, range(100)))
    assert outcomes.count("ok") == 5
    assert balanced(container, number).balance == 0


def test_holds_capture_release_and_expiry(container: Container) -> None:
    number = container.stored_value.sell_gift_card(
        Decimal("100"), "EUR", None, WEB, card_number="6036000000000021"
    ).account.account_id
    hold = container.stored_value.hold(number, "H1", Decimal("60"), 3600, WEB)
    assert container.stored_value.hold(number, "H1", Decimal("60"), 3600, WEB) == hold  # a retried hold
    with pytest.raises(InsufficientBalance):
        container.stored_value.redeem(
            number, "R1", Decimal("50"), None, WEB, "r1", render=render_spent
        )  # 40 left to spend
    with pytest.raises(ValidationFailed):
        container.stored_value.capture("H1", Decimal("60.01"), WEB)
    captured, account = container.stored_value.capture("H1", Decimal("55"), WEB)
    assert (
        captured.status == "captured"
        and account.balance == 4500
        and account.available(container.clock.now()) == 4500
    )
    with pytest.raises(HoldNotCapturable):
        container.stored_value.release("H1", WEB)
    container.stored_value.hold(number, "H2", Decimal("40"), 60, WEB)
    _, account = container.stored_value.release("H2", WEB)
    assert account.available(container.clock.now()) == 4500
    container.stored_value.hold(number, "H3", Decimal("45"), 60, WEB)
    assert container.stored_value.balance(number, POS, None).available(container.clock.now()) == 0
    container.clock.advance(seconds=61)  # type: ignore[attr-defined]
    assert container.stored_value.balance(number, POS, None).available(container.clock.now()) == 4500
    with pytest.raises(HoldNotCapturable):
        container.stored_value.capture("H3", Decimal("10"), WEB)
    balanced(container, number)


def test_concurrent_redeem_reverse_and_capture_keep_balance_equal_to_ledger(container: Container) -> None:
    number = container.stored_value.sell_gift_card(
        Decimal("100"), "EUR", None, POS, card_number="6036000000000039"
    ).account.account_id
    cid = container.customers.enrol(
        EnrolCommand([RawLink("email", "sv@example.com")], Profile(), Consents(), True, None), POS
    ).customer.customer_id
    for i in range(3):
        container.stored_value.redeem(number, f"P{i}", Decimal("10"), None, POS, f"p{i}", render=render_spent)
    container.stored_value.hold(number, "HC", Decimal("20"), 3600, POS)

    def work(i: int) -> None:
        try:
            if i < 3:
                container.redemptions.reverse(f"P{i}", POS)
            elif i == 3:
                container.stored_value.capture("HC", Decimal("20"), POS)
            else:
                container.stored_value.redeem(
                    number, f"N{i}", Decimal("15"), None, POS, f"n{i}", render=render_spent
                )
        except InsufficientBalance:
            pass

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(10)))
    account = balanced(container, number)
    assert account.available(container.clock.now()) >= 0
    assert cid


def test_customer_accounts_and_stored_value_redemptions(container: Container) -> None:
    cid = container.customers.enrol(
        EnrolCommand([RawLink("email", "acc@example.com")], Profile(), Consents(), True, None), POS
    ).customer.customer_id
    credit = container.stored_value.issue_account(
        cid, AccountKind.MERCHANDISE_CREDIT, Decimal("12.50"), "EUR", None, POS
    )
    with pytest.raises(Forbidden):
        container.stored_value.issue_account(cid, AccountKind.PROMO_CASH, Decimal("5"), "EUR", None, POS)
    promo = container.stored_value.issue_account(
        cid, AccountKind.PROMO_CASH, Decimal("5"), "EUR", None, ADMIN
    )
    assert promo.expires_at is not None
    accounts = container.stored_value.accounts_of(cid)
    assert sorted((a.kind.value, a.balance) for a in accounts) == [
        ("merchandise_credit", 1250),
        ("promo_cash", 500),
    ]
    result = container.redemptions.redeem(
        RedeemCommand(
            "SV1",
            "stored_value",
            None,
            CustomerRef(customer_id=cid),
            "sv1",
            account_id=credit.account_id,
            amount=Decimal("10.00"),
        ),
        POS,
        render=render_redemption,
    )
    assert result.record.amount == 1000
    assert balanced(container, credit.account_id).balance == 250
    container.redemptions.reverse("SV1", POS)
    assert balanced(container, credit.account_id).balance == 1250
    container.clock.advance(days=91)  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="expired"):
        container.redemptions.redeem(
            RedeemCommand(
                "SV2",
                "stored_value",
                None,
                CustomerRef(customer_id=cid),
                "sv2",
                account_id=promo.account_id,
                amount=Decimal("1"),
            ),
            POS,
            render=render_redemption,
        )
    assert timedelta(days=1)
