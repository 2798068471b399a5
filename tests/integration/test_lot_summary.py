"""The profile's summary of the open lots (domain/lots.py): a points redemption it covers reads
once (the BatchGetItem it makes anyway) and writes once; every movement keeps it exact or leaves
it visibly stale, and a stale or too short summary falls back to the open-lot index."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from loyalty.adapters.transactions import TransactionRepository
from loyalty.api.models.redemptions import render_redemption
from loyalty.api.models.transactions import render_receipt
from loyalty.bootstrap import Container
from loyalty.domain import lots as lot_summary
from loyalty.domain.customers import CustomerRef
from loyalty.domain.sales import Line, SaleType
from loyalty.services.transactions import RecordCommand
from tests.integration.test_redemptions import POS, balanced, member_with, redeem


@contextmanager
def dynamodb_calls(container: Container) -> Iterator[list[str]]:
    """The DynamoDB operations the container's client makes inside the block, in order."""
    calls: list[str] = []
    events = container.table._client.meta.events

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    events.register("before-call.dynamodb", record, unique_id="test-lot-summary")
    try:
        yield calls
    finally:
        events.unregister("before-call.dynamodb", unique_id="test-lot-summary")


def sale(container: Container, cid: str, txn: str, price: str) -> None:
    container.transactions.record(
        RecordCommand(
            transaction_id=txn,
            type=SaleType.SALE,
            store_id=None,
            occurred_at=container.clock.now(),
            customer=CustomerRef(customer_id=cid),
            lines=[Line("1", "X", None, Decimal(1), Decimal(price))],
            currency="EUR",
            total=Decimal(price),
            fingerprint=f"{txn}/{price}",
        ),
        POS,
        render=render_receipt,
    )


def assert_exact(container: Container, cid: str) -> lot_summary.LotSummary | None:
    """The summary, if the profile holds a current one, names the first open lots as they are."""
    customer = container.customers.get(cid)
    summary = lot_summary.current(customer.lots, customer.ledger_seq)
    open_lots = TransactionRepository(container.table).open_lots(cid, consistent=True)
    if summary is not None:
        named = [(lot.seq, lot.remaining, lot.expires_at) for lot in summary.lots]
        first = [(lot.seq, lot.remaining, lot.expires_at) for lot in open_lots[: len(named)]]
        assert named == first
        if not summary.more:
            assert len(open_lots) == len(named)
    return summary


def test_a_points_redemption_within_the_summary_reads_once_and_writes_once(
    container: Container, clock: Any
) -> None:
    cid = member_with(container, "2.00", "1.00", "2.00")  # 50 points in three lots
    assert assert_exact(container, cid) is not None  # the sales kept it
    for i in range(3):
        with dynamodb_calls(container) as calls:
            done = container.redemptions.redeem(redeem(f"R{i}", cid, 15), POS, render=render_redemption)
        assert calls == ["BatchGetItem", "TransactWriteItems"]
        assert done.balance_after == 50 - 15 * (i + 1)
        assert assert_exact(container, cid) is not None
    assert balanced(container, cid).points.available == 5
    # A sale in between keeps the summary exact: the next redemption still reads once.
    clock.advance(days=1)
    sale(container, cid, "S1", "3.00")
    with dynamodb_calls(container) as calls:
        container.redemptions.redeem(redeem("R9", cid, 20), POS, render=render_redemption)
    assert calls == ["BatchGetItem", "TransactWriteItems"]
    assert balanced(container, cid).points.available == 15
    assert assert_exact(container, cid) is not None


def test_lots_that_expire_first_are_spent_first_from_the_summary(container: Container, clock: Any) -> None:
    cid = member_with(container, "3.00")  # lot 1: 30 points
    clock.advance(days=40)
    sale(container, cid, "S2", "5.00")  # lot 2: 50 points, expires later
    with dynamodb_calls(container) as calls:
        result = container.redemptions.redeem(redeem("R1", cid, 40), POS, render=render_redemption)
    assert calls == ["BatchGetItem", "TransactWriteItems"]
    assert result.record.taken == {1: 30, 2: 10}
    assert assert_exact(container, cid) is not None
    container.redemptions.reverse("R1", POS)  # back into lots 1 and 2: the summary follows
    summary = assert_exact(container, cid)
    assert summary is not None and [(lot.seq, lot.remaining) for lot in summary.lots] == [(1, 30), (2, 50)]
    assert balanced(container, cid).points.available == 80


def test_a_member_with_more_lots_than_the_summary_holds(container: Container, clock: Any) -> None:
    """The profile names only the first LIMIT lots; a redemption larger than they hold queries the
    index, spends in the same order, and leaves a fresh summary behind."""
    count = lot_summary.LIMIT + 4
    cid = member_with(container, *["1.00"] * count)  # 10 points a lot
    summary = assert_exact(container, cid)
    assert summary is not None and len(summary.lots) == lot_summary.LIMIT and summary.more
    wanted = 10 * lot_summary.LIMIT + 5
    clock.advance(minutes=1)  # the open-lot index has settled since the last sale
    with dynamodb_calls(container) as calls:
        result = container.redemptions.redeem(redeem("BIG", cid, wanted), POS, render=render_redemption)
    assert calls == ["BatchGetItem", "Query", "TransactWriteItems"]
    assert sum(result.record.taken.values()) == wanted
    assert sorted(result.record.taken) == list(range(1, lot_summary.LIMIT + 2))  # earliest lots first
    summary = assert_exact(container, cid)
    assert summary is not None and not summary.more and len(summary.lots) == count - lot_summary.LIMIT
    with dynamodb_calls(container) as calls:
        container.redemptions.redeem(redeem("SMALL", cid, 10), POS, render=render_redemption)
    assert calls == ["BatchGetItem", "TransactWriteItems"]
    assert balanced(container, cid).points.available == 10 * count - wanted - 10


def test_a_profile_without_a_current_summary_queries_once_then_has_one(
    container: Container, clock: Any
) -> None:
    cid = member_with(container, "2.00", "3.00")
    clock.advance(minutes=1)  # the open-lot index has settled since the last sale
    # As a profile written before summaries existed, or by a writer that does not keep one.
    container.table._client.update_item(
        TableName=container.table.name,
        Key=container.table.key(f"CUST#{cid}", "PROFILE"),
        UpdateExpression="REMOVE #lots",
        ExpressionAttributeNames={"#lots": "lots"},
    )
    assert lot_summary.current(container.customers.get(cid).lots, 2) is None
    with dynamodb_calls(container) as calls:
        container.redemptions.redeem(redeem("R1", cid, 25), POS, render=render_redemption)
    assert calls == ["BatchGetItem", "Query", "TransactWriteItems"]
    assert assert_exact(container, cid) is not None
    with dynamodb_calls(container) as calls:
        container.redemptions.redeem(redeem("R2", cid, 25), POS, render=render_redemption)
    assert calls == ["BatchGetItem", "TransactWriteItems"]
    assert balanced(container, cid).points.available == 0
    assert TransactionRepository(container.table).open_lots(cid, consistent=True) == []


def test_a_return_and_the_expiry_sweep_keep_it_exact(container: Container, clock: Any) -> None:
    cid = member_with(container, "4.00")  # lot 1 from sale E0-<email>: 40 points
    clock.advance(days=30)
    sale(container, cid, "S2", "2.00")  # lot 2
    container.redemptions.redeem(redeem("R1", cid, 10), POS, render=render_redemption)
    assert assert_exact(container, cid) is not None
    customer = container.customers.get(cid)
    email = next(link.value for link in customer.links if link.type == "email")
    container.transactions.record(
        RecordCommand(
            transaction_id="RET1",
            type=SaleType.RETURN,
            store_id=None,
            occurred_at=clock.now(),
            customer=CustomerRef(customer_id=cid),
            lines=[Line("1", "X", None, Decimal(1), Decimal("4.00"))],
            currency="EUR",
            total=Decimal("4.00"),
            fingerprint="RET1",
            original_transaction_id=f"E0-{email}",
        ),
        POS,
        render=render_receipt,
    )
    assert assert_exact(container, cid) is not None
    balanced(container, cid)
    clock.advance(days=800)  # every lot expires; the sweep closes them
    for _ in range(3):  # a lot may come due for its tier window before its expiry
        container.sweeper.run()
    summary = assert_exact(container, cid)
    assert summary is not None and summary.lots == ()
    assert balanced(container, cid).points.available <= 0


def test_no_summary_is_written_from_an_index_that_may_lag(container: Container, clock: Any) -> None:
    """Lots read from the eventually consistent index right after the profile changed may miss
    one: the redemption spends as before but leaves no summary, and a later one writes it."""
    cid = member_with(container, "2.00", "3.00")
    container.table._client.update_item(
        TableName=container.table.name,
        Key=container.table.key(f"CUST#{cid}", "PROFILE"),
        UpdateExpression="REMOVE #lots",
        ExpressionAttributeNames={"#lots": "lots"},
    )
    container.redemptions.redeem(redeem("R1", cid, 5), POS, render=render_redemption)
    customer = container.customers.get(cid)
    assert lot_summary.current(customer.lots, customer.ledger_seq) is None
    clock.advance(minutes=1)
    with dynamodb_calls(container) as calls:
        container.redemptions.redeem(redeem("R2", cid, 5), POS, render=render_redemption)
    assert calls == ["BatchGetItem", "Query", "TransactWriteItems"]
    assert assert_exact(container, cid) is not None
    with dynamodb_calls(container) as calls:
        container.redemptions.redeem(redeem("R3", cid, 5), POS, render=render_redemption)
    assert calls == ["BatchGetItem", "TransactWriteItems"]
    assert balanced(container, cid).points.available == 35
