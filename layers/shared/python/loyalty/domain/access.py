"""Who may call what: the principal a key stands for, and the access level of a route."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from loyalty.domain.errors import Forbidden


class KeyKind(StrEnum):
    POS = "pos"
    WEB = "web"
    MARKETER = "marketer"
    ADMIN = "admin"

    @property
    def store_bound(self) -> bool:
        """Tills and web shops act for one store; marketers and operators for the whole brand."""
        return self in (KeyKind.POS, KeyKind.WEB)


class Access(StrEnum):
    """The access level of a route, as the route table states it."""

    PUBLIC = "public"  # no key (health, docs)
    CLIENT = "client"  # any valid key; pos/web keys only for their own store
    ADMIN = "admin"  # admin keys only


class Area(StrEnum):
    """What a route works on, where a marketer key may work on it (spec "Console"): everything under
    /v1/admin/ for these, reading customers and issuing coupons. A route declares its area in the
    route table; a route with none (keys, stores, the programme, sales, redemptions, merges, export,
    erasure) is not a marketer's, whatever its access level."""

    OFFERS = "offers"
    PRICE_GROUPS = "price-groups"
    REWARDS = "rewards"
    CHALLENGES = "challenges"
    BADGES = "badges"
    SEGMENTS = "segments"
    TEMPLATES = "templates"
    CAMPAIGNS = "campaigns"
    REPORTS = "reports"
    OUTBOX = "outbox"  # the outbox and the direct-mail print files it makes
    CUSTOMER_READS = "customer-reads"  # the 360° view, lookup, timeline, history, a customer's coupons
    COUPON_ISSUE = "coupon-issue"


# Every area is a marketer's: the enum lists exactly the rights the contract gives them.
MARKETER_AREAS: frozenset[Area] = frozenset(Area)


class StoreScope(StrEnum):
    """How a route is bound to a store: which store a pos/web key must own for the call to pass."""

    NONE = "none"  # not store-bound: brand-wide data (customers, coupons, gift cards) or admin-only
    BODY = "body"  # the body's store_id (absent: the key's own store)
    PATH = "path"  # the {store_id} path parameter
    # The store of the existing record the path names (a redemption, a hold): its caller-owned id
    # is unique per store, so the `store_id` query names the store (default: the key's own).
    RECORD = "record"


def kind_may_call(kind: KeyKind, access: Access, area: Area | None) -> bool:
    """May a key of this kind call a route of this access level and area at all (its store aside)?
    Marketers go by the area alone: some of their routes are admin routes, some client ones."""
    if access is Access.PUBLIC or kind is KeyKind.ADMIN:
        return True
    if kind is KeyKind.MARKETER:
        return area in MARKETER_AREAS
    return access is Access.CLIENT


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    kind: KeyKind
    store_id: str | None

    @property
    def is_admin(self) -> bool:
        return self.kind is KeyKind.ADMIN

    def may_call(self, access: Access, area: Area | None = None) -> bool:
        return kind_may_call(self.kind, access, area)

    def acts_for(self, store_id: str | None) -> bool:
        """May this key act for `store_id`? Admin keys act for every store, others for their own;
        None (no store named, or a record of no store) means the key's own."""
        return self.is_admin or store_id is None or store_id == self.store_id

    def ensure_store(self, store_id: str | None) -> str | None:
        """The store a request acts for: a till's key acts only for its own store."""
        if self.is_admin:
            return store_id
        if not self.acts_for(store_id):
            raise Forbidden(f"this key acts for store {self.store_id!r}, not {store_id!r}", store_id=store_id)
        return self.store_id


def generate_api_key_secret() -> str:
    return "lk_" + secrets.token_urlsafe(32)


def hash_api_key(secret: str, pepper: str) -> str:
    """Keys are stored only as a keyed hash: a leaked table does not leak usable keys."""
    return hmac.new(pepper.encode(), secret.encode(), hashlib.sha256).hexdigest()
