"""What event earn rules keep: which rules an event has earned by, and the per-customer counters
of each rule's limit.

EVENTEARN#<store_id>#<event_id>  RULE#<rule_id>     the event earned by the rule (once, for ever):
                                                    points, the lot's ledger seq, and the outbox
                                                    (PointsEarned, TierChanged) of that write
EARNLIMIT#<customer_id>          <rule_id>#<period> how many times the customer earned by the rule
                                                    in the period (ever, YYYY-MM or YYYY-MM-DD)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loyalty.adapters.codec import to_iso
from loyalty.adapters.dynamo import DynamoTable, Item, TransactionCancelled, TxOp
from loyalty.domain.errors import MergeInProgress


def earned_pk(store_id: str, event_id: str) -> str:
    return f"EVENTEARN#{store_id}#{event_id}"


def limit_key(customer_id: str, rule_id: str, period: str) -> tuple[str, str]:
    return f"EARNLIMIT#{customer_id}", f"{rule_id}#{period}"


@dataclass(frozen=True)
class EarnedBy:
    """An event's earn by one rule, as recorded."""

    rule_id: str
    customer_id: str
    points: int
    ledger_seq: int | None


class EarnContended(Exception):
    """Someone else changed the profile, a counter or the event's earns meanwhile: read again."""


class EventEarningRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def load(
        self, store_id: str, event_id: str, rule_ids: Sequence[str], counters: Sequence[tuple[str, str, str]]
    ) -> tuple[dict[str, EarnedBy], dict[tuple[str, str], int]]:
        """In one round trip: the rules this event has earned by already, and the counters
        (customer, rule, period) of the rules' limits."""
        keys = [(earned_pk(store_id, event_id), f"RULE#{r}") for r in rule_ids]
        keys += [limit_key(*c) for c in counters]
        items = self._table.batch_get(keys) if keys else []
        earned: dict[str, EarnedBy] = {}
        counts: dict[tuple[str, str], int] = {}
        for item in items:
            if item.get("type") == "event_earn":
                earned[str(item["rule_id"])] = EarnedBy(
                    str(item["rule_id"]),
                    str(item["customer_id"]),
                    int(item.get("points", 0)),
                    int(item["ledger_seq"]) if item.get("ledger_seq") is not None else None,
                )
            else:
                counts[(str(item["rule_id"]), str(item["period"]))] = int(item.get("count", 0))
        return earned, counts

    def earned_op(
        self,
        store_id: str,
        event_id: str,
        earned: EarnedBy,
        at: datetime,
        outbox: Sequence[dict[str, Any]] = (),
    ) -> TxOp:
        item: Item = {
            "pk": earned_pk(store_id, event_id),
            "sk": f"RULE#{earned.rule_id}",
            "type": "event_earn",
            "store_id": store_id,
            "event_id": event_id,
            "rule_id": earned.rule_id,
            "customer_id": earned.customer_id,
            "points": earned.points,
            "ledger_seq": earned.ledger_seq,
            "at": to_iso(at),
            "outbox": list(outbox) or None,
        }
        return self._table.put_op(item, "attribute_not_exists(pk)", label="event-earn")

    def counter_op(self, customer_id: str, rule_id: str, period: str, seen: int) -> TxOp:
        """Count one more earn in the period, if the counter still says what was read."""
        pk, sk = limit_key(customer_id, rule_id, period)
        if seen == 0:
            item = {
                "pk": pk,
                "sk": sk,
                "type": "earn_limit",
                "customer_id": customer_id,
                "rule_id": rule_id,
                "period": period,
                "count": 1,
            }
            return self._table.put_op(item, "attribute_not_exists(pk)", label="earn-limit")
        return self._table.update_op(
            pk,
            sk,
            "SET #count = :next",
            "#count = :seen",
            values={":next": seen + 1, ":seen": seen},
            label="earn-limit",
        )

    def commit(self, ops: Sequence[TxOp]) -> None:
        try:
            self._table.transact(ops)
        except TransactionCancelled as cancelled:
            if any(r.old_item and r.old_item.get("merge_lock") for r in cancelled.failed("customer")):
                raise MergeInProgress("the customer is being merged; retry") from None
            raise EarnContended() from None
