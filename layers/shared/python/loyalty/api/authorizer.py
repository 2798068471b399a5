"""The Lambda REQUEST authorizer: a hashed-key lookup, one GetItem per uncached call.

API Gateway caches an Allow for AUTHORIZER_CACHE_SECONDS per key, so a revoked key stops working
within that time. The policy covers the whole API because a cached answer is reused for every
route; which routes a key kind may call is decided in the functions from the route table.

The answer also names the caller's usage-plan key: the API's key source is AUTHORIZER, so API
Gateway meters and throttles a request against the usage-plan API key whose value is the returned
`usageIdentifierKey` — the key id (a ULID, 26 characters; API Gateway wants at least 20). It only
takes effect where a method requires a key (the `usagePlanKeys` deployment setting).
"""

from __future__ import annotations

from typing import Any

from loyalty.bootstrap import container
from loyalty.domain.errors import Unauthenticated
from loyalty.observability import logger

AUTHORIZER_CACHE_SECONDS = 5
API_KEY_HEADER = "x-api-key"


class Unauthorized(Exception):
    """API Gateway turns exactly this message into a 401."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


def api_key_of(event: dict[str, Any]) -> str | None:
    """The request's one x-api-key header; None when it carries none, or more than one.

    API Gateway hands a REQUEST authorizer both `headers` (the last value of each header) and
    `multiValueHeaders` (every value). Reading only one of them let two headers carry two keys: the
    local gateway cached its verdict under the first while this checked the last, and for the cache's
    lifetime a made-up key rode on a real one. A request with two keys is refused, whichever they are.
    """
    singles = [v for k, v in (event.get("headers") or {}).items() if k.lower() == API_KEY_HEADER]
    multi = [
        v
        for k, values in (event.get("multiValueHeaders") or {}).items()
        if k.lower() == API_KEY_HEADER
        for v in (values or [])
    ]
    if len(singles) > 1 or len(multi) > 1 or (multi and singles != multi):
        return None
    found = (multi or singles or [None])[0]
    return found if isinstance(found, str) else None


def authorize(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        principal = container().api_keys.authenticate(api_key_of(event))
    except Unauthenticated:
        raise Unauthorized() from None
    logger.append_keys(key_id=principal.key_id)
    return {
        "principalId": principal.key_id,
        "usageIdentifierKey": principal.key_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": _api_wildcard(event)}
            ],
        },
        "context": {
            "key_id": principal.key_id,
            "kind": principal.kind.value,
            "store_id": principal.store_id or "",
        },
    }


def _api_wildcard(event: dict[str, Any]) -> str:
    # arn:aws:execute-api:region:account:api-id/stage/METHOD/path -> .../stage/*/*
    arn = str(event.get("methodArn", "*"))
    parts = arn.split("/")
    return "/".join(parts[:2]) + "/*/*" if len(parts) >= 2 else arn
