"""Email through Amazon SES v2, as a raw MIME message so it can carry RFC 8058's headers.

SES v2's `Simple` content takes extra headers too, but a raw message is what the message is on the
wire in both SES and moto (moto keeps raw messages whole, so tests read the headers SES was given).
`List-Unsubscribe` holds the https link (signed, one customer and channel) and
`List-Unsubscribe-Post: List-Unsubscribe=One-Click` tells the mailbox provider it may POST to it
without showing the page (Gmail and Yahoo require both of bulk senders since 2024).
"""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from loyalty.adapters.email import SendFailed
from loyalty.domain.outgoing import Outgoing

_POLICY = policy.SMTP.clone(max_line_length=998)


class SesTemplatedEmail:
    def __init__(self, client: Any, sender: str, configuration_set: str | None = None) -> None:
        self._client = client
        self._sender = sender
        self._configuration_set = configuration_set

    def mime(self, outgoing: Outgoing) -> bytes:
        # Lines up to SMTP's 998: a long https link is never folded (nor RFC 2047-encoded, which
        # mailbox providers would not read as a link).
        mail = EmailMessage(policy=_POLICY)
        mail["From"] = formataddr(("", self._sender))
        mail["To"] = outgoing.to
        mail["Subject"] = outgoing.subject or ""
        mail["Message-ID"] = make_msgid(domain=self._sender.rpartition("@")[2] or None)
        mail["List-Unsubscribe"] = f"<{outgoing.unsubscribe_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        mail["X-Loyalty-Message-Id"] = outgoing.message_id  # ties SES's bounce events back to it
        mail.set_content(outgoing.text)
        if outgoing.html is not None:
            mail.add_alternative(outgoing.html, subtype="html")
        return mail.as_bytes()

    def send(self, outgoing: Outgoing) -> str:
        request: dict[str, Any] = {
            "FromEmailAddress": self._sender,
            "Destination": {"ToAddresses": [outgoing.to]},
            "Content": {"Raw": {"Data": self.mime(outgoing)}},
            "EmailTags": [{"Name": "message_id", "Value": outgoing.message_id}],
        }
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        try:
            response = self._client.send_email(**request)
        except ClientError as exc:
            raise SendFailed(str(exc.response.get("Error", {}).get("Code") or "ClientError")) from None
        except BotoCoreError as exc:
            raise SendFailed(type(exc).__name__) from None
        return str(response["MessageId"])
