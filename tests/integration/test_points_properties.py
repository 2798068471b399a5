"""Property: random earns, redemptions, reversals, holds, captures, releases and expiry keep a
member's balance = Σ ledger and never below zero, lots within their earn, and spendable points
never below zero; refused steps move nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.adapters.transactions import TransactionRepository
from loyalty.api.models.redemptions import render_redemption
from loyalty.api.models.transactions import render_receipt
from loyalty.bootstrap import Container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customers import Consents, CustomerRef, Profile
from loyalty.domain.errors import DomainError
from loyalty.domain.sales import Line, SaleType
from loyalty.services.customers import EnrolCommand, RawLink
from loyalty.services.redemptions import RedeemCommand
from loyalty.services.transactions import RecordCommand

WEB = Principal("key-web", KeyKind.WEB, "web-nl")

steps = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(1, 40)),
        st.tuples(st.just("redeem"), st.integers(1, 300)),
        st.tuples(st.just("reverse"), st.integers(0, 20)),
        st.tuples(st.just("hold"), st.integers(1, 300), st.sampled_from([60, 3600])),
        st.tuples(st.just("capture"), st.integers(0, 20), st.integers(1, 300)),
        st.tuples(st.just("release"), st.integers(0, 20)),
        st.tuples(st.just("time"), st.sampled_from([120, 86_400 * 400, 86_400 * 800])),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_points_stay_exact_through_redemptions_and_holds(
    container: Container, clock: Any, plan: list[tuple[Any, ...]]
) -> None:
    clock.current = datetime(2026, 1, 10, tzinfo=UTC)
    email = f"p{uuid.uuid4().hex[:10]}@example.com"
    cid = container.customers.enrol(
        EnrolCommand([RawLink("email", email)], Profile(), Consents(), True, None), WEB
    ).customer.customer_id
    repo = TransactionRepository(container.table)
    redemptions: list[str] = []
    holds: list[Any] = []

    for step in plan:
        before = container.customers.get(cid)
        try:
            if step[0] == "earn":
                txn = uuid.uuid4().hex[:10]
                price = Decimal(step[1])
                container.transactions.record(
                    RecordCommand(
                        txn,
                        SaleType.SALE,
                        None,
                        clock.now(),
                        CustomerRef(customer_id=cid),
                        [Line("1", "X", None, Decimal(1), price)],
                        "EUR",
                        price,
                        txn,
                    ),
                    WEB,
                    render=render_receipt,
                )
            elif step[0] == "redeem":
                rid = uuid.uuid4().hex[:10]
                container.redemptions.redeem(
                    RedeemCommand(rid, "points", None, CustomerRef(customer_id=cid), rid, points=step[1]),
                    WEB,
                    render=render_redemption,
                )
                redemptions.append(rid)
            elif step[0] == "reverse" and redemptions:
                container.redemptions.reverse(redemptions[step[1] % len(redemptions)], WEB)
            elif step[0] == "hold":
                holds.append(
                    container.redemptions.hold_points(cid, uuid.uuid4().hex[:10], step[1], step[2], WEB)[0]
                )
            elif step[0] == "capture" and holds:
                hold = holds[step[1] % len(holds)]
                container.redemptions.capture_points_hold(hold, min(step[2], hold.amount), WEB)
            elif step[0] == "release" and holds:
                container.redemptions.release_points_hold(holds[step[1] % len(holds)])
            elif step[0] == "time":
                clock.advance(seconds=step[1])
                container.sweeper.run()
        except DomainError:
            after = container.customers.get(cid)
            assert (after.points, after.ledger_seq) == (before.points, before.ledger_seq)

        customer = container.customers.get(cid)
        ledger = repo.all_ledger(cid)
        now = clock.now()
        assert customer.points.available + customer.points.pending == sum(e.points for e in ledger)
        assert customer.points.available >= 0
        assert customer.spendable(now) >= 0
        for lot in (e for e in ledger if e.remaining is not None):
            assert 0 <= (lot.remaining or 0) <= lot.points
        assert sum((e.remaining or 0) for e in ledger if e.remaining is not None) >= customer.points.available
