"""AWS on-demand list prices and what a measured call costs at them."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from loyalty.resources import AUTHORIZER, FUNCTIONS
from tools.bench.config import RT_LATENCY_MS
from tools.bench.scenario import Result, percentile

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
    dynamodb_read: float = 0.0  # the part of `dynamodb` that reads cost
    dynamodb_write: float = 0.0  # and the part that writes (items and their index copies)

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
        dynamodb_read=rcu * DDB_RRU_PER_M,
        dynamodb_write=wcu * DDB_WRU_PER_M,
    )


# ---- cart evaluation (issue 4): the offer mix, the engine's clock -------------------------------
