"""The timeline's index attributes and its `types` filter."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from loyalty.adapters.timeline import (
    KINDS,
    TRANSACTION,
    anonymous_owner,
    customer_owner,
    timeline_fields,
)
from loyalty.domain.errors import ValidationFailed
from loyalty.domain.programme import default_programme
from loyalty.domain.tiers import tier_direction
from loyalty.domain.timeline import parse_kinds
from loyalty.resources import TABLE


def test_fields_make_the_index_keys_and_the_shown_item() -> None:
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    fields = timeline_fields(
        customer_owner("c1"),
        at,
        TRANSACTION,
        "sale",
        "Sale 12.50, +12 points",
        {"transaction_id": "T-1"},
        {"total": "12.50", "points": 12, "ratio": 1.5},
    )
    assert fields["tlpk"] == "CUST#c1"
    assert fields["tlsk"] == "2026-03-01T09:30:00.000000Z#transaction#T-1"
    assert fields["tl"] == {
        "at": "2026-03-01T09:30:00Z",
        "kind": "transaction",
        "type": "sale",
        "summary": "Sale 12.50, +12 points",
        "ref": {"transaction_id": "T-1"},
        "data": {"total": "12.50", "points": 12, "ratio": Decimal("1.5")},  # storable: no floats
    }


def test_record_id_defaults_to_the_ref_in_key_order_and_can_be_given() -> None:
    ref = {"store_id": "ams-01", "event_id": "e-9"}
    at = "2026-01-01T00:00:00Z"
    by_ref = timeline_fields(anonymous_owner("a-1"), at, "event", "site_visit", "", ref, {})
    assert by_ref["tlpk"] == "ANON#a-1"
    assert by_ref["tlsk"] == "2026-01-01T00:00:00.000000Z#event#e-9#ams-01"
    given = timeline_fields("CUST#c", "2026-01-01T00:00:00Z", "points", "earn", "", ref, {}, record_id="L-7")
    assert given["tlsk"].endswith("#points#L-7")


def test_sort_keys_order_by_time_across_kinds() -> None:
    early = timeline_fields("CUST#c", datetime(2026, 1, 2, tzinfo=UTC), "tier", "up", "", {"id": "z"}, {})
    late = timeline_fields("CUST#c", datetime(2026, 1, 3, tzinfo=UTC), "badge", "b", "", {"id": "a"}, {})
    assert early["tlsk"] < late["tlsk"]


def test_sort_keys_order_by_time_whatever_the_precision() -> None:
    whole = timeline_fields("CUST#c", "2026-01-01T10:00:05Z", "event", "x", "", {"id": "1"}, {})
    fraction = timeline_fields("CUST#c", "2026-01-01T10:00:05.250+00:00", "event", "x", "", {"id": "2"}, {})
    assert whole["tlsk"] < fraction["tlsk"]
    assert fraction["tl"]["at"] == "2026-01-01T10:00:05.250+00:00"  # shown as given


def test_unknown_kind_or_missing_time_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        timeline_fields("CUST#c", "2026-01-01T00:00:00Z", "purchase", "x", "", {"id": "1"}, {})
    with pytest.raises(ValueError):
        timeline_fields("CUST#c", "", "points", "x", "", {"id": "1"}, {})


def test_the_index_is_sparse_and_holds_only_the_item() -> None:
    (gsi3,) = [i for i in TABLE.indexes if i.name == "gsi3"]
    assert (gsi3.partition_key, gsi3.sort_key, gsi3.projection) == ("tlpk", "tlsk", ("tl",))


@pytest.mark.parametrize(
    ("raw", "kinds"),
    [
        (None, frozenset()),
        ("", frozenset()),
        ("transaction", frozenset({"transaction"})),
        ("transaction, points,points", frozenset({"transaction", "points"})),
        (",".join(KINDS), frozenset(KINDS)),
    ],
)
def test_types_filter_parses(raw: str | None, kinds: frozenset[str]) -> None:
    assert parse_kinds(raw) == kinds


@pytest.mark.parametrize("raw", ["purchase", "transaction,", "Transaction", "points,,badge"])
def test_unknown_types_are_named(raw: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_kinds(raw)
    assert [e.loc for e in caught.value.errors] == [("query", "types")]


@pytest.mark.parametrize(
    ("before", "after", "direction"),
    [
        ("bronze", "silver", "up"),
        ("gold", "silver", "down"),
        (None, "bronze", "up"),  # enrolled
        ("bronze", None, "down"),
        ("platinum", "gold", "changed"),  # a tier the programme no longer has
    ],
)
def test_a_tier_change_goes_up_or_down_by_the_programmes_order(
    before: str | None, after: str | None, direction: str
) -> None:
    assert tier_direction(default_programme(), before, after) == direction
