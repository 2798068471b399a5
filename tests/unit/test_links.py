"""Link normalisation: one person's spellings of a link must become one value."""

from __future__ import annotations

import pytest

from loyalty.domain.ids import new_card_number
from loyalty.domain.links import PLACEHOLDER, Link, LinkInvalid, identify, normalise


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


@pytest.mark.parametrize(
    ("raw_type", "raw_value", "usable"),
    [
        ("email", "TEST@test.com", False),
        ("email", " test@TEST.com ", False),
        ("email", "jane@example.com", True),
        ("phone", "+31 6 11111111", False),
        ("card", "0000", False),
        ("card", "1234567890", False),
        ("ext:pos", "unknown", False),
        ("email", "KASSA@brand.example", False),  # the programme's own blocked value
    ],
)
def test_placeholders_identify_nobody(raw_type: str, raw_value: str, usable: bool) -> None:
    identity = identify(raw_type, raw_value, blocked_values=["kassa@Brand.example"])
    assert identity.usable is usable
    assert identity.ignored == (None if usable else PLACEHOLDER)


def test_cards_must_pass_the_programmes_check_digit() -> None:
    assert identify("card", "4111 1111 1111 1111", card_scheme="luhn").usable
    with pytest.raises(LinkInvalid) as bad:
        identify("card", "4111111111111112", card_scheme="luhn")
    assert bad.value.field == "value"
    with pytest.raises(LinkInvalid):
        identify("card", "LOY-4711", card_scheme="ean13")
    assert identify("card", "LOY-4711").usable  # no scheme: any card shape
    assert all(identify("card", new_card_number(s), card_scheme=s).usable for s in (None, "luhn", "ean13"))
