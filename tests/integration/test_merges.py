"""Identity merges against DynamoDB Local and moto's SQS: everything moves, balances add up, undo
splits the profiles again, and the guard rails hold."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest

from loyalty.adapters.transactions import TransactionRepository
from loyalty.api.models.redemptions import render_redemption
from loyalty.api.models.transactions import render_receipt
from loyalty.bootstrap import Container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customers import Consents, CustomerRef, CustomerStatus, Profile
from loyalty.domain.errors import (
    CustomerNotFound,
    MergeInProgress,
    MergeNotFound,
    MergeRefused,
    ValidationFailed,
)
from loyalty.domain.links import Link
from loyalty.domain.merges import MergeStatus
from loyalty.domain.sales import Line, SaleType
from loyalty.services.customers import EnrolCommand, OnConflict, RawLink
from loyalty.services.redemptions import RedeemCommand
from loyalty.services.transactions import RecordCommand

POS = Principal("key-pos", KeyKind.POS, "ams-01")
ADMIN = Principal("key-admin", KeyKind.ADMIN, None)


def enrol(
    container: Container, *links: tuple[str, str], member: bool = True, first_name: str | None = None
) -> str:
    return container.customers.enrol(
        EnrolCommand(
            [RawLink(t, v) for t, v in links],
            Profile(first_name=first_name),
            Consents(email=True),
            member,
            None,
        ),
        POS,
    ).customer.customer_id


def sale(container: Container, cid: str, price: str, tid: str | None = None) -> str:
    tid = tid or f"T{uuid.uuid4().hex[:10]}"
    container.transactions.record(
        RecordCommand(
            transaction_id=tid,
            type=SaleType.SALE,
            store_id=None,
            occurred_at=container.clock.now(),
            customer=CustomerRef(customer_id=cid),
            lines=[Line("1", "X", None, Decimal(1), Decimal(price))],
            currency="EUR",
            total=Decimal(price),
            fingerprint=tid,
        ),
        POS,
        render=render_receipt,
    )
    return tid


def email() -> tuple[str, str]:
    return ("email", f"p{uuid.uuid4().hex[:10]}@example.com")


def ledger_sum(container: Container, cid: str) -> int:
    return sum(e.points for e in TransactionRepository(container.table).all_ledger(cid))


def balanced(container: Container, cid: str) -> Any:
    customer = container.customers.get(cid)
    assert customer.customer_id == cid
    assert customer.points.available + customer.points.pending == ledger_sum(container, cid)
    return customer


def merge_now(container: Container, survivor: str, merged: str) -> str:
    record = container.merges.request(survivor, merged, "test", ADMIN)
    done = container.merges.process(record.merge_id)
    assert done.status is MergeStatus.DONE, done.error
    return record.merge_id


def test_a_merge_moves_everything_and_the_balances_add_up(container: Container) -> None:
    a_link, b_link = email(), email()
    a = enrol(container, a_link, first_name="Ann")
    b = enrol(container, b_link)
    sale(container, a, "10.00")
    b_sale = sale(container, b, "25.00")
    before_a, before_b = balanced(container, a), balanced(container, b)

    merge_id = merge_now(container, a, b)

    survivor = balanced(container, a)
    assert survivor.points.available == before_a.points.available + before_b.points.available
    assert survivor.stats.transactions == 2
    assert survivor.profile.first_name == "Ann"
    assert set(survivor.links) >= set(before_b.links)
    assert b in survivor.merged_from
    # the old id answers with the survivor, and so do its links
    assert container.customers.get(b).customer_id == a
    assert container.customers.lookup(*b_link).customer_id == a
    record = container.transactions.get("ams-01", b_sale)
    assert record.customer_id == a
    assert TransactionRepository(container.table).all_ledger(b) == []
    journal = container.merges.get(merge_id)
    assert journal.counts and journal.counts["transactions"] == 1 and journal.counts["ledger_entries"] == 1


def test_returns_and_redemptions_after_a_merge_use_the_moved_lots(container: Container) -> None:
    a, b = enrol(container, email()), enrol(container, email())
    b_sale = sale(container, b, "30.00")
    merge_now(container, a, b)
    container.redemptions.redeem(
        RedeemCommand("R-after", "points", None, CustomerRef(customer_id=b), fingerprint="r", points=100),
        POS,
        render=render_redemption,
    )
    after = balanced(container, a)
    assert after.points.available == 200
    container.transactions.record(
        RecordCommand(
            transaction_id=f"RET-{b_sale}",
            type=SaleType.RETURN,
            store_id=None,
            occurred_at=container.clock.now(),
            customer=CustomerRef(customer_id=a),
            lines=[Line("1", "X", None, Decimal(1), Decimal("30.00"))],
            currency="EUR",
            total=Decimal("30.00"),
            fingerprint="ret",
            original_transaction_id=b_sale,
        ),
        POS,
        render=render_receipt,
    )
    assert balanced(container, a).points.available == -100


def test_undo_splits_the_profiles_again(container: Container) -> None:
    a_link, b_link = email(), email()
    a, b = enrol(container, a_link), enrol(container, b_link)
    sale(container, a, "10.00")
    b_sale = sale(container, b, "20.00")
    before_a, before_b = balanced(container, a), balanced(container, b)
    merge_id = merge_now(container, a, b)

    queued = container.merges.request_undo(merge_id, ADMIN)
    assert queued.status is MergeStatus.UNDO_QUEUED
    undone = container.merges.process(merge_id)

    assert undone.status is MergeStatus.UNDONE
    after_a, after_b = balanced(container, a), balanced(container, b)
    assert after_a.points == before_a.points
    assert after_b.points == before_b.points
    assert after_b.status is CustomerStatus.ACTIVE
    assert set(after_b.links) == set(before_b.links)
    assert container.customers.lookup(*b_link).customer_id == b
    assert container.transactions.get("ams-01", b_sale).customer_id == b
    assert after_a.stats.transactions == 1 and after_b.stats.transactions == 1
    with pytest.raises(MergeRefused):
        container.merges.request_undo(merge_id, ADMIN)


def test_points_spent_from_merged_lots_stay_spent_after_undo(container: Container) -> None:
    a, b = enrol(container, email()), enrol(container, email())
    sale(container, b, "20.00")  # 200 points, b's lot
    merge_id = merge_now(container, a, b)
    container.redemptions.redeem(
        RedeemCommand("R-spend", "points", None, CustomerRef(customer_id=a), fingerprint="s", points=150),
        POS,
        render=render_redemption,
    )
    container.merges.request_undo(merge_id, ADMIN)
    undone = container.merges.process(merge_id)
    after_a, after_b = balanced(container, a), balanced(container, b)
    assert after_a.points.available + after_b.points.available == 50  # conserved
    assert after_b.points.available == 50  # b's lot comes back as it is now
    assert undone.undo and undone.undo["stayed"]["points"] == 150


def test_bad_merges_are_refused_and_change_nothing(container: Container) -> None:
    a, b, c = enrol(container, email()), enrol(container, email()), enrol(container, email())
    with pytest.raises(MergeRefused) as itself:
        container.merges.request(a, a, None, ADMIN)
    assert itself.value.errors[0].loc == ("body", "merged_id")
    with pytest.raises(CustomerNotFound):
        container.merges.request(a, "01ZZZZZZZZZZZZZZZZZZZZZZZZ", None, ADMIN)
    merge_now(container, a, b)
    with pytest.raises(MergeRefused) as tomb:
        container.merges.request(b, c, None, ADMIN)  # into a tombstone
    assert "tombstone" in tomb.value.detail
    container.merges.erase(c, ADMIN)
    with pytest.raises(MergeRefused):
        container.merges.request(a, c, None, ADMIN)
    with pytest.raises(MergeNotFound):
        container.merges.get("01ZZZZZZZZZZZZZZZZZZZZZZZZ")
    assert balanced(container, a).merged_from == (b,)


def test_a_blocked_link_value_never_joins_profiles(container: Container) -> None:
    a = enrol(container, email())
    b = enrol(container, email(), member=False)
    # A placeholder identifies nobody (issue 12): no profile gets it, so a link call never merges on it.
    with pytest.raises(ValidationFailed) as invalid:
        enrol(container, ("phone", "+31 6 11111111"), member=False)
    assert invalid.value.errors[0].loc == ("body", "links", 0, "value")
    with pytest.raises(ValidationFailed) as invalid:
        container.customers.add_link(a, RawLink("phone", "+31 6 11111111"), OnConflict.MERGE, None, POS)
    assert invalid.value.errors[0].loc == ("body", "value")
    # The merge service keeps its own guard for a merge requested because of a link.
    with pytest.raises(MergeRefused) as refused:
        container.merges.request(a, b, None, ADMIN, link=Link("phone", "+31611111111"))
    assert refused.value.errors[0].loc == ("body", "value")
    assert container.customers.get(b).status is CustomerStatus.ACTIVE


def test_merge_by_link_queues_a_merge_and_the_worker_runs_it(container: Container) -> None:
    phone = ("phone", "+31 6 12345678")
    web = enrol(container, email(), first_name="Web")
    till = enrol(container, phone, member=False)
    sale(container, till, "12.00")
    result = container.customers.add_link(web, RawLink(*phone), OnConflict.MERGE, None, POS)
    assert result.merge is not None and result.merge.status is MergeStatus.QUEUED
    sqs = container.client("sqs")
    url = container.settings.merge_queue_url
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    assert [json.loads(m["Body"])["merge_id"] for m in messages] == [result.merge.merge_id]
    assert messages[0]["Attributes"]["MessageGroupId"] == web
    container.merges.process(result.merge.merge_id)
    assert container.customers.lookup(*phone).customer_id == web
    assert balanced(container, web).stats.transactions == 1


def test_writes_to_a_profile_being_merged_answer_503(container: Container) -> None:
    a, b = enrol(container, email()), enrol(container, email())
    record = container.merges.request(a, b, None, ADMIN)
    locked = container.merges._lock_for_merge(container.merges.get(record.merge_id))
    assert locked.status is MergeStatus.RUNNING
    with pytest.raises(MergeInProgress):
        sale(container, a, "5.00")
    done = container.merges.process(record.merge_id)
    assert done.status is MergeStatus.DONE
    sale(container, a, "5.00")
    assert balanced(container, a).stats.transactions == 1


def test_erasure_removes_personal_data_and_keeps_transactions_anonymised(container: Container) -> None:
    a_link, b_link = email(), email()
    a, b = enrol(container, a_link, first_name="Eve"), enrol(container, b_link)
    tid = sale(container, a, "10.00")
    merge_id = merge_now(container, a, b)
    erasure = container.merges.erase(a, ADMIN)
    assert set(erasure.erased_ids) == {a, b}
    with pytest.raises(CustomerNotFound):
        container.customers.get(a)
    with pytest.raises(CustomerNotFound):
        container.customers.lookup(*b_link)
    record = container.transactions.get("ams-01", tid)
    assert record is not None and record.customer_id is None and record.total == Decimal("10.00")
    with pytest.raises(MergeRefused):
        container.merges.request_undo(merge_id, ADMIN)
    raw = container.table.get(f"CUST#{a}", "PROFILE")
    assert raw is not None and "profile" not in raw and "links" not in raw


def test_a_profile_over_the_merge_limit_stops_merging_and_is_flagged(container: Container) -> None:
    programme = container.programme.current()
    container.programme.replace(programme.model_copy(update={"max_merges_per_profile": 2}))
    hub = enrol(container, email())
    for _ in range(2):
        merge_now(container, hub, enrol(container, email()))
    extra = enrol(container, email())
    with pytest.raises(MergeRefused) as refused:
        container.merges.request(hub, extra, None, ADMIN)
    assert "review" in refused.value.detail
    flagged = container.customers.get(hub)
    assert flagged.review and "2 merges" in flagged.review
    assert container.customers.get(extra).status is CustomerStatus.ACTIVE
    # A person checks it and clears the flag: it merges again, up to the limit counted from now.
    container.merges.clear_review(hub)
    assert container.customers.get(hub).review is None
    merge_now(container, hub, extra)
    merge_now(container, hub, enrol(container, email()))
    with pytest.raises(MergeRefused):
        container.merges.request(hub, enrol(container, email()), None, ADMIN)
    assert container.customers.get(hub).review
    with pytest.raises(CustomerNotFound):
        container.merges.clear_review("01ZZZZZZZZZZZZZZZZZZZZZZZZ")
