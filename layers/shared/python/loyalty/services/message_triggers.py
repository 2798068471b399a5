"""The built-in triggers: a welcome message when a customer enrols, and a points-earned confirmation
after a member's sale, each queued from the domain event that announces its cause.

Events arrive through a bus rule and a queue (at least once, in any order); the message's key is
(cause, cause id, customer, channel), so a redelivered event queues nothing more. The welcome's
cause id is the customer (welcomed once, however often they enrol again); the confirmation's is
the sale's transaction. A trigger is off while the programme names no template for it; the
channel is the template's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from loyalty.domain import events as ev
from loyalty.domain.programme import Messaging
from loyalty.domain.templates import Cause, Template
from loyalty.services.messaging import MessageQueue


class Templates(Protocol):
    def get(self, template_id: str) -> Template | None: ...


@dataclass(frozen=True)
class Triggered:
    outcome: str  # queued | duplicate | off | template-missing | not-a-trigger
    message_id: str | None = None


class MessageTriggers:
    def __init__(
        self, *, queue: MessageQueue, messaging: Callable[[], Messaging], templates: Templates
    ) -> None:
        self._queue = queue
        self._messaging = messaging
        self._templates = templates

    def handle(self, detail_type: str, detail: Mapping[str, Any]) -> Triggered:
        customer_id = detail.get("customer_id")
        if not customer_id:
            return Triggered("not-a-trigger")
        messaging = self._messaging()
        if detail_type == ev.CUSTOMER_ENROLLED:
            return self._queue_for(
                Cause.WELCOME, str(customer_id), str(customer_id), messaging.welcome_template_id, detail
            )
        # A member's sale that earned: its TransactionRecorded carries the earn (a sale publishes no
        # PointsEarned since 0.9.0; those are retro credit, event rules and challenge rewards).
        earn = detail.get("earn") or {}
        if (
            detail_type == ev.TRANSACTION_RECORDED
            and detail.get("type") == "sale"
            and detail.get("transaction_id")
            and int(earn.get("points") or 0) > 0
        ):
            return self._queue_for(
                Cause.EARN_CONFIRMATION,
                f"{detail.get('store_id')}#{detail['transaction_id']}",  # caller ids are per store
                str(customer_id),
                messaging.earn_confirmation_template_id,
                detail,
            )
        return Triggered("not-a-trigger")

    def _queue_for(
        self,
        cause: Cause,
        cause_id: str,
        customer_id: str,
        template_id: str | None,
        detail: Mapping[str, Any],
    ) -> Triggered:
        if template_id is None:
            return Triggered("off")
        template = self._templates.get(template_id)
        if template is None:
            return Triggered("template-missing")
        extras = {"store_id": detail.get("store_id")} if detail.get("store_id") else None
        message_id, created = self._queue.queue(
            cause, cause_id, customer_id, template.channel, template_id, extras
        )
        return Triggered("queued" if created else "duplicate", message_id)
