"""An e-card sold over HTTP is emailed through (moto's) SES by the mailer job, as on AWS: the local
runtime feeds the table's stream to the real mailer handler, and the outbox shows it sent."""

from __future__ import annotations

import time
from typing import Any

import requests

from loyalty_local.emulators import DynamoDBLocal, Moto
from loyalty_local.provision import LOCAL_SENDER_EMAIL
from tests.e2e.conftest import ADMIN_KEY, WEB_KEY, Api, unique_email


def outbox_entry(api: Api, email: str) -> dict[str, Any]:
    items = api.call("GET", "/v1/admin/outbox?limit=200", ADMIN_KEY).json()["items"]
    (entry,) = [m for m in items if m["to"] == email]
    return entry


def test_an_e_card_email_is_sent_once_and_the_outbox_says_so(
    api: Api, emulators: tuple[DynamoDBLocal, Moto]
) -> None:
    _, moto = emulators
    email = unique_email()
    sold = api.call(
        "POST",
        "/v1/gift-cards",
        WEB_KEY,
        json={"amount": "30.00", "currency": "EUR", "delivery": {"email": email, "name": "Flo"}},
    )
    assert sold.status_code == 201, sold.text
    number = sold.json()["card_number"]

    deadline = time.monotonic() + 20
    entry = outbox_entry(api, email)
    while entry["status"] != "sent" and time.monotonic() < deadline:
        time.sleep(0.25)
        entry = outbox_entry(api, email)
    assert entry["status"] == "sent", entry
    assert entry["attempts"] == 1 and entry["sent_at"] and entry["provider_message_id"]
    assert entry["last_error"] is None and entry["next_attempt_at"] is None

    data = requests.get(f"{moto.endpoint}/moto-api/data.json", timeout=10).json()
    sent = [m for m in data["ses"]["Message"] if email in m["destinations"].get("ToAddresses", [])]
    assert [m["id"] for m in sent] == [entry["provider_message_id"]]
    assert sent[0]["source"] == LOCAL_SENDER_EMAIL
    pin = sent[0]["body"].split("PIN ")[1][:6]
    assert number in sent[0]["body"] and pin.isdigit() and len(pin) == 6
    # The outbox shows what was sent with the card's number and PIN masked, to any admin key.
    assert pin not in entry["body"] and number not in entry["body"]
    assert "PIN ******" in entry["body"] and number[-4:] in entry["body"]
