"""Issue 15's journey over HTTP, through the whole local pipeline (ingest → outbox → bus → activity
queue → worker): a web visitor browses anonymously, signs up, is identified, installs the app from
the till's store and the web shop at once, and completes a challenge — earning the app bonus and
the challenge's reward exactly once, all of it on the timeline.

The earn rule and the challenge match a platform name and a category of this test's own, so the
shared platform's other tests see nothing of them; the programme is put back afterwards."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY, Api, unique_email


def at(delta: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def event(type_: str, properties: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"ev-{uuid.uuid4().hex[:16]}",
        "type": type_,
        "occurred_at": at(),
        "properties": properties,
        **fields,
    }


def post(api: Api, key: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    response = api.call("POST", "/v1/events", key, json={"events": events})
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    return answer


def eventually(check: Callable[[], Any], timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.25)


@pytest.fixture
def platform_name(api: Api) -> Iterator[str]:
    """An app-install bonus of 100 points, once per customer for ever, for this test's platform."""
    name = f"os-{uuid.uuid4().hex[:8]}"
    original = api.call("GET", "/v1/admin/programme", ADMIN_KEY).json()
    programme = {
        **original,
        "earn_rules": [
            *original.get("earn_rules", []),
            {
                "rule_id": f"install-{name}",
                "name": "App install bonus",
                "on_event": "app_install",
                "points": 100,
                "where": {"platform": name},
                "limit": {"per_customer": 1, "per": "ever"},
            },
        ],
    }
    for field in ("updated_at", "version"):
        programme.pop(field, None)
    response = api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json=programme)
    assert response.status_code == 200, response.text
    yield name
    restore = {k: v for k, v in original.items() if k not in ("updated_at", "version")}
    assert api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json=restore).status_code == 200


def test_a_visitor_browses_signs_up_installs_the_app_and_completes_a_challenge(
    api: Api, platform_name: str
) -> None:
    category = f"cat-{uuid.uuid4().hex[:8]}"
    challenge_id = f"explorer-{uuid.uuid4().hex[:8]}"
    challenge = {
        "challenge_id": challenge_id,
        "name": "Explorer: look around, then get the app",
        "tasks": [
            {
                "task_id": "look",
                "event": {"type": "product_view", "where": {"category": category}},
                "count": 2,
            },
            {"task_id": "app", "event": {"type": "app_install", "where": {"platform": platform_name}}},
        ],
        "reward": {"points": 50},
    }
    put = api.call("PUT", f"/v1/admin/challenges/{challenge_id}", ADMIN_KEY, json=challenge)
    assert put.status_code == 201, put.text

    # Browsing, anonymously: two product views, on no one's profile yet.
    visitor = f"web.{uuid.uuid4().hex}"
    views = [
        event(
            "product_view",
            {"sku": "SKU-9", "category": category},
            anonymous_id=visitor,
            occurred_at=at(timedelta(hours=-3 + i)),
        )
        for i in range(2)
    ]
    assert {r["customer_id"] for r in post(api, WEB_KEY, views)["results"]} == {None}

    # Signing up, then the shop sends a visit naming both the customer and the visitor.
    email = unique_email()
    jane = api.enrol(WEB_KEY, links=[{"type": "email", "value": email}], member=True)["customer_id"]
    visit = event(
        "site_visit",
        {"url": "https://shop.example/welcome"},
        customer={"customer_id": jane},
        anonymous_id=visitor,
    )
    assert post(api, WEB_KEY, [visit])["results"][0]["customer_id"] == jane

    # The app is installed: the web shop and a till both send it, many times at once. The till's
    # store is another store, so its copy is an event of its own — and the bonus is once for ever.
    install = event("app_install", {"platform": platform_name}, anonymous_id=visitor)
    till_install = event("app_install", {"platform": platform_name}, customer={"customer_id": jane})

    def send(i: int) -> dict[str, Any]:
        return post(api, WEB_KEY, [install]) if i % 2 else post(api, POS_KEY, [till_install])

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, range(20)))
    web = [a for i, a in enumerate(answers) if i % 2]
    till = [a for i, a in enumerate(answers) if not i % 2]
    assert sum(a["accepted"] for a in web) == 1 and sum(a["duplicates"] for a in web) == 9
    assert sum(a["accepted"] for a in till) == 1 and sum(a["duplicates"] for a in till) == 9

    def completed() -> dict[str, Any] | None:
        items = api.call("GET", f"/v1/customers/{jane}/challenges", WEB_KEY).json()["items"]
        mine = next(c for c in items if c["challenge_id"] == challenge_id)
        return mine if mine["completed"] else None

    done = eventually(completed)
    assert done, "the challenge was not completed"
    assert {t["task_id"]: (t["progress"], t["count"]) for t in done["tasks"]} == {
        "look": (2, 2),
        "app": (1, 1),
    }
    assert done["completions"] == 1 and done["reward_given"]["points"] == 50

    def balance() -> int:
        points = api.call("GET", f"/v1/customers/{jane}", WEB_KEY).json()["points"]
        return int(points["available"]) + int(points["pending"])

    assert eventually(lambda: balance() == 150), balance()
    time.sleep(2)  # let any late redelivery land: nothing more may be earned
    ledger = api.call("GET", f"/v1/customers/{jane}/ledger", WEB_KEY).json()["items"]
    assert sorted((e["reason"], e["points"]) for e in ledger) == [("challenge", 50), ("event", 100)]
    assert balance() == 150

    # One stream: the anonymous browsing is hers now, beside the points and the challenge.
    timeline = api.call("GET", f"/v1/customers/{jane}/timeline", WEB_KEY, params={"limit": 200}).json()
    kinds = {item["kind"] for item in timeline["items"]}
    assert {"event", "points", "challenge"} <= kinds
    ats = [item["at"] for item in timeline["items"]]
    assert ats == sorted(ats, reverse=True)
    events_only = api.call(
        "GET", f"/v1/customers/{jane}/timeline", WEB_KEY, params={"types": "event", "limit": 200}
    ).json()["items"]
    event_ids = {item["ref"]["event_id"] for item in events_only}
    assert {v["event_id"] for v in views} | {visit["event_id"], install["event_id"]} <= event_ids
    assert till_install["event_id"] in event_ids
    assert {item["kind"] for item in events_only} == {"event"}


def test_non_members_and_visitors_hear_what_a_member_would_have_earned(api: Api, platform_name: str) -> None:
    guest = unique_email()
    visitor = f"web.{uuid.uuid4().hex}"
    member = api.enrol(WEB_KEY, links=[{"type": "email", "value": unique_email()}], member=True)[
        "customer_id"
    ]
    installs = [
        event(
            "app_install", {"platform": platform_name}, customer={"link": {"type": "email", "value": guest}}
        ),
        event("app_install", {"platform": platform_name}, anonymous_id=visitor),
        event("app_install", {"platform": platform_name}, customer={"customer_id": member}),
        event("app_install", {"platform": "another-platform"}, anonymous_id=visitor),
    ]

    results = post(api, WEB_KEY, installs)["results"]

    assert [r["status"] for r in results] == ["accepted"] * 4
    # An identified non-member (made by the guest link) and a visitor: the rule's 100 points;
    # the member earns them through the worker instead; no rule matches another platform.
    assert [r["points_if_member"] for r in results] == [100, 100, 0, 0]
