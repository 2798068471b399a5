"""Campaign definitions over HTTP, as a marketer's console sends them: create, read, list (paged),
replace, delete; bad definitions answered 422 naming each field; 409 for an ended campaign, for a
segment a campaign uses and for a campaign's own trigger segment."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_KEY, Api, assert_problem


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def marketer(api: Api) -> str:
    made = api.call(
        "POST", "/v1/admin/api-keys", ADMIN_KEY, json={"kind": "marketer", "name": "campaigns e2e"}
    )
    assert made.status_code == 201, made.text
    key: str = made.json()["api_key"]
    return key


@pytest.fixture(scope="module")
def world(api: Api, marketer: str) -> dict[str, str]:
    """A segment nobody matches, a coupon offer and an email template that shows the coupon."""
    segment_id, offer_id, template_id = uid("camp-seg"), uid("camp-offer"), uid("camp-tpl")
    rule = {"attr": "profile.attributes.cohort", "eq": uuid.uuid4().hex}
    ok(api.call("PUT", f"/v1/admin/segments/{segment_id}", marketer, json={"name": "nobody", "rule": rule}))
    offer = {
        "offer_id": offer_id,
        "name": "10% off",
        "requires_coupon": True,
        "effect": {"type": "percent_off", "value": "10"},
    }
    ok(api.call("POST", "/v1/admin/offers", marketer, json=offer))
    template = {
        "channel": "email",
        "subject": "For you",
        "body": "Hi {{ first_name }}, use {{ coupon.code }}. Unsubscribe: {{ unsubscribe_url }}",
    }
    ok(api.call("PUT", f"/v1/admin/templates/{template_id}", marketer, json=template))
    return {"segment": segment_id, "offer": offer_id, "template": template_id}


def ok(response: Any) -> Any:
    assert 200 <= response.status_code < 300, response.text
    return response.json() if response.content else None


def campaign(world: dict[str, str], **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Spring coupon",
        "trigger": {"type": "manual"},
        "audience": {"segment_id": world["segment"], "members_only": True},
        "actions": [
            {"type": "coupon", "offer_id": world["offer"], "valid_days": 14},
            {"type": "message", "template_id": world["template"]},
        ],
        "control_group": {"percent": 10},
        "limits": {"max_recipients": 1000},
    }
    return body | changes


def put(api: Api, key: str, campaign_id: str, body: dict[str, Any]) -> Any:
    return api.call("PUT", f"/v1/admin/campaigns/{campaign_id}", key, json=body)


def test_a_campaign_is_created_read_listed_replaced_and_deleted(
    api: Api, marketer: str, world: dict[str, str]
) -> None:
    campaign_id = uid("camp")
    created = put(api, marketer, campaign_id, campaign(world))
    assert created.status_code == 201, created.text
    saved = created.json()
    assert saved["campaign_id"] == campaign_id
    assert saved["version"] == 1
    assert saved["status"] == "draft"
    assert saved["actions"][0] == {"type": "coupon", "offer_id": world["offer"], "valid_days": 14}
    assert saved["control_group"] == {"percent": 10}
    assert saved["next_run_at"] is None and saved["trigger_segment_id"] is None

    got = api.call("GET", f"/v1/admin/campaigns/{campaign_id}", marketer)
    assert got.status_code == 200, got.text
    assert got.json() == saved

    replaced = put(api, marketer, campaign_id, campaign(world, name="Spring coupon 2", status="active"))
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["version"], replaced.json()["status"]) == (2, "active")
    assert replaced.json()["created_at"] == saved["created_at"]

    found, cursor, pages = [], None, 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = ok(api.call("GET", "/v1/admin/campaigns", marketer, params=params))
        assert len(page["items"]) <= 2
        found += [c["campaign_id"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert campaign_id in found
    assert found == sorted(found) and len(found) == len(set(found))

    assert api.call("DELETE", f"/v1/admin/campaigns/{campaign_id}", marketer).status_code == 204
    assert_problem(api.call("GET", f"/v1/admin/campaigns/{campaign_id}", marketer), 404, "campaign-not-found")
    assert_problem(
        api.call("DELETE", f"/v1/admin/campaigns/{campaign_id}", marketer), 404, "campaign-not-found"
    )


def test_a_weekly_schedule_campaign_says_when_it_runs_next(
    api: Api, marketer: str, world: dict[str, str]
) -> None:
    campaign_id = uid("camp-weekly")
    trigger = {"type": "schedule", "cron": "cron(0 9 ? * MON *)", "timezone": "Europe/Amsterdam"}
    saved = ok(put(api, marketer, campaign_id, campaign(world, trigger=trigger, status="active")))
    assert saved["next_run_at"] is not None
    paused = ok(put(api, marketer, campaign_id, campaign(world, trigger=trigger, status="paused")))
    assert paused["next_run_at"] is None
    assert api.call("DELETE", f"/v1/admin/campaigns/{campaign_id}", marketer).status_code == 204


def bad_definitions(world: dict[str, str]) -> list[tuple[dict[str, Any], list[Any]]]:
    coupon = {"type": "coupon", "offer_id": world["offer"]}
    message = {"type": "message", "template_id": world["template"]}
    return [
        (campaign(world, audience={"segment_id": "no-such-segment"}), ["body", "audience", "segment_id"]),
        (campaign(world, audience={}), ["body", "audience", "segment_id"]),
        (
            campaign(world, actions=[{"type": "coupon", "offer_id": "no-such-offer"}]),
            ["body", "actions", 0, "offer_id"],
        ),
        (
            campaign(
                world,
                actions=[coupon, {"type": "points", "points": 5}, {"type": "message", "template_id": "nope"}],
            ),
            ["body", "actions", 2, "template_id"],
        ),
        (campaign(world, actions=[message, coupon]), ["body", "actions", 0, "template_id"]),
        (
            campaign(world, trigger={"type": "schedule", "cron": "cron(0 0 30 2 ? *)"}),
            ["body", "trigger", "cron"],
        ),
        (
            campaign(world, trigger={"type": "schedule", "cron": "cron(0 9 * * *)"}),
            ["body", "trigger", "cron"],
        ),
        (
            campaign(
                world, trigger={"type": "schedule", "cron": "cron(0 9 ? * MON *)", "timezone": "Mars/Olympus"}
            ),
            ["body", "trigger", "timezone"],
        ),
        (
            campaign(world, trigger={"type": "schedule", "at": "2020-01-01T09:00:00Z"}),
            ["body", "trigger", "at"],
        ),
        (
            campaign(world, actions=[{"type": "points", "points": 100}], limits={"budget": {"points": 99}}),
            ["body", "limits", "budget", "points"],
        ),
        (
            campaign(
                world,
                actions=[{"type": "promo_cash", "amount": "5.00"}],
                limits={"budget": {"amount": "1.00"}},
            ),
            ["body", "limits", "budget", "amount"],
        ),
    ]


def test_bad_definitions_are_422_naming_the_field(api: Api, marketer: str, world: dict[str, str]) -> None:
    for body, loc in bad_definitions(world):
        campaign_id = uid("camp-bad")
        problem = assert_problem(put(api, marketer, campaign_id, body), 422, "validation-failed")
        assert [e["loc"] for e in problem["errors"]] == [loc], problem
        assert_problem(
            api.call("GET", f"/v1/admin/campaigns/{campaign_id}", marketer), 404, "campaign-not-found"
        )
    # What the model refuses on its own is named the same way.
    unknown_field = assert_problem(
        put(api, marketer, uid("camp-bad"), campaign(world, colour="red")), 422, "validation-failed"
    )
    assert ["body", "colour"] in [e["loc"] for e in unknown_field["errors"]]
    # Every problem of one body at once.
    several = campaign(
        world, audience={"segment_id": "gone"}, actions=[{"type": "coupon", "offer_id": "gone"}]
    )
    problem = assert_problem(put(api, marketer, uid("camp-bad"), several), 422, "validation-failed")
    assert [e["loc"] for e in problem["errors"]] == [
        ["body", "audience", "segment_id"],
        ["body", "actions", 0, "offer_id"],
    ]


def test_conflicts_are_409(api: Api, marketer: str, world: dict[str, str]) -> None:
    # A segment a campaign uses cannot be deleted; once the campaign has ended it can.
    segment_id = uid("camp-seg-used")
    rule = {"attr": "profile.attributes.cohort", "eq": uuid.uuid4().hex}
    ok(api.call("PUT", f"/v1/admin/segments/{segment_id}", marketer, json={"name": "used", "rule": rule}))
    campaign_id = uid("camp-ends")
    ok(put(api, marketer, campaign_id, campaign(world, audience={"segment_id": segment_id})))
    in_use = assert_problem(
        api.call("DELETE", f"/v1/admin/segments/{segment_id}", marketer), 409, "segment-in-use"
    )
    assert in_use["used_by"] == [
        {"kind": "campaign", "id": campaign_id, "name": "Spring coupon", "status": "draft"}
    ]
    # Nor the template its message sends.
    template = assert_problem(
        api.call("DELETE", f"/v1/admin/templates/{world['template']}", marketer), 409, "template-in-use"
    )
    assert f"campaign {campaign_id!r}" in template["detail"] or "campaign '" in template["detail"]
    ended = campaign(world, audience={"segment_id": segment_id}, status="ended")
    assert ok(put(api, marketer, campaign_id, ended))["status"] == "ended"
    # An ended campaign is final.
    again = assert_problem(
        put(api, marketer, campaign_id, campaign(world, status="active")), 409, "campaign-not-runnable"
    )
    assert "ended" in again["detail"]
    assert api.call("DELETE", f"/v1/admin/segments/{segment_id}", marketer).status_code == 204


def test_a_birthday_campaigns_trigger_segment_is_the_campaigns(
    api: Api, marketer: str, world: dict[str, str]
) -> None:
    campaign_id = uid("camp-bday")
    body = campaign(world, trigger={"type": "birthday", "days_before": 1}, status="active")
    saved = ok(put(api, marketer, campaign_id, body))
    derived = saved["trigger_segment_id"]
    assert derived == f"campaign-trigger-{campaign_id}"
    segment = ok(api.call("GET", f"/v1/admin/segments/{derived}", marketer))
    assert segment["rule"]["all"][0] == {"birthday": {"within_days": 1}}
    mine = {"name": "mine", "rule": {"attr": "member", "eq": True}}
    assert_problem(
        api.call("PUT", f"/v1/admin/segments/{derived}", marketer, json=mine), 409, "segment-in-use"
    )
    assert_problem(api.call("DELETE", f"/v1/admin/segments/{derived}", marketer), 409, "segment-in-use")
    assert api.call("DELETE", f"/v1/admin/campaigns/{campaign_id}", marketer).status_code == 204
    assert_problem(api.call("GET", f"/v1/admin/segments/{derived}", marketer), 404, "segment-not-found")
