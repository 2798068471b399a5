"""`make bench`: what each endpoint costs, printed as figures (never a pass/fail exit code).

For every route in the route table, and for the authorizer, it calls the real handler in-process
(no HTTP, no gateway) with the API Gateway event the function would get, and reports:

- DynamoDB round trips per call, split into reads and writes, counted by botocore event hooks on
  the client the Container uses (`before-call` / `after-call`, plus `before-send` for HTTP attempts,
  so a retry would show up as more attempts than calls);
- read and write capacity units per call: as DynamoDB Local reports them (the `ConsumedCapacity`
  every call in `loyalty.adapters.dynamo` asks for), and re-priced by DynamoDB's published rules
  from the requests and responses themselves (item sizes, consistency, transactions, indexes);
- the domain events a call writes into its items' outbox (published to EventBridge from the stream);
- handler time p50 / p99 over ITERATIONS calls after a warm-up, writes using fresh data each time;
- the cost per million calls at AWS on-demand list prices (API Gateway, Lambda, DynamoDB,
  EventBridge, and the authorizer with and without its result cache);
- the earn path of issue 3 on its own: a 5-line sale by a member with 50 earlier lots, against its
  targets (one write round trip, at most one read, under $8 per million sales);
- cart evaluation (issue 4): POST /v1/cart/evaluate with 10, 100 and 1,000 live offers (bench_offers'
  synthetic mix, plus some per-customer limits and budgets, written straight through OfferService)
  x 5- and 50-line carts by members with personal coupons, and one anonymous variant: round trips and
  BatchGetItem keys per warm call, capacity, handler and engine p50 / p99 (the engine timed inside the
  handler), the cold call's catalogue load, how often the catalogue version was checked, against the
  issue's targets (a warm evaluation at most one round trip; engine p99 under 5 ms at 1,000 offers and
  50 lines); its rows join the cost table. Then the engine alone on a dense catalogue (bench_offers'
  dense case: 1,000 live site-wide offers on 20 categories, every offer a candidate; 5- and 50-line
  carts; p50, p99 and full collections during the run, against p99 under 1 ms and 5 ms).

Then identity merges (bench_merges): DynamoDB round trips, capacity and wall time of one merge of a
profile with 10, 100, 1,000 and 10,000 sales (about three minutes of the run, most of it the
10,000-sale profile's set-up and merge), against the issue's target (linear in the records moved,
at most one round trip per 25 records), and merges per second through the local FIFO queue.

Then it times each function's cold import in fresh subprocesses against the floor (a bare process
importing boto3 + pydantic + the powertools resolver), medians of IMPORT_RUNS runs, and checks
that importing a handler does no network I/O, builds no AWS client and pulls in no X-Ray SDK.

DynamoDB is DynamoDB Local (in memory), so handler times include real localhost round trips. The
runtime's background jobs (stream publisher, sweeper) stay off: they would share the metered
client and the two cores.

Settings (environment): BENCH_ITERATIONS, BENCH_WARMUP, BENCH_IMPORT_RUNS, BENCH_RT_LATENCY_MS
(network time added per DynamoDB round trip when pricing Lambda, default 5), BENCH_EARN_MEMBERS
(members the earn path rotates through, default 10), BENCH_PRIOR_LOTS (their earlier lots, 50),
BENCH_CART_PER_CUSTOMER and BENCH_CART_BUDGET (the shares of cart offers with a per-customer limit,
default 0.10, and with a budget, 0.05), BENCH_DENSE_ITERATIONS (evaluations per dense case, 2000).
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import logging
import math
import os
import random
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import boto3

from loyalty.api.routes import AUTHORIZER, FUNCTIONS, ROUTES, route_for
from loyalty.bootstrap import Container, container, use_container
from loyalty.domain.access import Access
from loyalty.domain.offers import CartLine, CouponInput, Evaluation, Limits, Offer, PriceGroup
from loyalty.domain.stored_value import luhn_check_digit
from loyalty.domain.stores import Channel, Store
from loyalty.resources import TABLE
from loyalty.services.offers import CATALOGUE_SECONDS
from loyalty.settings import Settings
from loyalty_local import bench_offers
from loyalty_local.emulators import REGION
from loyalty_local.gateway import FUNCTIONS_DIR, REPO, Handler, LambdaContext, LocalGateway, load_handler
from loyalty_local.runtime import LocalRuntime

ITERATIONS = int(os.environ.get("BENCH_ITERATIONS", "200"))
# The engine alone on the dense catalogue (pure CPU): evaluations per cart size.
DENSE_ITERATIONS = int(os.environ.get("BENCH_DENSE_ITERATIONS", "2000"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "20"))
IMPORT_RUNS = int(os.environ.get("BENCH_IMPORT_RUNS", "5"))
IMPORT_LIMIT = 1.2  # no function's cold import above 1.2x the floor (issue 2)
LAYER_DIR = REPO / "layers" / "shared" / "python"
RT_LATENCY_MS = float(os.environ.get("BENCH_RT_LATENCY_MS", "5"))
EARN_MEMBERS = max(1, int(os.environ.get("BENCH_EARN_MEMBERS", "10")))
PRIOR_LOTS = int(os.environ.get("BENCH_PRIOR_LOTS", "50"))
SALE_LINES = 5
SALE_TARGET_USD = 8.0  # per million sales (issue 3)
CATEGORIES = ("coffee", "bakery", "dairy", "snacks", "household")
EARN_PATH = "sale (earn path)"

READ_OPS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
WRITE_OPS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


# ---- counting DynamoDB round trips and capacity -------------------------------------------------

# The single table's indexes (both project ALL): an item carrying an index's keys is written there too.
INDEXES = tuple((index.name, index.partition_key, index.sort_key) for index in TABLE.indexes)
_ASSIGNMENT = re.compile(r"(#?[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(:[A-Za-z0-9_]+)")


@dataclass
class Written:
    """One item a write call touched, as the request names it; priced after the call."""

    table: str
    action: str  # Put | Update | Delete | ConditionCheck
    transactional: bool
    key: dict[str, Any]
    image: dict[str, Any] | None = None  # a Put's new image is in the request


@dataclass
class Priced:
    """One written item priced by DynamoDB's rules."""

    kind: str  # the key's shape, e.g. TXN/TXN, CUST/PROFILE, CUST/LEDGER
    action: str
    size: int  # bytes: the Put's item, an Update's new image read back; a Delete counts 1 KB
    units: float  # 1 WCU per started KB, 2 in a transaction
    indexes: tuple[str, ...]  # the indexes the item is written to: 1 WCU per started KB each
    largest: tuple[tuple[str, int], ...] = ()  # its three largest attributes, (name, bytes)


@dataclass
class CallCost:
    reads: int = 0
    writes: int = 0
    other: int = 0
    attempts: int = 0  # HTTP requests sent: more than calls means botocore retried
    rcu: float = 0.0  # as DynamoDB Local reports it
    wcu: float = 0.0  # as DynamoDB Local reports it
    rcu_estimate: float = 0.0  # the same reads priced by DynamoDB's published rules
    written: list[Written] = field(default_factory=list)
    priced: list[Priced] = field(default_factory=list)  # filled by settle_writes, off the clock
    events: list[str] = field(default_factory=list)  # detail types of the outbox entries written
    pending_events: list[str] = field(default_factory=list)  # those of the call in flight
    ops: list[str] = field(default_factory=list)
    reads_of: list[str] = field(default_factory=list)  # each read named: its key, keys or partition
    dynamo_ms: float = 0.0  # in DynamoDB calls: botocore's validation, (de)serialisation and the wait

    @property
    def calls(self) -> int:
        return self.reads + self.writes + self.other

    @property
    def wcu_estimate(self) -> float:
        return sum(p.units + len(p.indexes) * _kb(p.size) for p in self.priced)


class DynamoMeter:
    """Counts what one DynamoDB client does, through its botocore event system.

    Only calls made between start() and stop() count, so set-up reads (the authorizer verdict a
    scenario needs, the item sizes looked up afterwards) never land in a handler's figures.
    """

    def __init__(self) -> None:
        self.current = CallCost()
        self.active = False
        self._request: dict[str, Any] = {}
        self._sent_at = 0.0

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-parameter-build.dynamodb", self._begin, unique_id="bench-begin")
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

    def _begin(self, **_: Any) -> None:
        """The start of a DynamoDB call, before botocore validates and serialises the parameters."""
        self._sent_at = time.perf_counter()

    def _before_call(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if not self.active:
            return
        op = str(model.name)
        self.current.ops.append(op)
        body = json.loads(params.get("body") or b"{}")
        self._request = body
        if op in READ_OPS:
            self.current.reads += 1
            self.current.reads_of.append(read_label(op, body))
        elif op in WRITE_OPS:
            self.current.writes += 1
            self.current.pending_events = []
            for action, spec, transactional in _write_actions(op, body):
                self._note_write(action, spec, transactional)
        else:
            self.current.other += 1

    def _note_write(self, action: str, spec: dict[str, Any], transactional: bool) -> None:
        item = spec.get("Item")
        key = spec.get("Key") or {
            name: item[name] for name in (TABLE.partition_key, TABLE.sort_key) if item and name in item
        }
        self.current.written.append(Written(str(spec["TableName"]), action, transactional, key, item))
        self.current.pending_events.extend(outbox_entries(action, spec))

    def _before_send(self, **_: Any) -> None:
        if self.active:
            self.current.attempts += 1

    def _after_call(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        if not self.active:
            return
        self.current.dynamo_ms += (time.perf_counter() - self._sent_at) * 1000
        op = str(model.name)
        if op in WRITE_OPS and not parsed.get("Error"):  # a cancelled write publishes nothing
            self.current.events.extend(self.current.pending_events)
        self.current.pending_events = []
        if op in READ_OPS and not parsed.get("Error"):
            self.current.rcu_estimate += read_units(op, self._request, parsed)
        consumed = parsed.get("ConsumedCapacity") or []
        if isinstance(consumed, dict):  # single-item calls; batch and transaction calls give a list
            consumed = [consumed]
        for entry in consumed:
            read, write = entry.get("ReadCapacityUnits"), entry.get("WriteCapacityUnits")
            if read is None and write is None:  # ReturnConsumedCapacity=TOTAL gives only the total
                units = float(entry.get("CapacityUnits") or 0.0)
                read, write = (units, 0.0) if op in READ_OPS else (0.0, units)
            self.current.rcu += float(read or 0.0)
            self.current.wcu += float(write or 0.0)


def read_label(op: str, body: dict[str, Any]) -> str:
    """A read in a few words: a GetItem's key shape, a BatchGetItem's number of keys, a Query's
    partition (and index)."""
    if op == "GetItem":
        return f"GetItem {_kind(body.get('Key', {}))}"
    if op == "BatchGetItem":
        keys = sum(len(spec.get("Keys", [])) for spec in body.get("RequestItems", {}).values())
        return f"BatchGetItem({keys} keys)"
    if op == "Query":
        partition = str(body.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S", "?"))
        index = f" ({body['IndexName']})" if "IndexName" in body else ""
        return f"Query {partition.split('#', 1)[0]}{index}"
    return op


def _write_actions(op: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
    """(action, spec, transactional) for every item a write request names, in wire format."""
    actions: list[tuple[str, dict[str, Any], bool]] = []
    if op == "TransactWriteItems":
        for entry in body.get("TransactItems", []):
            action, spec = next(iter(entry.items()))
            actions.append((str(action), spec, True))
        return actions
    if op == "BatchWriteItem":
        for table, requests in body.get("RequestItems", {}).items():
            for request in requests:
                if "PutRequest" in request:
                    actions.append(("Put", {"TableName": table, **request["PutRequest"]}, False))
                else:
                    actions.append(("Delete", {"TableName": table, **request["DeleteRequest"]}, False))
        return actions
    return [(op.removesuffix("Item"), body, False)]  # PutItem, UpdateItem, DeleteItem


def outbox_entries(action: str, spec: dict[str, Any]) -> list[str]:
    """The detail types of the domain events a write carries in its item's `outbox` attribute
    (the stream publishes each to EventBridge once the write commits)."""
    value: Any = None
    if action == "Put":
        value = spec["Item"].get("outbox")
    elif action == "Update":
        names = spec.get("ExpressionAttributeNames", {})
        for name, placeholder in _ASSIGNMENT.findall(str(spec.get("UpdateExpression", ""))):
            if names.get(name, name) == "outbox":
                value = spec.get("ExpressionAttributeValues", {}).get(placeholder)
    entries = value.get("L", []) if isinstance(value, dict) else []
    return [str(e.get("M", {}).get("detail_type", {}).get("S", "?")) for e in entries]


def _read_unit(size: int, consistent: bool) -> float:
    """1 RRU per started 4 KB strongly consistent, half eventually; a missing item costs the minimum."""
    return max(1, math.ceil(size / 4096)) * (1.0 if consistent else 0.5)


def read_units(op: str, request: dict[str, Any], parsed: dict[str, Any]) -> float:
    """What a successful read costs by DynamoDB's rules, from the request and its parsed answer."""
    if op == "GetItem":
        item = parsed.get("Item")
        return _read_unit(item_size(item) if item else 0, bool(request.get("ConsistentRead")))
    if op == "BatchGetItem":  # each key priced as its own GetItem, rounded up item by item
        total = 0.0
        for table, spec in request.get("RequestItems", {}).items():
            consistent = bool(spec.get("ConsistentRead"))
            found = parsed.get("Responses", {}).get(table, [])
            unprocessed = len((parsed.get("UnprocessedKeys") or {}).get(table, {}).get("Keys", []))
            missing = max(0, len(spec.get("Keys", [])) - len(found) - unprocessed)
            total += sum(_read_unit(item_size(i), consistent) for i in found)
            total += missing * _read_unit(0, consistent)
        return total
    if op in ("Query", "Scan"):  # the items' sizes summed, then rounded up once; indexes read eventually
        size = sum(item_size(i) for i in parsed.get("Items", []))
        return _read_unit(size, bool(request.get("ConsistentRead")) and "IndexName" not in request)
    if op == "TransactGetItems":
        responses = parsed.get("Responses", [])
        return sum(2 * _read_unit(item_size(r["Item"]) if r.get("Item") else 0, True) for r in responses)
    return 0.0


def _kb(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def settle_writes(cost: CallCost, client: Any) -> None:
    """Price each written item as DynamoDB does: 1 WCU per started KB, 2 in a transaction (a
    ConditionCheck is priced like a write here), plus 1 WCU per started KB for each index the item
    is in (projection ALL: the index copy is the whole item). A Put is sized from its request; an
    Update or ConditionCheck by the item as it is now, read back here, off the clock (DynamoDB bills
    the larger of the old and new image; ours only grow); a deleted item, gone by now, counts 1 KB."""
    for written in cost.written:
        image = written.image
        if image is None and written.action in ("Update", "ConditionCheck") and written.key:
            image = client.get_item(TableName=written.table, Key=written.key, ConsistentRead=True).get("Item")
        size = item_size(image) if image else 1024
        indexes = tuple(name for name, pk, sk in INDEXES if image and pk in image and sk in image)
        units = _kb(size) * (2 if written.transactional else 1)
        attributes = sorted(
            ((name, len(name.encode()) + _value_size(value)) for name, value in (image or {}).items()),
            key=lambda kv: -kv[1],
        )
        cost.priced.append(
            Priced(_kind(written.key), written.action, size, units, indexes, tuple(attributes[:3]))
        )


def _kind(key: dict[str, Any]) -> str:
    pk = str(key.get(TABLE.partition_key, {}).get("S", "?"))
    sk = str(key.get(TABLE.sort_key, {}).get("S", "?"))
    return f"{pk.split('#', 1)[0]}/{sk.split('#', 1)[0]}"


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
    if kind == "B":  # bytes once parsed, base64 text in a request body
        return len(inner) if isinstance(inner, bytes) else len(str(inner)) * 3 // 4
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


# ---- AWS on-demand list prices, us-east-1 ---------------------------------------------------------

APIGW_REST_PER_M = 3.50  # REST API, per million requests (first 333 million a month)
LAMBDA_GB_SECOND = 0.0000133334  # arm64, per GB-second
LAMBDA_PER_M = 0.20  # per million requests
DDB_WRU_PER_M = 0.625  # on-demand, per million write request units
DDB_RRU_PER_M = 0.125  # on-demand, per million read request units
EVENTS_PER_M = 1.00  # EventBridge custom events, per million (each up to 64 KB)
MEMORY_MB = {f.name: f.memory_mb for f in (*FUNCTIONS, AUTHORIZER)}


@dataclass(frozen=True)
class Cost:
    """Dollars per million calls of one endpoint, by service."""

    memory_mb: int
    billed_ms: int  # p50 handler time + RT_LATENCY_MS per DynamoDB round trip, rounded up
    gateway: float
    lambda_: float
    dynamodb: float
    events: float  # events per call
    eventbridge: float

    @property
    def total(self) -> float:
        return self.gateway + self.lambda_ + self.dynamodb + self.eventbridge


def cost_of(result: Result) -> Cost:
    memory = MEMORY_MB[result.function]
    round_trips = statistics.fmean(c.calls for c in result.costs)
    billed = max(1, math.ceil(percentile(result.samples_ms, 50) + RT_LATENCY_MS * round_trips))
    rcu = statistics.fmean(c.rcu_estimate for c in result.costs)
    wcu = statistics.fmean(c.wcu_estimate for c in result.costs)
    events = statistics.fmean(len(c.events) for c in result.costs)
    return Cost(
        memory_mb=memory,
        billed_ms=billed,
        gateway=APIGW_REST_PER_M if result.gateway else 0.0,
        lambda_=LAMBDA_PER_M + memory / 1024 * billed / 1000 * LAMBDA_GB_SECOND * 1e6,
        dynamodb=wcu * DDB_WRU_PER_M + rcu * DDB_RRU_PER_M,
        events=events,
        eventbridge=events * EVENTS_PER_M,
    )


# ---- cart evaluation (issue 4): the offer mix, the engine's clock -------------------------------

CART_OFFERS = (10, 100, 1_000)
CART_LINES = (5, 50)
CART_MEMBERS = 10  # members the member carts rotate through, by customer_id
CART_CARTS = 50  # distinct carts per size, in turn; the same carts for every offer count
CART_SEED = 7
CART_COUPON_SHARE = 0.3  # member carts bringing one of the member's personal coupons
CART_COUPONS_EACH = 2  # personal coupons issued per member for the gated offers of each set
CART_PER_CUSTOMER = float(os.environ.get("BENCH_CART_PER_CUSTOMER", "0.10"))
CART_BUDGET = float(os.environ.get("BENCH_CART_BUDGET", "0.05"))
CART_ROUTE = "/v1/cart/evaluate"
CART_STORE = "ams-01"
ENGINE_TARGET_MS = 5.0  # p99 at 1,000 offers and 50 lines (issue 4)
BATCH_GET_KEYS = 100  # DynamoDB's cap on the keys of one BatchGetItem
CATALOGUE_CHECK = "GetItem OFFERS/VERSION"


# ---- redemptions and stored value (issue 5) ------------------------------------------------------

REDEEM_MEMBERS = max(1, int(os.environ.get("BENCH_REDEEM_MEMBERS", "10")))
REDEEM_LOTS = max(1, int(os.environ.get("BENCH_REDEEM_LOTS", "5")))
REDEEM_POINTS = 50  # a points redemption by amount
REWARD_POINTS = 100  # the reward's points price
REWARD_STOCK = 1_000_000  # limited: each redemption takes one in the same transaction
HOLD_POINTS = 50  # a points hold, captured in full (or released)
CARD_VALUE = "100.00"  # a physical card, sold at a till
E_CARD_VALUE = "50.00"  # an e-card, sold online
CREDIT_VALUE = "50.00"  # merchandise credit issued at a till
SPEND = "5.00"  # a stored-value, gift card or e-card redemption
RELOAD = "10.00"
CARD_HOLD = "20.00"  # an e-card hold, captured in full
CARD_RELEASE = "10.00"  # an e-card hold, released
GIFT_CARD_PREFIX = "6036"
# The calls the target applies to: spending points, a coupon or stored value.
REDEMPTION_CALLS = (
    "redeem points",
    "redeem reward",
    "redeem coupon",
    "redeem credit",
    "redeem card",
    "redeem e-card",
)


def gift_card_number() -> str:
    """A physical card's number: 16 digits, the last a Luhn check digit; random, so new every run."""
    body = GIFT_CARD_PREFIX + f"{uuid.uuid4().int % 10**11:011d}"
    return body + luhn_check_digit(body)


def cart_offer_mix(count: int, run: str) -> list[Offer]:
    """bench_offers' synthetic mix (each smaller set the start of the larger), plus limits: a share
    with a per-customer limit, a share with a total budget, drawn from a generator of their own so
    the offers themselves are bench_offers' exactly."""
    rng = random.Random(CART_SEED)  # noqa: S311 - made-up data
    draws = random.Random(CART_SEED + 1)  # noqa: S311 - made-up data
    offers = []
    for n in range(count):
        offer = bench_offers.make_offer(rng, n)
        per_customer, budget = draws.random() < CART_PER_CUSTOMER, draws.random() < CART_BUDGET
        limits = Limits(
            per_customer=draws.choice((1, 2, 5)) if per_customer else None,
            budget=draws.choice((1_000, 10_000, 100_000)) if budget else None,
        )
        offers.append(
            offer.model_copy(update={"offer_id": f"bench-{run}-{offer.offer_id}", "limits": limits})
        )
    return offers


def cart_line_json(line: CartLine) -> dict[str, str | None]:
    return {
        "line_id": line.line_id,
        "sku": line.sku,
        "category": line.category,
        "quantity": str(line.quantity),
        "unit_price": f"{line.unit_price:.2f}",
    }


class EngineClock:
    """Times the pure engine (`loyalty.domain.offers.evaluate`) inside the handler. The service
    imports it when it calls it, so replacing the module's attribute while the cart scenarios run
    reaches it; if that ever stops being so, no engine time is recorded (and none is reported)."""

    def __init__(self) -> None:
        self.ms: float | None = None
        self.applied = 0
        self.collected = -1  # the oldest generation the garbage collector went through during the call
        self._inside = False

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if self._inside and phase == "start":
            self.collected = max(self.collected, info["generation"])

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from loyalty.domain import offers as engine

        original = engine.evaluate

        def timed(*args: Any, **kwargs: Any) -> Evaluation:
            self.collected, self._inside = -1, True
            start = time.perf_counter()
            try:
                result = original(*args, **kwargs)
            finally:
                self.ms = (time.perf_counter() - start) * 1000
                self._inside = False
            self.applied = len(result.applied_offer_ids)
            return result

        engine.evaluate = timed
        gc.callbacks.append(self._on_gc)
        try:
            yield
        finally:
            engine.evaluate = original
            gc.callbacks.remove(self._on_gc)

    def take(self) -> tuple[float | None, int, int]:
        """The last engine call's time (None: no call since), offers applied, GC generation reached."""
        ms, self.ms = self.ms, None
        return ms, self.applied, self.collected


@dataclass
class CartCase:
    offers: int  # offers written for this case (the live count read back is `live`)
    lines: int
    anonymous: bool
    result: Result
    live: int
    engine_ms: list[float]
    engine_gc: list[int]  # per engine call: the oldest GC generation collected during it, -1 none
    applied: list[int]
    candidates: float  # offers the index hands the engine, mean over the distinct carts
    first_ms: float
    seconds: float  # wall time from the first (cold) call to the last


@dataclass
class CartFigures:
    cases: list[CartCase]
    limited: tuple[int, int]  # offers with a per-customer limit, with a budget (of the largest set)
    gated: int  # coupon-gated offers (of the largest set)
    written_s: dict[int, float]  # seconds to write each set's new offers
    complaints: list[str]


@dataclass
class RedemptionFigures:
    results: list[Result]
    lots: tuple[int, int]  # (lots each spender has, the fewest points a spender has)
    seconds: float  # the whole section, its set-up included


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
        # a minute ago: the platform refuses sales from the future, and keeps no clock of ours
        self.occurred_at = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.earners: list[str] = []  # members with PRIOR_LOTS lots before the earn path
        self.earn_sales: list[tuple[str, str]] = []  # (transaction_id, customer_id), ams-01
        self.guests: list[str] = []  # identified non-members a guest checkout created
        self.orders: list[str] = []  # placed online orders at web-nl
        self.first_ms = 0.0  # the handler time of the last loop's first (cold) call
        self.failed_calls = 0  # the last loop's measured calls that failed (with drop_failed)
        self.engine = EngineClock()
        self.cart_members: list[str] = []  # members the cart scenarios rotate through
        self.cart_coupons: dict[str, list[tuple[str, str]]] = {}  # member -> [(code, offer_id)]
        # redemptions and stored value (issue 5): what one scenario makes for the next, by call index
        self.spenders: list[str] = []  # members with lots enough for every points redemption
        self.lots = (0, 0)  # (lots each spender has, the fewest points a spender has)
        self.holders: list[str] = []  # one member per points hold, each with one lot
        self.reward_id = f"bench-{self.run}-mug"
        self.coupon_offer = f"bench-{self.run}-coupon"
        self.credits: dict[int, tuple[str, str]] = {}  # merchandise credit: (account_id, customer_id)
        self.coupons: dict[int, tuple[str, str]] = {}  # personal coupons: (code, customer_id)
        self.cards = [gift_card_number() for _ in range(WARMUP + ITERATIONS)]  # physical, sold at a till
        self.ecards: dict[int, str] = {}  # e-cards sold online
        self.pins: dict[str, str] = {}  # e-card number -> PIN, read from its email

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
        drop_failed: bool = False,
    ) -> tuple[list[float], list[CallCost], CallCost, list[str]]:
        """Warm-up then measured calls; `check` returns a complaint or None for each response.
        With drop_failed, a measured call that fails is counted (self.failed_calls) and neither
        timed nor costed."""
        self.fresh_container()
        self.failed_calls = 0
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
                if i >= WARMUP:
                    self.failed_calls += 1
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
                self.first_ms = elapsed
            if i >= WARMUP and complaint and drop_failed:
                self.failed_calls += 1
            elif i >= WARMUP:
                if cost.written:
                    settle_writes(cost, self.sizer)
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
                return scenario.after(i, json.loads(body) if body else {})
            return None

        prepared = scenario.setup() if scenario.setup is not None else []
        samples, costs, first, unexpected = self._loop(
            route.function, make_event, check, drop_failed=scenario.drop_failed
        )
        where = f"{scenario.method} {scenario.path}"
        return Result(
            scenario.name,
            where,
            route.function,
            samples,
            costs,
            first,
            [f"setup: {p}" for p in prepared] + unexpected,
            scenario.target,
            scenario.note,
            authorized=route.access is not Access.PUBLIC,
            failed=self.failed_calls,
        )

    def call(self, method: str, resource: str, call: Call) -> tuple[int, dict[str, Any]]:
        """One request outside the meter, to prepare data: (status, parsed body)."""
        route = route_for(method, resource)
        assert route is not None
        verdict = self.authorize(call.key) if route.access is not Access.PUBLIC else None
        event = api_event(method, resource, call, verdict)
        with contextlib.redirect_stdout(io.StringIO()):
            response = self.handlers[route.function](event, context(route.function))
        body = response.get("body") or ""
        return int(response.get("statusCode", 0)), json.loads(body) if body else {}

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
            "authorizer",
            where,
            AUTHORIZER.name,
            samples,
            costs,
            first,
            unexpected,
            target,
            "3 demo keys",
            authorized=False,
            gateway=False,
        )

    # ---- transactions: sales, returns, order status, history ------------------------------------
    def sale_body(
        self, transaction_id: str, customer: dict[str, Any] | None, store_id: str = "ams-01"
    ) -> dict[str, Any]:
        """A SALE_LINES-line sale: 2 x 12.50 a line, no discounts."""
        lines = [
            {
                "line_id": str(n),
                "sku": f"SKU{n}",
                "category": CATEGORIES[(n - 1) % len(CATEGORIES)],
                "quantity": "2",
                "unit_price": "12.50",
                "discount": "0.00",
            }
            for n in range(1, SALE_LINES + 1)
        ]
        body: dict[str, Any] = {
            "transaction_id": transaction_id,
            "type": "sale",
            "store_id": store_id,
            "occurred_at": self.occurred_at,
            "lines": lines,
            "currency": "EUR",
            "total": f"{25 * SALE_LINES:.2f}",
        }
        if customer is not None:
            body["customer"] = customer
        return body

    def return_body(self, transaction_id: str, original: tuple[str, str]) -> dict[str, Any]:
        """One of the two items of line 1 of a sale comes back (the member names themselves)."""
        line = {
            "line_id": "1",
            "sku": "SKU1",
            "category": CATEGORIES[0],
            "quantity": "1",
            "unit_price": "12.50",
            "discount": "0.00",
        }
        return {
            "transaction_id": transaction_id,
            "type": "return",
            "store_id": "ams-01",
            "occurred_at": self.occurred_at,
            "customer": {"customer_id": original[1]},
            "original_transaction_id": original[0],
            "lines": [line],
            "currency": "EUR",
            "total": "12.50",
        }

    def prepare_earners(self) -> list[str]:
        """EARN_MEMBERS members with PRIOR_LOTS earlier sales (each earning, so each a lot)."""
        pos, complaints = "local-pos-key", []
        for m in range(EARN_MEMBERS):
            status, member = self.call(
                "POST",
                "/v1/customers",
                Call(
                    pos,
                    body={
                        "links": [{"type": "email", "value": f"earner-{self.run}-{m}@example.com"}],
                        "profile": {"first_name": "Earner", "last_name": f"Member {m}"},
                        "consents": {"email": True},
                    },
                ),
            )
            if status != 201:
                complaints.append(f"enrolling a member: {status} {json.dumps(member)[:200]}")
                continue
            customer_id = str(member["customer_id"])
            for k in range(PRIOR_LOTS):
                txn = f"bench-{self.run}-prior-{m}-{k}"
                body = self.sale_body(txn, {"customer_id": customer_id})
                status, receipt = self.call("POST", "/v1/transactions", Call(pos, body=body))
                if status != 201 or int(receipt.get("points_earned") or 0) <= 0:
                    complaints.append(f"an earlier sale: {status} {json.dumps(receipt)[:200]}")
            query = {"limit": str(min(200, max(1, PRIOR_LOTS)))}
            _, ledger = self.call(
                "GET", "/v1/customers/{customer_id}/ledger", Call(pos, {"customer_id": customer_id}, query)
            )
            lots = sum(1 for e in ledger.get("items", []) if e.get("reason") == "earn")
            if lots != min(200, PRIOR_LOTS):
                complaints.append(f"member {customer_id} has {lots} lots, not {PRIOR_LOTS}")
            self.earners.append(customer_id)
        return complaints

    def prepare_orders(self) -> list[str]:
        """One placed online order at web-nl per call to come, each by a member."""
        web, complaints = "local-web-key", []
        for i in range(WARMUP + ITERATIONS):
            txn = f"bench-{self.run}-order-{i}"
            customer = self.customers[i % len(self.customers)] if self.customers else None
            who = {"customer_id": str(customer["customer_id"])} if customer else None
            status, receipt = self.call(
                "POST", "/v1/transactions", Call(web, body=self.sale_body(txn, who, "web-nl"))
            )
            if status != 201 or receipt.get("order_status") != "placed":
                complaints.append(f"placing an order: {status} {json.dumps(receipt)[:200]}")
                continue
            self.orders.append(txn)
        return complaints

    def transaction_scenarios(self) -> list[Scenario]:
        pos, web, run = "local-pos-key", "local-web-key", self.run
        calls = WARMUP + ITERATIONS
        most_lots = PRIOR_LOTS + (calls - 1) // EARN_MEMBERS

        def expect(body: dict[str, Any], what: str, met: bool) -> str | None:
            return None if met else f"not {what}: {json.dumps(body)[:200]}"

        def earned(i: int, body: dict[str, Any]) -> str | None:
            self.earn_sales.append((str(body.get("transaction_id")), str(body.get("customer_id"))))
            return expect(body, "a member earning", bool(body.get("member")) and body["points_earned"] > 0)

        def by_card(i: int, body: dict[str, Any]) -> str | None:
            return expect(body, "a member earning", bool(body.get("member")) and body["points_earned"] > 0)

        def guest(i: int, body: dict[str, Any]) -> str | None:
            if body.get("customer_id"):
                self.guests.append(str(body["customer_id"]))
            met = not body.get("member") and bool(body.get("customer_id")) and body["points_if_member"] > 0
            return expect(body, "an identified non-member", met)

        def non_member(i: int, body: dict[str, Any]) -> str | None:
            return expect(body, "a non-member", not body.get("member") and bool(body.get("customer_id")))

        def anonymous(i: int, body: dict[str, Any]) -> str | None:
            return expect(body, "anonymous", body.get("customer_id") is None)

        def returned(i: int, body: dict[str, Any]) -> str | None:
            return expect(body, "points taken back", body.get("points_earned", 0) < 0)

        def shipped(i: int, body: dict[str, Any]) -> str | None:
            return expect(body, "shipped", body.get("order_status") == "shipped")

        def earner(i: int) -> dict[str, str]:
            return {"customer_id": self.earners[i % len(self.earners)]}

        def card(i: int) -> dict[str, Any]:
            return {"link": {"type": "card", "value": str(self.customers[i % len(self.customers)]["card"])}}

        sale = "/v1/transactions"
        return [
            Scenario(
                EARN_PATH,
                "POST",
                sale,
                201,
                lambda i: Call(pos, body=self.sale_body(f"bench-{run}-earn-{i}", earner(i))),
                EARN_TARGET,
                f"{SALE_LINES} lines by customer_id; {EARN_MEMBERS} members in turn, "
                f"{PRIOR_LOTS}-{most_lots} lots each",
                after=earned,
                setup=self.prepare_earners,
            ),
            Scenario(
                "sale (card)",
                "POST",
                sale,
                201,
                lambda i: Call(pos, body=self.sale_body(f"bench-{run}-card-{i}", card(i))),
                target=EARN_TARGET,
                note="member named by card link",
                after=by_card,
            ),
            Scenario(
                "sale (guest)",
                "POST",
                sale,
                201,
                lambda i: Call(
                    pos,
                    body=self.sale_body(
                        f"bench-{run}-guest-{i}",
                        {"link": {"type": "email", "value": f"guest-{run}-{i}@example.com"}},
                    ),
                ),
                target=EARN_TARGET,
                note="new email link: creates an identified non-member",
                after=guest,
            ),
            Scenario(
                "sale (non-mem)",
                "POST",
                sale,
                201,
                lambda i: Call(
                    pos,
                    body=self.sale_body(f"bench-{run}-nonmember-{i}", {"customer_id": self.guests[i]}),
                ),
                target=EARN_TARGET,
                note="identified non-member by customer_id",
                after=non_member,
            ),
            Scenario(
                "sale (anonymous)",
                "POST",
                sale,
                201,
                lambda i: Call(pos, body=self.sale_body(f"bench-{run}-anon-{i}", None)),
                target=EARN_TARGET,
                after=anonymous,
            ),
            Scenario(
                "partial return",
                "POST",
                sale,
                201,
                lambda i: Call(pos, body=self.return_body(f"bench-{run}-return-{i}", self.earn_sales[i])),
                note="1 of 2 items of one line of an earn-path sale",
                after=returned,
            ),
            Scenario(
                "get transaction",
                "GET",
                "/v1/transactions/{store_id}/{transaction_id}",
                200,
                lambda i: Call(pos, {"store_id": "ams-01", "transaction_id": self.earn_sales[i][0]}),
                note="an earn-path sale",
            ),
            Scenario(
                "history",
                "GET",
                "/v1/customers/{customer_id}/transactions",
                200,
                lambda i: Call(pos, earner(i)),
                note=f"first page (50) of an earn-path member's {PRIOR_LOTS}+ sales",
            ),
            Scenario(
                "ledger",
                "GET",
                "/v1/customers/{customer_id}/ledger",
                200,
                lambda i: Call(pos, earner(i)),
                note=f"first page (50) of an earn-path member's {PRIOR_LOTS}+ entries",
            ),
            Scenario(
                "order shipped",
                "PATCH",
                "/v1/transactions/{store_id}/{transaction_id}",
                200,
                lambda i: Call(
                    web,
                    {"store_id": "web-nl", "transaction_id": self.orders[i]},
                    body={"order_status": "shipped"},
                ),
                note="placed -> shipped, web key",
                after=shipped,
                setup=self.prepare_orders,
            ),
        ]

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
            *self.transaction_scenarios(),
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

    # ---- cart evaluation (issue 4) ----------------------------------------------------------------
    def prepare_cart_members(self) -> list[str]:
        """CART_MEMBERS members, all in one price group (a category 5% off, one SKU at 0.99)."""
        pos, admin, complaints = "local-pos-key", "local-admin-key", []
        group_id = f"bench-{self.run}-app-users"
        container().offers.put_price_group(
            PriceGroup.model_validate(
                {
                    "group_id": group_id,
                    "name": "App users",
                    "prices": [
                        {"category": "cat007", "percent_off": "5"},
                        {"sku": "SKU00042", "price": "0.99"},
                    ],
                }
            )
        )
        for m in range(CART_MEMBERS):
            body = {
                "links": [{"type": "email", "value": f"cart-{self.run}-{m}@example.com"}],
                "profile": {"first_name": "Cart", "last_name": f"Member {m}"},
                "consents": {"email": True},
            }
            status, member = self.call("POST", "/v1/customers", Call(pos, body=body))
            if status != 201:
                complaints.append(f"enrolling a member: {status} {json.dumps(member)[:200]}")
                continue
            customer_id = str(member["customer_id"])
            status, answer = self.call(
                "PUT",
                "/v1/admin/price-groups/{group_id}/members/{customer_id}",
                Call(admin, {"group_id": group_id, "customer_id": customer_id}),
            )
            if status != 200:
                complaints.append(f"joining the price group: {status} {json.dumps(answer)[:200]}")
            self.cart_members.append(customer_id)
        return complaints

    def issue_cart_coupons(self, offers: list[Offer]) -> list[str]:
        """CART_COUPONS_EACH personal coupons per member, for gated offers of this set, by the API."""
        gated = [o.offer_id for o in offers if o.requires_coupon]
        rng = random.Random(CART_SEED + len(offers))  # noqa: S311 - made-up data
        complaints: list[str] = []
        for customer_id in self.cart_members:
            issued: list[tuple[str, str]] = []
            for offer_id in rng.sample(gated, min(CART_COUPONS_EACH, len(gated))):
                status, coupon = self.call(
                    "POST",
                    "/v1/customers/{customer_id}/coupons",
                    Call("local-pos-key", {"customer_id": customer_id}, body={"offer_id": offer_id}),
                )
                if status != 201:
                    complaints.append(f"issuing a coupon: {status} {json.dumps(coupon)[:200]}")
                    continue
                issued.append((str(coupon["code"]), offer_id))
            self.cart_coupons[customer_id] = issued
        return complaints

    def cart_requests(
        self, lines: int, anonymous: bool
    ) -> list[tuple[dict[str, Any], list[CartLine], list[str]]]:
        """CART_CARTS carts of `lines` lines: (body, lines, offer ids of the coupons it brings)."""
        rng = random.Random(CART_SEED * 7 + lines)  # noqa: S311 - the same carts for every offer count
        coupon_rng = random.Random(CART_SEED + lines)  # noqa: S311 - made-up data
        carts = []
        for n in range(CART_CARTS):
            cart = bench_offers.make_cart(rng, lines)
            body: dict[str, Any] = {
                "store_id": CART_STORE,
                "currency": "EUR",
                "lines": [cart_line_json(line) for line in cart],
            }
            coupon_offers: list[str] = []
            if not anonymous and self.cart_members:
                member = self.cart_members[n % len(self.cart_members)]
                body["customer"] = {"customer_id": member}
                mine = self.cart_coupons.get(member, [])
                if mine and coupon_rng.random() < CART_COUPON_SHARE:
                    code, offer_id = coupon_rng.choice(mine)
                    body["coupons"] = [code]
                    coupon_offers.append(offer_id)
            carts.append((body, cart, coupon_offers))
        return carts

    def measure_cart(self, offers: int, lines: int, anonymous: bool) -> CartCase:
        pos = "local-pos-key"
        carts = self.cart_requests(lines, anonymous)
        engine_ms: list[float] = []
        engine_gc: list[int] = []
        applied: list[int] = []

        def make_event(i: int) -> dict[str, Any]:
            return api_event(
                "POST", CART_ROUTE, Call(pos, body=carts[i % len(carts)][0]), self.authorize(pos)
            )

        def check(i: int, response: Any) -> str | None:
            ms, offers_applied, collected = self.engine.take()
            body, cart, _ = carts[i % len(carts)]
            if i >= WARMUP and ms is not None:
                engine_ms.append(ms)
                engine_gc.append(collected)
                applied.append(offers_applied)
            if isinstance(response, Exception):
                return repr(response)
            status, text = int(response.get("statusCode", 0)), response.get("body") or ""
            if status != 200:
                return f"{status} {text[:300]}"
            answer = json.loads(text)
            who = body.get("customer", {}).get("customer_id")
            if answer.get("customer_id") != who or len(answer.get("lines", [])) != len(cart):
                return f"not the cart asked about: {text[:200]}"
            wrong = [c for c in answer.get("rejected_coupons", []) if c["reason"] not in ("not_applicable",)]
            return f"a member's own coupon rejected: {wrong}" if wrong else None

        began = time.monotonic()
        samples, costs, first, unexpected = self._loop("cart", make_event, check)
        seconds = time.monotonic() - began
        # Off the clock: how many offers the index handed the engine for these carts.
        catalogue = container().offers.catalogue()
        store = container().stores.require(CART_STORE)
        candidates = statistics.fmean(
            len(
                catalogue.index.candidates(
                    cart,
                    store,
                    [CouponInput(code=f"C{k}", offer_id=o, status="ok") for k, o in enumerate(ids)],
                )
            )
            for _, cart, ids in carts
        )
        who = "anonymous" if anonymous else "member"
        result = Result(
            f"cart {offers}x{lines}{' anon' if anonymous else ''}",
            f"POST {CART_ROUTE}",
            "cart",
            samples,
            costs,
            first,
            unexpected,
            None,
            f"{offers} offers, {lines} lines, {who}",
        )
        return CartCase(
            offers,
            lines,
            anonymous,
            result,
            catalogue.index.live_count,
            engine_ms,
            engine_gc,
            applied,
            candidates,
            self.first_ms,
            seconds,
        )

    def measure_carts(self) -> CartFigures:
        """Each offer set written straight through OfferService (as the admin API does, one
        TransactWriteItems per offer), then every cart size measured on a fresh container."""
        complaints = self.prepare_cart_members()
        mix = cart_offer_mix(max(CART_OFFERS), self.run)
        # The offers name bench_offers' made-up stores, and an offer naming an unknown store is
        # refused: they exist before the offers are written (and before the clock starts).
        for n in range(bench_offers.STORES):
            container().stores.put(Store(f"store-{n:02d}", Channel.POS))
        written: dict[int, float] = {}
        cases: list[CartCase] = []
        done = 0
        with self.engine.installed():
            for count in CART_OFFERS:
                began = time.monotonic()
                for offer in mix[done:count]:
                    container().offers.create_offer(offer)
                written[count] = time.monotonic() - began
                done = count
                complaints += self.issue_cart_coupons(mix[:count])
                for lines in CART_LINES:
                    cases.append(self.measure_cart(count, lines, anonymous=False))
            cases.append(self.measure_cart(max(CART_OFFERS), max(CART_LINES), anonymous=True))
        limited = (
            sum(1 for o in mix if o.limits.per_customer is not None),
            sum(1 for o in mix if o.limits.budget is not None),
        )
        gated = sum(1 for o in mix if o.requires_coupon)
        return CartFigures(cases, limited, gated, written, [f"setup: {c}" for c in complaints])

    # ---- redemptions and stored value (issue 5) ---------------------------------------------------
    def enrol_member(self, email: str, last_name: str) -> tuple[str | None, list[str]]:
        """A member enrolled at a till: (customer_id or None, complaints)."""
        body = {
            "links": [{"type": "email", "value": email}],
            "profile": {"first_name": "Bench", "last_name": last_name},
            "consents": {"email": True},
        }
        status, member = self.call("POST", "/v1/customers", Call("local-pos-key", body=body))
        if status != 201:
            return None, [f"enrolling a member: {status} {json.dumps(member)[:200]}"]
        return str(member["customer_id"]), []

    def earlier_sale(self, customer_id: str, transaction_id: str) -> tuple[int, list[str]]:
        """One earning sale at ams-01 (a lot): (points earned, complaints)."""
        body = self.sale_body(transaction_id, {"customer_id": customer_id})
        status, receipt = self.call("POST", "/v1/transactions", Call("local-pos-key", body=body))
        earned = int(receipt.get("points_earned") or 0) if status == 201 else 0
        if earned <= 0:
            return 0, [f"an earlier sale: {status} {json.dumps(receipt)[:200]}"]
        return earned, []

    def prepare_spenders(self) -> list[str]:
        """REDEEM_MEMBERS members with lots enough for every points redemption to come (REDEEM_LOTS
        sales each, more if those would not cover them), a reward with stock, and an offer the
        personal coupons to be redeemed are issued for."""
        admin, complaints = "local-admin-key", []
        per_member = math.ceil((WARMUP + ITERATIONS) / REDEEM_MEMBERS)
        needed = per_member * (REDEEM_POINTS + REWARD_POINTS)
        for m in range(REDEEM_MEMBERS):
            customer_id, problems = self.enrol_member(f"spender-{self.run}-{m}@example.com", f"Spender {m}")
            complaints += problems
            if customer_id is None:
                continue
            earned, problems = self.earlier_sale(customer_id, f"bench-{self.run}-spend-{m}-0")
            complaints += problems
            if earned <= 0:
                continue
            lots = max(REDEEM_LOTS, math.ceil(needed / earned))
            for k in range(1, lots):
                more, problems = self.earlier_sale(customer_id, f"bench-{self.run}-spend-{m}-{k}")
                complaints += problems
                earned += more
            self.lots = (lots, min(earned, self.lots[1]) if self.spenders else earned)
            self.spenders.append(customer_id)
        reward = {
            "reward_id": self.reward_id,
            "name": "Bench mug",
            "points": REWARD_POINTS,
            "stock": REWARD_STOCK,
        }
        status, answer = self.call("POST", "/v1/admin/rewards", Call(admin, body=reward))
        if status != 201:
            complaints.append(f"adding the reward: {status} {json.dumps(answer)[:200]}")
        offer = {
            "offer_id": self.coupon_offer,
            "name": "Bench coupon: 5.00 off",
            "valid_from": "2026-01-01T00:00:00Z",
            "effect": {"type": "amount_off", "value": "5.00", "applies_to": "basket"},
            "requires_coupon": True,
        }
        container().offers.create_offer(Offer.model_validate(offer))
        return complaints

    def prepare_holders(self) -> list[str]:
        """One member per points hold to come, each with one earlier sale (one lot): a profile carries
        its live points holds, so each member has one at a time, as a web shopper would."""
        complaints: list[str] = []
        for i in range(WARMUP + ITERATIONS):
            customer_id, problems = self.enrol_member(f"holder-{self.run}-{i}@example.com", f"Holder {i}")
            complaints += problems
            if customer_id is None:
                continue
            earned, problems = self.earlier_sale(customer_id, f"bench-{self.run}-hold-{i}")
            complaints += problems
            if earned > 0:
                self.holders.append(customer_id)
        return complaints

    def collect_pins(self) -> list[str]:
        """Each e-card's PIN, from its email as stored for the mailer (newest first): the outbox
        over HTTP masks it, and the bench runs no mailer to send it anywhere."""
        wanted = {f"ecard-{self.run}-{i}@example.com": number for i, number in self.ecards.items()}
        cursor: str | None = None
        while wanted:
            messages, cursor = container().stored_value.messages(200, cursor)
            for message in messages:
                number = wanted.pop(message.to, None)
                found = re.search(r"PIN (\d+)", message.body)
                if number is not None and found:
                    self.pins[number] = found.group(1)
            if not cursor:
                break
        return [f"{len(wanted)} e-cards without a PIN in their email"] if wanted else []

    def prepare_point_releases(self) -> list[str]:
        """A points hold per call to come, on the holders (whose earlier holds were captured)."""
        complaints = []
        for i, customer_id in enumerate(self.holders):
            body = {"hold_id": f"bench-{self.run}-phr-{i}", "points": HOLD_POINTS}
            status, held = self.call(
                "POST",
                "/v1/customers/{customer_id}/holds",
                Call("local-web-key", {"customer_id": customer_id}, body=body),
            )
            if status != 201:
                complaints.append(f"holding points: {status} {json.dumps(held)[:200]}")
        return complaints

    def prepare_card_releases(self) -> list[str]:
        """An e-card hold per call to come."""
        complaints = []
        for i, number in self.ecards.items():
            body = {"hold_id": f"bench-{self.run}-ghr-{i}", "amount": CARD_RELEASE}
            status, held = self.call(
                "POST",
                "/v1/gift-cards/{card_number}/holds",
                Call("local-web-key", {"card_number": number}, body=body),
            )
            if status != 201:
                complaints.append(f"holding an e-card: {status} {json.dumps(held)[:200]}")
        return complaints

    def redemption_scenarios(self) -> list[Scenario]:
        """Issue 5's calls, each on fresh ids and enough balance; a failed call is left out."""
        pos, web, admin, run = "local-pos-key", "local-web-key", "local-admin-key", self.run
        calls = WARMUP + ITERATIONS
        per_member = math.ceil(calls / REDEEM_MEMBERS)

        def spender(i: int) -> dict[str, str]:
            return {"customer_id": self.spenders[i % len(self.spenders)]}

        def pin(number: str) -> dict[str, str]:
            return {"x-gift-card-pin": self.pins[number]}

        def expect(body: dict[str, Any], what: str, met: bool) -> str | None:
            return None if met else f"not {what}: {json.dumps(body)[:200]}"

        def credited(i: int, body: dict[str, Any]) -> str | None:
            self.credits[i] = (str(body["account_id"]), str(body["customer_id"]))
            return expect(body, "merchandise credit", body.get("balance") == CREDIT_VALUE)

        def coupon(i: int, body: dict[str, Any]) -> str | None:
            self.coupons[i] = (str(body["code"]), str(body["customer_id"]))
            return None

        def e_card(i: int, body: dict[str, Any]) -> str | None:
            self.ecards[i] = str(body["card_number"])
            return expect(body, "an e-card", body.get("e_card") is True)

        def redeemed(kind: str, points: int) -> Callable[[int, dict[str, Any]], str | None]:
            def check(i: int, body: dict[str, Any]) -> str | None:
                met = (
                    body.get("kind") == kind and body.get("status") == "done" and body.get("points") == points
                )
                return expect(body, f"a {kind} redemption", met)

            return check

        def spent(i: int, body: dict[str, Any]) -> str | None:
            return expect(body, f"{SPEND} spent", body.get("amount") == SPEND)

        def status(wanted: str) -> Callable[[int, dict[str, Any]], str | None]:
            return lambda i, body: expect(body, wanted, body.get("status") == wanted)

        redeem, gift_card, hold = "/v1/redemptions", "/v1/gift-cards/{card_number}", "/v1/holds/{hold_id}"
        return [
            Scenario(
                "issue credit",
                "POST",
                "/v1/customers/{customer_id}/accounts",
                201,
                lambda i: Call(
                    pos,
                    spender(i),
                    body={"kind": "merchandise_credit", "amount": CREDIT_VALUE, "currency": "EUR"},
                ),
                note=f"merchandise credit {CREDIT_VALUE} at a till",
                after=credited,
                setup=self.prepare_spenders,
                drop_failed=True,
            ),
            Scenario(
                "issue coupon",
                "POST",
                "/v1/customers/{customer_id}/coupons",
                201,
                lambda i: Call(pos, spender(i), body={"offer_id": self.coupon_offer}),
                note="single use, for a coupon-gated offer",
                after=coupon,
                drop_failed=True,
            ),
            Scenario(
                "sell card",
                "POST",
                "/v1/gift-cards",
                201,
                lambda i: Call(
                    pos, body={"amount": CARD_VALUE, "currency": "EUR", "card_number": self.cards[i]}
                ),
                note=f"a physical card activated at a till, {CARD_VALUE}",
                after=lambda i, body: expect(body, "a physical card", body.get("e_card") is False),
                drop_failed=True,
            ),
            Scenario(
                "sell e-card",
                "POST",
                "/v1/gift-cards",
                201,
                lambda i: Call(
                    web,
                    body={
                        "amount": E_CARD_VALUE,
                        "currency": "EUR",
                        "delivery": {"email": f"ecard-{run}-{i}@example.com", "name": "Bench"},
                    },
                ),
                note=f"web key, {E_CARD_VALUE}; number and PIN by email (the outbox)",
                after=e_card,
                drop_failed=True,
            ),
            Scenario(
                "outbox",
                "GET",
                "/v1/admin/outbox",
                200,
                lambda i: Call(admin),
                note="first page (50)",
                setup=self.collect_pins,
                drop_failed=True,
            ),
            Scenario(
                "card balance",
                "GET",
                gift_card,
                200,
                lambda i: Call(pos, {"card_number": self.cards[i]}),
                note="physical card, till key",
                drop_failed=True,
            ),
            Scenario(
                "e-card balance",
                "GET",
                gift_card,
                200,
                lambda i: Call(web, {"card_number": self.ecards[i]}, headers=pin(self.ecards[i])),
                note="web key + x-gift-card-pin",
                drop_failed=True,
            ),
            Scenario(
                "redeem points",
                "POST",
                redeem,
                201,
                lambda i: Call(
                    pos,
                    body={
                        "redemption_id": f"bench-{run}-pts-{i}",
                        "customer": spender(i),
                        "kind": "points",
                        "points": REDEEM_POINTS,
                    },
                ),
                REDEEM_TARGET,
                f"{REDEEM_POINTS} points by customer_id; {REDEEM_MEMBERS} members in turn",
                after=redeemed("points", REDEEM_POINTS),
                drop_failed=True,
            ),
            Scenario(
                "redeem reward",
                "POST",
                redeem,
                201,
                lambda i: Call(
                    pos,
                    body={
                        "redemption_id": f"bench-{run}-rwd-{i}",
                        "customer": spender(i),
                        "kind": "points",
                        "reward_id": self.reward_id,
                    },
                ),
                REDEEM_TARGET,
                f"a reward at {REWARD_POINTS} points, stock {REWARD_STOCK:,}",
                after=redeemed("points", REWARD_POINTS),
                drop_failed=True,
            ),
            Scenario(
                "redeem coupon",
                "POST",
                redeem,
                201,
                lambda i: Call(
                    pos,
                    body={
                        "redemption_id": f"bench-{run}-cpn-{i}",
                        "customer": {"customer_id": self.coupons[i][1]},
                        "kind": "coupon",
                        "coupon": self.coupons[i][0],
                    },
                ),
                REDEEM_TARGET,
                "the member's own single-use coupon",
                after=redeemed("coupon", 0),
                drop_failed=True,
            ),
            Scenario(
                "redeem credit",
                "POST",
                redeem,
                201,
                lambda i: Call(
                    pos,
                    body={
                        "redemption_id": f"bench-{run}-sv-{i}",
                        "customer": {"customer_id": self.credits[i][1]},
                        "kind": "stored_value",
                        "account_id": self.credits[i][0],
                        "amount": SPEND,
                    },
                ),
                REDEEM_TARGET,
                f"kind stored_value: {SPEND} of merchandise credit",
                after=redeemed("stored_value", 0),
                drop_failed=True,
            ),
            Scenario(
                "redeem card",
                "POST",
                f"{gift_card}/redeem",
                201,
                lambda i: Call(
                    pos,
                    {"card_number": self.cards[i]},
                    body={"redemption_id": f"bench-{run}-gc-{i}", "amount": SPEND},
                ),
                REDEEM_TARGET,
                f"{SPEND} of a physical card, till key",
                after=spent,
                drop_failed=True,
            ),
            Scenario(
                "redeem e-card",
                "POST",
                f"{gift_card}/redeem",
                201,
                lambda i: Call(
                    web,
                    {"card_number": self.ecards[i]},
                    body={"redemption_id": f"bench-{run}-ec-{i}", "amount": SPEND},
                    headers=pin(self.ecards[i]),
                ),
                REDEEM_TARGET,
                f"{SPEND} of an e-card, web key + x-gift-card-pin",
                after=spent,
                drop_failed=True,
            ),
            Scenario(
                "get redemption",
                "GET",
                "/v1/redemptions/{redemption_id}",
                200,
                lambda i: Call(pos, {"redemption_id": f"bench-{run}-pts-{i}"}),
                note="a points redemption",
                drop_failed=True,
            ),
            Scenario(
                "reverse points",
                "POST",
                "/v1/redemptions/{redemption_id}/reverse",
                200,
                lambda i: Call(pos, {"redemption_id": f"bench-{run}-pts-{i}"}),
                note="each 'redeem points' redemption, once",
                after=status("reversed"),
                drop_failed=True,
            ),
            Scenario(
                "reload card",
                "POST",
                f"{gift_card}/reload",
                200,
                lambda i: Call(pos, {"card_number": self.cards[i]}, body={"amount": RELOAD}),
                note=f"{RELOAD} onto a physical card, till key",
                drop_failed=True,
            ),
            Scenario(
                "hold points",
                "POST",
                "/v1/customers/{customer_id}/holds",
                201,
                lambda i: Call(
                    web,
                    {"customer_id": self.holders[i]},
                    body={"hold_id": f"bench-{run}-ph-{i}", "points": HOLD_POINTS},
                ),
                note=f"{HOLD_POINTS} points, web key; a member per hold, 1 lot each",
                after=status("held"),
                setup=self.prepare_holders,
                drop_failed=True,
            ),
            Scenario(
                "capture points",
                "POST",
                f"{hold}/capture",
                200,
                lambda i: Call(web, {"hold_id": f"bench-{run}-ph-{i}"}, body={"points": HOLD_POINTS}),
                note="each 'hold points' hold, in full",
                after=status("captured"),
                drop_failed=True,
            ),
            Scenario(
                "release points",
                "POST",
                f"{hold}/release",
                200,
                lambda i: Call(web, {"hold_id": f"bench-{run}-phr-{i}"}),
                note=f"a {HOLD_POINTS}-point hold per holder, made beforehand",
                after=status("released"),
                setup=self.prepare_point_releases,
                drop_failed=True,
            ),
            Scenario(
                "hold e-card",
                "POST",
                f"{gift_card}/holds",
                201,
                lambda i: Call(
                    web,
                    {"card_number": self.ecards[i]},
                    body={"hold_id": f"bench-{run}-gh-{i}", "amount": CARD_HOLD},
                ),
                note=f"{CARD_HOLD} of an e-card, web key",
                after=status("held"),
                drop_failed=True,
            ),
            Scenario(
                "capture e-card",
                "POST",
                f"{hold}/capture",
                200,
                lambda i: Call(web, {"hold_id": f"bench-{run}-gh-{i}"}, body={"amount": CARD_HOLD}),
                note="each 'hold e-card' hold, in full",
                after=status("captured"),
                drop_failed=True,
            ),
            Scenario(
                "release e-card",
                "POST",
                f"{hold}/release",
                200,
                lambda i: Call(web, {"hold_id": f"bench-{run}-ghr-{i}"}),
                note=f"a {CARD_RELEASE} hold per e-card, made beforehand",
                after=status("released"),
                setup=self.prepare_card_releases,
                drop_failed=True,
            ),
            Scenario(
                "accounts",
                "GET",
                "/v1/customers/{customer_id}/accounts",
                200,
                lambda i: Call(pos, spender(i)),
                note=f"a member with {per_member} merchandise credits",
                drop_failed=True,
            ),
            Scenario(
                "account ledger",
                "GET",
                "/v1/accounts/{account_id}/ledger",
                200,
                lambda i: Call(pos, {"account_id": self.cards[i]}),
                note="a physical card: activate, redeem, reload",
                drop_failed=True,
            ),
        ]

    def measure_redemptions(self) -> RedemptionFigures:
        began = time.monotonic()
        results = [self.measure(scenario) for scenario in self.redemption_scenarios()]
        return RedemptionFigures(results, self.lots, time.monotonic() - began)


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


def target_met(result: Result) -> bool:
    """The row's target met by every measured call: the same round trips each time, the reads and
    writes the target allows, and (where it asks) only transactional writes."""
    if result.target is None or not result.costs:
        return False
    calls = [c.calls for c in result.costs]
    reads = statistics.fmean(c.reads for c in result.costs)
    writes = statistics.fmean(c.writes for c in result.costs)
    met = min(calls) == max(calls) and result.target.check(reads, writes)
    if result.target.transactional:
        met = met and all(op == "TransactWriteItems" for c in result.costs for op in c.ops if op in WRITE_OPS)
    return met


def print_endpoint_rows(results: list[Result], indent: str = "") -> None:
    header = indent + (
        f"{'endpoint':<16} {'route':<51} {'RT':>4} {'rd':>3} {'wr':>3} {'RCU':>5} {'RCU*':>5} {'WCU':>5} "
        f"{'WCU*':>5} {'ev':>2} {'1st':>3} {'p50 ms':>6} {'p99 ms':>6} {'$/M':>6}  target"
    )
    print(header)
    print(indent + "-" * (len(header) - len(indent) + 22))
    for r in results:
        if not r.costs:
            print(f"{indent}{r.name:<16} {r.route:<51} no call completed")
            continue
        reads = [float(c.reads) for c in r.costs]
        writes = [float(c.writes) for c in r.costs]
        calls = [float(c.calls) for c in r.costs]
        target = f"{mark(target_met(r))} {r.target.label}" if r.target is not None else ""
        rcu = statistics.fmean(c.rcu for c in r.costs)
        rcu_est = statistics.fmean(c.rcu_estimate for c in r.costs)
        wcu = statistics.fmean(c.wcu for c in r.costs)
        wcu_est = statistics.fmean(c.wcu_estimate for c in r.costs)
        events = statistics.fmean(len(c.events) for c in r.costs)
        route = r.route if len(r.route) <= 51 else r.route[:50] + "~"
        print(
            f"{indent}{r.name:<16} {route:<51} {per_call(calls):>4} {per_call(reads):>3} "
            f"{per_call(writes):>3} {rcu:>5.2f} {rcu_est:>5.2f} {wcu:>5.2f} {wcu_est:>5.2f} {events:>2g} "
            f"{r.first.calls:>3} {percentile(r.samples_ms, 50):>6.1f} {percentile(r.samples_ms, 99):>6.1f} "
            f"{cost_of(r).total:>6.2f}  {target}"
        )


def print_endpoints(results: list[Result]) -> None:
    print_endpoint_rows(results)
    print()
    print("RT: DynamoDB round trips per call (rd reads, wr writes; 'a (b-c)' = mean (min-max)).")
    print("RCU, WCU: capacity units per call as DynamoDB Local reports them. Its TransactWriteItems figures")
    print("  follow no published rule (36 WCU for the earn path's 3 items), and it charges nothing for a")
    print("  BatchGetItem key that finds no item (DynamoDB charges the minimum read for it).")
    print("RCU*, WCU*: the same calls priced by DynamoDB's rules from the requests and responses. Reads:")
    print("  1 unit per started 4 KB strongly consistent, 0.5 eventually (indexes); GetItem and each key of")
    print("  a BatchGetItem rounded up alone, a missing item the minimum; a Query's items summed, rounded")
    print("  once. Writes: 1 WCU per started KB of each item, 2 in a transaction, plus 1 per started KB for")
    print("  each index the item is in (both project ALL). Item sizes: attribute names plus values; a Put")
    print("  from its request, an Update by the new image read back after the call; a Delete counts 1 KB;")
    print("  index entries moved or removed by an update are not priced (no benched call does that).")
    print("ev: domain events per call (outbox entries in the items written; each one EventBridge event).")
    print("1st: round trips of the first call on a fresh container (cold store / programme caches).")
    print("p50 / p99: in-process handler time, no HTTP gateway; DynamoDB Local over localhost.")
    print("$/M: dollars per million calls, authorizer result cached (see the cost table below).")
    print()
    print("What one call sends, in order (mixes show each shape and how often it occurred):")
    print_call_shapes(results, op_names, "  ")
    print()
    print("What one call writes (mean item size; WCU* by DynamoDB's rules, + the index copies):")
    print_written(results, "  ")
    failures = [r for r in results if r.unexpected]
    if failures:
        print()
        print("Unexpected responses (the figures of these rows include failed calls):")
        for r in failures:
            print(f"  {r.name} ({r.route}): {len(r.unexpected)} x, first: {r.unexpected[0]}")


def print_call_shapes(results: list[Result], shape_of: Callable[[CallCost], str], indent: str) -> None:
    """Each row's calls by the requests they sent (`shape_of` words them), and the first call's if
    it sent others (cold caches)."""
    for r in results:
        shapes: dict[str, int] = {}
        for c in r.costs:
            shape = shape_of(c) or "(nothing)"
            shapes[shape] = shapes.get(shape, 0) + 1
        ordered = sorted(shapes.items(), key=lambda kv: -kv[1]) or [("(no call)", 0)]
        text = "; ".join(f"{ops} x{n}" if len(ordered) > 1 else ops for ops, n in ordered)
        first = shape_of(r.first) or "(nothing)"
        cold = f"  | 1st: {first}" if first != ordered[0][0] else ""
        retries = sum(c.attempts - c.calls for c in r.costs)
        extra = f"  [{retries} HTTP retries]" if retries else ""
        note = f"  ({r.note})" if r.note else ""
        print(f"{indent}{r.name:<16} {text}{extra}{note}{cold}")


def op_names(cost: CallCost) -> str:
    return " > ".join(cost.ops)


def labelled_ops(cost: CallCost) -> str:
    """The requests one call sent, each read named by what it read: `GetItem CUST/PROFILE > ...`."""
    reads = iter(cost.reads_of)
    return compress([next(reads, op) if op in READ_OPS else op for op in cost.ops])


def print_written(results: list[Result], indent: str) -> None:
    for r in results:
        if any(c.priced for c in r.costs):
            print(f"{indent}{r.name:<16} {written_items(r)}")


def written_items(result: Result) -> str:
    items: dict[tuple[str, str], list[Priced]] = {}
    for c in result.costs:
        for p in c.priced:
            items.setdefault((p.kind, p.action), []).append(p)
    n = len(result.costs)
    parts = []
    for (kind, action), priced in items.items():
        size = statistics.fmean(p.size for p in priced)
        units = sum(p.units for p in priced) / n
        index = sum(len(p.indexes) * _kb(p.size) for p in priced) / n
        extra = f" +{index:g} {'/'.join(sorted({i for p in priced for i in p.indexes}))}" if index else ""
        parts.append(f"{kind} {action} {size:,.0f} B {units:g}{extra}")
    return "; ".join(parts)


def print_prices() -> None:
    print("Prices used (AWS on-demand list prices, us-east-1):")
    print(f"  API Gateway REST API  ${APIGW_REST_PER_M:.2f} per million requests")
    print(
        f"  Lambda arm64          ${LAMBDA_GB_SECOND:.10f} per GB-second + ${LAMBDA_PER_M:.2f} per million"
        " requests, at the function's memory (routes.py), billed per started ms"
    )
    print(
        f"  DynamoDB on-demand    ${DDB_WRU_PER_M:.3f} per million write request units (WCU*),"
        f" ${DDB_RRU_PER_M:.3f} per million read request units (RCU*)"
    )
    print(f"  EventBridge           ${EVENTS_PER_M:.2f} per million custom events (one per outbox entry)")
    print(
        f"  Lambda duration = measured p50 handler time + {RT_LATENCY_MS:g} ms per DynamoDB round trip"
        " (BENCH_RT_LATENCY_MS): here DynamoDB"
    )
    print("  answers over localhost; on AWS each round trip crosses the network, and Lambda bills that wait.")


def print_costs(results: list[Result], authorizer: Cost | None) -> None:
    auth = authorizer.total if authorizer else 0.0
    print("Cost per million calls, US$ (prices above)")
    header = (
        f"  {'endpoint':<17} {'MB':>4} {'ms':>4} {'API GW':>7} {'Lambda':>7} {'DynamoDB':>8} "
        f"{'events':>6} {'EvBr':>5} {'total':>7} {'+auth miss':>10}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for r in results:
        if not r.costs:
            continue
        c = cost_of(r)
        missed = f"{c.total + auth:>10.2f}" if r.authorized else f"{c.total:>10.2f}"
        if not r.gateway:
            missed = f"{'-':>10}"
        print(
            f"  {r.name:<17} {c.memory_mb:>4} {c.billed_ms:>4} {c.gateway:>7.2f} {c.lambda_:>7.2f} "
            f"{c.dynamodb:>8.2f} {c.events:>6g} {c.eventbridge:>5.2f} {c.total:>7.2f} {missed}"
        )
    print(f"  ms: billed Lambda time per call (p50 + {RT_LATENCY_MS:g} ms per DynamoDB round trip).")
    print("  total: the authorizer's result cached (5 s TTL, keyed by the API key): a key calling n times")
    print("    in 5 s pays 1/n authorizer runs, ~0 for a busy till or web shop. +auth miss: plus one full")
    print(f"    authorizer run (${auth:.2f} per million, its own row) every call: a key calling less often")
    print("    than every 5 s. The authorizer row has no API Gateway charge of its own.")
    print("  Not included: the publisher function the stream invokes for the events (batched; reading the")
    print("    stream from Lambda is free), CloudWatch Logs and EMF metrics (switched off in local mode,")
    print("    so not measured), storage, backups (PITR), X-Ray, data transfer.")


def print_earn_path(result: Result, authorizer: Cost | None) -> None:
    print(
        f"Earn path (issue 3): a {SALE_LINES}-line sale by a member with {PRIOR_LOTS} earlier lots, "
        f"{len(result.costs)} sales"
    )
    if not result.costs:
        print("  no sale completed")
        return
    reads = statistics.fmean(c.reads for c in result.costs)
    writes = statistics.fmean(c.writes for c in result.costs)
    steady = len({c.calls for c in result.costs}) == 1
    met = steady and reads <= 1 and writes == 1
    shapes: dict[str, int] = {}
    for c in result.costs:
        shape = " > ".join(c.ops)
        shapes[shape] = shapes.get(shape, 0) + 1
    common = max(shapes.items(), key=lambda kv: kv[1])[0]
    print(
        f"  round trips per sale    {reads:g} read, {writes:g} write ({common})   "
        f"{mark(met)} target: 1 write round trip, at most 1 read"
    )
    rcu = statistics.fmean(c.rcu for c in result.costs)
    rcu_est = statistics.fmean(c.rcu_estimate for c in result.costs)
    wcu = statistics.fmean(c.wcu for c in result.costs)
    wcu_est = statistics.fmean(c.wcu_estimate for c in result.costs)
    print(
        f"  capacity per sale       RCU {rcu:.2f} as DynamoDB Local reports, {rcu_est:.2f} by DynamoDB's "
        f"rules (RCU*); WCU {wcu:.2f} reported, {wcu_est:.2f} by the rules (WCU*):"
    )
    items: dict[tuple[str, str], list[Priced]] = {}
    for c in result.costs:
        for p in c.priced:
            items.setdefault((p.kind, p.action), []).append(p)
    n = len(result.costs)
    for (kind, action), priced in items.items():
        size = statistics.fmean(p.size for p in priced)
        units = sum(p.units for p in priced) / n
        index_names = sorted({name for p in priced for name in p.indexes})
        index_units = sum(len(p.indexes) * _kb(p.size) for p in priced) / n
        index = f" + {index_units:g} WCU for its copy in {', '.join(index_names)}" if index_names else ""
        largest = ", ".join(f"{name} {nbytes:,} B" for name, nbytes in priced[-1].largest)
        print(f"      {kind:<14} {action:<7} {size:>6,.0f} B  {units:g} WCU{index}  (largest: {largest})")
    events: dict[str, int] = {}
    for c in result.costs:
        for name in c.events:
            events[name] = events.get(name, 0) + 1
    listed = ", ".join(f"{name} {count / n:g}" for name, count in events.items()) or "none"
    print(f"  events per sale         {sum(events.values()) / n:g} ({listed})")
    print(
        f"  handler                 p50 {percentile(result.samples_ms, 50):.1f} ms, "
        f"p99 {percentile(result.samples_ms, 99):.1f} ms (in-process, DynamoDB Local on localhost)"
    )
    cost = cost_of(result)
    auth = authorizer.total if authorizer else 0.0
    print(
        f"  cost per million sales  ${cost.total:.2f}  {mark(cost.total < SALE_TARGET_USD)} "
        f"< ${SALE_TARGET_USD:g}  authorizer result cached"
    )
    print(
        f"                          ${cost.total + auth:.2f}  {mark(cost.total + auth < SALE_TARGET_USD)} "
        f"< ${SALE_TARGET_USD:g}  authorizer cache missed on every sale"
    )
    print(
        f"      = API Gateway ${cost.gateway:.2f} + Lambda ${cost.lambda_:.2f} "
        f"({cost.memory_mb} MB x {cost.billed_ms} ms) + DynamoDB ${cost.dynamodb:.2f} "
        f"+ EventBridge ${cost.eventbridge:.2f} [+ authorizer ${auth:.2f}]"
    )


def compress(labels: list[str]) -> str:
    """`a > a > a > b` as `a x3 > b`."""
    parts: list[str] = []
    count = 0
    for k, label in enumerate(labels):
        count += 1
        if k + 1 == len(labels) or labels[k + 1] != label:
            parts.append(f"{label} x{count}" if count > 1 else label)
            count = 0
    return " > ".join(parts) or "(nothing)"


def call_shape(cost: CallCost) -> str:
    shape = compress(cost.reads_of)
    return shape + (f" + {cost.writes} writes" if cost.writes else "")


def batch_keys(cost: CallCost) -> int:
    return sum(int(m) for label in cost.reads_of for m in re.findall(r"BatchGetItem\((\d+) keys\)", label))


def cart_round_trips(cost: CallCost) -> int:
    """Round trips but the catalogue version check (at most one per CATALOGUE_SECONDS)."""
    return cost.calls - cost.reads_of.count(CATALOGUE_CHECK)


def print_carts(figures: CartFigures) -> None:
    cases = figures.cases
    biggest, most_lines = max(CART_OFFERS), max(CART_LINES)
    per_customer, budget = figures.limited
    print(
        f"Cart evaluation (issue 4): POST {CART_ROUTE} at {CART_STORE} (pos key), {ITERATIONS} calls a case"
        f" after {WARMUP} warm-up calls,"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        "  each case on a fresh container (its first call loads the catalogue, as a cold Lambda does);"
        f" 1-min load average {load:.2f} on {os.cpu_count()} CPUs at the end."
    )
    print("  offers: bench_offers' mix (75% on 1-3 SKUs, 10% a category, 10% coupon-gated, 2% a store,")
    print(
        f"    1.5% a channel, 1.5% every cart; every effect type) over {bench_offers.SKUS:,} SKUs in"
        f" {bench_offers.CATEGORIES} categories;"
    )
    print(
        f"    of the {biggest:,}: {figures.gated} coupon-gated, {per_customer} with a per-customer limit,"
        f" {budget} with a budget (BENCH_CART_PER_CUSTOMER"
    )
    print(
        f"    {CART_PER_CUSTOMER:g}, BENCH_CART_BUDGET {CART_BUDGET:g}); each set holds the smaller ones,"
        " written through OfferService.create_offer"
    )
    steps, before = [], 0
    for count, seconds in figures.written_s.items():
        steps.append(f"{count - before:,} in {seconds:.1f} s")
        before = count
    print(f"    (one transaction each): {', then '.join(steps)}.")
    print(
        f"  carts: {CART_CARTS} distinct a size, SKUs drawn uniformly, the same carts for every offer count;"
        f" member carts by customer_id,"
    )
    print(
        f"    {CART_MEMBERS} members in turn, all in one price group; {CART_COUPON_SHARE:.0%} bring one of"
        f" the member's {CART_COUPONS_EACH} personal coupons."
    )
    print()
    header = (
        f"  {'offers':>6} {'lines':>5} {'cart':<6} {'live':>5} {'RT':>10} {'keys':>6} {'RCU':>5} {'RCU*':>6} "
        f"{'cand':>5} {'appl':>5} {'p50 ms':>6} {'p99 ms':>6} {'eng p50':>7} {'eng p99':>7} {'eng%':>4} "
        f"{'ddb%':>4}  target"
    )
    print(header)
    print("  " + "-" * (len(header) + 8))
    for case in cases:
        r = case.result
        who = "anon" if case.anonymous else "member"
        if not r.costs:
            print(f"  {case.offers:>6} {case.lines:>5} {who:<6} no call completed")
            continue
        calls = [float(c.calls) for c in r.costs]
        handler = statistics.fmean(r.samples_ms)
        dynamo = statistics.fmean(c.dynamo_ms for c in r.costs) / handler * 100
        if case.engine_ms:
            share = statistics.fmean(case.engine_ms) / handler * 100
            engine = (
                f"{percentile(case.engine_ms, 50):>7.2f} {percentile(case.engine_ms, 99):>7.2f} {share:>4.0f}"
            )
            applied = f"{statistics.fmean(case.applied):>5.1f}"
        else:
            engine, applied = f"{'-':>7} {'-':>7} {'-':>4}", f"{'-':>5}"
        keys = statistics.fmean(batch_keys(c) for c in r.costs)
        rcu = statistics.fmean(c.rcu for c in r.costs)
        rcu_est = statistics.fmean(c.rcu_estimate for c in r.costs)
        met = max(cart_round_trips(c) for c in r.costs) <= 1
        print(
            f"  {case.offers:>6,} {case.lines:>5} {who:<6} {case.live:>5,} {per_call(calls):>10} "
            f"{keys:>6.1f} {rcu:>5.2f} {rcu_est:>6.2f} {case.candidates:>5.1f} {applied} "
            f"{percentile(r.samples_ms, 50):>6.1f} {percentile(r.samples_ms, 99):>6.1f} {engine} "
            f"{dynamo:>4.0f}  {mark(met)} <= 1 RT"
        )
    print()
    print(
        "  live: offers in the catalogue the function loaded. RT: DynamoDB round trips per warm call"
        " ('a (b-c)':"
    )
    print("    mean (min-max)); keys: BatchGetItem keys per call; RCU, RCU*: as in the endpoint table.")
    print("    cand: offers the index hands the engine, mean over the carts; appl: offers applied per call.")
    print("    p50 / p99: handler time, in-process. eng p50 / p99: the engine alone (loyalty.domain.offers")
    print(
        "    .evaluate, timed inside the handler); eng%, ddb%: its share and that of the DynamoDB calls"
        " (botocore"
    )
    print(
        "    validation and (de)serialisation included; DynamoDB Local on localhost) in the mean handler"
        " time."
    )
    print("    The rest: request validation, store / programme / catalogue from the caches, points for the")
    print("    member's and the base tier, the response's serialisation.")
    print(
        f"    target: each warm call <= 1 round trip, the catalogue version GetItem (at most one per"
        f" {CATALOGUE_SECONDS:g} s) aside."
    )
    print()
    print("  What a warm call reads (mixes show each shape and how often it occurred):")
    for case in cases:
        shapes: dict[str, int] = {}
        for c in case.result.costs:
            shapes[call_shape(c)] = shapes.get(call_shape(c), 0) + 1
        ordered = sorted(shapes.items(), key=lambda kv: -kv[1])
        text = "; ".join(f"{s} x{n}" if len(ordered) > 1 else s for s, n in ordered) or "(no call)"
        print(f"    {case.result.name:<18} {text}")
    print()
    print(
        "  The first (cold) call on a fresh container: store, programme, catalogue version, all offer pages:"
    )
    for case in cases:
        first = case.result.first
        print(
            f"    {case.result.name:<18} {first.calls:>2} RT  RCU* {first.rcu_estimate:>6.2f}"
            f"  {case.first_ms:>6.1f} ms  {call_shape(first)}"
        )
    print()
    checks = sum(c.reads_of.count(CATALOGUE_CHECK) for case in cases for c in case.result.costs)
    warm = sum(len(case.result.costs) for case in cases)
    spans = [case.seconds for case in cases]
    rates = [(len(c.result.costs) + WARMUP) / c.seconds for c in cases if c.seconds > 0]
    print(
        f"  Catalogue version GetItem: {checks} in {warm:,} warm calls. Each case ran {min(spans):.1f}-"
        f"{max(spans):.1f} s from its cold call; a warm"
    )
    print(
        f"    container checks at most once per {CATALOGUE_SECONDS:g} s, so an offer change reaches every"
        f" warm function within {CATALOGUE_SECONDS:g} s"
    )
    if rates:
        print(
            f"    (here, at {min(rates):.0f}+ calls/s a container, at most one call in"
            f" {min(rates) * CATALOGUE_SECONDS:,.0f} pays that GetItem)."
        )
    print()
    with_costs = [case for case in cases if case.result.costs]
    over = [case for case in with_costs if max(cart_round_trips(c) for c in case.result.costs) > 1]
    passed = len(with_costs) - len(over)
    listed = ", ".join(
        f"{case.result.name} ({max(cart_round_trips(c) for c in case.result.costs)})" for case in over
    )
    print(
        f"  {mark(bool(with_costs) and not over)} target: a warm evaluation needs at most 1 DynamoDB round"
        f" trip: {passed} of {len(with_costs)} cases" + (f"; more in {listed}" if over else "")
    )
    if over:
        print(
            "    The BatchGetItem names the use counter of every limited offer in the catalogue, whatever the"
        )
        print(
            f"    cart: 1 profile + {per_customer} per-customer + {budget} budget counters + the coupons at"
            f" {biggest:,} offers; DynamoDB takes at most"
        )
        print(
            f"    {BATCH_GET_KEYS} keys a BatchGetItem, so the adapter sends one more, in turn, per started"
            f" {BATCH_GET_KEYS} keys (RCU* grows with them)."
        )
    worst = next((c for c in cases if (c.offers, c.lines, c.anonymous) == (biggest, most_lines, False)), None)
    if worst is not None and worst.engine_ms:
        p99 = percentile(worst.engine_ms, 99)
        print(
            f"  {mark(p99 < ENGINE_TARGET_MS)} target: engine p99 < {ENGINE_TARGET_MS:g} ms at {biggest:,}"
            f" offers and {most_lines} lines: {p99:.2f} ms (p50 {percentile(worst.engine_ms, 50):.2f} ms,"
            f" {len(worst.engine_ms)} calls in the handler)"
        )
        slow = sum(1 for ms in worst.engine_ms if ms >= ENGINE_TARGET_MS)
        print(
            f"    p95 {percentile(worst.engine_ms, 95):.2f} ms, slowest {max(worst.engine_ms):.2f} ms;"
            f" {slow} of {len(worst.engine_ms)} calls took {ENGINE_TARGET_MS:g} ms or more"
        )
        full = [ms for ms, gen in zip(worst.engine_ms, worst.engine_gc, strict=True) if gen == 2]
        some = sum(1 for gen in worst.engine_gc if gen >= 0)
        clean = [ms for ms, gen in zip(worst.engine_ms, worst.engine_gc, strict=True) if gen < 0]
        if some:
            slowest = f" (the slowest {max(full):.2f} ms)" if full else ""
            without = f"; without them p99 {percentile(clean, 99):.2f} ms" if clean else ""
            print(
                f"    {some} of those calls ran the garbage collector, {len(full)} a full collection"
                f"{slowest}{without}"
            )
        else:
            print("    none of those calls ran the garbage collector: the slow ones are not its doing")
    elif worst is not None:
        print("  target: engine p99 not measured (the engine was not reached through loyalty.domain.offers)")
    low = min(CART_OFFERS)
    for lines in CART_LINES:
        a = next((c for c in cases if (c.offers, c.lines, c.anonymous) == (low, lines, False)), None)
        b = next((c for c in cases if (c.offers, c.lines, c.anonymous) == (biggest, lines, False)), None)
        if a is None or b is None or not a.engine_ms or not b.engine_ms:
            continue
        growth = percentile(b.engine_ms, 50) / percentile(a.engine_ms, 50)
        exponent = math.log(growth) / math.log(biggest / low)
        handler = percentile(b.result.samples_ms, 50) / percentile(a.result.samples_ms, 50)
        print(
            f"  {lines}-line carts, {biggest // low}x the offers: engine p50 x{growth:.1f} (time ~"
            f" offers^{exponent:.2f}; linear: x{biggest // low}), handler p50 x{handler:.1f}"
        )
    unexpected = figures.complaints + [
        f"{case.result.name}: {len(case.result.unexpected)} x, first: {case.result.unexpected[0]}"
        for case in cases
        if case.result.unexpected
    ]
    if unexpected:
        print("  Unexpected (the figures include these calls):")
        for line in unexpected:
            print(f"    {line}")


def print_redemptions(figures: RedemptionFigures) -> None:
    results = figures.results
    lots, points = figures.lots
    calls = WARMUP + ITERATIONS
    print(
        f"Redemptions and stored value (issue 5): {ITERATIONS} calls a row after {WARMUP} warm-up calls"
        " (BENCH_ITERATIONS, BENCH_WARMUP), each row on a fresh container;"
    )
    print(
        f"  the section took {figures.seconds:.0f} s, its set-up (unmetered, through the handlers) included."
    )
    print(
        f"  points: {REDEEM_MEMBERS} members (BENCH_REDEEM_MEMBERS), each with {lots} lots,"
        f" {points:,}+ points (earlier {SALE_LINES}-line sales at ams-01; at least"
    )
    print(
        f"    BENCH_REDEEM_LOTS {REDEEM_LOTS}, more if the redemptions to come need them), redeeming at"
        f" ams-01 (pos key); the reward costs {REWARD_POINTS} points, limited stock."
    )
    print(
        f"    Points holds: {calls} more members, one lot each, one live hold each at a time (the profile"
        " carries its live holds), web key."
    )
    print(
        f"  stored value: physical cards of {CARD_VALUE} sold at a till (pos key), e-cards of {E_CARD_VALUE}"
        f" sold online (web key; PINs read from the outbox),"
    )
    print(
        f"    merchandise credit of {CREDIT_VALUE} issued at a till; one card / credit per call; spends of"
        f" {SPEND}, reloads of {RELOAD}, e-card holds of {CARD_HOLD}."
    )
    print(
        "  Every writing call has its own redemption_id / hold_id and enough balance. A call that fails is"
        " counted and left out:"
    )
    print("  a row's figures are its successful calls only.")
    print()
    print_endpoint_rows(results, "  ")
    print()
    print("  Columns as in the endpoint table (RCU*, WCU*: DynamoDB's rules; $/M: the cost table's total).")
    print()
    print("  What one call sends, in order, each read named by its key (mixes: each shape and how often):")
    print_call_shapes(results, labelled_ops, "    ")
    print()
    print("  What one call writes (mean item size; WCU* by DynamoDB's rules, + the index copies):")
    print_written(results, "    ")
    print()
    targeted = [r for r in results if r.name in REDEMPTION_CALLS]
    print("  Target (issue 5): one transactional write round trip per redemption, plus at most one read:")
    for r in targeted:
        if not r.costs:
            print(f"    MISS {r.name:<14} no call completed")
            continue
        reads = statistics.fmean(c.reads for c in r.costs)
        writes = statistics.fmean(c.writes for c in r.costs)
        kinds = sorted({op for c in r.costs for op in c.ops if op in WRITE_OPS})
        shapes: dict[tuple[str, ...], int] = {}
        for c in r.costs:
            shapes[tuple(c.reads_of)] = shapes.get(tuple(c.reads_of), 0) + 1
        common = max(shapes.items(), key=lambda kv: kv[1])[0]
        print(
            f"    {mark(target_met(r))} {r.name:<14} {reads:g} read{'s' if reads != 1 else ''} +"
            f" {writes:g} write ({'/'.join(kinds) or 'none'}); reads: {compress(list(common))}"
        )
    met = sum(1 for r in targeted if target_met(r))
    print(f"    {met} of {len(targeted)} redemption calls meet it.")
    failed = [r for r in results if r.unexpected]
    print()
    if failed:
        print(
            "  Failed calls (left out of the figures; counting warm-up calls and requests that could not"
            " be built):"
        )
        for r in failed:
            print(
                f"    {r.name} ({r.route}): {len(r.unexpected)} x, {r.failed} of them measured calls;"
                f" first: {r.unexpected[0]}"
            )
    else:
        print(f"  No call failed: {len(results) * calls:,} calls, {len(results)} rows.")


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
    # Imports first, while nothing else runs on the machine; then the engine alone on a dense catalogue.
    imports = measure_imports()
    dense = bench_offers.dense_cases(DENSE_ITERATIONS, 7)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    # No stream publisher or sweeper threads: they would call DynamoDB through the metered client
    # (they use the installed container) and take CPU from the handlers being timed.
    runtime = LocalRuntime(background_jobs=False).start(with_gateway=False)
    try:
        bench = EndpointBench(runtime)
        results = [bench.measure_authorizer()]
        scenarios = bench.scenarios()
        for scenario in scenarios:
            results.append(bench.measure(scenario))
        carts = bench.measure_carts()
        redemptions = bench.measure_redemptions()
        # Imported here: bench_merges imports this module's meter (as loyalty_local.bench).
        from loyalty_local import bench_merges

        merges = bench_merges.measure(runtime)
    finally:
        runtime.stop()

    print_endpoints(results)
    covered = {(s.method, s.path) for s in scenarios} | {("POST", CART_ROUTE)}  # its own section
    covered |= {(r.route.split(" ", 1)[0], r.route.split(" ", 1)[1]) for r in redemptions.results}
    missing = [f"{r.method} {r.path}" for r in ROUTES if (r.method, r.path) not in covered]
    if missing:
        print(f"\nRoutes without a bench scenario yet: {', '.join(missing)}")
    print()
    authorizer = cost_of(results[0]) if results[0].costs else None
    print_prices()
    print()
    print_costs(results + [case.result for case in carts.cases] + redemptions.results, authorizer)
    print()
    earn = next((r for r in results if r.name == EARN_PATH), None)
    if earn is not None:
        print_earn_path(earn, authorizer)
        print()
    print_carts(carts)
    print()
    bench_offers.print_dense(dense)
    print()
    print_redemptions(redemptions)
    print()
    bench_merges.print_figures(merges)
    print()
    print_imports(imports)
    print(f"\nbench took {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
