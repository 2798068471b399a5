"""The idempotency store. Key layout:

IDEM#<key_id>#<key>     IDEM                a stored first response (TTL)
REQUEST#<store>#<id>    REQUEST             a caller-owned request_id's first response (kept)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from loyalty.adapters.codec import to_iso
from loyalty.adapters.dynamo import DynamoTable, Item, TxOp
from loyalty.domain.replay import StoredResponse


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
            "created_at": to_iso(now),
        }
        if not forever:
            item["expires_at"] = int((now + self.RETENTION).timestamp())
        return self._table.put_op(item, "attribute_not_exists(pk)", label="idempotency")
