"""Who a campaign actions and what it costs them: the pure decisions (domain/campaign_actions.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from loyalty.domain.campaign_actions import Receipt, Seen, Spent, consume, decide, limit_reason, limited
from loyalty.domain.campaigns import Campaign, Cost, Occasion, in_control
from loyalty.domain.customers import Consents, Customer, CustomerStatus, Profile
from loyalty.domain.links import Link
from loyalty.domain.programme import FrequencyCap, Messaging, QuietHours
from loyalty.domain.templates import Channel

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
RUN = Occasion("run:r1", "r1")


def customer(customer_id: str = "01CUSTOMERAAAAAAAAAAAAAAAA", **fields: Any) -> Customer:
    base = Customer(
        customer_id=customer_id,
        member=True,
        status=CustomerStatus.ACTIVE,
        profile=Profile(first_name="Ann"),
        consents=Consents(email=True),
        links=(Link("email", "ann@example.com"),),
        created_at=NOW - timedelta(days=100),
    )
    return replace(base, **fields)


def campaign(actions: list[dict[str, Any]] | None = None, **fields: Any) -> Campaign:
    return Campaign.model_validate(
        {
            "campaign_id": "spring",
            "name": "Spring",
            "trigger": {"type": "manual"},
            "actions": actions
            or [
                {"type": "coupon", "offer_id": "o1"},
                {"type": "points", "points": 100},
                {"type": "promo_cash", "amount": "2.50"},
                {"type": "message", "template_id": "t-mail"},
            ],
            "status": "active",
            "created_at": NOW,
            "updated_at": NOW,
            **fields,
        }
    )


def verdict(camp: Campaign, seen: Seen, messaging: Messaging | None = None, now: datetime = NOW) -> Any:
    return decide(
        camp, RUN, seen, channels={"t-mail": Channel.EMAIL}, messaging=messaging or Messaging(), now=now
    )


def receipt(customer_id: str, outcome: str = "actioned") -> Receipt:
    return Receipt("spring", customer_id, RUN.key, outcome, NOW)  # type: ignore[arg-type]


def test_an_eligible_customer_gets_every_action_and_its_cost() -> None:
    v = verdict(campaign(), Seen(customer()))
    assert v.kind == "act"
    assert (
        v.plan.points == 100 and len(v.plan.coupons) == 1 and v.plan.messages == (("t-mail", Channel.EMAIL),)
    )
    assert v.plan.cost == Cost(100, Decimal("2.50"), 1, {"email": 1})


def test_a_non_member_gets_the_other_actions_but_no_points() -> None:
    v = verdict(campaign(), Seen(customer(member=False)))
    assert v.kind == "act" and v.plan.points == 0 and v.plan.cost.points == 0 and v.plan.cost.coupons == 1
    assert (
        verdict(campaign(audience={"members_only": True}), Seen(customer(member=False))).reason
        == "not_member"
    )


def test_their_own_receipt_is_the_recorded_outcome_a_merged_profiles_is_already_received() -> None:
    me = customer(merged_from=("01MERGEDBBBBBBBBBBBBBBBBBB",))
    own = receipt(me.customer_id, "control")
    assert verdict(campaign(), Seen(me, {me.customer_id: own})).receipt == own
    merged = Seen(me, {"01MERGEDBBBBBBBBBBBBBBBBBB": receipt("01MERGEDBBBBBBBBBBBBBBBBBB")})
    assert (verdict(campaign(), merged).kind, verdict(campaign(), merged).reason) == (
        "skip",
        "already_received",
    )


def test_gone_customers_are_skipped() -> None:
    assert verdict(campaign(), Seen(customer(status=CustomerStatus.ERASED))).reason == "gone"


def test_reentry_days_count_from_the_latest_receipt() -> None:
    camp = campaign(limits={"reentry_days": 30})
    assert verdict(camp, Seen(customer(), last_at=NOW - timedelta(days=29))).reason == "already_received"
    assert verdict(camp, Seen(customer(), last_at=NOW - timedelta(days=30))).kind == "act"
    assert verdict(campaign(), Seen(customer(), last_at=NOW - timedelta(days=1))).kind == "act"


def test_the_control_group_is_drawn_from_the_customers_the_campaign_would_reach() -> None:
    # Held out after the contact policy: a customer the message cannot reach is excluded whatever
    # the hash says, so control and treatment are one population and uplift compares like with like.
    camp = campaign(control_group={"percent": 50})
    ids = [f"01CUSTOMER{n:016d}" for n in range(40)]
    held = [i for i in ids if in_control("spring", i, 50)]
    assert held and len(held) < len(ids)
    assert verdict(camp, Seen(customer(held[0], consents=Consents(email=False)))).reason == "no_consent"
    assert verdict(camp, Seen(customer(held[0]))).kind == "control"
    free = next(i for i in ids if i not in held)
    assert verdict(camp, Seen(customer(free, consents=Consents(email=False)))).reason == "no_consent"
    assert verdict(camp, Seen(customer(free))).kind == "act"


@pytest.mark.parametrize(
    ("who", "messaging", "reason"),
    [
        (customer(consents=Consents(email=False)), Messaging(), "no_consent"),
        (customer(links=()), Messaging(), "no_consent"),  # no address for the channel
        (
            customer(),
            Messaging(frequency_caps={"email": FrequencyCap(max=1, per_days=7)}),
            "frequency_capped",
        ),
    ],
)
def test_a_customer_the_message_cannot_reach_gets_nothing(
    who: Customer, messaging: Messaging, reason: str
) -> None:
    seen = Seen(who, sent_log={"email": [NOW - timedelta(days=1)]})
    v = verdict(campaign(), seen, messaging)
    assert (v.kind, v.reason, v.plan) == ("skip", reason, None)


def test_an_unconfirmed_double_opt_in_is_not_messaged() -> None:
    pending = customer(member=False, confirm_by=NOW + timedelta(days=2))
    assert pending.pending_confirmation
    assert verdict(campaign(), Seen(pending)).reason == "no_consent"
    coupon_only = campaign([{"type": "coupon", "offer_id": "o1"}])
    assert verdict(coupon_only, Seen(pending)).kind == "act"


def test_quiet_hours_do_not_exclude() -> None:
    quiet = Messaging(quiet_hours=QuietHours(start="00:00", end="23:59"))
    assert verdict(campaign(), Seen(customer()), quiet).kind == "act"


def test_limits_answer_which_one_stops_a_customer() -> None:
    camp = campaign(limits={"max_recipients": 2, "budget": {"points": 250, "amount": "6.00"}})
    cost = Cost(100, Decimal("2.50"), 1, {})
    assert limited(camp) and not limited(campaign())
    assert limit_reason(camp, Spent(), cost) is None
    assert limit_reason(camp, Spent(1, 200, 0), cost) == "over_budget"  # 300 points > 250
    assert limit_reason(camp, Spent(1, 100, 400), cost) == "over_budget"  # 6.50 > 6.00
    assert limit_reason(camp, Spent(2, 0, 0), cost) == "max_recipients"  # asked first
    spent, reason = consume(camp, Spent(), cost)
    assert (spent, reason) == (Spent(1, 100, 250), None)
    spent, reason = consume(camp, spent, cost)
    assert (spent, reason) == (Spent(2, 200, 500), None)
    assert consume(camp, spent, cost) == (spent, "max_recipients")
