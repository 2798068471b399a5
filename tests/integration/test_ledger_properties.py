"""Property: whatever the sequence of sales, returns, cancellations and sweeps (expiry), a member's
balance equals the sum of the ledger, no return takes back more than its sale earned, and no
refused step changes anything."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.adapters.transactions import TransactionRepository
from loyalty.api.models.transactions import render_receipt
from loyalty.bootstrap import Container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customers import Consents, CustomerRef, Profile
from loyalty.domain.errors import InvalidOrderTransition, ValidationFailed
from loyalty.domain.ledger import LedgerReason
from loyalty.domain.sales import Line, OrderStatus, SaleType
from loyalty.services.customers import EnrolCommand, RawLink
from loyalty.services.transactions import RecordCommand

POS = Principal("key-pos", KeyKind.POS, "ams-01")
WEB = Principal("key-web", KeyKind.WEB, "web-nl")

sale_step = st.tuples(
    st.just("sale"),
    st.booleans(),  # online?
    st.lists(st.tuples(st.integers(1, 3), st.integers(1, 9999)), min_size=1, max_size=3),  # qty, cents
)
return_step = st.tuples(st.just("return"), st.integers(0, 50), st.integers(0, 2), st.integers(1, 3))
cancel_step = st.tuples(st.just("cancel"), st.integers(0, 50))
time_step = st.tuples(st.just("time"), st.sampled_from([1, 15, 200, 400, 800]))
steps = st.lists(st.one_of(sale_step, return_step, cancel_step, time_step), min_size=1, max_size=10)

counter = itertools.count()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_balance_is_the_sum_of_the_ledger_and_returns_never_credit_twice(
    container: Container, clock: Any, plan: list[tuple[Any, ...]]
) -> None:
    clock.current = datetime(2026, 1, 10, tzinfo=UTC)
    programme = container.programme.current()
    container.programme.replace(programme.model_copy(update={"pending_days": 14}))
    email = f"p{next(counter)}-{uuid.uuid4().hex[:6]}@example.com"
    customer = container.customers.enrol(
        EnrolCommand([RawLink("email", email)], Profile(), Consents(), True, None), POS
    ).customer
    ref = CustomerRef(customer_id=customer.customer_id)
    sales: list[tuple[str, str, list[Line]]] = []  # store, transaction id, lines
    repo = TransactionRepository(container.table)

    for step in plan:
        kind = step[0]
        if kind == "sale":
            online, raw_lines = step[1], step[2]
            lines = [
                Line(str(i), "SKU", None, Decimal(q), Decimal(c) / 100) for i, (q, c) in enumerate(raw_lines)
            ]
            txn = uuid.uuid4().hex[:10]
            total = sum((ln.amount for ln in lines), Decimal(0))
            container.transactions.record(
                _cmd(txn, SaleType.SALE, lines, ref, total, clock.now()),
                WEB if online else POS,
                render=render_receipt,
            )
            sales.append(("web-nl" if online else "ams-01", txn, lines))
        elif kind == "return" and sales:
            store, original, lines = sales[step[1] % len(sales)]
            line = lines[step[2] % len(lines)]
            back = Line(line.line_id, line.sku, None, Decimal(step[3]), line.unit_price)
            before = _snapshot(container, customer.customer_id)
            try:
                container.transactions.record(
                    _cmd(
                        uuid.uuid4().hex[:10],
                        SaleType.RETURN,
                        [back],
                        None,
                        back.amount,
                        clock.now(),
                        original,
                        store,
                    ),
                    WEB if store == "web-nl" else POS,
                    render=render_receipt,
                )
            except ValidationFailed:
                assert _snapshot(container, customer.customer_id) == before  # refused: nothing moved
        elif kind == "cancel" and sales:
            store, original, _ = sales[step[1] % len(sales)]
            if store == "web-nl":
                with contextlib.suppress(InvalidOrderTransition):  # cancelled before: nothing to do
                    container.transactions.set_order_status(store, original, OrderStatus.CANCELLED, WEB)
        elif kind == "time":
            clock.advance(days=step[1])
            container.sweeper.run()

        profile = container.customers.get(customer.customer_id)
        ledger = repo.all_ledger(customer.customer_id)
        assert profile.points.available + profile.points.pending == sum(e.points for e in ledger)
        assert [e.seq for e in sorted(ledger, key=lambda e: e.seq)] == list(range(1, len(ledger) + 1))
        running = 0
        for entry in sorted(ledger, key=lambda e: e.seq):
            running += entry.points
            assert entry.balance_after == running
        earned: dict[str, int] = defaultdict(int)
        taken: dict[str, int] = defaultdict(int)
        for entry in ledger:
            if entry.reason in (LedgerReason.EARN, LedgerReason.RETRO_CREDIT):
                earned[str(entry.transaction_id)] += entry.points
                assert entry.remaining is not None and 0 <= entry.remaining <= entry.points
            elif entry.reason in (LedgerReason.RETURN, LedgerReason.CANCEL):
                # A return's entry names the return and the sale it takes from; a cancellation
                # names the order itself.
                taken[str(entry.original_transaction_id or entry.transaction_id)] -= entry.points
        for txn, points in taken.items():
            assert points <= earned[txn], f"{txn} took back {points} of {earned[txn]}"
        assert profile.points.lifetime == sum(earned.values()) - sum(taken.values())
        for store, txn, _ in sales:
            record = container.transactions.get(store, txn)
            assert record.points_reversed == taken.get(txn, 0)
            assert all(rl.returned_quantity <= rl.line.quantity for rl in record.lines)


def _cmd(
    txn: str,
    kind: SaleType,
    lines: list[Line],
    ref: CustomerRef | None,
    total: Decimal,
    at: datetime,
    original: str | None = None,
    original_store: str | None = None,
) -> RecordCommand:
    return RecordCommand(
        transaction_id=txn,
        type=kind,
        store_id=None,
        occurred_at=at,
        customer=ref,
        lines=lines,
        currency="EUR",
        total=total,
        fingerprint=txn,
        original_transaction_id=original,
        original_store_id=original_store,
    )


def _snapshot(container: Container, customer_id: str) -> tuple[Any, ...]:
    profile = container.customers.get(customer_id)
    return profile.points, profile.ledger_seq, profile.version
