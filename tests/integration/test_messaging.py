"""Messages from templates on every channel, each queued once and checked when it is sent.

Against moto (SES v2 keeps the raw message with its headers, SNS the SMS it published, S3 the print
file) and a local HTTP receiver for the brand's webhook (it checks the signature, answers 500 once,
then 200, and sees the same idempotency key both times).
"""

from __future__ import annotations

import csv
import email
import hashlib
import hmac
import io
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email.message import Message as MimeMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
import requests
from moto.sns.models import sns_backends

from loyalty import jobs
from loyalty.adapters.messages import MessageRepository
from loyalty.adapters.stored_value import Message
from loyalty.bootstrap import Container, bound_container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customers import Address, Consents, Profile
from loyalty.domain.programme import FrequencyCap, Messaging, QuietHours
from loyalty.domain.templates import Cause, Channel, Template
from loyalty.domain.unsubscribe import read as read_token
from loyalty.services.customers import EnrolCommand, RawLink
from loyalty.services.messaging import MessageQueue
from loyalty_local.emulators import REGION, DynamoDBLocal, Moto
from loyalty_local.events import sqs_event
from loyalty_local.gateway import LambdaContext
from loyalty_local.provision import LOCAL_SENDER_EMAIL
from tests.conftest import FixedClock

ALL = Consents(email=True, sms=True, mail=True)
POS = Principal("key-pos", KeyKind.POS, "ams-01")
WEBHOOK_SECRET_NAME = "loyalty/test-webhook"


@pytest.fixture
def sending(container: Container, aws_session: boto3.session.Session, clock: FixedClock) -> Container:
    """The container as the mailer job builds it: a sender, the print bucket, the webhook secret."""
    resources: Any = container.local_resources  # type: ignore[attr-defined]
    settings = container.settings.model_copy(
        update={
            "sender_email": LOCAL_SENDER_EMAIL,
            "print_bucket": resources.print_bucket,
            "webhook_secret": WEBHOOK_SECRET_NAME,
            "public_base_url": "https://loyalty.example",
        }
    )
    return Container(settings, session=aws_session, clock=clock)


def customer(
    c: Container,
    *,
    email: str | None = None,
    phone: str | None = None,
    consents: Consents = ALL,
    timezone: str | None = None,
    address: Address | None = None,
) -> str:
    links = [RawLink("email", email or f"m-{uuid.uuid4().hex[:10]}@example.com")]
    if phone:
        links.append(RawLink("phone", phone))
    profile = Profile(first_name="Ann", last_name="Smit", timezone=timezone, address=address)
    return c.customers.enrol(EnrolCommand(links, profile, consents, True, None), POS).customer.customer_id


def template(c: Container, channel: Channel, template_id: str | None = None, **fields: Any) -> str:
    template_id = template_id or f"t-{channel.value}-{uuid.uuid4().hex[:6]}"
    defaults: dict[str, Any] = {
        Channel.EMAIL: {
            "subject": "Hi {{ first_name }}",
            "body": "You have {{ points.available }} points. Unsubscribe: {{ unsubscribe_url }}",
        },
        Channel.SMS: {"body": "Hi {{ first_name }}, {{ points.available }} points"},
        Channel.MAIL: {"body": "Dear {{ first_name }}"},
        Channel.API: {"subject": "Welcome", "body": "Welcome {{ first_name }}"},
    }[channel]
    c.templates.put(Template(template_id, channel, **(defaults | fields)))
    return template_id


def set_policy(c: Container, **messaging: Any) -> None:
    programme = c.programme.current()
    c.programme.replace(programme.model_copy(update={"messaging": Messaging(**messaging)}))


def queue(c: Container) -> MessageQueue:
    return MessageQueue(messages=MessageRepository(c.table), clock=c.clock)


def message(c: Container, message_id: str) -> Message:
    found = MessageRepository(c.table).get(message_id)
    assert found is not None
    return found


def moto_data(moto: Moto) -> dict[str, Any]:
    data: dict[str, Any] = requests.get(f"{moto.endpoint}/moto-api/data.json", timeout=10).json()
    return data


def raw_emails_to(moto: Moto, address: str) -> list[MimeMessage]:
    found = []
    for m in moto_data(moto).get("ses", {}).get("RawMessage", []):
        parsed = email.message_from_string(m.get("raw_data", ""))
        if address in (parsed["To"] or "") or address in (m.get("destinations") or []):
            found.append(parsed)
    return found


def text_of(mime: MimeMessage) -> str:
    for part in mime.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text part")


# ---- exactly once, email -----------------------------------------------------------------------


def test_a_message_is_queued_once_per_cause_and_sent_once_with_one_click_unsubscribe(
    sending: Container, emulators: tuple[DynamoDBLocal, Moto]
) -> None:
    _, moto = emulators
    address = f"ann-{uuid.uuid4().hex[:10]}@example.com"
    cid = customer(sending, email=address)
    tid = template(sending, Channel.EMAIL)
    first, created = queue(sending).queue(Cause.WELCOME, cid, cid, Channel.EMAIL, tid)
    again, created_again = queue(sending).queue(Cause.WELCOME, cid, cid, Channel.EMAIL, tid)
    assert created and not created_again and again == first  # a retried cause queues nothing more
    assert message(sending, first).status == "queued"

    report = sending.mailer.send_due()
    assert report.sent == 1
    (mime,) = raw_emails_to(moto, address)
    assert mime["Subject"] == "Hi Ann"
    unsubscribe = mime["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://loyalty.example/v1/unsubscribe?token=") and unsubscribe.endswith(
        ">"
    )
    assert mime["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = unsubscribe[1:-1].split("token=", 1)[1]
    assert read_token(sending.cursor_key(), token) == (cid, Channel.EMAIL)
    assert "You have 0 points." in text_of(mime) and token in text_of(mime)

    sent = message(sending, first)
    assert sent.status == "sent" and sent.attempts == 1 and sent.to == address
    assert sent.provider_message_id and sent.channel == "email" and sent.customer_id == cid
    # On the customer's timeline (gsi3's attributes, adapters/timeline.py), as a record of its own
    # that outlives the message item's retention and holds neither the address nor the body.
    item = sending.table.get(f"MESSAGE#{first}", "TIMELINE")
    assert item is not None and item["tlpk"] == f"CUST#{cid}"
    assert "to" not in item and "body" not in item
    assert item["tl"]["kind"] == "message" and item["tl"]["type"] == "email"
    assert item["tl"]["ref"] == {"message_id": first} and item["tl"]["summary"] == "Hi Ann"
    # Run again (the schedule, a replayed stream batch): nothing more leaves.
    assert sending.mailer.send_due().sent == 0
    assert len(raw_emails_to(moto, address)) == 1


def test_the_stream_trigger_sends_a_queued_message(
    sending: Container, emulators: tuple[DynamoDBLocal, Moto]
) -> None:
    _, moto = emulators
    address = f"bo-{uuid.uuid4().hex[:10]}@example.com"
    cid = customer(sending, email=address)
    mid, _ = queue(sending).queue(Cause.WELCOME, cid, cid, Channel.EMAIL, template(sending, Channel.EMAIL))
    record = {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": f"MESSAGE#{mid}"}}}}
    assert sending.mailer.send_records([record, record]).sent == 1
    assert len(raw_emails_to(moto, address)) == 1


# ---- the contact policy ------------------------------------------------------------------------


def test_no_consent_suppresses_with_the_reason_and_sends_nothing(
    sending: Container, emulators: tuple[DynamoDBLocal, Moto]
) -> None:
    _, moto = emulators
    address = f"cy-{uuid.uuid4().hex[:10]}@example.com"
    cid = customer(sending, email=address, consents=Consents(email=False, sms=True))
    mid, _ = queue(sending).queue(Cause.WELCOME, cid, cid, Channel.EMAIL, template(sending, Channel.EMAIL))
    report = sending.mailer.send_due()
    assert report.suppressed == 1 and report.sent == 0
    suppressed = message(sending, mid)
    assert (suppressed.status, suppressed.reason) == ("suppressed", "no-consent")
    assert raw_emails_to(moto, address) == []
    assert sending.mailer.send_due().suppressed == 0  # decided once: out of the pending index


def test_a_frequency_cap_counts_sent_messages_per_channel_in_its_window(
    sending: Container, clock: FixedClock, emulators: tuple[DynamoDBLocal, Moto]
) -> None:
    _, moto = emulators
    set_policy(sending, frequency_caps={"email": FrequencyCap(max=2, per_days=7)})
    address = f"di-{uuid.uuid4().hex[:10]}@example.com"
    cid = customer(sending, email=address, phone="+31612345678")
    tid, sms = template(sending, Channel.EMAIL), template(sending, Channel.SMS)
    q = queue(sending)
    ids = []
    for n in range(3):
        ids.append(q.queue(Cause.CAMPAIGN, f"run-{n}", cid, Channel.EMAIL, tid, {"coupon": {"code": "X"}})[0])
        q.queue(Cause.CAMPAIGN, f"run-{n}", cid, Channel.SMS, sms, {"coupon": {"code": "X"}})
        report = sending.mailer.send_due()
        clock.advance(days=1)
    assert [message(sending, i).status for i in ids] == ["sent", "sent", "suppressed"]
    assert message(sending, ids[2]).reason == "frequency-cap"
    assert len(raw_emails_to(moto, address)) == 2
    assert report.sent == 1  # the third day's SMS: its channel has no cap
    # A week after the first send the window holds one: the next email goes.
    clock.advance(days=5)
    later, _ = q.queue(Cause.CAMPAIGN, "run-9", cid, Channel.EMAIL, tid, {"coupon": {"code": "X"}})
    sending.mailer.send_due()
    assert message(sending, later).status == "sent"


@pytest.mark.parametrize(
    ("zone", "now", "release"),
    [
        # 22:30 in Amsterdam (CET, +1): waits until 08:00 there, 07:00 UTC.
        (
            "Europe/Amsterdam",
            datetime(2026, 11, 22, 21, 30, tzinfo=UTC),
            datetime(2026, 11, 23, 7, 0, tzinfo=UTC),
        ),
        # The same instant is 16:30 in New York: sent at once.
        ("America/New_York", datetime(2026, 11, 22, 21, 30, tzinfo=UTC), None),
        # The night clocks go back in Amsterdam (25 Oct 2026, 03:00 CEST -> 02:00 CET): 23:00 CEST
        # on the 24th waits until 08:00 CET, 07:00 UTC (nine hours and one hour more, not 8).
        (
            "Europe/Amsterdam",
            datetime(2026, 10, 24, 21, 0, tzinfo=UTC),
            datetime(2026, 10, 25, 7, 0, tzinfo=UTC),
        ),
    ],
)
def test_quiet_hours_defer_to_the_end_of_the_window_in_the_customers_zone(
    sending: Container,
    clock: FixedClock,
    emulators: tuple[DynamoDBLocal, Moto],
    zone: str,
    now: datetime,
    release: datetime | None,
) -> None:
    _, moto = emulators
    clock.current = now
    set_policy(sending, quiet_hours=QuietHours(start="21:00", end="08:00"))
    address = f"ed-{uuid.uuid4().hex[:10]}@example.com"
    cid = customer(sending, email=address, timezone=zone)
    mid, _ = queue(sending).queue(Cause.WELCOME, cid, cid, Channel.EMAIL, template(sending, Channel.EMAIL))
    report = sending.mailer.send_due()
    if release is None:
        assert report.sent == 1 and message(sending, mid).status == "sent"
        return
    deferred = message(sending, mid)
    assert report.deferred == 1 and (deferred.status, deferred.reason) == ("deferred", "quiet-hours")
    assert deferred.next_attempt_at == release and deferred.attempts == 0
    clock.current = release - (release - now) / 2
    assert sending.mailer.send_due().sent == 0  # still night there
    clock.current = release
    assert sending.mailer.send_due().sent == 1  # deferred, not dropped
    sent = message(sending, mid)
    assert sent.status == "sent" and sent.sent_at == release and sent.attempts == 1
    assert len(raw_emails_to(moto, address)) == 1


# ---- SMS, direct mail, webhook -----------------------------------------------------------------


def test_sms_goes_through_sns_to_an_e164_number_only(sending: Container) -> None:
    cid = customer(sending, phone="+31687654321")
    tid = template(sending, Channel.SMS)
    mid, _ = queue(sending).queue(Cause.WELCOME, cid, cid, Channel.SMS, tid)
    assert sending.mailer.send_due().sent == 1
    sent = message(sending, mid)
    assert sent.status == "sent" and sent.to == "+31687654321"
    # moto's server runs in this process: its SNS backend keeps every SMS it published.
    account = sending.client("sts").get_caller_identity()["Account"]
    published = sns_backends[account][REGION].sms_messages
    assert published[str(sent.provider_message_id)] == ("+31687654321", "Hi Ann, 0 points")
    # A customer without a phone is suppressed, not sent to somewhere else.
    other = customer(sending)
    none_id, _ = queue(sending).queue(Cause.WELCOME, other, other, Channel.SMS, tid)
    sending.mailer.send_due()
    assert (message(sending, none_id).status, message(sending, none_id).reason) == (
        "suppressed",
        "no-address",
    )


def test_direct_mail_is_one_utf8_csv_print_file_per_batch_on_s3(sending: Container) -> None:
    tid = template(sending, Channel.MAIL)
    address = Address(line1="Prinsengracht 263", city="Amsterdam", country="NL", postal_code="1016 GV")
    ids = []
    for _ in range(3):
        cid = customer(sending, address=address)
        ids.append(queue(sending).queue(Cause.WELCOME, cid, cid, Channel.MAIL, tid)[0])
    nobody = customer(sending)  # no address: suppressed, not a blank line in the file
    none_id, _ = queue(sending).queue(Cause.WELCOME, nobody, nobody, Channel.MAIL, tid)

    report = sending.mailer.send_due()
    assert report.sent == 3 and report.suppressed == 1
    providers = {message(sending, i).provider_message_id for i in ids}
    (where,) = providers
    assert where and where.startswith(f"s3://{sending.settings.print_bucket}/print/")
    key = where.split("/", 3)[3]
    body = sending.client("s3").get_object(Bucket=sending.settings.print_bucket, Key=key)["Body"].read()
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [r["message_id"] for r in rows] == sorted(ids, key=[r["message_id"] for r in rows].index)
    assert sorted(r["message_id"] for r in rows) == sorted(ids)
    assert rows[0] == rows[0] | {
        "name": "Ann Smit",
        "line1": "Prinsengracht 263",
        "postal_code": "1016 GV",
        "city": "Amsterdam",
        "country": "NL",
        "line2": "",
    }
    assert message(sending, none_id).reason == "no-address"
    assert sending.mailer.send_due().sent == 0


class Receiver:
    """The brand's webhook: verifies the signature, fails the first delivery, records what came."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.deliveries: list[tuple[int, dict[str, str], dict[str, Any]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stamp = self.headers["X-Loyalty-Timestamp"]
                expected = (
                    "v1="
                    + hmac.new(
                        receiver.secret.encode(), stamp.encode() + b"." + body, hashlib.sha256
                    ).hexdigest()
                )
                ok = hmac.compare_digest(expected, self.headers["X-Loyalty-Signature"])
                status = 401 if not ok else (500 if not receiver.deliveries else 200)
                receiver.deliveries.append((status, dict(self.headers), json.loads(body)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/loyalty"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver(sending: Container) -> Iterator[Receiver]:
    secret = uuid.uuid4().hex
    r = Receiver(secret)
    client = sending.client("secretsmanager")
    value = json.dumps({"url": r.url, "secret": secret})
    try:
        client.create_secret(Name=WEBHOOK_SECRET_NAME, SecretString=value)
    except client.exceptions.ResourceExistsException:
        client.put_secret_value(SecretId=WEBHOOK_SECRET_NAME, SecretString=value)
    yield r
    r.stop()


def test_the_api_channel_posts_signed_json_and_retries_with_the_same_idempotency_key(
    sending: Container, clock: FixedClock, receiver: Receiver
) -> None:
    cid = customer(sending)
    mid, _ = queue(sending).queue(Cause.WELCOME, cid, cid, Channel.API, template(sending, Channel.API))
    first = sending.mailer.send_due()
    assert first.retrying == 1 and first.errors == ["HTTP500"]
    failed = message(sending, mid)
    assert failed.status == "queued" and failed.last_error == "HTTP500"
    assert sending.mailer.send_due().sent == 0  # backing off
    clock.advance(minutes=1)
    assert sending.mailer.send_due().sent == 1
    assert [d[0] for d in receiver.deliveries] == [500, 200]
    keys = {d[1]["Idempotency-Key"] for d in receiver.deliveries}
    assert keys == {mid}
    payload = receiver.deliveries[1][2]
    assert payload["message_id"] == mid and payload["customer_id"] == cid and payload["body"] == "Welcome Ann"
    assert message(sending, mid).status == "sent" and message(sending, mid).attempts == 2


def test_an_api_message_is_given_up_after_the_last_attempt(
    sending: Container, clock: FixedClock, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    receiver.secret = "not-the-secret"  # every delivery is refused (401)
    cid = customer(sending)
    mid, _ = queue(sending).queue(Cause.WELCOME, cid, cid, Channel.API, template(sending, Channel.API))
    from loyalty.services import mailer

    for _ in range(mailer.MAX_ATTEMPTS):
        sending.mailer.send_due()
        clock.advance(hours=1)
    dead = message(sending, mid)
    assert (dead.status, dead.last_error, dead.attempts) == ("failed", "HTTP401", mailer.MAX_ATTEMPTS)


# ---- triggers ----------------------------------------------------------------------------------


def test_the_triggers_queue_one_welcome_per_customer_and_one_confirmation_per_sale(
    sending: Container,
) -> None:
    triggers = sending.message_triggers
    cid = customer(sending)
    enrolled = {"customer_id": cid, "store_id": "ams-01"}
    earned = {
        "customer_id": cid,
        "type": "sale",
        "transaction_id": "T1",
        "store_id": "ams-01",
        "earn": {"points": 40, "balance": 40, "rules": [], "ledger_seq": 1},
    }
    # Off while the programme names no template.
    assert triggers.handle("CustomerEnrolled", enrolled).outcome == "off"
    assert triggers.handle("TransactionRecorded", earned).outcome == "off"

    welcome, confirm = template(sending, Channel.EMAIL), template(sending, Channel.SMS)
    set_policy(sending, welcome_template_id=welcome, earn_confirmation_template_id=confirm)
    first = triggers.handle("CustomerEnrolled", enrolled)
    assert first.outcome == "queued" and first.message_id
    assert triggers.handle("CustomerEnrolled", enrolled) == replace(first, outcome="duplicate")  # redelivered
    sale = triggers.handle("TransactionRecorded", earned)
    assert sale.outcome == "queued" and message(sending, str(sale.message_id)).channel == "sms"
    assert message(sending, str(sale.message_id)).cause_id == "ams-01#T1"
    assert triggers.handle("TransactionRecorded", earned).outcome == "duplicate"
    assert triggers.handle("TransactionRecorded", earned | {"transaction_id": "T2"}).outcome == "queued"
    # Another store's T1 is another sale.
    assert triggers.handle("TransactionRecorded", earned | {"store_id": "web-nl"}).outcome == "queued"
    # Not a sale's earn: a return, a sale that earned nothing, points from elsewhere; other events.
    assert triggers.handle("TransactionRecorded", earned | {"type": "return"}).outcome == "not-a-trigger"
    assert triggers.handle("TransactionRecorded", earned | {"earn": None}).outcome == "not-a-trigger"
    assert (
        triggers.handle("PointsEarned", {"customer_id": cid, "points": 40, "reason": "event"}).outcome
        == "not-a-trigger"
    )
    assert triggers.handle("TierChanged", {"customer_id": cid}).outcome == "not-a-trigger"
    queued = message(sending, str(first.message_id))
    assert (queued.cause, queued.cause_id, queued.customer_id, queued.template_id) == (
        "welcome",
        cid,
        cid,
        welcome,
    )


# ---- SES bounces and complaints ----------------------------------------------------------------


def _sns(event: dict[str, Any]) -> str:
    """An SES event as SNS delivers it to a subscribed queue (a Notification envelope)."""
    return json.dumps({"Type": "Notification", "MessageId": str(uuid.uuid4()), "Message": json.dumps(event)})


def _bounce(address: str, kind: str = "Permanent") -> dict[str, Any]:
    return {
        "eventType": "Bounce",
        "bounce": {
            "bounceType": kind,
            "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": address}],
        },
        "mail": {"destination": [address], "tags": {"message_id": ["msg_x"]}},
    }


def test_a_permanent_bounce_or_a_complaint_turns_email_off_and_later_emails_are_suppressed(
    sending: Container, emulators: tuple[DynamoDBLocal, Moto]
) -> None:
    _, moto = emulators
    bounced, complained, transient = (f"{n}-{uuid.uuid4().hex[:8]}@example.com" for n in ("b", "c", "t"))
    ids = {a: customer(sending, email=a) for a in (bounced, complained, transient)}
    complaint = {
        "eventType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": complained}]},
    }
    bodies = [
        _sns(_bounce(bounced)),
        json.dumps(complaint),  # raw message delivery: the event itself
        _sns(_bounce(transient, "Transient")),
        _sns(_bounce("nobody-we-know@example.com")),
        _sns({"eventType": "Delivery", "mail": {}}),
        _sns(_bounce(bounced)),  # SNS delivers at least once
    ]
    event = sqs_event(
        [{"MessageId": str(uuid.uuid4()), "ReceiptHandle": "r", "Body": b} for b in bodies],
        "arn:aws:sqs:eu-west-1:000000000000:loyalty-email-feedback",
        REGION,
    )
    with bound_container(sending):
        result = jobs.apply_email_feedback(event, LambdaContext("feedback"))
    assert result["batchItemFailures"] == []
    consent = {a: sending.customers.get(cid).consents.email for a, cid in ids.items()}
    assert consent == {bounced: False, complained: False, transient: True}

    tid = template(sending, Channel.EMAIL)
    mid, _ = queue(sending).queue(Cause.WELCOME, ids[bounced], ids[bounced], Channel.EMAIL, tid)
    sending.mailer.send_due()
    assert (message(sending, mid).status, message(sending, mid).reason) == ("suppressed", "no-consent")
    assert raw_emails_to(moto, bounced) == []
