"""The pure identity rules of merges: which link values may join profiles, how profiles combine."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from loyalty.domain.customers import (
    Address,
    Consents,
    Customer,
    CustomerStatus,
    PointsSummary,
    Profile,
    Stats,
)
from loyalty.domain.links import Link
from loyalty.domain.merges import combine, is_blocked, split

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("link", "blocked"),
    [
        (Link("email", "test@test.com"), True),
        (Link("email", "null"), True),
        (Link("email", "1111@example.com"), True),
        (Link("email", "jane@example.com"), False),
        (Link("phone", "+31611111111"), True),
        (Link("phone", "+31000000000"), True),
        (Link("phone", "+31612345678"), False),
        (Link("card", "0"), True),
        (Link("card", "-1"), True),
        (Link("card", "99999999"), True),
        (Link("card", "1234567890"), True),
        (Link("card", "LOY-4711-0815"), False),
        (Link("ext:crm", "unknown"), True),
        (Link("ext:crm", "C-1001"), False),
    ],
)
def test_placeholder_values_never_join_profiles(link: Link, blocked: bool) -> None:
    assert is_blocked(link) is blocked


def test_the_programme_can_block_more_values() -> None:
    assert is_blocked(Link("email", "kassa@brand.example"), ["Kassa@Brand.example"])
    assert not is_blocked(Link("email", "kassa@brand.example"), [])


def customer(cid: str, at: datetime, **changes: object) -> Customer:
    base = Customer(
        customer_id=cid,
        member=True,
        status=CustomerStatus.ACTIVE,
        profile=Profile(),
        consents=Consents(email=True, sms=True, mail=True),
        links=(Link("email", f"{cid}@example.com"),),
        created_at=at,
        updated_at=at,
        enrolled_at=at,
        tier="bronze",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_newest_non_empty_wins_and_consents_take_the_most_restrictive() -> None:
    old = customer("a", T0, profile=Profile("Ann", "Old", date(1990, 1, 1), {"size": "M", "shop": "ams"}))
    new = customer("b", T1, profile=Profile("Anna", None, None, {"size": "L"}), consents=Consents(email=True))
    merged = combine(old, new, "silver", T1, "m1")
    assert merged.profile == Profile("Anna", "Old", date(1990, 1, 1), {"size": "L", "shop": "ams"})
    assert merged.consents == Consents(email=True, sms=False, mail=False)
    assert merged.customer_id == "a" and merged.merged_from == ("b",)
    assert set(merged.links) == {Link("email", "a@example.com"), Link("email", "b@example.com")}
    assert merged.tier == "silver"


def test_a_merge_keeps_the_messaging_fields_and_never_mixes_two_addresses() -> None:
    home = Address(line1="Damrak 1", city="Amsterdam", country="NL", postal_code="1012 LG")
    work = Address(line1="Coolsingel 40", city="Rotterdam", country="NL")
    old = customer(
        "a",
        T0,
        profile=Profile(country="NL", timezone="Europe/Amsterdam", favourite_store_id="ams-01", address=home),
    )
    new = customer("b", T1, profile=Profile(timezone="Europe/Brussels", address=work))
    merged = combine(old, new, "bronze", T1, "m1").profile
    assert (merged.country, merged.timezone, merged.favourite_store_id) == ("NL", "Europe/Brussels", "ams-01")
    assert merged.address == work  # the newer address whole: no postal code borrowed from the older
    alone = combine(old, customer("c", T1), "bronze", T1, "m2").profile
    assert alone.address == home and alone.timezone == "Europe/Amsterdam"


def test_counters_add_up_and_the_ledger_numbers_shift() -> None:
    a = customer(
        "a",
        T0,
        points=PointsSummary(100, 10, 300),
        ledger_seq=7,
        earned_by_month={"2026-01": 100},
        stats=Stats(2, Decimal("20.00"), T0, T0),
    )
    b = customer(
        "b",
        T1,
        points=PointsSummary(50, 0, 80),
        ledger_seq=3,
        earned_by_month={"2026-01": 5, "2026-06": 50},
        stats=Stats(1, Decimal("5.50"), T1, T1),
        merged_from=("c",),
    )
    merged = combine(a, b, "bronze", T1, "m1")
    assert merged.points == PointsSummary(150, 10, 380)
    assert merged.ledger_seq == 10
    assert merged.earned_by_month == {"2026-01": 105, "2026-06": 50}
    assert merged.stats == Stats(3, Decimal("25.50"), T0, T1)
    assert merged.merged_from == ("b", "c")


def test_split_restores_both_sides_when_nothing_happened_in_between() -> None:
    a = customer(
        "a", T0, points=PointsSummary(100, 0, 100), ledger_seq=2, stats=Stats(1, Decimal("10.00"), T0, T0)
    )
    b = customer(
        "b", T0, points=PointsSummary(40, 0, 40), ledger_seq=1, stats=Stats(1, Decimal("4.00"), T0, T0)
    )
    merged = combine(a, b, "bronze", T1, "m1")
    tomb = replace(b, status=CustomerStatus.MERGED, merged_into="a")
    result = split(
        merged,
        a,
        tomb,
        merged_at=T1,
        returned_links=b.links,
        returned_holds=(),
        lots_delta=0,
        returned_pending=0,
        survivor_tier="bronze",
        merged_tier="bronze",
        now=T1,
    )
    assert result.survivor.points == a.points and result.survivor.stats == a.stats
    assert result.restored.points == b.points and result.restored.status is CustomerStatus.ACTIVE
    assert result.restored.merged_into is None and set(result.survivor.links) == set(a.links)
    assert result.points_kept_by_survivor == 0


def test_split_leaves_points_spent_from_returned_lots_spent() -> None:
    a = customer("a", T0, points=PointsSummary(100, 0, 100))
    b = customer("b", T0, points=PointsSummary(40, 0, 40))
    merged = replace(combine(a, b, "bronze", T1, "m1"), points=PointsSummary(110, 0, 140))  # 30 spent
    result = split(
        merged,
        a,
        replace(b, status=CustomerStatus.MERGED),
        merged_at=T1,
        returned_links=b.links,
        returned_holds=(),
        lots_delta=-30,
        returned_pending=0,
        survivor_tier=None,
        merged_tier=None,
        now=T1,
    )
    assert result.restored.points.available == 10
    assert result.survivor.points.available == 100
    assert result.points_kept_by_survivor == 30
