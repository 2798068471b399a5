"""Property: random enrolments, links, sales, returns, redemptions, customer events, merges and
undos keep every link on one live customer, every record on a live customer, points conserved,
each live balance equal to its ledger, every timeline record on one live customer's timeline
(and there only), and an undo right after a merge restores the split exactly, timelines included."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.adapters.timeline import EVENT, customer_owner, timeline_fields
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
        st.tuples(st.just("event"), st.integers(0, 9), st.integers(0, 400)),
    ),
    min_size=3,
    max_size=14,
)


def record_event(container: Container, customer_id: str, days_ago: int) -> str:
    """An event as the events ingest stores it (EVENT#<store>#<event_id> / EVENT, with its timeline
    entry), written directly: the timeline's merge logic must move it whatever wrote it."""
    event_id = uuid.uuid4().hex
    occurred = container.clock.now() - timedelta(days=days_ago)  # late events land in the past
    container.table.put(
        {
            "pk": f"EVENT#ams-01#{event_id}",
            "sk": "EVENT",
            "type": "event",
            "event_id": event_id,
            "store_id": "ams-01",
            "event_type": "site_visit",
            "customer_id": customer_id,
            "member": True,
            "occurred_at": occurred.isoformat(),
            "properties": {"url": "https://shop.example/"},
            **timeline_fields(
                customer_owner(customer_id),
                occurred,
                EVENT,
                "site_visit",
                "Visited the web shop",
                {"store_id": "ams-01", "event_id": event_id},
                {"url": "https://shop.example/"},
            ),
        }
    )
    return event_id


def timeline_of(container: Container, customer_id: str) -> list[dict[str, Any]]:
    """The customer's timeline as its index lists it: table keys and the entry."""
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        page, cursor = container.table.query(
            customer_owner(customer_id), index="gsi3", limit=200, cursor=cursor
        )
        out += page
        if cursor is None:
            return out


def moved_kinds(container: Container, customer_id: str) -> set[tuple[str, str]]:
    """What an undo must give back exactly: every entry but the merges' own (their entries, and
    the tier changes a merge or an undo made: a non-member survivor becomes a member, and back)."""
    return {
        (str(i["pk"]), str(i["tlsk"]))
        for i in timeline_of(container, customer_id)
        if i["tl"]["kind"] != "merge"
        and not (i["tl"]["kind"] == "tier" and i["tl"]["data"]["reason"] in ("merge", "merge_undone"))
    }


def check(container: Container, ids: list[str], expected_points: int, events: set[str]) -> None:
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
            assert [i["tl"]["kind"] for i in timeline_of(container, cid)] in ([], ["merge"]), (
                "a tombstone's timeline holds records"  # only the entry of an undo that restored it
            )
    seen_events: list[str] = []
    for cid, customer in live.items():
        ledger = repo.all_ledger(cid)
        assert customer.points.available + customer.points.pending == sum(e.points for e in ledger)
        for link in customer.links:
            assert container.customers.lookup(link.type, link.value).customer_id == cid
        txns, _ = repo.history(cid, 200, None)
        assert all(t.customer_id == cid for t in txns)
        timeline = timeline_of(container, cid)
        on_timeline = [i["tl"] for i in timeline]
        # each transaction and ledger entry is on its owner's timeline, once
        assert sorted(
            i["ref"]["transaction_id"] for i in on_timeline if i["kind"] == "transaction"
        ) == sorted(t.transaction_id for t in txns)
        assert len([i for i in on_timeline if i["kind"] == "points"]) == len(ledger)
        for item in timeline:
            if str(item["pk"]).startswith("EVENT#"):
                record = container.table.get(str(item["pk"]), "EVENT")
                assert record is not None and record["customer_id"] == cid, record
                seen_events.append(str(record["event_id"]))
    assert sorted(seen_events) == sorted(events), "an event is on one live customer's timeline, once"
    assert sum(c.points.available + c.points.pending for c in live.values()) == expected_points


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_merges_and_undos_keep_identity_and_points_exact(
    container: Container, plan: list[tuple[Any, ...]]
) -> None:
    ids = [enrol(container, email()), enrol(container, email(), member=False)]
    sales: list[tuple[str, int]] = []
    merges: list[str] = []
    events: set[str] = set()
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
            elif kind == "event":
                live = container.customers.get(ids[step[1] % len(ids)]).customer_id
                events.add(record_event(container, live, step[2]))
            elif kind == "merge":
                a, b = ids[step[1] % len(ids)], ids[step[2] % len(ids)]
                for cid in (a, b):  # something on each timeline that only the generic move moves
                    events.add(record_event(container, container.customers.get(cid).customer_id, 3))
                record = container.merges.request(a, b, "property", ADMIN)
                merges.append(record.merge_id)
                split = {cid: container.customers.get(cid) for cid in (a, b)}
                timelines = {cid: moved_kinds(container, cid) for cid in (a, b)}
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
                    assert moved_kinds(container, cid) == timelines[cid], "the timeline came back"
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
        check(container, ids, points, events)
