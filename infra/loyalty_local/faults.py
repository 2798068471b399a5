"""Fault injection for the local runtime: a chosen fraction of DynamoDB, SQS and EventBridge calls
fail, through botocore's own event hooks, so the product code sees exactly what AWS would send.

Kinds of fault:

- `throttle` — HTTP 400 ThrottlingException / ProvisionedThroughputExceededException (retryable);
- `server`   — HTTP 500 InternalServerError (retryable);
- `timeout`  — the request never gets an answer (botocore's ReadTimeoutError);
- `lost`     — the request is carried out but its answer is lost on the way back (a ReadTimeoutError
  after the call): the nastiest one, because the caller cannot tell whether it happened and must
  retry safely.

The first three fire before the request is sent (botocore's retry mode sees them and may retry);
`lost` fires after the call, beyond botocore's retries, as a dropped connection would.

`operations` narrows the faults to some API operations (`TransactWriteItems`, `PutItem` ...): with
`lost` on the writes alone, every faulted request has happened, so only a safe retry may follow.

It hooks a boto3 session, so every client made from it afterwards is affected; the local runtime
gives the product code such a session and keeps a clean one for what stands in for AWS itself
(the stream and queue pollers, provisioning). `make run FAULTS=0.1` or `LOYALTY_FAULT_RATE=0.1`.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

SERVICES = ("dynamodb", "sqs", "eventbridge")
KINDS = ("throttle", "server", "timeout", "lost")

_THROTTLE_CODE = {
    "dynamodb": "ProvisionedThroughputExceededException",
    "sqs": "ThrottlingException",
    "eventbridge": "ThrottlingException",
}


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class FaultInjector:
    def __init__(
        self,
        rate: float = 0.0,
        *,
        seed: int | None = None,
        services: Sequence[str] = SERVICES,
        kinds: Sequence[str] = KINDS,
        operations: Sequence[str] | None = None,
    ) -> None:
        unknown = (set(services) - set(SERVICES)) | (set(kinds) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown fault services or kinds: {sorted(unknown)}")
        self.rate = rate
        self.services = tuple(services)
        self.kinds = tuple(kinds)
        self.operations = tuple(operations) if operations else None  # None: every operation
        self._random = random.Random(seed)  # noqa: S311 - chaos, not security
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()  # "<service>.<operation>:<kind>" -> how many

    def install(self, session: Any) -> FaultInjector:
        """Hook every client made from `session` (a boto3 Session) from now on."""
        session.events.register("before-send", self._before_send)
        session.events.register("after-call", self._after_call)
        return self

    @contextmanager
    def active(
        self, rate: float, kinds: Sequence[str] | None = None, operations: Sequence[str] | None = None
    ) -> Iterator[FaultInjector]:
        previous = (self.rate, self.kinds, self.operations)
        self.rate, self.kinds = rate, tuple(kinds or self.kinds)
        if operations:
            self.operations = tuple(operations)
        try:
            yield self
        finally:
            self.rate, self.kinds, self.operations = previous

    # ---- hooks ----------------------------------------------------------------------------
    def _pick(self, event_name: str, allowed: Sequence[str]) -> tuple[str, str] | None:
        if self.rate <= 0:
            return None
        parts = event_name.split(".")
        service = parts[1] if len(parts) > 1 else ""
        if service not in self.services:
            return None
        if self.operations is not None and (len(parts) < 3 or parts[2] not in self.operations):
            return None
        kinds = [k for k in self.kinds if k in allowed]
        if not kinds:
            return None
        with self._lock:
            if self._random.random() >= self.rate:
                return None
            kind = self._random.choice(kinds)
            self.injected[f"{'.'.join(parts[1:3])}:{kind}"] += 1
        return service, kind

    def _before_send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        picked = self._pick(event_name, ("throttle", "server", "timeout"))
        if picked is None:
            return None
        service, kind = picked
        if kind == "timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        if kind == "throttle":
            status, code = 400, _THROTTLE_CODE[service]
        else:
            status, code = 500, "InternalServerError"
        body = f'{{"__type": "{code}", "message": "injected fault"}}'.encode()
        headers = {"x-amzn-ErrorType": code, "Content-Type": "application/x-amz-json-1.0"}
        if service == "sqs":
            # SQS answers its JSON protocol with a query-compatible error header as well.
            headers["x-amzn-query-error"] = f"{code};Sender"
        return AWSResponse(request.url, status, headers, _Raw(body))

    def _after_call(self, event_name: str, http_response: Any = None, **_: Any) -> None:
        if http_response is None or http_response.status_code >= 300:
            return
        if self._pick(event_name, ("lost",)) is not None:
            raise ReadTimeoutError(endpoint_url=getattr(http_response, "url", "injected"))


def from_environment(env: dict[str, str]) -> FaultInjector:
    """`LOYALTY_FAULT_RATE` (0 to 1), `LOYALTY_FAULT_SEED`, `LOYALTY_FAULT_KINDS` and
    `LOYALTY_FAULT_OPERATIONS` (comma-separated; no operations: every one)."""
    rate = float(env.get("LOYALTY_FAULT_RATE") or 0)
    if not 0 <= rate <= 1:
        raise ValueError("LOYALTY_FAULT_RATE must be between 0 and 1")
    seed = env.get("LOYALTY_FAULT_SEED")
    kinds = [k.strip() for k in (env.get("LOYALTY_FAULT_KINDS") or ",".join(KINDS)).split(",") if k.strip()]
    operations = [o.strip() for o in (env.get("LOYALTY_FAULT_OPERATIONS") or "").split(",") if o.strip()]
    return FaultInjector(rate, seed=int(seed) if seed else None, kinds=kinds, operations=operations or None)
