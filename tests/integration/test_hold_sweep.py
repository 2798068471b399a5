"""The hourly sweep settles holds past their expiry, and never against a capture or a release.

Given holds on gift cards and on points, when the clock passes their expiry and the sweep runs,
then each hold's record says `expired` and it is gone from the account's or the profile's live
holds; a captured or released hold is not the sweep's business; and when a capture (whose clock
says the hold is still live) races the sweep (whose clock says it expired), exactly one wins.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from loyalty.adapters.stored_value import StoredValueRepository, account_pk, hold_ref
from loyalty.bootstrap import Container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.errors import HoldNotCapturable
from loyalty.domain.stored_value import new_gift_card_number
from tests.conftest import FixedClock
from tests.integration.test_redemptions import balanced as points_balanced
from tests.integration.test_redemptions import member_with

WEB = Principal("key-web", KeyKind.WEB, "web-nl")
POS = Principal("key-pos", KeyKind.POS, "ams-01")


def card(container: Container, euros: str = "100") -> str:
    """A physical card (no PIN), so the web key may hold on it."""
    return container.stored_value.sell_gift_card(
        Decimal(euros), "EUR", None, POS, card_number=new_gift_card_number()
    ).account.account_id


def stored(container: Container, account_id: str) -> Any:
    """The account as stored, and its balance checked against its ledger."""
    account = container.stored_value._account(account_id)
    moves, _ = StoredValueRepository(container.table).ledger(account_id, 200, None)
    assert account.balance == sum(m.amount for m in moves)
    return account


def ref(hold_id: str) -> str:
    """The key of a hold the web shop placed: in the table and in the live holds it sits in."""
    return hold_ref(WEB.store_id, hold_id)


def hold_item(container: Container, hold_id: str) -> dict[str, Any]:
    item = container.table.get(f"HOLD#{ref(hold_id)}", "HOLD")
    assert item is not None
    return item


def test_an_expired_gift_card_hold_is_settled_once_and_leaves_the_account(
    container: Container, clock: FixedClock
) -> None:
    number = card(container)
    container.stored_value.hold(number, "GH1", Decimal("30"), 3600, WEB)
    container.stored_value.hold(number, "GH2", Decimal("20"), 7200, WEB)
    assert hold_item(container, "GH1")["gsi2pk"].startswith("DUE#")  # due at its expiry

    assert container.sweeper.run().expired_holds == 0  # nothing has expired yet
    assert container.stored_value.find_hold("GH1", WEB).status == "held"

    clock.advance(seconds=3600)
    assert container.sweeper.run().expired_holds == 1
    first = container.stored_value.find_hold("GH1", WEB)
    assert (first.status, first.captured) == ("expired", 0)
    assert "gsi2pk" not in hold_item(container, "GH1")  # settled: out of the due index
    account = stored(container, number)
    assert set(account.holds) == {ref("GH2")}
    assert (account.balance, account.available(clock.now())) == (10000, 8000)
    assert container.sweeper.run().expired_holds == 0  # a second sweep changes nothing

    clock.advance(hours=1)
    assert container.sweeper.run().expired_holds == 1
    assert container.stored_value.find_hold("GH2", WEB).status == "expired"
    account = stored(container, number)
    assert account.holds == {} and account.available(clock.now()) == 10000
    with pytest.raises(HoldNotCapturable) as caught:
        container.stored_value.capture("GH2", Decimal("5"), WEB)
    assert caught.value.extra["hold_status"] == "expired"
    # Releasing after expiry changes nothing: the value came back when the hold expired.
    released, _ = container.stored_value.release("GH2", WEB)
    assert released.status == "expired"


def test_captured_and_released_holds_leave_the_due_index(container: Container, clock: FixedClock) -> None:
    number = card(container)
    container.stored_value.hold(number, "GC1", Decimal("30"), 60, WEB)
    container.stored_value.hold(number, "GR1", Decimal("20"), 60, WEB)
    container.stored_value.capture("GC1", Decimal("25"), WEB)
    container.stored_value.release("GR1", WEB)
    assert "gsi2pk" not in hold_item(container, "GC1") and "gsi2pk" not in hold_item(container, "GR1")

    clock.advance(minutes=5)
    assert container.sweeper.run().expired_holds == 0
    assert container.stored_value.find_hold("GC1", WEB).status == "captured"
    assert container.stored_value.find_hold("GR1", WEB).status == "released"
    assert stored(container, number).balance == 7500


def test_a_hold_released_after_its_expiry_is_settled_as_expired(
    container: Container, clock: FixedClock
) -> None:
    number = card(container)
    container.stored_value.hold(number, "GL1", Decimal("40"), 60, WEB)
    clock.advance(seconds=61)
    record, account = container.stored_value.release("GL1", WEB)
    assert record.status == "held"  # not written: the sweep owns expired holds
    assert account.available(clock.now()) == 10000
    assert container.sweeper.run().expired_holds == 1
    assert container.stored_value.find_hold("GL1", WEB).status == "expired"
    assert container.stored_value.release("GL1", WEB)[0].status == "expired"


def test_an_expired_points_hold_is_settled_and_leaves_the_profile(container: Container, clock: Any) -> None:
    cid = member_with(container, "10.00")  # 100 points
    container.redemptions.hold_points(cid, "PH1", 60, 600, WEB)
    container.redemptions.hold_points(cid, "PH2", 30, 3600, WEB)
    assert set(points_balanced(container, cid).points_holds) == {ref("PH1"), ref("PH2")}

    clock.advance(seconds=601)
    assert container.sweeper.run().expired_holds == 1
    assert container.stored_value.find_hold("PH1", WEB).status == "expired"
    customer = points_balanced(container, cid)
    assert set(customer.points_holds) == {ref("PH2")}
    assert (customer.points.available, customer.spendable(clock.now())) == (100, 70)
    assert container.sweeper.run().expired_holds == 0

    expired = container.stored_value.find_hold("PH1", WEB)
    with pytest.raises(HoldNotCapturable):
        container.redemptions.capture_points_hold(expired, 10, WEB)
    assert container.redemptions.release_points_hold(expired)[0].status == "expired"

    captured, after = container.redemptions.capture_points_hold(
        container.stored_value.find_hold("PH2", WEB), 30, WEB
    )
    assert (captured.status, after.points.available + after.points.pending) == ("captured", 70)
    clock.advance(hours=2)
    assert container.sweeper.run().expired_holds == 0  # captured: nothing left to settle
    assert container.stored_value.find_hold("PH2", WEB).status == "captured"
    assert points_balanced(container, cid).points_holds == {}


def _racing_containers(
    container: Container, aws_session: boto3.session.Session, clock: FixedClock
) -> tuple[Container, Container]:
    """Two functions on one table whose clocks disagree by two seconds around the holds' expiry:
    the capture still sees the hold live, the sweep already sees it expired."""
    early = FixedClock(clock.now() + timedelta(seconds=59))
    late = FixedClock(clock.now() + timedelta(seconds=61))
    return (
        Container(container.settings, session=aws_session, clock=early),
        Container(container.settings, session=aws_session, clock=late),
    )


def test_a_capture_racing_the_sweep_either_captures_or_expires_never_both(
    container: Container, aws_session: boto3.session.Session, clock: FixedClock
) -> None:
    number = card(container, "500")
    holds = [f"RACE{i}-{uuid.uuid4().hex[:6]}" for i in range(6)]
    for hold_id in holds:
        container.stored_value.hold(number, hold_id, Decimal("10"), 60, WEB)
    tills, sweep = _racing_containers(container, aws_session, clock)

    def capture(hold_id: str) -> str:
        try:
            tills.stored_value.capture(hold_id, Decimal("10"), WEB)
            return "captured"
        except HoldNotCapturable:
            return "refused"

    with ThreadPoolExecutor(max_workers=7) as pool:
        sweeping = pool.submit(sweep.sweeper.run)
        captures = dict(zip(holds, pool.map(capture, holds), strict=True))
        report = sweeping.result()

    statuses = {h: container.stored_value.find_hold(h, WEB).status for h in holds}
    for hold_id in holds:
        assert statuses[hold_id] == ("captured" if captures[hold_id] == "captured" else "expired"), hold_id
    assert report.expired_holds == list(statuses.values()).count("expired")
    account = stored(container, number)
    captured = list(statuses.values()).count("captured")
    assert account.balance == 50000 - 1000 * captured  # each capture moved the ledger once
    assert not set(account.holds) & {ref(h) for h in holds}
    moves, _ = StoredValueRepository(container.table).ledger(number, 200, None)
    assert sorted(m.hold_id for m in moves if m.reason == "capture") == sorted(
        h for h in holds if statuses[h] == "captured"
    )
    assert container.table.get(account_pk(number), "ACCOUNT") is not None


def test_a_points_capture_racing_the_sweep_either_captures_or_expires_never_both(
    container: Container, aws_session: boto3.session.Session, clock: FixedClock
) -> None:
    cid = member_with(container, "50.00")  # 500 points
    holds = [f"PRACE{i}-{uuid.uuid4().hex[:6]}" for i in range(4)]
    for hold_id in holds:
        container.redemptions.hold_points(cid, hold_id, 20, 60, WEB)
    tills, sweep = _racing_containers(container, aws_session, clock)

    def capture(hold_id: str) -> str:
        try:
            tills.redemptions.capture_points_hold(tills.stored_value.find_hold(hold_id, WEB), 20, WEB)
            return "captured"
        except HoldNotCapturable:
            return "refused"

    with ThreadPoolExecutor(max_workers=5) as pool:
        sweeping = pool.submit(sweep.sweeper.run)
        captures = dict(zip(holds, pool.map(capture, holds), strict=True))
        sweeping.result()

    statuses = {h: container.stored_value.find_hold(h, WEB).status for h in holds}
    for hold_id in holds:
        assert statuses[hold_id] == ("captured" if captures[hold_id] == "captured" else "expired"), hold_id
    customer = points_balanced(container, cid)
    assert customer.points.available == 500 - 20 * list(statuses.values()).count("captured")
    assert not set(customer.points_holds) & {ref(h) for h in holds}
