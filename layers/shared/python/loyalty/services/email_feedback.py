"""SES's bounces and complaints turn the recipient's email consent off (suppression).

SES publishes what happened to a message through the configuration set the mailer sends with
(SES_CONFIGURATION_SET): its event destination is an SNS topic, whose subscription queue feeds the
`feedback` job. A permanent bounce (the address does not exist) or a complaint (the recipient
marked it as spam) suspends email for the customer who owns the address: their `consents.email`
becomes false at once, in the 360° view, and the contact policy suppresses every email after it
(`no-consent`). A transient bounce (mailbox full, greylisting) changes nothing: SES retried it.
An address no customer owns (an e-card's recipient) is left alone. Applying the same event twice
changes nothing the second time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loyalty.domain.errors import CustomerNotFound, ValidationFailed
from loyalty.services.customers import CustomerService, ProfilePatch


@dataclass(frozen=True)
class Feedback:
    outcome: str  # suppressed | already | unknown-address | ignored
    addresses: tuple[str, ...] = ()


def ses_event(body: str) -> dict[str, Any]:
    """The SES event inside an SQS body: an SNS notification's Message, or the event itself (raw
    message delivery)."""
    outer = json.loads(body)
    if isinstance(outer, dict) and outer.get("Type") == "Notification" and "Message" in outer:
        inner = json.loads(str(outer["Message"]))
        return inner if isinstance(inner, dict) else {}
    return outer if isinstance(outer, dict) else {}


def suppressing_recipients(event: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """(kind, addresses) for a permanent bounce or a complaint; ("", ()) for anything else."""
    kind = str(event.get("eventType") or event.get("notificationType") or "")
    if kind == "Bounce":
        bounce = event.get("bounce") or {}
        if bounce.get("bounceType") != "Permanent":
            return "", ()
        recipients = bounce.get("bouncedRecipients") or []
    elif kind == "Complaint":
        recipients = (event.get("complaint") or {}).get("complainedRecipients") or []
    else:
        return "", ()
    addresses = tuple(
        str(r["emailAddress"]) for r in recipients if isinstance(r, dict) and r.get("emailAddress")
    )
    return kind.lower(), addresses


class EmailFeedback:
    def __init__(self, *, customers: CustomerService) -> None:
        self._customers = customers

    def handle(self, event: Mapping[str, Any]) -> Feedback:
        kind, addresses = suppressing_recipients(event)
        if not kind:
            return Feedback("ignored")
        outcome = "unknown-address"
        for address in addresses:
            try:
                customer = self._customers.lookup("email", address)
            except (CustomerNotFound, ValidationFailed):
                continue
            if not customer.consents.email:
                outcome = "already" if outcome == "unknown-address" else outcome
                continue
            patch = ProfilePatch(fields={}, attributes=None, consents={"email": False}, member=None)
            self._customers.update(customer.customer_id, patch)
            outcome = "suppressed"
        return Feedback(outcome, addresses)
