"""Swagger UI works offline (issue 12, item 5): the page, its script and its stylesheet all come
from this API, through the route table (as on API Gateway), never from a CDN."""

from __future__ import annotations

import re

from tests.e2e.conftest import Api, assert_problem


def test_the_docs_page_references_no_other_host(api: Api) -> None:
    page = api.call("GET", "/docs", key=None)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert "SwaggerUIBundle" in html
    assert not re.search(r"(?i)(https?:)?//[a-z0-9]", html), "the page loads something from another host"
    referenced = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sorted(referenced) == ["docs/swagger-ui-bundle.js", "docs/swagger-ui.css"]
    # Relative to the page, so they also resolve under an API Gateway stage prefix (/prod/docs).
    assert all(not ref.startswith("/") for ref in referenced)


def test_the_assets_and_the_document_answer_with_their_content_types(api: Api) -> None:
    script = api.call("GET", "/docs/swagger-ui-bundle.js", key=None)
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.text and len(script.content) > 100_000
    style = api.call("GET", "/docs/swagger-ui.css", key=None)
    assert style.status_code == 200
    assert style.headers["Content-Type"].startswith("text/css")
    assert ".swagger-ui" in style.text
    assert "max-age" in style.headers["Cache-Control"]

    document = api.call("GET", "/openapi.json", key=None)
    assert document.status_code == 200
    assert document.headers["Content-Type"].startswith("application/json")
    assert "/v1/transactions" in document.json()["paths"]

    assert_problem(api.call("GET", "/docs/swagger-ui.js.map", key=None), 404, "not-found")
    assert_problem(api.call("GET", "/docs/..%2Fopenapi.json", key=None), 404, "not-found")
