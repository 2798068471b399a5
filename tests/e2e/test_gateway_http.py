"""The local gateway behaves as API Gateway does under the attacks of issue 11 (items 8 and 10)."""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from typing import Any, cast
from urllib.parse import urlsplit

from loyalty.api.authorizer import Unauthorized, authorize
from loyalty.bootstrap import Container, use_container
from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY, Api


def raw_request(
    api: Api, method: str, path: str, headers: list[tuple[str, str]], body: Any = None
) -> tuple[int, dict[str, Any]]:
    """http.client, because requests folds repeated headers into one."""
    where = urlsplit(api.base)
    conn = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=30)
    try:
        conn.putrequest(method, path)
        data = json.dumps(body).encode() if body is not None else b""
        for name, value in headers:
            conn.putheader(name, value)
        if data:
            conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data or None)
        response = conn.getresponse()
        text = response.read()
        return response.status, (json.loads(text) if text else {})
    finally:
        conn.close()


def test_two_api_key_headers_are_a_401_whichever_comes_first(api: Api) -> None:
    # A verdict for the real key is in the gateway's cache: the made-up key must not ride on it.
    assert api.call("GET", "/v1/admin/programme", POS_KEY).status_code == 403
    assert (
        api.call("GET", "/v1/customers?link_type=email&link_value=a@example.com", WEB_KEY).status_code == 404
    )
    for pair in ([POS_KEY, "made-up-key"], ["made-up-key", POS_KEY], [WEB_KEY, POS_KEY], [POS_KEY, POS_KEY]):
        status, body = raw_request(
            api,
            "GET",
            "/v1/customers?link_type=email&link_value=a@example.com",
            [("x-api-key", k) for k in pair],
        )
        assert status == 401, (pair, body)


def test_two_api_key_headers_in_different_letter_case_are_a_401(api: Api) -> None:
    status, _ = raw_request(
        api,
        "GET",
        "/v1/customers?link_type=email&link_value=a@example.com",
        [("x-api-key", WEB_KEY), ("X-API-Key", POS_KEY)],
    )
    assert status == 401


def test_a_sale_with_two_keys_is_refused_and_recorded_nowhere(api: Api) -> None:
    txn = f"DUP-{uuid.uuid4().hex[:10]}"
    sale = {
        "transaction_id": txn,
        "type": "sale",
        "occurred_at": "2026-11-22T10:00:00Z",
        "lines": [{"line_id": "1", "sku": "ESP", "quantity": "1", "unit_price": "3.50"}],
        "currency": "EUR",
        "total": "3.50",
    }
    status, _ = raw_request(
        api, "POST", "/v1/transactions", [("x-api-key", WEB_KEY), ("x-api-key", POS_KEY)], sale
    )
    assert status == 401
    for store, key in (("ams-01", POS_KEY), ("web-nl", WEB_KEY)):
        assert api.call("GET", f"/v1/transactions/{store}/{txn}", key).status_code == 404


def test_the_authorizer_refuses_two_keys_in_its_multi_value_headers(api: Api) -> None:
    """What API Gateway hands a REQUEST authorizer for a request with two x-api-key headers: the
    last in `headers`, both in `multiValueHeaders`. No key is looked up at all."""
    event = {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:eu-west-1:000000000000:api/stage/GET/v1/customers",
        "headers": {"x-api-key": POS_KEY},
        "multiValueHeaders": {"x-api-key": ["made-up-key", POS_KEY]},
    }
    try:
        authorize(event, None)
    except Unauthorized:
        return
    raise AssertionError("two keys were authorised")


def test_64_new_connections_at_once_all_get_answers(api: Api) -> None:
    where = urlsplit(api.base)
    start = threading.Barrier(64)
    statuses: list[int | str] = []
    lock = threading.Lock()

    def one() -> None:
        start.wait()
        try:
            conn = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=30)
            conn.request("GET", "/v1/health")
            status: int | str = conn.getresponse().status
            conn.close()
        except OSError as exc:  # a reset or a refused connection
            status = type(exc).__name__
        with lock:
            statuses.append(status)

    for _ in range(3):
        threads = [threading.Thread(target=one) for _ in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert statuses == [200] * 192, sorted(set(map(str, statuses)))


def test_the_runtime_answers_with_its_own_platform_while_a_test_swaps_the_process_container(
    api: Api,
) -> None:
    """Integration tests in the same worker install their own container (the mailer's tests do);
    the runtime's gateway, pollers and schedules must keep acting on the runtime's table."""
    assert api.runtime is not None and api.runtime.container is not None
    use_container(cast(Container, object()))  # anything a handler touched through it would fail
    try:
        response = api.call("GET", "/v1/admin/stores", ADMIN_KEY)
        assert response.status_code == 200, response.text
        assert "ams-01" in {s["store_id"] for s in response.json()["items"]}
    finally:
        use_container(api.runtime.container)
