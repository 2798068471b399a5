"""One local platform per test worker: the real gateway, authorizer and handlers over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from loyalty_local.emulators import DynamoDBLocal, Moto, free_port
from loyalty_local.runtime import LocalRuntime

ADMIN_KEY, POS_KEY, WEB_KEY = "local-admin-key", "local-pos-key", "local-web-key"


@dataclass
class Api:
    base: str
    session: requests.Session

    def call(
        self, method: str, path: str, key: str | None = POS_KEY, json: Any = None, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["x-api-key"] = key
        return self.session.request(
            method, self.base + path, json=json, headers=headers, timeout=30, **kwargs
        )

    def enrol(self, key: str = POS_KEY, **body: Any) -> dict[str, Any]:
        response = self.call("POST", "/v1/customers", key, json=body)
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture(scope="session")
def api(emulators: tuple[DynamoDBLocal, Moto]) -> Iterator[Api]:
    ddb, moto = emulators
    port = free_port()
    runtime = LocalRuntime(table_name=f"e2e-{uuid.uuid4().hex[:10]}", ddb=ddb, moto=moto)
    runtime.start(port=port)
    yield Api(f"http://127.0.0.1:{port}", requests.Session())
    runtime.stop()


def unique_email() -> str:
    return f"{uuid.uuid4().hex[:12]}@example.com"


def assert_problem(response: requests.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].endswith("/" + slug), body
    assert body["title"]
    assert body["detail"]
    assert "Traceback" not in response.text
    return body
