"""Builds a function's resolver from routers and wraps it as a Lambda handler.

Every function gets the same decorator order and the same guard: the caller's principal is
taken from the authorizer's context, the route table decides who may call, and oversized bodies
are refused before anything is parsed.
"""

from __future__ import annotations

import base64
import gc
import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.router import Router
from aws_lambda_powertools.logging import correlation_paths

from loyalty import GC_THRESHOLDS
from loyalty.api import problems
from loyalty.api.http import json_body, principal_from_event
from loyalty.api.routes import Outcome, Route, expected_outcome, route_for
from loyalty.domain.access import Access, KeyKind, StoreScope
from loyalty.domain.errors import (
    DomainError,
    FieldError,
    Forbidden,
    MalformedRequest,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
)
from loyalty.domain.events import CORRELATION_ID
from loyalty.observability import logger, metrics
from loyalty.services.replay import IdempotentReplay

JSON_MEDIA_TYPE = "application/json"
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def build_app(*routers: Router) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=json_body)
    for router in routers:
        app.include_router(router)

    @app.exception_handler(DomainError)
    def _domain(error: DomainError) -> Response:
        return problems.from_domain_error(error)

    @app.exception_handler(IdempotentReplay)
    def _replay(replay: IdempotentReplay) -> Response:
        return Response(
            status_code=replay.status_code,
            content_type="application/json",
            body=replay.body,
            headers={**replay.headers, "Idempotent-Replayed": "true"},
        )

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response:
        return problems.from_validation_errors(list(error.errors()))

    @app.not_found
    def _not_found(_: Exception) -> Response:
        return problems.problem_response(404, "not-found", "Not found", "no such route")

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        logger.exception("unhandled error")
        metrics.add_metric(name="UnhandledErrors", unit="Count", value=1)
        return problems.problem_response(
            500, "internal-error", "Internal error", "something went wrong on our side; it has been logged"
        )

    return app


def guard(event: dict[str, Any]) -> Response | None:  # noqa: PLR0911 - one return per guard
    """Who may call this route (the route table's authorisation matrix), and is the body small
    enough? None means go ahead. The store a path, query or body names is checked here too (the
    services check it again where they act)."""
    route = route_for(str(event.get("httpMethod", "")), str(event.get("resource", "")))
    if route is None or route.access is Access.PUBLIC:
        return None
    caller = principal_from_event(event)
    outcome = expected_outcome(route, caller.kind if caller else None)
    if caller is None or outcome is Outcome.UNAUTHENTICATED:
        return problems.from_domain_error(Unauthenticated("send your API key in the x-api-key header"))
    if outcome is Outcome.FORBIDDEN:
        needs = "is not a marketer's" if caller.kind is KeyKind.MARKETER else "needs an admin key"
        return problems.from_domain_error(Forbidden(f"this route {needs}"))
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    if len(raw) > route.max_body:
        return problems.from_domain_error(
            PayloadTooLarge(
                f"the body may be at most {route.max_body} bytes",
                errors=[FieldError(("body",), f"at most {route.max_body} bytes")],
            )
        )
    if raw and not _sent_as_json(event):
        return problems.from_domain_error(UnsupportedMediaType("send the body as application/json"))
    if not _utf8(raw):
        return problems.from_domain_error(MalformedRequest("the body is not valid JSON: not UTF-8"))
    for named in _named_stores(route, event, raw):
        if expected_outcome(route, caller.kind, own_store=caller.acts_for(named)) is Outcome.FORBIDDEN:
            return problems.from_domain_error(
                Forbidden(f"this key acts for store {caller.store_id!r}, not {named!r}", store_id=named)
            )
    return None


def _sent_as_json(event: dict[str, Any]) -> bool:
    """JSON in: a body is JSON when its Content-Type's media type is application/json (in any
    letter case, RFC 9110 8.3.1; any parameters) or there is none at all; anything else powertools
    would parse as a form, or refuse with an exception of its own (a 500 if it got that far)."""
    headers = event.get("headers") or {}
    content_type = next((str(v) for k, v in headers.items() if k.lower() == "content-type"), "").strip()
    return not content_type or _media_type(content_type) == JSON_MEDIA_TYPE


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _json_media_type_in_lower_case(event: dict[str, Any]) -> None:
    """powertools compares the Content-Type with "application/json" letter for letter: a body sent
    as `APPLICATION/JSON` (accepted by the guard) is handed on with the media type in lower case."""
    for name in ("headers", "multiValueHeaders"):
        headers = event.get(name) or {}
        for key, value in headers.items():
            if key.lower() != "content-type":
                continue
            values = value if isinstance(value, list) else [value]
            fixed = [
                JSON_MEDIA_TYPE + str(v).strip()[len(JSON_MEDIA_TYPE) :]
                if _media_type(str(v)) == JSON_MEDIA_TYPE
                else v
                for v in values
            ]
            headers[key] = fixed if isinstance(value, list) else fixed[0]


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _named_stores(route: Route, event: dict[str, Any], raw: bytes) -> list[str | None]:
    """The stores a request names where the route table says it does: its {store_id} path
    parameter, its `store_id` query (the store of a record named by a caller-owned id), or its
    body's store_id - and each of its `events`' (a batch naming one other store is refused
    whole, before anything is kept). A body that is not JSON is left to validation."""
    values: list[Any] = []
    if route.store is StoreScope.PATH:
        values.append((event.get("pathParameters") or {}).get("store_id"))
    elif route.store is StoreScope.RECORD:
        values.append((event.get("queryStringParameters") or {}).get("store_id"))
    elif route.store is StoreScope.BODY and raw:
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError):
            return [None]
        if isinstance(parsed, dict):
            values.append(parsed.get("store_id"))
            batch = parsed.get("events")
            if isinstance(batch, list):
                values.extend(e.get("store_id") for e in batch if isinstance(e, dict))
    return [v if isinstance(v, str) else None for v in values] or [None]


def loaded() -> None:
    """The function's code is loaded: what it loaded lives as long as the process, so the
    collector need not scan it again; collect as usual from here on (see loyalty/__init__)."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def lambda_handler(app: APIGatewayRestResolver) -> LambdaHandler:
    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        correlation_id = _correlation_id(event)
        logger.set_correlation_id(correlation_id)
        CORRELATION_ID.set(correlation_id)
        refused = guard(event)
        if refused is not None:
            result = _render(refused)
        else:
            _json_media_type_in_lower_case(event)
            app.append_context(principal=principal_from_event(event))
            result = app.resolve(event, context)
        request_id = (event.get("requestContext") or {}).get("requestId")
        if request_id:
            # Echoed so a till's support ticket can name the exact request in our logs.
            if "multiValueHeaders" in result:
                result["multiValueHeaders"]["X-Request-Id"] = [request_id]
            else:
                result.setdefault("headers", {})["X-Request-Id"] = request_id
        return result

    loaded()
    return handler


def _correlation_id(event: dict[str, Any]) -> str | None:
    """The caller's X-Correlation-Id when it sends one (a till's own trace), else API Gateway's
    request id."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    given = headers.get("x-correlation-id")
    if given and len(given) <= 128 and given.isprintable():
        return str(given)
    request_id = (event.get("requestContext") or {}).get("requestId")
    return str(request_id) if request_id else None


def _render(response: Response) -> dict[str, Any]:
    headers: dict[str, Any] = {k: [v] for k, v in response.headers.items() if isinstance(v, str)}
    headers.setdefault("Content-Type", [problems.PROBLEM_JSON])
    return {
        "statusCode": response.status_code,
        "multiValueHeaders": headers,
        "body": response.body,
        "isBase64Encoded": False,
    }
