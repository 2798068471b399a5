"""Saved segments over HTTP: create, read, list, replace, delete, the 409 while an audience names
one, bad rules named at their place, 404s and idempotent replays."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.e2e.conftest import ADMIN_KEY, POS_KEY, Api, assert_problem

COFFEE_TWICE = {
    "all": [
        {"attr": "member", "eq": True},
        {"purchased": {"within": "P30D", "categories": ["coffee"], "count": {"gte": 2}}},
    ]
}


def sid(prefix: str = "seg") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def nobody() -> dict[str, Any]:
    """A rule no other test's customer matches: segments outlive their test in the session, and
    other tests read a customer's whole list of segments."""
    return {"attr": "profile.attributes.cohort", "eq": uuid.uuid4().hex}


def put(api: Api, segment_id: str, body: dict[str, Any], **kwargs: Any) -> Any:
    return api.call("PUT", f"/v1/admin/segments/{segment_id}", ADMIN_KEY, json=body, **kwargs)


def test_a_segment_is_created_read_listed_replaced_and_deleted(api: Api) -> None:
    segment_id = sid()
    body = {"name": "Coffee lovers", "description": "two coffees in 30 days", "rule": COFFEE_TWICE}

    created = put(api, segment_id, body)
    assert created.status_code == 201, created.text
    segment = created.json()
    assert segment["segment_id"] == segment_id
    assert segment["name"] == "Coffee lovers"
    assert segment["rule"] == COFFEE_TWICE
    assert segment["version"] == 1
    assert segment["size"] == 0
    assert segment["size_as_of"]
    assert segment["evaluation"]["rule_version"] == 1
    assert segment["evaluation"]["status"] in ("pending", "running", "done")
    assert segment["created_at"] == segment["updated_at"]

    got = api.call("GET", f"/v1/admin/segments/{segment_id}", ADMIN_KEY)
    assert got.status_code == 200, got.text
    assert got.json()["name"] == "Coffee lovers"
    assert got.json()["version"] == 1

    renamed = put(api, segment_id, {**body, "name": "Coffee fans"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["version"] == 2
    assert renamed.json()["name"] == "Coffee fans"
    assert renamed.json()["created_at"] == segment["created_at"]
    # The rule is the same: no new background evaluation.
    assert renamed.json()["evaluation"]["rule_version"] == 1

    changed_rule = {"attr": "tier", "eq": "gold"}
    replaced = put(api, segment_id, {**body, "rule": changed_rule})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["version"] == 3
    assert replaced.json()["rule"] == changed_rule
    assert replaced.json()["evaluation"]["rule_version"] == 3

    ids: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        listed = api.call("GET", "/v1/admin/segments", ADMIN_KEY, params=params)
        assert listed.status_code == 200, listed.text
        ids += [s["segment_id"] for s in listed.json()["items"]]
        assert all("size" in s for s in listed.json()["items"])
        cursor = listed.json()["next_cursor"]
        if cursor is None:
            break
    assert ids.count(segment_id) == 1

    deleted = api.call("DELETE", f"/v1/admin/segments/{segment_id}", ADMIN_KEY)
    assert deleted.status_code == 204, deleted.text
    assert_problem(api.call("GET", f"/v1/admin/segments/{segment_id}", ADMIN_KEY), 404, "segment-not-found")
    assert_problem(
        api.call("DELETE", f"/v1/admin/segments/{segment_id}", ADMIN_KEY), 404, "segment-not-found"
    )
    listed = api.call("GET", "/v1/admin/segments", ADMIN_KEY, params={"limit": "200"}).json()
    assert segment_id not in [s["segment_id"] for s in listed["items"]]


def test_a_segment_an_offer_or_challenge_names_cannot_be_deleted(api: Api) -> None:
    segment_id = sid()
    nobody = {
        "attr": "profile.attributes.cohort",
        "eq": uuid.uuid4().hex,
    }  # its offer prices no other test's cart
    assert put(api, segment_id, {"name": "VIP", "rule": nobody}).status_code == 201
    offer_id = sid("offer")
    offer = {
        "offer_id": offer_id,
        "name": "10% for VIPs",
        "audience": {"segments": [segment_id]},
        "effect": {"type": "percent_off", "value": "10"},
    }
    response = api.call("POST", "/v1/admin/offers", ADMIN_KEY, json=offer)
    assert response.status_code == 201, response.text
    challenge_id = sid("challenge")
    challenge = {
        "challenge_id": challenge_id,
        "name": "VIP visits",
        "status": "draft",
        "audience": {"segments": [segment_id]},
        "tasks": [{"task_id": "t", "event": {"type": "segments-test-nobody-sends-this"}, "count": 1}],
        "reward": {"points": 1},
    }
    response = api.call("PUT", f"/v1/admin/challenges/{challenge_id}", ADMIN_KEY, json=challenge)
    assert response.status_code == 201, response.text

    problem = assert_problem(
        api.call("DELETE", f"/v1/admin/segments/{segment_id}", ADMIN_KEY), 409, "segment-in-use"
    )
    assert {(u["kind"], u["id"]) for u in problem["used_by"]} == {
        ("offer", offer_id),
        ("challenge", challenge_id),
    }
    assert offer_id in problem["detail"]
    assert api.call("GET", f"/v1/admin/segments/{segment_id}", ADMIN_KEY).status_code == 200

    # Once no audience that can still apply names it, it goes: the offer ends (an offer for
    # everyone would discount every other test's carts), the draft challenge lets go of it.
    offer |= {"valid_from": "2020-01-01T00:00:00Z", "valid_until": "2020-02-01T00:00:00Z"}
    assert api.call("PUT", f"/v1/admin/offers/{offer_id}", ADMIN_KEY, json=offer).status_code == 200
    challenge["audience"] = {}
    response = api.call("PUT", f"/v1/admin/challenges/{challenge_id}", ADMIN_KEY, json=challenge)
    assert response.status_code == 200, response.text
    assert api.call("DELETE", f"/v1/admin/segments/{segment_id}", ADMIN_KEY).status_code == 204


def test_an_offer_that_has_ended_does_not_hold_a_segment(api: Api) -> None:
    segment_id = sid()
    assert put(api, segment_id, {"name": "old", "rule": nobody()}).status_code == 201
    offer = {
        "offer_id": sid("offer"),
        "name": "last year's",
        "valid_from": "2020-01-01T00:00:00Z",
        "valid_until": "2020-02-01T00:00:00Z",
        "audience": {"segments": [segment_id]},
        "effect": {"type": "percent_off", "value": "10"},
    }
    assert api.call("POST", "/v1/admin/offers", ADMIN_KEY, json=offer).status_code == 201
    assert api.call("DELETE", f"/v1/admin/segments/{segment_id}", ADMIN_KEY).status_code == 204


def test_bad_rules_are_refused_naming_their_place(api: Api) -> None:
    segment_id = sid()
    cases: list[tuple[Any, list[Any]]] = [
        (
            {"all": [{"attr": "member", "eq": True}, {"purchased": {"within": "P90X"}}]},
            ["body", "rule", "all", 1, "purchased", "within"],
        ),
        ({"attr": "shoe_size", "eq": 42}, ["body", "rule", "attr"]),
        ({"any": [{"attr": "points.available", "gte": "lots"}]}, ["body", "rule", "any", 0, "gte"]),
        ({"sometimes": []}, ["body", "rule"]),
        ({"all": [{"attr": "member", "eq": True}] * 51}, None),
    ]
    for rule, loc in cases:
        problem = assert_problem(
            put(api, segment_id, {"name": "bad", "rule": rule}), 422, "validation-failed"
        )
        if loc is not None:
            assert loc in [e["loc"] for e in problem["errors"]], problem
        else:
            assert problem["errors"][0]["loc"][:2] == ["body", "rule"], problem
    problem = assert_problem(put(api, segment_id, {"name": "bad", "rule": [1, 2]}), 422, "validation-failed")
    assert problem["errors"][0]["loc"][:2] == ["body", "rule"]
    problem = assert_problem(
        put(api, segment_id, {"rule": {"attr": "member", "eq": True}}), 422, "validation-failed"
    )
    assert ["body", "name"] in [e["loc"] for e in problem["errors"]]
    problem = assert_problem(
        put(api, "bad!id", {"name": "x", "rule": {"attr": "member", "eq": True}}), 422, "validation-failed"
    )
    assert problem["errors"][0]["loc"][0] == "path"
    # Nothing was saved by any of them.
    assert_problem(api.call("GET", f"/v1/admin/segments/{segment_id}", ADMIN_KEY), 404, "segment-not-found")


def test_unknown_segments_are_404_and_other_keys_403(api: Api) -> None:
    missing = sid("missing")
    for method, path in (
        ("GET", f"/v1/admin/segments/{missing}"),
        ("DELETE", f"/v1/admin/segments/{missing}"),
        ("GET", f"/v1/admin/segments/{missing}/customers"),
    ):
        assert_problem(api.call(method, path, ADMIN_KEY), 404, "segment-not-found")
    assert_problem(api.call("GET", "/v1/admin/segments", POS_KEY), 403, "forbidden")


def test_a_replayed_put_answers_the_first_response_and_changes_nothing(api: Api) -> None:
    segment_id = sid()
    body = {"name": "Replay", "rule": nobody()}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = put(api, segment_id, body, headers=key)
    assert first.status_code == 201, first.text
    again = put(api, segment_id, body, headers=key)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert api.call("GET", f"/v1/admin/segments/{segment_id}", ADMIN_KEY).json()["version"] == 1

    other = put(api, segment_id, {**body, "name": "Other"}, headers=key)
    assert_problem(other, 422, "idempotency-key-mismatch")
    # Without the key a PUT is a new version, as PUTs are.
    assert put(api, segment_id, body).json()["version"] == 2


def test_the_members_of_an_empty_segment_are_an_empty_page(api: Api) -> None:
    segment_id = sid()
    assert (
        put(api, segment_id, {"name": "nobody", "rule": {"attr": "tier", "eq": "no-such-tier"}}).status_code
        == 201
    )
    page = api.call("GET", f"/v1/admin/segments/{segment_id}/customers", ADMIN_KEY)
    assert page.status_code == 200, page.text
    assert page.json() == {"items": [], "next_cursor": None}
    forged = api.call(
        "GET", f"/v1/admin/segments/{segment_id}/customers", ADMIN_KEY, params={"cursor": "abc"}
    )
    assert_problem(forged, 400, "invalid-cursor")


PASS_DEADLINE_SECONDS = 120


def test_a_new_segment_is_evaluated_for_the_customers_that_existed_before_it(api: Api) -> None:
    """The customers exist first; the segment comes later. The background pass (the segments job,
    running in the local runtime as on AWS, reading the live customers from the lake) puts the
    matching ones in, and the segment shows its progress until it is done."""
    cohort = uuid.uuid4().hex[:10]
    ins = [
        api.enrol(
            links=[{"type": "email", "value": f"in-{n}-{cohort}@example.com"}],
            profile={"attributes": {"cohort": cohort}},
        )
        for n in range(3)
    ]
    api.enrol(
        links=[{"type": "email", "value": f"out-{cohort}@example.com"}],
        profile={"attributes": {"cohort": "other"}},
    )
    guest = api.enrol(
        links=[{"type": "email", "value": f"guest-{cohort}@example.com"}],
        profile={"attributes": {"cohort": cohort}},
        member=False,
    )
    segment_id = sid("cohort")
    rule = {"attr": "profile.attributes.cohort", "eq": cohort}
    created = put(api, segment_id, {"name": "cohort", "rule": rule})
    assert created.status_code == 201, created.text
    assert created.json()["evaluation"]["status"] == "pending"
    # Life goes on after the save: a later customer (the lake's clock moves past the save with it).
    time.sleep(1.1)
    late = api.enrol(
        links=[{"type": "email", "value": f"late-{cohort}@example.com"}],
        profile={"attributes": {"cohort": cohort}},
    )

    deadline = time.monotonic() + PASS_DEADLINE_SECONDS
    seen_statuses = set()
    while True:
        segment = api.call("GET", f"/v1/admin/segments/{segment_id}", ADMIN_KEY).json()
        seen_statuses.add(segment["evaluation"]["status"])
        if segment["evaluation"]["status"] == "done" and segment["size"] == 5:
            break
        assert time.monotonic() < deadline, (segment["evaluation"], segment["size"])
        time.sleep(0.5)
    e = segment["evaluation"]
    assert e["evaluated"] == e["total"] >= 5  # the late customer: the pass's or the real-time worker's
    assert e["started_at"] and e["finished_at"] and e["started_at"] <= e["finished_at"]
    assert e["rule_version"] == 1

    expected = sorted([c["customer_id"] for c in ins] + [guest["customer_id"], late["customer_id"]])
    members: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = api.call("GET", f"/v1/admin/segments/{segment_id}/customers", ADMIN_KEY, params=params)
        assert page.status_code == 200, page.text
        members += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert [m["customer_id"] for m in members] == expected
    assert {m["customer_id"]: m["member"] for m in members}[guest["customer_id"]] is False
    assert all(m["entered_at"] for m in members)
    # The 360-degree view agrees.
    view = api.call("GET", f"/v1/customers/{ins[0]['customer_id']}", POS_KEY).json()
    assert segment_id in view["segments"]

    # Deleted, its members leave it in the background: the 360-degree view no longer shows it.
    assert api.call("DELETE", f"/v1/admin/segments/{segment_id}", ADMIN_KEY).status_code == 204
    deadline = time.monotonic() + 60
    while segment_id in api.call("GET", f"/v1/customers/{ins[0]['customer_id']}", POS_KEY).json()["segments"]:
        assert time.monotonic() < deadline, "the deleted segment stayed on the profile"
        time.sleep(0.5)
