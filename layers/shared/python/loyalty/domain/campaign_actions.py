"""Who a campaign actions on an occasion, and what it gives them: the decisions, without I/O.

`decide` takes what one BatchGetItem read (the customer, the receipts of this campaign for them and
for every profile merged into them, the latest receipt for re-entry, their send log) and answers one
of: the outcome already recorded (a retry), a skip with its reason, the control hold-out, or the
actions to write with what they cost. `limit_reason` says whether the campaign's counter (SPENT)
can still pay for them; the adapter asks DynamoDB the same question as a condition, so concurrent
actors never spend past a limit (services/campaign_actions.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeAlias

from loyalty.domain import contact
from loyalty.domain.campaigns import (
    Campaign,
    Cost,
    CouponAction,
    MessageAction,
    Occasion,
    PointsAction,
    PromoCashAction,
    SkipReason,
    in_control,
)
from loyalty.domain.customers import Customer, CustomerStatus
from loyalty.domain.programme import Messaging
from loyalty.domain.templates import Channel

RecordedOutcome: TypeAlias = Literal["actioned", "control"]


@dataclass(frozen=True)
class Receipt:
    """What one customer came to on one occasion of one campaign (CAMPACT#<campaign>#<customer> /
    OCC#<occasion>): written once, in the transaction that gives what it records."""

    campaign_id: str
    customer_id: str
    occasion: str
    outcome: RecordedOutcome
    at: datetime
    run_id: str | None = None
    given: Mapping[str, Any] = field(default_factory=dict)
    cost: Cost = field(default_factory=Cost)


@dataclass(frozen=True)
class Spent:
    """The campaign's counter (CAMPAIGN#<id> / SPENT): what its limits have paid for so far."""

    recipients: int = 0
    points: int = 0
    amount_cents: int = 0

    def plus(self, cost: Cost) -> Spent:
        return Spent(self.recipients + 1, self.points + cost.points, self.amount_cents + cents(cost.amount))


@dataclass(frozen=True)
class Seen:
    """What the actor read about one customer: the (live) profile, this occasion's receipts by
    customer id (theirs and their merged profiles'), the latest receipt's time across those ids,
    and the send log (channel -> send times)."""

    customer: Customer
    receipts: Mapping[str, Receipt] = field(default_factory=dict)
    last_at: datetime | None = None
    sent_log: Mapping[str, Sequence[datetime]] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """The actions to write for one customer, in the campaign's order."""

    points: int = 0
    coupons: tuple[CouponAction, ...] = ()
    promo_cash: tuple[PromoCashAction, ...] = ()
    messages: tuple[tuple[str, Channel], ...] = ()  # (template_id, channel)
    cost: Cost = field(default_factory=Cost)


@dataclass(frozen=True)
class Verdict:
    """`recorded` (the occasion's own receipt: a retry), `skip` (with `reason`), `control`, or
    `act` (with the `plan`)."""

    kind: Literal["recorded", "skip", "control", "act"]
    reason: SkipReason | None = None
    receipt: Receipt | None = None
    plan: Plan | None = None


# contact.decide's suppression reasons, as campaign skips (quiet hours defer: they never skip).
_CONTACT_SKIPS: dict[str, SkipReason] = {
    contact.NO_CONSENT: "no_consent",
    contact.NO_ADDRESS: "no_consent",
    contact.UNCONFIRMED: "no_consent",  # a double opt-in not confirmed yet
    contact.FREQUENCY_CAP: "frequency_capped",
    contact.CUSTOMER_GONE: "suppressed",
    contact.NO_CUSTOMER: "gone",
}


def cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def decide(
    campaign: Campaign,
    occasion: Occasion,
    seen: Seen,
    *,
    channels: Mapping[str, Channel],
    messaging: Messaging,
    now: datetime,
) -> Verdict:
    """The rules of CAMPAIGNS.md "Who actions a customer", in their order, for `occasion` (whose
    receipts `seen` holds). `channels` maps each message action's template_id to its channel."""
    before = _eligibility(campaign, seen, now)
    if before is not None:
        return before
    customer = seen.customer
    messages: list[tuple[str, Channel]] = []
    for action in campaign.actions:
        if not isinstance(action, MessageAction):
            continue
        channel = channels.get(action.template_id, Channel.EMAIL)
        decision = contact.decide(
            customer=customer, channel=channel, messaging=messaging, sent_log=seen.sent_log, now=now
        )
        if decision.action == "suppress":
            # A customer the message cannot reach gets nothing: a coupon nobody tells them about
            # is not the campaign.
            return Verdict("skip", _CONTACT_SKIPS.get(decision.reason or "", "suppressed"))
        if customer.pending_confirmation:  # a double opt-in not confirmed: the address is not theirs yet
            return Verdict("skip", "no_consent")
        messages.append((action.template_id, channel))
    # The hold-out is drawn from the customers the campaign would reach, after every exclusion:
    # control and treatment then come from one population, so the report's uplift is not the
    # difference between reachable and unreachable customers.
    if in_control(campaign.campaign_id, customer.customer_id, campaign.control_group.percent):
        return Verdict("control")
    return Verdict("act", plan=plan_for(campaign, customer, messages))


def _eligibility(campaign: Campaign, seen: Seen, now: datetime) -> Verdict | None:
    """Gone, recorded, received through a merged profile, not a member, or within re-entry."""
    customer = seen.customer
    if customer.status is not CustomerStatus.ACTIVE:
        return Verdict("skip", "gone")
    own = seen.receipts.get(customer.customer_id)
    if own is not None:
        return Verdict("recorded", receipt=own)
    if seen.receipts:  # a profile merged into this one received it: the survivor counts as having too
        return Verdict("skip", "already_received")
    if campaign.audience.members_only and not customer.member:
        return Verdict("skip", "not_member")
    reentry = campaign.limits.reentry_days
    if reentry is not None and seen.last_at is not None and now - seen.last_at < timedelta(days=reentry):
        return Verdict("skip", "already_received")
    return None


def plan_for(campaign: Campaign, customer: Customer, messages: Sequence[tuple[str, Channel]]) -> Plan:
    """What the campaign gives this customer. Points go to members only (a non-member has no points
    balance to add to: they get the campaign's other actions)."""
    points = sum(a.points for a in campaign.actions if isinstance(a, PointsAction)) if customer.member else 0
    coupons = tuple(a for a in campaign.actions if isinstance(a, CouponAction))
    promo = tuple(a for a in campaign.actions if isinstance(a, PromoCashAction))
    by_channel: dict[str, int] = {}
    for _, channel in messages:
        by_channel[channel.value] = by_channel.get(channel.value, 0) + 1
    cost = Cost(points, sum((a.amount for a in promo), Decimal("0.00")), len(coupons), by_channel)
    return Plan(points, coupons, promo, tuple(messages), cost)


def limited(campaign: Campaign) -> bool:
    """Whether actioning a customer must count on the campaign's SPENT counter (only then: the
    counter is one item every actor of the campaign writes)."""
    limits = campaign.limits
    budget = limits.budget
    return limits.max_recipients is not None or (
        budget is not None and (budget.points is not None or budget.amount is not None)
    )


def limit_reason(campaign: Campaign, spent: Spent, cost: Cost) -> SkipReason | None:
    """Why the counter cannot take one more customer of this cost (None: it can). The recipients
    limit is asked first: a campaign that reached it is done, whatever its budget."""
    limits = campaign.limits
    if limits.max_recipients is not None and spent.recipients >= limits.max_recipients:
        return "max_recipients"
    budget = limits.budget
    if budget is not None:
        if budget.points is not None and spent.points + cost.points > budget.points:
            return "over_budget"
        if budget.amount is not None and spent.amount_cents + cents(cost.amount) > cents(budget.amount):
            return "over_budget"
    return None


def consume(campaign: Campaign, spent: Spent, cost: Cost) -> tuple[Spent, SkipReason | None]:
    """The counter after one more customer (a dry run's local copy), or why it cannot take them."""
    reason = limit_reason(campaign, spent, cost)
    return (spent, reason) if reason else (spent.plus(cost), None)


def given_summary(given: Mapping[str, Any]) -> str:
    parts = []
    if given.get("coupons"):
        parts.append(f"{len(given['coupons'])} coupon(s)")
    if given.get("points"):
        parts.append(f"{given['points']} points")
    if given.get("promo_cash"):
        parts.append(f"{sum(Decimal(str(p['amount'])) for p in given['promo_cash'])} promotional cash")
    if given.get("messages"):
        parts.append(", ".join(f"{c} message" for c in given["messages"]))
    return ", ".join(parts) or "nothing"


def with_given(receipt: Receipt, given: Mapping[str, Any]) -> Receipt:
    return replace(receipt, given=dict(given))
