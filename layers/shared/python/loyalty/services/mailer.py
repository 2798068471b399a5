"""Sends the message outbox (e-card emails) through the email channel, each message once.

A message is sent by whoever claims it: the claim is a conditional write (queued and due, or a
claim whose lease lapsed), so the stream trigger, the scheduled run and their retries never send
one message twice while an attempt is alive. After SES answers, the claim's holder records the
outcome: `sent` with SES's message id, or the failure and when to try again (exponential back-off,
at most an hour apart), or `failed` after MAX_ATTEMPTS. SES has no idempotency key, so the one
window left is an attempt that dies after SES took the message and before it was recorded: its
lease lapses and the message goes again (at least once there, never lost).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from loyalty.adapters.email import SendFailed
from loyalty.adapters.messages import MessageRepository
from loyalty.adapters.stored_value import Message
from loyalty.domain.ids import new_id
from loyalty.services.ports import Clock

LEASE = timedelta(minutes=5)  # far beyond one SES call (5 s read timeout, 3 tries)
MAX_ATTEMPTS = 10
MAX_RETRY_DELAY = timedelta(hours=1)
MESSAGE_PK_PREFIX = "MESSAGE#"


class EmailChannel(Protocol):
    def send(self, to: str, subject: str, body: str) -> str: ...


class Delivery(Protocol):
    """Sends a claimed message made from a template (services/messaging.TemplatedDelivery)."""

    def deliver(self, message: Message, claim: str, now: datetime) -> Any: ...

    def flush(self) -> tuple[int, int]: ...


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4 ... minutes after the 1st, 2nd, 3rd ... failed attempt, at most an hour."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_RETRY_DELAY)


def next_attempt_at(now: datetime, attempts: int) -> datetime | None:
    """When a message that failed its `attempts`-th try goes again (None: given up)."""
    return now + retry_delay(attempts) if attempts < MAX_ATTEMPTS else None


@dataclass
class MailReport:
    sent: int = 0
    retrying: int = 0  # failed this time, due again later
    given_up: int = 0
    skipped: int = 0  # already sent, not due, or claimed by another attempt
    deferred: int = 0  # quiet hours: due again when they end
    suppressed: int = 0  # the contact policy said no (the reason is on the message)
    held: int = 0  # direct mail waiting for this batch's print file (then sent or retrying)
    errors: list[str] | None = None  # SES error codes of failed attempts (never a message's content)

    def add(self, outcome: str, reason: str | None = None) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        if reason:
            self.errors = [*(self.errors or []), reason]


def message_id_of(record: Mapping[str, Any]) -> str | None:
    """The message a stream record announces: a new MESSAGE item (None for anything else)."""
    if record.get("eventName") != "INSERT":
        return None
    pk = ((record.get("dynamodb") or {}).get("Keys") or {}).get("pk", {}).get("S", "")
    return pk.removeprefix(MESSAGE_PK_PREFIX) if pk.startswith(MESSAGE_PK_PREFIX) else None


class Mailer:
    def __init__(
        self,
        *,
        messages: MessageRepository,
        channel: EmailChannel,
        clock: Clock,
        new_claim: Callable[[], str] = new_id,
        templated: Delivery | None = None,
    ) -> None:
        self._messages = messages
        self._templated = templated
        self._channel = channel
        self._clock = clock
        self._new_claim = new_claim

    def send(self, message_id: str, report: MailReport | None = None) -> str:
        """Claim, send and record one message; returns the outcome (a MailReport field name)."""
        report = report if report is not None else MailReport()
        now = self._clock.now()
        message = self._messages.get(message_id)
        claim = self._new_claim()
        if (
            message is None
            or message.status not in ("queued", "deferred", "sending")
            or not self._messages.claim(message_id, claim, now, now + LEASE)
        ):
            report.add("skipped")
            return "skipped"
        try:
            if message.template_id is not None:
                if self._templated is None:
                    raise SendFailed("NoTemplatedDelivery")
                attempt = self._templated.deliver(message, claim, now)
                report.add(attempt.outcome)
                return str(attempt.outcome)
            provider_id = self._channel.send(message.to, message.subject, message.body)
        except SendFailed as failure:
            attempts = message.attempts + 1
            retry_at = now + retry_delay(attempts) if attempts < MAX_ATTEMPTS else None
            self._messages.mark_failed(message_id, claim, failure.reason, retry_at)
            outcome = "retrying" if retry_at else "given_up"
            report.add(outcome, failure.reason)
            return outcome
        # A sent message goes on the timeline of the customer it was for, or whose email link its
        # address is (an e-card bought for oneself); otherwise on nobody's (it is in the outbox).
        customer_id = message.customer_id or self._messages.recipient(message.to)
        # False only if this attempt outlived its lease and another one took over: sent either way.
        sent_at = self._clock.now()
        timeline = (
            [
                self._messages.timeline_op(
                    message_id,
                    customer_id,
                    sent_at,
                    "email",
                    f"Email sent: {message.subject}" if message.subject else "Email sent",
                    {"channel": "email", "subject": message.subject},
                )
            ]
            if customer_id
            else []
        )
        self._messages.mark_sent(
            message_id,
            claim,
            sent_at,
            provider_id,
            shown={"customer_id": customer_id} if customer_id else None,
            also=timeline,
        )
        report.add("sent")
        return "sent"

    def _flush(self, report: MailReport) -> None:
        if self._templated is None:
            return
        sent, failed = self._templated.flush()
        report.sent += sent
        report.retrying += failed
        report.held = 0

    def send_records(self, records: list[Mapping[str, Any]]) -> MailReport:
        """The stream trigger: send every message a batch of stream records inserted."""
        report = MailReport()
        for record in records:
            message_id = message_id_of(record)
            if message_id:
                self.send(message_id, report)
        self._flush(report)
        return report

    def send_due(self, until: datetime | None = None) -> MailReport:
        """The scheduled run: every message due again (a failed attempt, a lapsed claim, or one the
        stream trigger never reached), oldest first."""
        now = until or self._clock.now()
        report = MailReport()
        cursor = None
        while True:
            due, cursor = self._messages.pending(now, cursor)
            for message in due:
                self.send(message.message_id, report)
            self._flush(report)
            if cursor is None:
                return report
