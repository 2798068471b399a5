"""Email out through Amazon SES (the v2 API): one plain-text message to one recipient.

The sender is the one verified identity the deployment names (SENDER_EMAIL); the function's role
may send from that address only. What SES refuses comes back as `SendFailed` with SES's error code
and nothing of the message itself, so a failure can be recorded and logged without its body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError


@dataclass
class SendFailed(Exception):
    """SES did not take the message. `reason` is SES's error code (or the transport's class name)."""

    reason: str


class SesEmailSender:
    def __init__(self, client: Any, sender: str) -> None:
        self._client = client
        self._sender = sender

    def send(self, to: str, subject: str, body: str) -> str:
        """Send one message; returns SES's message id."""
        try:
            response = self._client.send_email(
                FromEmailAddress=self._sender,
                Destination={"ToAddresses": [to]},
                Content={
                    "Simple": {
                        "Subject": {"Data": subject, "Charset": "UTF-8"},
                        "Body": {"Text": {"Data": body, "Charset": "UTF-8"}},
                    }
                },
            )
        except ClientError as exc:
            raise SendFailed(str(exc.response.get("Error", {}).get("Code") or "ClientError")) from None
        except BotoCoreError as exc:
            raise SendFailed(type(exc).__name__) from None
        return str(response["MessageId"])
