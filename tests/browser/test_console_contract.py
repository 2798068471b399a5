"""Segments and campaigns screens against the contract (spec "Segments", "Campaigns"), before their
APIs land (issues 17 and 19): the platform does not serve those routes yet, so this test answers
them in the browser with documents shaped as the contract says, and checks what the console does with
them — the screens appear once the API answers, the rule builder's preview count follows the rule
(debounced: one preview per pause, not per keystroke), a campaign's dry run shows its cost and a run's
progress is followed until it finishes. Once the real routes exist, tests against them replace this.
Everything else on the page (sign-in, key kind, offers, templates) is the real platform."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import MARKETER_KEY, check_screen, sign_in
from tests.e2e.conftest import Api

pytestmark = pytest.mark.xdist_group("console-browser")


class ContractApi:
    """The segments and campaigns routes as the contract describes them, kept in memory."""

    def __init__(self) -> None:
        self.previews: list[dict[str, Any]] = []
        self.segments: dict[str, dict[str, Any]] = {}
        self.campaigns: dict[str, dict[str, Any]] = {}
        self.polls = 0

    def answer(self, route: Route) -> None:
        request = route.request
        path = request.url.split("/v1/admin/", 1)[1].split("?", 1)[0]
        body = json.loads(request.post_data) if request.post_data else None
        status, document = self._answer(request.method, path, body)
        route.fulfill(status=status, content_type="application/json", body=json.dumps(document))

    def _answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:  # noqa: PLR0911 - one per route
        parts = path.split("/")
        if path == "segments/preview":
            self.previews.append(body["rule"])
            count = 40 // (len(body["rule"].get("all", [])) or 1)
            return 200, {
                "count": count, "members": count - 1, "non_members": 1,
                "reachable": {"email": count - 2, "sms": 3, "mail": 1},
                "sample": [], "as_of": "2026-12-07T10:00:00Z",
            }  # fmt: skip
        if path == "segments" and method == "GET":
            return 200, {"items": list(self.segments.values()), "next_cursor": None}
        if parts[0] == "segments" and method == "PUT":
            self.segments[parts[1]] = {
                "segment_id": parts[1],
                **body,
                "size": 20,
                "size_as_of": "2026-12-07T10:00:00Z",
            }
            return 201, self.segments[parts[1]]
        if path == "campaigns" and method == "GET":
            return 200, {"items": list(self.campaigns.values()), "next_cursor": None}
        if parts[0] == "campaigns" and len(parts) == 2 and method == "PUT":
            self.campaigns[parts[1]] = {"campaign_id": parts[1], **body}
            return 201, self.campaigns[parts[1]]
        if parts[0] == "campaigns" and len(parts) == 2:
            return 200, self.campaigns[parts[1]]
        if parts[-1] == "dry-run":
            return 200, {
                "audience": 20, "control": 2, "eligible": 15,
                "excluded": {"no_consent": 2, "suppressed": 1, "frequency_capped": 0, "already_received": 0,
                             "over_budget": 0},
                "cost": {"points": 1500, "amount": "0.00", "coupons": 0, "messages": {"email": 15}},
                "sample": [],
            }  # fmt: skip
        if parts[-1] == "runs":
            return 202, {"run_id": "run-1", "status": "running"}
        if parts[-2] == "runs":
            self.polls += 1
            done = self.polls >= 3
            counts = {"audience": 20, "control": 2, "actioned": 15 if done else 5 * self.polls,
                      "skipped": {"no_consent": 3} if done else {}, "failed": 0}  # fmt: skip
            return 200, {
                "status": "succeeded" if done else "running", "counts": counts,
                "started_at": "2026-12-07T10:00:00Z", "finished_at": "2026-12-07T10:00:03Z" if done else None,
            }  # fmt: skip
        if parts[0] == "reports":
            return 200, {
                "treatment": {"customers": 15, "converted": 6},
                "control": {"customers": 2, "converted": 0},
            }
        return 404, {"type": "about:blank", "title": "Not found", "status": 404}


def test_segments_and_campaigns_against_the_contract(page: Page, api: Api) -> None:
    fake = ContractApi()
    page.route(re.compile(r".*/v1/admin/(segments|campaigns|reports/campaigns)(/.*)?(\?.*)?$"), fake.answer)
    sign_in(page, api, MARKETER_KEY)
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Segments").click()
    page.get_by_role("link", name="New segment").click()
    expect(page.get_by_role("status").locator(".count")).to_have_text("40")
    previews = len(fake.previews)

    page.get_by_role("button", name="Add a condition").click()
    page.get_by_label("Condition 2", exact=True).select_option("purchased")
    page.get_by_label("Categories").fill("coffee, tea")
    # One pause, one preview: typing does not send a preview per keystroke.
    expect(page.get_by_role("status").locator(".count")).to_have_text("20")
    assert len(fake.previews) - previews <= 2, fake.previews[previews:]
    assert fake.previews[-1]["all"][1] == {"purchased": {"within": "P90D", "categories": ["coffee", "tea"]}}
    check_screen(page, "13-segment-builder")

    page.get_by_label("Id (segment_id)").fill("coffee-fans")
    page.get_by_label("Name").fill("Coffee fans")
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_contain_text("20 members")

    nav.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()
    page.get_by_label("Id (campaign_id)").fill("win-back")
    page.get_by_label("Name").fill("Win back coffee fans")
    page.get_by_label("Segment", exact=True).select_option("coffee-fans")
    page.get_by_label("Action 1", exact=True).select_option("points")
    page.get_by_label("Points", exact=True).fill("100")
    check_screen(page, "14-campaign-form")
    page.get_by_role("button", name="Save campaign").click()
    saved = fake.campaigns["win-back"]
    assert saved["audience"] == {"segment_id": "coffee-fans", "members_only": False}
    assert saved["actions"] == [{"type": "points", "points": 100}]
    assert saved["control_group"] == {"percent": 10}

    page.get_by_role("button", name="Dry run").click()
    expect(page.get_by_text("Cost in points")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("1500")
    page.get_by_role("button", name="Start a run now").click()
    expect(page.locator(".run-status")).to_have_text("succeeded", timeout=10_000)
    expect(page.get_by_role("status").filter(has_text="Status")).to_contain_text("18 of 18 handled")
    check_screen(page, "15-campaign-run")

    nav.get_by_role("link", name="Reports").click()
    page.get_by_role("tab", name="Campaign uplift").click()
    page.get_by_label("Campaign", exact=True).select_option("win-back")
    expect(page.get_by_role("table", name="Treatment and control")).to_contain_text("treatment")
    check_screen(page, "16-report-campaign-uplift")
