"""Repositories: domain objects in, domain objects out; item layout lives only here.

Key layout (single table, all keys strings):

    CUST#<customer_id>      PROFILE             the profile, its link map, counters and version
    LINK#<type>#<value>     LINK                which customer a link points to (uniqueness)
    STORE#<store_id>        STORE               a store            (gsi1: STORES / <store_id>)
    APIKEYS                 KEY#<key_id>        an API key's metadata, never the secret
    KEYHASH#<hmac>          KEYHASH             what the authorizer reads: one GetItem per call
    IDEM#<key_id>#<key>     IDEM                a stored first response (TTL)
    PROGRAMME               CONFIG              the programme configuration
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from loyalty.adapters.dynamo import DynamoTable, Item, TransactionCancelled, TxOp
from loyalty.domain.access import KeyKind
from loyalty.domain.customers import (
    Consents,
    Customer,
    CustomerStatus,
    LinkOwner,
    PointsSummary,
    Profile,
    Stats,
)
from loyalty.domain.errors import (
    ApiKeyNotFound,
    ConcurrentUpdate,
    CustomerNotActive,
    CustomerNotFound,
    MergeInProgress,
)
from loyalty.domain.links import Link
from loyalty.domain.replay import StoredResponse
from loyalty.domain.stores import Channel, Store

if TYPE_CHECKING:
    from loyalty.domain.programme import Programme


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


def _plain(value: Any) -> Any:
    """DynamoDB returns numbers as Decimal; free-form attributes go back as JSON numbers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _storable(value: Any) -> Any:
    """JSON floats become Decimal (DynamoDB has no float); everything else as is."""
    return json.loads(json.dumps(value), parse_float=Decimal)


# ---------------------------------------------------------------------------------------------
# Customers and links
# ---------------------------------------------------------------------------------------------


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


def customer_pk(customer_id: str) -> str:
    return f"CUST#{customer_id}"


def link_pk(link: Link) -> str:
    return f"LINK#{link.key}"


class CustomerRepository:
    PROFILE = "PROFILE"

    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    # ---- reads ----------------------------------------------------------------------------
    def get(self, customer_id: str) -> Customer | None:
        item = self._table.get(customer_pk(customer_id), self.PROFILE)
        return customer_from_item(item) if item else None

    def owner_of(self, link: Link) -> str | None:
        item = self._table.get(link_pk(link), "LINK")
        return str(item["customer_id"]) if item else None

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
                + "".join(f", #links.#l{i} = :l{i}" for i in range(len(new_links))),
                condition="#version = :expected AND #member = :false AND #status = :active" + UNLOCKED,
                names={"#status": "status", **{f"#l{i}": link.key for i, link in enumerate(new_links)}},
                values={
                    ":true": True,
                    ":false": False,
                    ":active": CustomerStatus.ACTIVE.value,
                    ":now": _iso(now),
                    ":tier": customer.tier,
                    ":profile": _profile_to_map(customer.profile),
                    ":consents": _consents_to_map(customer.consents),
                    ":store": customer.origin_store_id,
                    ":expected": expected_version,
                    ":next": expected_version + 1,
                    ":outbox": list(outbox) or None,
                    ":available": customer.points.available,
                    ":pending": customer.points.pending,
                    ":lifetime": customer.points.lifetime,
                    ":months": dict(customer.earned_by_month),
                    ":seq": customer.ledger_seq,
                    **{f":l{i}": _link_entry(link, now) for i, link in enumerate(new_links)},
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
                _link_item(to_customer, link, now),
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
                values={":one": 1, ":now": _iso(now)},
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
                    f"{action} #price_groups :group SET #updated_at = :now, #version = #version + :one",
                    condition="#status = :active" + UNLOCKED,
                    values={":group": {group_id}, ":now": _iso(now), ":one": 1, ":active": "active"},
                    label="customer",
                )
            ],
            customer_id,
        )

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
                values={":one": 1, ":now": _iso(now)},
                label="customer",
            ),
        ]
        self._run(ops, customer_id)

    def save_profile(self, customer: Customer, expected_version: int, extra: Sequence[TxOp] = ()) -> None:
        """Optimistic write of the editable fields (profile, consents, membership)."""
        ops = [
            self._table.update_op(
                customer_pk(customer.customer_id),
                self.PROFILE,
                "SET #profile = :profile, #consents = :consents, #member = :member, "
                "#enrolled_at = :enrolled, #tier = :tier, #updated_at = :now, #version = :next",
                condition="#version = :expected AND #status = :active" + UNLOCKED,
                names={"#status": "status"},
                values={
                    ":profile": _profile_to_map(customer.profile),
                    ":consents": _consents_to_map(customer.consents),
                    ":member": customer.member,
                    ":enrolled": _iso(customer.enrolled_at),
                    ":tier": customer.tier,
                    ":now": _iso(customer.updated_at),
                    ":next": expected_version + 1,
                    ":expected": expected_version,
                    ":active": CustomerStatus.ACTIVE.value,
                },
                label="customer",
            ),
            *extra,
        ]
        self._run(ops, customer.customer_id)

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
                ":now": _iso(now),
                ":active": CustomerStatus.ACTIVE.value,
                **{f":l{i}": _link_entry(link, now) for i, link in enumerate(links)},
            },
            label="customer",
        )

    def _link_puts(self, customer_id: str, links: Sequence[Link], now: datetime) -> list[TxOp]:
        # Re-attaching a link the customer already owns is a no-op rather than a conflict,
        # which keeps replays and "add the same email again" harmless.
        return [
            self._table.put_op(
                _link_item(customer_id, link, now),
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
                _link_from_item(reason.old_item): str(reason.old_item["customer_id"])
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


def _points_holds_map(holds: dict[str, tuple[int, datetime]]) -> dict[str, dict[str, Any]]:
    return {k: {"points": points, "until": _iso(until)} for k, (points, until) in holds.items()}


def _link_entry(link: Link, now: datetime) -> dict[str, str]:
    return {"type": link.type, "value": link.value, "added_at": _iso(now) or ""}


def _link_item(customer_id: str, link: Link, now: datetime) -> Item:
    return {
        "pk": link_pk(link),
        "sk": "LINK",
        "type": "link",
        "link_type": link.type,
        "link_value": link.value,
        "customer_id": customer_id,
        "updated_at": _iso(now),
    }


def _link_from_item(item: Item) -> Link:
    return Link(str(item["link_type"]), str(item["link_value"]))


def _profile_to_map(profile: Profile) -> dict[str, Any]:
    return {
        "first_name": profile.first_name,
        "last_name": profile.last_name,
        "birthday": profile.birthday.isoformat() if profile.birthday else None,
        "attributes": _storable(profile.attributes),
    }


def _consents_to_map(consents: Consents) -> dict[str, bool]:
    return {"email": consents.email, "sms": consents.sms, "mail": consents.mail}


def customer_to_item(c: Customer) -> Item:
    return {
        "pk": customer_pk(c.customer_id),
        "sk": CustomerRepository.PROFILE,
        "type": "customer",
        "customer_id": c.customer_id,
        "member": c.member,
        "status": c.status.value,
        "profile": _profile_to_map(c.profile),
        "consents": _consents_to_map(c.consents),
        "links": {link.key: _link_entry(link, c.created_at) for link in c.links},
        "created_at": _iso(c.created_at),
        "enrolled_at": _iso(c.enrolled_at),
        "updated_at": _iso(c.updated_at or c.created_at),
        "origin_store_id": c.origin_store_id,
        "tier": c.tier,
        "points_available": c.points.available,
        "points_pending": c.points.pending,
        "points_lifetime": c.points.lifetime,
        "txn_count": c.stats.transactions,
        "spend": str(c.stats.spend),
        "first_purchase_at": _iso(c.stats.first_purchase_at),
        "last_purchase_at": _iso(c.stats.last_purchase_at),
        "merged_into": c.merged_into,
        "merged_from": list(c.merged_from) or None,
        "version": c.version,
        "earned_by_month": dict(c.earned_by_month),
        "ledger_seq": c.ledger_seq,
        "price_groups": set(c.price_groups) or None,
        "points_holds": _points_holds_map(c.points_holds),
        "merge_lock": c.merge_lock,
        "merge_count": c.merge_count or None,
        "merges_reviewed": c.merges_reviewed or None,
        "review": c.review,
    }


def customer_from_item(item: Item) -> Customer:
    profile = item.get("profile") or {}
    consents = item.get("consents") or {}
    links = sorted(
        (Link(str(v["type"]), str(v["value"])) for v in (item.get("links") or {}).values()),
        key=lambda link: (link.type, link.value),
    )
    birthday = profile.get("birthday")
    return Customer(
        customer_id=str(item["customer_id"]),
        member=bool(item.get("member")),
        status=CustomerStatus(item.get("status", "active")),
        profile=Profile(
            first_name=profile.get("first_name"),
            last_name=profile.get("last_name"),
            birthday=date.fromisoformat(birthday) if birthday else None,
            attributes=_plain(profile.get("attributes") or {}),
        ),
        consents=Consents(
            email=bool(consents.get("email")), sms=bool(consents.get("sms")), mail=bool(consents.get("mail"))
        ),
        links=tuple(links),
        created_at=_dt(item["created_at"]) or datetime.min,
        enrolled_at=_dt(item.get("enrolled_at")),
        updated_at=_dt(item.get("updated_at")),
        origin_store_id=item.get("origin_store_id"),
        tier=item.get("tier"),
        points=PointsSummary(
            available=int(item.get("points_available", 0)),
            pending=int(item.get("points_pending", 0)),
            lifetime=int(item.get("points_lifetime", 0)),
        ),
        stats=Stats(
            transactions=int(item.get("txn_count", 0)),
            spend=Decimal(str(item.get("spend", "0.00"))),
            first_purchase_at=_dt(item.get("first_purchase_at")),
            last_purchase_at=_dt(item.get("last_purchase_at")),
        ),
        merged_into=item.get("merged_into"),
        merged_from=tuple(item.get("merged_from") or ()),
        version=int(item.get("version", 1)),
        earned_by_month={k: int(v) for k, v in (item.get("earned_by_month") or {}).items()},
        ledger_seq=int(item.get("ledger_seq", 0)),
        price_groups=frozenset(str(g) for g in (item.get("price_groups") or ())),
        points_holds={
            k: (int(v["points"]), _dt(v["until"]) or datetime.min)
            for k, v in (item.get("points_holds") or {}).items()
        },
        merge_lock=item.get("merge_lock"),
        merge_count=int(item.get("merge_count") or 0),
        merges_reviewed=int(item.get("merges_reviewed") or 0),
        review=item.get("review"),
    )


# ---------------------------------------------------------------------------------------------
# Stores, programme, API keys, idempotency
# ---------------------------------------------------------------------------------------------


class StoreRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def get(self, store_id: str) -> Store | None:
        item = self._table.get(f"STORE#{store_id}", "STORE", consistent=False)
        return _store_from_item(item) if item else None

    def put(self, store: Store, now: datetime) -> bool:
        """Create or replace; True when it created the store."""
        return None is self._table.put_returning_old(
            {
                "pk": f"STORE#{store.store_id}",
                "sk": "STORE",
                "gsi1pk": "STORES",
                "gsi1sk": store.store_id,
                "type": "store",
                "store_id": store.store_id,
                "channel": store.channel.value,
                "format": store.format,
                "name": store.name,
                "attributes": _storable(store.attributes),
                "updated_at": _iso(now),
            }
        )

    def list(self, limit: int, cursor: str | None) -> tuple[list[Store], str | None]:
        items, next_cursor = self._table.query("STORES", index="gsi1", limit=limit, cursor=cursor)
        return [_store_from_item(i) for i in items], next_cursor


def _store_from_item(item: Item) -> Store:
    return Store(
        store_id=str(item["store_id"]),
        channel=Channel(item["channel"]),
        format=item.get("format"),
        name=item.get("name"),
        attributes=_plain(item.get("attributes") or {}),
    )


class ProgrammeRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def get(self) -> Programme | None:
        from loyalty.domain.programme import Programme  # pydantic models cost cold-start time

        item = self._table.get("PROGRAMME", "CONFIG", consistent=False)
        return Programme.model_validate_json(item["config"]) if item else None

    def put(self, programme: Programme, now: datetime) -> None:
        self._table.put(
            {
                "pk": "PROGRAMME",
                "sk": "CONFIG",
                "config": programme.model_dump_json(),
                "updated_at": _iso(now),
            }
        )


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    kind: KeyKind
    store_id: str | None
    name: str
    created_at: datetime
    revoked_at: datetime | None = None
    key_hash: str = ""

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class ApiKeyRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def create(self, record: ApiKeyRecord) -> None:
        meta = _key_item(record) | {
            "pk": "APIKEYS",
            "sk": f"KEY#{record.key_id}",
            "key_hash": record.key_hash,
        }
        lookup = _key_item(record) | {"pk": f"KEYHASH#{record.key_hash}", "sk": "KEYHASH"}
        self._table.transact(
            [
                self._table.put_op(meta, "attribute_not_exists(pk)"),
                self._table.put_op(lookup, "attribute_not_exists(pk)"),
            ]
        )

    def by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        item = self._table.get(f"KEYHASH#{key_hash}", "KEYHASH", consistent=True)
        return _key_from_item(item) if item else None

    def get(self, key_id: str) -> ApiKeyRecord | None:
        item = self._table.get("APIKEYS", f"KEY#{key_id}")
        return _key_from_item(item) if item else None

    def list(self, limit: int, cursor: str | None) -> tuple[list[ApiKeyRecord], str | None]:
        items, next_cursor = self._table.query("APIKEYS", sk_prefix="KEY#", limit=limit, cursor=cursor)
        return [_key_from_item(i) for i in items], next_cursor

    def revoke(self, record: ApiKeyRecord, now: datetime) -> None:
        update = "SET #revoked_at = if_not_exists(#revoked_at, :now)"
        try:
            self._table.transact(
                [
                    self._table.update_op(
                        "APIKEYS",
                        f"KEY#{record.key_id}",
                        update,
                        "attribute_exists(pk)",
                        values={":now": _iso(now)},
                    ),
                    self._table.update_op(
                        f"KEYHASH#{record.key_hash}",
                        "KEYHASH",
                        update,
                        "attribute_exists(pk)",
                        values={":now": _iso(now)},
                    ),
                ]
            )
        except TransactionCancelled:
            raise ApiKeyNotFound(f"API key {record.key_id} does not exist") from None


def _key_item(record: ApiKeyRecord) -> Item:
    return {
        "type": "api_key",
        "key_id": record.key_id,
        "kind": record.kind.value,
        "store_id": record.store_id,
        "name": record.name,
        "created_at": _iso(record.created_at),
        "revoked_at": _iso(record.revoked_at),
    }


def _key_from_item(item: Item) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=str(item["key_id"]),
        kind=KeyKind(item["kind"]),
        store_id=item.get("store_id"),
        name=str(item.get("name", "")),
        created_at=_dt(item["created_at"]) or datetime.min,
        revoked_at=_dt(item.get("revoked_at")),
        key_hash=str(item.get("key_hash", "")),
    )


class IdempotencyStore:
    """Writes a request's first response in the same transaction as its effect.

    Two kinds of record, both labelled "idempotency" so that the table answers a second write with
    a replay or a mismatch: an `Idempotency-Key` (IDEM#<calling key>#<key>, kept 32 days) and a
    caller-owned `request_id` (REQUEST#<store>#<id>, kept for ever, like a transaction_id)."""

    RETENTION = timedelta(days=32)  # the contract promises at least 31

    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    @staticmethod
    def key(scope: str, key: str, forever: bool = False) -> tuple[str, str]:
        return (f"REQUEST#{scope}#{key}", "REQUEST") if forever else (f"IDEM#{scope}#{key}", "IDEM")

    def find(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Item]:
        """The records that exist already, in one read: a replay can be answered before any work."""
        if not keys:
            return {}
        return {(str(i["pk"]), str(i["sk"])): i for i in self._table.batch_get(list(keys))}

    def record_op(
        self,
        scope: str,
        key: str,
        fingerprint: str,
        response: StoredResponse,
        now: datetime,
        forever: bool = False,
    ) -> TxOp:
        pk, sk = self.key(scope, key, forever)
        item: Item = {
            "pk": pk,
            "sk": sk,
            "type": "request" if forever else "idempotency",
            "fingerprint": fingerprint,
            "status_code": response.status_code,
            "body": response.body,
            "headers": json.dumps(response.headers),
            "created_at": _iso(now),
        }
        if not forever:
            item["expires_at"] = int((now + self.RETENTION).timestamp())
        return self._table.put_op(item, "attribute_not_exists(pk)", label="idempotency")


__all__ = [
    "ApiKeyRecord",
    "ApiKeyRepository",
    "ConcurrentUpdate",
    "CustomerRepository",
    "IdempotencyStore",
    "LinksTaken",
    "ProgrammeRepository",
    "StaleCustomer",
    "StoreRepository",
    "StoredResponse",
]
