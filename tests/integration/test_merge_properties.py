"""Property: random enrolments, links, sales, returns, redemptions, merges and undos keep every
link on one live customer, every record on a live customer, points conserved, each live balance
equal to its ledger, and an undo right after a merge restores the split exactly."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.adapters.transactions import TransactionRepository
from loyalty.api.models.redemptions import render_redemption
from loyalty.api.models.transactions import render_receipt
from loyalty.bootstrap import Container
from loyalty.domain.customers import CustomerRef, CustomerStatus
from loyalty.domain.errors import DomainError
from loyalty.domain.merges import MergeStatus
from loyalty.domain.sales import Line, SaleType
from loyalty.services.customers import OnConflict, RawLink
from loyalty.services.redemptions import RedeemCommand
from loyalty.services.transactions import RecordCommand
from tests.integration.test_merges import ADMIN, POS, email, enrol, sale

steps = st.lists(
    st.one_of(
        st.tuples(st.just("enrol"), st.booleans()),
        st.tuples(st.just("link"), st.integers(0, 9), st.integers(0, 9)),
        st.tuples(st.just("sale"), st.integers(0, 9), st.integers(1, 30)),
        st.tuples(st.just("return"), st.integers(0, 30)),
        st.tuples(st.just("redeem"), st.integers(0, 9), st.integers(1, 200)),
        st.tuples(st.just("merge"), st.integers(0, 9), st.integers(0, 9)),
        st.tuples(st.just("undo"), st.integers(0, 9)),
    ),
    min_size=3,
    max_size=14,
)


def check(container: Container, ids: list[str], expected_points: int) -> None:
    repo = TransactionRepository(container.table)
    live: dict[str, Any] = {}
    for cid in ids:
        raw = container.table.get(f"CUST#{cid}", "PROFILE")
        assert raw is not None
        if raw["status"] == CustomerStatus.ACTIVE.value:
            live[cid] = container.customers.get(cid)
        else:
            assert repo.all_ledger(cid) == [], "a tombstone holds ledger entries"
            txns, _ = repo.history(cid, 50, None)
            assert txns == [], "a tombstone holds transactions"
    for cid, customer in live.items():
        ledger = repo.all_ledger(cid)
        assert customer.points.available + customer.points.pending == sum(e.points for e in ledger)
        for link in customer.links:
            assert container.customers.lookup(link.type, link.value).customer_id == cid
        txns, _ = repo.history(cid, 200, None)
        assert all(t.customer_id == cid for t in txns)
    assert sum(c.points.available + c.points.pending for c in live.values()) == expected_points


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_merges_and_undos_keep_identity_and_points_exact(
    container: Container, plan: list[tuple[Any, ...]]
) -> None:
    ids = [enrol(container, email()), enrol(container, email(), member=False)]
    sales: list[tuple[str, int]] = []
    merges: list[str] = []
    points = 0
    for step in plan:
        kind = step[0]
        try:
            if kind == "enrol":
                ids.append(enrol(container, email(), member=step[1]))
            elif kind == "link":
                a, b = ids[step[1] % len(ids)], ids[step[2] % len(ids)]
                other = container.customers.get(b)
                if other.links:
                    link = other.links[0]
                    result = container.customers.add_link(
                        a, RawLink(link.type, link.value), OnConflict.MERGE, None, POS
                    )
                    if result.merge is not None:
                        merges.append(result.merge.merge_id)
                        container.merges.process(result.merge.merge_id)
            elif kind == "sale":
                cid = ids[step[1] % len(ids)]
                before = container.customers.get(cid)
                tid = sale(container, cid, f"{step[2]}.00")
                sales.append((tid, step[2]))
                points += 10 * step[2] if before.member else 0
            elif kind == "return" and sales:
                tid, price = sales[step[1] % len(sales)]
                original = container.transactions.get("ams-01", tid)
                assert original is not None
                receipt = container.transactions.record(
                    RecordCommand(
                        transaction_id=f"R{uuid.uuid4().hex[:8]}",
                        type=SaleType.RETURN,
                        store_id=None,
                        occurred_at=container.clock.now(),
                        customer=None,
                        lines=[Line("1", "X", None, Decimal(1), Decimal(price))],
                        currency="EUR",
                        total=Decimal(price),
                        fingerprint=uuid.uuid4().hex,
                        original_transaction_id=tid,
                    ),
                    POS,
                    render=render_receipt,
                )
                points += receipt.points_earned
            elif kind == "redeem":
                cid = ids[step[1] % len(ids)]
                container.redemptions.redeem(
                    RedeemCommand(
                        uuid.uuid4().hex,
                        "points",
                        None,
                        CustomerRef(customer_id=cid),
                        fingerprint="x",
                        points=step[2],
                    ),
                    POS,
                    render=render_redemption,
                )
                points -= step[2]
            elif kind == "merge":
                a, b = ids[step[1] % len(ids)], ids[step[2] % len(ids)]
                record = container.merges.request(a, b, "property", ADMIN)
                merges.append(record.merge_id)
                split = {cid: container.customers.get(cid) for cid in (a, b)}
                done = container.merges.process(record.merge_id)
                assert done.status is MergeStatus.DONE
                # undo at once: the split comes back exactly
                container.merges.request_undo(record.merge_id, ADMIN)
                assert container.merges.process(record.merge_id).status is MergeStatus.UNDONE
                for cid, before in split.items():
                    after = container.customers.get(cid)
                    assert after.customer_id == cid
                    assert after.points == before.points
                    assert set(after.links) == set(before.links)
                    assert after.stats.transactions == before.stats.transactions
                # and merge again, for the steps that follow
                again = container.merges.request(a, b, "property", ADMIN)
                merges.append(again.merge_id)
                container.merges.process(again.merge_id)
            elif kind == "undo" and merges:
                merge_id = merges[step[1] % len(merges)]
                container.merges.request_undo(merge_id, ADMIN)
                container.merges.process(merge_id)
        except DomainError:
            pass  # refused (a tombstone, insufficient points, a blocked undo): nothing may have moved
        check(container, ids, points)
