"""The item codec: how domain values become DynamoDB attributes and come back.

Every adapter writes timestamps, free-form attributes, customer keys and the customer profile item
the same way; this module is the one place that says how. Key layout of the records defined here:

    CUST#<customer_id>      PROFILE             the profile, its link map, counters and version
    LINK#<type>#<value>     LINK                which customer a link points to (uniqueness)
"""

from __future__ import annotations

import json
import zlib
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from loyalty.adapters.dynamo import Item
from loyalty.adapters.lots import summary_from_attr
from loyalty.domain.customers import (
    Address,
    Consents,
    Customer,
    CustomerStatus,
    PointsSummary,
    Profile,
    Stats,
)
from loyalty.domain.links import ANONYMOUS_ID, Link
from loyalty.domain.scores import Scores

PROFILE_SK = "PROFILE"


# ---- values ---------------------------------------------------------------------------------


def to_iso(value: datetime | None) -> str | None:
    """UTC instants as ISO-8601 with a Z: they sort as strings, so sort keys built from them sort by time."""
    return value.isoformat().replace("+00:00", "Z") if value else None


def from_iso(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


def plain(value: Any) -> Any:
    """DynamoDB returns numbers as Decimal; free-form attributes go back as JSON numbers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def storable(value: Any) -> Any:
    """JSON floats become Decimal (DynamoDB has no float); everything else as is."""
    return json.loads(json.dumps(value), parse_float=Decimal)


# ---- keys -----------------------------------------------------------------------------------


def customer_pk(customer_id: str) -> str:
    return f"CUST#{customer_id}"


def link_pk(link: Link) -> str:
    return f"LINK#{link.key}"


# ---- the customer profile and its links ---------------------------------------------------


def points_holds_map(holds: dict[str, tuple[int, datetime]]) -> dict[str, dict[str, Any]]:
    return {k: {"points": points, "until": to_iso(until)} for k, (points, until) in holds.items()}


def link_entry(link: Link, now: datetime) -> dict[str, str]:
    return {"type": link.type, "value": link.value, "added_at": to_iso(now) or ""}


def link_item(customer_id: str, link: Link, now: datetime) -> Item:
    item: Item = {
        "pk": link_pk(link),
        "sk": "LINK",
        "type": "link",
        "link_type": link.type,
        "link_value": link.value,
        "customer_id": customer_id,
        "updated_at": to_iso(now),
    }
    if link.type == ANONYMOUS_ID:
        item |= identification_due(link.value, now + IDENTIFICATION_SECOND_PASS)
    return item


# An anonymous_id link (an identified visitor) stays in the sparse due index (gsi2) until the second
# pass of its attribution has run: the first pass may miss events committed just before the link
# that the timeline index did not show yet (services/attribution.py).
IDENTIFICATION_SHARDS = 4
IDENTIFICATION_SECOND_PASS = timedelta(minutes=2)


def identification_due(anonymous_id: str, due: datetime) -> Item:
    shard = zlib.crc32(anonymous_id.encode()) % IDENTIFICATION_SHARDS
    return {"gsi2pk": f"IDENTIFIED#{shard}", "gsi2sk": f"{to_iso(due)}#{anonymous_id}"}


def link_from_item(item: Item) -> Link:
    return Link(str(item["link_type"]), str(item["link_value"]))


def profile_to_map(profile: Profile) -> dict[str, Any]:
    """Unset fields are left out rather than stored as NULL: the profile item is rewritten by every
    sale (transactionally, 2 WCU per started KB), so its bytes are paid again and again."""
    full = {
        "first_name": profile.first_name,
        "last_name": profile.last_name,
        "birthday": profile.birthday.isoformat() if profile.birthday else None,
        "attributes": storable(profile.attributes),
        "country": profile.country,
        "timezone": profile.timezone,
        "favourite_store_id": profile.favourite_store_id,
        "address": address_to_map(profile.address),
    }
    return {k: v for k, v in full.items() if v is not None and v != {}}


def address_to_map(address: Address | None) -> dict[str, Any] | None:
    if address is None:
        return None
    return {
        "line1": address.line1,
        "line2": address.line2,
        "postal_code": address.postal_code,
        "city": address.city,
        "country": address.country,
    }


def address_from_map(data: Any) -> Address | None:
    if not data:
        return None
    return Address(
        line1=str(data["line1"]),
        line2=data.get("line2"),
        postal_code=data.get("postal_code"),
        city=str(data["city"]),
        country=str(data["country"]),
    )


def consents_to_map(consents: Consents) -> dict[str, bool]:
    return {"email": consents.email, "sms": consents.sms, "mail": consents.mail}


def scores_to_map(scores: Scores) -> dict[str, Any]:
    return {"r": scores.r, "f": scores.f, "m": scores.m, "computed_at": to_iso(scores.computed_at)}


def scores_from_map(data: Any) -> Scores | None:
    if not data:
        return None
    return Scores(
        r=int(data["r"]),
        f=int(data["f"]),
        m=int(data["m"]),
        computed_at=from_iso(data.get("computed_at")) or datetime.min,
    )


def customer_to_item(c: Customer) -> Item:
    return {
        "pk": customer_pk(c.customer_id),
        "sk": PROFILE_SK,
        "type": "customer",
        "customer_id": c.customer_id,
        "member": c.member,
        "status": c.status.value,
        "profile": profile_to_map(c.profile),
        "consents": consents_to_map(c.consents),
        "links": {link.key: link_entry(link, c.created_at) for link in c.links},
        "created_at": to_iso(c.created_at),
        "enrolled_at": to_iso(c.enrolled_at),
        "updated_at": to_iso(c.updated_at or c.created_at),
        "origin_store_id": c.origin_store_id,
        "tier": c.tier,
        "points_available": c.points.available,
        "points_pending": c.points.pending,
        "points_lifetime": c.points.lifetime,
        "txn_count": c.stats.transactions,
        "spend": str(c.stats.spend),
        "first_purchase_at": to_iso(c.stats.first_purchase_at),
        "last_purchase_at": to_iso(c.stats.last_purchase_at),
        "merged_into": c.merged_into,
        "merged_from": list(c.merged_from) or None,
        "version": c.version,
        "earned_by_month": dict(c.earned_by_month),
        "ledger_seq": c.ledger_seq,
        "price_groups": set(c.price_groups) or None,
        "points_holds": points_holds_map(c.points_holds),
        "merge_lock": c.merge_lock,
        "merge_count": c.merge_count or None,
        "merges_reviewed": c.merges_reviewed or None,
        "review": c.review,
        "badges": {k: to_iso(v) for k, v in c.badges.items()} or None,
        "confirm_by": to_iso(c.confirm_by),
        "scores": scores_to_map(c.scores) if c.scores else None,
        **(
            confirmation_due_key(c.customer_id, c.confirm_by)
            if c.pending_confirmation and c.confirm_by
            else {}
        ),
    }


# A web enrolment awaiting its confirmation sits in the sparse due index (gsi2) until it is confirmed
# or lapses; the sweep reads the entries whose window has ended.
PENDING_CONFIRMATIONS = "CONFIRM#PENDING"


def confirmation_due_key(customer_id: str, confirm_by: datetime) -> dict[str, str]:
    return {"gsi2pk": PENDING_CONFIRMATIONS, "gsi2sk": f"{to_iso(confirm_by)}#{customer_id}"}


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
            attributes=plain(profile.get("attributes") or {}),
            country=profile.get("country"),
            timezone=profile.get("timezone"),
            favourite_store_id=profile.get("favourite_store_id"),
            address=address_from_map(profile.get("address")),
        ),
        consents=Consents(
            email=bool(consents.get("email")), sms=bool(consents.get("sms")), mail=bool(consents.get("mail"))
        ),
        links=tuple(links),
        created_at=from_iso(item["created_at"]) or datetime.min,
        enrolled_at=from_iso(item.get("enrolled_at")),
        updated_at=from_iso(item.get("updated_at")),
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
            first_purchase_at=from_iso(item.get("first_purchase_at")),
            last_purchase_at=from_iso(item.get("last_purchase_at")),
        ),
        merged_into=item.get("merged_into"),
        merged_from=tuple(item.get("merged_from") or ()),
        version=int(item.get("version", 1)),
        earned_by_month={k: int(v) for k, v in (item.get("earned_by_month") or {}).items()},
        ledger_seq=int(item.get("ledger_seq", 0)),
        price_groups=frozenset(str(g) for g in (item.get("price_groups") or ())),
        points_holds={
            k: (int(v["points"]), from_iso(v["until"]) or datetime.min)
            for k, v in (item.get("points_holds") or {}).items()
        },
        merge_lock=item.get("merge_lock"),
        merge_count=int(item.get("merge_count") or 0),
        merges_reviewed=int(item.get("merges_reviewed") or 0),
        review=item.get("review"),
        badges={k: from_iso(v) or datetime.min for k, v in (item.get("badges") or {}).items()},
        lots=summary_from_attr(str(item["customer_id"]), item.get("lots")),
        confirm_by=from_iso(item.get("confirm_by")),
        scores=scores_from_map(item.get("scores")),
    )
