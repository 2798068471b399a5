"""Confirmation tokens: the link in the double opt-in email that makes a web enrolment a member.

A token is `c1.<customer_id>.<expires unix seconds>.<mac>`, the mac an HMAC-SHA256 over the
customer and the expiry under a key derived from the list-cursor key with a label of its own (not
the unsubscribe label: an unsubscribe token is never a confirmation, nor a cursor's mac either).
Unlike an unsubscribe link it expires — at the end of the programme's confirmation window, when the
pending enrolment lapses — because following it creates a membership, a card and points.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from loyalty.domain.errors import InvalidConfirmationToken

_VERSION = "c1"
_LABEL = b"loyalty/confirm/v1"


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _LABEL, hashlib.sha256).digest()


def _mac(secret: str, customer_id: str, expires: int) -> str:
    return hmac.new(_key(secret), f"{customer_id}\n{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def mint(secret: str, customer_id: str, expires_at: datetime) -> str:
    expires = int(expires_at.timestamp())
    return f"{_VERSION}.{customer_id}.{expires}.{_mac(secret, customer_id, expires)}"


def read(secret: str, token: str, now: datetime) -> str:
    """The customer a live token names; InvalidConfirmationToken if forged, cut short or expired."""
    version, _, rest = token.partition(".")
    customer_id, expires, mac = rest.rsplit(".", 2) if rest.count(".") >= 2 else ("", "", "")
    if version != _VERSION or not customer_id or not expires.isdigit() or len(expires) > 12:
        raise InvalidConfirmationToken("not a confirmation link this platform sent")
    if not hmac.compare_digest(mac.encode(), _mac(secret, customer_id, int(expires)).encode()):
        raise InvalidConfirmationToken("not a confirmation link this platform sent")
    if now >= datetime.fromtimestamp(int(expires), UTC):
        raise InvalidConfirmationToken("this confirmation link has expired: enrol again")
    return customer_id
