"""API models: customer events (POST /v1/events)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError

from loyalty.api.models.common import CallerId, CustomerRefIn, StoreId, Strict, Timestamp
from loyalty.domain.customer_events import MAX_EVENTS, EventInput
from loyalty.domain.errors import FieldError
from loyalty.domain.links import ANONYMOUS_ID_PATTERN, ANONYMOUS_ID_RULE
from loyalty.domain.models import Model
from loyalty.services.customer_events import IngestResult

EVENT_TYPES = (
    "site_visit {url}, product_view {sku, category}, cart_add {sku, category, quantity, unit_price}, "
    "review {sku, rating 1-5, text}, app_install {platform}, store_visit {}, email_open / email_click / "
    "sms_click {message_id}; any other type is kept as a custom event with free properties"
)


class EventIn(Strict):
    """One event; checked alone (a bad one is rejected with its fields named, the others kept)."""

    event_id: CallerId = Field(description="your id for the event: unique per store, deduplicated for ever")
    type: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$", description=EVENT_TYPES)
    store_id: StoreId | None = Field(default=None, description="defaults to the key's store")
    occurred_at: Timestamp = Field(description="up to 400 days ago, at most 5 minutes ahead")
    customer: CustomerRefIn | None = None
    anonymous_id: str | None = Field(
        default=None,
        pattern=ANONYMOUS_ID_PATTERN.pattern,
        description=f"the anonymous visitor ({ANONYMOUS_ID_RULE}); with `customer` it identifies the visitor",
    )
    properties: dict[str, Any] = Field(default_factory=dict, description="at most 8 KiB as JSON")

    def to_input(self) -> EventInput:
        return EventInput(
            event_id=self.event_id,
            type=self.type,
            store_id=self.store_id,
            occurred_at=self.occurred_at,
            customer=self.customer.to_ref() if self.customer else None,
            anonymous_id=self.anonymous_id,
            properties=self.properties,
        )


class EventBatchIn(Strict):
    store_id: StoreId | None = Field(
        default=None, description="the store of every event that names none (default: the key's store)"
    )
    # Any JSON value per event: one that is not even an object is rejected alone, like any bad event.
    events: list[Any] = Field(
        min_length=1,
        max_length=MAX_EVENTS,
        description=f"1 to {MAX_EVENTS} events, at most 256 KiB a call; each {{event_id, type, store_id, "
        "occurred_at, customer: {customer_id} | {link: {type, value}}, anonymous_id, properties}",
    )

    def parsed(self) -> tuple[list[tuple[int, EventInput]], list[tuple[int, list[FieldError]]]]:
        """Each event's shape checked alone: the good ones, and the bad ones with their errors."""
        good: list[tuple[int, EventInput]] = []
        bad: list[tuple[int, list[FieldError]]] = []
        for index, raw in enumerate(self.events):
            if not isinstance(raw, dict):
                bad.append((index, [FieldError(("body", "events", index), "an event is a JSON object")]))
                continue
            try:
                event = EventIn.model_validate(raw)
                if event.store_id is None:
                    event.store_id = self.store_id
                good.append((index, event.to_input()))
            except ValidationError as invalid:
                bad.append(
                    (
                        index,
                        [
                            FieldError(("body", "events", index, *e["loc"]), str(e["msg"]), str(e["type"]))
                            for e in invalid.errors(include_url=False)
                        ],
                    )
                )
        return good, bad


class FieldErrorOut(Model):
    loc: list[str | int]
    msg: str
    type: str


class RejectedEventOut(Model):
    index: int
    errors: list[FieldErrorOut]


class EventResultOut(Model):
    index: int
    event_id: str
    status: str = Field(description="accepted | duplicate | rejected")
    customer_id: str | None = Field(description="whose timeline it is on (null: anonymous, or not kept)")
    note: str | None = Field(
        description="anonymous-id-of-another-customer (kept on the named customer, the anonymous id "
        "not linked), anonymous-id-not-linked (the profile could not take it now), placeholder-link"
    )
    points_if_member: int = Field(
        default=0,
        description="an accepted event of a non-member or an anonymous visitor: the points the "
        "programme's event earn rules give a member for it (before limits); members earn through the "
        "activity worker, within seconds",
    )


class EventsAcceptedOut(Model):
    accepted: int
    duplicates: int
    rejected: list[RejectedEventOut]
    results: list[EventResultOut] = Field(description="one per event, in the order sent")

    @classmethod
    def of(cls, result: IngestResult) -> EventsAcceptedOut:
        return cls(
            accepted=result.accepted,
            duplicates=result.duplicates,
            rejected=[
                RejectedEventOut(
                    index=index,
                    errors=[FieldErrorOut(loc=list(e.loc), msg=e.msg, type=e.type) for e in errors],
                )
                for index, errors in result.rejected
            ],
            results=[
                EventResultOut(
                    index=o.index,
                    event_id=o.event_id,
                    status=o.status,
                    customer_id=o.customer_id,
                    note=o.note,
                    points_if_member=o.points_if_member,
                )
                for o in result.results
            ],
        )
