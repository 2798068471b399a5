"""The whole API in one OpenAPI document, built from the same routers the functions serve.

`python -m loyalty.api.openapi > openapi.json` writes the committed copy; a test fails when the
committed file and the code differ.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

from loyalty import __version__
from loyalty.api.app import build_app
from loyalty.api.routers import accounts, admin, cart, customers, health, offers, redemptions, transactions

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
    document["paths"]["/v1/health"]["get"]["security"] = []
    return document


def main() -> None:
    print(json.dumps(openapi_document(), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
