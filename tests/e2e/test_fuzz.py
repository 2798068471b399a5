"""Fuzzing every operation of the committed OpenAPI document with schemathesis, over HTTP.

The platform under test is `python -m loyalty_local run` in a child process on a fresh data
directory: fuzzing changes global state (the programme, offers, price groups, stores, keys) that
the other end-to-end tests rely on, so it gets a platform of its own.

Every response must be documented and conform to its schema (schemathesis's built-in checks), no
request may get a 5xx, and every 4xx must be an RFC 9457 problem document. Admin routes are
called with the admin key, the others with a till's or the web shop's key. A store in a body or
path is often one of the demo stores (the caller's own or not), and an id in a path often names a
record made before fuzzing starts, so the fuzzer gets past 403 and 404 to the real answers.

`make test` runs a few examples per operation, derandomized; `make fuzz` runs many more
(FUZZ_EXAMPLES, default 200), the coverage phase and both client keys. FUZZ_SEED=<n> makes a
seeded random run instead.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import CheckContext
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from loyalty.api.routes import ROUTES
from loyalty.domain.access import Access
from loyalty_local.emulators import free_port
from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
SEED = os.environ.get("FUZZ_SEED")
# schemathesis's coverage phase: a deterministic sweep of boundary and invalid values for every
# field (several thousand requests), too long for `make test`.
COVERAGE = os.environ.get("FUZZ_COVERAGE", "0") == "1"
CLIENT_KEYS = {"pos": POS_KEY, "web": WEB_KEY}
PASSES = [name.strip() for name in os.environ.get("FUZZ_KEYS", "pos").split(",") if name.strip()]
OWN_STORES = ("ams-01", "web-nl")  # the demo till's and web shop's stores
ADMIN_ROUTES = {(r.method, r.path) for r in ROUTES if r.access is Access.ADMIN}

# One platform per worker: with `--dist loadgroup` (make test) every operation runs on one worker.
pytestmark = pytest.mark.xdist_group("fuzz")

CONFIG: dict[str, Any] = {
    # The key is ours to send (below): no examples are spent on a missing or mangled x-api-key.
    "generation": {"with-security-parameters": False},
    "phases": {"coverage": {"enabled": COVERAGE}},
}
if SEED is not None:
    CONFIG["seed"] = int(SEED)
schema = schemathesis.openapi.from_path(REPO / "openapi.json", config=schemathesis.Config.from_dict(CONFIG))


# Instants whose conversion to UTC overflows (each was a 500), and the edges of the accepted range.
EXTREME_TIMESTAMPS = (
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00Z",
    "1999-12-31T23:59:59Z",
    "2100-01-01T00:00:00Z",
)
TIMESTAMP_FIELDS = ("occurred_at", "valid_from", "valid_until", "expires_at")
# Longer than a DynamoDB key may be (2,048 bytes for a partition key, 1,024 for a sort key).
LONG_ID = "x" * 2100


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """A body naming a store names a demo store two times in three (the caller's own, or not); a
    body with a timestamp sometimes carries an extreme one."""
    if not isinstance(body, dict):
        return st.just(body)
    variants = [body]
    if isinstance(body.get("store_id"), str):
        variants += [{**body, "store_id": s} for s in OWN_STORES]
    for name in TIMESTAMP_FIELDS:
        if name in body:
            variants += [{**body, name: when} for when in EXTREME_TIMESTAMPS]
    return st.sampled_from(variants)


# Ids of records that exist (made by `seed_records` once the platform is up), so path parameters
# sometimes name something real and the fuzzer gets past 404 to the answers' own schemas.
KNOWN: dict[str, list[str]] = {"store_id": list(OWN_STORES)}
# Erasure would take the seeded customer away from every operation fuzzed after it.
RANDOM_IDS_ONLY = {"DELETE /v1/customers/{customer_id}"}


@schema.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, params: dict[str, Any]
) -> st.SearchStrategy[Any]:
    """Each path parameter is the generated value, as often as not the id of a seeded record, and
    sometimes an id longer than any key can be."""
    label = context.operation.label if context.operation is not None else ""
    if not isinstance(params, dict) or label in RANDOM_IDS_ONLY:
        return st.just(params)
    known = {
        name: st.sampled_from([value, *KNOWN.get(name, []), LONG_ID])
        for name, value in params.items()
        if isinstance(value, str)
    }
    if not known:
        return st.just(params)
    return st.fixed_dictionaries(known).map(lambda chosen: {**params, **chosen})


@schemathesis.check
def problem_documents(ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> bool:
    """Every 4xx is an RFC 9457 problem document, and no answer carries a stack trace."""
    assert "Traceback" not in response.text, "the response carries a stack trace"
    if not 400 <= response.status_code < 500:
        return True
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/problem+json"), (
        f"a {response.status_code} as {content_type!r}"
    )
    body = json.loads(response.content)
    assert isinstance(body, dict), "the problem document is not an object"
    for member, kind in (("type", str), ("title", str), ("status", int), ("detail", str)):
        assert isinstance(body.get(member), kind), f"the problem document's {member!r} is missing or wrong"
    assert body["status"] == response.status_code, "the problem's status differs from the HTTP status"
    return True


def no_server_error(ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> bool:
    assert response.status_code < 500, f"server error {response.status_code}: {response.text[:500]}"
    return True


CHECKS = [
    no_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    problem_documents,
]


class Platform:
    """`python -m loyalty_local run` in a child process, on its own emulators and data."""

    def __init__(self, data: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = data / "platform.log"
        # No injected faults (make run FAULTS=...): a fault's 5xx is not what this test looks for.
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_FAULT_")}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "loyalty_local", "run", "--port", str(self.port), "--data", str(data)],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the platform exited:\n{self.tail()}")
            try:
                if requests.get(self.base + "/v1/health", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the platform did not answer in {timeout:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def seed_records(base: str) -> dict[str, list[str]]:
    """A member with a sale, a points redemption and a coupon, a merge, a gift card with a hold,
    merchandise credit, an offer, a reward and a price group: one of each for the fuzzer to find."""
    with requests.Session() as http:

        def ok(method: str, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
            response = http.request(method, base + path, json=body, headers={"x-api-key": key}, timeout=30)
            assert response.status_code in (200, 201, 202), f"{method} {path}: {response.text}"
            answer: dict[str, Any] = response.json()
            return answer

        def enrol(email: str) -> str:
            body = {"links": [{"type": "email", "value": email}]}
            return str(ok("POST", "/v1/customers", POS_KEY, body)["customer_id"])

        customer, merged = enrol("fuzz.member@example.com"), enrol("fuzz.other@example.com")
        line = {"line_id": "1", "sku": "ESP", "category": "coffee", "quantity": "2", "unit_price": "3.50"}
        sale = {
            "transaction_id": "FUZZ-T1",
            "type": "sale",
            "occurred_at": (datetime.now(UTC) - timedelta(hours=1)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),  # recent: old sales do not earn
            "customer": {"customer_id": customer},
            "lines": [line],
            "currency": "EUR",
            "total": "7.00",
        }
        ok("POST", "/v1/transactions", POS_KEY, sale)
        spend = {
            "redemption_id": "FUZZ-R1",
            "customer": {"customer_id": customer},
            "kind": "points",
            "points": 10,
        }
        ok("POST", "/v1/redemptions", POS_KEY, spend)
        effect = {"type": "amount_off", "value": "1", "skus": ["ESP"]}
        offer = {"offer_id": "fuzz-offer", "name": "Fuzz", "requires_coupon": True, "effect": effect}
        ok("POST", "/v1/admin/offers", ADMIN_KEY, offer)
        coupon = ok("POST", f"/v1/customers/{customer}/coupons", POS_KEY, {"offer_id": "fuzz-offer"})["code"]
        ok("POST", "/v1/admin/rewards", ADMIN_KEY, {"reward_id": "fuzz-reward", "name": "Fuzz", "points": 5})
        ok("PUT", "/v1/admin/price-groups/fuzz-group", ADMIN_KEY, {"group_id": "fuzz-group", "name": "Fuzz"})
        card = {"amount": "25.00", "currency": "EUR", "delivery": {"email": "fuzz.card@example.com"}}
        number = ok("POST", "/v1/gift-cards", POS_KEY, card)["card_number"]
        ok("POST", f"/v1/gift-cards/{number}/holds", POS_KEY, {"hold_id": "FUZZ-H1", "amount": "5.00"})
        credit = {"kind": "merchandise_credit", "amount": "10.00", "currency": "EUR"}
        account = ok("POST", f"/v1/customers/{customer}/accounts", ADMIN_KEY, credit)["account_id"]
        merge = ok("POST", "/v1/merges", ADMIN_KEY, {"survivor_id": customer, "merged_id": merged})[
            "merge_id"
        ]
    return {
        "customer_id": [customer],
        "transaction_id": ["FUZZ-T1"],
        "redemption_id": ["FUZZ-R1"],
        "code": [coupon],
        "offer_id": ["fuzz-offer"],
        "reward_id": ["fuzz-reward"],
        "group_id": ["fuzz-group"],
        "card_number": [number],
        "hold_id": ["FUZZ-H1"],
        "account_id": [account, number],
        "merge_id": [merge],
    }


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = Platform(tmp_path_factory.mktemp("fuzz-platform"))
    try:
        running.wait_ready()
        KNOWN.update(seed_records(running.base))
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture(params=PASSES)
def client_key(request: pytest.FixtureRequest) -> str:
    return CLIENT_KEYS[request.param]


def key_for(case: schemathesis.Case, client_key: str) -> str:
    if (case.method.upper(), case.path) in ADMIN_ROUTES or case.path.startswith("/v1/admin/"):
        return ADMIN_KEY
    return client_key


def fuzz_settings() -> settings:
    return settings(
        max_examples=EXAMPLES,
        derandomize=SEED is None,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


@schema.parametrize()
@fuzz_settings()
def test_every_operation_answers_as_documented(
    case: schemathesis.Case, platform: Platform, http: requests.Session, client_key: str
) -> None:
    headers = {"x-api-key": key_for(case, client_key)}
    try:
        case.call_and_validate(
            base_url=platform.base, session=http, headers=headers, checks=CHECKS, timeout=30
        )
    except Exception:
        print(f"platform log (last lines):\n{platform.tail(30)}")
        raise


OPENAPI = json.loads((REPO / "openapi.json").read_text())
# Every paged list: a GET that takes a `cursor`.
LISTS = sorted(
    path
    for path, operations in OPENAPI["paths"].items()
    if any(p.get("name") == "cursor" for p in operations.get("get", {}).get("parameters", []))
)


def list_url(path: str, choice: int) -> str | None:
    """The list's path with its ids filled from the seeded records (choice picks which), or None."""
    filled = path
    for name in (part[1:-1] for part in path.split("/") if part.startswith("{")):
        ids = KNOWN.get(name, [])
        if not ids:
            return None
        filled = filled.replace("{" + name + "}", ids[choice % len(ids)])
    return filled


def test_cursors_do_not_cross_lists(platform: Platform, http: requests.Session) -> None:
    """A next_cursor from one list, sent to every other list and to the same list for another id,
    is a 400 problem naming `cursor` (it was a 500 from DynamoDB), and pages its own list."""
    KNOWN.setdefault("customer_id", [])
    if len(KNOWN["customer_id"]) < 2:  # a second customer, so a customer's list has another id
        other = http.post(
            platform.base + "/v1/customers",
            json={"links": [{"type": "email", "value": "fuzz.cursor@example.com"}]},
            headers={"x-api-key": POS_KEY},
            timeout=30,
        )
        assert other.status_code in (200, 201), other.text
        KNOWN["customer_id"].append(other.json()["customer_id"])

    def get(url: str, cursor: str | None = None) -> requests.Response:
        key = ADMIN_KEY if url.startswith("/v1/admin/") else POS_KEY
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor is not None else {})}
        return http.get(platform.base + url, params=params, headers={"x-api-key": key}, timeout=30)

    sources = 0
    for source in LISTS:
        url = list_url(source, 0)
        if url is None:
            continue
        first = get(url)
        if first.status_code != 200 or not first.json().get("next_cursor"):
            continue
        sources += 1
        cursor = first.json()["next_cursor"]
        own = get(url, cursor)
        assert own.status_code == 200, (url, own.text)
        targets = [list_url(t, 0) for t in LISTS if t != source] + [list_url(source, 1)]
        for target in {t for t in targets if t and t != url}:
            response = get(target, cursor)
            assert response.status_code == 400, (source, target, response.status_code, response.text[:300])
            problem = response.json()
            assert problem["type"].endswith("/invalid-cursor"), problem
            assert [e["loc"] for e in problem["errors"]] == [["query", "cursor"]], problem
    assert sources >= 5, f"only {sources} lists had a second page to take a cursor from"
