"""Property: whatever the sequence of redeem, reverse, reload, hold, capture, release and expiry,
a gift card's balance is the sum of its ledger, never negative, and what is available never
exceeds it; refused steps change nothing."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.adapters.stored_value import StoredValueRepository
from loyalty.api.models.stored_value import render_spent
from loyalty.bootstrap import Container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.errors import DomainError, ValidationFailed
from loyalty.domain.stored_value import luhn_check_digit

POS = Principal("key-pos", KeyKind.POS, "ams-01")

amounts = st.integers(1, 6000).map(lambda cents: Decimal(cents) / 100)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("redeem"), amounts),
        st.tuples(st.just("reverse"), st.integers(0, 20)),
        st.tuples(st.just("reload"), amounts),
        st.tuples(st.just("hold"), amounts, st.sampled_from([30, 3600])),
        st.tuples(st.just("capture"), st.integers(0, 20), amounts),
        st.tuples(st.just("release"), st.integers(0, 20)),
        st.tuples(st.just("time"), st.sampled_from([10, 60, 7200])),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_balance_is_the_ledger_and_never_negative(
    container: Container, clock: Any, plan: list[tuple[Any, ...]]
) -> None:
    body = "6036" + str(uuid.uuid4().int)[:11]
    number = body + luhn_check_digit(body)
    container.stored_value.sell_gift_card(Decimal("100.00"), "EUR", None, POS, card_number=number)
    redemptions: list[str] = []
    holds: list[str] = []
    repo = StoredValueRepository(container.table)

    for step in plan:
        before = repo.get(number)
        try:
            if step[0] == "redeem":
                rid = uuid.uuid4().hex[:12]
                container.stored_value.redeem(number, rid, step[1], None, POS, rid, render=render_spent)
                redemptions.append(rid)
            elif step[0] == "reverse" and redemptions:
                container.redemptions.reverse(redemptions[step[1] % len(redemptions)], POS)
            elif step[0] == "reload":
                container.stored_value.reload(number, step[1], POS)
            elif step[0] == "hold":
                hid = uuid.uuid4().hex[:12]
                container.stored_value.hold(number, hid, step[1], step[2], POS)
                holds.append(hid)
            elif step[0] == "capture" and holds:
                container.stored_value.capture(holds[step[1] % len(holds)], step[2], POS)
            elif step[0] == "release" and holds:
                container.stored_value.release(holds[step[1] % len(holds)], POS)
            elif step[0] == "time":
                clock.advance(seconds=step[1])
        except (DomainError, ValidationFailed):
            after = repo.get(number)
            assert after is not None and before is not None
            assert (after.balance, after.ledger_seq) == (before.balance, before.ledger_seq)  # nothing moved

        account = repo.get(number)
        assert account is not None
        moves, _ = repo.ledger(number, 200, None)
        now = clock.now()
        assert account.balance == sum(m.amount for m in moves)
        assert account.balance >= 0
        assert 0 <= account.available(now) <= account.balance
        assert [m.seq for m in sorted(moves, key=lambda m: m.seq)] == list(range(1, len(moves) + 1))
