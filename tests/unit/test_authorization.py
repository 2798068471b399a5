"""The authorisation matrix in the route table: consistent with the API it describes, and the one
the functions' guard decides by. tests/e2e/test_authorization_matrix.py calls every route with it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loyalty.api.app import guard
from loyalty.api.openapi import openapi_document
from loyalty.api.routes import ROUTES, Outcome, Route, expected_outcome, route_for
from loyalty.domain.access import Access, KeyKind, StoreScope
from loyalty_local.events import api_gateway_event


def _route(method: str, path: str) -> Route:
    route = route_for(method, path)
    assert route is not None
    return route


def _body_properties(document: dict[str, Any], route: Route) -> set[str]:
    body = document["paths"][route.path][route.method.lower()].get("requestBody")
    if body is None:
        return set()
    schema = body["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return set(schema.get("properties", {}))


def test_store_bound_routes_name_the_store_where_the_table_says() -> None:
    document = openapi_document()
    for route in ROUTES:
        if route.access is not Access.CLIENT:
            assert route.store is StoreScope.NONE, (
                f"{route.method} {route.path}: admin keys act for every store"
            )
            continue
        where = f"{route.method} {route.path}"
        assert ("{store_id}" in route.path) == (route.store is StoreScope.PATH), where
        if route.store is not StoreScope.PATH:
            # A client body naming a store must be checked against the key: BODY, and only then.
            assert ("store_id" in _body_properties(document, route)) == (route.store is StoreScope.BODY), (
                where
            )


def test_the_matrix() -> None:
    admin_route = _route("GET", "/v1/admin/stores")
    brand_wide = _route("GET", "/v1/customers/{customer_id}")
    for route in ROUTES:
        assert expected_outcome(route, None) is (
            Outcome.ALLOWED if route.access is Access.PUBLIC else Outcome.UNAUTHENTICATED
        )
        assert expected_outcome(route, KeyKind.ADMIN, own_store=False) is Outcome.ALLOWED
    for kind in (KeyKind.POS, KeyKind.WEB):
        assert expected_outcome(admin_route, kind) is Outcome.FORBIDDEN
        assert expected_outcome(brand_wide, kind, own_store=False) is Outcome.ALLOWED
        for scope in (StoreScope.BODY, StoreScope.PATH, StoreScope.RECORD):
            bound = next(r for r in ROUTES if r.store is scope)
            assert expected_outcome(bound, kind, own_store=True) is Outcome.ALLOWED
            assert expected_outcome(bound, kind, own_store=False) is Outcome.FORBIDDEN


def _event(
    method: str,
    resource: str,
    kind: str | None = "pos",
    store: str = "ams-01",
    path_store: str | None = None,
    body: Any = None,
) -> dict[str, Any]:
    authorizer = {"key_id": "k1", "kind": kind, "store_id": store} if kind else {}
    return api_gateway_event(
        method,
        resource,
        resource,
        path_params={"store_id": path_store, "transaction_id": "T1"} if path_store else None,
        body=body if isinstance(body, str) or body is None else json.dumps(body),
        authorizer=authorizer,
    )


def _status(event: dict[str, Any]) -> int | None:
    refused = guard(event)
    return None if refused is None else refused.status_code


TXN = "/v1/transactions/{store_id}/{transaction_id}"


@pytest.mark.parametrize(
    ("event", "status"),
    [
        (_event("GET", "/v1/health", kind=None), None),
        (_event("GET", "/v1/customers", kind=None), 401),
        (_event("GET", "/v1/admin/stores"), 403),
        (_event("GET", "/v1/admin/stores", kind="admin", store=""), None),
        # PATH: the {store_id} in the path.
        (_event("GET", TXN, path_store="ams-01"), None),
        (_event("GET", TXN, path_store="web-nl"), 403),
        (_event("PATCH", TXN, path_store="web-nl"), 403),
        (_event("GET", TXN, kind="web", store="web-nl", path_store="ams-01"), 403),
        (_event("GET", TXN, kind="admin", store="", path_store="web-nl"), None),
        # BODY: the body's store_id; absent means the key's own; not JSON is for validation to say.
        (_event("POST", "/v1/transactions", body={"store_id": "web-nl"}), 403),
        (_event("POST", "/v1/transactions", body={"store_id": "ams-01"}), None),
        (_event("POST", "/v1/transactions", body={"transaction_id": "T1"}), None),
        (_event("POST", "/v1/transactions", body="{not json"), None),
        (_event("POST", "/v1/transactions", body="[" * 60000), None),
        (_event("POST", "/v1/cart/evaluate", kind="web", store="web-nl", body={"store_id": "ams-01"}), 403),
        # NONE: a body's store_id is not a store binding there (there is none to name).
        (_event("GET", "/v1/customers/{customer_id}", kind="pos", store="other"), None),
    ],
)
def test_the_guard_decides_by_the_matrix(event: dict[str, Any], status: int | None) -> None:
    assert _status(event) == status
