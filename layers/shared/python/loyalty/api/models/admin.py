"""API models: admin."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    StringConstraints,
    field_validator,
)

from loyalty.api.models.common import Name, StoreId, Strict, _check_attributes
from loyalty.domain.access import KeyKind
from loyalty.domain.models import Model
from loyalty.domain.stores import Channel, Store


class ApiKeyCreate(Strict):
    kind: KeyKind
    store_id: StoreId | None = None
    name: Name


class ApiKeyOut(Model):
    key_id: str
    kind: KeyKind
    store_id: str | None
    name: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyIssued(ApiKeyOut):
    api_key: str = Field(description="the secret; shown only in this response")


class ApiKeyList(Model):
    items: list[ApiKeyOut]
    next_cursor: str | None


class StorePut(Strict):
    channel: Channel
    format: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    name: Name | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    _attributes = field_validator("attributes")(_check_attributes)

    def to_domain(self, store_id: str) -> Store:
        return Store(store_id, self.channel, self.format, self.name, dict(self.attributes))


class StoreOut(Model):
    store_id: str
    channel: Channel
    format: str | None
    name: str | None
    attributes: dict[str, Any]

    @classmethod
    def of(cls, store: Store) -> StoreOut:
        return cls(
            store_id=store.store_id,
            channel=store.channel,
            format=store.format,
            name=store.name,
            attributes=store.attributes,
        )


class StoreList(Model):
    items: list[StoreOut]
    next_cursor: str | None


class Health(Model):
    status: Literal["ok"]
    version: str
