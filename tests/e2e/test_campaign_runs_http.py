"""A marketer's campaign over HTTP, end to end on the local runtime (workflows on): a segment, a
campaign with a coupon and an email, its dry run, a run executed by the synthesised state machine,
its progress polled until it succeeded, and its counts — the same as the dry run said."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_KEY, Api, assert_problem

RUN_DEADLINE_SECONDS = 120
SEGMENT_DEADLINE_SECONDS = 60
REPORT_DEADLINE_SECONDS = 90  # the lake is at most 60 s behind locally


@pytest.fixture(scope="module")
def marketer(api: Api) -> str:
    created = api.call(
        "POST", "/v1/admin/api-keys", ADMIN_KEY, json={"kind": "marketer", "name": "campaigns"}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["api_key"])


def ok(api: Api, method: str, path: str, key: str, status: int, json: Any = None) -> Any:
    response = api.call(method, path, key, json=json)
    assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
    return response.json() if response.content else None


def wait_for(check: Any, deadline_s: float, what: str) -> Any:
    deadline = time.monotonic() + deadline_s
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def test_a_marketer_defines_dry_runs_runs_and_reads_a_campaign(api: Api, marketer: str) -> None:
    tag = uuid.uuid4().hex[:10]
    # A segment of this test's customers only (other tests' customers never match it)
    segment_id = f"run-{tag}"
    rule = {"attr": "profile.attributes.cohort", "eq": tag}
    ok(api, "PUT", f"/v1/admin/segments/{segment_id}", marketer, 201, {"name": "campaign run", "rule": rule})
    consenting = [
        api.enrol(
            links=[{"type": "email", "value": f"yes-{n}-{tag}@example.com"}],
            profile={"attributes": {"cohort": tag}},
            consents={"email": True},
        )["customer_id"]
        for n in range(4)
    ]
    silent = [
        api.enrol(
            links=[{"type": "email", "value": f"no-{n}-{tag}@example.com"}],
            profile={"attributes": {"cohort": tag}},
        )["customer_id"]
        for n in range(2)
    ]
    wait_for(
        lambda: ok(api, "GET", f"/v1/admin/segments/{segment_id}", marketer, 200)["size"] == 6,
        SEGMENT_DEADLINE_SECONDS,
        "the segment never held its six customers",
    )
    # A campaign with a coupon and an email, made by the marketer
    offer_id = f"run-offer-{tag}"
    offer = {"offer_id": offer_id, "name": "spring coffee", "requires_coupon": True,
             "effect": {"type": "percent_off", "value": "100"}}  # fmt: skip
    ok(api, "POST", "/v1/admin/offers", marketer, 201, offer)
    template_id = f"run-mail-{tag}"
    body = "Hello {{ first_name }}. Unsubscribe: {{ unsubscribe_url }}"
    template = {"channel": "email", "subject": "Spring", "body": body}
    ok(api, "PUT", f"/v1/admin/templates/{template_id}", marketer, 201, template)
    campaign_id = f"spring-{tag}"
    campaign = {
        "name": "Spring coffee",
        "trigger": {"type": "manual"},
        "audience": {"segment_id": segment_id},
        "actions": [
            {"type": "coupon", "offer_id": offer_id, "valid_days": 14},
            {"type": "message", "template_id": template_id},
        ],
        "status": "active",
    }
    ok(api, "PUT", f"/v1/admin/campaigns/{campaign_id}", marketer, 201, campaign)

    # The dry run: who would get what, and what it would cost; nothing given
    dry = ok(api, "POST", f"/v1/admin/campaigns/{campaign_id}/dry-run", marketer, 200)
    assert (dry["audience"], dry["control"], dry["eligible"]) == (6, 0, 4)
    assert dry["excluded"]["no_consent"] == 2
    assert sum(dry["excluded"].values()) == 2
    assert dry["cost"] == {"points": 0, "amount": "0.00", "coupons": 4,
                           "messages": {"email": 4, "sms": 0, "mail": 0, "api": 0}}  # fmt: skip
    assert sorted(s["customer_id"] for s in dry["sample"]) == sorted(consenting + silent)
    assert ok(api, "GET", f"/v1/customers/{consenting[0]}/coupons", marketer, 200)["items"] == []

    # The run: started (202), watched until it succeeded
    started = ok(api, "POST", f"/v1/admin/campaigns/{campaign_id}/runs", marketer, 202)
    run_id = started["run_id"]
    assert started["status"] == "running"
    path = f"/v1/admin/campaigns/{campaign_id}/runs/{run_id}"
    seen: list[dict[str, Any]] = []

    def finished() -> dict[str, Any] | None:
        run = ok(api, "GET", path, marketer, 200)
        seen.append(run)
        return run if run["status"] != "running" else None

    run = wait_for(finished, RUN_DEADLINE_SECONDS, "the run never finished")
    assert run["status"] == "succeeded", run
    assert run["counts"] == {
        "audience": 6,
        "control": dry["control"],
        "actioned": dry["eligible"],
        "skipped": dry["excluded"],
        "failed": 0,
    }
    assert run["started_at"] <= run["finished_at"]
    assert all(s["counts"]["actioned"] <= 4 for s in seen)  # progress never overshoots
    # Each consenting customer holds one coupon of the campaign; the others none
    for cid in consenting:
        coupons = ok(api, "GET", f"/v1/customers/{cid}/coupons", marketer, 200)["items"]
        assert [c["offer_id"] for c in coupons] == [offer_id], coupons
    for cid in silent:
        assert ok(api, "GET", f"/v1/customers/{cid}/coupons", marketer, 200)["items"] == []
    # The run is listed, and a finished run can be neither cancelled nor retried
    listed = ok(api, "GET", f"/v1/admin/campaigns/{campaign_id}/runs", marketer, 200)
    assert [r["run_id"] for r in listed["items"]] == [run_id]
    assert_problem(api.call("POST", f"{path}/cancel", marketer), 409, "campaign-not-runnable")
    assert_problem(api.call("POST", f"{path}/retry", marketer), 409, "campaign-not-runnable")
    assert_problem(
        api.call("GET", f"/v1/admin/campaigns/{campaign_id}/runs/nope", marketer),
        404,
        "campaign-run-not-found",
    )
    # The report, once the lake has the receipts (within a minute): four treated, nobody held out
    # (no control group), so no uplift, with the reason; the cost is what the dry run said.
    report_path = f"/v1/admin/reports/campaigns/{campaign_id}"

    def reported() -> dict[str, Any] | None:
        body = ok(api, "GET", report_path, marketer, 200)
        return body if body["treatment"]["customers"] == 4 else None

    report = wait_for(reported, REPORT_DEADLINE_SECONDS, "the report never counted the run's receipts")
    assert report["control"]["customers"] == 0
    assert report["treatment"]["converted"] == 0
    assert report["uplift"]["absolute"]["value"] is None
    assert report["uplift"]["absolute"]["reason"] == "no_control"
    assert report["cost"]["coupons"]["issued"] == dry["cost"]["coupons"]
    assert report["cost"]["messages"] == dry["cost"]["messages"]


def test_a_draft_campaign_does_not_run(api: Api, marketer: str) -> None:
    campaign_id = f"draft-{uuid.uuid4().hex[:10]}"
    segment_id = f"draft-{uuid.uuid4().hex[:10]}"
    rule = {"attr": "profile.attributes.cohort", "eq": uuid.uuid4().hex}
    ok(api, "PUT", f"/v1/admin/segments/{segment_id}", marketer, 201, {"name": "nobody", "rule": rule})
    body = {"name": "draft", "trigger": {"type": "manual"}, "audience": {"segment_id": segment_id},
            "actions": [{"type": "points", "points": 5}]}  # fmt: skip
    ok(api, "PUT", f"/v1/admin/campaigns/{campaign_id}", marketer, 201, body)
    assert_problem(
        api.call("POST", f"/v1/admin/campaigns/{campaign_id}/runs", marketer), 409, "campaign-not-runnable"
    )
    assert_problem(api.call("POST", "/v1/admin/campaigns/nope/runs", marketer), 404, "campaign-not-found")
    assert ok(api, "GET", f"/v1/admin/campaigns/{campaign_id}/runs", marketer, 200)["items"] == []


def test_a_start_resent_with_its_idempotency_key_starts_one_run(api: Api, marketer: str) -> None:
    # Every run actions everyone again: a POST resent after a timeout must not become a second run.
    tag = uuid.uuid4().hex[:10]
    segment_id, campaign_id = f"idem-{tag}", f"idem-{tag}"
    rule = {"attr": "profile.attributes.cohort", "eq": tag}
    ok(api, "PUT", f"/v1/admin/segments/{segment_id}", marketer, 201, {"name": "idem", "rule": rule})
    body = {"name": "idem", "trigger": {"type": "manual"}, "audience": {"segment_id": segment_id},
            "actions": [{"type": "points", "points": 5}], "status": "active"}  # fmt: skip
    ok(api, "PUT", f"/v1/admin/campaigns/{campaign_id}", marketer, 201, body)
    path = f"/v1/admin/campaigns/{campaign_id}/runs"
    headers = {"Idempotency-Key": f"start-{tag}"}
    first = api.call("POST", path, marketer, headers=headers)
    again = api.call("POST", path, marketer, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202), (first.text, again.text)
    assert again.json() == first.json()
    listed = ok(api, "GET", path, marketer, 200)["items"]
    assert [r["run_id"] for r in listed] == [first.json()["run_id"]]
    # The same key on another campaign's runs is another request: 422, nothing started there
    other = f"idem-other-{tag}"
    ok(api, "PUT", f"/v1/admin/campaigns/{other}", marketer, 201, body)
    assert_problem(
        api.call("POST", f"/v1/admin/campaigns/{other}/runs", marketer, headers=headers),
        422,
        "idempotency-key-mismatch",
    )
    assert ok(api, "GET", f"/v1/admin/campaigns/{other}/runs", marketer, 200)["items"] == []
    # Without a key, a second POST is a second run (as the contract says: it starts a run now)
    assert api.call("POST", path, marketer).status_code == 202
    assert len(ok(api, "GET", path, marketer, 200)["items"]) == 2
