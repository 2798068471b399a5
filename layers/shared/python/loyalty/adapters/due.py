"""The sweep's index of what falls due (sparse gsi2: DUE#<shard> / <due time>#...).

Two kinds of item sit in it: lots (ledger entries that mature, leave the tier window or expire)
and holds (while held, until their expiry). One Query per shard returns both, earliest first.
"""

from __future__ import annotations

from datetime import datetime

from loyalty.adapters.codec import to_iso
from loyalty.adapters.dynamo import DynamoTable
from loyalty.adapters.stored_value import HoldRecord, hold_from_item
from loyalty.adapters.transactions import DUE_SHARDS, ledger_from_item
from loyalty.domain.ledger import LedgerEntry

Due = LedgerEntry | HoldRecord


class DueIndex:
    shards = DUE_SHARDS

    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def due(self, shard: int, until: datetime, cursor: str | None) -> tuple[list[Due], str | None]:
        """Lots and holds of one shard due at or before `until`, earliest first (copies: re-read)."""
        items, next_cursor = self._table.query(
            f"DUE#{shard}", index="gsi2", sk_max=(to_iso(until) or "") + "#\uffff", limit=100, cursor=cursor
        )
        return [
            hold_from_item(i) if i.get("type") == "hold" else ledger_from_item(i) for i in items
        ], next_cursor
