"""List cursors as clients see them: opaque, signed, bound to one list and its filter, short-lived.

A repository's cursor is the last key it read (DynamoDB's LastEvaluatedKey). Handed out as is, it
let a client read internal keys, and send one list's key to another list: DynamoDB refused the
start key and the client got a 500. Here it travels inside an HMAC-SHA256 token over the list it
came from (the route, its path ids, its filters; not `limit`, which may change between pages) and
the time it was issued, under a key from Secrets Manager that only the functions serving lists can
read. Anything else is a 400 naming `cursor`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from datetime import datetime

from loyalty.domain.errors import InvalidCursor

CURSOR_TTL_SECONDS = 24 * 3600
CLOCK_SKEW_SECONDS = 300  # functions' clocks differ a little; a cursor from "the future" is forged
# Query parameters that page a list rather than choose what is in it.
PAGING_PARAMETERS = frozenset({"cursor", "limit"})
_VERSION = "c1"


def list_binding(resource: str, path: Mapping[str, str] | None, query: Mapping[str, str] | None) -> str:
    """What a cursor is good for: one route, its path ids and its filters."""
    filters = {k: v for k, v in (query or {}).items() if k not in PAGING_PARAMETERS}
    return json.dumps([resource, dict(sorted((path or {}).items())), dict(sorted(filters.items()))])


class CursorSeal:
    def __init__(self, *, key: Callable[[], str], now: Callable[[], datetime]) -> None:
        self._key = key
        self._now = now

    def seal(self, inner: str | None, binding: str) -> str | None:
        if inner is None:
            return None
        payload = _b64(json.dumps({"c": inner, "t": int(self._now().timestamp())}).encode())
        return f"{_VERSION}.{payload}.{self._mac(binding, payload)}"

    def open(self, token: str | None, binding: str) -> str | None:
        """The repository's cursor inside `token`; None for the first page (no cursor, or `cursor=`)."""
        if not token:
            return None
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _VERSION:
            raise InvalidCursor("not a cursor this API returned: pass next_cursor exactly as it came")
        _, payload, mac = parts
        if not hmac.compare_digest(mac.encode(), self._mac(binding, payload).encode()):
            raise InvalidCursor("this cursor belongs to another list, other ids or other filters")
        try:
            plain = json.loads(_unb64(payload))
            inner, issued = plain["c"], plain["t"]
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise InvalidCursor("not a cursor this API returned") from None
        age = self._now().timestamp() - issued
        if not isinstance(inner, str) or not -CLOCK_SKEW_SECONDS <= age <= CURSOR_TTL_SECONDS:
            raise InvalidCursor("this cursor has expired: list again from the first page")
        return inner

    def _mac(self, binding: str, payload: str) -> str:
        message = f"{_VERSION}\n{binding}\n{payload}".encode()
        return _b64(hmac.new(self._key().encode(), message, hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode())
