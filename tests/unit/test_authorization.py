"""The authorisation matrix in the route table: consistent with the API it describes, and the one
the functions' guard decides by. tests/e2e/test_authorization_matrix.py calls every route with it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loyalty.api.app import guard
from loyalty.api.openapi import openapi_document
from loyalty.api.routes import ROUTES, Outcome, Route, expected_outcome, route_for
from loyalty.domain.access import MARKETER_AREAS, Access, Area, KeyKind, StoreScope
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


# The contract's "Console": what a marketer key may call, route by route (method, path). Listed by
# hand on purpose: the route table's areas must give exactly this, no more.
MARKETER_ROUTES = {
    ("GET", "/v1/customers"),
    ("GET", "/v1/customers/{customer_id}"),
    ("GET", "/v1/customers/{customer_id}/timeline"),
    ("GET", "/v1/customers/{customer_id}/transactions"),
    ("GET", "/v1/customers/{customer_id}/ledger"),
    ("GET", "/v1/customers/{customer_id}/coupons"),
    ("GET", "/v1/customers/{customer_id}/accounts"),
    ("GET", "/v1/customers/{customer_id}/challenges"),
    ("GET", "/v1/coupons/{code}"),
    ("POST", "/v1/customers/{customer_id}/coupons"),
}
# Under /v1/admin/: these areas are a marketer's; keys, stores and the programme are not.
MARKETER_ADMIN_PREFIXES = {
    "offers": Area.OFFERS,
    "price-groups": Area.PRICE_GROUPS,
    "rewards": Area.REWARDS,
    "challenges": Area.CHALLENGES,
    "badges": Area.BADGES,
    "segments": Area.SEGMENTS,
    "templates": Area.TEMPLATES,
    "campaigns": Area.CAMPAIGNS,
    "reports": Area.REPORTS,
    "outbox": Area.OUTBOX,
    "print-files": Area.OUTBOX,
}


def _admin_prefix(route: Route) -> str | None:
    parts = route.path.split("/")
    return parts[3] if route.path.startswith("/v1/admin/") else None


def test_every_admin_route_of_a_marketers_area_declares_it() -> None:
    """A segments or campaigns route added later gets the marketer's right only by declaring its
    area: one that forgets fails here rather than silently refusing the console."""
    for route in ROUTES:
        prefix = _admin_prefix(route)
        where = f"{route.method} {route.path}"
        if prefix is not None:
            assert route.area is MARKETER_ADMIN_PREFIXES.get(prefix), where
        elif (route.method, route.path) in MARKETER_ROUTES:
            assert route.area in (Area.CUSTOMER_READS, Area.COUPON_ISSUE), where
        else:
            assert route.area is None, where


def test_marketer_rights_are_exactly_the_contracts() -> None:
    assert {a.value for a in MARKETER_AREAS} == {
        "offers", "price-groups", "rewards", "challenges", "badges", "segments", "templates",
        "campaigns", "reports", "outbox", "customer-reads", "coupon-issue",
    }  # fmt: skip
    allowed = {
        (r.method, r.path)
        for r in ROUTES
        if r.access is not Access.PUBLIC and expected_outcome(r, KeyKind.MARKETER) is Outcome.ALLOWED
    }
    admin_areas = {(r.method, r.path) for r in ROUTES if _admin_prefix(r) in MARKETER_ADMIN_PREFIXES}
    assert allowed == MARKETER_ROUTES | admin_areas
    refused = {f"{r.method} {r.path}" for r in ROUTES if (r.method, r.path) not in allowed}
    for never in (
        "POST /v1/admin/api-keys", "GET /v1/admin/api-keys", "DELETE /v1/admin/api-keys/{key_id}",
        "GET /v1/admin/stores", "PUT /v1/admin/stores/{store_id}", "GET /v1/admin/programme",
        "PUT /v1/admin/programme", "POST /v1/merges", "POST /v1/merges/{merge_id}/undo",
        "GET /v1/customers/{customer_id}/export", "DELETE /v1/customers/{customer_id}",
        "POST /v1/transactions", "POST /v1/customers", "PATCH /v1/customers/{customer_id}",
        "POST /v1/redemptions", "POST /v1/events", "POST /v1/cart/evaluate",
    ):  # fmt: skip
        assert never in refused, never
    for route in ROUTES:
        if (route.method, route.path) in allowed:
            # Marketer keys have no store: their routes name none.
            assert route.store is StoreScope.NONE, f"{route.method} {route.path}"
            assert expected_outcome(route, KeyKind.MARKETER, own_store=False) is Outcome.ALLOWED


def test_every_route_times_every_kind() -> None:
    """The whole matrix, cell by cell, from the rules stated once more in plain words."""
    for route in ROUTES:
        for kind in (None, *KeyKind):
            for own_store in (True, False):
                got = expected_outcome(route, kind, own_store=own_store)
                if route.access is Access.PUBLIC:
                    want = Outcome.ALLOWED
                elif kind is None:
                    want = Outcome.UNAUTHENTICATED
                elif kind is KeyKind.ADMIN:
                    want = Outcome.ALLOWED
                elif kind is KeyKind.MARKETER:
                    want = Outcome.ALLOWED if route.area is not None else Outcome.FORBIDDEN
                elif route.access is Access.ADMIN:
                    want = Outcome.FORBIDDEN
                elif own_store or route.store is StoreScope.NONE:
                    want = Outcome.ALLOWED
                else:
                    want = Outcome.FORBIDDEN
                assert got is want, f"{route.method} {route.path} as {kind} (own store: {own_store})"


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
        # A marketer key: its areas, whether admin or client routes; nothing else.
        (_event("GET", "/v1/admin/stores", kind="marketer", store=""), 403),
        (_event("POST", "/v1/admin/api-keys", kind="marketer", store="", body={}), 403),
        (_event("PUT", "/v1/admin/programme", kind="marketer", store="", body={}), 403),
        (_event("GET", "/v1/admin/offers", kind="marketer", store=""), None),
        (_event("GET", "/v1/admin/reports/activity", kind="marketer", store=""), None),
        (_event("GET", "/v1/customers/{customer_id}", kind="marketer", store=""), None),
        (_event("POST", "/v1/customers/{customer_id}/coupons", kind="marketer", store="", body={}), None),
        (_event("POST", "/v1/transactions", kind="marketer", store="", body={}), 403),
        (_event("POST", "/v1/merges", kind="marketer", store="", body={}), 403),
        (_event("GET", "/v1/customers/{customer_id}/export", kind="marketer", store=""), 403),
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
