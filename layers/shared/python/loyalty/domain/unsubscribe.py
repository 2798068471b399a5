"""Unsubscribe tokens: the link in a message that turns one channel off for one customer.

A token is `u1.<customer_id>.<channel>.<mac>`, the mac an HMAC-SHA256 over the customer and the
channel under a key derived from the platform's list-cursor key with a label of its own (so a
cursor's mac is never a valid token, nor the reverse, and no new secret has to be provisioned).
It does not expire: a link in a months-old email must still work (the law asks for at least 30
days), and all it can do is turn a channel off.
"""

from __future__ import annotations

import hashlib
import hmac

from loyalty.domain.errors import InvalidUnsubscribeToken
from loyalty.domain.templates import Channel

_VERSION = "u1"
_LABEL = b"loyalty/unsubscribe/v1"


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _LABEL, hashlib.sha256).digest()


def _mac(secret: str, customer_id: str, channel: str) -> str:
    return hmac.new(_key(secret), f"{customer_id}\n{channel}".encode(), hashlib.sha256).hexdigest()[:32]


def mint(secret: str, customer_id: str, channel: Channel) -> str:
    return f"{_VERSION}.{customer_id}.{channel.value}.{_mac(secret, customer_id, channel.value)}"


def read(secret: str, token: str) -> tuple[str, Channel]:
    """The customer and channel a token names; InvalidUnsubscribeToken for anything not minted here."""
    version, _, rest = token.partition(".")
    customer_id, channel, mac = rest.rsplit(".", 2) if rest.count(".") >= 2 else ("", "", "")
    if version != _VERSION or not customer_id or channel not in {c.value for c in Channel}:
        raise InvalidUnsubscribeToken("not an unsubscribe link this platform sent")
    if not hmac.compare_digest(mac.encode(), _mac(secret, customer_id, channel).encode()):
        raise InvalidUnsubscribeToken("not an unsubscribe link this platform sent")
    return customer_id, Channel(channel)
