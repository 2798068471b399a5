"""Redemptions: one item each, keyed by the store and the caller's redemption_id (the dedupe key,
for ever). A caller-owned id is unique per store, so two stores' equal ids are two redemptions.

REDEMPTION#<store_id>#<redemption_id>   REDEMPTION   what was spent, from which lots, and its first
                                                     response (gsi1: CUST#<id> / REDEMPTION#<at>#<id>)
REDEMPTION#<redemption_id>              REDEMPTION   the same, as written before ids were per store:
                                                     still read (and reversed) for the store it names
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from loyalty.adapters.codec import customer_pk, from_iso, to_iso
from loyalty.adapters.dynamo import DynamoTable, Item, TxOp
from loyalty.adapters.timeline import REDEMPTION, customer_owner, timeline_fields


@dataclass(frozen=True)
class RedemptionRecord:
    redemption_id: str
    kind: str  # points | coupon | stored_value
    store_id: str
    customer_id: str | None
    created_at: datetime
    actor: str  # the API key that asked for it
    points: int = 0
    coupon: str | None = None
    order_ref: str | None = None
    reward_id: str | None = None
    account_id: str | None = None  # stored value: the gift card or account spent from
    amount: int | None = None  # stored value: cents
    taken: dict[int, int] = field(default_factory=dict)  # lot seq -> points taken from it
    ledger_seq: int | None = None
    balance_after: int | None = None
    status: str = "done"  # done | reversed
    reversed_at: datetime | None = None
    version: int = 1
    legacy: bool = False  # stored under the id alone (before ids were per store)

    def reversed(self, at: datetime) -> RedemptionRecord:
        return replace(self, status="reversed", reversed_at=at, version=self.version + 1)

    @property
    def key(self) -> tuple[str, str]:
        if self.legacy:
            return legacy_redemption_key(self.redemption_id)
        return redemption_key(self.store_id, self.redemption_id)


def redemption_key(store_id: str, redemption_id: str) -> tuple[str, str]:
    return f"REDEMPTION#{store_id}#{redemption_id}", "REDEMPTION"


def legacy_redemption_key(redemption_id: str) -> tuple[str, str]:
    return f"REDEMPTION#{redemption_id}", "REDEMPTION"


class RedemptionRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def get(self, store_id: str, redemption_id: str) -> tuple[RedemptionRecord, Item] | None:
        """The store's redemption with this id; another store's never answers."""
        item, _ = self.load(store_id, redemption_id, [])
        return (redemption_from_item(item), item) if item else None

    def load(
        self, store_id: str, redemption_id: str, extra: list[tuple[str, str]]
    ) -> tuple[Item | None, dict[tuple[str, str], Item]]:
        """The store's redemption (if it exists: a replay) and what the caller needs, in one
        BatchGetItem. A record from before ids were per store counts only for the store it names."""
        key, legacy = redemption_key(store_id, redemption_id), legacy_redemption_key(redemption_id)
        items = {(str(i["pk"]), str(i["sk"])): i for i in self._table.batch_get([key, legacy, *extra])}
        found, old = items.pop(key, None), items.pop(legacy, None)
        if found is None and old is not None and old.get("store_id") == store_id:
            found = old
        return found, items

    def put_op(
        self, record: RedemptionRecord, response: str, fingerprint: str, outbox: list[dict[str, str]]
    ) -> TxOp:
        item = redemption_to_item(record) | {
            "fingerprint": fingerprint,
            "status_code": 201,
            "body": response,
            "outbox": outbox or None,
        }
        # Labelled like an idempotency record: an existing redemption is replayed or refused.
        return self._table.put_op(item, "attribute_not_exists(pk)", label="idempotency")

    def reverse_op(self, record: RedemptionRecord, outbox: list[dict[str, str]]) -> TxOp:
        return self._table.update_op(
            *record.key,
            "SET #status = :reversed, #reversed_at = :at, #version = :next, #outbox = :outbox",
            "#status = :done AND #version = :expected",
            values={
                ":reversed": "reversed",
                ":done": "done",
                ":at": to_iso(record.reversed_at),
                ":next": record.version,
                ":expected": record.version - 1,
                ":outbox": outbox or None,
            },
            label="redemption",
        )


def redemption_to_item(r: RedemptionRecord) -> Item:
    item: Item = {
        "pk": r.key[0],
        "sk": "REDEMPTION",
        "type": "redemption",
        "redemption_id": r.redemption_id,
        "kind": r.kind,
        "store_id": r.store_id,
        "customer_id": r.customer_id,
        "created_at": to_iso(r.created_at),
        "actor": r.actor,
        "points": r.points,
        "coupon": r.coupon,
        "order_ref": r.order_ref,
        "reward_id": r.reward_id,
        "account_id": r.account_id,
        "amount": r.amount,
        "taken": json.dumps({str(k): v for k, v in r.taken.items()}) if r.taken else None,
        "ledger_seq": r.ledger_seq,
        "balance_after": r.balance_after,
        "status": r.status,
        "reversed_at": to_iso(r.reversed_at),
        "version": r.version,
    }
    if r.customer_id:
        item["gsi1pk"] = customer_pk(r.customer_id)
        item["gsi1sk"] = f"REDEMPTION#{to_iso(r.created_at)}#{r.redemption_id}"
        item |= redemption_timeline(r)
    return item


def redemption_timeline(r: RedemptionRecord) -> dict[str, Any]:
    what = {
        "points": f"{r.points} points" + (f" for reward {r.reward_id}" if r.reward_id else ""),
        "coupon": f"coupon {r.coupon}",
        "stored_value": f"{(r.amount or 0) / 100:.2f} from an account",
    }.get(r.kind, r.kind)
    data: dict[str, Any] = {"points": r.points} if r.kind == "points" else {}
    if r.reward_id:
        data["reward_id"] = r.reward_id
    if r.amount is not None:
        data["amount_cents"] = r.amount
    if r.balance_after is not None:
        data["balance_after"] = r.balance_after
    return timeline_fields(
        customer_owner(str(r.customer_id)),
        r.created_at,
        REDEMPTION,
        r.kind,
        f"Redeemed {what}",
        {"store_id": r.store_id, "redemption_id": r.redemption_id},
        data,
        record_id=f"{r.store_id}#{r.redemption_id}",
    )


def redemption_from_item(item: Item) -> RedemptionRecord:
    taken: dict[str, Any] = json.loads(item["taken"]) if item.get("taken") else {}
    return RedemptionRecord(
        redemption_id=str(item["redemption_id"]),
        kind=str(item["kind"]),
        store_id=str(item["store_id"]),
        customer_id=item.get("customer_id"),
        created_at=from_iso(item["created_at"]) or datetime.min,
        actor=str(item.get("actor", "")),
        points=int(item.get("points") or 0),
        coupon=item.get("coupon"),
        order_ref=item.get("order_ref"),
        reward_id=item.get("reward_id"),
        account_id=item.get("account_id"),
        amount=int(item["amount"]) if item.get("amount") is not None else None,
        taken={int(k): int(v) for k, v in taken.items()},
        ledger_seq=int(item["ledger_seq"]) if item.get("ledger_seq") is not None else None,
        balance_after=int(item["balance_after"]) if item.get("balance_after") is not None else None,
        status=str(item.get("status", "done")),
        reversed_at=from_iso(item.get("reversed_at")),
        version=int(item.get("version", 1)),
        legacy=item["pk"] == legacy_redemption_key(str(item["redemption_id"]))[0],
    )
