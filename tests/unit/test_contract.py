"""The committed OpenAPI document, the routers and the route table must all say the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loyalty.api.app import build_app
from loyalty.api.openapi import ROUTERS_BY_FUNCTION, openapi_document
from loyalty.api.routes import FUNCTIONS, ROUTES
from loyalty.domain.access import Access

REPO = Path(__file__).resolve().parents[2]


def operations(document: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def test_committed_openapi_matches_the_code() -> None:
    committed = json.loads((REPO / "openapi.json").read_text())
    assert committed == openapi_document(), "openapi.json is stale: run `make openapi` and commit it"


def test_every_route_in_the_table_is_documented_and_nothing_else() -> None:
    assert operations(openapi_document()) == {(r.method, r.path) for r in ROUTES}


@pytest.mark.parametrize("function", [f.name for f in FUNCTIONS])
def test_each_function_serves_exactly_its_routes(function: str) -> None:
    app = build_app(ROUTERS_BY_FUNCTION[function]())
    served = operations(json.loads(app.get_openapi_json_schema()))
    assert served == {(r.method, r.path) for r in ROUTES if r.function == function}


def test_public_routes_declare_no_security_and_others_need_a_key() -> None:
    document = openapi_document()
    assert document["security"] == [{"apiKey": []}]
    for route in ROUTES:
        operation = document["paths"][route.path][route.method.lower()]
        if route.access is Access.PUBLIC:
            assert operation.get("security") == []
        else:
            assert "security" not in operation or operation["security"] == [{"apiKey": []}]


def test_problem_responses_are_documented_for_writes() -> None:
    document = openapi_document()
    for route in ROUTES:
        if route.method in ("POST", "PUT", "PATCH") and route.access is not Access.PUBLIC:
            responses = document["paths"][route.path][route.method.lower()]["responses"]
            assert "422" in responses, f"{route.method} {route.path} documents no 422"


def test_an_errors_own_fields_never_overwrite_the_problem_members() -> None:
    from loyalty.api.problems import from_domain_error
    from loyalty.domain.errors import Conflict

    response = from_domain_error(Conflict("busy", status="held", type="x", title="y", hold_id="H1"))
    body = json.loads(response.body)
    assert response.status_code == 409
    assert (body["status"], body["detail"], body["hold_id"]) == (409, "busy", "H1")
    assert body["type"].endswith("/conflict")
