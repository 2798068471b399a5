"""The whole API in one OpenAPI document, built from the same routers the functions serve.

`python -m loyalty.api.openapi > openapi.json` writes the committed copy; a test fails when the
committed file and the code differ.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

from loyalty import __version__
from loyalty.api import docs
from loyalty.api.app import build_app
from loyalty.api.problems import PROBLEM_JSON
from loyalty.api.routers import (
    accounts,
    admin,
    campaigns,
    cart,
    customers,
    events,
    health,
    offers,
    redemptions,
    reports,
    templates,
    transactions,
)
from loyalty.api.routes import ROUTES
from loyalty.domain.access import Access

# Which router each function serves; the route table says the same, and a test checks they agree.
ROUTERS_BY_FUNCTION = {
    "health": health.make_router,
    "customers": customers.make_router,
    "admin": admin.make_router,
    "transactions": transactions.make_router,
    "cart": cart.make_router,
    "offers": offers.make_router,
    "redemptions": redemptions.make_router,
    "accounts": accounts.make_router,
    "messaging": templates.make_router,
    "events": events.make_router,
    "reports": reports.make_router,
    "campaigns": campaigns.make_router,
}
ROUTER_FACTORIES = tuple(ROUTERS_BY_FUNCTION.values())


def openapi_document() -> dict[str, Any]:
    app = build_app(*(make() for make in ROUTER_FACTORIES))
    raw = app.get_openapi_json_schema(
        title="Loyalty platform API",
        version=__version__,
        description="The HTTP contract for web checkouts, tills (POS) and marketers. "
        "Errors are RFC 9457 problem documents.",
        security_schemes={"apiKey": APIKey(name="x-api-key", **{"in": APIKeyIn.header})},
        security=[{"apiKey": []}],
    )
    document: dict[str, Any] = json.loads(raw)
    for route in ROUTES:
        if route.access is Access.PUBLIC:
            document["paths"][route.path][route.method.lower()]["security"] = []
    _complete_responses(document)
    return document


PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"
# What any route that needs a key may answer besides its own responses: the gateway's and the
# authorizer's refusals, throttling, and a retryable 503 (a record kept changing under concurrent
# writes, or the customer is being merged). Declared once here rather than in every router.
KEYED_RESPONSES = {
    "401": "Missing, unknown or revoked API key",
    "403": "This key may not call this route, or not for that store",
    "429": "Too many requests",
    "503": "Temporarily unavailable; retry (after Retry-After when it is given)",
}
BODY_RESPONSES = {
    "400": "The body is not valid JSON",
    "413": "The body is larger than 64 KiB",
    "415": "The body is not sent as application/json",
}
PATH_RESPONSES = {"404": "No such resource"}
CURSOR_RESPONSE = "The cursor is not one this list returned for these ids and filters, or it has expired"
VALIDATION_RESPONSE = "Validation failed: every bad field is listed in `errors`"
RETRY_AFTER = {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}}}


def _complete_responses(document: dict[str, Any]) -> None:
    """Every error an operation can answer is documented, and every one is a problem document.

    powertools documents its validation errors as its own `HTTPValidationError`; ours are problem
    documents (loyalty.api.problems), so 422 is rewritten. A 204 has no body.
    """
    document["components"]["schemas"]["Problem"] = docs.PROBLEM_SCHEMA
    for route in ROUTES:
        operation = document["paths"][route.path][route.method.lower()]
        responses: dict[str, Any] = operation["responses"]
        parameters = operation.get("parameters", [])
        common = {"429": KEYED_RESPONSES["429"]} if route.access is Access.PUBLIC else dict(KEYED_RESPONSES)
        if "requestBody" in operation:
            common.update(BODY_RESPONSES)
        if any(p.get("in") == "path" for p in parameters):
            common.update(PATH_RESPONSES)
        responses.pop("422", None)  # powertools' own, or a router's: one description for all
        if parameters or "requestBody" in operation:
            common["422"] = VALIDATION_RESPONSE
        if any(p.get("in") == "query" and p.get("name") == "cursor" for p in parameters):
            common["400"] = CURSOR_RESPONSE
        for status, description in common.items():
            responses.setdefault(status, _problem(description))
        for status, response in responses.items():
            if status == "204":
                response.pop("content", None)
            problem = response.get("content", {}).get(PROBLEM_JSON)
            if problem is not None:
                problem["schema"] = {"$ref": PROBLEM_SCHEMA_REF}
        if "503" in responses:
            responses["503"]["headers"] = {"Retry-After": RETRY_AFTER}
    paths = json.dumps(document["paths"])
    for unused in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{unused}" not in paths:
            document["components"]["schemas"].pop(unused, None)


def main() -> None:
    print(json.dumps(openapi_document(), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
