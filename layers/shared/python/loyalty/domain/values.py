"""The strict shapes of values the contract names: ids, timestamps, points, money, quantities.

One place for every model (the API's in loyalty/api/models/common.py, and the programme, offer and
reward documents here in the domain), so a rule tightened here holds on every route. Each refuses
with a ValueError, which pydantic turns into a 422 naming the field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, StringConstraints, WithJsonSchema
from pydantic import Strict as StrictMode

# DynamoDB keys hold at most 1,024 bytes (2,048 for a partition key); every id a caller may send,
# in a path or a body, is far shorter than that, so a longer one is refused before it reaches a key.
MAX_ID = 64
Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID)]

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _sane_instant(value: datetime) -> datetime:
    # Converting to UTC is where 0001-01-01T00:00:00+14:00 or 9999-12-31T23:59:59-12:00 overflow (and
    # so does comparing them with any other instant): refuse them here, as bad input, not later as a 500.
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError("a timestamp between 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z")
    return value


def _rfc3339_text(value: Any) -> Any:
    # pydantic would also read a number as seconds since 1970; the contract's timestamps are strings.
    if not isinstance(value, str | datetime):
        raise ValueError("an RFC 3339 timestamp string such as 2026-11-22T10:00:00Z")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_sane_instant)]
"""An RFC 3339 instant with its offset, between 2000 and 2100 once in UTC."""

Points = Annotated[int, StrictMode()]
"""A JSON integer: not `true`, not `"5"`, not `5.0`."""

Count = Annotated[int, StrictMode()]
"""Any other whole number a caller sends (uses, seconds, limits): a JSON integer."""


def _decimal_text(places: int, example: str) -> Any:
    # Signs and extra places pass here so that the range and places checks that follow name them.
    pattern = re.compile(r"-?[0-9]{1,12}(\.[0-9]{1,12})?")

    def parse(value: Any) -> Any:
        if isinstance(value, Decimal):  # built in code, not read from a request
            return value
        # ASCII digits only: Decimal() reads "1e2" as 100 and Arabic-Indic digits as numbers too.
        if not isinstance(value, str) or pattern.fullmatch(value) is None:
            raise ValueError(
                f"a decimal string of digits with at most {places} decimal places, such as {example!r}"
            )
        return Decimal(value)

    return BeforeValidator(parse)


MoneyText = _decimal_text(2, "12.50")
QuantityText = _decimal_text(3, "1.5")
MoneySchema = WithJsonSchema(
    {"type": "string", "pattern": r"^[0-9]{1,12}(\.[0-9]{1,2})?$", "examples": ["12.50"]}
)
QuantitySchema = WithJsonSchema(
    {"type": "string", "pattern": r"^[0-9]{1,12}(\.[0-9]{1,3})?$", "examples": ["1"]}
)

Money = Annotated[Decimal, MoneyText, Field(ge=0, le=Decimal("10000000"), decimal_places=2), MoneySchema]
PositiveMoney = Annotated[
    Decimal, MoneyText, Field(gt=0, le=Decimal("100000"), decimal_places=2), MoneySchema
]
Quantity = Annotated[
    Decimal, QuantityText, Field(gt=0, le=Decimal("100000"), decimal_places=3), QuantitySchema
]


def checked_decimal(value: Any) -> Any:
    """For a number that may come as a JSON number or a string (an offer's effect value): what a
    string spells must be plain ASCII, without an exponent, like the money strings."""
    if isinstance(value, bool):
        raise ValueError("a number, not true or false")
    if isinstance(value, str):
        if not value.isascii():
            raise ValueError('a decimal number of ASCII digits, such as "10" or "2.50"')
        if re.fullmatch(r"[-+]?[0-9.]*[eE][-+]?[0-9]*", value.strip()):
            raise ValueError('a decimal number without an exponent, such as "10" or "2.50"')
    return value


Factor = Annotated[Decimal, BeforeValidator(checked_decimal)]
"""A multiplier or a percentage: a JSON number or a plain decimal string."""
