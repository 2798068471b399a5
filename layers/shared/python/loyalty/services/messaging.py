"""Messages from templates, on every channel: queued once per cause, checked and rendered when sent.

`MessageQueue.queue(cause, cause_id, customer_id, channel, template_id, extras)` stores a message
under a key made of (cause, cause id, customer, channel): however often its cause is retried (a
stream record redelivered, a trigger run twice) the second put finds the first and stores nothing.
Nothing is rendered then: the mailer job claims the message (services/mailer.py, the same claim and
lease as the e-card emails) and `TemplatedDelivery.deliver` does the rest at the moment of sending:

1. one BatchGetItem reads the profile, the customer's send log and the template;
2. the contact policy (domain/contact.py) says send, defer (quiet hours: due again when they end,
   picked up by the mailer's scheduled run through the pending index gsi2) or suppress (no
   consent, no address, frequency cap, customer gone: recorded with the reason, never sent);
3. the stored template is rendered against the profile (domain/rendering.py), with a signed
   unsubscribe link for the customer and channel;
4. the channel sends; the send is recorded with the provider's id, the customer's send log and
   the message's timeline entry in one transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from loyalty.adapters.codec import customer_from_item
from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.email import SendFailed
from loyalty.adapters.messages import MessageRepository
from loyalty.adapters.stored_value import Message
from loyalty.adapters.templates import template_from_item
from loyalty.domain import confirmation, contact
from loyalty.domain.activity import RecordedEvent
from loyalty.domain.customers import Customer
from loyalty.domain.outgoing import Outgoing
from loyalty.domain.programme import Messaging
from loyalty.domain.rendering import CampaignFacts, CouponFacts, Rendered, message_context, render
from loyalty.domain.stores import Store
from loyalty.domain.templates import Cause, Channel
from loyalty.domain.unsubscribe import mint
from loyalty.services.ports import Clock

# Long enough that a cause retried late still finds its message (and the outbox shows it a while).
QUEUED_RETENTION = timedelta(days=90)
# The send log keeps what the longest cap window (365 days) can count.
LOG_DAYS = 365


def message_key(cause: Cause, cause_id: str, customer_id: str, channel: Channel) -> str:
    """The one id a message for this cause, customer and channel can have."""
    digest = hashlib.sha256(f"{cause.value}\n{cause_id}\n{customer_id}\n{channel.value}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


class ChannelSender(Protocol):
    def send(self, outgoing: Outgoing) -> str:
        """Send; the provider's id of the message. Raises SendFailed (the provider's error code)."""
        ...


class PrintFiles(Protocol):
    def write(self, batch: Sequence[Outgoing], now: datetime) -> str:
        """Write one print file holding the batch; its address. Raises SendFailed."""
        ...


@dataclass(frozen=True)
class _Held:
    message: Message
    claim: str
    outgoing: Outgoing
    log: list[datetime]


class MessageQueue:
    def __init__(self, *, messages: MessageRepository, clock: Clock) -> None:
        self._messages = messages
        self._clock = clock

    def queue(
        self,
        cause: Cause,
        cause_id: str,
        customer_id: str,
        channel: Channel,
        template_id: str,
        extras: Mapping[str, Any] | None = None,
        *,
        campaign_id: str | None = None,
        not_before: datetime | None = None,
    ) -> tuple[str, bool]:
        """The message's id, and whether this call queued it (False: it was queued before)."""
        message = self.message(
            cause,
            cause_id,
            customer_id,
            channel,
            template_id,
            extras,
            campaign_id=campaign_id,
            not_before=not_before,
        )
        return message.message_id, self._messages.queue(message, QUEUED_RETENTION)

    def queue_op(
        self,
        cause: Cause,
        cause_id: str,
        customer_id: str,
        channel: Channel,
        template_id: str,
        extras: Mapping[str, Any] | None = None,
        *,
        campaign_id: str | None = None,
    ) -> tuple[str, TxOp]:
        """The same message as one conditional op of the caller's transaction (a campaign writes
        its messages with everything else it gives): its id and the op (label `message-new`)."""
        message = self.message(
            cause, cause_id, customer_id, channel, template_id, extras, campaign_id=campaign_id
        )
        return message.message_id, self._messages.queue_op(message, QUEUED_RETENTION)

    def message(
        self,
        cause: Cause,
        cause_id: str,
        customer_id: str,
        channel: Channel,
        template_id: str,
        extras: Mapping[str, Any] | None = None,
        *,
        campaign_id: str | None = None,
        not_before: datetime | None = None,
    ) -> Message:
        now = self._clock.now()
        return Message(
            message_id=message_key(cause, cause_id, customer_id, channel),
            to="",
            subject="",
            body="",
            created_at=now,
            next_attempt_at=max(not_before, now) if not_before else now,
            channel=channel.value,
            customer_id=customer_id,
            template_id=template_id,
            cause=cause.value,
            cause_id=cause_id,
            campaign_id=campaign_id,
            extras=_plain(extras or {}),
        )


class MessageInteractions:
    """email_open / email_click events link back to the message they name (issue 18, item 6).

    Done by the activity worker, which already takes every recorded event from the bus one at a
    time, rather than by the ingest: the ingest writes up to 100 events in one transaction, where
    a message that does not exist would fail the batch's condition (or need a read per batch to
    rule out first); here one conditional transaction per such event, off the request path, is all
    it costs, and `if_not_exists` keeps the first time however often the event is redelivered.
    """

    FIELDS = {"email_open": "opened_at", "email_click": "clicked_at", "sms_click": "clicked_at"}

    def __init__(self, *, messages: MessageRepository) -> None:
        self._messages = messages

    def link(self, event: RecordedEvent) -> bool:
        """True when the event named a sent message of its customer (an unknown id: a plain event)."""
        field = self.FIELDS.get(event.type)
        message_id = event.properties.get("message_id")
        if field is None or not event.customer_id or not isinstance(message_id, str) or not message_id:
            return False
        return self._messages.record_interaction(
            message_id, event.customer_id, field, event.occurred_at, (event.store_id, event.event_id)
        )


def _plain(extras: Mapping[str, Any]) -> dict[str, Any]:
    """Extras as the table can keep them (dates as ISO strings)."""
    return {k: v.isoformat() if isinstance(v, date | datetime) else v for k, v in extras.items()}


@dataclass(frozen=True)
class Attempt:
    """What a delivery did: an outcome of the mailer's report, and the provider error if any."""

    outcome: str  # sent | deferred | suppressed | failed
    reason: str | None = None


class TemplatedDelivery:
    def __init__(
        self,
        *,
        messages: MessageRepository,
        channels: Mapping[Channel, ChannelSender],
        messaging: Callable[[], Messaging],
        unsubscribe_key: Callable[[], str],
        unsubscribe_base_url: str,
        clock: Clock,
        print_files: PrintFiles | None = None,
        store_of: Callable[[str], Store | None] = lambda _store_id: None,
        retry_at: Callable[[int], datetime | None] = lambda _attempts: None,
    ) -> None:
        self._messages = messages
        self._clock = clock
        self._print_files = print_files
        self._retry_at = retry_at
        self._held: list[_Held] = []
        self._channels = channels
        self._messaging = messaging
        self._unsubscribe_key = unsubscribe_key
        self._unsubscribe_base = unsubscribe_base_url.rstrip("/")
        self._store_of = store_of

    def deliver(self, message: Message, claim: str, now: datetime) -> Attempt:
        """Run the contact policy, render and send a claimed message (the caller records failures)."""
        channel = Channel(message.channel or "email")
        profile, sent_log, template_item = self._messages.for_sending(
            str(message.customer_id), str(message.template_id)
        )
        customer = customer_from_item(profile) if profile else None
        confirming = message.cause == Cause.CONFIRMATION.value
        decision = contact.decide(
            customer=customer,
            channel=channel,
            messaging=self._messaging(),
            sent_log=sent_log,
            now=now,
            confirmation=confirming,
        )
        if decision.action == "defer" and decision.release_at is not None:
            self._messages.mark_deferred(message.message_id, claim, str(decision.reason), decision.release_at)
            return Attempt("deferred", decision.reason)
        if decision.action == "suppress" or customer is None:
            return self._suppress(message, claim, decision.reason or contact.NO_CUSTOMER)
        template = template_from_item(template_item) if template_item else None
        if template is None or template.channel is not channel:
            return self._suppress(message, claim, contact.NO_TEMPLATE)
        unsubscribe_url = f"{self._unsubscribe_base}/v1/unsubscribe?token=" + mint(
            self._unsubscribe_key(), customer.customer_id, channel
        )
        confirm_url = None
        if confirming and customer.confirm_by is not None:
            # Minted at send time from the pending period on the profile: the token expires when
            # the enrolment lapses, and no signed link is ever stored in the outbox.
            confirm_url = f"{self._unsubscribe_base}/v1/confirm?token=" + confirmation.mint(
                self._unsubscribe_key(), customer.customer_id, customer.confirm_by
            )
        try:
            rendered = render(template, self._context(customer, message, unsubscribe_url, confirm_url))
        except Exception:  # a template checked when saved: never a retry loop over a bad one
            return self._suppress(message, claim, contact.NOT_RENDERED)
        outgoing = self._outgoing(message, channel, customer, rendered, unsubscribe_url)
        if channel is Channel.MAIL:
            # A line of this batch's print file: sent when flush() wrote the file (the claim's lease
            # outlasts a batch by far).
            self._held.append(_Held(message, claim, outgoing, sent_log.get(channel.value, [])))
            return Attempt("held")
        provider_id = self._channels[channel].send(outgoing)  # SendFailed: the caller retries
        self._record_sent(message, claim, outgoing, sent_log.get(channel.value, []), provider_id)
        return Attempt("sent")

    def flush(self) -> tuple[int, int]:
        """Write the print file of the mail held since the last flush; (sent, failed)."""
        held, self._held = self._held, []
        if not held:
            return 0, 0
        if self._print_files is None:
            failure = SendFailed("NoPrintFileBucket")
        else:
            try:
                where = self._print_files.write([h.outgoing for h in held], self._clock.now())
            except SendFailed as exc:
                failure = exc
            else:
                for h in held:
                    self._record_sent(h.message, h.claim, h.outgoing, h.log, where)
                return len(held), 0
        for h in held:
            self._messages.mark_failed(
                h.message.message_id, h.claim, failure.reason, self._retry_at(h.message.attempts + 1)
            )
        return 0, len(held)

    def _suppress(self, message: Message, claim: str, reason: str) -> Attempt:
        self._messages.mark_suppressed(message.message_id, claim, reason)
        return Attempt("suppressed", reason)

    def _context(
        self, customer: Customer, message: Message, unsubscribe_url: str, confirm_url: str | None = None
    ) -> dict[str, Any]:
        extras = message.extras or {}
        coupon = extras.get("coupon")
        store_id = customer.profile.favourite_store_id or extras.get("store_id")
        return message_context(
            customer,
            Cause(message.cause or "campaign"),
            tier=customer.tier,
            store=self._store_of(store_id) if store_id else None,
            unsubscribe_url=unsubscribe_url,
            confirm_url=confirm_url,
            coupon=CouponFacts(str(coupon.get("code")), _date(coupon.get("valid_until")))
            if isinstance(coupon, Mapping)
            else None,
            campaign=_campaign(extras.get("campaign")),
        )

    def _outgoing(
        self, message: Message, channel: Channel, customer: Customer, rendered: Rendered, unsubscribe_url: str
    ) -> Outgoing:
        return Outgoing(
            message_id=message.message_id,
            channel=channel,
            customer=customer,
            to=str(contact.address_of(customer, channel)),
            subject=rendered.subject,
            text=rendered.body,
            html=rendered.html,
            unsubscribe_url=unsubscribe_url,
            data={
                "cause": message.cause,
                "cause_id": message.cause_id,
                "campaign_id": message.campaign_id,
                "template_id": message.template_id,
            },
        )

    def _record_sent(
        self, message: Message, claim: str, outgoing: Outgoing, log: list[datetime], provider_id: str
    ) -> None:
        customer_id = outgoing.customer.customer_id
        sent_at = self._clock.now()
        shown: dict[str, Any] = {"to": outgoing.to, "subject": outgoing.subject or ""}
        self._messages.mark_sent(
            message.message_id,
            claim,
            sent_at,
            provider_id,
            shown=shown,
            also=[
                self._messages.send_log_op(
                    customer_id,
                    outgoing.channel.value,
                    contact.pruned_log([*log, sent_at], sent_at, LOG_DAYS),
                ),
                self._messages.timeline_op(
                    message.message_id,
                    customer_id,
                    sent_at,
                    outgoing.channel.value,
                    outgoing.subject or f"{outgoing.channel.value} message",
                    {
                        "channel": outgoing.channel.value,
                        "template_id": message.template_id,
                        "cause": message.cause,
                    },
                ),
            ],
        )


def _campaign(value: Any) -> CampaignFacts | None:
    """A campaign message's `campaign` extras ({"id", "points", "promo_cash"}) as the template sees them."""
    if not isinstance(value, Mapping):
        return None
    return CampaignFacts(
        str(value.get("id", "")),
        int(value.get("points") or 0),
        Decimal(str(value.get("promo_cash") or "0.00")),
    )


def _date(value: Any) -> date | datetime | None:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return value if isinstance(value, date | datetime) else None
