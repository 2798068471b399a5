"""The endpoint bench's core: one warm instance of each function, called in-process with the event
API Gateway would send, and the measuring loop every scenario family runs through."""

from __future__ import annotations

import contextlib
import io
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from loyalty.api.routes import route_for
from loyalty.bootstrap import Container, use_container
from loyalty.domain.access import Access
from loyalty.resources import AUTHORIZER, FUNCTIONS
from loyalty.settings import Settings
from loyalty_local.emulators import REGION
from loyalty_local.gateway import Handler, load_handler
from loyalty_local.runtime import LocalRuntime
from tools.bench.config import ITERATIONS, WARMUP
from tools.bench.meter import CallCost, DynamoMeter, settle_writes
from tools.bench.scenario import Call, Result, Scenario, Target, api_event, authorizer_event, context


class BenchBase:
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
