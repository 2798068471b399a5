"""The committed OpenAPI document, the routers and the route table must all say the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loyalty.api.app import build_app
from loyalty.api.openapi import ROUTERS_BY_FUNCTION, openapi_document
from loyalty.api.routes import ROUTES
from loyalty.domain.access import Access
from loyalty.resources import FUNCTIONS

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


def test_every_error_an_operation_can_answer_is_documented_as_a_problem() -> None:
    """What fuzzing found: 422s documented as powertools' own JSON, and refusals (401, 403, 413,
    415, 429, 503) that every route can give documented nowhere."""
    document = openapi_document()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for route in ROUTES:
        operation = document["paths"][route.path][route.method.lower()]
        responses = operation["responses"]
        expected = {"429"} if route.access is Access.PUBLIC else {"401", "403", "429", "503"}
        if "requestBody" in operation:
            expected |= {"400", "413", "415", "422"}
        if any(p["in"] == "path" for p in operation.get("parameters", [])):
            expected |= {"404", "422"}
        assert expected <= set(responses), f"{route.method} {route.path}: {sorted(expected - set(responses))}"
        for status, response in responses.items():
            if status >= "400":
                assert response["content"] == problem, f"{route.method} {route.path} {status}"
        assert "content" not in responses.get("204", {}), f"{route.method} {route.path}: a 204 has no body"


def test_the_contract_in_docs_is_the_steering_repos_copy() -> None:
    # The README links docs/api.md so that links resolve inside the repository; the contract itself
    # is owned by shared/spec/api.md beside the project (every developer and CI has it there).
    shared = REPO.parent / "shared" / "spec" / "api.md"
    assert shared.is_file(), f"{shared} is missing: the project expects the steering repo's shared/ beside it"
    assert (REPO / "docs" / "api.md").read_text() == shared.read_text(), (
        "docs/api.md differs from shared/spec/api.md: copy it over and say what changed in the changelog"
    )
