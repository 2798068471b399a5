"""E-card emails leave through SES (moto's, which records what it sent), each message once.

Given an e-card sold with an email address, when the mailer job gets the table's stream (as the
Lambda event source mapping would hand it over) or runs on its schedule, then SES sends exactly one
email holding the card's number and PIN, the message is marked sent with SES's id, nothing is sent
twice however often the job runs, and a refused send stays queued for a later run.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
import requests

from loyalty import jobs
from loyalty.adapters.messages import MessageRepository
from loyalty.adapters.stored_value import Message
from loyalty.adapters.timeline import customer_owner
from loyalty.bootstrap import Container, use_container
from loyalty.domain.access import KeyKind, Principal
from loyalty.observability import logger as function_logger
from loyalty.services.mailer import LEASE, MAX_ATTEMPTS
from loyalty_local.emulators import DynamoDBLocal, Moto
from loyalty_local.events import scheduler_event
from loyalty_local.gateway import LambdaContext
from loyalty_local.jobs import StreamPoller
from loyalty_local.provision import LOCAL_SENDER_EMAIL
from tests.conftest import FixedClock
from tests.integration.test_merges import enrol

WEB = Principal("key-web", KeyKind.WEB, "web-nl")


def sent_to(moto: Moto, address: str) -> list[dict[str, Any]]:
    """Every email moto's SES accepted for `address` (its backend API lists the messages it keeps)."""
    data = requests.get(f"{moto.endpoint}/moto-api/data.json", timeout=10).json()
    return [
        m
        for m in data.get("ses", {}).get("Message", [])
        if address in m.get("destinations", {}).get("ToAddresses", [])
    ]


class Captured(logging.Handler):
    """Everything the functions' logger emits, record attributes included."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.text.append(f"{record.getMessage()} {record.__dict__}")


@dataclass
class MailerEnv:
    """The real mailer handler on a test's table, sending from an address of the test's choice."""

    container: Container
    session: boto3.session.Session
    clock: FixedClock
    logs: Captured

    def install(self, sender: str) -> Container:
        settings = self.container.settings.model_copy(update={"sender_email": sender})
        mail = Container(settings, session=self.session, clock=self.clock)
        use_container(mail)  # what the handler's container() answers, as on a cold start
        return mail

    def poller(self) -> StreamPoller:
        return StreamPoller(
            self.session, self.container.settings.table_name, handler=jobs.send_messages, function="mailer"
        )


@pytest.fixture
def mailer(
    container: Container, aws_session: boto3.session.Session, clock: FixedClock
) -> Iterator[MailerEnv]:
    logs = Captured()
    std_logger = logging.getLogger(function_logger.name)
    std_logger.addHandler(logs)
    yield MailerEnv(container, aws_session, clock, logs)
    use_container(None)
    std_logger.removeHandler(logs)


def sell_e_card(container: Container, email: str) -> tuple[str, str]:
    sold = container.stored_value.sell_gift_card(Decimal("25"), "EUR", None, WEB, email=email, name="Ann")
    assert sold.pin is not None
    return sold.account.account_id, sold.pin


def only_message(container: Container, email: str) -> Message:
    messages, _ = container.stored_value.messages(200, None)
    (found,) = [m for m in messages if m.to == email]
    return found


def scheduled_run() -> dict[str, Any]:
    result: dict[str, Any] = jobs.send_messages(scheduler_event("mailer"), LambdaContext("mailer"))
    return result


def test_an_e_card_sale_sends_one_email_with_number_and_pin_and_marks_it_sent(
    container: Container,
    emulators: tuple[DynamoDBLocal, Moto],
    mailer: MailerEnv,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, moto = emulators
    mailer.install(LOCAL_SENDER_EMAIL)
    email = f"ann-{uuid.uuid4().hex[:10]}@example.com"
    caplog.set_level(logging.INFO)

    number, pin = sell_e_card(container, email)
    assert only_message(container, email).status == "queued"
    poller = mailer.poller()
    assert poller.poll_once() > 0

    (sent,) = sent_to(moto, email)
    assert sent["source"] == LOCAL_SENDER_EMAIL
    assert sent["subject"] == "Your gift card"
    assert number in sent["body"] and pin in sent["body"]
    message = only_message(container, email)
    assert message.status == "sent"
    assert message.provider_message_id == sent["id"]
    assert message.sent_at == container.clock.now()
    assert message.attempts == 1 and message.last_error is None

    # A replayed stream batch (Lambda retries, a restart from TRIM_HORIZON) and the schedule: nothing more.
    poller_again = mailer.poller()
    assert poller_again.poll_once() > 0
    report = scheduled_run()
    assert report["sent"] == 0
    assert len(sent_to(moto, email)) == 1
    assert only_message(container, email).status == "sent"
    assert poller.failures == poller_again.failures == 0

    # The PIN travels in the email only: never in what the function logs.
    logged = " ".join(mailer.logs.text) + caplog.text
    assert "message handled" in logged
    assert pin not in logged and number not in logged


def test_a_refused_send_stays_queued_and_the_schedule_sends_it_later(
    container: Container,
    aws_session: boto3.session.Session,
    emulators: tuple[DynamoDBLocal, Moto],
    mailer: MailerEnv,
    clock: FixedClock,
) -> None:
    _, moto = emulators
    # An address SES has not verified: it refuses to send from it (MessageRejected).
    sender = f"gifts-{uuid.uuid4().hex[:8]}@unverified.example"
    mailer.install(sender)
    email = f"bob-{uuid.uuid4().hex[:10]}@example.com"
    number, pin = sell_e_card(container, email)

    poller = mailer.poller()
    poller.poll_once()
    assert poller.failures == 0  # a refused send is recorded, not a failed batch that blocks the shard
    assert sent_to(moto, email) == []
    message = only_message(container, email)
    assert (message.status, message.attempts, message.last_error) == ("queued", 1, "MessageRejected")
    assert message.next_attempt_at == clock.now() + timedelta(minutes=1)

    assert scheduled_run()["sent"] == 0  # not due yet: no hammering of a refusing SES
    assert only_message(container, email).attempts == 1

    # The identity gets verified; once the back-off has passed the schedule sends it.
    aws_session.client("sesv2").create_email_identity(EmailIdentity=sender)
    clock.advance(minutes=2)
    assert scheduled_run()["sent"] == 1
    (sent,) = sent_to(moto, email)
    assert number in sent["body"] and pin in sent["body"] and sent["source"] == sender
    message = only_message(container, email)
    assert (message.status, message.attempts, message.provider_message_id) == ("sent", 2, sent["id"])
    assert message.last_error is None

    clock.advance(hours=2)
    assert scheduled_run()["sent"] == 0
    assert len(sent_to(moto, email)) == 1


def test_a_message_that_keeps_failing_is_given_up_after_the_last_attempt(
    container: Container, mailer: MailerEnv, clock: FixedClock
) -> None:
    mail = mailer.install(f"gifts-{uuid.uuid4().hex[:8]}@unverified.example")
    email = f"cy-{uuid.uuid4().hex[:10]}@example.com"
    sell_e_card(container, email)
    message_id = only_message(container, email).message_id
    outcomes = []
    for _ in range(MAX_ATTEMPTS + 2):
        outcomes.append(mail.mailer.send(message_id))
        clock.advance(hours=1)
    assert outcomes == ["retrying"] * (MAX_ATTEMPTS - 1) + ["given_up", "skipped", "skipped"]
    message = only_message(container, email)
    assert (message.status, message.attempts) == ("failed", MAX_ATTEMPTS)
    assert scheduled_run()["sent"] == 0
    # A given-up message left the pending index: the schedule does not even look at it again.
    pending, _ = MessageRepository(container.table).pending(clock.now())
    assert message_id not in {m.message_id for m in pending}


def test_concurrent_senders_send_a_message_once(
    container: Container,
    emulators: tuple[DynamoDBLocal, Moto],
    mailer: MailerEnv,
) -> None:
    _, moto = emulators
    mail = mailer.install(LOCAL_SENDER_EMAIL)
    email = f"dee-{uuid.uuid4().hex[:10]}@example.com"
    sell_e_card(container, email)
    message_id = only_message(container, email).message_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda _: mail.mailer.send(message_id), range(8)))
    assert sorted(outcomes) == ["sent"] + ["skipped"] * 7
    assert len(sent_to(moto, email)) == 1
    assert only_message(container, email).status == "sent"


def test_a_claim_that_died_is_sent_again_only_after_its_lease(
    container: Container,
    emulators: tuple[DynamoDBLocal, Moto],
    mailer: MailerEnv,
    clock: FixedClock,
) -> None:
    _, moto = emulators
    mail = mailer.install(LOCAL_SENDER_EMAIL)
    email = f"eve-{uuid.uuid4().hex[:10]}@example.com"
    sell_e_card(container, email)
    message_id = only_message(container, email).message_id
    # An attempt claims the message and dies before SES answers (a timeout, a crash).
    assert MessageRepository(container.table).claim(message_id, "dead", clock.now(), clock.now() + LEASE)
    assert only_message(container, email).status == "sending"

    assert mail.mailer.send(message_id) == "skipped"  # the claim is still alive
    assert scheduled_run()["sent"] == 0
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert scheduled_run()["sent"] == 1
    assert len(sent_to(moto, email)) == 1
    message = only_message(container, email)
    assert (message.status, message.attempts) == ("sent", 2)


def test_a_sent_email_goes_on_the_timeline_of_the_customer_whose_address_it_is(
    container: Container, mailer: MailerEnv
) -> None:
    mailer.install(LOCAL_SENDER_EMAIL)
    mine = f"ann-{uuid.uuid4().hex[:10]}@example.com"
    nobodys = f"bob-{uuid.uuid4().hex[:10]}@example.com"
    customer = enrol(container, ("email", mine.upper()))  # links are normalised: the case differs
    sell_e_card(container, mine)
    sell_e_card(container, nobodys)
    assert mailer.poller().poll_once() > 0
    assert only_message(container, mine).status == only_message(container, nobodys).status == "sent"

    items, _ = container.timeline.page(customer, "message", 50, None)
    assert [(i["kind"], i["type"], i["ref"]) for i in items] == [
        ("message", "email", {"message_id": only_message(container, mine).message_id})
    ]
    assert "PIN" not in str(items) and mine not in str(items)  # neither the secret nor the address
    assert only_message(container, mine).customer_id == customer
    # an address that is nobody's link: sent, on no timeline
    assert only_message(container, nobodys).customer_id is None
    stray = container.table.get(f"MESSAGE#{only_message(container, nobodys).message_id}", "TIMELINE")
    assert stray is None
    listed, _ = container.table.query(customer_owner(customer), index="gsi3", limit=10)
    assert len(listed) == 1
