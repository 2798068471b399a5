"""Identifiers the platform generates."""

from __future__ import annotations

import re
import secrets

# EAN-13 numbers starting with 2 are reserved for in-store use, so a loyalty card can never
# collide with a product barcode scanned at the same till.
_CARD_PREFIX = "29"


def new_id() -> str:
    # Imported on first use: python-ulid builds its base32 tables at import (about 15 ms of every
    # function's cold start), and most requests create no id.
    from ulid import ULID

    return str(ULID())


def ean13_check_digit(first12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)


def luhn_check_digit(digits: str) -> str:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return len(number) >= 2 and number.isdigit() and luhn_check_digit(number[:-1]) == number[-1]


def new_card_number(scheme: str | None = None) -> str:
    """A 13-digit card: EAN-13 by default; under a Luhn programme the last digit is Luhn's, so the
    cards the platform issues pass the check the programme applies to the cards tills send."""
    body = _CARD_PREFIX + "".join(secrets.choice("0123456789") for _ in range(10))
    if scheme == "luhn":
        return body + luhn_check_digit(body)
    return body + ean13_check_digit(body)


def is_valid_card_number(number: str) -> bool:
    return len(number) == 13 and number.isdigit() and ean13_check_digit(number[:12]) == number[12]


_OPAQUE_ID = re.compile(r"^[0-9A-Za-z_.-]{1,64}$")


def is_plausible_id(value: str) -> bool:
    """Ids we generated are ULIDs; anything far from that shape cannot name a record."""
    return bool(_OPAQUE_ID.match(value))


_CALLER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$")


def is_caller_id(value: str) -> bool:
    """The shape of an id a caller owns (redemption_id, hold_id), as the API models take it."""
    return bool(_CALLER_ID.match(value))
