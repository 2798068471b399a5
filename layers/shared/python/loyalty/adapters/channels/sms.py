"""SMS through Amazon SNS `Publish` to a phone number (E.164 only: the contact policy refuses any
other number before it gets here).

SNS rather than End User Messaging SMS (pinpoint-sms-voice-v2 `SendTextMessage`): both bill the
same carrier rates, SNS needs no phone-pool or origination-identity resources to run locally, and
moto records what SNS published. The origination identity (a sender id or long code, registered
per country) is an account setting either way.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from loyalty.adapters.email import SendFailed
from loyalty.domain.outgoing import Outgoing


class SnsSms:
    def __init__(self, client: Any, sender_id: str | None = None) -> None:
        self._client = client
        self._sender_id = sender_id

    def send(self, outgoing: Outgoing) -> str:
        attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}
        if self._sender_id:
            attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": self._sender_id}
        try:
            response = self._client.publish(
                PhoneNumber=outgoing.to, Message=outgoing.text, MessageAttributes=attributes
            )
        except ClientError as exc:
            raise SendFailed(str(exc.response.get("Error", {}).get("Code") or "ClientError")) from None
        except BotoCoreError as exc:
            raise SendFailed(type(exc).__name__) from None
        return str(response["MessageId"])
