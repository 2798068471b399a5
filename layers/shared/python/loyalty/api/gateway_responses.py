"""The answers API Gateway gives by itself, before or instead of calling a function.

A missing or refused key, throttling, an unknown route, a crashed integration: API Gateway answers
these without running our code. They are problem documents like every other error, so the CDK
API (as gateway responses) and the local gateway both read this one list.

Plain data only: no CDK and no boto3 here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loyalty.api.problems import PROBLEM_JSON, problem_body
from loyalty.domain.errors import (
    DomainError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Throttled,
    Unauthenticated,
)

CONTENT_TYPE = PROBLEM_JSON


@dataclass(frozen=True)
class GatewayResponseDef:
    response_type: str  # API Gateway's ResponseType, e.g. "UNAUTHORIZED"
    status: int
    slug: str
    title: str
    detail: str
    retry_after: int | None = None  # seconds: a transient failure the caller should simply retry

    def body(self) -> dict[str, Any]:
        return problem_body(self.status, self.slug, self.title, self.detail)

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": CONTENT_TYPE}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return headers


UNAUTHORIZED = GatewayResponseDef(
    "UNAUTHORIZED",
    Unauthenticated.status,
    Unauthenticated.slug,
    Unauthenticated.title,
    "send a valid API key in the x-api-key header",
)
ACCESS_DENIED = GatewayResponseDef(
    "ACCESS_DENIED", Forbidden.status, Forbidden.slug, Forbidden.title, "this key may not call this route"
)
THROTTLED = GatewayResponseDef(
    "THROTTLED", Throttled.status, Throttled.slug, Throttled.title, "too many requests; slow down and retry"
)
# A usage plan's quota runs out: the same answer as throttling, so clients need one branch.
QUOTA_EXCEEDED = GatewayResponseDef(
    "QUOTA_EXCEEDED",
    Throttled.status,
    Throttled.slug,
    Throttled.title,
    "the request quota is used up; retry later",
)
# API Gateway's REST APIs answer an unknown path or method with 403 "Missing Authentication Token";
# the contract says 404, as the functions' own not-found answer does.
MISSING_AUTHENTICATION_TOKEN = GatewayResponseDef(
    "MISSING_AUTHENTICATION_TOKEN", NotFound.status, NotFound.slug, NotFound.title, "no such route"
)
REQUEST_TOO_LARGE = GatewayResponseDef(
    "REQUEST_TOO_LARGE",
    PayloadTooLarge.status,
    PayloadTooLarge.slug,
    PayloadTooLarge.title,
    "the request is larger than API Gateway accepts",
)


# The authorizer could not check the key (its table read failed) or the function could not be
# reached (Lambda throttled, a timeout): transient, so 503 with Retry-After rather than API
# Gateway's 500/502/504 — clients retry the same request, which is safe by design.
def _retry_later(response_type: str, detail: str) -> GatewayResponseDef:
    return GatewayResponseDef(
        response_type,
        ServiceUnavailable.status,
        ServiceUnavailable.slug,
        ServiceUnavailable.title,
        detail,
        retry_after=1,
    )


AUTHORIZER_FAILURE = _retry_later("AUTHORIZER_FAILURE", "the API key could not be checked just now; retry")
INTEGRATION_FAILURE = _retry_later("INTEGRATION_FAILURE", "the service could not be reached just now; retry")
INTEGRATION_TIMEOUT = _retry_later(
    "INTEGRATION_TIMEOUT", "the service did not answer in time; retry (the same request is safe to repeat)"
)
DEFAULT_4XX = GatewayResponseDef(
    "DEFAULT_4XX",
    DomainError.status,
    DomainError.slug,
    DomainError.title,
    "the request could not be accepted",
)
DEFAULT_5XX = GatewayResponseDef(
    "DEFAULT_5XX",
    500,
    "internal-error",
    "Internal error",
    "something went wrong on our side; it has been logged",
)

GATEWAY_RESPONSES: tuple[GatewayResponseDef, ...] = (
    UNAUTHORIZED,
    ACCESS_DENIED,
    THROTTLED,
    QUOTA_EXCEEDED,
    MISSING_AUTHENTICATION_TOKEN,
    REQUEST_TOO_LARGE,
    AUTHORIZER_FAILURE,
    INTEGRATION_FAILURE,
    INTEGRATION_TIMEOUT,
    DEFAULT_4XX,
    DEFAULT_5XX,
)

_BY_TYPE = {r.response_type: r for r in GATEWAY_RESPONSES}

# API Gateway's own 5xx response types; every other unlisted type is a 4xx.
_SERVER_SIDE = frozenset(
    {
        "API_CONFIGURATION_ERROR",
        "AUTHORIZER_CONFIGURATION_ERROR",
        "AUTHORIZER_FAILURE",
        "INTEGRATION_FAILURE",
        "INTEGRATION_TIMEOUT",
    }
)


def gateway_response(response_type: str) -> GatewayResponseDef:
    """The answer for an API Gateway response type; unlisted types get DEFAULT_4XX or DEFAULT_5XX."""
    found = _BY_TYPE.get(response_type)
    if found is not None:
        return found
    return DEFAULT_5XX if response_type in _SERVER_SIDE else DEFAULT_4XX
