"""Customer events (behaviour beside purchases): the rules an event must meet to be kept.

Pure rules, no I/O. An event is checked alone: a bad one is rejected with the fields named, and the
others of its batch are kept. Known types validate their properties; any other type is kept as a
custom event with free properties. Where an event is stored and how it joins a customer is
services/customer_events.py's business.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ConfigDict, Field, ValidationError

from loyalty.domain import events as ev
from loyalty.domain.attributes import check_storable
from loyalty.domain.customers import CustomerRef
from loyalty.domain.errors import FieldError
from loyalty.domain.models import Model
from loyalty.domain.values import Money, Quantity

MAX_EVENTS = 100
MAX_BATCH_BYTES = 256 * 1024
MAX_PROPERTIES_BYTES = 8 * 1024
MAX_AGE = timedelta(days=400)  # app batches and offline tills send late; older is a bug
MAX_FUTURE = timedelta(minutes=5)  # clocks drift a little; an event from tomorrow is a bug


class _Props(Model):
    # Known types take extra properties (a brand's own context) beside the ones they require.
    model_config = ConfigDict(extra="allow")


Sku = Field(min_length=1, max_length=64)
Category = Field(min_length=1, max_length=64)
MessageId = Field(min_length=1, max_length=64)


class SiteVisit(_Props):
    url: str = Field(min_length=1, max_length=2048)


class ProductView(_Props):
    sku: str = Sku
    category: str = Category


class CartAdd(_Props):
    sku: str = Sku
    category: str = Category
    quantity: Quantity
    unit_price: Money


class Review(_Props):
    sku: str = Sku
    rating: int = Field(ge=1, le=5, strict=True)
    text: str = Field(min_length=1, max_length=4000)


class AppInstall(_Props):
    platform: str = Field(min_length=1, max_length=32)


class StoreVisit(_Props):
    pass


class MessageInteraction(_Props):
    message_id: str = MessageId


KNOWN_TYPES: dict[str, type[_Props]] = {
    "site_visit": SiteVisit,
    "product_view": ProductView,
    "cart_add": CartAdd,
    "review": Review,
    "app_install": AppInstall,
    "store_visit": StoreVisit,
    "email_open": MessageInteraction,
    "email_click": MessageInteraction,
    "sms_click": MessageInteraction,
}


def check_properties(type_: str, properties: dict[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    """The properties as they are kept (numbers and money of known types normalised) and, if any,
    what is wrong with them: locations relative to the event (`("properties", "rating")`)."""
    errors: list[FieldError] = []
    size = len(json.dumps(properties, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_PROPERTIES_BYTES:
        errors.append(
            FieldError(
                ("properties",),
                f"properties take at most {MAX_PROPERTIES_BYTES} bytes as JSON, not {size}",
            )
        )
        return properties, errors
    try:
        check_storable(properties)  # NaN, 1e400, empty keys: what the table cannot keep
    except ValueError as unstorable:
        return properties, [FieldError(("properties",), str(unstorable))]
    model = KNOWN_TYPES.get(type_)
    if model is None:
        return properties, errors
    try:
        parsed = model.model_validate(properties)
    except ValidationError as bad:
        for error in bad.errors(include_url=False):
            errors.append(FieldError(("properties", *error["loc"]), str(error["msg"]), str(error["type"])))
        return properties, errors
    kept = {**properties, **{k: _plain(getattr(parsed, k)) for k in type(parsed).model_fields}}
    return kept, errors


def _plain(value: Any) -> Any:
    # Money and quantities are kept as the decimal strings the contract uses everywhere.
    return str(value) if isinstance(value, Decimal) else value


def check_timing(occurred_at: datetime, now: datetime) -> list[FieldError]:
    if occurred_at > now + MAX_FUTURE:
        minutes = int(MAX_FUTURE.total_seconds() // 60)
        return [
            FieldError(
                ("occurred_at",),
                f"lies in the future (more than {minutes} minutes ahead of the platform's clock)",
            )
        ]
    if occurred_at < now - MAX_AGE:
        return [FieldError(("occurred_at",), f"is more than {MAX_AGE.days} days ago")]
    return []


@dataclass(frozen=True)
class EventInput:
    """One event as a caller sent it (shape already checked by the API model)."""

    event_id: str
    type: str
    store_id: str | None
    occurred_at: datetime
    customer: CustomerRef | None = None
    anonymous_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CustomerEvent:
    """An accepted event, as it is stored and published."""

    event_id: str
    store_id: str
    channel: str
    type: str
    occurred_at: datetime
    received_at: datetime
    properties: dict[str, Any]
    customer_id: str | None = None
    anonymous_id: str | None = None
    member: bool = False

    def detail(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "store_id": self.store_id,
            "channel": self.channel,
            "type": self.type,
            "customer_id": self.customer_id,
            "anonymous_id": self.anonymous_id,
            "member": self.member,
            "occurred_at": _iso(self.occurred_at),
            "received_at": _iso(self.received_at),
            "properties": self.properties,
        }

    def recorded(self) -> ev.DomainEvent:
        # The detail's `event_id` is the caller's (as the design note fixes it): consumers dedupe
        # these two types on (detail-type, store_id, event_id), so an attribution is not taken for
        # a replay of the recording.
        return ev.DomainEvent(ev.CUSTOMER_EVENT_RECORDED, self.detail())

    def attributed(self) -> ev.DomainEvent:
        """The event as if it had been sent with its customer (identification moved it)."""
        return ev.DomainEvent(ev.CUSTOMER_EVENT_ATTRIBUTED, self.detail())

    @property
    def summary(self) -> str:
        p = self.properties
        hint = p.get("sku") or p.get("url") or p.get("platform") or p.get("message_id")
        if self.type == "review" and "rating" in p:
            hint = f"{p.get('sku')} {p['rating']}/5"
        return f"{self.type.replace('_', ' ')}" + (f": {str(hint)[:80]}" if hint else "")


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
