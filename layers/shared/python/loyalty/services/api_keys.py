"""API keys: issued to tills, web shops and marketers; stored only as a keyed hash."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from loyalty.adapters.api_keys import ApiKeyRecord, ApiKeyRepository
from loyalty.domain.access import KeyKind, Principal, generate_api_key_secret, hash_api_key
from loyalty.domain.errors import ApiKeyNotFound, StoreNotFound, Unauthenticated, ValidationFailed
from loyalty.domain.ids import is_plausible_id, new_id
from loyalty.services.config import StoreService
from loyalty.services.ports import Clock


@dataclass(frozen=True)
class IssuedKey:
    record: ApiKeyRecord
    secret: str


class ApiKeyService:
    def __init__(
        self,
        *,
        repo: ApiKeyRepository,
        stores: StoreService,
        pepper: Callable[[], str],
        clock: Clock,
        new_secret: Callable[[], str] = generate_api_key_secret,
    ) -> None:
        self._repo = repo
        self._stores = stores
        self._pepper = pepper
        self._clock = clock
        self._new_secret = new_secret

    def issue(self, kind: KeyKind, store_id: str | None, name: str, secret: str | None = None) -> IssuedKey:
        """`secret` is for seeding fixed demo keys locally; the API always generates one."""
        if not kind.store_bound and store_id is not None:
            raise ValidationFailed.at(
                ("body", "store_id"), f"{kind.value} keys act for every store: leave store_id out"
            )
        if kind.store_bound:
            if store_id is None:
                raise ValidationFailed.at(
                    ("body", "store_id"), f"a {kind.value} key needs the store it acts for"
                )
            try:
                self._stores.require(store_id)
            except StoreNotFound:
                raise ValidationFailed.at(("body", "store_id"), f"unknown store {store_id!r}") from None
        plain = secret or self._new_secret()
        record = ApiKeyRecord(
            key_id=new_id(),
            kind=kind,
            store_id=store_id,
            name=name,
            created_at=self._clock.now(),
            key_hash=hash_api_key(plain, self._pepper()),
        )
        self._repo.create(record)
        return IssuedKey(record, plain)

    def authenticate(self, secret: str | None) -> Principal:
        if not secret:
            raise Unauthenticated("send your API key in the x-api-key header")
        record = self._repo.by_hash(hash_api_key(secret, self._pepper()))
        if record is None or not record.active:
            raise Unauthenticated("unknown or revoked API key")
        return Principal(record.key_id, record.kind, record.store_id)

    def list(self, limit: int, cursor: str | None) -> tuple[list[ApiKeyRecord], str | None]:
        return self._repo.list(limit, cursor)

    def revoke(self, key_id: str) -> None:
        record = self._repo.get(key_id) if is_plausible_id(key_id) else None
        if record is None:
            raise ApiKeyNotFound(f"API key {key_id} does not exist")
        self._repo.revoke(record, self._clock.now())
