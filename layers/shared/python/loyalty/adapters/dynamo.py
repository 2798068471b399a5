"""A thin, typed wrapper over the DynamoDB client.

It serialises items, asks for consumed capacity on every call (metrics and `make bench` read it),
turns botocore errors into domain errors, and retries transactions that DynamoDB cancelled only
because another transaction held one of the same items.
"""

from __future__ import annotations

import base64
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from loyalty.domain.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyMismatch,
    InvalidCursor,
    MalformedRequest,
    ServiceUnavailable,
)
from loyalty.resources import TABLE
from loyalty.services.replay import IdempotentReplay

Item = dict[str, Any]
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

_TRANSIENT = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "LimitExceededException",
}
TX_ATTEMPTS = 6
MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES = 2048, 1024
# Each index's key attributes (gsi1pk/gsi1sk, ..., tlpk/tlsk for the timeline)
INDEX_KEYS = {index.name: (index.partition_key, index.sort_key) for index in TABLE.indexes}


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items() if v is not None}


def deserialize(raw: Mapping[str, Any]) -> Item:
    return {k: _deserializer.deserialize(v) for k, v in raw.items()}


@dataclass
class TxOp:
    """One action of a TransactWriteItems call, in the client's wire format."""

    action: str  # Put | Update | Delete | ConditionCheck
    body: dict[str, Any]
    label: str = ""  # lets callers find which op a cancellation reason belongs to

    def wire(self) -> dict[str, Any]:
        return {self.action: self.body}


@dataclass
class CancelReason:
    code: str
    old_item: Item | None


@dataclass
class TransactionCancelled(Exception):
    """A condition failed. `reasons` are aligned with the ops; `labels` name them."""

    reasons: list[CancelReason]
    labels: list[str] = field(default_factory=list)

    def failed(self, label: str) -> list[CancelReason]:
        return [
            r for r, lbl in zip(self.reasons, self.labels, strict=True) if lbl == label and r.code != "None"
        ]

    def failed_labels(self) -> set[str]:
        return {lbl for r, lbl in zip(self.reasons, self.labels, strict=True) if r.code not in ("None", "")}


_NAME_TOKEN = re.compile(r"#([A-Za-z_][A-Za-z0-9_]*)")


def _expr_attrs(
    names: Mapping[str, str] | None, values: Mapping[str, Any] | None, *expressions: str | None
) -> dict[str, Any]:
    """`#attr` in an expression names the attribute `attr` unless `names` says otherwise: DynamoDB
    reserves hundreds of words (status, member, name ...), so every attribute goes through a name."""
    out: dict[str, Any] = {}
    all_names = {f"#{m}": m for e in expressions if e for m in _NAME_TOKEN.findall(e)}
    all_names.update(names or {})
    if all_names:
        out["ExpressionAttributeNames"] = all_names
    if values:
        # Unlike item attributes (where None means "leave it out"), a None value sets NULL.
        out["ExpressionAttributeValues"] = {k: _serializer.serialize(v) for k, v in values.items()}
    return out


class DynamoTable:
    def __init__(self, client: Any, table_name: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self.name = table_name
        self._sleep = sleep

    # ---- building transaction ops -------------------------------------------------------
    def put_op(
        self,
        item: Mapping[str, Any],
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        label: str = "",
    ) -> TxOp:
        body: dict[str, Any] = {"TableName": self.name, "Item": serialize(item)}
        if condition:
            body["ConditionExpression"] = condition
            body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        body.update(_expr_attrs(names, values, condition))
        return TxOp("Put", body, label)

    def update_op(
        self,
        pk: str,
        sk: str,
        update: str,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        label: str = "",
    ) -> TxOp:
        body: dict[str, Any] = {"TableName": self.name, "Key": self.key(pk, sk), "UpdateExpression": update}
        if condition:
            body["ConditionExpression"] = condition
            body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        body.update(_expr_attrs(names, values, update, condition))
        return TxOp("Update", body, label)

    def delete_op(
        self,
        pk: str,
        sk: str,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        label: str = "",
    ) -> TxOp:
        body: dict[str, Any] = {"TableName": self.name, "Key": self.key(pk, sk)}
        if condition:
            body["ConditionExpression"] = condition
            body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        body.update(_expr_attrs(names, values, condition))
        return TxOp("Delete", body, label)

    def condition_check_op(
        self,
        pk: str,
        sk: str,
        condition: str,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        label: str = "",
    ) -> TxOp:
        """A condition on another item that the transaction's writes depend on (it writes nothing)."""
        body: dict[str, Any] = {
            "TableName": self.name,
            "Key": self.key(pk, sk),
            "ConditionExpression": condition,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        body.update(_expr_attrs(names, values, condition))
        return TxOp("ConditionCheck", body, label)

    @staticmethod
    def key(pk: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    # ---- calls ----------------------------------------------------------------------------
    def get(self, pk: str, sk: str, consistent: bool = True) -> Item | None:
        if not _can_be_key(pk, sk):
            return None
        response = self._call(
            "get_item",
            TableName=self.name,
            Key=self.key(pk, sk),
            ConsistentRead=consistent,
            ReturnConsumedCapacity="TOTAL",
        )
        raw = response.get("Item")
        return deserialize(raw) if raw else None

    def batch_get(self, keys: Sequence[tuple[str, str]], consistent: bool = True) -> list[Item]:
        unique = [(pk, sk) for pk, sk in dict.fromkeys(keys) if _can_be_key(pk, sk)]
        found: list[Item] = []
        for start in range(0, len(unique), 100):
            pending: dict[str, Any] = {
                self.name: {
                    "Keys": [self.key(pk, sk) for pk, sk in unique[start : start + 100]],
                    "ConsistentRead": consistent,
                }
            }
            for attempt in range(8):
                response = self._call("batch_get_item", RequestItems=pending, ReturnConsumedCapacity="TOTAL")
                found.extend(deserialize(raw) for raw in response.get("Responses", {}).get(self.name, []))
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
                self._sleep(min(0.05 * 2**attempt, 1.0) * random.random())  # noqa: S311 - jitter
            else:
                raise ServiceUnavailable("the database is throttling reads")
        return found

    def put(
        self,
        item: Mapping[str, Any],
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "Item": serialize(item),
            "ReturnConsumedCapacity": "TOTAL",
        }
        if condition:
            kwargs["ConditionExpression"] = condition
        kwargs.update(_expr_attrs(names, values, condition))
        self._call("put_item", **kwargs)

    def query(
        self,
        pk: str,
        *,
        sk_prefix: str | None = None,
        sk_max: str | None = None,
        sk_min: str | None = None,
        index: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        newest_first: bool = False,
        consistent: bool = False,
        filter_expression: str | None = None,
        filter_values: Mapping[str, Any] | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> tuple[list[Item], str | None]:
        """One Query. `limit` counts the items read: a filter drops some of them afterwards (and
        they are paid for all the same)."""
        if not _can_be_key(pk, sk_prefix or sk_min or sk_max or ""):
            return [], None
        pk_name, sk_name = INDEX_KEYS[index] if index else ("pk", "sk")
        condition = "#pk = :pk"
        values: dict[str, Any] = {":pk": pk}
        names = {"#pk": pk_name}
        if sk_prefix:
            condition += " AND begins_with(#sk, :prefix)"
            values[":prefix"] = sk_prefix
            names["#sk"] = sk_name
        elif sk_min and sk_max:
            condition += " AND #sk BETWEEN :min AND :max"
            values[":min"], values[":max"] = sk_min, sk_max
            names["#sk"] = sk_name
        elif sk_max:
            condition += " AND #sk <= :max"
            values[":max"] = sk_max
            names["#sk"] = sk_name
        # Equality filters on plain attributes, applied to the page read (Limit counts before them).
        filter_terms = []
        for n, (attr, wanted) in enumerate(sorted((filters or {}).items())):
            names[f"#f{n}"] = attr
            values[f":f{n}"] = wanted
            filter_terms.append(f"#f{n} = :f{n}")
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": condition,
            "Limit": limit,
            "ScanIndexForward": not newest_first,
            "ReturnConsumedCapacity": "TOTAL",
            **_expr_attrs(names, {**values, **(filter_values or {})}, filter_expression),
        }
        if filter_expression:
            filter_terms.append(f"({filter_expression})")
        if filter_terms:
            kwargs["FilterExpression"] = " AND ".join(filter_terms)
        if index:
            kwargs["IndexName"] = index
        else:
            kwargs["ConsistentRead"] = consistent
        if cursor:
            kwargs["ExclusiveStartKey"] = decode_cursor(cursor)
        try:
            response = self._call("query", **kwargs)
        except ClientError as exc:
            # A start key outside this query's key range (the API signs its cursors, so only a
            # caller of this adapter can pass one): the caller's error, never a 500.
            if cursor and exc.response["Error"]["Code"] == "ValidationException":
                raise InvalidCursor("this cursor does not belong to this list") from exc
            raise
        items = [deserialize(raw) for raw in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return items, encode_cursor(last) if last else None

    def transact(self, ops: Sequence[TxOp], idempotency_label: str = "idempotency") -> None:
        """Run ops atomically. Retries transaction conflicts; raises TransactionCancelled on a
        failed condition, IdempotentReplay / IdempotencyKeyMismatch when the idempotency record
        labelled `idempotency_label` already exists."""
        labels = [op.label for op in ops]
        if len(ops) == 1 and ops[0].action != "ConditionCheck":
            self._single(ops[0], idempotency_label)
            return
        for attempt in range(TX_ATTEMPTS):
            try:
                self._call(
                    "transact_write_items",
                    TransactItems=[op.wire() for op in ops],
                    ReturnConsumedCapacity="TOTAL",
                )
                return
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                reasons = [
                    CancelReason(r.get("Code", "None"), deserialize(r["Item"]) if r.get("Item") else None)
                    for r in exc.response.get("CancellationReasons", [])
                ]
                cancelled = TransactionCancelled(reasons, labels)
                _raise_if_replay(cancelled, ops, idempotency_label)
                codes = {r.code for r in reasons}
                if "ConditionalCheckFailed" in codes:
                    raise cancelled from None
                if "ValidationError" in codes:
                    raise MalformedRequest("the request cannot be stored as given") from None
                if attempt + 1 == TX_ATTEMPTS:
                    if idempotency_label in cancelled.failed_labels():
                        raise IdempotencyKeyInUse(
                            "a request with this Idempotency-Key is still being processed"
                        ) from None
                    raise ServiceUnavailable("the records are busy; retry shortly") from None
                self._sleep(min(0.02 * 2**attempt, 0.5) * (0.5 + random.random()))  # noqa: S311

    def _single(self, op: TxOp, idempotency_label: str) -> None:
        """One item needs no transaction: a conditional write is as atomic and costs half."""
        operation = {"Put": "put_item", "Update": "update_item", "Delete": "delete_item"}[op.action]
        try:
            self._call(operation, **op.body, ReturnConsumedCapacity="TOTAL")
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            old = exc.response.get("Item")
            cancelled = TransactionCancelled(
                [CancelReason("ConditionalCheckFailed", deserialize(old) if old else None)], [op.label]
            )
            _raise_if_replay(cancelled, [op], idempotency_label)
            raise cancelled from None

    def put_returning_old(self, item: Mapping[str, Any]) -> Item | None:
        """An unconditional put that says what it replaced (None: it created the item)."""
        response = self._call(
            "put_item",
            TableName=self.name,
            Item=serialize(item),
            ReturnValues="ALL_OLD",
            ReturnConsumedCapacity="TOTAL",
        )
        old = response.get("Attributes")
        return deserialize(old) if old else None

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = getattr(self._client, operation)(**kwargs)
            return result
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in _TRANSIENT:
                raise ServiceUnavailable("the database is busy; retry shortly") from exc
            raise
        except BotoCoreError as exc:
            raise ServiceUnavailable("the database did not answer; retry shortly") from exc


def _raise_if_replay(cancelled: TransactionCancelled, ops: Sequence[TxOp], label: str) -> None:
    for index, (reason, op) in enumerate(zip(cancelled.reasons, ops, strict=True)):
        if op.label != label or reason.code != "ConditionalCheckFailed" or reason.old_item is None:
            continue
        stored = reason.old_item
        wanted = deserialize(ops[index].body["Item"])["fingerprint"]
        if stored.get("fingerprint") != wanted:
            raise IdempotencyKeyMismatch(
                "this Idempotency-Key was used for a different request",
            )
        if "body" not in stored:
            continue  # an answer rendered from the record: its owner reads the record again
        raise IdempotentReplay(
            status_code=int(stored["status_code"]),
            body=str(stored["body"]),
            headers=json.loads(stored.get("headers") or "{}"),
        )


def _can_be_key(pk: str, sk: str) -> bool:
    """Whether any item can have this key: a partition key holds at most 2,048 bytes and a sort key
    1,024 (tables and indexes alike). Past that DynamoDB refuses the read (a ValidationException, once
    a 500 for a 2,100-character id in a path); no item has such a key, so the read finds nothing and
    the caller answers its own 404."""
    return len(pk.encode()) <= MAX_PARTITION_KEY_BYTES and len(sk.encode()) <= MAX_SORT_KEY_BYTES


def encode_cursor(last_key: Mapping[str, Any]) -> str:
    plain = deserialize(last_key)
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        plain = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(plain, dict) or not all(isinstance(v, str) for v in plain.values()):
            raise ValueError("not a key")
    except (ValueError, TypeError):
        raise InvalidCursor("not a cursor this API returned") from None
    return serialize(plain)


def chunks(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
