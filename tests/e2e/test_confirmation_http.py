"""Issue 18 item 8 over HTTP: double opt-in. With `messaging.confirm_email` on, a web enrolment is
pending (no card, no earning) until the emailed link is followed; the link works without a key, twice
is the same, a forged one is a 400; a till enrolment is a member at once."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY, Api, assert_problem, unique_email
from tests.e2e.test_messaging_http import outbox, raw_emails_to, wait_for
from tests.e2e.test_transactions_http import coffee, sale

CONFIRMATION = {
    "channel": "email",
    "purpose": "confirmation",
    "subject": "Confirm your membership, {{ first_name }}",
    "body": "Confirm: {{ confirm_url }}\nUnsubscribe: {{ unsubscribe_url }}",
}
WELCOME = {
    "channel": "email",
    "subject": "Welcome, {{ first_name }}",
    "body": "Card {{ card }}. Unsubscribe: {{ unsubscribe_url }}",
}


@pytest.fixture
def opt_in(api: Api) -> Iterator[dict[str, str]]:
    """Double opt-in on, with a confirmation and a welcome template; the programme is put back."""
    ids = {"confirmation": f"confirm-{uuid.uuid4().hex[:8]}", "welcome": f"welcome-{uuid.uuid4().hex[:8]}"}
    for name, body in (("confirmation", CONFIRMATION), ("welcome", WELCOME)):
        put = api.call("PUT", f"/v1/admin/templates/{ids[name]}", ADMIN_KEY, json=body)
        assert put.status_code == 201, put.text
    before = api.call("GET", "/v1/admin/programme", ADMIN_KEY).json()
    messaging = {
        **before["messaging"],
        "confirm_email": True,
        "confirmation_template_id": ids["confirmation"],
        "welcome_template_id": ids["welcome"],
    }
    updated = api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json={**before, "messaging": messaging})
    assert updated.status_code == 200, updated.text
    assert updated.json()["messaging"]["confirm_within_days"] == 7
    yield ids
    assert api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json=before).status_code == 200


def _confirm_link(api: Api, address: str) -> str:
    (mime,) = wait_for(lambda: raw_emails_to(api, address))
    assert mime["Subject"].startswith("Confirm your membership")
    text = mime.get_payload(decode=True) if not mime.is_multipart() else None
    if text is None:
        text = next(p.get_payload(decode=True) for p in mime.walk() if p.get_content_type() == "text/plain")
    found = re.search(rb"Confirm: (\S+)", text)
    assert found, text
    link = urlsplit(found.group(1).decode())
    assert link.path == "/v1/confirm" and link.query.startswith("token=")
    return link.query


def test_a_web_enrolment_waits_for_the_emailed_link_then_becomes_a_member(
    api: Api, opt_in: dict[str, str]
) -> None:
    address = unique_email()
    body: dict[str, Any] = {
        "links": [{"type": "email", "value": address}],
        "profile": {"first_name": "Noor"},
        "consents": {"email": True},
        "member": True,
    }
    created = api.call("POST", "/v1/customers", WEB_KEY, json=body)
    assert created.status_code == 201, created.text
    pending = created.json()
    cid = pending["customer_id"]
    assert pending["status"] == "pending_confirmation" and pending["member"] is False
    assert pending["card"] is None and pending["tier"] is None and pending["confirm_by"]

    # Signing up again while pending: the same pending profile, no 409, no second email.
    again = api.call("POST", "/v1/customers", WEB_KEY, json=body)
    assert again.status_code == 200, again.text
    assert again.json()["customer_id"] == cid and again.json()["status"] == "pending_confirmation"

    # A sale while pending is recorded as for a non-member: nothing earned.
    receipt = api.call(
        "POST",
        "/v1/transactions",
        POS_KEY,
        json=sale({"link": {"type": "email", "value": address}}, [coffee()]),
    )
    assert receipt.status_code == 201, receipt.text
    assert receipt.json()["member"] is False and receipt.json()["points_earned"] == 0

    query = _confirm_link(api, address)
    sent = outbox(api, customer_id=cid, status="sent")
    assert [m["cause"] for m in sent] == ["confirmation"]

    page = api.call("GET", f"/v1/confirm?{query}", key=None)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<form method="post" action="/v1/confirm?token=' in page.text
    assert api.call("GET", f"/v1/customers/{cid}", POS_KEY).json()["status"] == "pending_confirmation"

    confirmed = api.call("POST", f"/v1/confirm?{query}", key=None)
    assert confirmed.status_code == 200, confirmed.text
    view = api.call("GET", f"/v1/customers/{cid}", POS_KEY).json()
    assert view["status"] == "active" and view["member"] is True and view["card"]
    assert view["tier"] and view["confirm_by"] is None
    assert view["card"] in confirmed.text

    second = api.call("POST", f"/v1/confirm?{query}", key=None)
    assert second.status_code == 200 and second.text == confirmed.text
    assert api.call("GET", f"/v1/customers/{cid}", POS_KEY).json()["card"] == view["card"]
    assert "You are a member" in api.call("GET", f"/v1/confirm?{query}", key=None).text

    # The welcome flow starts on the enrolment, once.
    welcomed = wait_for(
        lambda: [m for m in outbox(api, customer_id=cid, status="sent") if m["cause"] == "welcome"]
    )
    assert len(welcomed) == 1 and welcomed[0]["template_id"] == opt_in["welcome"]
    assert len(raw_emails_to(api, address)) == 2


def test_concurrent_confirmations_enrol_once(api: Api, opt_in: dict[str, str]) -> None:
    address = unique_email()
    pending = api.enrol(WEB_KEY, links=[{"type": "email", "value": address}], member=True)
    assert pending["status"] == "pending_confirmation"
    query = _confirm_link(api, address)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: api.call("POST", f"/v1/confirm?{query}", key=None), range(4)))
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert len({a.text for a in answers}) == 1
    view = api.call("GET", f"/v1/customers/{pending['customer_id']}", POS_KEY).json()
    assert view["member"] is True and len([ln for ln in view["links"] if ln["type"] == "card"]) == 1


def test_patch_member_from_the_web_also_waits_for_the_link(api: Api, opt_in: dict[str, str]) -> None:
    address = unique_email()
    guest = api.enrol(WEB_KEY, links=[{"type": "email", "value": address}], member=False)
    patched = api.call("PATCH", f"/v1/customers/{guest['customer_id']}", WEB_KEY, json={"member": True})
    assert patched.status_code == 200, patched.text
    assert patched.json()["status"] == "pending_confirmation" and patched.json()["card"] is None
    query = _confirm_link(api, address)
    assert api.call("POST", f"/v1/confirm?{query}", key=None).status_code == 200
    assert api.call("GET", f"/v1/customers/{guest['customer_id']}", POS_KEY).json()["member"] is True


def test_a_till_enrolment_needs_no_confirmation(api: Api, opt_in: dict[str, str]) -> None:
    address = unique_email()
    member = api.enrol(POS_KEY, links=[{"type": "email", "value": address}], member=True)
    assert member["status"] == "active" and member["member"] is True and member["card"]
    assert [
        m["cause"] for m in outbox(api, customer_id=member["customer_id"]) if m["cause"] == "confirmation"
    ] == []


def test_a_web_enrolment_without_an_email_cannot_be_confirmed(api: Api, opt_in: dict[str, str]) -> None:
    body = {"links": [{"type": "phone", "value": "+31612345678"}], "member": True}
    response = api.call("POST", "/v1/customers", WEB_KEY, json=body)
    assert_problem(response, 422, "validation-failed")
    assert response.json()["errors"][0]["loc"] == ["body", "links"]


def test_a_forged_or_cut_confirmation_token_is_a_problem(api: Api) -> None:
    for token in ("c1.someone.99999999999.00000000000000000000000000000000", "garbage", "c1.x.1.0"):
        for method in ("GET", "POST"):
            response = api.call(method, f"/v1/confirm?token={token}", key=None)
            assert_problem(response, 400, "invalid-confirmation-token")
            assert response.json()["errors"][0]["loc"] == ["query", "token"]
    assert api.call("POST", "/v1/confirm", key=None).status_code == 422


def _event(type_: str, customer_id: str, message_id: str, at: str) -> dict[str, Any]:
    return {
        "event_id": f"ev-{uuid.uuid4().hex[:16]}",
        "type": type_,
        "occurred_at": at,
        "customer": {"customer_id": customer_id},
        "properties": {"message_id": message_id},
    }


def test_email_open_and_click_events_link_back_to_the_message_they_name(
    api: Api, opt_in: dict[str, str]
) -> None:
    member = api.enrol(
        POS_KEY, links=[{"type": "email", "value": unique_email()}], consents={"email": True}, member=True
    )
    cid = member["customer_id"]
    (welcome,) = wait_for(lambda: outbox(api, customer_id=cid, status="sent"))
    assert welcome["opened_at"] is None and welcome["clicked_at"] is None
    mid = welcome["message_id"]

    first, later = "2026-01-05T10:00:00Z", "2026-01-05T11:00:00Z"
    opened = _event("email_open", cid, mid, first)
    unknown = _event("email_open", cid, "msg_" + "0" * 32, first)
    batch = [opened, unknown, _event("email_click", cid, mid, later), _event("email_open", cid, mid, later)]
    posted = api.call("POST", "/v1/events", WEB_KEY, json={"events": batch})
    assert posted.status_code == 202 and posted.json()["accepted"] == 4, posted.text

    marked = wait_for(lambda: [m for m in outbox(api, customer_id=cid) if m["opened_at"] and m["clicked_at"]])
    assert len(marked) == 1, outbox(api, customer_id=cid)
    assert marked[0]["opened_at"].startswith("2026-01-05T10:00:00")  # the first open only
    assert marked[0]["clicked_at"].startswith("2026-01-05T11:00:00")

    def timeline() -> list[dict[str, Any]]:
        response = api.call("GET", f"/v1/customers/{cid}/timeline", POS_KEY, params={"limit": "50"})
        assert response.status_code == 200, response.text
        return [i for i in response.json()["items"] if i["kind"] == "event"]

    events = {i["ref"]["event_id"]: i for i in wait_for(lambda: len(timeline()) == 4 and timeline())}
    assert events[opened["event_id"]]["ref"]["message_id"] == mid
    # An id that names no message of theirs: kept as a plain event, no ref.
    assert "message_id" not in events[unknown["event_id"]]["ref"]
    assert events[unknown["event_id"]]["data"] == {"message_id": "msg_" + "0" * 32}
