"""What fuzzing the API (tests/e2e/test_fuzz.py) found, pinned down one request at a time."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY, Api, assert_problem, unique_email

PROBLEM_JSON = "application/problem+json"
OPENAPI = json.loads((Path(__file__).resolve().parents[2] / "openapi.json").read_text())


def documented(method: str, path: str, status: int) -> bool:
    return str(status) in OPENAPI["paths"][path][method.lower()]["responses"]


@pytest.mark.parametrize("method", ["TRACE", "OPTIONS", "HEAD"])
def test_a_method_no_route_serves_is_a_404_problem_not_an_html_page(api: Api, method: str) -> None:
    response = api.call(method, "/v1/health")
    assert response.status_code == 404, response.text
    assert response.headers["Content-Type"].startswith(PROBLEM_JSON)
    if method != "HEAD":
        assert_problem(response, 404, "not-found")


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "multipart/form-data",
        "application/x-www-form-urlencoded",
        "application/merge-patch+json",
    ],
)
def test_a_body_not_sent_as_json_is_a_415_problem(api: Api, content_type: str) -> None:
    body = '{"kind": "pos", "name": "till", "store_id": "ams-01"}'
    response = api.call(
        "POST", "/v1/admin/api-keys", ADMIN_KEY, data=body, headers={"Content-Type": content_type}
    )
    assert_problem(response, 415, "unsupported-media-type")


def test_json_with_a_charset_is_still_json(api: Api) -> None:
    body = json.dumps({"links": [{"type": "email", "value": unique_email()}]})
    headers = {"Content-Type": "application/json; charset=utf-8"}
    enrolled = api.call("POST", "/v1/customers", POS_KEY, data=body, headers=headers)
    assert enrolled.status_code == 201, enrolled.text


def test_a_body_that_is_not_utf8_is_a_400_problem(api: Api) -> None:
    response = api.call(
        "POST",
        "/v1/cart/evaluate",
        POS_KEY,
        data=b"\xff\xfe%.v\x1f",
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 400, "malformed-request")


def test_the_local_gateway_answers_unknown_methods_on_unknown_paths_too(api: Api) -> None:
    response = requests.request("PROPFIND", api.base + "/nowhere", timeout=10)
    assert_problem(response, 404, "not-found")


UNSTORABLE_ATTRIBUTES = [
    pytest.param({"a": {"": 1}}, "must not be empty", id="empty-nested-name"),
    pytest.param({"a": 1e200}, "numbers must be finite", id="number-too-large"),
    pytest.param({"a": 1e-200}, "numbers must be finite", id="number-too-small"),
    pytest.param({"a": 10**40}, "numbers must be finite", id="too-many-digits"),
    pytest.param({"a": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}, "nest at most", id="too-deep"),
]


@pytest.mark.parametrize(("attributes", "message"), UNSTORABLE_ATTRIBUTES)
def test_attributes_the_table_cannot_keep_are_a_422_not_a_500(
    api: Api, attributes: dict[str, object], message: str
) -> None:
    store = {"channel": "pos", "attributes": attributes}
    problem = assert_problem(
        api.call("PUT", "/v1/admin/stores/fuzz-attrs", ADMIN_KEY, json=store), 422, "validation-failed"
    )
    assert problem["errors"][0]["loc"] == ["body", "attributes"] and message in problem["errors"][0]["msg"]
    enrol = {"links": [{"type": "email", "value": unique_email()}], "profile": {"attributes": attributes}}
    assert_problem(api.call("POST", "/v1/customers", POS_KEY, json=enrol), 422, "validation-failed")


def test_nan_in_attributes_is_a_422(api: Api) -> None:
    body = '{"channel": "pos", "attributes": {"a": NaN}}'
    response = api.call(
        "PUT", "/v1/admin/stores/fuzz-nan", ADMIN_KEY, data=body, headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 422, "validation-failed")


def test_storable_attributes_are_kept_as_sent(api: Api) -> None:
    attributes = {"size": 42, "ratio": 0.125, "tags": ["a", {"b": None}], "big": 10**37, "tiny": 1e-130}
    response = api.call(
        "PUT", "/v1/admin/stores/fuzz-ok", ADMIN_KEY, json={"channel": "pos", "attributes": attributes}
    )
    assert response.status_code in (200, 201), response.text
    assert response.json()["attributes"] == attributes


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"channel": "pos", "format": ' + "[" * 5000 + "]" * 5000 + "}", id="nested-too-deep"),
        pytest.param('{"channel": "pos", "attributes": {"a": 1' + "0" * 5000 + "}}", id="5000-digit-integer"),
    ],
)
def test_json_python_cannot_read_is_a_400(api: Api, body: str) -> None:
    response = api.call(
        "PUT",
        "/v1/admin/stores/fuzz-json",
        ADMIN_KEY,
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 400, "malformed-request")


def test_redeeming_an_unknown_reward_is_a_documented_404(api: Api) -> None:
    member = api.enrol(links=[{"type": "email", "value": unique_email()}])
    body = {
        "redemption_id": f"FZ-{uuid.uuid4().hex[:10]}",
        "customer": {"customer_id": member["customer_id"]},
        "kind": "points",
        "reward_id": "no-such-reward",
    }
    assert_problem(api.call("POST", "/v1/redemptions", POS_KEY, json=body), 404, "reward-not-found")
    assert documented("POST", "/v1/redemptions", 404)


def test_a_locked_e_cards_ledger_is_a_documented_409(api: Api) -> None:
    sold = api.call(
        "POST",
        "/v1/gift-cards",
        WEB_KEY,
        json={"amount": "10.00", "currency": "EUR", "delivery": {"email": unique_email()}},
    )
    assert sold.status_code == 201, sold.text
    ledger = f"/v1/accounts/{sold.json()['card_number']}/ledger"
    wrong = {"x-gift-card-pin": "000000"}
    statuses = [api.call("GET", ledger, WEB_KEY, headers=wrong).status_code for _ in range(6)]
    assert statuses[0] == 403 and statuses[-1] == 409, statuses
    assert_problem(api.call("GET", ledger, WEB_KEY, headers=wrong), 409, "card-locked")
    assert documented("GET", "/v1/accounts/{account_id}/ledger", 409)
