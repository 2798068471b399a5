"""Link normalisation: one person's spellings of a link must become one value."""

from __future__ import annotations

import pytest

from loyalty.domain.links import Link, LinkInvalid, normalise


@pytest.mark.parametrize(
    ("raw_type", "raw_value", "expected"),
    [
        ("email", "  Jane.Doe@Example.COM ", Link("email", "jane.doe@example.com")),
        ("EMAIL", "jane@example.com", Link("email", "jane@example.com")),
        ("phone", "+31 6 12345678", Link("phone", "+31612345678")),
        ("phone", "06-12345678", Link("phone", "+31612345678")),  # national format, NL default region
        ("phone", "(020) 555 1234", Link("phone", "+31205551234")),
        ("phone", "+44 20 7946 0958", Link("phone", "+442079460958")),
        ("card", " 2900 0000 0000 1 ", Link("card", "2900000000001")),
        ("card", "abc-123", Link("card", "ABC-123")),
        ("ext:shopify", " 12345 ", Link("ext:shopify", "12345")),
        ("ext:SAP_crm", "C-1", Link("ext:sap_crm", "C-1")),
    ],
)
def test_normalises_to_one_canonical_value(raw_type: str, raw_value: str, expected: Link) -> None:
    assert normalise(raw_type, raw_value) == expected


@pytest.mark.parametrize(
    ("raw_type", "raw_value", "field"),
    [
        ("fax", "123", "type"),
        ("ext:", "1", "type"),
        ("ext:has space", "1", "type"),
        ("email", "not-an-email", "value"),
        ("email", "jane@", "value"),
        ("phone", "12", "value"),
        ("phone", "call me maybe", "value"),
        ("card", "!!", "value"),
        ("card", "12", "value"),
        ("email", "   ", "value"),
        ("ext:crm", "x" * 300, "value"),
    ],
)
def test_rejects_invalid_links_naming_the_bad_part(raw_type: str, raw_value: str, field: str) -> None:
    with pytest.raises(LinkInvalid) as caught:
        normalise(raw_type, raw_value)
    assert caught.value.field == field
    assert caught.value.msg


def test_phone_region_comes_from_the_programme() -> None:
    assert normalise("phone", "030 123 4567", default_region="NL").value == "+31301234567"
    assert normalise("phone", "(201) 555-0123", default_region="US").value == "+12015550123"


def test_link_key_is_type_and_value() -> None:
    assert Link("email", "a@b.nl").key == "email#a@b.nl"
