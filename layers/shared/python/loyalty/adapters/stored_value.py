"""Stored-value accounts, their ledgers, holds and the message outbox.

ACCOUNT#<account_id>     ACCOUNT          balance (cents), live holds, PIN hash, version
                                          (gsi1: CUST#<id> / ACCOUNT#<account_id> when registered)
ACCOUNT#<account_id>     LEDGER#<seq>     a movement of the balance, with actor and balance after
HOLD#<store>#<hold_id>   HOLD             an authorisation on an account or on a customer's points:
                                          held, captured, released, expired (gsi2: DUE#<shard> /
                                          <expiry>#HOLD#<ref> while held). A hold_id is the caller's and
                                          unique per store; <store>#<hold_id> (its "ref") also keys it
                                          in the account's or the profile's live holds. <store> is "-"
                                          for a hold an admin key placed. Holds written before ids were
                                          per store keep HOLD#<hold_id> (their ref is the bare id).
MESSAGE#<message_id>     MESSAGE          an email to send (gsi1: MESSAGES / <at>; gsi2:
                                          MESSAGES#PENDING / <next attempt>#<id> until sent); TTL 7 days
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loyalty.adapters.codec import customer_pk, from_iso, to_iso
from loyalty.adapters.dynamo import DynamoTable, Item, TransactionCancelled, TxOp
from loyalty.adapters.transactions import DUE_SHARDS
from loyalty.domain.stored_value import Account, AccountKind, Hold

MESSAGE_RETENTION = timedelta(days=7)
# Messages not yet sent, by when they are next due (sparse: a sent or failed message leaves it).
PENDING_MESSAGES = "MESSAGES#PENDING"


@dataclass(frozen=True)
class AccountMovement:
    account_id: str
    seq: int
    at: datetime
    amount: int  # cents, signed
    reason: str  # issue | activate | reload | redeem | reverse | capture | cashback | return | cancel
    balance_after: int
    actor: str
    store_id: str | None = None
    redemption_id: str | None = None
    hold_id: str | None = None
    transaction_id: str | None = None  # cashback: the sale, or the return / cancelled order
    original_transaction_id: str | None = None  # a return's movement: the sale it takes back from


@dataclass(frozen=True)
class HoldRecord:
    hold_id: str
    account_id: str
    amount: int
    expires_at: datetime
    created_at: datetime
    store_id: str | None
    status: str = "held"  # held | captured | released | expired (settled by the sweep)
    captured: int = 0
    version: int = 1
    kind: str = "stored_value"  # stored_value (cents of an account) | points (of a customer)
    customer_id: str | None = None
    legacy: bool = False  # stored under the id alone (before ids were per store)

    @property
    def ref(self) -> str:
        """The hold's key: in the table (HOLD#<ref>) and in its account's or profile's live holds."""
        return self.hold_id if self.legacy else hold_ref(self.store_id, self.hold_id)


@dataclass(frozen=True)
class Message:
    message_id: str
    to: str
    subject: str
    body: str
    created_at: datetime
    kind: str = "email"
    status: str = "queued"  # queued | sending (claimed) | sent | failed (gave up)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    provider_message_id: str | None = None
    last_error: str | None = None
    # What may be shown (the outbox): the body with its secrets masked. None for a message stored
    # before bodies were masked: it is never shown.
    shown_body: str | None = None
    # A message queued through services/messaging (rendered from its template when it is sent);
    # an e-card email has none of these (it was rendered when the card was sold).
    channel: str | None = None
    customer_id: str | None = None
    template_id: str | None = None
    cause: str | None = None
    cause_id: str | None = None
    campaign_id: str | None = None
    extras: dict[str, Any] | None = None
    reason: str | None = None  # why it was suppressed or deferred
    # The first email_open / email_click event that named this (sent) message, if any.
    opened_at: datetime | None = None
    clicked_at: datetime | None = None


@dataclass
class StaleAccount(Exception):
    account_id: str


@dataclass
class AlreadyExists(Exception):
    item: Item | None


NO_STORE = "-"  # the store part of the ref of a hold an admin key placed (not a valid store id)


def hold_ref(store_id: str | None, hold_id: str) -> str:
    return f"{store_id or NO_STORE}#{hold_id}"


def account_pk(account_id: str) -> str:
    return f"ACCOUNT#{account_id}"


def hold_due_key(ref: str, expires_at: datetime) -> tuple[str, str]:
    """A held hold's place in the sweep's due index (sparse gsi2), beside the lots that fall due."""
    shard = int(hashlib.sha256(ref.encode()).hexdigest(), 16) % DUE_SHARDS
    return f"DUE#{shard}", f"{to_iso(expires_at)}#HOLD#{ref}"


def pending_message_sk(due_at: datetime, message_id: str) -> str:
    return f"{to_iso(due_at)}#{message_id}"


class StoredValueRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    # ---- reads ----------------------------------------------------------------------------
    def get(self, account_id: str) -> Account | None:
        item = self._table.get(account_pk(account_id), "ACCOUNT")
        return account_from_item(item) if item else None

    def get_hold(self, ref: str) -> HoldRecord | None:
        """A hold by its ref (HoldRecord.ref): what a service re-reads once it has found the hold."""
        item = self._table.get(f"HOLD#{ref}", "HOLD")
        return hold_from_item(item) if item else None

    def find_hold(self, store_id: str | None, hold_id: str) -> HoldRecord | None:
        """The store's hold with this caller's id (store None: an admin key's own holds); another
        store's never answers. A hold from before ids were per store counts for the store it names."""
        key, legacy = (f"HOLD#{hold_ref(store_id, hold_id)}", "HOLD"), (f"HOLD#{hold_id}", "HOLD")
        items = {str(i["pk"]): i for i in self._table.batch_get([key, legacy])}
        if key[0] in items:
            return hold_from_item(items[key[0]])
        old = items.get(legacy[0])
        return hold_from_item(old) if old is not None and old.get("store_id") == store_id else None

    def accounts_of(self, customer_id: str) -> list[Account]:
        items, _ = self._table.query(customer_pk(customer_id), index="gsi1", sk_prefix="ACCOUNT#", limit=200)
        # The index holds copies: read the accounts themselves for exact balances.
        found = self._table.batch_get([(account_pk(str(i["account_id"])), "ACCOUNT") for i in items])
        return sorted((account_from_item(i) for i in found), key=lambda a: a.created_at)

    def ledger(
        self, account_id: str, limit: int, cursor: str | None
    ) -> tuple[list[AccountMovement], str | None]:
        items, next_cursor = self._table.query(
            account_pk(account_id),
            sk_prefix="LEDGER#",
            limit=limit,
            cursor=cursor,
            newest_first=True,
            consistent=True,
        )
        return [movement_from_item(i) for i in items], next_cursor

    def messages(
        self, limit: int, cursor: str | None, filters: dict[str, str] | None = None
    ) -> tuple[list[Message], str | None]:
        """The outbox, newest first; `filters` narrow it by equal attributes (customer_id,
        campaign_id, kind = the channel, status) within each page read, so a page may come back
        short, or empty with a next_cursor, when few messages match."""
        items, next_cursor = self._table.query(
            "MESSAGES", index="gsi1", limit=limit, cursor=cursor, newest_first=True, filters=filters
        )
        return [message_from_item(i) for i in items], next_cursor

    # ---- ops ------------------------------------------------------------------------------
    def create_op(self, account: Account, outbox: Sequence[dict[str, Any]] = ()) -> TxOp:
        item = account_to_item(account) | {"outbox": list(outbox) or None}
        return self._table.put_op(item, "attribute_not_exists(pk)", label="account-new")

    def update_op(
        self, account: Account, expected_version: int, outbox: Sequence[dict[str, Any]] = ()
    ) -> TxOp:
        """Write the account as computed from what was read, if nothing changed meanwhile."""
        return self._table.update_op(
            account_pk(account.account_id),
            "ACCOUNT",
            "SET #balance = :balance, #holds = :holds, #ledger_seq = :seq, #version = :next, "
            "#status = :status, #outbox = :outbox",
            "#version = :expected",
            values={
                ":balance": account.balance,
                ":holds": _holds_map(account.holds),
                ":seq": account.ledger_seq,
                ":next": account.version,
                ":status": account.status,
                ":outbox": list(outbox) or None,
                ":expected": expected_version,
            },
            label="account",
        )

    def pin_op(
        self, account_id: str, failures: int, locked_until: datetime | None, seen_version: int
    ) -> TxOp:
        """Set the PIN counters if no other attempt set them since they were read (compare-and-set
        on their own version, so balance movements neither block nor overwrite them)."""
        condition = "#pin_version = :seen"
        if seen_version == 0:
            condition = "attribute_not_exists(#pin_version) OR " + condition
        return self._table.update_op(
            account_pk(account_id),
            "ACCOUNT",
            "SET #pin_failures = :failures, #locked_until = :locked, #pin_version = :next",
            condition,
            values={
                ":failures": failures,
                ":locked": to_iso(locked_until),
                ":next": seen_version + 1,
                ":seen": seen_version,
            },
            label="pin",
        )

    def movement_op(self, movement: AccountMovement) -> TxOp:
        return self._table.put_op(
            movement_to_item(movement), "attribute_not_exists(pk)", label="account-ledger"
        )

    def hold_put_op(self, hold: HoldRecord) -> TxOp:
        return self._table.put_op(hold_to_item(hold), "attribute_not_exists(pk)", label="hold-new")

    def hold_update_op(self, hold: HoldRecord) -> TxOp:
        """Settle a held hold (captured, released or expired): it leaves the sweep's due index."""
        return self._table.update_op(
            f"HOLD#{hold.ref}",
            "HOLD",
            "SET #status = :status, #captured = :captured, #version = :next REMOVE #gsi2pk, #gsi2sk",
            "#version = :expected AND #status = :held",
            values={
                ":status": hold.status,
                ":captured": hold.captured,
                ":next": hold.version,
                ":expected": hold.version - 1,
                ":held": "held",
            },
            label="hold",
        )

    def message_op(self, message: Message) -> TxOp:
        item = {
            "pk": f"MESSAGE#{message.message_id}",
            "sk": "MESSAGE",
            "gsi1pk": "MESSAGES",
            "gsi1sk": f"{to_iso(message.created_at)}#{message.message_id}",
            "type": "message",
            "message_id": message.message_id,
            "kind": message.kind,
            "to": message.to,
            "subject": message.subject,
            "body": message.body,
            "shown_body": message.shown_body,
            "customer_id": message.customer_id,
            "status": message.status,
            "created_at": to_iso(message.created_at),
            "expires_at": int((message.created_at + MESSAGE_RETENTION).timestamp()),
            "attempts": 0,
            "next_attempt_at": to_iso(message.created_at),
            # Until it is sent: the mailer's scheduled run finds what the stream trigger missed.
            "gsi2pk": PENDING_MESSAGES,
            "gsi2sk": pending_message_sk(message.created_at, message.message_id),
        }
        return self._table.put_op(item, "attribute_not_exists(pk)", label="message")

    def commit(self, ops: Sequence[TxOp]) -> None:
        try:
            self._table.transact(ops)
        except TransactionCancelled as cancelled:
            failed = cancelled.failed_labels()
            if "account-new" in failed or "hold-new" in failed:
                old = next(
                    (r.old_item for lbl in ("account-new", "hold-new") for r in cancelled.failed(lbl)), None
                )
                raise AlreadyExists(old) from None
            raise StaleAccount("") from None


# ---- mapping ----------------------------------------------------------------------------------


def _holds_map(holds: dict[str, Hold]) -> dict[str, Any]:
    return {k: {"amount": h.amount, "expires_at": to_iso(h.expires_at)} for k, h in holds.items()}


def account_to_item(a: Account) -> Item:
    item: Item = {
        "pk": account_pk(a.account_id),
        "sk": "ACCOUNT",
        "type": "account",
        "account_id": a.account_id,
        "kind": a.kind.value,
        "currency": a.currency,
        "balance": a.balance,
        "created_at": to_iso(a.created_at),
        "customer_id": a.customer_id,
        "store_id": a.store_id,
        # Not "expires_at": that is the table's TTL attribute, and an account must never vanish.
        "valid_until": to_iso(a.expires_at),
        "pin_hash": a.pin_hash,
        "pin_failures": a.pin_failures,
        "locked_until": to_iso(a.locked_until),
        "holds": _holds_map(a.holds),
        "ledger_seq": a.ledger_seq,
        "status": a.status,
        "version": a.version,
    }
    if a.customer_id:
        item["gsi1pk"] = customer_pk(a.customer_id)
        item["gsi1sk"] = f"ACCOUNT#{a.account_id}"
    return item


def account_from_item(item: Item) -> Account:
    return Account(
        account_id=str(item["account_id"]),
        kind=AccountKind(item["kind"]),
        currency=str(item["currency"]),
        balance=int(item.get("balance", 0)),
        created_at=from_iso(item["created_at"]) or datetime.min,
        customer_id=item.get("customer_id"),
        store_id=item.get("store_id"),
        expires_at=from_iso(item.get("valid_until")),
        pin_hash=item.get("pin_hash"),
        pin_failures=int(item.get("pin_failures") or 0),
        locked_until=from_iso(item.get("locked_until")),
        pin_version=int(item.get("pin_version") or 0),
        holds={
            k: Hold(k, int(v["amount"]), from_iso(v["expires_at"]) or datetime.min)
            for k, v in (item.get("holds") or {}).items()
        },
        ledger_seq=int(item.get("ledger_seq", 0)),
        status=str(item.get("status", "active")),
        version=int(item.get("version", 1)),
    )


def movement_to_item(m: AccountMovement) -> Item:
    return {
        "pk": account_pk(m.account_id),
        "sk": f"LEDGER#{m.seq:012d}",
        "type": "account_ledger",
        "account_id": m.account_id,
        "seq": m.seq,
        "at": to_iso(m.at),
        "amount": m.amount,
        "reason": m.reason,
        "balance_after": m.balance_after,
        "actor": m.actor,
        "store_id": m.store_id,
        "redemption_id": m.redemption_id,
        "hold_id": m.hold_id,
        "transaction_id": m.transaction_id,
        "original_transaction_id": m.original_transaction_id,
    }


def movement_from_item(item: Item) -> AccountMovement:
    return AccountMovement(
        account_id=str(item["account_id"]),
        seq=int(item["seq"]),
        at=from_iso(item["at"]) or datetime.min,
        amount=int(item["amount"]),
        reason=str(item["reason"]),
        balance_after=int(item["balance_after"]),
        actor=str(item.get("actor", "")),
        store_id=item.get("store_id"),
        redemption_id=item.get("redemption_id"),
        hold_id=item.get("hold_id"),
        transaction_id=item.get("transaction_id"),
        original_transaction_id=item.get("original_transaction_id"),
    )


def hold_to_item(h: HoldRecord) -> Item:
    item: Item = {
        "pk": f"HOLD#{h.ref}",
        "sk": "HOLD",
        "type": "hold",
        "hold_id": h.hold_id,
        "account_id": h.account_id,
        "amount": h.amount,
        "valid_until": to_iso(h.expires_at),
        "created_at": to_iso(h.created_at),
        "store_id": h.store_id,
        "status": h.status,
        "captured": h.captured,
        "version": h.version,
        "kind": h.kind,
        "customer_id": h.customer_id,
    }
    if h.status == "held":
        item["gsi2pk"], item["gsi2sk"] = hold_due_key(h.ref, h.expires_at)
    return item


def hold_from_item(item: Item) -> HoldRecord:
    return HoldRecord(
        hold_id=str(item["hold_id"]),
        account_id=str(item["account_id"]),
        amount=int(item["amount"]),
        expires_at=from_iso(item["valid_until"]) or datetime.min,
        created_at=from_iso(item["created_at"]) or datetime.min,
        store_id=item.get("store_id"),
        status=str(item.get("status", "held")),
        captured=int(item.get("captured") or 0),
        version=int(item.get("version", 1)),
        kind=str(item.get("kind", "stored_value")),
        customer_id=item.get("customer_id"),
        legacy=item["pk"] == f"HOLD#{item['hold_id']}",
    )


def message_from_item(item: Item) -> Message:
    return Message(
        message_id=str(item["message_id"]),
        to=str(item.get("to") or ""),
        subject=str(item.get("subject") or ""),
        body=str(item.get("body") or ""),
        created_at=from_iso(item["created_at"]) or datetime.min,
        kind=str(item.get("kind", "email")),
        status=str(item.get("status", "queued")),
        attempts=int(item.get("attempts") or 0),
        next_attempt_at=from_iso(item.get("next_attempt_at")),
        sent_at=from_iso(item.get("sent_at")),
        provider_message_id=item.get("provider_message_id"),
        last_error=item.get("last_error"),
        shown_body=item.get("shown_body"),
        channel=item.get("channel"),
        customer_id=item.get("customer_id"),
        template_id=item.get("template_id"),
        cause=item.get("cause"),
        cause_id=item.get("cause_id"),
        campaign_id=item.get("campaign_id"),
        extras=dict(item["extras"]) if item.get("extras") else None,
        reason=item.get("reason"),
        opened_at=from_iso(item.get("opened_at")),
        clicked_at=from_iso(item.get("clicked_at")),
    )
