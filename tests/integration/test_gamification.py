"""Challenges, punch cards and badges applied by the activity worker, against DynamoDB Local:
exact under redelivery, concurrency and returns."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from loyalty.adapters.codec import customer_pk
from loyalty.adapters.transactions import TransactionRepository
from loyalty.api.models.transactions import render_receipt
from loyalty.bootstrap import Container, bound_container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customers import Consents, CustomerRef, Profile
from loyalty.domain.gamification import Badge, Challenge
from loyalty.domain.offers import Offer
from loyalty.domain.programme import Programme
from loyalty.domain.sales import Line, SaleType
from loyalty.services.customers import EnrolCommand, RawLink
from loyalty.services.transactions import RecordCommand
from loyalty_local.jobs import QueuePoller

POS = Principal("key-pos", KeyKind.POS, "ams-01")
AT = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def member(container: Container, email: str = "m@example.com", *, joined: bool = True) -> str:
    cmd = EnrolCommand([RawLink("email", email)], Profile(), Consents(), joined, None)
    return container.customers.enrol(cmd, POS).customer.customer_id


def challenge(container: Container, **fields: Any) -> Challenge:
    body = {"name": "a challenge", "reward": {"points": 100}, **fields}
    defined, _ = container.gamification.put_challenge(Challenge.model_validate(body))
    return defined


def badge(container: Container, badge_id: str, metric: str, gte: str) -> None:
    container.gamification.put_badge(
        Badge.model_validate({"badge_id": badge_id, "name": badge_id, "when": {"metric": metric, "gte": gte}})
    )


def event(customer_id: str | None, event_id: str, type_: str = "review", **properties: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "store_id": "web-nl",
        "channel": "online",
        "type": type_,
        "customer_id": customer_id,
        "anonymous_id": None,
        "member": True,
        "occurred_at": "2026-11-22T09:00:00Z",
        "received_at": "2026-11-22T09:00:01Z",
        "properties": properties,
    }


def handle(container: Container, detail: dict[str, Any], kind: str = "CustomerEventRecorded") -> str:
    return container.activity_worker.handle(kind, detail, container.gamification.definitions()).outcome


def sell(
    container: Container,
    customer_id: str,
    txn: str,
    lines: list[tuple[str, str, str, str]],
    *,
    kind: SaleType = SaleType.SALE,
    original: str | None = None,
) -> str:
    """Record a sale (or return) at ams-01 and hand its TransactionRecorded to the worker."""
    parsed = [Line(lid, sku, cat, Decimal(1), Decimal(price)) for lid, sku, cat, price in lines]
    total = sum((ln.amount for ln in parsed), Decimal("0"))
    container.transactions.record(
        RecordCommand(
            transaction_id=txn,
            type=kind,
            store_id=None,
            occurred_at=AT,
            customer=CustomerRef(customer_id=customer_id) if kind is SaleType.SALE else None,
            lines=parsed,
            currency="EUR",
            total=total,
            fingerprint=json.dumps([txn, kind.value, lines]),
            original_transaction_id=original,
        ),
        POS,
        render=render_receipt,
    )
    detail = {"transaction_id": txn, "store_id": "ams-01", "customer_id": customer_id, "type": kind.value}
    return handle(container, detail, "TransactionRecorded")


def standing(container: Container, customer_id: str, challenge_id: str) -> Any:
    return next(
        s.progress
        for s in container.gamification.challenges_of(customer_id)
        if s.challenge.challenge_id == challenge_id
    )


def ledger_points(container: Container, customer_id: str) -> list[int]:
    return [
        e.points
        for e in TransactionRepository(container.table).all_ledger(customer_id)
        if e.reason.value == "challenge"
    ]


def coupons(container: Container, customer_id: str) -> list[Any]:
    return container.offers.coupons_of(customer_id, 200, None)[0]


def test_the_same_event_delivered_fifty_times_at_once_counts_once(container: Container) -> None:
    jane = member(container)
    challenge(
        container, challenge_id="reviewer", tasks=[{"task_id": "r", "event": {"type": "review"}, "count": 5}]
    )
    badge(container, "critic", "events:review", "1")
    start = threading.Barrier(50)

    def deliver(_: int) -> str:
        start.wait()
        return handle(container, event(jane, "E1"))

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(deliver, range(50)))
    assert outcomes.count("applied") == 1
    assert set(outcomes) <= {"applied", "duplicate"}
    assert standing(container, jane, "reviewer").tasks == {"r": 1}
    counters = container.table.get(customer_pk(jane), "ACTIVITY")
    assert counters is not None and counters["events"] == {"review": 1}
    assert container.customers.get(jane).badges.keys() == {"critic"}
    # A month later the same event comes back: nothing changes.
    assert handle(container, event(jane, "E1"), "CustomerEventAttributed") == "duplicate"


def test_two_events_completing_one_challenge_at_once_give_one_reward(container: Container) -> None:
    jane = member(container)
    challenge(
        container,
        challenge_id="two-reviews",
        tasks=[{"task_id": "r", "event": {"type": "review"}, "count": 2}],
        reward={"points": 500},
    )
    assert handle(container, event(jane, "E1")) == "applied"
    start = threading.Barrier(8)

    def deliver(i: int) -> str:
        start.wait()
        return handle(container, event(jane, f"E-{i}"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(deliver, range(8)))
    assert outcomes.count("applied") == 1  # the others found it complete: nothing more to count
    progress = standing(container, jane, "two-reviews")
    assert progress.completions == 1 and progress.last_reward["points"] == 500
    assert ledger_points(container, jane) == [500]
    assert container.customers.get(jane).points.lifetime == 500


def test_two_events_completing_a_coupon_challenge_at_once_issue_one_coupon(container: Container) -> None:
    jane = member(container)
    container.offers.create_offer(
        Offer.model_validate(
            {
                "offer_id": "free-coffee",
                "name": "free coffee",
                "requires_coupon": True,
                "effect": {"type": "percent_off", "value": "100"},
            }
        )
    )
    challenge(
        container,
        challenge_id="app",
        tasks=[{"task_id": "i", "event": {"type": "app_install", "where": {"platform": "ios"}}, "count": 1}],
        reward={"coupon": {"offer_id": "free-coffee", "valid_days": 30}},
    )
    assert handle(container, event(jane, "A0", "app_install", platform="android")) == "nothing"
    start = threading.Barrier(6)

    def deliver(i: int) -> str:
        start.wait()
        return handle(container, event(jane, f"A{i + 1}", "app_install", platform="ios"))

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(deliver, range(6)))
    assert outcomes.count("applied") == 1
    issued = coupons(container, jane)
    assert [(c.offer_id, c.source) for c in issued] == [("free-coffee", "challenge")]
    assert standing(container, jane, "app").last_reward["coupon"]["code"] == issued[0].code


def test_a_punch_card_of_three_fed_seven_purchases_gives_two_rewards_and_keeps_one(
    container: Container,
) -> None:
    jane = member(container)
    challenge(
        container,
        challenge_id="coffee-card",
        tasks=[{"task_id": "c", "purchase": {"categories": ["coffee"]}, "count": 3}],
        reward={"points": 50},
        repeatable=True,
    )
    outcomes = [sell(container, jane, f"S{i}", [("1", "ESP", "coffee", "3.50")]) for i in range(7)]
    assert outcomes == ["applied"] * 7
    assert sell(container, jane, "TEA", [("1", "TEA", "tea", "2.00")]) == "nothing"  # not a coffee
    progress = standing(container, jane, "coffee-card")
    assert progress.completions == 2
    assert progress.tasks == {"c": 1}
    assert ledger_points(container, jane) == [50, 50]
    # On the timeline: the progress (at its latest) and each completion, kind `challenge`.
    items, _ = container.table.query(customer_pk(jane), sk_prefix="CHALLENGE#coffee-card", consistent=True)
    assert sorted(i["tl"]["type"] for i in items) == ["challenge_completed"] * 2 + ["challenge_progress"]
    assert {i["tl"]["kind"] for i in items} == {"challenge"} and {i["tlpk"] for i in items} == {
        customer_pk(jane)
    }
    completed = [json.loads(i["outbox"][0]["detail"]) for i in items if "outbox" in i]
    assert sorted(c["completion"] for c in completed) == [1, 2]


def test_a_return_before_completion_takes_the_progress_back(container: Container) -> None:
    jane = member(container)
    challenge(
        container,
        challenge_id="spend",
        tasks=[{"task_id": "big", "purchase": {"min_total": "20.00"}, "count": 2}],
    )
    assert (
        sell(container, jane, "S1", [("1", "A", "food", "15.00"), ("2", "B", "food", "10.00")]) == "applied"
    )
    assert standing(container, jane, "spend").tasks == {"big": 1}
    # Returning B leaves 15.00: the sale no longer qualifies, its count goes.
    assert (
        sell(container, jane, "R1", [("2", "B", "food", "10.00")], kind=SaleType.RETURN, original="S1")
        == "applied"
    )
    assert standing(container, jane, "spend").tasks == {"big": 0}
    # A second return of the same sale has nothing left to take.
    assert (
        sell(container, jane, "R2", [("1", "A", "food", "15.00")], kind=SaleType.RETURN, original="S1")
        == "nothing"
    )
    assert standing(container, jane, "spend").tasks == {"big": 0}


def test_a_return_after_completion_takes_nothing_back(container: Container) -> None:
    jane = member(container)
    challenge(
        container,
        challenge_id="once",
        tasks=[{"task_id": "buy", "purchase": {"categories": ["coffee"]}, "count": 1}],
        reward={"points": 70},
    )
    assert sell(container, jane, "S1", [("1", "ESP", "coffee", "3.50")]) == "applied"
    assert (
        sell(container, jane, "R1", [("1", "ESP", "coffee", "3.50")], kind=SaleType.RETURN, original="S1")
        == "nothing"
    )
    progress = standing(container, jane, "once")
    assert progress.completions == 1 and progress.tasks == {"buy": 1}
    assert ledger_points(container, jane) == [70]


def test_non_members_take_no_part(container: Container) -> None:
    visitor = member(container, "nm@example.com", joined=False)
    challenge(container, challenge_id="r", tasks=[{"task_id": "r", "event": {"type": "review"}, "count": 1}])
    badge(container, "first", "events:review", "1")
    assert handle(container, event(visitor, "E1")) == "ignored"
    assert handle(container, event(None, "E2")) == "ignored"  # anonymous: counted once attributed
    assert container.table.get(customer_pk(visitor), "ACTIVITY") is None
    assert container.customers.get(visitor).badges == {}


def test_badges_for_purchases_spend_and_challenges_are_earned_once(container: Container) -> None:
    jane = member(container)
    challenge(
        container, challenge_id="one", tasks=[{"task_id": "b", "purchase": {}, "count": 1}], repeatable=True
    )
    badge(container, "second-purchase", "transactions", "2")
    badge(container, "big-spender", "spend", "10.00")
    badge(container, "champion", "challenges_completed", "2")
    sell(container, jane, "S1", [("1", "A", "food", "6.00")])
    assert container.customers.get(jane).badges.keys() == set()
    sell(container, jane, "S2", [("1", "A", "food", "6.00")])
    sell(container, jane, "S3", [("1", "A", "food", "6.00")])
    earned = container.customers.get(jane).badges
    assert earned.keys() == {"second-purchase", "big-spender", "champion"}
    badge_items, _ = container.table.query(customer_pk(jane), sk_prefix="BADGE#", consistent=True)
    assert len(badge_items) == 3
    assert {json.loads(b["outbox"][0]["detail"])["badge_id"] for b in badge_items} == set(earned)
    assert all(b["tl"]["kind"] == "badge" and b["tlpk"] == customer_pk(jane) for b in badge_items)


def test_the_bus_rule_feeds_the_activity_queue_and_the_worker_drains_it(
    container: Container, aws_session: Any
) -> None:
    jane = member(container)
    challenge(container, challenge_id="one-review", tasks=[{"task_id": "r", "event": {"type": "review"}}])
    resources = container.local_resources  # type: ignore[attr-defined]
    entry = {"Source": "loyalty.platform", "EventBusName": resources.event_bus_name}
    aws_session.client("events").put_events(
        Entries=[
            {**entry, "DetailType": "CustomerEventRecorded", "Detail": json.dumps(event(jane, "E1"))},
            {**entry, "DetailType": "CustomerEventAttributed", "Detail": json.dumps(event(jane, "E1"))},
            {**entry, "DetailType": "PointsEarned", "Detail": json.dumps({"customer_id": jane})},
        ]
    )
    poller = QueuePoller(aws_session, resources.queue_urls["Activity"], "activity")
    with bound_container(container):
        poller.drain(idle_rounds=5)
    assert poller.failures == 0
    progress = standing(container, jane, "one-review")
    assert progress.completions == 1 and ledger_points(container, jane) == [100]
    sqs = aws_session.client("sqs")
    depth = sqs.get_queue_attributes(
        QueueUrl=resources.queue_urls["Activity"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert depth == "0"


def test_with_only_drafts_and_paused_badges_nothing_is_read_or_written(container: Container) -> None:
    jane = member(container)
    challenge(
        container, challenge_id="draft", status="draft", tasks=[{"task_id": "r", "event": {"type": "review"}}]
    )
    container.gamification.put_badge(
        Badge.model_validate(
            {
                "badge_id": "off",
                "name": "off",
                "status": "paused",
                "when": {"metric": "events:review", "gte": 1},
            }
        )
    )
    reads: list[str] = []
    client = container.table._client
    client.meta.events.register("before-call.dynamodb", lambda model, **_: reads.append(model.name))
    assert handle(container, event(jane, "E1")) == "nothing"
    assert [r for r in reads if r not in ("Query",)] == []  # the definitions' two Queries only
    assert container.table.get(customer_pk(jane), "ACTIVITY") is None


def test_a_bad_message_fails_alone_and_the_rest_of_the_batch_is_applied(container: Container) -> None:
    from loyalty import jobs
    from loyalty_local.events import sqs_event
    from loyalty_local.gateway import LambdaContext

    jane = member(container)
    challenge(container, challenge_id="r", tasks=[{"task_id": "r", "event": {"type": "review"}, "count": 2}])
    bodies = [
        {"detail-type": "CustomerEventRecorded", "detail": event(jane, "E1")},
        {"detail-type": "CustomerEventRecorded", "detail": {"customer_id": jane}},  # no event id: poison
        {"detail-type": "CustomerEventRecorded", "detail": event(jane, "E2")},
    ]
    messages = [
        {"MessageId": f"m{i}", "ReceiptHandle": f"h{i}", "Body": json.dumps(b)} for i, b in enumerate(bodies)
    ]
    with bound_container(container):
        result = jobs.apply_activity(
            sqs_event(messages, "arn:aws:sqs:eu-west-1:1:q", "eu-west-1"), LambdaContext("activity")
        )
    assert result["batchItemFailures"] == [{"itemIdentifier": "m1"}]
    assert standing(container, jane, "r").completions == 1


def test_the_worker_applies_event_earn_rules_before_badges_and_only_once(container: Container) -> None:
    body = container.programme.current().model_dump(mode="json")
    body["earn_rules"] = [
        {
            "rule_id": "app",
            "name": "App install",
            "on_event": "app_install",
            "points": 300,
            "limit": {"per_customer": 1, "per": "ever"},
        }
    ]
    container.programme.replace(Programme.model_validate(body))
    jane = member(container)
    badge(container, "first-300", "lifetime_points", "300")

    assert handle(container, event(jane, "I1", "app_install", platform="ios")) == "applied"
    # Redelivered, and attributed again after an identification: no second earn, no second badge.
    handle(container, event(jane, "I1", "app_install", platform="ios"))
    handle(container, event(jane, "I1", "app_install", platform="ios"), "CustomerEventAttributed")

    earns = [e for e in TransactionRepository(container.table).all_ledger(jane) if e.reason.value == "event"]
    assert [e.points for e in earns] == [300]
    jane_now = container.customers.get(jane)
    assert jane_now.points.available + jane_now.points.pending == 300
    assert jane_now.badges.keys() == {"first-300"}


def test_event_earn_rules_apply_when_no_challenge_or_badge_is_live(container: Container) -> None:
    body = container.programme.current().model_dump(mode="json")
    body["earn_rules"] = [{"rule_id": "rev", "name": "Review", "on_event": "review", "points": 20}]
    container.programme.replace(Programme.model_validate(body))
    jane = member(container)

    assert handle(container, event(jane, "R1", "review", rating=5)) == "nothing"

    assert container.customers.get(jane).points.available == 20


def test_a_challenge_reward_keeps_the_lot_summary_so_a_redemption_still_reads_once(
    container: Container,
) -> None:
    from loyalty.api.models.redemptions import render_redemption
    from tests.integration.test_lot_summary import assert_exact, dynamodb_calls
    from tests.integration.test_redemptions import redeem

    jane = member(container)
    challenge(container, challenge_id="one-review", tasks=[{"task_id": "r", "event": {"type": "review"}}])
    assert handle(container, event(jane, "E1")) == "applied"
    assert ledger_points(container, jane) == [100]
    assert assert_exact(container, jane) is not None, "the reward's lot is in the summary"

    with dynamodb_calls(container) as calls:
        done = container.redemptions.redeem(redeem("R1", jane, 40), POS, render=render_redemption)

    assert calls == ["BatchGetItem", "TransactWriteItems"]
    assert done.balance_after == 60
