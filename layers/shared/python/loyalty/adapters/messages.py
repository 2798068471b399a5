"""The mailer's view of the message outbox: claim a message, then record what sending did.

MESSAGE#<message_id>  MESSAGE  status queued -> sending (claimed, with a lease) -> sent | queued
                               (a failed attempt, due again later) | failed (gave up)
MESSAGE#<message_id>  TIMELINE the sent message on its customer's timeline (gsi3, kind `message`):
                               an item of its own, because the message (and its PIN) expires in 7
                               days and the timeline keeps it; it holds no address and no body

Every change is one conditional UpdateItem, so two senders (the stream trigger and the scheduled
run, or two retries of either) never both own a message: only the claim's holder may record its
outcome, and a claim can be taken over only after its lease ran out. A message stays in the
sparse pending index (gsi2: MESSAGES#PENDING / <when due>#<id>) until it is sent or given up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from loyalty.adapters.codec import PROFILE_SK, customer_pk, from_iso, link_pk, to_iso
from loyalty.adapters.dynamo import DynamoTable, Item, TransactionCancelled, TxOp
from loyalty.adapters.stored_value import PENDING_MESSAGES, Message, message_from_item, pending_message_sk
from loyalty.adapters.templates import TEMPLATE_SK, template_pk
from loyalty.adapters.timeline import MESSAGE, customer_owner, timeline_fields
from loyalty.domain.links import EMAIL, LinkInvalid, normalise

_SK = "MESSAGE"
# On the customer's partition: per channel, when messages were sent (the frequency caps' count).
SEND_LOG_SK = "SENDLOG"
SEND_LOG_CHANNELS = ("email", "sms", "mail", "api")


def message_pk(message_id: str) -> str:
    return f"MESSAGE#{message_id}"


class MessageRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def get(self, message_id: str) -> Message | None:
        item = self._table.get(message_pk(message_id), _SK)
        return message_from_item(item) if item else None

    def pending(self, until: datetime, cursor: str | None = None) -> tuple[list[Message], str | None]:
        """Messages due by `until` (queued and due again, or claimed with a lapsed lease), oldest first.

        The index is eventually consistent and holds copies: callers claim before they trust it."""
        items, next_cursor = self._table.query(
            PENDING_MESSAGES, index="gsi2", sk_max=(to_iso(until) or "") + "#\uffff", limit=100, cursor=cursor
        )
        return [message_from_item(i) for i in items], next_cursor

    def claim(self, message_id: str, claim_id: str, now: datetime, lease_until: datetime) -> bool:
        """Take the message for one attempt. False: it is sent, given up, not due yet, or someone
        else's claim is still running."""
        return self._update(
            message_id,
            "SET #status = :sending, #claim_id = :claim, #lease_until = :lease, "
            "#attempts = if_not_exists(#attempts, :zero) + :one, #gsi2sk = :due_sk",
            "(#status IN (:queued, :deferred) "
            "AND (attribute_not_exists(#next_attempt_at) OR #next_attempt_at <= :now)) "
            "OR (#status = :sending AND #lease_until <= :now)",
            {
                ":sending": "sending",
                ":queued": "queued",
                ":deferred": "deferred",
                ":claim": claim_id,
                ":lease": to_iso(lease_until),
                ":now": to_iso(now),
                ":zero": 0,
                ":one": 1,
                # Should this attempt die unrecorded, the scheduled run finds it when the lease lapses.
                ":due_sk": pending_message_sk(lease_until, message_id),
            },
        )

    def recipient(self, address: str) -> str | None:
        """The customer whose email link this address is, if any."""
        try:
            link = normalise(EMAIL, address)
        except LinkInvalid:
            return None
        item = self._table.get(link_pk(link), "LINK")
        return str(item["customer_id"]) if item and item.get("customer_id") else None

    def timeline_op(
        self,
        message_id: str,
        customer_id: str,
        at: datetime,
        type_: str,
        summary: str,
        data: Mapping[str, Any],
    ) -> TxOp:
        """A sent message on its customer's timeline: a record of its own, because the message item
        expires (and holds the address and, for e-cards, the PIN); this one keeps neither."""
        entry = {
            "pk": message_pk(message_id),
            "sk": "TIMELINE",
            "type": "message_timeline",
            "message_id": message_id,
            "customer_id": customer_id,
            **timeline_fields(
                customer_owner(customer_id), at, MESSAGE, type_, summary, {"message_id": message_id}, data
            ),
        }
        return self._table.put_op(entry, label="timeline")

    def mark_sent(
        self,
        message_id: str,
        claim_id: str,
        now: datetime,
        provider_message_id: str,
        *,
        shown: Mapping[str, Any] | None = None,
        also: Sequence[TxOp] = (),
    ) -> bool:
        """Record the send (with what the outbox may show of it, and `also`: the customer's send
        log and timeline, in the same transaction)."""
        extra = "".join(f", #{name} = :shown_{name}" for name in (shown or {}))
        return self._update(
            message_id,
            "SET #status = :sent, #sent_at = :now, #provider_message_id = :provider"
            + extra
            + " REMOVE #claim_id, #lease_until, #next_attempt_at, #last_error, #gsi2pk, #gsi2sk, #reason",
            "#status = :sending AND #claim_id = :claim",
            {
                ":sent": "sent",
                ":sending": "sending",
                ":now": to_iso(now),
                ":provider": provider_message_id,
                ":claim": claim_id,
                **{f":shown_{name}": value for name, value in (shown or {}).items()},
            },
            also=also,
        )

    def mark_suppressed(self, message_id: str, claim_id: str, reason: str) -> bool:
        """The contact policy said no: kept (with why) but never sent."""
        return self._update(
            message_id,
            "SET #status = :suppressed, #reason = :reason "
            "REMOVE #claim_id, #lease_until, #next_attempt_at, #gsi2pk, #gsi2sk",
            "#status = :sending AND #claim_id = :claim",
            {":suppressed": "suppressed", ":reason": reason, ":sending": "sending", ":claim": claim_id},
        )

    def mark_deferred(self, message_id: str, claim_id: str, reason: str, until: datetime) -> bool:
        """Not now (quiet hours): due again at `until`, when the scheduled run claims it again. The
        attempt is given back: a deferral is not a failed try."""
        return self._update(
            message_id,
            "SET #status = :deferred, #reason = :reason, #next_attempt_at = :until, #gsi2pk = :pending, "
            "#gsi2sk = :due_sk, #attempts = #attempts - :one REMOVE #claim_id, #lease_until",
            "#status = :sending AND #claim_id = :claim",
            {
                ":deferred": "deferred",
                ":reason": reason,
                ":until": to_iso(until),
                ":pending": PENDING_MESSAGES,
                ":due_sk": pending_message_sk(until, message_id),
                ":one": 1,
                ":sending": "sending",
                ":claim": claim_id,
            },
        )

    def record_interaction(
        self,
        message_id: str,
        customer_id: str,
        field: str,
        at: datetime,
        event_key: tuple[str, str],
    ) -> bool:
        """An email_open / email_click event named a message: the message keeps the first time
        (`field` is opened_at or clicked_at) and the event's timeline record gains the message's ref,
        together; False (nothing written) when no sent message of that customer has this id."""
        from loyalty.adapters.customer_events import EVENT_SK, event_pk

        assert field in ("opened_at", "clicked_at")
        try:
            self._table.transact(
                [
                    self._table.update_op(
                        message_pk(message_id),
                        _SK,
                        "SET #f = if_not_exists(#f, :at)",
                        condition="attribute_exists(pk) AND #customer_id = :customer AND #status = :sent",
                        names={"#f": field, "#customer_id": "customer_id", "#status": "status"},
                        values={":at": to_iso(at), ":customer": customer_id, ":sent": "sent"},
                        label="message",
                    ),
                    self._table.update_op(
                        event_pk(*event_key),
                        EVENT_SK,
                        "SET #tl.#ref.#message_id = :message",
                        condition="attribute_exists(#tl)",
                        names={"#tl": "tl", "#ref": "ref", "#message_id": "message_id"},
                        values={":message": message_id},
                        label="event",
                    ),
                ]
            )
        except TransactionCancelled:
            return False
        return True

    def queue(self, message: Message, retention: timedelta) -> bool:
        """Store a message made from a template, once: False when its key (cause, customer, channel)
        is already there, whatever became of it."""
        try:
            self._table.transact([self.queue_op(message, retention)])
        except TransactionCancelled:
            return False
        return True

    def queue_op(self, message: Message, retention: timedelta) -> TxOp:
        """The message as one op of someone else's transaction (a campaign's actions): put only if
        its key is new (a failed `message-new` label: it was queued before)."""
        created = to_iso(message.created_at)
        item = {
            "pk": message_pk(message.message_id),
            "sk": _SK,
            "gsi1pk": "MESSAGES",
            "gsi1sk": f"{created}#{message.message_id}",
            "type": "message",
            "message_id": message.message_id,
            "kind": message.channel,
            "channel": message.channel,
            "customer_id": message.customer_id,
            "template_id": message.template_id,
            "cause": message.cause,
            "cause_id": message.cause_id,
            "campaign_id": message.campaign_id,
            "extras": dict(message.extras or {}) or None,
            "status": "queued",
            "created_at": created,
            "expires_at": int((message.created_at + retention).timestamp()),
            "attempts": 0,
            "next_attempt_at": to_iso(message.next_attempt_at or message.created_at),
            "gsi2pk": PENDING_MESSAGES,
            "gsi2sk": pending_message_sk(message.next_attempt_at or message.created_at, message.message_id),
        }
        stored = {k: v for k, v in item.items() if v is not None}
        return self._table.put_op(stored, "attribute_not_exists(pk)", label="message-new")

    def for_sending(
        self, customer_id: str, template_id: str
    ) -> tuple[Item | None, dict[str, list[datetime]], Item | None]:
        """Everything the contact policy and the rendering read, in one BatchGetItem: the profile,
        the customer's send log and the template."""
        profile_key = (customer_pk(customer_id), PROFILE_SK)
        log_key = (customer_pk(customer_id), SEND_LOG_SK)
        template_key = (template_pk(template_id), TEMPLATE_SK)
        found = {(i["pk"], i["sk"]): i for i in self._table.batch_get([profile_key, log_key, template_key])}
        log = found.get(log_key) or {}
        sent = {
            channel: [at for at in (from_iso(v) for v in log.get(channel) or []) if at is not None]
            for channel in SEND_LOG_CHANNELS
        }
        return found.get(profile_key), sent, found.get(template_key)

    def send_log_op(self, customer_id: str, channel: str, sent_at: list[datetime]) -> TxOp:
        """The customer's send log after a send: what the frequency caps count. Written whole (the
        pruned list), so it stays small; two sends to one customer at the same instant on one
        channel may each miss the other (a cap can be passed by one in that race)."""
        return self._table.update_op(
            customer_pk(customer_id),
            SEND_LOG_SK,
            "SET #channel = :log, #type = :type",
            names={"#channel": channel, "#type": "type"},
            values={":log": [to_iso(at) for at in sent_at], ":type": "send_log"},
            label="send-log",
        )

    def mark_failed(self, message_id: str, claim_id: str, error: str, retry_at: datetime | None) -> bool:
        """Record a failed attempt: due again at `retry_at`, or given up for good (None)."""
        values: dict[str, object] = {":sending": "sending", ":claim": claim_id, ":error": error[:200]}
        if retry_at is not None:
            update = (
                "SET #status = :queued, #last_error = :error, #next_attempt_at = :retry, #gsi2sk = :due_sk "
                "REMOVE #claim_id, #lease_until"
            )
            values |= {
                ":queued": "queued",
                ":retry": to_iso(retry_at),
                ":due_sk": pending_message_sk(retry_at, message_id),
            }
        else:
            update = (
                "SET #status = :failed, #last_error = :error "
                "REMOVE #claim_id, #lease_until, #next_attempt_at, #gsi2pk, #gsi2sk"
            )
            values[":failed"] = "failed"
        return self._update(message_id, update, "#status = :sending AND #claim_id = :claim", values)

    def _update(
        self,
        message_id: str,
        update: str,
        condition: str,
        values: dict[str, object],
        also: Sequence[TxOp] = (),
    ) -> bool:
        # attribute_exists(pk): never create a stub for a message that expired (TTL) meanwhile.
        op = self._table.update_op(
            message_pk(message_id),
            _SK,
            update,
            f"attribute_exists(#pk) AND ({condition})",
            values=values,
            label="message",
        )
        try:
            self._table.transact([op, *also])
        except TransactionCancelled:
            return False
        return True
