"""Caller-owned redemption and hold ids are unique per store, and records written before that
(keyed by the bare id) keep working for the store they name, on DynamoDB Local.

Given a redemption or a hold stored the old way (REDEMPTION#<id>, HOLD#<id>), when its store
replays, reverses, captures or releases it, then that record answers; when another store sends the
same id, then it is that store's own new request and the old record is untouched.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from loyalty.adapters.redemptions import legacy_redemption_key, redemption_key
from loyalty.adapters.stored_value import account_pk, hold_ref
from loyalty.api.models.redemptions import render_redemption
from loyalty.bootstrap import Container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.errors import HoldNotFound, RedemptionNotFound
from loyalty.domain.stored_value import new_gift_card_number
from loyalty.services.replay import IdempotentReplay
from tests.integration.test_redemptions import balanced, member_with, redeem

POS = Principal("key-pos", KeyKind.POS, "ams-01")
WEB = Principal("key-web", KeyKind.WEB, "web-nl")
ADMIN = Principal("key-admin", KeyKind.ADMIN, None)


def move_to_legacy_key(container: Container, pk: str, sk: str, legacy_pk: str) -> None:
    """Store an item the way it was stored before ids were per store."""
    item = container.table.get(pk, sk)
    assert item is not None
    container.table._client.delete_item(TableName=container.table.name, Key=container.table.key(pk, sk))
    container.table.put({**item, "pk": legacy_pk})


def test_an_old_redemption_answers_its_own_store_only(container: Container) -> None:
    cid = member_with(container, "10.00")  # 100 points
    container.redemptions.redeem(redeem("OLD-1", cid, 30), POS, render=render_redemption)
    move_to_legacy_key(container, *redemption_key("ams-01", "OLD-1"), legacy_redemption_key("OLD-1")[0])

    with pytest.raises(IdempotentReplay):  # the till's retry is still a replay
        container.redemptions.redeem(redeem("OLD-1", cid, 30), POS, render=render_redemption)
    assert container.redemptions.get("OLD-1", POS).store_id == "ams-01"
    with pytest.raises(RedemptionNotFound):
        container.redemptions.get("OLD-1", WEB)

    shop = container.redemptions.redeem(
        redeem("OLD-1", cid, 30), WEB, render=render_redemption
    )  # the shop's own
    assert (shop.record.store_id, shop.balance_after) == ("web-nl", 40)
    assert container.redemptions.reverse("OLD-1", POS).record.status == "reversed"
    assert container.redemptions.get("OLD-1", WEB).status == "done"
    assert balanced(container, cid).points.available == 70
    again = container.redemptions.reverse("OLD-1", ADMIN, "ams-01")
    assert (again.record.status, again.balance_after) == ("reversed", 70)


def test_an_old_hold_is_captured_and_released_by_its_own_store_only(container: Container) -> None:
    number = container.stored_value.sell_gift_card(
        Decimal("100"), "EUR", None, POS, card_number=new_gift_card_number()
    ).account.account_id
    for hold_id in ("OLDH-1", "OLDH-2"):
        container.stored_value.hold(number, hold_id, Decimal("10"), 3600, WEB)
        ref = hold_ref("web-nl", hold_id)
        move_to_legacy_key(container, f"HOLD#{ref}", "HOLD", f"HOLD#{hold_id}")
        # ... and its place in the card's live holds, as it was then: the bare id.
        account = container.table.get(account_pk(number), "ACCOUNT")
        assert account is not None
        holds = dict(account["holds"])
        holds[hold_id] = holds.pop(ref)
        container.table.put({**account, "holds": holds})

    with pytest.raises(HoldNotFound):
        container.stored_value.capture("OLDH-1", Decimal("10"), POS)  # another store's
    captured, after = container.stored_value.capture("OLDH-1", Decimal("10"), WEB)
    assert (captured.status, after.balance, after.available(container.clock.now())) == (
        "captured",
        9000,
        8000,
    )
    released, after = container.stored_value.release("OLDH-2", WEB)
    assert (released.status, after.holds) == ("released", {})
    assert container.stored_value.find_hold("OLDH-2", WEB).status == "released"
