"""Helpers the routers share: who is calling, JSON replies, idempotency keys, paging."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import Router
from pydantic import BaseModel

from loyalty.api.cursors import CursorSeal, list_binding
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.errors import Unauthenticated, ValidationFailed
from loyalty.domain.replay import StoredResponse
from loyalty.services.ports import IdempotencyRequest

IDEMPOTENCY_HEADER = "idempotency-key"
MAX_IDEMPOTENCY_KEY = 255
BRAND_SCOPE = "-"  # the request_id scope of keys that belong to no store
DEFAULT_LIMIT, MAX_LIMIT = 50, 200


def json_body(text: str) -> Any:
    """The request body as powertools reads it, except that JSON Python cannot hold (an integer of
    more than 4,300 digits, nesting deeper than the interpreter recurses) is malformed JSON, a 400,
    like any other unreadable body, rather than a ValueError or RecursionError (a 500)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as exc:
        raise json.JSONDecodeError(str(exc) or type(exc).__name__, text, 0) from exc


def principal_from_event(event: dict[str, Any]) -> Principal | None:
    """The authorizer's verdict, as API Gateway hands it to the function."""
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    if not context.get("key_id") or context.get("kind") not in {k.value for k in KeyKind}:
        return None
    return Principal(str(context["key_id"]), KeyKind(context["kind"]), context.get("store_id") or None)


def principal(router: Router) -> Principal:
    found = router.context.get("principal")
    if not isinstance(found, Principal):
        raise Unauthenticated("send your API key in the x-api-key header")
    return found


def stored(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> StoredResponse:
    return StoredResponse(status, model.model_dump_json(), headers or {})


def reply(response: StoredResponse) -> Response:
    return Response(
        status_code=response.status_code,
        content_type="application/json",
        body=response.body,
        headers=response.headers or None,
    )


def ok(model: BaseModel, status: int = 200) -> Response:
    return reply(stored(model, status))


def no_content() -> Response:
    return Response(status_code=204, body="", headers={})


def idempotency(router: Router, render: Callable[[Any], StoredResponse]) -> IdempotencyRequest | None:
    """The request's Idempotency-Key, scoped to the calling key, with a fingerprint of the request."""
    event = router.current_event
    key = event.headers.get(IDEMPOTENCY_HEADER) or event.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise ValidationFailed.at(
            ("header", "Idempotency-Key"), f"1 to {MAX_IDEMPOTENCY_KEY} printable characters"
        )
    target = event.path
    if event.query_string_parameters:
        # An admin's `?store_id=` names whose hold or redemption is meant: another store, another request.
        target += "?" + urlencode(sorted(event.query_string_parameters.items()))
    return IdempotencyRequest(
        scope=principal(router).key_id,
        key=key,
        fingerprint=request_fingerprint(event.http_method, target, event.body),
        render=render,
    )


def replay_guards(
    router: Router,
    render: Callable[[Any], StoredResponse],
    request_id: str | None,
    store_id: str | None = None,
) -> tuple[IdempotencyRequest, ...]:
    """What makes a value-creating call exactly once: its Idempotency-Key (if sent) and its
    caller-owned `request_id` (if given), both written with the effect. A request_id is the
    store's for ever, like a transaction_id: `store_id` where the body names one, else the key's
    store; keys without a store (admin, marketer) share one brand-wide scope."""
    guards = [found] if (found := idempotency(router, render)) is not None else []
    if request_id is not None:
        event = router.current_event
        guards.append(
            IdempotencyRequest(
                scope=store_id or principal(router).store_id or BRAND_SCOPE,
                key=request_id,
                fingerprint=request_fingerprint(event.http_method, event.path, event.body),
                render=render,
                forever=True,
            )
        )
    return tuple(guards)


def request_fingerprint(method: str, path: str, body: str | None) -> str:
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")) if body else ""
    except ValueError:
        canonical = body or ""
    return hashlib.sha256(f"{method.upper()} {path}\n{canonical}".encode()).hexdigest()


def page(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed.at(("query", "limit"), f"between 1 and {MAX_LIMIT}")
    return limit


def cursor_in(router: Router, cursor: str | None) -> str | None:
    """The repository's cursor inside the client's, checked against this list (a 400 otherwise)."""
    return _cursors().open(cursor, _listing(router))


def cursor_out(router: Router, inner: str | None) -> str | None:
    """The repository's next cursor as the client sees it: sealed for this list only."""
    return _cursors().seal(inner, _listing(router))


def _listing(router: Router) -> str:
    event = router.current_event.raw_event
    return list_binding(
        str(event.get("resource", "")), event.get("pathParameters"), event.get("queryStringParameters")
    )


def _cursors() -> CursorSeal:
    # Imported here: the composition root pulls in boto3 (about 250 ms cold), which functions that
    # serve no list (health, with its docs) would otherwise pay on every cold start.
    from loyalty.bootstrap import container

    found = container()
    return CursorSeal(key=found.cursor_key, now=found.clock.now)
