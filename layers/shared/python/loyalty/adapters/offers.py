"""Offers, price groups, coupons and the counters that enforce limits and budgets.

OFFER#<offer_id>            OFFER            the offer document        (gsi1: OFFERS / <offer_id>)
PRICEGROUP#<group_id>       PRICEGROUP       a price group             (gsi1: PRICEGROUPS / <group_id>)
COUPON#<code>               COUPON           a personal coupon         (gsi1: CUST#<id> / COUPON#<issued_at>)
OFFERUSE#<offer_id>         TOTAL            how often the offer applied (its budget)
CUST#<customer_id>          OFFERUSE#<id>    how often it applied for one customer (per_customer)
OFFERS                      VERSION          bumped on every offer or price-group change (cache check)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loyalty.adapters.codec import customer_pk, from_iso, to_iso
from loyalty.adapters.dynamo import DynamoTable, Item, TransactionCancelled, TxOp
from loyalty.adapters.segments import memberships_key, segments_in
from loyalty.adapters.timeline import COUPON, customer_owner, timeline_fields


@dataclass(frozen=True)
class StoredDocument:
    """An offer or price group as stored: the validated JSON document and its version."""

    key: str
    document: str
    version: int
    updated_at: datetime | None


@dataclass(frozen=True)
class CouponRecord:
    code: str
    offer_id: str
    customer_id: str | None
    issued_at: datetime
    valid_until: datetime | None
    max_uses: int
    uses: int
    source: str
    status: str = "active"  # active | revoked
    version: int = 1
    campaign_id: str | None = None  # the campaign that issued it (its timeline entry names it)

    def state(self, now: datetime) -> str:
        """active | used | expired | revoked"""
        if self.status != "active":
            return self.status
        if self.valid_until is not None and now >= self.valid_until:
            return "expired"
        if self.uses >= self.max_uses:
            return "used"
        return "active"


@dataclass
class DocumentExists(Exception):
    key: str


@dataclass
class StaleDocument(Exception):
    key: str


@dataclass
class CounterExhausted(Exception):
    """A budget, per-customer limit or coupon use ran out while the write was in flight."""

    labels: set[str]


class OfferRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    # ---- documents (offers and price groups) -----------------------------------------------
    def get_document(self, kind: str, key: str) -> StoredDocument | None:
        item = self._table.get(f"{kind}#{key}", kind)
        return _document(item, kind) if item else None

    def list_documents(
        self, kind: str, limit: int, cursor: str | None
    ) -> tuple[list[StoredDocument], str | None]:
        items, next_cursor = self._table.query(f"{kind}S", index="gsi1", limit=limit, cursor=cursor)
        return [_document(i, kind) for i in items], next_cursor

    def all_documents(self, kind: str) -> list[StoredDocument]:
        documents: list[StoredDocument] = []
        cursor = None
        while True:
            page, cursor = self.list_documents(kind, 200, cursor)
            documents.extend(page)
            if cursor is None:
                return documents

    def put_document(
        self,
        kind: str,
        key: str,
        document: str,
        now: datetime,
        expected_version: int | None,
        extra: Sequence[TxOp] = (),
    ) -> int:
        """Create (expected_version None) or replace the document at a version; bumps the offers
        version. `extra` (the request's idempotency records) commits with it."""
        version = 1 if expected_version is None else expected_version + 1
        condition = "attribute_not_exists(pk)" if expected_version is None else "#version = :expected"
        item = {
            "pk": f"{kind}#{key}",
            "sk": kind,
            "gsi1pk": f"{kind}S",
            "gsi1sk": key,
            "type": kind.lower(),
            "key": key,
            "document": document,
            "version": version,
            "updated_at": to_iso(now),
        }
        values = {":expected": expected_version} if expected_version is not None else None
        try:
            self._table.transact(
                [
                    self._table.put_op(item, condition, values=values, label="document"),
                    self._bump_catalogue_version(now),
                    *extra,
                ]
            )
        except TransactionCancelled:
            if expected_version is None:
                raise DocumentExists(key) from None
            raise StaleDocument(key) from None
        return version

    def catalogue_version(self) -> int:
        """One small read tells a warm function whether its cached offers are still current."""
        item = self._table.get("OFFERS", "VERSION", consistent=False)
        return int(item["version"]) if item else 0

    def _bump_catalogue_version(self, now: datetime) -> TxOp:
        return self._table.update_op(
            "OFFERS",
            "VERSION",
            "SET #version = if_not_exists(#version, :zero) + :one, #updated_at = :now",
            values={":zero": 0, ":one": 1, ":now": to_iso(now)},
            label="catalogue",
        )

    # ---- coupons ---------------------------------------------------------------------------
    def put_coupon(self, coupon: CouponRecord, extra: Sequence[TxOp] = ()) -> None:
        """A new coupon, with `extra` (its idempotency records) in the same transaction."""
        op = self._table.put_op(_coupon_item(coupon), "attribute_not_exists(pk)", label="coupon-new")
        try:
            self._table.transact([op, *extra])
        except TransactionCancelled as cancelled:
            if "coupon-new" in cancelled.failed_labels():  # a generated code collided: draw another
                raise DocumentExists(coupon.code) from None
            raise

    def new_coupon_op(self, coupon: CouponRecord) -> TxOp:
        """A new coupon as one op of someone else's transaction (a challenge's reward); a failed
        `coupon-new` label means the generated code collided: draw another."""
        return self._table.put_op(_coupon_item(coupon), "attribute_not_exists(pk)", label="coupon-new")

    def get_coupon(self, code: str) -> CouponRecord | None:
        item = self._table.get(f"COUPON#{code}", "COUPON")
        return _coupon(item) if item else None

    def coupons_of(
        self, customer_id: str, limit: int, cursor: str | None
    ) -> tuple[list[CouponRecord], str | None]:
        items, next_cursor = self._table.query(
            customer_pk(customer_id),
            index="gsi1",
            sk_prefix="COUPON#",
            limit=limit,
            cursor=cursor,
            newest_first=True,
        )
        return [_coupon(i) for i in items], next_cursor

    # ---- what a cart or sale reads in one round trip -----------------------------------------
    def load_for_cart(
        self,
        customer_id: str | None,
        codes: Sequence[str],
        limited_offers: Sequence[str],
        per_customer: Sequence[str],
        segments: bool = False,
    ) -> tuple[Item | None, dict[str, CouponRecord], dict[str, int], dict[str, int], frozenset[str]]:
        """The profile, the coupons, the offers' total uses, this customer's uses and (`segments`)
        the segments they are in: one BatchGetItem."""
        keys: list[tuple[str, str]] = []
        if customer_id:
            keys.append((customer_pk(customer_id), "PROFILE"))
            if segments:
                keys.append(memberships_key(customer_id))
            keys.extend((customer_pk(customer_id), f"OFFERUSE#{o}") for o in per_customer)
        keys.extend((f"COUPON#{c}", "COUPON") for c in codes)
        keys.extend((f"OFFERUSE#{o}", "TOTAL") for o in limited_offers)
        if not keys:
            return None, {}, {}, {}, frozenset()
        items = self._table.batch_get(keys)
        profile = None
        coupons: dict[str, CouponRecord] = {}
        totals: dict[str, int] = {}
        mine: dict[str, int] = {}
        for item in items:
            pk, sk = str(item["pk"]), str(item["sk"])
            if sk == "PROFILE":
                profile = item
            elif sk == "COUPON":
                coupon = _coupon(item)
                coupons[coupon.code] = coupon
            elif sk == "TOTAL":
                totals[pk.removeprefix("OFFERUSE#")] = int(item.get("uses", 0))
            elif sk.startswith("OFFERUSE#"):
                mine[sk.removeprefix("OFFERUSE#")] = int(item.get("uses", 0))
        return profile, coupons, totals, mine, segments_in(items)

    # ---- counting what a sale applied (ops for the sale's own transaction) ---------------------
    def use_offer_ops(
        self,
        offer_id: str,
        customer_id: str | None,
        budget: int | None,
        per_customer: int | None,
        delta: int = 1,
    ) -> list[TxOp]:
        """Count one application of an offer, only while its budget and per-customer limit last.

        Offers without a budget write no total (reports count them off the stream): a shared counter
        written on every sale would be a hot key. A budgeted offer's counter takes ~1,000 writes/s.
        """
        ops = []
        if budget is not None:
            total_condition = "attribute_not_exists(#uses) OR #uses < :cap" if delta > 0 else None
            ops.append(
                self._table.update_op(
                    f"OFFERUSE#{offer_id}",
                    "TOTAL",
                    "SET #uses = if_not_exists(#uses, :zero) + :delta",
                    total_condition,
                    values={":zero": 0, ":delta": delta, **({":cap": budget} if total_condition else {})},
                    label=f"budget:{offer_id}",
                )
            )
        if customer_id and per_customer is not None:
            condition = (
                "attribute_not_exists(#uses) OR #uses < :cap"
                if per_customer is not None and delta > 0
                else None
            )
            ops.append(
                self._table.update_op(
                    customer_pk(customer_id),
                    f"OFFERUSE#{offer_id}",
                    "SET #uses = if_not_exists(#uses, :zero) + :delta",
                    condition,
                    values={":zero": 0, ":delta": delta, **({":cap": per_customer} if condition else {})},
                    label=f"limit:{offer_id}",
                )
            )
        return ops

    def reward_stock_op(self, reward_id: str, stock: int | None, delta: int) -> TxOp:
        """Take one of a reward's stock (never beyond it), or give one back."""
        condition = "attribute_not_exists(#uses) OR #uses < :cap" if stock is not None and delta > 0 else None
        return self._table.update_op(
            f"REWARDUSE#{reward_id}",
            "TOTAL",
            "SET #uses = if_not_exists(#uses, :zero) + :delta",
            condition,
            values={":zero": 0, ":delta": delta, **({":cap": stock} if condition else {})},
            label=f"stock:{reward_id}",
        )

    def reward_uses(self, reward_id: str) -> int:
        item = self._table.get(f"REWARDUSE#{reward_id}", "TOTAL")
        return int(item["uses"]) if item else 0

    def rewards_uses(self, reward_ids: list[str]) -> dict[str, int]:
        """How many of each reward were taken, in one BatchGetItem (unused ones: 0)."""
        items = self._table.batch_get([reward_use_key(r) for r in reward_ids]) if reward_ids else []
        used = {str(i["pk"]).removeprefix("REWARDUSE#"): int(i.get("uses") or 0) for i in items}
        return {r: used.get(r, 0) for r in reward_ids}

    def use_coupon_op(self, coupon: CouponRecord, delta: int = 1) -> TxOp:
        """Consume (or give back) one use of a coupon, never beyond its uses."""
        condition = "#uses < #max_uses AND #status = :active" if delta > 0 else "#uses > :zero"
        return self._table.update_op(
            f"COUPON#{coupon.code}",
            "COUPON",
            "SET #uses = #uses + :delta, #version = #version + :one",
            condition,
            values={":delta": delta, ":one": 1, **({":active": "active"} if delta > 0 else {":zero": 0})},
            label=f"coupon:{coupon.code}",
        )


def coupon_key(code: str) -> tuple[str, str]:
    return f"COUPON#{code}", "COUPON"


def reward_use_key(reward_id: str) -> tuple[str, str]:
    return f"REWARDUSE#{reward_id}", "TOTAL"


def read_coupon(item: Item) -> CouponRecord:
    return _coupon(item)


def offer_total_key(offer_id: str) -> tuple[str, str]:
    return f"OFFERUSE#{offer_id}", "TOTAL"


def offer_customer_key(customer_id: str, offer_id: str) -> tuple[str, str]:
    return customer_pk(customer_id), f"OFFERUSE#{offer_id}"


def read_counters(items: Sequence[Item]) -> tuple[dict[str, CouponRecord], dict[str, int], dict[str, int]]:
    """Coupons, offers' total uses and one customer's uses among items read together."""
    coupons: dict[str, CouponRecord] = {}
    totals: dict[str, int] = {}
    mine: dict[str, int] = {}
    for item in items:
        pk, sk = str(item["pk"]), str(item["sk"])
        if sk == "COUPON":
            coupon = _coupon(item)
            coupons[coupon.code] = coupon
        elif sk == "TOTAL" and pk.startswith("OFFERUSE#"):
            totals[pk.removeprefix("OFFERUSE#")] = int(item.get("uses", 0))
        elif sk.startswith("OFFERUSE#"):
            mine[sk.removeprefix("OFFERUSE#")] = int(item.get("uses", 0))
    return coupons, totals, mine


def _document(item: Item, kind: str) -> StoredDocument:
    return StoredDocument(
        str(item["key"]), str(item["document"]), int(item["version"]), from_iso(item.get("updated_at"))
    )


def _coupon_item(c: CouponRecord) -> Item:
    item: dict[str, Any] = {
        "pk": f"COUPON#{c.code}",
        "sk": "COUPON",
        "type": "coupon",
        "code": c.code,
        "offer_id": c.offer_id,
        "customer_id": c.customer_id,
        "issued_at": to_iso(c.issued_at),
        "valid_until": to_iso(c.valid_until),
        "max_uses": c.max_uses,
        "uses": c.uses,
        "source": c.source,
        "status": c.status,
        "version": c.version,
        "campaign_id": c.campaign_id,
    }
    if c.customer_id:
        item["gsi1pk"] = customer_pk(c.customer_id)
        item["gsi1sk"] = f"COUPON#{to_iso(c.issued_at)}#{c.code}"
        item |= timeline_fields(
            customer_owner(c.customer_id),
            c.issued_at,
            COUPON,
            c.source,
            f"Coupon for offer {c.offer_id} issued",
            {"code": c.code, "offer_id": c.offer_id},
            {"valid_until": to_iso(c.valid_until)}
            | ({"campaign_id": c.campaign_id} if c.campaign_id else {}),
            record_id=c.code,
        )
    return item


def _coupon(item: Item) -> CouponRecord:
    return CouponRecord(
        code=str(item["code"]),
        offer_id=str(item["offer_id"]),
        customer_id=item.get("customer_id"),
        issued_at=from_iso(item["issued_at"]) or datetime.min,
        valid_until=from_iso(item.get("valid_until")),
        max_uses=int(item.get("max_uses", 1)),
        uses=int(item.get("uses", 0)),
        source=str(item.get("source", "manual")),
        status=str(item.get("status", "active")),
        version=int(item.get("version", 1)),
        campaign_id=item.get("campaign_id"),
    )
