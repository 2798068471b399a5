"""API keys. Key layout:

APIKEYS                 KEY#<key_id>        an API key's metadata, never the secret
KEYHASH#<hmac>          KEYHASH             what the authorizer reads: one GetItem per call
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from loyalty.adapters.codec import from_iso, to_iso
from loyalty.adapters.dynamo import DynamoTable, Item, TransactionCancelled
from loyalty.domain.access import KeyKind
from loyalty.domain.errors import ApiKeyNotFound


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
                        values={":now": to_iso(now)},
                    ),
                    self._table.update_op(
                        f"KEYHASH#{record.key_hash}",
                        "KEYHASH",
                        update,
                        "attribute_exists(pk)",
                        values={":now": to_iso(now)},
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
        "created_at": to_iso(record.created_at),
        "revoked_at": to_iso(record.revoked_at),
    }


def _key_from_item(item: Item) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=str(item["key_id"]),
        kind=KeyKind(item["kind"]),
        store_id=item.get("store_id"),
        name=str(item.get("name", "")),
        created_at=from_iso(item["created_at"]) or datetime.min,
        revoked_at=from_iso(item.get("revoked_at")),
        key_hash=str(item.get("key_hash", "")),
    )
