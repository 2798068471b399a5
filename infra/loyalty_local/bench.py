"""`make bench`: what each endpoint costs, printed as figures (never a pass/fail exit code).

For every route in the route table, and for the authorizer, it calls the real handler in-process
(no HTTP, no gateway) with the API Gateway event the function would get, and reports:

- DynamoDB round trips per call, split into reads and writes, counted by botocore event hooks on
  the client the Container uses (`before-call` / `after-call`, plus `before-send` for HTTP attempts,
  so a retry would show up as more attempts than calls);
- read and write capacity units per call, summed from the `ConsumedCapacity` of the parsed
  responses (every call in `loyalty.adapters.dynamo` asks for it);
- handler time p50 / p99 over ITERATIONS calls after a warm-up, writes using fresh data each time.

Then it times each function's cold import in fresh subprocesses against the floor (a bare process
importing boto3 + pydantic + the powertools resolver), medians of IMPORT_RUNS runs, and checks
that importing a handler does no network I/O, builds no AWS client and pulls in no X-Ray SDK.

DynamoDB is DynamoDB Local (in memory), so handler times include real localhost round trips.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import boto3

from loyalty.api.routes import AUTHORIZER, FUNCTIONS, ROUTES, route_for
from loyalty.bootstrap import Container, use_container
from loyalty.domain.access import Access
from loyalty.settings import Settings
from loyalty_local.emulators import REGION
from loyalty_local.gateway import FUNCTIONS_DIR, REPO, Handler, LambdaContext, LocalGateway, load_handler
from loyalty_local.runtime import LocalRuntime

ITERATIONS = int(os.environ.get("BENCH_ITERATIONS", "200"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "20"))
IMPORT_RUNS = int(os.environ.get("BENCH_IMPORT_RUNS", "5"))
IMPORT_LIMIT = 1.2  # no function's cold import above 1.2x the floor (issue 2)
LAYER_DIR = REPO / "layers" / "shared" / "python"

READ_OPS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
WRITE_OPS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


# ---- counting DynamoDB round trips and capacity -------------------------------------------------


@dataclass
class CallCost:
    reads: int = 0
    writes: int = 0
    other: int = 0
    attempts: int = 0  # HTTP requests sent: more than calls means botocore retried
    rcu: float = 0.0
    wcu: float = 0.0  # as DynamoDB Local reports it
    tx_reported: float = 0.0  # the TransactWriteItems part of `wcu`
    tx_items: list[tuple[str, int | None, dict[str, Any] | None]] = field(default_factory=list)  # table
    tx_estimate: float = 0.0  # the same transactions, priced by DynamoDB's published rules
    ops: list[str] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return self.reads + self.writes + self.other

    @property
    def wcu_estimate(self) -> float:
        return self.wcu - self.tx_reported + self.tx_estimate


class DynamoMeter:
    """Counts what one DynamoDB client does, through its botocore event system.

    Only calls made between start() and stop() count, so set-up reads (the authorizer verdict a
    scenario needs, the item sizes looked up afterwards) never land in a handler's figures.
    """

    def __init__(self) -> None:
        self.current = CallCost()
        self.active = False

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-call.dynamodb", self._before_call, unique_id="bench-before-call")
        events.register("after-call.dynamodb", self._after_call, unique_id="bench-after-call")
        events.register("before-send.dynamodb", self._before_send, unique_id="bench-before-send")

    def attach_other(self, client: Any) -> None:
        """Calls to other services (the pepper from Secrets Manager) are listed, not counted."""
        client.meta.events.register("before-call", self._before_other, unique_id="bench-before-other")

    def _before_other(self, model: Any, **_: Any) -> None:
        if self.active:
            self.current.ops.append(f"{model.service_model.service_name}:{model.name}")

    def start(self) -> CallCost:
        self.current = CallCost()
        self.active = True
        return self.current

    def stop(self) -> None:
        self.active = False

    def _before_call(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if not self.active:
            return
        op = str(model.name)
        self.current.ops.append(op)
        if op in READ_OPS:
            self.current.reads += 1
        elif op in WRITE_OPS:
            self.current.writes += 1
        else:
            self.current.other += 1
        if op == "TransactWriteItems":
            body = json.loads(params.get("body") or b"{}")
            for entry in body.get("TransactItems", []):
                action, spec = next(iter(entry.items()))
                table = str(spec["TableName"])
                if action == "Put":  # the new image is in the request
                    self.current.tx_items.append((table, item_size(spec["Item"]), None))
                else:  # Update / Delete / ConditionCheck: sized after the call, off the clock
                    self.current.tx_items.append((table, None, spec["Key"]))

    def _before_send(self, **_: Any) -> None:
        if self.active:
            self.current.attempts += 1

    def _after_call(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        if not self.active:
            return
        consumed = parsed.get("ConsumedCapacity") or []
        if isinstance(consumed, dict):  # single-item calls; batch and transaction calls give a list
            consumed = [consumed]
        op = str(model.name)
        for entry in consumed:
            read, write = entry.get("ReadCapacityUnits"), entry.get("WriteCapacityUnits")
            if read is None and write is None:  # ReturnConsumedCapacity=TOTAL gives only the total
                units = float(entry.get("CapacityUnits") or 0.0)
                read, write = (units, 0.0) if op in READ_OPS else (0.0, units)
            self.current.rcu += float(read or 0.0)
            self.current.wcu += float(write or 0.0)
            if op == "TransactWriteItems":
                self.current.tx_reported += float(write or 0.0)


def settle_transactions(cost: CallCost, client: Any) -> None:
    """Price each transaction item as DynamoDB does: 2 WCU per started KB of the item (a
    ConditionCheck is priced like a write here). An update is sized by its new image, read back
    here; a deleted item, gone by now, counts 1 KB."""
    total = 0.0
    for table, known, key in cost.tx_items:
        size = known or 1
        if known is None and key is not None:
            found = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
            size = item_size(found) if found else 1
        total += 2 * max(1, math.ceil(size / 1024))
    cost.tx_estimate = total


def item_size(item: dict[str, Any]) -> int:
    """An item's size in bytes by DynamoDB's rules (attribute names plus values), wire format."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        digits = str(inner).lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(str(inner)) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in inner)
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: v}) for v in inner)
    return 0


# ---- building the events API Gateway would send ---------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request: the concrete path parameters, query, body and key."""

    key: str
    params: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None


@dataclass(frozen=True)
class Target:
    label: str
    check: Callable[[float, float], bool]  # (reads per call, writes per call) -> met?


ENROL_TARGET = Target("1 write RT, 0 reads", lambda reads, writes: writes == 1 and reads == 0)
LOOKUP_TARGET = Target("1-2 read RTs, 0 writes", lambda reads, writes: 1 <= reads <= 2 and writes == 0)


@dataclass
class Scenario:
    name: str
    method: str
    path: str  # the route's resource, e.g. /v1/customers/{customer_id}
    expect: int
    make: Callable[[int], Call]
    target: Target | None = None
    note: str = ""
    after: Callable[[int, dict[str, Any]], None] | None = None  # sees each parsed response body


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
    return {
        "type": "REQUEST",
        "methodArn": f"arn:aws:execute-api:eu-west-1:000000000000:local/local/GET{event['resource']}",
        **{k: event[k] for k in ("resource", "path", "httpMethod", "headers", "multiValueHeaders")},
        **{k: event[k] for k in ("queryStringParameters", "pathParameters", "requestContext")},
    }


def context(function: str) -> LambdaContext:
    return LambdaContext(function, aws_request_id=str(uuid.uuid4()), deadline=time.monotonic() + 30)


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


# ---- the endpoint bench --------------------------------------------------------------------------


class EndpointBench:
    """One warm instance of each function, as a Lambda container keeps between requests."""

    def __init__(self, runtime: LocalRuntime) -> None:
        assert runtime.container is not None
        self.meter = DynamoMeter()
        self.session = boto3.session.Session(region_name=REGION)
        self.sizer = self.session.client("dynamodb")  # unmetered: reads item sizes back afterwards
        self.handlers: dict[str, Handler] = {f.name: load_handler(f.name) for f in (*FUNCTIONS, AUTHORIZER)}
        self.principals: dict[str, dict[str, Any]] = {}
        self.run = uuid.uuid4().hex[:8]
        self.customers: list[dict[str, Any]] = []
        self.key_ids: list[str] = []
        self.programme: dict[str, Any] = {}

    def fresh_container(self) -> None:
        """A new composition root, as a cold Lambda container has: empty store / programme caches."""
        fresh = Container(Settings.from_env(), session=self.session)
        self.meter.attach(fresh.table._client)
        self.meter.attach_other(fresh.pepper._client)
        use_container(fresh)

    def authorize(self, key: str) -> dict[str, Any]:
        """The real authorizer's verdict, as API Gateway puts it into the function's event."""
        if key not in self.principals:
            verdict = self.handlers[AUTHORIZER.name](authorizer_event(key), context(AUTHORIZER.name))
            self.principals[key] = {**verdict["context"], "principalId": verdict["principalId"]}
        return self.principals[key]

    def _loop(
        self,
        function: str,
        make_event: Callable[[int], dict[str, Any]],
        check: Callable[[int, Any], str | None],
    ) -> tuple[list[float], list[CallCost], CallCost, list[str]]:
        """Warm-up then measured calls; `check` returns a complaint or None for each response."""
        self.fresh_container()
        handler = self.handlers[function]
        samples: list[float] = []
        costs: list[CallCost] = []
        unexpected: list[str] = []
        first = CallCost()
        output = io.StringIO()  # EMF lines powertools prints; kept out of the table
        for i in range(WARMUP + ITERATIONS):
            try:
                event = make_event(i)
            except Exception as exc:  # an earlier scenario left no data to work on
                unexpected.append(f"no request could be built: {exc!r}")
                continue
            ctx = context(function)
            cost = self.meter.start()
            with contextlib.redirect_stdout(output):
                start = time.perf_counter()
                try:
                    response: Any = handler(event, ctx)
                except Exception as exc:  # the authorizer answers 401 by raising
                    response = exc
                elapsed = (time.perf_counter() - start) * 1000
            self.meter.stop()
            complaint = check(i, response)
            if complaint:
                unexpected.append(complaint)
            if i == 0:
                first = cost
            if i >= WARMUP:
                if cost.tx_items:
                    settle_transactions(cost, self.sizer)
                samples.append(elapsed)
                costs.append(cost)
            output.seek(0)
            output.truncate()
        return samples, costs, first, unexpected

    def measure(self, scenario: Scenario) -> Result:
        route = route_for(scenario.method, scenario.path)
        assert route is not None

        def make_event(i: int) -> dict[str, Any]:
            call = scenario.make(i)
            verdict = self.authorize(call.key) if route.access is not Access.PUBLIC else None
            return api_event(scenario.method, scenario.path, call, verdict)

        def check(i: int, response: Any) -> str | None:
            if isinstance(response, Exception):
                return repr(response)
            status, body = int(response.get("statusCode", 0)), response.get("body") or ""
            if status != scenario.expect:
                return f"{status} {body[:300]}"
            if scenario.after is not None:
                scenario.after(i, json.loads(body) if body else {})
            return None

        samples, costs, first, unexpected = self._loop(route.function, make_event, check)
        where = f"{scenario.method} {scenario.path}"
        return Result(
            scenario.name,
            where,
            route.function,
            samples,
            costs,
            first,
            unexpected,
            scenario.target,
            scenario.note,
        )

    def measure_authorizer(self) -> Result:
        keys = ("local-pos-key", "local-web-key", "local-admin-key")

        def check(i: int, verdict: Any) -> str | None:
            if isinstance(verdict, Exception):
                return repr(verdict)
            allowed = verdict["policyDocument"]["Statement"][0]["Effect"] == "Allow"
            return None if allowed else json.dumps(verdict)[:300]

        samples, costs, first, unexpected = self._loop(
            AUTHORIZER.name, lambda i: authorizer_event(keys[i % len(keys)]), check
        )
        target = Target("1 read RT", lambda reads, writes: reads == 1 and writes == 0)
        where = "REQUEST authorizer (x-api-key, uncached)"
        return Result(
            "authorizer", where, AUTHORIZER.name, samples, costs, first, unexpected, target, "3 demo keys"
        )

    # ---- the scenarios, in an order where each one's data comes from an earlier one -------------
    def scenarios(self) -> list[Scenario]:
        pos, admin = "local-pos-key", "local-admin-key"
        run = self.run

        def enrolled(i: int, body: dict[str, Any]) -> None:
            self.customers.append(body)

        def issued(i: int, body: dict[str, Any]) -> None:
            self.key_ids.append(str(body["key_id"]))

        def programme(i: int, body: dict[str, Any]) -> None:
            self.programme = body

        def cust(i: int) -> dict[str, Any]:
            return self.customers[i % len(self.customers)]

        def cid(i: int) -> dict[str, str]:
            return {"customer_id": str(cust(i)["customer_id"])}

        alt = "alt-{run}-{i}@example.com"
        return [
            Scenario("health", "GET", "/v1/health", 200, lambda i: Call("")),
            Scenario(
                "enroll",
                "POST",
                "/v1/customers",
                201,
                lambda i: Call(
                    pos,
                    body={
                        "links": [{"type": "email", "value": f"Bench-{run}-{i}@Example.com"}],
                        "profile": {"first_name": "Bench", "last_name": f"Customer {i}"},
                        "consents": {"email": True},
                    },
                ),
                ENROL_TARGET,
                "member, email link + generated card",
                after=enrolled,
            ),
            Scenario("get customer", "GET", "/v1/customers/{customer_id}", 200, lambda i: Call(pos, cid(i))),
            Scenario(
                "lookup (card)",
                "GET",
                "/v1/customers",
                200,
                lambda i: Call(pos, query={"link_type": "card", "link_value": str(cust(i)["card"])}),
                LOOKUP_TARGET,
            ),
            Scenario(
                "lookup (email)",
                "GET",
                "/v1/customers",
                200,
                lambda i: Call(
                    pos, query={"link_type": "email", "link_value": f"bench-{run}-{i}@example.com"}
                ),
                LOOKUP_TARGET,
            ),
            Scenario(
                "patch customer",
                "PATCH",
                "/v1/customers/{customer_id}",
                200,
                lambda i: Call(
                    pos, cid(i), body={"profile": {"first_name": f"Renamed {i}"}, "consents": {"sms": True}}
                ),
            ),
            Scenario(
                "add link",
                "POST",
                "/v1/customers/{customer_id}/links",
                201,
                lambda i: Call(pos, cid(i), body={"type": "email", "value": alt.format(run=run, i=i)}),
                note="on_conflict=reject, link free",
            ),
            Scenario(
                "remove link",
                "DELETE",
                "/v1/customers/{customer_id}/links/{type}/{value}",
                204,
                lambda i: Call(pos, {**cid(i), "type": "email", "value": alt.format(run=run, i=i)}),
            ),
            Scenario(
                "put store",
                "PUT",
                "/v1/admin/stores/{store_id}",
                201,
                lambda i: Call(
                    admin,
                    {"store_id": f"bench-{run}-{i}"},
                    body={"channel": "pos", "format": "kiosk", "name": f"Bench {i}", "attributes": {"n": i}},
                ),
                note="new store each call",
            ),
            Scenario(
                "get store",
                "GET",
                "/v1/admin/stores/{store_id}",
                200,
                lambda i: Call(admin, {"store_id": f"bench-{run}-{i}"}),
                note="a different store each call: misses the 60 s cache",
            ),
            Scenario(
                "list stores", "GET", "/v1/admin/stores", 200, lambda i: Call(admin), note="first page (50)"
            ),
            Scenario(
                "issue api key",
                "POST",
                "/v1/admin/api-keys",
                201,
                lambda i: Call(admin, body={"kind": "pos", "store_id": "ams-01", "name": f"bench till {i}"}),
                after=issued,
            ),
            Scenario(
                "list api keys",
                "GET",
                "/v1/admin/api-keys",
                200,
                lambda i: Call(admin),
                note="first page (50)",
            ),
            Scenario(
                "revoke api key",
                "DELETE",
                "/v1/admin/api-keys/{key_id}",
                204,
                lambda i: Call(admin, {"key_id": self.key_ids[i]}),
            ),
            Scenario(
                "get programme",
                "GET",
                "/v1/admin/programme",
                200,
                lambda i: Call(admin),
                note="served from the 60 s cache",
                after=programme,
            ),
            Scenario(
                "put programme",
                "PUT",
                "/v1/admin/programme",
                200,
                lambda i: Call(admin, body=self.programme),
                note="same document each call",
            ),
        ]


# ---- cold imports ---------------------------------------------------------------------------------

# Every script does the same set-up (the layer on sys.path, as /opt/python is on Lambda) and times
# only the imports, so interpreter start-up, identical for all, does not dilute the ratio.
FLOOR_IMPORTS = (
    "import boto3, pydantic\nfrom aws_lambda_powertools.event_handler import APIGatewayRestResolver\n"
)
TIMED_SCRIPT = """
import importlib.util, sys, time
sys.path.insert(0, sys.argv[1])
start = time.perf_counter()
{body}
print(time.perf_counter() - start)
"""
FLOOR_SCRIPT = TIMED_SCRIPT.format(body=FLOOR_IMPORTS)
# `import pydantic` is lazy: BaseModel's machinery loads on first use. Any function with a
# pydantic model, and powertools' validating resolver, pays this on top of the floor.
REFERENCE_SCRIPT = TIMED_SCRIPT.format(
    body=FLOOR_IMPORTS + "from pydantic import BaseModel\nAPIGatewayRestResolver(enable_validation=True)\n"
)
FUNCTION_SCRIPT = TIMED_SCRIPT.format(
    body='spec = importlib.util.spec_from_file_location("handler", sys.argv[2])\n'
    "module = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(module)\n"
)

# Imports the handler with the network cut off and AWS client creation recorded: a handler that
# touches the network, builds a client or the container, or imports the X-Ray SDK at import time
# is reported. It also counts the modules the handler adds on top of the floor's.
CHECK_SCRIPT = (
    """
import importlib.util, json, socket, sys
sys.path.insert(0, sys.argv[1])
seen = []
def refuse(*args, **kwargs):
    seen.append("network: " + repr(args[1:2] or args[:1])[:80])
    raise OSError("network I/O during import")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.getaddrinfo = refuse
socket.create_connection = refuse
import botocore.session
create_client = botocore.session.Session.create_client
def recording(self, service_name, *args, **kwargs):
    seen.append("client: " + service_name)
    return create_client(self, service_name, *args, **kwargs)
botocore.session.Session.create_client = recording
"""
    + FLOOR_IMPORTS
    + """
before = set(sys.modules)
spec = importlib.util.spec_from_file_location("handler", sys.argv[2])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
import loyalty.bootstrap
if loyalty.bootstrap._container is not None:
    seen.append("the container was built at import")
added = set(sys.modules) - before
packages = {}
for name in added:
    packages[name.split(".")[0]] = packages.get(name.split(".")[0], 0) + 1
print(json.dumps({
    "seen": seen,
    "xray": any(m.startswith("aws_xray_sdk") for m in sys.modules),
    "modules": len(added),
    "packages": sorted(packages.items(), key=lambda kv: -kv[1]),
}))
"""
)


def import_environment() -> dict[str, str]:
    """What a fresh Lambda process has before its first request: no table, no endpoints, no keys."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "AWS_DEFAULT_REGION": REGION})
    return env


def run_script(script: str, *args: str, write_bytecode: bool = False) -> str:
    env = import_environment()
    if write_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE")
    done = subprocess.run(
        [sys.executable, "-c", script, str(LAYER_DIR), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"import subprocess failed: {done.stderr.strip()[-800:]}")
    return done.stdout.strip().splitlines()[-1]


@dataclass
class ImportFigures:
    floor_ms: float
    reference_ms: float
    functions_ms: dict[str, float]
    checks: dict[str, dict[str, Any]]


def measure_imports() -> ImportFigures:
    names = [f.name for f in (*FUNCTIONS, AUTHORIZER)]
    paths = {name: str(FUNCTIONS_DIR / name / "handler.py") for name in names}
    # One untimed run each first, writing bytecode, so every timed run reads the same cached .pyc
    # files (as a deployed package with compiled files would) and the file cache is warm.
    for name in names:
        run_script(FUNCTION_SCRIPT, paths[name], write_bytecode=True)
    run_script(REFERENCE_SCRIPT, write_bytecode=True)
    floor: list[float] = []
    reference: list[float] = []
    timings: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(IMPORT_RUNS):  # interleaved, so drift in machine load hits all alike
        floor.append(float(run_script(FLOOR_SCRIPT)) * 1000)
        reference.append(float(run_script(REFERENCE_SCRIPT)) * 1000)
        for name in names:
            timings[name].append(float(run_script(FUNCTION_SCRIPT, paths[name])) * 1000)
    checks = {name: json.loads(run_script(CHECK_SCRIPT, paths[name])) for name in names}
    return ImportFigures(
        statistics.median(floor),
        statistics.median(reference),
        {n: statistics.median(t) for n, t in timings.items()},
        checks,
    )


# ---- printing -------------------------------------------------------------------------------------


def per_call(values: list[float]) -> str:
    mean = statistics.fmean(values)
    low, high = min(values), max(values)
    text = f"{mean:.2f}".rstrip("0").rstrip(".")
    if low != high:
        text += f" ({low:g}-{high:g})"
    return text


def mark(met: bool) -> str:
    return "PASS" if met else "MISS"


def print_endpoints(results: list[Result]) -> None:
    header = (
        f"{'endpoint':<15} {'route':<51} {'RT':>4} {'rd':>3} {'wr':>3} {'RCU':>5} {'WCU':>5} "
        f"{'WCU*':>5} {'1st':>3} {'p50 ms':>6} {'p99 ms':>6}  target"
    )
    print(header)
    print("-" * (len(header) + 22))
    for r in results:
        if not r.costs:
            print(f"{r.name:<15} {r.route:<51} no call completed")
            continue
        reads = [float(c.reads) for c in r.costs]
        writes = [float(c.writes) for c in r.costs]
        calls = [float(c.calls) for c in r.costs]
        target = ""
        if r.target is not None:
            steady = min(calls) == max(calls)
            met = steady and r.target.check(statistics.fmean(reads), statistics.fmean(writes))
            target = f"{mark(met)} {r.target.label}"
        rcu = statistics.fmean(c.rcu for c in r.costs)
        wcu = statistics.fmean(c.wcu for c in r.costs)
        est = statistics.fmean(c.wcu_estimate for c in r.costs)
        route = r.route if len(r.route) <= 51 else r.route[:50] + "~"
        print(
            f"{r.name:<15} {route:<51} {per_call(calls):>4} {per_call(reads):>3} {per_call(writes):>3} "
            f"{rcu:>5.2f} {wcu:>5.2f} {est:>5.2f} {r.first.calls:>3} "
            f"{percentile(r.samples_ms, 50):>6.1f} {percentile(r.samples_ms, 99):>6.1f}  {target}"
        )
    print()
    print("RT: DynamoDB round trips per call (rd reads, wr writes; 'a (b-c)' = mean (min-max)).")
    print("RCU, WCU: capacity units per call as DynamoDB Local reports them. DynamoDB Local prices a")
    print("  TransactWriteItems as 4 WCU per started KB of its largest item, whatever the item count;")
    print("  WCU* re-prices transactions by DynamoDB's rule, 2 WCU per started KB of each item (updates")
    print("  sized by their new image, deletes as 1 KB); other calls keep the reported figure.")
    print("1st: round trips of the first call on a fresh container (cold store / programme caches).")
    print("p50 / p99: in-process handler time, no HTTP gateway; DynamoDB Local over localhost.")
    print()
    print("What one call sends, in order (mixes show each shape and how often it occurred):")
    for r in results:
        shapes: dict[str, int] = {}
        for c in r.costs:
            shape = " > ".join(c.ops) or "(nothing)"
            shapes[shape] = shapes.get(shape, 0) + 1
        ordered = sorted(shapes.items(), key=lambda kv: -kv[1]) or [("(no call)", 0)]
        text = "; ".join(f"{ops} x{n}" if len(ordered) > 1 else ops for ops, n in ordered)
        first = " > ".join(r.first.ops) or "(nothing)"
        cold = f"  | 1st: {first}" if r.first.ops != ordered[0][0].split(" > ") else ""
        retries = sum(c.attempts - c.calls for c in r.costs)
        extra = f"  [{retries} HTTP retries]" if retries else ""
        note = f"  ({r.note})" if r.note else ""
        print(f"  {r.name:<15} {text}{extra}{note}{cold}")
    failures = [r for r in results if r.unexpected]
    if failures:
        print()
        print("Unexpected responses (the figures of these rows include failed calls):")
        for r in failures:
            print(f"  {r.name} ({r.route}): {len(r.unexpected)} x, first: {r.unexpected[0]}")


def print_imports(figures: ImportFigures) -> None:
    floor = figures.floor_ms
    print(f"Cold import, median of {IMPORT_RUNS} fresh processes each (imports only, no interpreter start)")
    print(f"  {'floor: boto3 + pydantic + APIGatewayRestResolver':<52} {floor:>6.0f} ms  1.00x")
    for name, ms in figures.functions_ms.items():
        ratio = ms / floor
        check = figures.checks[name]
        flags = []
        if check["seen"]:
            flags.append("I/O at import: " + ", ".join(check["seen"]))
        if check["xray"]:
            flags.append("imports the X-Ray SDK")
        flag_text = ("  ! " + "; ".join(flags)) if flags else ""
        heavy = ", ".join(f"{pkg} {n}" for pkg, n in check["packages"][:4])
        print(
            f"  {'functions/' + name + '/handler.py':<52} {ms:>6.0f} ms  {ratio:.2f}x  "
            f"{mark(ratio <= IMPORT_LIMIT)} <= {IMPORT_LIMIT}x  "
            f"+{check['modules']} modules ({heavy}){flag_text}"
        )
    reference = figures.reference_ms
    print(
        f"  {'reference: floor + BaseModel + validating resolver':<52} {reference:>6.0f} ms  "
        f"{reference / floor:.2f}x  (not a target: what any function here pays before its own code)"
    )
    clean = all(not c["seen"] and not c["xray"] for c in figures.checks.values())
    if clean:
        print("  No handler touched the network, built an AWS client or the container, or imported the")
        print("  X-Ray SDK while importing (checked with sockets refused and no AWS settings in the env).")


def main() -> None:
    began = time.monotonic()
    python = sys.version.split()[0]
    print(f"loyalty bench: {ITERATIONS} calls per endpoint after {WARMUP} warm-up calls; Python {python}")
    print()
    # Imports first, while nothing else runs on the machine.
    imports = measure_imports()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    runtime = LocalRuntime().start(with_gateway=False)
    try:
        bench = EndpointBench(runtime)
        results = [bench.measure_authorizer()]
        scenarios = bench.scenarios()
        for scenario in scenarios:
            results.append(bench.measure(scenario))
    finally:
        runtime.stop()

    print_endpoints(results)
    covered = {(s.method, s.path) for s in scenarios}
    missing = [f"{r.method} {r.path}" for r in ROUTES if (r.method, r.path) not in covered]
    if missing:
        print(f"\nRoutes without a bench scenario yet: {', '.join(missing)}")
    print()
    print_imports(imports)
    print(f"\nbench took {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
