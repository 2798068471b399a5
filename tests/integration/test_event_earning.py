"""Event earn rules applied against DynamoDB Local: once per (event, rule), within limits."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from loyalty.adapters.transactions import TransactionRepository
from loyalty.bootstrap import Container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.activity import RecordedEvent
from loyalty.domain.customers import Consents, Customer, Profile
from loyalty.domain.ledger import LedgerReason
from loyalty.domain.programme import Programme
from loyalty.services.customers import EnrolCommand, RawLink
from tests.conftest import FixedClock

POS = Principal("key-pos", KeyKind.POS, "ams-01")

APP_INSTALL = {
    "rule_id": "app-install",
    "name": "100 points for installing the app",
    "on_event": "app_install",
    "points": 100,
    "where": {"platform": "ios"},
    "limit": {"per_customer": 1, "per": "ever"},
}
REVIEW = {
    "rule_id": "review",
    "name": "20 points a review, 3 a month",
    "on_event": "product_review",
    "points": 20,
    "limit": {"per_customer": 3, "per": "month"},
}


def with_rules(container: Container, *rules: dict[str, Any]) -> None:
    body = container.programme.current().model_dump(mode="json")
    body["earn_rules"] = list(rules)
    container.programme.replace(Programme.model_validate(body))


def enrol(container: Container, email: str, member: bool = True) -> Customer:
    cmd = EnrolCommand([RawLink("email", email)], Profile(), Consents(), member, None)
    return container.customers.enrol(cmd, POS).customer


def event(
    customer: Customer | None, event_id: str, type_: str, at: datetime, **properties: Any
) -> RecordedEvent:
    return RecordedEvent.from_detail(
        {
            "event_id": event_id,
            "store_id": "web-nl",
            "channel": "online",
            "type": type_,
            "customer_id": customer.customer_id if customer else None,
            "anonymous_id": None if customer else "anon-1",
            "member": bool(customer and customer.member),
            "occurred_at": at.isoformat(),
            "received_at": at.isoformat(),
            "properties": properties,
        }
    )


def ledger(container: Container, customer_id: str) -> list[Any]:
    return TransactionRepository(container.table).all_ledger(customer_id)


def profile(container: Container, customer_id: str) -> Customer:
    return container.resolver.get(customer_id)


def test_app_install_applied_50_times_at_once_earns_once(container: Container, clock: FixedClock) -> None:
    with_rules(container, APP_INSTALL)
    jane = enrol(container, "jane@example.com")
    install = event(jane, "ev-install-1", "app_install", clock.now(), platform="ios")
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda _: container.event_earning.apply(install), range(50)))
    assert sum(r.points_earned for r in results) == 100
    assert sorted({r.rules[0].status for r in results}) == ["already_earned", "earned"]
    entries = [e for e in ledger(container, jane.customer_id) if e.reason is LedgerReason.EVENT]
    assert [(e.points, e.rule_id, e.event_id) for e in entries] == [(100, "app-install", "ev-install-1")]
    after = profile(container, jane.customer_id)
    assert after.points.available == 100 and after.points.lifetime == 100  # available at once
    assert sum(e.points for e in ledger(container, jane.customer_id)) == after.points.balance
    assert sum(after.earned_by_month.values()) == 100  # tier progress


def test_two_install_events_racing_for_an_ever_limit_of_one_earn_once(
    container: Container, clock: FixedClock
) -> None:
    with_rules(container, APP_INSTALL)
    jane = enrol(container, "jane@example.com")
    phone = event(jane, "ev-phone", "app_install", clock.now(), platform="ios")
    tablet = event(jane, "ev-tablet", "app_install", clock.now(), platform="ios")
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(container.event_earning.apply, [phone, tablet] * 10))
    assert sum(r.points_earned for r in results) == 100
    assert profile(container, jane.customer_id).points.balance == 100
    assert len([e for e in ledger(container, jane.customer_id) if e.reason is LedgerReason.EVENT]) == 1


def test_a_second_install_event_is_stopped_by_the_ever_limit(container: Container, clock: FixedClock) -> None:
    with_rules(container, APP_INSTALL)
    jane = enrol(container, "jane@example.com")
    first = container.event_earning.apply(event(jane, "ev-1", "app_install", clock.now(), platform="ios"))
    again = container.event_earning.apply(event(jane, "ev-2", "app_install", clock.now(), platform="ios"))
    android = container.event_earning.apply(
        event(jane, "ev-3", "app_install", clock.now(), platform="android")
    )
    assert first.points_earned == 100
    assert [(r.status, r.points) for r in again.rules] == [("limit_reached", 0)]
    assert android.rules == ()  # the rule's where does not match
    assert profile(container, jane.customer_id).points.balance == 100


def test_review_bonus_stops_at_its_monthly_limit_and_starts_again_next_month(
    container: Container, clock: FixedClock
) -> None:
    with_rules(container, REVIEW)
    jane = enrol(container, "jane@example.com")
    clock.current = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    november = [
        container.event_earning.apply(event(jane, f"rev-{i}", "product_review", clock.now(), sku="S"))
        for i in range(5)
    ]
    assert [r.points_earned for r in november] == [20, 20, 20, 0, 0]
    assert november[3].rules[0].status == "limit_reached"
    # Replaying an event that earned changes nothing, even once the limit is reached.
    assert (
        container.event_earning.apply(event(jane, "rev-0", "product_review", clock.now())).points_earned == 0
    )
    clock.advance(days=4)  # 2 December
    december = [
        container.event_earning.apply(event(jane, f"rev-dec-{i}", "product_review", clock.now()))
        for i in range(4)
    ]
    assert [r.points_earned for r in december] == [20, 20, 20, 0]
    # A late review from November still counts against November's limit.
    late = container.event_earning.apply(
        event(jane, "rev-late", "product_review", datetime(2026, 11, 30, tzinfo=UTC))
    )
    assert late.points_earned == 0 and late.rules[0].status == "limit_reached"
    after = profile(container, jane.customer_id)
    assert after.points.balance == 120
    assert sum(e.points for e in ledger(container, jane.customer_id)) == 120


def test_non_members_and_anonymous_visitors_earn_nothing_but_hear_what_they_would_have(
    container: Container, clock: FixedClock
) -> None:
    with_rules(container, APP_INSTALL, REVIEW)
    guest = enrol(container, "guest@example.com", member=False)
    result = container.event_earning.apply(event(guest, "ev-g", "app_install", clock.now(), platform="ios"))
    assert result.member is False and result.points_earned == 0 and result.points_if_member == 100
    anonymous = container.event_earning.apply(event(None, "ev-a", "product_review", clock.now()))
    assert anonymous.customer_id is None and anonymous.points_if_member == 20
    assert ledger(container, guest.customer_id) == []
    assert profile(container, guest.customer_id).points.lifetime == 0


def test_several_rules_on_one_event_each_earn_a_lot_naming_the_rule(
    container: Container, clock: FixedClock
) -> None:
    bonus = {**REVIEW, "rule_id": "review-with-photo", "points": 30, "where": {"photo": True}, "limit": None}
    with_rules(container, REVIEW, bonus)
    jane = enrol(container, "jane@example.com")
    result = container.event_earning.apply(event(jane, "ev-p", "product_review", clock.now(), photo=True))
    assert [(r.rule_id, r.status, r.points) for r in result.rules] == [
        ("review", "earned", 20),
        ("review-with-photo", "earned", 30),
    ]
    entries = ledger(container, jane.customer_id)
    assert sorted((e.rule_id, e.points) for e in entries) == [("review", 20), ("review-with-photo", 30)]
    assert profile(container, jane.customer_id).points.balance == 50


def test_an_event_older_than_max_backdate_days_earns_nothing(container: Container, clock: FixedClock) -> None:
    with_rules(container, APP_INSTALL)
    jane = enrol(container, "jane@example.com")
    old = event(jane, "ev-old", "app_install", clock.now() - timedelta(days=200), platform="ios")
    result = container.event_earning.apply(old)
    assert result.points_earned == 0 and result.rules[0].status == "too_old"


def test_points_earned_is_in_the_outbox_naming_rule_and_event(
    container: Container, clock: FixedClock
) -> None:
    with_rules(container, APP_INSTALL)
    jane = enrol(container, "jane@example.com")
    container.event_earning.apply(event(jane, "ev-o", "app_install", clock.now(), platform="ios"))
    item = container.table.get("EVENTEARN#web-nl#ev-o", "RULE#app-install")
    assert item is not None
    details = [(o["detail_type"], json.loads(o["detail"])) for o in item["outbox"]]
    assert details[0][0] == "PointsEarned"
    assert details[0][1]["rule_id"] == "app-install" and details[0][1]["event_id"] == "ev-o"
    assert details[0][1]["points"] == 100 and details[0][1]["reason"] == "event"
