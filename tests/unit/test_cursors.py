"""The sealing of list cursors (loyalty.api.cursors): bound, tamper-evident and short-lived."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loyalty.api.cursors import CURSOR_TTL_SECONDS, CursorSeal, list_binding
from loyalty.domain.errors import InvalidCursor

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
LIST_A = list_binding("/v1/customers/{customer_id}/ledger", {"customer_id": "A"}, {"limit": "1"})


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def seal(clock: Clock, key: str = "k" * 64) -> CursorSeal:
    return CursorSeal(key=lambda: key, now=clock)


def test_a_cursor_opens_for_its_list_whatever_the_limit() -> None:
    clock = Clock()
    token = seal(clock).seal("inner", LIST_A)
    assert token is not None and "inner" not in token.split(".")[2]
    same_list = list_binding("/v1/customers/{customer_id}/ledger", {"customer_id": "A"}, {"limit": "50"})
    assert seal(clock).open(token, same_list) == "inner"
    assert seal(clock).seal(None, LIST_A) is None and seal(clock).open(None, LIST_A) is None


@pytest.mark.parametrize(
    "other",
    [
        list_binding("/v1/customers/{customer_id}/ledger", {"customer_id": "B"}, None),
        list_binding("/v1/customers/{customer_id}/transactions", {"customer_id": "A"}, None),
        list_binding("/v1/customers/{customer_id}/ledger", {"customer_id": "A"}, {"types": "sale"}),
    ],
)
def test_a_cursor_does_not_open_for_another_list_id_or_filter(other: str) -> None:
    clock = Clock()
    token = seal(clock).seal("inner", LIST_A)
    with pytest.raises(InvalidCursor) as refused:
        seal(clock).open(token, other)
    assert refused.value.errors[0].loc == ("query", "cursor")


def test_a_cursor_signed_with_another_key_is_refused() -> None:
    clock = Clock()
    token = seal(clock, "old-key").seal("inner", LIST_A)
    with pytest.raises(InvalidCursor):
        seal(clock, "new-key").open(token, LIST_A)


@pytest.mark.parametrize("age", [timedelta(seconds=CURSOR_TTL_SECONDS + 1), timedelta(minutes=-10)])
def test_a_stale_or_future_cursor_is_refused(age: timedelta) -> None:
    clock = Clock()
    token = seal(clock).seal("inner", LIST_A)
    clock.now = T0 + age
    with pytest.raises(InvalidCursor, match="expired"):
        seal(clock).open(token, LIST_A)


@pytest.mark.parametrize("garbage", ["x", "c1.a.b", "c2.a.b", "c1..", "a.b.c.d"])
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(InvalidCursor):
        seal(Clock()).open(garbage, LIST_A)
