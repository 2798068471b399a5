"""A message rendered from its template, on its way to a channel (what every channel is given)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loyalty.domain.customers import Customer
from loyalty.domain.templates import Channel


@dataclass(frozen=True)
class Outgoing:
    message_id: str
    channel: Channel
    customer: Customer
    to: str  # the email, the E.164 number, the postal address's first line, or the customer id
    subject: str | None
    text: str
    html: str | None
    unsubscribe_url: str
    data: Mapping[str, Any] = field(default_factory=dict)  # cause, campaign, template (for webhooks)
