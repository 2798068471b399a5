"""Double opt-in tokens: signed and bound to the customer, expiring, and never another token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loyalty.domain import confirmation, unsubscribe
from loyalty.domain.errors import InvalidConfirmationToken
from loyalty.domain.templates import Channel

KEY = "cursor-key-for-tests"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=7)


def test_a_token_names_its_customer_until_it_expires() -> None:
    token = confirmation.mint(KEY, "cust-1", LATER)
    assert confirmation.read(KEY, token, NOW) == "cust-1"
    assert confirmation.read(KEY, token, LATER - timedelta(seconds=1)) == "cust-1"
    with pytest.raises(InvalidConfirmationToken, match="expired"):
        confirmation.read(KEY, token, LATER)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t.replace("cust-1", "cust-2"),  # another customer
        lambda t: t.replace(str(int(LATER.timestamp())), str(int(LATER.timestamp()) + 86400)),  # longer
        lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),  # the mac
        lambda t: t.replace("c1.", "c2.", 1),
        lambda t: t.rsplit(".", 1)[0],  # cut short
        lambda t: "",
        lambda t: "c1.cust-1.-5.abc",
        lambda t: "c1.cust-1.99999999999999.abc",
    ],
)
def test_a_changed_or_cut_token_is_refused(tamper) -> None:  # type: ignore[no-untyped-def]
    token = confirmation.mint(KEY, "cust-1", LATER)
    with pytest.raises(InvalidConfirmationToken) as refused:
        confirmation.read(KEY, tamper(token), NOW)
    assert refused.value.errors[0].loc == ("query", "token")


def test_another_key_or_an_unsubscribe_mac_is_not_a_confirmation() -> None:
    with pytest.raises(InvalidConfirmationToken):
        confirmation.read("another-key", confirmation.mint(KEY, "cust-1", LATER), NOW)
    # The labels differ: the unsubscribe token's mac, moved into a confirmation's shape, is refused.
    u_mac = unsubscribe.mint(KEY, "cust-1", Channel.EMAIL).rsplit(".", 1)[1]
    with pytest.raises(InvalidConfirmationToken):
        confirmation.read(KEY, f"c1.cust-1.{int(LATER.timestamp())}.{u_mac}", NOW)


def test_a_customer_id_with_dots_is_read_whole() -> None:
    token = confirmation.mint(KEY, "a.b.c", LATER)
    assert confirmation.read(KEY, token, NOW) == "a.b.c"
