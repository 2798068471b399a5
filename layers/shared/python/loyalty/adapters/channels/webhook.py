"""The `api` channel: a signed JSON POST to the brand's webhook.

Headers: `X-Loyalty-Timestamp` (Unix seconds), `X-Loyalty-Signature: v1=<hex HMAC-SHA256 over
timestamp + "." + body>` and `Idempotency-Key: <message id>` (the same on every retry, so the
brand drops a delivery it already has). Anything but a 2xx is a failed attempt: the mailer retries
it with its back-off (1, 2, 4 ... minutes, at most an hour apart) and after MAX_ATTEMPTS leaves it
`failed` — the outbox's `status=failed` is the dead-letter list. The URL and the signing secret come
from Secrets Manager (one JSON secret `{"url", "secret"}`), never from the programme document,
which admins read over the API.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from loyalty.adapters.email import SendFailed
from loyalty.domain.outgoing import Outgoing


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class SignedWebhook:
    def __init__(
        self, *, settings: Callable[[], str], timeout: float = 5.0, now: Callable[[], float] = time.time
    ) -> None:
        self._settings = settings  # the secret's JSON text, read (and cached) by its owner
        self._timeout = timeout
        self._now = now

    def payload(self, outgoing: Outgoing) -> dict[str, Any]:
        c = outgoing.customer
        return {
            "message_id": outgoing.message_id,
            "customer_id": c.customer_id,
            "consents": {"email": c.consents.email, "sms": c.consents.sms, "mail": c.consents.mail},
            "subject": outgoing.subject,
            "body": outgoing.text,
            **{k: v for k, v in outgoing.data.items() if v is not None},
        }

    def send(self, outgoing: Outgoing) -> str:
        try:
            config = json.loads(self._settings())
            url, secret = str(config["url"]), str(config["secret"])
        except (ValueError, KeyError, TypeError):
            raise SendFailed("WebhookNotConfigured") from None
        if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise SendFailed("WebhookNotHttps")
        body = json.dumps(self.payload(outgoing), separators=(",", ":"), sort_keys=True).encode()
        timestamp = str(int(self._now()))
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-Loyalty-Timestamp": timestamp,
                "X-Loyalty-Signature": signature(secret, timestamp, body),
                "Idempotency-Key": outgoing.message_id,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as exc:
            raise SendFailed(f"HTTP{exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise SendFailed(type(exc).__name__) from None
        if not 200 <= status < 300:
            raise SendFailed(f"HTTP{status}")
        return f"webhook:{outgoing.message_id}"
