"""The customer repository: profiles and the links that point to them (key layout in codec.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loyalty.adapters.codec import (
    PENDING_CONFIRMATIONS,
    PROFILE_SK,
    confirmation_due_key,
    consents_to_map,
    customer_from_item,
    customer_pk,
    customer_to_item,
    link_entry,
    link_from_item,
    link_item,
    link_pk,
    profile_to_map,
    scores_to_map,
    to_iso,
)
from loyalty.adapters.dynamo import DynamoTable, TransactionCancelled, TxOp
from loyalty.domain import events as ev
from loyalty.domain.customers import Customer, CustomerStatus, LinkOwner
from loyalty.domain.errors import (
    ConcurrentUpdate,
    CustomerNotActive,
    CustomerNotFound,
    MergeInProgress,
)
from loyalty.domain.links import Link
from loyalty.domain.scores import Scores


@dataclass
class LinksTaken(Exception):
    """Some links of a write already point to customers (link -> owner id)."""

    owners: dict[Link, str]


@dataclass
class StaleCustomer(Exception):
    """The profile changed since it was read (version or state condition failed)."""

    customer_id: str


# Every write to a profile carries this: while a merge moves a profile's records, nothing else may
# change its counters (the merge would overwrite them, or move a lot a sale is taking from).
UNLOCKED = " AND attribute_not_exists(#merge_lock)"


class CustomerRepository:
    PROFILE = PROFILE_SK

    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    # ---- reads ----------------------------------------------------------------------------
    def get(self, customer_id: str) -> Customer | None:
        item = self._table.get(customer_pk(customer_id), self.PROFILE)
        return customer_from_item(item) if item else None

    def owner_of(self, link: Link) -> str | None:
        item = self._table.get(link_pk(link), "LINK")
        return str(item["customer_id"]) if item else None

    def get_many(self, customer_ids: Sequence[str]) -> dict[str, Customer]:
        """Profiles by id, in one BatchGetItem per 100 (missing ids are left out)."""
        items = self._table.batch_get([(customer_pk(cid), self.PROFILE) for cid in customer_ids])
        return {str(i["customer_id"]): customer_from_item(i) for i in items}

    def link_owners(self, links: Sequence[Link]) -> dict[Link, str]:
        """Who each link points to now, in one BatchGetItem per 100 (unowned links are left out)."""
        items = self._table.batch_get([(link_pk(link), "LINK") for link in links])
        return {link_from_item(i): str(i["customer_id"]) for i in items if i.get("customer_id")}

    def owners(self, customer_ids: Sequence[str]) -> dict[str, LinkOwner]:
        items = self._table.batch_get([(customer_pk(cid), self.PROFILE) for cid in customer_ids])
        return {str(i["customer_id"]): LinkOwner(str(i["customer_id"]), bool(i.get("member"))) for i in items}

    # ---- writes ---------------------------------------------------------------------------
    def create(
        self, customer: Customer, extra: Sequence[TxOp] = (), outbox: Sequence[dict[str, Any]] = ()
    ) -> None:
        self._run([*self.create_ops(customer, outbox), *extra], customer.customer_id)

    def create_ops(self, customer: Customer, outbox: Sequence[dict[str, Any]] = ()) -> list[TxOp]:
        item = customer_to_item(customer) | {"outbox": list(outbox) or None}
        return [
            self._table.put_op(item, "attribute_not_exists(pk)", label="customer"),
            *self._link_puts(customer.customer_id, customer.links, customer.created_at),
        ]

    def enrol_existing(
        self,
        customer: Customer,
        new_links: Sequence[Link],
        expected_version: int,
        extra: Sequence[TxOp] = (),
        outbox: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Turn a non-member into a member (profile, consents and new links included); fails if the
        profile became a member or changed meanwhile."""
        now = customer.updated_at or customer.created_at
        ops = [
            self._table.update_op(
                customer_pk(customer.customer_id),
                self.PROFILE,
                "SET #member = :true, #enrolled_at = :now, #updated_at = :now, #tier = :tier, "
                "#profile = :profile, #consents = :consents, "
                "#origin_store_id = if_not_exists(#origin_store_id, :store), #version = :next, "
                "#outbox = :outbox, #points_available = :available, #points_pending = :pending, "
                "#points_lifetime = :lifetime, #earned_by_month = :months, #ledger_seq = :seq"
                + "".join(f", #links.#l{i} = :l{i}" for i in range(len(new_links)))
                # A confirmed double opt-in leaves the pending state and its place in the due index.
                + " REMOVE #confirm_by, #gsi2pk, #gsi2sk",
                condition="#version = :expected AND #member = :false AND #status = :active" + UNLOCKED,
                names={
                    "#status": "status",
                    "#confirm_by": "confirm_by",
                    "#gsi2pk": "gsi2pk",
                    "#gsi2sk": "gsi2sk",
                    **{f"#l{i}": link.key for i, link in enumerate(new_links)},
                },
                values={
                    ":true": True,
                    ":false": False,
                    ":active": CustomerStatus.ACTIVE.value,
                    ":now": to_iso(now),
                    ":tier": customer.tier,
                    ":profile": profile_to_map(customer.profile),
                    ":consents": consents_to_map(customer.consents),
                    ":store": customer.origin_store_id,
                    ":expected": expected_version,
                    ":next": expected_version + 1,
                    ":outbox": list(outbox) or None,
                    ":available": customer.points.available,
                    ":pending": customer.points.pending,
                    ":lifetime": customer.points.lifetime,
                    ":months": dict(customer.earned_by_month),
                    ":seq": customer.ledger_seq,
                    **{f":l{i}": link_entry(link, now) for i, link in enumerate(new_links)},
                },
                label="customer",
            ),
            *self._link_puts(customer.customer_id, new_links, now),
            *extra,
        ]
        self._run(ops, customer.customer_id)

    def add_links(
        self, customer_id: str, links: Sequence[Link], now: datetime, extra: Sequence[TxOp] = ()
    ) -> None:
        ops = [
            self._attach_op(customer_id, links, now),
            *self._link_puts(customer_id, links, now),
            *extra,
        ]
        self._run(ops, customer_id)

    def move_link(
        self, link: Link, from_customer: str, to_customer: str, now: datetime, extra: Sequence[TxOp] = ()
    ) -> None:
        """Re-point a link: the previous owner loses it, the new owner gains it, atomically."""
        ops = [
            self._table.put_op(
                link_item(to_customer, link, now),
                "customer_id = :previous",
                values={":previous": from_customer},
                label="link",
            ),
            self._table.update_op(
                customer_pk(from_customer),
                self.PROFILE,
                "REMOVE #links.#lk SET #version = #version + :one, #updated_at = :now",
                condition="attribute_exists(pk)" + UNLOCKED,
                names={"#lk": link.key},
                values={":one": 1, ":now": to_iso(now)},
                label="previous",
            ),
            self._attach_op(to_customer, [link], now),
            *extra,
        ]
        self._run(ops, to_customer)

    def set_price_group(self, customer_id: str, group_id: str, member: bool, now: datetime) -> None:
        """Add a customer to a price group (or take them out): a string set on the profile."""
        action = "ADD" if member else "DELETE"
        self._run(
            [
                self._table.update_op(
                    customer_pk(customer_id),
                    self.PROFILE,
                    f"{action} #price_groups :group SET #updated_at = :now, #version = #version + :one, "
                    "#outbox = :outbox",
                    condition="#status = :active" + UNLOCKED,
                    values={
                        ":group": {group_id},
                        ":now": to_iso(now),
                        ":one": 1,
                        ":active": "active",
                        ":outbox": ev.outbox(
                            [
                                ev.DomainEvent(
                                    ev.CUSTOMER_UPDATED,
                                    {"customer_id": customer_id, "fields": ["price_groups"]},
                                )
                            ]
                        ),
                    },
                    label="customer",
                )
            ],
            customer_id,
        )

    def set_scores(self, customer_id: str, scores: Scores | None, outbox: Sequence[dict[str, Any]]) -> bool:
        """Write (or, with None, remove) the RFM scores of a live profile, bumping its version so a
        read-modify-write that began before it retries instead of putting old scores back. False
        when the profile is gone (no item, erased, merged), being merged, or holds these scores
        already: the condition never creates an item, so nothing erased comes back."""
        live = "attribute_exists(pk) AND #status = :active" + UNLOCKED
        values: dict[str, Any] = {":one": 1, ":outbox": list(outbox), ":active": CustomerStatus.ACTIVE.value}
        if scores is None:
            update = "REMOVE #scores SET #version = #version + :one, #outbox = :outbox"
            condition = f"{live} AND attribute_exists(#scores)"
        else:
            update = "SET #scores = :scores, #version = #version + :one, #outbox = :outbox"
            condition = f"{live} AND NOT (#scores.#r = :r AND #scores.#f = :f AND #scores.#m = :m)"
            values |= {":scores": scores_to_map(scores), ":r": scores.r, ":f": scores.f, ":m": scores.m}
        op = self._table.update_op(
            customer_pk(customer_id),
            self.PROFILE,
            update,
            condition=condition,
            values=values,
            label="customer",
        )
        try:
            self._table.transact([op])
        except TransactionCancelled:
            return False
        return True

    def remove_link(self, customer_id: str, link: Link, now: datetime) -> None:
        ops = [
            self._table.delete_op(
                link_pk(link), "LINK", "customer_id = :me", values={":me": customer_id}, label="link"
            ),
            self._table.update_op(
                customer_pk(customer_id),
                self.PROFILE,
                "REMOVE #links.#lk SET #version = #version + :one, #updated_at = :now",
                condition="attribute_exists(pk)" + UNLOCKED,
                names={"#lk": link.key},
                values={":one": 1, ":now": to_iso(now)},
                label="customer",
            ),
        ]
        self._run(ops, customer_id)

    def save_profile(
        self,
        customer: Customer,
        expected_version: int,
        extra: Sequence[TxOp] = (),
        outbox: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Optimistic write of the editable fields (profile, consents, membership)."""
        ops = [
            self._table.update_op(
                customer_pk(customer.customer_id),
                self.PROFILE,
                "SET #profile = :profile, #consents = :consents, #member = :member, "
                "#enrolled_at = :enrolled, #tier = :tier, #updated_at = :now, #version = :next"
                + (", #outbox = :outbox" if outbox else ""),
                condition="#version = :expected AND #status = :active" + UNLOCKED,
                names={"#status": "status"},
                values={
                    ":profile": profile_to_map(customer.profile),
                    ":consents": consents_to_map(customer.consents),
                    ":member": customer.member,
                    ":enrolled": to_iso(customer.enrolled_at),
                    ":tier": customer.tier,
                    ":now": to_iso(customer.updated_at),
                    ":next": expected_version + 1,
                    ":expected": expected_version,
                    ":active": CustomerStatus.ACTIVE.value,
                    **({":outbox": list(outbox)} if outbox else {}),
                },
                label="customer",
            ),
            *extra,
        ]
        self._run(ops, customer.customer_id)

    def await_confirmation(
        self,
        customer: Customer,
        new_links: Sequence[Link],
        expected_version: int,
        extra: Sequence[TxOp] = (),
    ) -> None:
        """A known non-member asked to join from the web: keep what they told us (profile, consents,
        new links) and wait for the emailed link until `customer.confirm_by`; still not a member."""
        now = customer.updated_at or customer.created_at
        assert customer.confirm_by is not None
        due = confirmation_due_key(customer.customer_id, customer.confirm_by)
        ops = [
            self._table.update_op(
                customer_pk(customer.customer_id),
                self.PROFILE,
                "SET #profile = :profile, #consents = :consents, #confirm_by = :by, #gsi2pk = :gpk, "
                "#gsi2sk = :gsk, #updated_at = :now, #version = :next, "
                "#origin_store_id = if_not_exists(#origin_store_id, :store)"
                + "".join(f", #links.#l{i} = :l{i}" for i in range(len(new_links))),
                condition="#version = :expected AND #member = :false AND #status = :active" + UNLOCKED,
                names={
                    "#status": "status",
                    "#confirm_by": "confirm_by",
                    "#gsi2pk": "gsi2pk",
                    "#gsi2sk": "gsi2sk",
                    **{f"#l{i}": link.key for i, link in enumerate(new_links)},
                },
                values={
                    ":false": False,
                    ":active": CustomerStatus.ACTIVE.value,
                    ":profile": profile_to_map(customer.profile),
                    ":consents": consents_to_map(customer.consents),
                    ":by": to_iso(customer.confirm_by),
                    ":gpk": due["gsi2pk"],
                    ":gsk": due["gsi2sk"],
                    ":now": to_iso(now),
                    ":store": customer.origin_store_id,
                    ":expected": expected_version,
                    ":next": expected_version + 1,
                    **{f":l{i}": link_entry(link, now) for i, link in enumerate(new_links)},
                },
                label="customer",
            ),
            *self._link_puts(customer.customer_id, new_links, now),
            *extra,
        ]
        self._run(ops, customer.customer_id)

    def pending_confirmations(self, until: datetime, cursor: str | None) -> tuple[list[str], str | None]:
        """Customers whose confirmation window ended at or before `until` (index copies: re-read)."""
        items, next_cursor = self._table.query(
            PENDING_CONFIRMATIONS,
            index="gsi2",
            sk_max=(to_iso(until) or "") + "#\uffff",
            limit=100,
            cursor=cursor,
        )
        return [str(i["customer_id"]) for i in items], next_cursor

    def lapse_confirmation(self, customer_id: str, confirm_by: datetime, now: datetime) -> bool:
        """Drop the pending state of an enrolment never confirmed (links, profile and history stay);
        False when it was confirmed, re-requested or already lapsed meanwhile."""
        try:
            self._table.transact(
                [
                    self._table.update_op(
                        customer_pk(customer_id),
                        self.PROFILE,
                        "REMOVE #confirm_by, #gsi2pk, #gsi2sk "
                        "SET #version = #version + :one, #updated_at = :now, #outbox = :outbox",
                        condition="#confirm_by = :by AND #member = :false" + UNLOCKED,
                        names={"#confirm_by": "confirm_by", "#gsi2pk": "gsi2pk", "#gsi2sk": "gsi2sk"},
                        values={
                            ":by": to_iso(confirm_by),
                            ":false": False,
                            ":one": 1,
                            ":now": to_iso(now),
                            ":outbox": ev.outbox(
                                [
                                    ev.DomainEvent(
                                        ev.CUSTOMER_UPDATED,
                                        {"customer_id": customer_id, "fields": ["status"]},
                                    )
                                ]
                            ),
                        },
                        label="customer",
                    )
                ]
            )
        except TransactionCancelled:
            return False
        return True

    # ---- helpers --------------------------------------------------------------------------
    def _attach_op(self, customer_id: str, links: Sequence[Link], now: datetime) -> TxOp:
        return self._table.update_op(
            customer_pk(customer_id),
            self.PROFILE,
            "SET #version = #version + :one, #updated_at = :now"
            + "".join(f", #links.#l{i} = :l{i}" for i in range(len(links))),
            condition="#status = :active" + UNLOCKED,
            names={"#status": "status", **{f"#l{i}": link.key for i, link in enumerate(links)}},
            values={
                ":one": 1,
                ":now": to_iso(now),
                ":active": CustomerStatus.ACTIVE.value,
                **{f":l{i}": link_entry(link, now) for i, link in enumerate(links)},
            },
            label="customer",
        )

    def _link_puts(self, customer_id: str, links: Sequence[Link], now: datetime) -> list[TxOp]:
        # Re-attaching a link the customer already owns is a no-op rather than a conflict,
        # which keeps replays and "add the same email again" harmless.
        return [
            self._table.put_op(
                link_item(customer_id, link, now),
                "attribute_not_exists(pk) OR customer_id = :me",
                values={":me": customer_id},
                label=f"link:{link.key}",
            )
            for link in links
        ]

    def _run(self, ops: Sequence[TxOp], customer_id: str) -> None:
        try:
            self._table.transact(ops)
        except TransactionCancelled as cancelled:
            taken = {
                link_from_item(reason.old_item): str(reason.old_item["customer_id"])
                for label in cancelled.failed_labels()
                if label.startswith("link")
                for reason in cancelled.failed(label)
                if reason.old_item
            }
            if taken:
                raise LinksTaken(taken) from None
            failed = cancelled.failed_labels()
            if "original" in failed or "ledger" in failed:
                raise StaleCustomer(customer_id) from None  # a retro-credited sale changed meanwhile
            if "customer" in failed or "previous" in failed:
                old = next(
                    (r.old_item for lbl in ("customer", "previous") for r in cancelled.failed(lbl)), None
                )
                if old is None:
                    raise CustomerNotFound(f"customer {customer_id} does not exist") from None
                if old.get("merge_lock"):
                    raise MergeInProgress(f"customer {old['customer_id']} is being merged; retry") from None
                if old.get("status") != CustomerStatus.ACTIVE.value:
                    raise CustomerNotActive(f"customer {old['customer_id']} is {old.get('status')}") from None
                raise StaleCustomer(customer_id) from None
            if "link" in failed:
                raise ConcurrentUpdate("the link changed meanwhile; read it again") from None
            raise
