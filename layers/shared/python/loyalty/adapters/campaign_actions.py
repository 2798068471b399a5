"""What campaigns gave whom: receipts, the re-entry mark and the campaign's spend counter.

CAMPACT#<campaign>#<customer>  OCC#<occasion>  a receipt: the outcome (actioned | control), what was
                                               given, its cost, the run; on the customer's timeline
                                               (kind campaign) when actioned; outbox CampaignActioned
CAMPACT#<campaign>#<customer>  LAST            the latest receipt's time: written and read while the
                                               campaign has reentry_days
CAMPAIGN#<id>                  SPENT           recipients, points, amount_cents: what the limits
                                               paid for (written only by campaigns with limits)

Everything one customer is given on one occasion is ONE TransactWriteItems: the receipt (must not
exist), condition checks that no merged profile has one, the profile (versioned when points are
given, else checked active), the spend counter under the limits' condition, and the other
adapters' ops (ledger entry, coupon, account and movement, messages). A cancellation says which
condition failed (`ActConflict.labels`) and, for the counter, what it held.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from loyalty.adapters.codec import PROFILE_SK, customer_from_item, customer_pk, from_iso, plain, to_iso
from loyalty.adapters.customers import UNLOCKED
from loyalty.adapters.dynamo import DynamoTable, Item, TransactionCancelled, TxOp
from loyalty.adapters.messages import SEND_LOG_CHANNELS, SEND_LOG_SK
from loyalty.adapters.timeline import CAMPAIGN, customer_owner, timeline_fields
from loyalty.domain.campaign_actions import Receipt, Spent, cents, given_summary
from loyalty.domain.campaigns import Campaign, Cost
from loyalty.domain.customers import Customer, CustomerStatus

RECEIPT = "receipt"  # the labels a cancellation names
LAST = "last"
MERGED = "merged-receipt"
SPENT = "spent"
PROFILE = "customer"
SPENT_SK = "SPENT"
LAST_SK = "LAST"


def receipt_pk(campaign_id: str, customer_id: str) -> str:
    return f"CAMPACT#{campaign_id}#{customer_id}"


def occasion_sk(occasion: str) -> str:
    return f"OCC#{occasion}"


def campaign_pk(campaign_id: str) -> str:
    return f"CAMPAIGN#{campaign_id}"


@dataclass(frozen=True)
class Loaded:
    """One BatchGetItem's answer: profiles by id, this occasion's receipts by customer id, the
    latest LAST by customer id, the send log of the first id."""

    profiles: Mapping[str, Customer]
    receipts: Mapping[str, Receipt]
    last: Mapping[str, datetime]
    sent_log: Mapping[str, list[datetime]]


@dataclass
class ActConflict(Exception):
    """The transaction was cancelled: `labels` name the failed conditions; `spent` is what the
    counter held when its condition failed."""

    labels: set[str]
    spent: Spent | None = None


class CampaignActionRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    # ---- reads ----------------------------------------------------------------------------
    def load(
        self,
        campaign_id: str,
        occasion: str,
        customer_ids: Sequence[str],
        *,
        profile: bool = True,
        last: bool = True,
        consistent: bool = True,
    ) -> Loaded:
        """The profile and send log of the first id (unless `profile` is False), and this
        occasion's receipt and (`last`) the LAST mark of every id: one BatchGetItem (per 100 keys)."""
        keys: list[tuple[str, str]] = []
        if profile:
            first = customer_ids[0]
            keys += [(customer_pk(first), PROFILE_SK), (customer_pk(first), SEND_LOG_SK)]
        for cid in customer_ids:
            keys.append((receipt_pk(campaign_id, cid), occasion_sk(occasion)))
            if last:
                keys.append((receipt_pk(campaign_id, cid), LAST_SK))
        return _loaded(self._table.batch_get(keys, consistent=consistent))

    def load_many(
        self, campaign_id: str, occasion: str, customer_ids: Sequence[str], *, last: bool, consistent: bool
    ) -> dict[str, Loaded]:
        """`load` for many customers at once (the dry run): their profiles, send logs, receipts and
        LAST marks in one BatchGetItem per 100 keys, by customer id."""
        keys: list[tuple[str, str]] = []
        for cid in customer_ids:
            keys += [(customer_pk(cid), PROFILE_SK), (customer_pk(cid), SEND_LOG_SK)]
            keys.append((receipt_pk(campaign_id, cid), occasion_sk(occasion)))
            if last:
                keys.append((receipt_pk(campaign_id, cid), LAST_SK))
        by_customer: dict[str, list[Item]] = {cid: [] for cid in customer_ids}
        for item in self._table.batch_get(keys, consistent=consistent):
            owner = str(item["pk"]).rsplit("#", 1)[1]  # CUST#<id> and CAMPACT#<campaign>#<id> alike
            by_customer.setdefault(owner, []).append(item)
        return {cid: _loaded(items) for cid, items in by_customer.items()}

    def spent(self, campaign_id: str) -> Spent:
        return spent_from_item(self._table.get(campaign_pk(campaign_id), SPENT_SK))

    def receipt(self, campaign_id: str, occasion: str, customer_id: str) -> Receipt | None:
        item = self._table.get(receipt_pk(campaign_id, customer_id), occasion_sk(occasion))
        return receipt_from_item(item) if item else None

    # ---- transaction ops ------------------------------------------------------------------
    def receipt_op(self, receipt: Receipt, outbox: Sequence[Mapping[str, Any]], campaign_name: str) -> TxOp:
        """The receipt, if this occasion has none yet for this customer; an actioned one joins the
        customer's timeline naming the campaign."""
        item = receipt_to_item(receipt) | {"outbox": list(outbox) or None}
        if receipt.outcome == "actioned":
            item |= timeline_fields(
                customer_owner(receipt.customer_id),
                receipt.at,
                CAMPAIGN,
                "actioned",
                f"Campaign {campaign_name}: {given_summary(receipt.given)}",
                {"campaign_id": receipt.campaign_id, "occasion": receipt.occasion},
                {"campaign_id": receipt.campaign_id, **plain(dict(receipt.given))},
                record_id=f"{receipt.campaign_id}#{receipt.occasion}",
            )
        return self._table.put_op(item, "attribute_not_exists(pk)", label=RECEIPT)

    def last_op(self, campaign_id: str, customer_id: str, at: datetime, occasion: str) -> TxOp:
        return self._table.put_op(
            {
                "pk": receipt_pk(campaign_id, customer_id),
                "sk": LAST_SK,
                "type": "campaign_last",
                "campaign_id": campaign_id,
                "customer_id": customer_id,
                "occasion": occasion,
                "at": to_iso(at),
            },
            label=LAST,
        )

    def no_receipt_op(self, campaign_id: str, occasion: str, customer_id: str) -> TxOp:
        """A merged profile has not received this occasion (read so, checked at the write)."""
        return self._table.condition_check_op(
            receipt_pk(campaign_id, customer_id),
            occasion_sk(occasion),
            "attribute_not_exists(pk)",
            label=MERGED,
        )

    def active_op(self, customer_id: str) -> TxOp:
        """The profile is still live (not merged or erased since it was read): a receipt is never
        written for a profile a merge just retired, which the survivor's merged ids would not show."""
        return self._table.condition_check_op(
            customer_pk(customer_id),
            PROFILE_SK,
            "#status = :active",
            values={":active": CustomerStatus.ACTIVE.value},
            label=PROFILE,
        )

    def profile_op(
        self, customer: Customer, expected_version: int, outbox: Sequence[Mapping[str, Any]]
    ) -> TxOp:
        """The points a campaign gave, on the profile read (version), while it is live and unlocked."""
        from loyalty.adapters.lots import summary_to_attr

        return self._table.update_op(
            customer_pk(customer.customer_id),
            PROFILE_SK,
            "SET #points_available = :available, #points_pending = :pending, #points_lifetime = :lifetime, "
            "#earned_by_month = :months, #ledger_seq = :seq, #version = :next, #updated_at = :now, "
            "#outbox = :outbox, #lots = :lots",
            condition="#version = :expected AND #status = :active" + UNLOCKED,
            values={
                ":available": customer.points.available,
                ":pending": customer.points.pending,
                ":lifetime": customer.points.lifetime,
                ":months": dict(customer.earned_by_month),
                ":seq": customer.ledger_seq,
                ":lots": summary_to_attr(customer.lots, customer.updated_at),
                ":next": expected_version + 1,
                ":now": to_iso(customer.updated_at),
                ":outbox": [dict(o) for o in outbox] or None,
                ":expected": expected_version,
                ":active": CustomerStatus.ACTIVE.value,
            },
            label=PROFILE,
        )

    def spent_op(self, campaign: Campaign, cost: Cost) -> TxOp:
        """Count one more customer of this cost on the campaign's counter, only while its limits
        allow: the condition DynamoDB checks is `limit_reason` (domain/campaign_actions.py)."""
        limits = campaign.limits
        conditions: list[str] = []
        values: dict[str, Any] = {
            ":one": 1,
            ":points": cost.points,
            ":cents": cents(cost.amount),
            ":zero": 0,
            ":campaign": campaign.campaign_id,
            ":type": "campaign_spent",
        }
        if limits.max_recipients is not None:
            conditions.append("(attribute_not_exists(#recipients) OR #recipients < :max)")
            values[":max"] = limits.max_recipients
        budget = limits.budget
        if budget is not None and budget.points is not None:
            conditions.append("(attribute_not_exists(#points) OR #points <= :points_room)")
            values[":points_room"] = budget.points - cost.points
            if cost.points > budget.points:
                conditions.append("attribute_exists(#never)")  # one customer costs more than the budget
        if budget is not None and budget.amount is not None:
            room = cents(budget.amount) - cents(cost.amount)
            conditions.append("(attribute_not_exists(#amount_cents) OR #amount_cents <= :cents_room)")
            values[":cents_room"] = room
            if room < 0:
                conditions.append("attribute_exists(#never)")
        return self._table.update_op(
            campaign_pk(campaign.campaign_id),
            SPENT_SK,
            "SET #recipients = if_not_exists(#recipients, :zero) + :one, "
            "#points = if_not_exists(#points, :zero) + :points, "
            "#amount_cents = if_not_exists(#amount_cents, :zero) + :cents, "
            "#campaign_id = :campaign, #type = :type",
            condition=" AND ".join(conditions) or None,
            values=values,
            label=SPENT,
        )

    def commit(self, ops: Sequence[TxOp]) -> None:
        try:
            self._table.transact(ops)
        except TransactionCancelled as cancelled:
            spent = next((spent_from_item(r.old_item) for r in cancelled.failed(SPENT)), None)
            raise ActConflict(cancelled.failed_labels(), spent) from None


# ---- mapping ----------------------------------------------------------------------------------


def _cost_to_map(cost: Cost) -> dict[str, Any]:
    return {
        "points": cost.points,
        "amount": str(cost.amount),
        "coupons": cost.coupons,
        "messages": dict(cost.messages),
    }


def _cost_from_map(raw: Mapping[str, Any] | None) -> Cost:
    raw = raw or {}
    return Cost(
        int(raw.get("points") or 0),
        Decimal(str(raw.get("amount") or "0.00")),
        int(raw.get("coupons") or 0),
        {str(k): int(v) for k, v in (raw.get("messages") or {}).items()},
    )


def receipt_to_item(r: Receipt) -> Item:
    given = dict(r.given)
    coupons = given.get("coupons") or []
    promo = given.get("promo_cash") or []
    return {
        "pk": receipt_pk(r.campaign_id, r.customer_id),
        "sk": occasion_sk(r.occasion),
        "type": "campaign_receipt",
        "campaign_id": r.campaign_id,
        "customer_id": r.customer_id,
        "occasion": r.occasion,
        "run_id": r.run_id,
        "outcome": r.outcome,
        "at": to_iso(r.at),
        "given": given or None,
        # Flat copies of what was given, for the lake's campaign_actions kind and the report.
        "coupon_code": coupons[0]["code"] if coupons else None,
        "points": int(given.get("points") or 0),
        "promo_cash": str(sum((Decimal(str(p["amount"])) for p in promo), Decimal("0.00")))
        if promo
        else None,
        "promo_cash_account_id": promo[0]["account_id"] if promo else None,
        "messages": dict(given.get("messages") or {}) or None,
        "cost": _cost_to_map(r.cost),
    }


def _loaded(items: Sequence[Item]) -> Loaded:
    profiles: dict[str, Customer] = {}
    receipts: dict[str, Receipt] = {}
    latest: dict[str, datetime] = {}
    log: dict[str, list[datetime]] = {}
    for item in items:
        sk = str(item["sk"])
        if sk == PROFILE_SK:
            found = customer_from_item(item)
            profiles[found.customer_id] = found
        elif sk == SEND_LOG_SK:
            log = {
                channel: [at for at in (from_iso(v) for v in item.get(channel) or []) if at is not None]
                for channel in SEND_LOG_CHANNELS
            }
        elif sk == LAST_SK:
            at = from_iso(item.get("at"))
            if at is not None:
                latest[_owner(item)] = at
        else:
            receipt = receipt_from_item(item)
            receipts[receipt.customer_id] = receipt
    return Loaded(profiles, receipts, latest, log)


def _owner(item: Item) -> str:
    """Whose receipt this is: the id in its key. (A merge moves the receipt's timeline entry to the
    survivor and, with it, the `customer_id` attribute; the key stays the profile that received.)"""
    return str(item["pk"]).rsplit("#", 1)[1]


def receipt_from_item(item: Item) -> Receipt:
    return Receipt(
        campaign_id=str(item["campaign_id"]),
        customer_id=_owner(item),
        occasion=str(item["occasion"]),
        outcome="control" if item.get("outcome") == "control" else "actioned",
        at=from_iso(item.get("at")) or datetime.min,
        run_id=item.get("run_id"),
        given=plain(dict(item.get("given") or {})),
        cost=_cost_from_map(item.get("cost")),
    )


def spent_from_item(item: Item | None) -> Spent:
    item = item or {}
    return Spent(
        int(item.get("recipients") or 0), int(item.get("points") or 0), int(item.get("amount_cents") or 0)
    )
