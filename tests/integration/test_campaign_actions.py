"""The CampaignActor against DynamoDB Local: one customer, one occasion, everything given exactly
once — under twenty concurrent actors, retries, budgets and recipient limits spent exactly, control
hold-outs, the contact policy, merged profiles — and a dry run that writes nothing."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from loyalty.adapters.campaign_actions import CampaignActionRepository
from loyalty.adapters.messages import MessageRepository
from loyalty.adapters.offers import OfferRepository
from loyalty.adapters.stored_value import StoredValueRepository
from loyalty.adapters.timeline import TimelineRepository, customer_owner
from loyalty.adapters.transactions import TransactionRepository
from loyalty.bootstrap import Container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.campaigns import ActResult, Campaign, Occasion, in_control
from loyalty.domain.customers import Consents, Profile
from loyalty.domain.events import CAMPAIGN_ACTIONED
from loyalty.domain.ledger import LedgerReason
from loyalty.domain.merges import MergeStatus
from loyalty.domain.offers import Offer
from loyalty.domain.stored_value import AccountKind
from loyalty.domain.templates import Channel, Template
from loyalty.services.customers import EnrolCommand, RawLink
from loyalty_local.emulators import DynamoDBLocal, Moto
from loyalty_local.provision import LOCAL_SENDER_EMAIL
from tests.conftest import FixedClock
from tests.integration.test_messaging import raw_emails_to, text_of

POS = Principal("key-pos", KeyKind.POS, "ams-01")
ADMIN = Principal("key-admin", KeyKind.ADMIN, None)
RUN = Occasion("run:r1", "r1")


# ---- fixtures and helpers ---------------------------------------------------------------------


def enrol(
    c: Container, *, email: str | None = None, consents: Consents | None = None, member: bool = True
) -> str:
    links = [RawLink("email", email or f"c-{uuid.uuid4().hex[:10]}@example.com")]
    command = EnrolCommand(links, Profile(first_name="Ann"), consents or Consents(email=True), member, None)
    return c.customers.enrol(command, POS).customer.customer_id


def offer(c: Container, offer_id: str = "spring-coffee") -> str:
    c.offers.create_offer(
        Offer.model_validate(
            {
                "offer_id": offer_id,
                "name": "spring coffee",
                "requires_coupon": True,
                "effect": {"type": "percent_off", "value": "100"},
            }
        )
    )
    return offer_id


def template(c: Container, body: str | None = None) -> str:
    template_id = f"t-{uuid.uuid4().hex[:6]}"
    c.templates.put(
        Template(
            template_id,
            Channel.EMAIL,
            body or "Hello {{ first_name }}. Unsubscribe: {{ unsubscribe_url }}",
            subject="Spring",
        )
    )
    return template_id


def campaign(c: Container, actions: list[dict[str, Any]], **fields: Any) -> Campaign:
    now = c.clock.now()
    return Campaign.model_validate(
        {
            "campaign_id": fields.pop("campaign_id", f"camp-{uuid.uuid4().hex[:8]}"),
            "name": "Spring",
            "trigger": {"type": "manual"},
            "actions": actions,
            "status": "active",
            "created_at": now,
            "updated_at": now,
            **fields,
        }
    )


def count_items(c: Container) -> int:
    client = c.client("dynamodb")
    total, start = 0, None
    while True:
        kwargs: dict[str, Any] = {"TableName": c.table.name, "Select": "COUNT", "ConsistentRead": True}
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = client.scan(**kwargs)
        total += page["Count"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return total


def campaign_ledger(c: Container, cid: str, campaign_id: str) -> list[int]:
    return [
        e.points
        for e in TransactionRepository(c.table).all_ledger(cid)
        if e.reason is LedgerReason.CAMPAIGN and e.actor == f"campaign:{campaign_id}"
    ]


def coupons(c: Container, cid: str) -> list[Any]:
    found, _ = OfferRepository(c.table).coupons_of(cid, 100, None)
    return found


def campaign_messages(c: Container, cid: str, campaign_id: str) -> list[Any]:
    client = c.client("dynamodb")
    items = client.scan(
        TableName=c.table.name,
        FilterExpression="#t = :m AND customer_id = :c AND campaign_id = :k",
        ExpressionAttributeNames={"#t": "type"},
        ExpressionAttributeValues={":m": {"S": "message"}, ":c": {"S": cid}, ":k": {"S": campaign_id}},
        ConsistentRead=True,
    )["Items"]
    return items


def campaign_timeline(c: Container, cid: str) -> list[dict[str, Any]]:
    items, _ = TimelineRepository(c.table).page(customer_owner(cid), frozenset({"campaign"}), 50, None)
    return items


def concurrently(n: int, work: Callable[[int], ActResult]) -> list[ActResult]:
    start = threading.Barrier(n)

    def run(i: int) -> ActResult:
        start.wait()
        return work(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


# ---- exactly once -----------------------------------------------------------------------------


def test_twenty_actors_of_one_customer_and_occasion_give_everything_once(container: Container) -> None:
    cid = enrol(container)
    camp = campaign(
        container,
        [
            {"type": "coupon", "offer_id": offer(container), "valid_days": 14},
            {"type": "points", "points": 250},
            {"type": "message", "template_id": template(container)},
        ],
    )
    actor = container.campaign_actor
    results = concurrently(20, lambda _i: actor.act(camp, RUN, cid))

    assert {r.outcome for r in results} == {"actioned"}
    assert sum(r.first_time for r in results) == 1
    first = next(r for r in results if r.first_time)
    assert {r.given["coupon"]["code"] for r in results} == {first.given["coupon"]["code"]}
    (coupon,) = coupons(container, cid)
    assert coupon.code == first.given["coupon"]["code"] and coupon.campaign_id == camp.campaign_id
    assert coupon.valid_until == container.clock.now() + timedelta(days=14)
    assert campaign_ledger(container, cid, camp.campaign_id) == [250]
    customer = container.customers.get(cid)
    assert customer.points.available == 250  # given at once: nothing can return it
    (message,) = campaign_messages(container, cid, camp.campaign_id)
    assert message["message_id"]["S"] == first.given["messages"]["email"]
    (entry,) = campaign_timeline(container, cid)
    assert entry["ref"] == {"campaign_id": camp.campaign_id, "occasion": RUN.key}
    assert entry["data"]["campaign_id"] == camp.campaign_id and entry["data"]["points"] == 250
    receipt = container.table.get(f"CAMPACT#{camp.campaign_id}#{cid}", f"OCC#{RUN.key}")
    assert receipt is not None and receipt["outcome"] == "actioned" and receipt["run_id"] == "r1"
    assert receipt["coupon_code"] == coupon.code and receipt["points"] == 250
    (event,) = receipt["outbox"]
    assert event["detail_type"] == CAMPAIGN_ACTIONED

    # A retry after success: the recorded outcome, nothing new written.
    before = count_items(container)
    again = actor.act(camp, RUN, cid)
    assert (again.outcome, again.first_time, again.given["coupon"]) == (
        "actioned",
        False,
        first.given["coupon"],
    )
    assert count_items(container) == before
    # Another occasion of the same campaign is another action.
    assert actor.act(camp, Occasion("run:r2", "r2"), cid).first_time
    assert campaign_ledger(container, cid, camp.campaign_id) == [250, 250]


def test_campaigns_giving_one_customer_points_at_once_each_land_on_the_profile(container: Container) -> None:
    """Ten campaigns act on one member at the same moment: the profile's version conflicts are
    read again and decided again, so every campaign's points are there once."""
    cid = enrol(container)
    camps = [campaign(container, [{"type": "points", "points": 10 * (n + 1)}]) for n in range(10)]
    results = concurrently(10, lambda i: container.campaign_actor.act(camps[i], RUN, cid))
    assert [r.outcome for r in results] == ["actioned"] * 10
    customer = container.customers.get(cid)
    assert customer.points.available == sum(10 * (n + 1) for n in range(10)) == 550
    ledger = TransactionRepository(container.table).all_ledger(cid)
    assert sorted(e.points for e in ledger if e.reason is LedgerReason.CAMPAIGN) == [
        10 * (n + 1) for n in range(10)
    ]
    assert sorted(e.seq for e in ledger) == list(range(1, len(ledger) + 1))


# ---- limits -----------------------------------------------------------------------------------


def test_a_points_budget_is_spent_exactly_under_concurrency(container: Container) -> None:
    customers = [enrol(container) for _ in range(30)]
    camp = campaign(container, [{"type": "points", "points": 100}], limits={"budget": {"points": 1000}})
    actor = container.campaign_actor
    results = concurrently(30, lambda i: actor.act(camp, RUN, customers[i]))

    assert Counter((r.outcome, r.reason) for r in results) == {
        ("actioned", None): 10,
        ("skipped", "over_budget"): 20,
    }
    spent = CampaignActionRepository(container.table).spent(camp.campaign_id)
    assert (spent.points, spent.recipients) == (1000, 10)
    ledgers = [campaign_ledger(container, cid, camp.campaign_id) for cid in customers]
    assert sum(map(sum, ledgers)) == 1000
    assert sorted(len(lg) for lg in ledgers) == [0] * 20 + [1] * 10
    for r in results:  # those skipped got nothing, not even a receipt
        if r.outcome == "skipped":
            assert (
                container.table.get(f"CAMPACT#{camp.campaign_id}#{r.customer_id}", f"OCC#{RUN.key}") is None
            )


def test_max_recipients_is_reached_exactly_under_concurrency(container: Container) -> None:
    customers = [enrol(container) for _ in range(20)]
    camp = campaign(
        container, [{"type": "coupon", "offer_id": offer(container)}], limits={"max_recipients": 7}
    )
    actor = container.campaign_actor
    results = concurrently(20, lambda i: actor.act(camp, RUN, customers[i]))

    assert Counter((r.outcome, r.reason) for r in results) == {
        ("actioned", None): 7,
        ("skipped", "max_recipients"): 13,
    }
    assert CampaignActionRepository(container.table).spent(camp.campaign_id).recipients == 7
    assert sum(len(coupons(container, cid)) for cid in customers) == 7


def test_a_money_budget_stops_at_the_customer_it_cannot_pay_for(container: Container) -> None:
    customers = [enrol(container) for _ in range(4)]
    camp = campaign(
        container,
        [{"type": "promo_cash", "amount": "4.00", "expires_days": 30}],
        limits={"budget": {"amount": "10.00"}},
    )
    results = [container.campaign_actor.act(camp, RUN, cid) for cid in customers]
    assert [(r.outcome, r.reason) for r in results] == [
        ("actioned", None),
        ("actioned", None),
        ("skipped", "over_budget"),
        ("skipped", "over_budget"),
    ]
    assert CampaignActionRepository(container.table).spent(camp.campaign_id).amount_cents == 800


def test_a_customer_costing_more_than_the_whole_budget_is_over_it_from_the_start(
    container: Container,
) -> None:
    member, visitor = enrol(container), enrol(container, member=False)
    camp = campaign(
        container,
        [{"type": "points", "points": 100}, {"type": "coupon", "offer_id": offer(container)}],
        limits={"budget": {"points": 50}},
    )
    before = count_items(container)
    assert container.campaign_actor.act(camp, RUN, member).reason == "over_budget"
    assert count_items(container) == before  # not even the counter
    # A non-member gets no points: their coupon fits the budget.
    assert container.campaign_actor.act(camp, RUN, visitor).outcome == "actioned"
    spent = CampaignActionRepository(container.table).spent(camp.campaign_id)
    assert (spent.recipients, spent.points) == (1, 0)


# ---- who gets nothing ---------------------------------------------------------------------------


def test_the_control_group_is_recorded_and_gets_nothing(container: Container) -> None:
    camp = campaign(
        container,
        [{"type": "coupon", "offer_id": offer(container)}, {"type": "points", "points": 10}],
        control_group={"percent": 50},
    )
    customers = [enrol(container) for _ in range(6)]
    while len({in_control(camp.campaign_id, cid, 50) for cid in customers}) < 2:  # both groups present
        customers.append(enrol(container))
    held = [cid for cid in customers if in_control(camp.campaign_id, cid, 50)]
    results = {cid: container.campaign_actor.act(camp, RUN, cid) for cid in customers}
    for cid, result in results.items():
        receipt = container.table.get(f"CAMPACT#{camp.campaign_id}#{cid}", f"OCC#{RUN.key}")
        assert receipt is not None
        if cid in held:
            assert result.outcome == "control" and receipt["outcome"] == "control"
            assert coupons(container, cid) == [] and campaign_ledger(container, cid, camp.campaign_id) == []
            assert campaign_timeline(container, cid) == []
            assert receipt["outbox"][0]["detail_type"] == CAMPAIGN_ACTIONED
        else:
            assert result.outcome == "actioned" and len(coupons(container, cid)) == 1
    # Asked again: the same answer, from the receipts.
    again = container.campaign_actor.act(camp, RUN, held[0])
    assert (again.outcome, again.first_time) == ("control", False)


def test_no_consent_for_the_message_skips_the_customer_and_writes_nothing(container: Container) -> None:
    cid = enrol(container, consents=Consents(email=False))
    camp = campaign(
        container,
        [
            {"type": "coupon", "offer_id": offer(container)},
            {"type": "message", "template_id": template(container)},
        ],
    )
    before = count_items(container)
    result = container.campaign_actor.act(camp, RUN, cid)
    assert (result.outcome, result.reason) == ("skipped", "no_consent")
    assert count_items(container) == before
    assert coupons(container, cid) == []


def test_members_only_and_unknown_customers(container: Container) -> None:
    visitor = enrol(container, member=False)
    camp = campaign(
        container, [{"type": "coupon", "offer_id": offer(container)}], audience={"members_only": True}
    )
    assert container.campaign_actor.act(camp, RUN, visitor).reason == "not_member"
    assert container.campaign_actor.act(camp, RUN, "01ZZZZZZZZZZZZZZZZZZZZZZZZ").reason == "gone"


def test_reentry_days_hold_a_customer_back_across_occasions(container: Container, clock: FixedClock) -> None:
    cid = enrol(container)
    camp = campaign(container, [{"type": "coupon", "offer_id": offer(container)}], limits={"reentry_days": 7})
    actor = container.campaign_actor
    assert actor.act(camp, Occasion("entry:s:1"), cid).outcome == "actioned"
    clock.advance(days=6)
    assert actor.act(camp, Occasion("entry:s:2"), cid).reason == "already_received"
    clock.advance(days=1, seconds=1)
    assert actor.act(camp, Occasion("entry:s:3"), cid).outcome == "actioned"
    assert len(coupons(container, cid)) == 2


# ---- merges ---------------------------------------------------------------------------------


def merge_now(c: Container, survivor: str, merged: str) -> None:
    record = c.merges.request(survivor, merged, "test", ADMIN)
    assert c.merges.process(record.merge_id).status is MergeStatus.DONE


def test_a_survivor_counts_as_having_received_what_a_merged_profile_received(container: Container) -> None:
    a, b = enrol(container), enrol(container)
    camp = campaign(container, [{"type": "coupon", "offer_id": offer(container)}])
    actor = container.campaign_actor
    assert actor.act(camp, RUN, a).outcome == "actioned"
    merge_now(container, b, a)  # a is merged into b
    assert container.customers.get(b).merged_from == (a,)
    survivor = actor.act(camp, RUN, b)
    assert (survivor.customer_id, survivor.outcome, survivor.reason) == (b, "skipped", "already_received")
    # The merged-away id resolves to its survivor first: the same answer.
    merged_away = actor.act(camp, RUN, a)
    assert (merged_away.customer_id, merged_away.reason) == (b, "already_received")
    assert len(coupons(container, a)) + len(coupons(container, b)) == 1  # a's coupon: nothing more
    # The other way round: the survivor received; its merged id answers its recorded outcome.
    c, d = enrol(container), enrol(container)
    assert actor.act(camp, RUN, c).outcome == "actioned"
    merge_now(container, c, d)
    recorded = actor.act(camp, RUN, d)
    assert (recorded.customer_id, recorded.outcome, recorded.first_time) == (c, "actioned", False)


# ---- what is given -------------------------------------------------------------------------


def test_promo_cash_is_an_account_with_the_amount_and_expiry(container: Container) -> None:
    cid = enrol(container)
    camp = campaign(container, [{"type": "promo_cash", "amount": "7.50", "expires_days": 45}])
    result = container.campaign_actor.act(camp, RUN, cid)
    (given,) = result.given["promo_cash"]
    (account,) = StoredValueRepository(container.table).accounts_of(cid)
    assert account.account_id == given["account_id"] and account.kind is AccountKind.PROMO_CASH
    assert account.balance == 750 and account.currency == container.programme.current().currency
    assert account.expires_at == container.clock.now() + timedelta(days=45)
    movement = container.table.get(f"ACCOUNT#{account.account_id}", "LEDGER#000000000001")
    assert movement is not None
    assert int(movement["amount"]) == 750 and movement["actor"] == f"campaign:{camp.campaign_id}"
    assert result.cost.amount == Decimal("7.50")


@pytest.fixture
def sending(container: Container, aws_session: boto3.session.Session, clock: FixedClock) -> Container:
    resources: Any = container.local_resources  # type: ignore[attr-defined]
    settings = container.settings.model_copy(
        update={
            "sender_email": LOCAL_SENDER_EMAIL,
            "print_bucket": resources.print_bucket,
            "public_base_url": "https://loyalty.example",
        }
    )
    return Container(settings, session=aws_session, clock=clock)


def test_the_message_renders_with_the_coupon_and_what_the_campaign_gave(
    sending: Container, emulators: tuple[DynamoDBLocal, Moto]
) -> None:
    _, moto = emulators
    address = f"cp-{uuid.uuid4().hex[:10]}@example.com"
    cid = enrol(sending, email=address)
    body = (
        "Code {{ coupon.code }} until {{ coupon.valid_until|date('%d-%m-%Y') }}; "
        "{{ campaign.points }} points "
        "and {{ campaign.promo_cash }} from {{ campaign.id }}. {{ unsubscribe_url }}"
    )
    camp = campaign(
        sending,
        [
            {"type": "coupon", "offer_id": offer(sending), "valid_days": 10},
            {"type": "points", "points": 300},
            {"type": "promo_cash", "amount": "5.00"},
            {"type": "message", "template_id": template(sending, body)},
        ],
    )
    result = sending.campaign_actor.act(camp, RUN, cid)
    assert sending.mailer.send_due().sent == 1
    (mime,) = raw_emails_to(moto, address)
    until = (sending.clock.now() + timedelta(days=10)).strftime("%d-%m-%Y")
    code = result.given["coupon"]["code"]
    assert f"Code {code} until {until}; 300 points and 5.00 from {camp.campaign_id}." in text_of(mime)
    sent = MessageRepository(sending.table).get(result.given["messages"]["email"])
    assert sent is not None and sent.status == "sent" and sent.campaign_id == camp.campaign_id


# ---- the dry run -------------------------------------------------------------------------------


def test_evaluate_answers_what_act_then_does_and_writes_nothing(container: Container) -> None:
    camp = campaign(
        container,
        [{"type": "points", "points": 100}, {"type": "message", "template_id": template(container)}],
        control_group={"percent": 20},
        limits={"budget": {"points": 300}},
    )
    customers = [enrol(container) for _ in range(26)]  # with the others below: two BatchGetItem chunks
    while True:  # one the message cannot reach, outside the control group (asked before consent)
        silent = enrol(container, consents=Consents(email=False))
        if not in_control(camp.campaign_id, silent, 20):
            break
    customers.append(silent)
    customers.append("01ZZZZZZZZZZZZZZZZZZZZZZZZ")  # nobody
    actor = container.campaign_actor
    assert actor.act(camp, Occasion("run:r0", "r0"), customers[0]).outcome in ("actioned", "control")
    actor.act(camp, RUN, customers[1])  # already acted on this occasion
    # A merged pair, the merged profile acted on: both ids already received (read one by one).
    gone, kept = enrol(container), enrol(container)
    actor.act(camp, RUN, gone)
    merge_now(container, kept, gone)
    customers += [gone, kept]
    before = count_items(container)
    planned = actor.evaluate(camp, RUN, customers)
    assert count_items(container) == before
    done = [actor.act(camp, RUN, cid) for cid in customers]
    assert [(p.outcome, p.reason, p.cost) for p in planned] == [(d.outcome, d.reason, d.cost) for d in done]
    assert Counter(p.reason for p in planned)["no_consent"] == 1
    assert planned[customers.index("01ZZZZZZZZZZZZZZZZZZZZZZZZ")].reason == "gone"
    assert sum(1 for d in done if d.reason == "over_budget") > 0  # the local budget copy ran out too
    assert [p.first_time for p in planned][1] is False
    assert [(p.customer_id, p.reason) for p in planned[-2:]] == [(kept, "already_received")] * 2
