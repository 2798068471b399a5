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
    ADMIN = "admin"


class Access(StrEnum):
    """The access level of a route, as the route table states it."""

    PUBLIC = "public"  # no key (health, docs)
    CLIENT = "client"  # any valid key; pos/web keys only for their own store
    ADMIN = "admin"  # admin keys only


class StoreScope(StrEnum):
    """How a route is bound to a store: which store a pos/web key must own for the call to pass."""

    NONE = "none"  # not store-bound: brand-wide data (customers, coupons, gift cards) or admin-only
    BODY = "body"  # the body's store_id (absent: the key's own store)
    PATH = "path"  # the {store_id} path parameter
    # The store of the existing record the path names (a redemption, a hold): its caller-owned id
    # is unique per store, so the `store_id` query names the store (default: the key's own).
    RECORD = "record"


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    kind: KeyKind
    store_id: str | None

    @property
    def is_admin(self) -> bool:
        return self.kind is KeyKind.ADMIN

    def may_call(self, access: Access) -> bool:
        return access is not Access.ADMIN or self.is_admin

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
