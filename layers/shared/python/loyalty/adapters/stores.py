"""The store repository: STORE#<store_id> / STORE, listed through gsi1 (STORES / <store_id>)."""

from __future__ import annotations

from datetime import datetime

from loyalty.adapters.codec import plain, storable, to_iso
from loyalty.adapters.dynamo import DynamoTable, Item
from loyalty.domain.stores import Channel, Store


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
                "attributes": storable(store.attributes),
                "updated_at": to_iso(now),
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
        attributes=plain(item.get("attributes") or {}),
    )
