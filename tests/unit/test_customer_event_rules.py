"""The rules an event must meet: each known type's properties, the size limits, the time window,
the anonymous id's shape, and the batch's shape as the API reads it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from loyalty.adapters.timeline import timeline_fields
from loyalty.api.models.events import EventBatchIn
from loyalty.domain import links
from loyalty.domain.customer_events import (
    MAX_PROPERTIES_BYTES,
    CustomerEvent,
    check_properties,
    check_timing,
)

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

VALID: dict[str, dict[str, Any]] = {
    "site_visit": {"url": "https://shop.example/"},
    "product_view": {"sku": "S1", "category": "coffee"},
    "cart_add": {"sku": "S1", "category": "coffee", "quantity": "2", "unit_price": "3.50"},
    "review": {"sku": "S1", "rating": 4, "text": "nice"},
    "app_install": {"platform": "ios"},
    "store_visit": {},
    "email_open": {"message_id": "M1"},
    "email_click": {"message_id": "M1"},
    "sms_click": {"message_id": "M1"},
}

# For each known type, one property missing or wrong, and where the error must point.
INVALID: list[tuple[str, dict[str, Any], tuple[str | int, ...]]] = [
    ("site_visit", {}, ("properties", "url")),
    ("product_view", {"sku": "S1"}, ("properties", "category")),
    ("cart_add", {**VALID["cart_add"], "quantity": "-1"}, ("properties", "quantity")),
    ("cart_add", {**VALID["cart_add"], "unit_price": 3.5}, ("properties", "unit_price")),
    ("review", {**VALID["review"], "rating": 0}, ("properties", "rating")),
    ("review", {**VALID["review"], "rating": 6}, ("properties", "rating")),
    ("review", {**VALID["review"], "rating": "5"}, ("properties", "rating")),
    ("review", {"sku": "S1", "rating": 3}, ("properties", "text")),
    ("app_install", {"platform": ""}, ("properties", "platform")),
    ("email_open", {}, ("properties", "message_id")),
    ("email_click", {"message_id": 5}, ("properties", "message_id")),
    ("sms_click", {}, ("properties", "message_id")),
]


@pytest.mark.parametrize("type_", sorted(VALID))
def test_each_known_type_takes_its_properties(type_: str) -> None:
    kept, errors = check_properties(type_, {**VALID[type_], "extra": "kept"})
    assert errors == []
    assert kept["extra"] == "kept"


@pytest.mark.parametrize(("type_", "properties", "loc"), INVALID)
def test_each_known_type_names_a_bad_property(
    type_: str, properties: dict[str, Any], loc: tuple[str, ...]
) -> None:
    _, errors = check_properties(type_, properties)
    assert [e.loc for e in errors] == [loc]


def test_money_and_quantities_are_kept_as_decimal_strings() -> None:
    kept, _ = check_properties("cart_add", {**VALID["cart_add"], "unit_price": "3.5"})
    assert kept["unit_price"] == "3.5" and kept["quantity"] == "2"


def test_unknown_types_keep_free_properties() -> None:
    kept, errors = check_properties("wishlist_add", {"anything": [1, {"nested": True}]})
    assert errors == [] and kept == {"anything": [1, {"nested": True}]}


def test_properties_are_at_most_8_kib() -> None:
    fits = {"blob": "x" * (MAX_PROPERTIES_BYTES - 20)}
    assert check_properties("custom", fits)[1] == []
    _, errors = check_properties("custom", {"blob": "x" * MAX_PROPERTIES_BYTES})
    assert [e.loc for e in errors] == [("properties",)]
    _, errors = check_properties("review", {"blob": "é" * 5000})  # bytes, not characters
    assert [e.loc for e in errors] == [("properties",)]


@pytest.mark.parametrize("bad", [{"x": float("nan")}, {"x": 1e308 * 10}, {"": 1}, {"x": 10**40}])
def test_properties_the_table_cannot_keep_are_refused(bad: dict[str, Any]) -> None:
    _, errors = check_properties("custom", bad)
    assert [e.loc for e in errors] == [("properties",)]


@pytest.mark.parametrize(
    ("offset", "ok"),
    [
        (timedelta(0), True),
        (timedelta(minutes=5), True),
        (timedelta(minutes=5, seconds=1), False),
        (timedelta(days=-400), True),
        (timedelta(days=-400, seconds=-1), False),
    ],
)
def test_occurred_at_lies_within_400_days_back_and_5_minutes_ahead(offset: timedelta, ok: bool) -> None:
    errors = check_timing(NOW + offset, NOW)
    assert (errors == []) is ok
    assert all(e.loc == ("occurred_at",) for e in errors)


@pytest.mark.parametrize("value", ["a", "cookie-1.2:3_X", "A" * 128])
def test_anonymous_ids_of_a_sane_shape_are_links(value: str) -> None:
    assert links.normalise("anonymous_id", value) == links.Link("anonymous_id", value)


@pytest.mark.parametrize("value", ["A" * 129, "has space", "slash/no", "emoji-\u2603", "hash#no"])
def test_malformed_anonymous_ids_are_refused(value: str) -> None:
    with pytest.raises(links.LinkInvalid) as refused:
        links.normalise("anonymous_id", value)
    assert refused.value.field == "value"


def test_the_batch_model_checks_each_event_alone() -> None:
    batch = EventBatchIn.model_validate(
        {
            "store_id": "ams-01",
            "events": [
                {"event_id": "E1", "type": "store_visit", "occurred_at": "2026-11-22T09:00:00Z"},
                {"event_id": "E2", "type": "x", "occurred_at": "yesterday"},
                {"event_id": "E3", "type": "x", "occurred_at": "2026-11-22T09:00:00Z", "surprise": 1},
                "not an object",
                {"event_id": "E5", "type": "x", "occurred_at": "2026-11-22T09:00:00Z", "anonymous_id": "a b"},
            ],
        }
    )
    good, bad = batch.parsed()
    assert [(i, e.store_id) for i, e in good] == [(0, "ams-01")]
    assert {i: [e.loc for e in errors] for i, errors in bad} == {
        1: [("body", "events", 1, "occurred_at")],
        2: [("body", "events", 2, "surprise")],
        3: [("body", "events", 3)],
        4: [("body", "events", 4, "anonymous_id")],
    }


def test_an_event_on_the_timeline() -> None:
    event = CustomerEvent("E1", "ams-01", "pos", "review", NOW, NOW, {"sku": "S", "rating": 5}, "C1")
    fields = timeline_fields(
        "CUST#C1", NOW, "event", event.type, event.summary, {"store_id": "ams-01", "event_id": "E1"}, {}
    )
    assert fields["tlpk"] == "CUST#C1"
    assert fields["tlsk"].startswith("2026-11-22T10:00:00") and "#event#" in fields["tlsk"]
    assert fields["tl"]["summary"] == "review: S 5/5"
    assert event.recorded().detail["event_id"] == "E1"
    assert event.attributed().detail_type == "CustomerEventAttributed"
