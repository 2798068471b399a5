"""Property (design.md's invariant): after any sequence of sales, returns, events, profile changes,
merges, undos and clock steps, each processed the way the platform processes it (the table's stream
turned into domain events, those of the segments rule handed to the worker; the clock's sweep after
each step of time), every customer's stored memberships equal a from-scratch evaluation at that
moment, and the member rows and size counters agree with them."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.adapters.segments import SegmentRepository
from loyalty.api.models.transactions import render_receipt
from loyalty.bootstrap import Container
from loyalty.domain.errors import DomainError
from loyalty.domain.sales import Line, SaleType
from loyalty.resources import SEGMENT_RULE
from loyalty.services.customers import ProfilePatch
from loyalty.services.publisher import events_of
from loyalty.services.transactions import RecordCommand
from loyalty_local.jobs import StreamPoller
from tests.conftest import FixedClock
from tests.integration.test_segment_membership import ADMIN, POS, enrol, sell, view

RULES: dict[str, dict[str, Any]] = {
    "coffee-twice": {"purchased": {"within": "P7D", "categories": ["coffee"], "count": {"gte": 2}}},
    "spender": {"purchased": {"within": "P10D", "spend": {"gte": "20.00"}}},
    "viewer": {"event": {"type": "product_view", "within": "PT2M"}},
    "vip-emailable": {
        "all": [{"attr": "profile.attributes.vip", "eq": True}, {"attr": "consents.email", "eq": True}]
    },
    "lapsed-member": {"all": [{"attr": "member", "eq": True}, {"not": {"purchased": {"within": "P3D"}}}]},
}

steps = st.lists(
    st.one_of(
        st.tuples(st.just("sale"), st.integers(0, 3), st.sampled_from(["coffee", "tea"]), st.integers(1, 25)),
        st.tuples(st.just("return"), st.integers(0, 20)),
        st.tuples(st.just("event"), st.integers(0, 3)),
        st.tuples(st.just("profile"), st.integers(0, 3), st.sampled_from(["vip", "email"])),
        st.tuples(st.just("merge"), st.integers(0, 3), st.integers(0, 3)),
        st.tuples(st.just("undo"), st.integers(0, 9)),
        st.tuples(st.just("clock"), st.sampled_from([1, 2, 5, 90, 60 * 24 * 3 + 7, 60 * 24 * 8])),
    ),
    min_size=3,
    max_size=10,
)

_pollers: dict[str, StreamPoller] = {}


def deliver(poller: StreamPoller) -> None:
    """What the publisher, the bus rule and the queue do: every committed change's events of the
    segments rule's detail-types, handed to the worker."""
    poller.poll_once()


def poller_for(container: Container, aws_session: Any) -> StreamPoller:
    name = container.settings.table_name
    if name not in _pollers:
        wanted = set(SEGMENT_RULE.detail_types)

        def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
            for record in event["Records"]:
                for out in events_of(record):
                    if out.detail_type in wanted:
                        container.segment_worker.on_event(out.detail_type, json.loads(out.detail))
            return {"batchItemFailures": []}

        _pollers[name] = StreamPoller(aws_session, name, handler=handle, function="segments")
    return _pollers[name]


def check(container: Container, ids: list[str]) -> None:
    """Each customer's stored memberships are what a from-scratch evaluation says now."""
    membership = container.segment_membership
    now = container.clock.now()
    for cid in ids:
        assert frozenset(membership.memberships(cid)) == membership.answer(cid, now=now), (cid, now)


def check_rows(container: Container, ids: list[str]) -> None:
    """The member rows and size counters stand for exactly the stored memberships."""
    repo = SegmentRepository(container.table)
    stored = {cid: set(container.segment_membership.memberships(cid)) for cid in ids}
    for sid in RULES:
        rows = {c for shard in range(repo.shards) for c in repo.members(sid, shard)}
        assert rows == {cid for cid, held in stored.items() if sid in held}, sid
        assert repo.size(sid) == len(rows), sid


_seen_ids: dict[str, list[str]] = {}  # every customer of a table, across the examples that share it


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_stored_membership_equals_a_from_scratch_evaluation_after_any_sequence(
    container: Container, clock: FixedClock, aws_session: Any, plan: list[tuple[Any, ...]]
) -> None:
    # One table and clock for every example (as the merge property does): state and time carry over.
    repo = SegmentRepository(container.table)
    for sid, rule in RULES.items():
        if sid not in {s.segment_id for s in repo.definitions()}:
            repo.put_definition(sid, sid, rule, clock.now())
    poller = poller_for(container, aws_session)
    ids = [enrol(container), enrol(container), enrol(container, member=False), enrol(container)]
    everyone = _seen_ids.setdefault(container.settings.table_name, [])
    everyone.extend(ids)
    sales: list[tuple[str, str, int]] = []
    merges: list[str] = []
    deliver(poller)
    for step in plan:
        kind = step[0]
        try:
            if kind == "sale":
                cid = container.customers.get(ids[step[1]]).customer_id
                sales.append((sell(container, cid, step[2], f"{step[3]}.00"), step[2], step[3]))
            elif kind == "return" and sales:
                tid, category, price = sales[step[1] % len(sales)]
                container.transactions.record(
                    RecordCommand(
                        transaction_id=f"R{uuid.uuid4().hex[:8]}",
                        type=SaleType.RETURN,
                        store_id=None,
                        occurred_at=clock.now(),
                        customer=None,
                        lines=[Line("1", "ESP", category, Decimal(1), Decimal(price))],
                        currency="EUR",
                        total=Decimal(price),
                        fingerprint=uuid.uuid4().hex,
                        original_transaction_id=tid,
                    ),
                    POS,
                    render=render_receipt,
                )
            elif kind == "event":
                view(container, container.customers.get(ids[step[1]]).customer_id)
            elif kind == "profile":
                customer = container.customers.get(ids[step[1]])
                if step[2] == "vip":
                    vip = not customer.profile.attributes.get("vip", False)
                    patch = ProfilePatch(fields={}, attributes={"vip": vip}, consents={}, member=None)
                else:
                    patch = ProfilePatch(
                        fields={},
                        attributes=None,
                        consents={"email": not customer.consents.email},
                        member=None,
                    )
                container.customers.update(customer.customer_id, patch)
            elif kind == "merge":
                record = container.merges.request(ids[step[1]], ids[step[2]], "property", ADMIN)
                merges.append(record.merge_id)
                container.merges.process(record.merge_id)
            elif kind == "undo" and merges:
                merge_id = merges[step[1] % len(merges)]
                container.merges.request_undo(merge_id, ADMIN)
                container.merges.process(merge_id)
            elif kind == "clock":
                clock.advance(minutes=step[1])
        except DomainError:
            pass  # refused (a merged profile, a return of a return, a blocked undo): nothing changed
        deliver(poller)
        container.segment_membership.sweep()
        check(container, ids)
    check_rows(container, everyone)
