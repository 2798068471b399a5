"""A bench scenario (the calls one endpoint gets) and its measured result; the events API
Gateway would send for them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from loyalty.api.routes import route_for
from loyalty_local.events import authorizer_request
from loyalty_local.gateway import LambdaContext, LocalGateway
from tools.bench.meter import CallCost

# ---- building the events API Gateway would send ---------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request: the concrete path parameters, query, body and key."""

    key: str
    params: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)  # more request headers, e.g. a gift card's PIN


@dataclass(frozen=True)
class Target:
    label: str
    check: Callable[[float, float], bool]  # (reads per call, writes per call) -> met?
    transactional: bool = False  # and every write round trip a TransactWriteItems


ENROL_TARGET = Target("1 write RT, 0 reads", lambda reads, writes: writes == 1 and reads == 0)
LOOKUP_TARGET = Target("1-2 read RTs, 0 writes", lambda reads, writes: 1 <= reads <= 2 and writes == 0)
EARN_TARGET = Target("1 write RT, <=1 read", lambda reads, writes: writes == 1 and reads <= 1)
REDEEM_TARGET = Target(
    "1 transact. write RT, <=1 read", lambda reads, writes: writes == 1 and reads <= 1, transactional=True
)


@dataclass
class Scenario:
    name: str
    method: str
    path: str  # the route's resource, e.g. /v1/customers/{customer_id}
    expect: int
    make: Callable[[int], Call]
    target: Target | None = None
    note: str = ""
    # sees each parsed response body; may return a complaint (the response was not what it claims)
    after: Callable[[int, dict[str, Any]], str | None] | None = None
    setup: Callable[[], list[str]] | None = None  # unmetered data preparation; returns complaints
    drop_failed: bool = False  # a call that fails is counted, and left out of the figures


@dataclass
class Result:
    name: str
    route: str
    function: str
    samples_ms: list[float]
    costs: list[CallCost]
    first: CallCost  # the first call on a fresh container: cold caches
    unexpected: list[str]
    target: Target | None
    note: str
    authorized: bool = True  # API Gateway runs the authorizer before it (all but public routes)
    gateway: bool = True  # a request through API Gateway (not the authorizer itself)
    failed: int = 0  # measured calls that failed and were left out of the figures (drop_failed)


def api_event(method: str, resource: str, call: Call, authorizer: dict[str, Any] | None) -> dict[str, Any]:
    route = route_for(method, resource)
    if route is None:
        raise RuntimeError(f"{method} {resource} is not in the route table")
    path = resource
    for name, value in call.params.items():
        path = path.replace("{" + name + "}", value)
    headers = {"Host": ["bench.local"], "User-Agent": ["loyalty-bench"], "x-api-key": [call.key]}
    body = b""
    if call.body is not None:
        headers["Content-Type"] = ["application/json"]
        body = json.dumps(call.body).encode()
    headers.update({name: [value] for name, value in call.headers.items()})
    event = LocalGateway._event(
        route, method, path, urlencode(call.query), headers, body, call.params, "10.0.0.1"
    )
    if authorizer is not None:
        event["requestContext"]["authorizer"] = dict(authorizer)
    return event


def authorizer_event(key: str) -> dict[str, Any]:
    """The REQUEST authorizer event for GET /v1/customers/{customer_id}."""
    call = Call(key, params={"customer_id": "01BENCH"})
    event = api_event("GET", "/v1/customers/{customer_id}", call, None)
    return authorizer_request(
        event, f"arn:aws:execute-api:eu-west-1:000000000000:local/local/GET{event['resource']}"
    )


def context(function: str) -> LambdaContext:
    return LambdaContext(function, aws_request_id=str(uuid.uuid4()), deadline=time.monotonic() + 30)


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]
