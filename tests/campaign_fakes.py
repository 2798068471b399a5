"""Small stand-ins for the campaign catalogue and actor (campdef's and campact's real ones are
tested on their own): enough to drive runs, retries and dry runs through their decisions.

`FakeActor` decides as the real one's rules say for what it models: the control hold-out by
`in_control`, a per-customer skip reason, `max_recipients` consumed in order, and a receipt per
(campaign, occasion, customer) so a second `act` answers the recorded outcome with
`first_time=False`. Its receipts live in a dict, or in the table when given one (so an
execution's in-process tasks and the test see the same receipts)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from loyalty.domain.campaigns import ActResult, Campaign, Occasion, cost_of, in_control
from loyalty.domain.errors import CampaignNotFound

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def campaign(campaign_id: str = "camp-1", **overrides: Any) -> Campaign:
    body: dict[str, Any] = {
        "campaign_id": campaign_id,
        "name": "A test campaign",
        "trigger": {"type": "manual"},
        "audience": {"segment_id": "seg-1"},
        "actions": [{"type": "coupon", "offer_id": "offer-1"}, {"type": "message", "template_id": "t-1"}],
        "control_group": {"percent": 10},
        "status": "active",
        "created_at": NOW,
        "updated_at": NOW,
    }
    body.update(overrides)
    return Campaign.model_validate(body)


class FakeCatalogue:
    def __init__(self, *campaigns: Campaign) -> None:
        self.campaigns = {c.campaign_id: c for c in campaigns}

    def get(self, campaign_id: str) -> Campaign:
        try:
            return self.campaigns[campaign_id]
        except KeyError:
            raise CampaignNotFound(f"no campaign {campaign_id}") from None

    def triggered(self) -> list[Campaign]:
        return [c for c in self.campaigns.values() if c.triggered and c.live]


class FakeActor:
    def __init__(
        self,
        skips: dict[str, str] | None = None,
        fault: Callable[[str], None] | None = None,
        receipts: Any = None,
    ) -> None:
        self.skips = dict(skips or {})
        self.fault = fault
        self._receipts: dict[tuple[str, str, str], str] = {}
        self._table = receipts  # a DynamoTable: receipts kept where every thread sees them
        self.given: Counter[str] = Counter()  # customer -> times actioned or held out (first time)
        self._lock = threading.Lock()

    def _decide(self, campaign: Campaign, customer_id: str, spent: int) -> ActResult:
        if customer_id in self.skips:
            return ActResult(customer_id, "skipped", reason=self.skips[customer_id])  # type: ignore[arg-type]
        if in_control(campaign.campaign_id, customer_id, campaign.control_group.percent):
            return ActResult(customer_id, "control")
        limit = campaign.limits.max_recipients
        if limit is not None and spent >= limit:
            return ActResult(customer_id, "skipped", reason="max_recipients")
        return ActResult(customer_id, "actioned", cost=cost_of(campaign, {}))

    def _recorded(self, key: tuple[str, str, str]) -> str | None:
        if self._table is None:
            return self._receipts.get(key)
        item = self._table.get(f"FAKEACT#{key[0]}#{key[2]}", f"OCC#{key[1]}")
        return None if item is None else str(item["outcome"])

    def _record(self, key: tuple[str, str, str], outcome: str) -> bool:
        if self._table is None:
            with self._lock:
                if key in self._receipts:
                    return False
                self._receipts[key] = outcome
                return True
        from loyalty.adapters.dynamo import TransactionCancelled

        item = {"pk": f"FAKEACT#{key[0]}#{key[2]}", "sk": f"OCC#{key[1]}", "outcome": outcome}
        try:
            self._table.transact([self._table.put_op(item, "attribute_not_exists(pk)")])
        except TransactionCancelled:
            return False
        return True

    def act(self, campaign: Campaign, occasion: Occasion, customer_id: str) -> ActResult:
        if self.fault is not None:
            self.fault(customer_id)
        key = (campaign.campaign_id, occasion.key, customer_id)
        recorded = self._recorded(key)
        if recorded is not None:
            return ActResult(customer_id, recorded, first_time=False)  # type: ignore[arg-type]
        with self._lock:
            spent = sum(1 for c, n in self.given.items() if n and not c.startswith("control:"))
        result = self._decide(campaign, customer_id, spent)
        if result.outcome in ("actioned", "control") and self._record(key, result.outcome):
            with self._lock:
                self.given[customer_id if result.outcome == "actioned" else f"control:{customer_id}"] += 1
        return result

    def evaluate(
        self, campaign: Campaign, occasion: Occasion, customer_ids: Sequence[str]
    ) -> list[ActResult]:
        results = []
        spent = 0
        for customer_id in customer_ids:
            result = self._decide(campaign, customer_id, spent)
            spent += result.outcome == "actioned"
            results.append(result)
        return results


def join_segment(client: Any, table_name: str, segment_id: str, customer_ids: Sequence[str]) -> None:
    """Member rows as the segments worker writes them (adapters.segments), straight into the table:
    the runs read a segment's members, not how they got there."""
    from loyalty.adapters.segments import members_pk

    rows = [
        {
            "PutRequest": {
                "Item": {
                    "pk": {"S": members_pk(segment_id, cid)},
                    "sk": {"S": f"CUST#{cid}"},
                    "type": {"S": "segment_member"},
                    "segment_id": {"S": segment_id},
                    "customer_id": {"S": cid},
                    "entered_at": {"S": "2026-11-01T00:00:00Z"},
                }
            }
        }
        for cid in customer_ids
    ]
    for start in range(0, len(rows), 25):
        pending: dict[str, Any] = {table_name: rows[start : start + 25]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
