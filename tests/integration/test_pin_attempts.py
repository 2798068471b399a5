"""An e-card's PIN against guessing, under concurrency, on DynamoDB Local.

Given an e-card, when 64 wrong PINs arrive at once, then at most five are ever checked (each
attempt is counted before its PIN is looked at) and the card is locked, so that even the right
PIN is refused until the lock runs out. A missing PIN is refused without counting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from loyalty.api.models.stored_value import render_spent
from loyalty.bootstrap import Container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.errors import CardLocked, DomainError, InvalidPin, PinRequired
from loyalty.domain.stored_value import PIN_ATTEMPTS
from loyalty.services import account_access as stored_value_service

WEB = Principal("key-web", KeyKind.WEB, "web-nl")


def e_card(container: Container) -> tuple[str, str]:
    sold = container.stored_value.sell_gift_card(Decimal("25"), "EUR", None, WEB, email="pin@example.com")
    assert sold.pin is not None
    return sold.account.account_id, sold.pin


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every PIN the service actually compares with the card's."""
    seen: list[str] = []
    lock = threading.Lock()
    real: Callable[..., bool] = stored_value_service.pin_matches

    def counting(account: Any, pin: str, pepper: str) -> bool:
        with lock:
            seen.append(pin)
        return real(account, pin, pepper)

    monkeypatch.setattr(stored_value_service, "pin_matches", counting)
    return seen


def test_sixty_four_concurrent_wrong_pins_get_at_most_five_checks(
    container: Container, checked: list[str]
) -> None:
    number, pin = e_card(container)
    wrong = "000000" if pin != "000000" else "111111"

    def guess(_: int) -> str:
        try:
            container.stored_value.balance(number, WEB, wrong)
        except DomainError as error:
            return error.slug
        return "accepted"

    with ThreadPoolExecutor(max_workers=64) as pool:
        answers = list(pool.map(guess, range(64)))

    assert "accepted" not in answers
    assert len(checked) <= PIN_ATTEMPTS, f"{len(checked)} guesses were checked"
    assert answers.count("invalid-pin") <= PIN_ATTEMPTS - 1
    assert answers.count("card-locked") >= 64 - PIN_ATTEMPTS
    with pytest.raises(CardLocked):
        container.stored_value.balance(number, WEB, pin)  # the right PIN, after the lock: refused
    assert len(checked) <= PIN_ATTEMPTS  # and not even looked at

    container.clock.advance(minutes=16)  # type: ignore[attr-defined]
    assert container.stored_value.balance(number, WEB, pin).balance == 2500


def test_a_missing_pin_is_refused_without_counting(container: Container, checked: list[str]) -> None:
    number, pin = e_card(container)
    for _ in range(PIN_ATTEMPTS + 2):
        with pytest.raises(PinRequired):
            container.stored_value.balance(number, WEB, None)
        with pytest.raises(PinRequired):
            container.stored_value.balance(number, WEB, "")
    assert checked == []
    assert container.stored_value._account(number).pin_failures == 0
    assert container.stored_value.balance(number, WEB, pin).balance == 2500


def test_a_right_pin_clears_the_count_and_the_fifth_wrong_one_locks(container: Container) -> None:
    number, pin = e_card(container)
    wrong = "000000" if pin != "000000" else "111111"
    for _ in range(PIN_ATTEMPTS - 1):
        with pytest.raises(InvalidPin):
            container.stored_value.balance(number, WEB, wrong)
    assert container.stored_value.balance(number, WEB, pin).balance == 2500  # the count starts again
    for left in range(PIN_ATTEMPTS - 1, 0, -1):
        with pytest.raises(InvalidPin) as caught:
            container.stored_value.balance(number, WEB, wrong)
        assert caught.value.extra["attempts_left"] == left
    with pytest.raises(CardLocked):
        container.stored_value.balance(number, WEB, wrong)
    # A balance movement meanwhile (a till redeems: no PIN) leaves the lock as it is.
    till = Principal("key-pos", KeyKind.POS, "ams-01")
    container.stored_value.redeem(number, "PIN-R1", Decimal("1"), None, till, "f", render=render_spent)
    with pytest.raises(CardLocked):
        container.stored_value.balance(number, WEB, pin)
