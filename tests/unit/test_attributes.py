"""Free-form attributes hold only what the table can keep (found by fuzzing: each was a 500)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from loyalty.api.http import json_body
from loyalty.domain.attributes import check_storable
from loyalty.domain.offers import PriceGroupMembers
from loyalty.domain.programme import RuleWhere

UNSTORABLE: list[Any] = [
    {"a": {"": 1}},
    {"a": 1e200},
    {"a": -1e126},
    {"a": 1e-131},
    {"a": float("nan")},
    {"a": float("inf")},
    {"a": 10**38},
    {"a": 123456789012345678901234567890123456789012},
    {"a": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]},
]
STORABLE: list[Any] = [
    {},
    {"coffee_corner": True, "city": "Amsterdam", "none": None, "empty": ""},
    {"a": 0, "b": 0.0, "c": -53379, "d": 2.016564756685092e-12, "e": 9.99e125, "f": 1e-130},
    {"a": 10**37, "b": -(10**37)},
    {"a": [1.5, {"b": None}], "c": [[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]},
]


@pytest.mark.parametrize("value", UNSTORABLE)
def test_what_the_table_cannot_keep_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match=r"must not be empty|numbers must be finite|nest at most"):
        check_storable(value)


@pytest.mark.parametrize("value", STORABLE)
def test_what_the_table_can_keep_passes_unchanged(value: Any) -> None:
    assert check_storable(value) is value


@pytest.mark.parametrize("value", UNSTORABLE[:3])
def test_rules_and_price_groups_match_only_storable_attributes(value: Any) -> None:
    with pytest.raises(ValidationError, match="store_attributes"):
        RuleWhere(store_attributes=value)
    with pytest.raises(ValidationError, match="attributes"):
        PriceGroupMembers(attributes=value)


@pytest.mark.parametrize(
    "text",
    ["[" * 5000 + "]" * 5000, '{"a": 1' + "0" * 5000 + "}", '{"a": '],
    ids=["too-deep", "too-many-digits", "truncated"],
)
def test_json_python_cannot_read_is_a_json_error(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        json_body(text)


def test_json_body_reads_json() -> None:
    assert json_body('{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
