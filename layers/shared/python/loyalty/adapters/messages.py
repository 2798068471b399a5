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

from datetime import datetime

from loyalty.adapters.codec import link_pk, to_iso
from loyalty.adapters.dynamo import DynamoTable, TransactionCancelled, TxOp
from loyalty.adapters.stored_value import PENDING_MESSAGES, Message, message_from_item, pending_message_sk
from loyalty.adapters.timeline import MESSAGE, customer_owner, timeline_fields
from loyalty.domain.links import EMAIL, LinkInvalid, normalise

_SK = "MESSAGE"


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
            "(#status = :queued AND (attribute_not_exists(#next_attempt_at) OR #next_attempt_at <= :now)) "
            "OR (#status = :sending AND #lease_until <= :now)",
            {
                ":sending": "sending",
                ":queued": "queued",
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

    def mark_sent(
        self,
        message_id: str,
        claim_id: str,
        now: datetime,
        provider_message_id: str,
        customer_id: str | None = None,
        subject: str = "",
    ) -> bool:
        """Record the send; with a customer, the message joins their timeline in the same write."""
        update = (
            "SET #status = :sent, #sent_at = :now, #provider_message_id = :provider"
            + (", #customer_id = :customer" if customer_id else "")
            + " REMOVE #claim_id, #lease_until, #next_attempt_at, #last_error, #gsi2pk, #gsi2sk"
        )
        values: dict[str, object] = {
            ":sent": "sent",
            ":sending": "sending",
            ":now": to_iso(now),
            ":provider": provider_message_id,
            ":claim": claim_id,
        }
        extra: list[TxOp] = []
        if customer_id:
            values[":customer"] = customer_id
            entry = {
                "pk": message_pk(message_id),
                "sk": "TIMELINE",
                "type": "message_timeline",
                "message_id": message_id,
                **timeline_fields(
                    customer_owner(customer_id),
                    now,
                    MESSAGE,
                    "email",
                    f"Email sent: {subject}" if subject else "Email sent",
                    {"message_id": message_id},
                    {"channel": "email", "subject": subject},
                ),
            }
            extra.append(self._table.put_op(entry, label="timeline"))
        return self._update(message_id, update, "#status = :sending AND #claim_id = :claim", values, extra)

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
        extra: list[TxOp] | None = None,
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
            self._table.transact([op, *(extra or [])])
        except TransactionCancelled:
            return False
        return True
