"""Small shared pieces of the service layer: the clock and the idempotency request."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from loyalty.domain.errors import IdempotencyKeyMismatch, RedemptionReversed
from loyalty.domain.replay import StoredResponse
from loyalty.services.replay import IdempotentReplay

if TYPE_CHECKING:
    from loyalty.adapters.dynamo import TxOp
    from loyalty.adapters.idempotency import IdempotencyStore


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class IdempotencyRequest:
    """An `Idempotency-Key` (or a caller-owned id) and how to render the first response.

    `render` turns the use case's result into the response that a replay must repeat, so the
    response can be stored in the same transaction as the effect. `forever`: a caller-owned
    `request_id` (scoped to a store, never expires) rather than an `Idempotency-Key` (scoped to the
    calling key, kept 32 days).
    """

    scope: str
    key: str
    fingerprint: str
    render: Callable[[Any], StoredResponse]
    forever: bool = False


# What a use case is given: nothing, one request (an Idempotency-Key), or several (a key and a
# caller-owned request_id); every one of them is written with the effect.
Idempotency = IdempotencyRequest | Sequence[IdempotencyRequest] | None


def _requests(given: Idempotency) -> list[IdempotencyRequest]:
    if given is None:
        return []
    return [given] if isinstance(given, IdempotencyRequest) else list(given)


def idempotency_ops(store: IdempotencyStore, given: Idempotency, result: Any, now: datetime) -> list[TxOp]:
    return [
        store.record_op(r.scope, r.key, r.fingerprint, r.render(result), now, forever=r.forever)
        for r in _requests(given)
    ]


def rendering(given: Idempotency, convert: Callable[[Any], Any]) -> Idempotency:
    """The same requests, rendering `convert(result)`: a use case that hands its effect to another
    service (which returns its own kind of result) still records the response its caller gave."""

    def converted(render: Callable[[Any], StoredResponse]) -> Callable[[Any], StoredResponse]:
        return lambda result: render(convert(result))

    return tuple(replace(r, render=converted(r.render)) for r in _requests(given))


def record_unchanged(
    store: IdempotencyStore,
    given: Idempotency,
    result: Any,
    now: datetime,
    commit: Callable[[list[TxOp]], None],
) -> None:
    """A call that finds its work done already (a hold_id seen before, a second release, a retried
    capture, a redemption reversed before) still records its answer under its key: a replay answers
    it, and the key cannot be reused for another request."""
    ops = idempotency_ops(store, given, result, now)
    if ops:
        commit(ops)


def replay_if_recorded(store: IdempotencyStore, given: Idempotency) -> None:
    """Answer a request seen before with its first response (or 422 when the body differs) before
    doing any work: later state — a card closed, a link now present — must not change the answer.
    The conditional write of the record with the effect still decides races between first tries."""
    wanted = {store.key(r.scope, r.key, r.forever): r for r in _requests(given)}
    found = store.find(list(wanted))
    for key, request in wanted.items():
        item = found.get(key)
        if item is None:
            continue
        if item.get("fingerprint") != request.fingerprint:
            what = "request_id" if request.forever else "Idempotency-Key"
            raise IdempotencyKeyMismatch(f"this {what} was already used for a different request")
        raise IdempotentReplay(
            int(str(item["status_code"])), str(item["body"]), json.loads(str(item.get("headers") or "{}"))
        )


def replay_caller_owned(existing: dict[str, object], fingerprint: str, what: str) -> NoReturn:
    """A caller-owned id (transaction_id, redemption_id) seen before: the first answer again,
    or 422 when the body differs, or 409 when that redemption was reversed since."""
    if existing.get("status") == "reversed":
        raise RedemptionReversed(f"{what} {existing.get('redemption_id')} was reversed; use a new id")
    if existing.get("fingerprint") != fingerprint:
        raise IdempotencyKeyMismatch(f"this {what} was already used with a different body")
    raise IdempotentReplay(int(str(existing.get("status_code", 201))), str(existing["body"]))


def backoff(attempt: int, sleep: Callable[[float], None] = time.sleep) -> None:
    """Optimistic writes that lost a race wait a little (full jitter) before reading again."""
    if attempt:
        sleep(random.uniform(0, min(0.25, 0.005 * 2**attempt)))  # noqa: S311 - jitter, not security


class WorkQueue(Protocol):
    """Where requests for background work (merges and their undos) wait, FIFO per group."""

    def send(self, body: dict[str, str], group: str, dedupe_id: str) -> None: ...
