"""Issue 18 over HTTP: the welcome trigger sends an email once (bus -> trigger job -> table ->
mailer -> moto's SES) with a one-click unsubscribe link that works without a key, and the outbox
filters by customer, channel and status."""

from __future__ import annotations

import email
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.e2e.conftest import ADMIN_KEY, POS_KEY, Api, assert_problem, unique_email

WELCOME = {
    "channel": "email",
    "subject": "Welcome, {{ first_name }}",
    "body": "Hello {{ first_name }}. Unsubscribe: {{ unsubscribe_url }}",
}


@pytest.fixture
def welcome_on(api: Api) -> Iterator[str]:
    """A welcome email template named by the programme; the programme is put back afterwards."""
    template_id = f"welcome-{uuid.uuid4().hex[:8]}"
    assert api.call("PUT", f"/v1/admin/templates/{template_id}", ADMIN_KEY, json=WELCOME).status_code == 201
    before = api.call("GET", "/v1/admin/programme", ADMIN_KEY).json()
    updated = {**before, "messaging": {**before["messaging"], "welcome_template_id": template_id}}
    assert api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json=updated).status_code == 200
    yield template_id
    assert api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json=before).status_code == 200


def outbox(api: Api, **filters: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    response = api.call("GET", f"/v1/admin/outbox?limit=200&{query}", ADMIN_KEY)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def wait_for(probe: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def raw_emails_to(api: Api, address: str) -> list[email.message.Message]:
    assert api.runtime is not None
    data = requests.get(f"{api.runtime.moto.endpoint}/moto-api/data.json", timeout=10).json()
    parsed = [
        email.message_from_string(m.get("raw_data", "")) for m in data.get("ses", {}).get("RawMessage", [])
    ]
    return [m for m in parsed if m["To"] == address]


def test_a_welcome_email_is_sent_once_and_its_one_click_link_turns_email_off(
    api: Api, welcome_on: str
) -> None:
    address = unique_email()
    enrolled = api.enrol(
        links=[{"type": "email", "value": address}],
        profile={"first_name": "Mia"},
        consents={"email": True},
        member=True,
    )
    cid = enrolled["customer_id"]

    sent = wait_for(lambda: outbox(api, customer_id=cid, status="sent"))
    assert [m["cause"] for m in sent] == ["welcome"], outbox(api, customer_id=cid)
    (entry,) = sent
    assert entry["channel"] == "email" and entry["template_id"] == welcome_on and entry["to"] == address
    assert entry["attempts"] == 1 and entry["provider_message_id"]
    assert outbox(api, customer_id=cid, channel="sms") == []
    assert outbox(api, customer_id=cid, status="suppressed") == []

    (mime,) = wait_for(lambda: raw_emails_to(api, address))
    assert mime["Subject"] == "Welcome, Mia"
    assert mime["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = urlsplit(mime["List-Unsubscribe"].strip("<>"))
    assert link.path == "/v1/unsubscribe" and link.query.startswith("token=")

    page = api.call("GET", f"/v1/unsubscribe?{link.query}", key=None)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<form method="post"' in page.text
    assert api.call("GET", f"/v1/customers/{cid}", POS_KEY).json()["consents"]["email"] is True

    # What a mailbox provider does on "unsubscribe" (RFC 8058): a POST with the one-click body, no key.
    clicked = api.call(
        "POST",
        f"/v1/unsubscribe?{link.query}",
        key=None,
        data="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert clicked.status_code == 200, clicked.text
    assert api.call("GET", f"/v1/customers/{cid}", POS_KEY).json()["consents"]["email"] is False
    again = api.call("POST", f"/v1/unsubscribe?{link.query}", key=None)
    assert again.status_code == 200  # twice is the same
    assert "You are unsubscribed" in api.call("GET", f"/v1/unsubscribe?{link.query}", key=None).text
    assert len(raw_emails_to(api, address)) == 1


def test_a_forged_or_missing_unsubscribe_token_is_a_problem(api: Api) -> None:
    for token in ("u1.someone.email.00000000000000000000000000000000", "garbage", "u1.x.api.1"):
        for method in ("GET", "POST"):
            response = api.call(method, f"/v1/unsubscribe?token={token}", key=None)
            assert_problem(response, 400, "invalid-unsubscribe-token")
            assert response.json()["errors"][0]["loc"] == ["query", "token"]
    missing = api.call("GET", "/v1/unsubscribe", key=None)
    assert missing.status_code == 422 and missing.headers["Content-Type"].startswith(
        "application/problem+json"
    )


def test_the_outbox_refuses_an_unknown_channel_or_status(api: Api) -> None:
    assert api.call("GET", "/v1/admin/outbox?channel=fax", ADMIN_KEY).status_code == 422
    assert api.call("GET", "/v1/admin/outbox?status=lost", ADMIN_KEY).status_code == 422
    assert api.call("GET", "/v1/admin/outbox?status=sent", POS_KEY).status_code == 403


def test_a_members_sale_sends_one_earn_confirmation_through_the_whole_pipeline(api: Api) -> None:
    template_id = f"earned-{uuid.uuid4().hex[:8]}"
    earned = {
        "channel": "email",
        "subject": "You earned points",
        "body": "You have {{ points.available }} points. Unsubscribe: {{ unsubscribe_url }}",
    }
    assert api.call("PUT", f"/v1/admin/templates/{template_id}", ADMIN_KEY, json=earned).status_code == 201
    before = api.call("GET", "/v1/admin/programme", ADMIN_KEY).json()
    updated = {**before, "messaging": {**before["messaging"], "earn_confirmation_template_id": template_id}}
    assert api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json=updated).status_code == 200
    try:
        address = unique_email()
        member = api.enrol(
            POS_KEY, links=[{"type": "email", "value": address}], member=True, consents={"email": True}
        )["customer_id"]
        sale = {
            "transaction_id": f"EC-{uuid.uuid4().hex[:10]}",
            "type": "sale",
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60)),
            "customer": {"customer_id": member},
            "lines": [{"line_id": "1", "sku": "S", "category": "c", "quantity": "1", "unit_price": "5.00"}],
            "currency": "EUR",
            "total": "5.00",
        }
        for _ in range(3):  # the till retries: one sale, one confirmation
            response = api.call("POST", "/v1/transactions", POS_KEY, json=sale)
            assert response.status_code == 201, response.text

        def sent() -> list[dict[str, Any]]:
            return [
                m
                for m in outbox(api, customer_id=member)
                if m["cause"] == "earn_confirmation" and m["status"] == "sent"
            ]

        confirmations = wait_for(sent)
        assert len(confirmations) == 1, outbox(api, customer_id=member)
        time.sleep(1)
        assert len(sent()) == 1
        assert "You have 50 points." in str(raw_emails_to(api, address)[-1])
    finally:
        assert api.call("PUT", "/v1/admin/programme", ADMIN_KEY, json=before).status_code == 200
