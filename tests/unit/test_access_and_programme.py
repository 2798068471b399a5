from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from loyalty.domain.access import Access, KeyKind, Principal, hash_api_key
from loyalty.domain.errors import Forbidden
from loyalty.domain.programme import Programme, Tier, default_programme

POS = Principal("k1", KeyKind.POS, "ams-01")
ADMIN = Principal("k2", KeyKind.ADMIN, None)


def test_a_till_acts_only_for_its_own_store() -> None:
    assert POS.ensure_store(None) == "ams-01"
    assert POS.ensure_store("ams-01") == "ams-01"
    with pytest.raises(Forbidden):
        POS.ensure_store("web-nl")


def test_admin_acts_for_any_store() -> None:
    assert ADMIN.ensure_store("web-nl") == "web-nl"
    assert ADMIN.ensure_store(None) is None


def test_only_admin_keys_call_admin_routes() -> None:
    assert ADMIN.may_call(Access.ADMIN)
    assert not POS.may_call(Access.ADMIN)
    assert not Principal("k3", KeyKind.WEB, "web-nl").may_call(Access.ADMIN)
    assert POS.may_call(Access.CLIENT)


def test_key_hash_depends_on_the_pepper() -> None:
    assert hash_api_key("secret", "p1") == hash_api_key("secret", "p1")
    assert hash_api_key("secret", "p1") != hash_api_key("secret", "p2")
    assert "secret" not in hash_api_key("secret", "p1")


def test_default_programme_matches_the_contract() -> None:
    programme = default_programme()
    assert programme.currency == "EUR"
    assert programme.points_per_unit == 10
    assert [(t.name, t.threshold, t.multiplier) for t in programme.tiers] == [
        ("bronze", 0, Decimal("1.0")),
        ("silver", 2500, Decimal("1.25")),
        ("gold", 10000, Decimal("1.5")),
    ]
    assert programme.tier_for(2499).name == "bronze"
    assert programme.tier_for(2500).name == "silver"
    assert programme.next_tier(2500) == programme.tiers[2]
    assert programme.next_tier(10_000) is None


@pytest.mark.parametrize(
    "tiers",
    [
        [Tier(name="a", threshold=10, multiplier=Decimal(1))],
        [
            Tier(name="a", threshold=0, multiplier=Decimal(1)),
            Tier(name="b", threshold=0, multiplier=Decimal(1)),
        ],
        [
            Tier(name="a", threshold=0, multiplier=Decimal(1)),
            Tier(name="a", threshold=5, multiplier=Decimal(1)),
        ],
    ],
)
def test_programme_rejects_bad_tiers(tiers: list[Tier]) -> None:
    with pytest.raises(ValidationError):
        Programme(tiers=tiers)
