"""Challenges, punch cards and badges over HTTP, through the whole local pipeline: sales go to the
bus by the outbox (the publisher), customer events are put on the bus as the events ingest puts
them, the bus rule feeds the activity queue and the real activity handler applies them.

Every challenge and badge here counts a category or an event type of its own: the definitions stay
live for the rest of the session, and must change nothing for the other tests on this platform."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from loyalty_local.emulators import REGION
from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY, Api, assert_problem, unique_email


def uid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def now_iso(minutes_ago: int = 1) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def sell(api: Api, customer_id: str, category: str, price: str = "4.00") -> None:
    body = {
        "transaction_id": uid("G"),
        "type": "sale",
        "occurred_at": now_iso(),
        "customer": {"customer_id": customer_id},
        "lines": [
            {
                "line_id": "1",
                "sku": f"SKU-{category}",
                "category": category,
                "quantity": "1",
                "unit_price": price,
            }
        ],
        "currency": "EUR",
        "total": price,
    }
    response = api.call("POST", "/v1/transactions", POS_KEY, json=body)
    assert response.status_code == 201, response.text


def put_events(api: Api, customer_id: str, type_: str, event_ids: list[str]) -> None:
    """What the events ingest publishes for accepted events (CustomerEventRecorded)."""
    assert api.runtime is not None and api.runtime.resources is not None
    events = boto3.session.Session(region_name=REGION).client("events")
    entries = [
        {
            "Source": "loyalty.platform",
            "DetailType": "CustomerEventRecorded",
            "EventBusName": api.runtime.resources.event_bus_name,
            "Detail": json.dumps(
                {
                    "event_id": event_id,
                    "store_id": "web-nl",
                    "channel": "online",
                    "type": type_,
                    "customer_id": customer_id,
                    "anonymous_id": None,
                    "member": True,
                    "occurred_at": now_iso(),
                    "received_at": now_iso(0),
                    "properties": {"rating": 5},
                }
            ),
        }
        for event_id in event_ids
    ]
    assert events.put_events(Entries=entries)["FailedEntryCount"] == 0


def eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.25)


def challenges_of(api: Api, customer_id: str) -> dict[str, dict[str, Any]]:
    response = api.call("GET", f"/v1/customers/{customer_id}/challenges", WEB_KEY)
    assert response.status_code == 200, response.text
    return {c["challenge_id"]: c for c in response.json()["items"]}


def test_a_member_completes_a_challenge_and_earns_a_badge_once(api: Api, archive: Any) -> None:
    fruit, review = uid("fruit"), uid("review")
    challenge_id, badge_id = uid("healthy"), uid("critic")
    challenge = {
        "challenge_id": challenge_id,
        "name": "Healthy eating marathon",
        "tasks": [
            {
                "task_id": "fruit",
                "purchase": {"categories": [fruit], "store_attributes": {"coffee_corner": True}},
            },
            {"task_id": "reviews", "event": {"type": review, "where": {"rating": 5}}, "count": 2},
        ],
        "reward": {"points": 300},
    }
    created = api.call("PUT", f"/v1/admin/challenges/{challenge_id}", ADMIN_KEY, json=challenge)
    assert created.status_code == 201, created.text
    assert (
        api.call("PUT", f"/v1/admin/challenges/{challenge_id}", ADMIN_KEY, json=challenge).status_code == 200
    )
    badge = {"badge_id": badge_id, "name": "Critic", "when": {"metric": f"events:{review}", "gte": 2}}
    assert api.call("PUT", f"/v1/admin/badges/{badge_id}", ADMIN_KEY, json=badge).status_code == 201
    assert api.call("GET", f"/v1/admin/badges/{badge_id}", ADMIN_KEY).json()["when"]["gte"] == "2"

    jane = api.enrol(links=[{"type": "email", "value": unique_email()}], member=True)["customer_id"]
    before = challenges_of(api, jane)[challenge_id]
    assert [(t["task_id"], t["progress"], t["count"]) for t in before["tasks"]] == [
        ("fruit", 0, 1),
        ("reviews", 0, 2),
    ]

    sell(api, jane, fruit)
    put_events(api, jane, review, ["E1", "E1", "E2"])  # E1 twice: a retry of the same event
    put_events(api, jane, review, ["E2", "E3"])  # E2 again; E3 after completion counts for nothing

    done = eventually(lambda: challenges_of(api, jane)[challenge_id]["completed"])
    assert done, challenges_of(api, jane)[challenge_id]
    mine = challenges_of(api, jane)[challenge_id]
    assert mine["completions"] == 1 and mine["completed_at"]
    assert mine["reward_given"] == {"points": 300, "coupon": None}
    assert [(t["task_id"], t["progress"]) for t in mine["tasks"]] == [("fruit", 1), ("reviews", 2)]

    badges = eventually(lambda: api.call("GET", f"/v1/customers/{jane}", WEB_KEY).json()["badges"])
    assert [b["badge_id"] for b in badges] == [badge_id]
    time.sleep(1.5)  # let any stray redelivery land: still one reward, one badge
    ledger = api.call("GET", f"/v1/customers/{jane}/ledger?limit=50", WEB_KEY).json()["items"]
    assert [e["points"] for e in ledger if e["reason"] == "challenge"] == [300]
    view = api.call("GET", f"/v1/customers/{jane}", WEB_KEY).json()
    assert [b["badge_id"] for b in view["badges"]] == [badge_id]
    assert challenges_of(api, jane)[challenge_id]["completions"] == 1

    # On the bus, once each: the completion and the badge (the publisher relays their outbox).
    seen: list[dict[str, Any]] = []

    def published() -> bool:
        seen.extend(e for e in archive() if e["detail"].get("customer_id") == jane)
        kinds = [e["detail-type"] for e in seen]
        return "ChallengeCompleted" in kinds and "BadgeEarned" in kinds

    assert eventually(published), seen
    time.sleep(1.0)
    seen.extend(e for e in archive() if e["detail"].get("customer_id") == jane)
    mine = [(e["detail-type"], e["detail"].get("challenge_id") or e["detail"].get("badge_id")) for e in seen]
    assert mine.count(("ChallengeCompleted", challenge_id)) == 1
    assert mine.count(("BadgeEarned", badge_id)) == 1


def test_a_punch_card_gives_a_coupon_per_full_card_and_keeps_the_stamps(api: Api) -> None:
    coffee = uid("coffee")
    offer = api.call(
        "POST",
        "/v1/admin/offers",
        ADMIN_KEY,
        json={
            "name": "free coffee",
            "requires_coupon": True,
            "effect": {"type": "percent_off", "value": "100", "skus": [f"SKU-{coffee}"]},
        },
    )
    assert offer.status_code == 201, offer.text
    card_id = uid("card")
    card = {
        "challenge_id": card_id,
        "name": "Buy 2 coffees, the 3rd is free",
        "tasks": [{"task_id": "stamps", "purchase": {"categories": [coffee]}, "count": 2}],
        "reward": {"coupon": {"offer_id": offer.json()["offer_id"], "valid_days": 30}},
        "repeatable": True,
    }
    assert api.call("PUT", f"/v1/admin/challenges/{card_id}", ADMIN_KEY, json=card).status_code == 201
    jane = api.enrol(links=[{"type": "email", "value": unique_email()}], member=True)["customer_id"]
    for _ in range(3):
        sell(api, jane, coffee)

    def stamped() -> dict[str, Any] | None:
        mine = challenges_of(api, jane)[card_id]
        return mine if mine["completions"] == 1 and mine["tasks"][0]["progress"] == 1 else None

    mine = eventually(stamped)
    assert mine, challenges_of(api, jane)[card_id]
    assert mine["completed"] is False  # a punch card goes on
    coupons = api.call("GET", f"/v1/customers/{jane}/coupons", WEB_KEY).json()["items"]
    assert [c["code"] for c in coupons] == [mine["reward_given"]["coupon"]["code"]]


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        (
            "/v1/admin/challenges/c1",
            {"challenge_id": "c1", "name": "x", "tasks": [], "reward": {"points": 1}},
            "tasks",
        ),
        (
            "/v1/admin/challenges/c1",
            {
                "challenge_id": "c1",
                "name": "x",
                "tasks": [{"task_id": "t", "event": {"type": "review"}}],
                "reward": {},
            },
            "reward",
        ),
        (
            "/v1/admin/challenges/c1",
            {
                "challenge_id": "c2",
                "name": "x",
                "tasks": [{"task_id": "t", "event": {"type": "a"}}],
                "reward": {"points": 1},
            },
            "challenge_id",
        ),
        (
            "/v1/admin/challenges/c1",
            {
                "challenge_id": "c1",
                "name": "x",
                "tasks": [{"task_id": "t", "event": {"type": "a"}}],
                "reward": {"coupon": {"offer_id": "no-such-offer"}},
            },
            "reward",
        ),
        (
            "/v1/admin/challenges/c1",
            {
                "challenge_id": "c1",
                "name": "x",
                "audience": {"tiers": ["platinum-nobody-has"]},
                "tasks": [{"task_id": "t", "purchase": {"stores": ["no-such-store"]}}],
                "reward": {"points": 1},
            },
            "tiers",
        ),
        (
            "/v1/admin/challenges/c1",
            {
                "challenge_id": "c1",
                "name": "x",
                "tasks": [{"task_id": "t", "purchase": {"stores": ["no-such-store"]}}],
                "reward": {"points": 1},
            },
            "stores",
        ),
        (
            "/v1/admin/badges/b1",
            {"badge_id": "b1", "name": "x", "when": {"metric": "visits", "gte": 1}},
            "when",
        ),
    ],
)
def test_bad_definitions_are_refused_naming_the_field(
    api: Api, path: str, body: dict[str, Any], loc: str
) -> None:
    problem = assert_problem(api.call("PUT", path, ADMIN_KEY, json=body), 422, "validation-failed")
    assert any(loc in [str(p) for p in e["loc"]] for e in problem["errors"]), problem
    assert api.call("GET", path, ADMIN_KEY).status_code == 404  # nothing half-written
