"""API models: common."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import (
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from loyalty.domain import links as link_rules
from loyalty.domain.attributes import check_storable
from loyalty.domain.customers import CustomerRef
from loyalty.domain.models import Model
from loyalty.domain.values import (  # the one set of value rules every model uses
    MAX_ID,
    Count,
    Id,
    Money,
    Points,
    PositiveMoney,
    Quantity,
    Timestamp,
)

__all__ = [
    "MAX_ID",
    "Count",
    "Id",
    "Money",
    "PathId",
    "PathLinkType",
    "PathLinkValue",
    "Points",
    "PositiveMoney",
    "Quantity",
    "Timestamp",
]

StoreId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


MAX_ATTRIBUTES = 50


MAX_ATTRIBUTES_BYTES = 4096


def money(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01'))}"


class Strict(Model):
    # Unknown fields are refused, not ignored: a typo in a till's payload must not pass silently.
    model_config = ConfigDict(extra="forbid")


def _check_attributes(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_ATTRIBUTES:
        raise ValueError(f"at most {MAX_ATTRIBUTES} attributes")
    check_storable(value)
    if len(json.dumps(value)) > MAX_ATTRIBUTES_BYTES:
        raise ValueError(f"attributes take at most {MAX_ATTRIBUTES_BYTES} bytes as JSON")
    for key in value:
        if not key or len(key) > 64:
            raise ValueError("attribute names have 1 to 64 characters")
    return value


def _check_birthday(value: date | None) -> date | None:
    if value is not None and not date(1900, 1, 1) <= value <= datetime.now(UTC).date():
        raise ValueError("birthday must be between 1900-01-01 and today")
    return value


# A path id longer than any id the platform issues or accepts names nothing: the repositories find no
# item for a key DynamoDB could not hold (loyalty.adapters.dynamo), so it is the route's own 404, as
# any unknown id is. Documented here so clients and the fuzzer know the bound.
PathId = Annotated[
    str, Path(min_length=1, description=f"at most {MAX_ID} characters; a longer id names nothing")
]
PathLinkType = Annotated[str, Path(min_length=1)]
PathLinkValue = Annotated[str, Path(min_length=1)]


CallerId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$")]

# The caller's own id for a call that creates value (a gift-card sale, a reload, merchandise credit
# or promotional cash, a coupon): optional, and like a transaction_id deduplicated for ever per store.
RequestId = Annotated[
    CallerId | None,
    Field(
        description="your id for this request: sent again (any Idempotency-Key, any time) it answers "
        "the first response and changes nothing; unique per store, for ever"
    ),
]


class LinkRefIn(Strict):
    type: str = Field(min_length=1, max_length=40)
    value: str = Field(min_length=1, max_length=254)


class CustomerRefIn(Strict):
    """Who bought: by platform id, or by a link (card, email ...); leave `customer` out when anonymous."""

    customer_id: str | None = Field(default=None, max_length=64)
    link: LinkRefIn | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> CustomerRefIn:
        if (self.customer_id is None) == (self.link is None):
            raise ValueError("give either customer_id or link")
        return self

    def to_ref(self) -> CustomerRef:
        if self.link is not None:
            return CustomerRef(link_type=self.link.type, link_value=self.link.value)
        return CustomerRef(customer_id=self.customer_id)


def _email(value: str) -> str:
    # Validated like an email link (email_validator loads only when an address comes in).
    try:
        return link_rules.normalise("email", value).value
    except link_rules.LinkInvalid as bad:
        raise ValueError(bad.msg) from None
