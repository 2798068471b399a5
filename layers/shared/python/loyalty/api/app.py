"""Builds a function's resolver from routers and wraps it as a Lambda handler.

Every function gets the same decorator order and the same guard: the caller's principal is
taken from the authorizer's context, the route table decides who may call, and oversized bodies
are refused before anything is parsed.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.router import Router
from aws_lambda_powertools.logging import correlation_paths

from loyalty.api import problems
from loyalty.api.http import principal_from_event
from loyalty.api.routes import route_for
from loyalty.domain.access import Access
from loyalty.domain.errors import DomainError, Forbidden, IdempotentReplay, PayloadTooLarge, Unauthenticated
from loyalty.observability import logger, metrics

MAX_BODY_BYTES = 64 * 1024
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def build_app(*routers: Router) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)
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


def guard(event: dict[str, Any]) -> Response | None:
    """Who may call this route, and is the body small enough? None means go ahead."""
    route = route_for(str(event.get("httpMethod", "")), str(event.get("resource", "")))
    if route is None or route.access is Access.PUBLIC:
        return None
    caller = principal_from_event(event)
    if caller is None:
        return problems.from_domain_error(Unauthenticated("send your API key in the x-api-key header"))
    if not caller.may_call(route.access):
        return problems.from_domain_error(Forbidden("this route needs an admin key"))
    body = event.get("body") or ""
    size = len(base64.b64decode(body)) if event.get("isBase64Encoded") else len(body.encode())
    if size > MAX_BODY_BYTES:
        return problems.from_domain_error(PayloadTooLarge(f"the body may be at most {MAX_BODY_BYTES} bytes"))
    return None


def lambda_handler(app: APIGatewayRestResolver) -> LambdaHandler:
    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        refused = guard(event)
        if refused is not None:
            result = _render(refused)
        else:
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

    return handler


def _render(response: Response) -> dict[str, Any]:
    headers: dict[str, Any] = {k: [v] for k, v in response.headers.items() if isinstance(v, str)}
    headers.setdefault("Content-Type", [problems.PROBLEM_JSON])
    return {
        "statusCode": response.status_code,
        "multiValueHeaders": headers,
        "body": response.body,
        "isBase64Encoded": False,
    }
