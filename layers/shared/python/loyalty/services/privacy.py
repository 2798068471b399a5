"""Privacy: everything held on a person (export) and their erasure. Both follow merges: a person is
their live profile and every profile merged into it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loyalty.adapters.dynamo import Item
from loyalty.adapters.merges import MergeRepository
from loyalty.adapters.timeline import TimelineRepository, customer_owner
from loyalty.adapters.transactions import expand_line
from loyalty.domain import events as ev
from loyalty.domain.access import Principal
from loyalty.domain.customers import Customer, CustomerStatus
from loyalty.domain.errors import CustomerNotFound
from loyalty.domain.ids import is_plausible_id
from loyalty.services.merge_run import MergeBusy
from loyalty.services.ports import Clock


@dataclass(frozen=True)
class Erasure:
    customer_id: str
    erased_ids: tuple[str, ...]
    records_anonymised: int


class PrivacyService:
    def __init__(
        self,
        *,
        merges: MergeRepository,
        timeline: TimelineRepository,
        clock: Clock,
        resolve_customer: Callable[[str], Customer],
    ) -> None:
        self._merges = merges
        self._timeline = timeline
        self._clock = clock
        self._resolve = resolve_customer  # an id to its live profile, following merges

    def export(self, customer: Customer) -> dict[str, Any]:
        """Everything held on the person (GDPR Art. 15/20): the live profile's records and journals."""
        items = self._merges.everything_of(customer.customer_id)
        out: dict[str, list[dict[str, Any]]] = {
            "transactions": [],
            "ledger": [],
            "coupons": [],
            "redemptions": [],
            "accounts": [],
            "offer_uses": [],
            "merges": [],
        }
        for item in items:
            kind = str(item.get("type", ""))
            sk = str(item.get("sk", ""))
            bucket = {
                "transaction": "transactions",
                "ledger": "ledger",
                "coupon": "coupons",
                "redemption": "redemptions",
                "account": "accounts",
                "merge": "merges",
            }.get(kind)
            if sk.startswith("OFFERUSE#"):
                bucket = "offer_uses"
            if bucket is None:
                continue
            public = _public(item)
            if bucket == "transactions" and isinstance(public.get("lines"), list):
                public["lines"] = [expand_line(raw) for raw in public["lines"]]  # stored compactly
            out[bucket].append(public)
        holds = self._merges.hold_items(sorted(customer.points_holds))
        timeline = self._timeline.everything(customer_owner(customer.customer_id))
        return {**out, "holds": [_public(i) for i in holds], "timeline": timeline}

    def erase(self, customer_id: str, principal: Principal) -> Erasure:
        """Erase a person (GDPR Art. 17): their profile and every profile merged into it lose all
        personal data and links; transactions, coupons, redemptions and accounts stay for reporting
        without an owner; the timeline goes (an event keeps only its key, for dedupe); journals lose
        their snapshots, so no undo can bring anything back.
        Re-running it finishes an erasure a crash interrupted."""
        root = self._merges.profiles(customer_id).get(customer_id) if is_plausible_id(customer_id) else None
        if root is None:
            raise CustomerNotFound(f"customer {customer_id[:64]} does not exist")
        if root.status is CustomerStatus.MERGED:
            root = self._resolve(customer_id)
        if root.merge_lock:
            raise MergeBusy("the customer is being merged; retry")
        now = self._clock.now()
        already = root.status is CustomerStatus.ERASED
        ids = (
            root.customer_id,
            *(self._merges.erased_ids(root.customer_id) if already else root.merged_from),
        )
        anonymised = 0
        # The profiles first: once erased nothing else can write to them (every write needs an
        # active, unlocked profile). The erased profile keeps the ids it covered, so a second
        # DELETE finishes what a crash interrupted, without a second event.
        if not already:
            for cid in reversed(ids):
                event = ev.DomainEvent(
                    ev.CUSTOMER_ERASED,
                    {
                        "customer_id": cid,
                        "erased_at": now,
                        "erased_by": principal.key_id,
                        "merged_ids": ids[1:],
                    },
                )
                root_only = cid == root.customer_id
                self._merges.erase_profile(
                    cid, now, ev.outbox([event]) if root_only else [], ids[1:] if root_only else ()
                )
        for cid in ids:
            anonymised += self._merges.scrub_records(cid)
            # After the records: what they still showed on the timeline (and what only lives
            # there: events, tier changes, badges, messages, merges) leaves it.
            self._timeline.erase(customer_owner(cid))
        for journal in self._merges.of_customer(root.customer_id):
            self._merges.scrub_journal(journal.merge_id)
        return Erasure(root.customer_id, tuple(ids), anonymised)


_PRIVATE = (
    "pk",
    "sk",
    "gsi1pk",
    "gsi1sk",
    "gsi2pk",
    "gsi2sk",
    "fingerprint",
    "body",
    "receipt",
    "outbox",
    "status_code",
    "tlpk",
    "tlsk",
    "tl",
)


def _public(item: Item) -> dict[str, Any]:
    """An item as the customer may see it: no keys, no stored responses, no secrets."""
    return {k: v for k, v in item.items() if k not in _PRIVATE and "hash" not in k and "pin" not in k}
