"""Double opt-in against DynamoDB Local and moto's SES: the confirmation email is queued once per
pending period and carries a signed link; confirming enrols once (card, CustomerEnrolled, retro
credit, the welcome trigger) however often and however concurrently it is followed; a pending
customer's sale earns nothing; an unconfirmed enrolment lapses after the window (controlled clock)."""

from __future__ import annotations

import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import boto3
import pytest

from loyalty import jobs
from loyalty.adapters.messages import MessageRepository
from loyalty.api.models.transactions import render_receipt
from loyalty.bootstrap import Container, bound_container
from loyalty.domain import confirmation
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customers import Consents, CustomerRef, Profile
from loyalty.domain.errors import InvalidConfirmationToken
from loyalty.domain.programme import Messaging
from loyalty.domain.templates import Channel, Purpose, Template
from loyalty.services.customers import EnrolCommand, ProfilePatch, RawLink
from loyalty_local.emulators import DynamoDBLocal, Moto
from loyalty_local.gateway import LambdaContext
from loyalty_local.provision import LOCAL_SENDER_EMAIL
from tests.conftest import FixedClock
from tests.integration.test_messaging import raw_emails_to, text_of
from tests.integration.test_transactions import command, line

WEB = Principal("key-web", KeyKind.WEB, "web-nl")
POS = Principal("key-pos", KeyKind.POS, "ams-01")
ALL = Consents(email=True, sms=False, mail=False)


@pytest.fixture
def sending(container: Container, aws_session: boto3.session.Session, clock: FixedClock) -> Container:
    """The container as the mailer job builds it (a sender; links point at loyalty.example)."""
    settings = container.settings.model_copy(
        update={"sender_email": LOCAL_SENDER_EMAIL, "public_base_url": "https://loyalty.example"}
    )
    return Container(settings, session=aws_session, clock=clock)


def opt_in(c: Container, days: int = 7) -> tuple[str, str]:
    confirm_id, welcome_id = f"confirm-{uuid.uuid4().hex[:6]}", f"welcome-{uuid.uuid4().hex[:6]}"
    c.templates.put(
        Template(
            confirm_id,
            Channel.EMAIL,
            purpose=Purpose.CONFIRMATION,
            subject="Confirm, {{ first_name }}",
            body="Confirm: {{ confirm_url }} Unsubscribe: {{ unsubscribe_url }}",
        )
    )
    c.templates.put(Template(welcome_id, Channel.EMAIL, subject="Welcome", body="Hi. {{ unsubscribe_url }}"))
    programme = c.programme.current()
    messaging = Messaging(
        confirm_email=True,
        confirmation_template_id=confirm_id,
        welcome_template_id=welcome_id,
        confirm_within_days=days,
    )
    c.programme.replace(programme.model_copy(update={"messaging": messaging}))
    return confirm_id, welcome_id


def sign_up(c: Container, address: str, principal: Principal = WEB) -> Any:
    links = [RawLink("email", address)]
    return c.customers.enrol(EnrolCommand(links, Profile(first_name="Ida"), ALL, True, None), principal)


def messages_of(c: Container, customer_id: str) -> list[Any]:
    items, _ = c.table.query("MESSAGES", index="gsi1", limit=1000)
    repo = MessageRepository(c.table)
    return [repo.get(str(i["message_id"])) for i in items if i.get("customer_id") == customer_id]


def enrolled_events(c: Container, customer_id: str) -> list[dict[str, Any]]:
    item = c.table.get(f"CUST#{customer_id}", "PROFILE")
    assert item is not None
    return [
        json.loads(e["detail"]) for e in (item.get("outbox") or []) if e["detail_type"] == "CustomerEnrolled"
    ]


def link_in(c: Container, moto: Moto, address: str) -> str:
    (mime,) = raw_emails_to(moto, address)
    found = re.search(r"Confirm: https://loyalty\.example/v1/confirm\?token=(\S+)", text_of(mime))
    assert found, text_of(mime)
    return found.group(1)


def test_a_web_enrolment_is_pending_its_email_queued_once_and_confirmed_once(
    sending: Container, emulators: tuple[DynamoDBLocal, Moto], clock: FixedClock
) -> None:
    _, moto = emulators
    confirm_id, welcome_id = opt_in(sending)
    address = f"ida-{uuid.uuid4().hex[:10]}@example.com"
    pending = sign_up(sending, address).customer
    cid = pending.customer_id
    assert pending.shown_status == "pending_confirmation" and not pending.member and pending.card is None
    assert pending.confirm_by == clock.now() + timedelta(days=7)
    sign_up(sending, address)  # asked again inside the window: the same period, nothing more queued
    queued = [m for m in messages_of(sending, cid) if m.cause == "confirmation"]
    assert len(queued) == 1 and queued[0].template_id == confirm_id

    # A sale while pending: recorded as for a non-member, nothing earned (yet: see below).
    sale = command("T-OPT-1", [line("1", "1", "4.50")], CustomerRef(customer_id=cid), store="ams-01")
    receipt = sending.transactions.record(sale, POS, render=render_receipt)
    assert receipt.member is False and receipt.points_earned == 0

    assert sending.mailer.send_due().sent == 1
    token = link_in(sending, moto, address)
    assert confirmation.read(sending.cursor_key(), token, clock.now()) == cid

    clock.advance(hours=1)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: sending.confirmation.confirm(token), range(4)))
    assert {r.customer_id for r in results} == {cid} and len({r.card for r in results}) == 1
    member = sending.customers.get(cid)
    assert member.member and member.card is not None and member.confirm_by is None
    assert member.enrolled_at == clock.now() and member.tier == sending.programme.current().base_tier
    assert member.shown_status == "active"
    assert member.points.lifetime == 45  # the pending days' sale, credited on confirmation (retro)
    (event,) = enrolled_events(sending, cid)
    assert event["card"] == member.card.value
    version = member.version
    assert sending.confirmation.confirm(token).card == member.card.value  # again: the same answer
    assert sending.customers.get(cid).version == version  # nothing written

    # The welcome flow starts from that CustomerEnrolled, once.
    assert sending.message_triggers.handle("CustomerEnrolled", event).outcome == "queued"
    assert sending.message_triggers.handle("CustomerEnrolled", event).outcome == "duplicate"
    assert [m.template_id for m in messages_of(sending, cid) if m.cause == "welcome"] == [welcome_id]
    # No longer pending: the page now says so, and the pending index holds nothing for it.
    assert sending.confirmation.look(token).confirmed
    assert "gsi2pk" not in (sending.table.get(f"CUST#{cid}", "PROFILE") or {})


def test_an_unconfirmed_enrolment_lapses_after_the_window_and_keeps_its_history(
    sending: Container, emulators: tuple[DynamoDBLocal, Moto], clock: FixedClock
) -> None:
    opt_in(sending, days=3)
    address = f"jo-{uuid.uuid4().hex[:10]}@example.com"
    cid = sign_up(sending, address).customer.customer_id
    sending.mailer.send_due()
    _, moto = emulators
    token = link_in(sending, moto, address)

    clock.advance(days=3, seconds=-1)
    assert sending.customers.lapse_confirmations() == 0
    assert sending.customers.get(cid).pending_confirmation
    clock.advance(seconds=1)
    with bound_container(sending):  # the hourly sweep job lapses it
        jobs.points_sweep({}, LambdaContext("sweeper"))
    assert sending.customers.lapse_confirmations() == 0  # twice: nothing more
    lapsed = sending.customers.get(cid)
    assert not lapsed.member and not lapsed.pending_confirmation and lapsed.shown_status == "active"
    assert [link.value for link in lapsed.links] == [address]  # the links and profile are kept
    assert lapsed.profile.first_name == "Ida"
    with pytest.raises(InvalidConfirmationToken):
        sending.confirmation.confirm(token)  # expired with the window
    with pytest.raises(InvalidConfirmationToken):
        sending.customers.confirm(cid)  # and nothing waits for it any more

    # Signing up again starts a new period with a new email.
    again = sign_up(sending, address).customer
    assert again.customer_id == cid and again.pending_confirmation
    assert again.confirm_by == clock.now() + timedelta(days=3)
    assert len([m for m in messages_of(sending, cid) if m.cause == "confirmation"]) == 2


def test_a_till_or_a_patch_from_the_till_enrols_at_once_even_a_pending_customer(
    sending: Container,
) -> None:
    opt_in(sending)
    at_till = sign_up(sending, f"kim-{uuid.uuid4().hex[:10]}@example.com", POS).customer
    assert at_till.member and at_till.card is not None and at_till.confirm_by is None
    assert messages_of(sending, at_till.customer_id) == []

    pending = sign_up(sending, f"lu-{uuid.uuid4().hex[:10]}@example.com").customer
    patch = ProfilePatch(fields={}, attributes=None, consents={}, member=True)
    web = sending.customers.update(pending.customer_id, patch, principal=WEB).customer
    assert web.pending_confirmation and web.confirm_by == pending.confirm_by
    till = sending.customers.update(pending.customer_id, patch, principal=POS).customer
    assert till.member and till.card is not None and till.confirm_by is None
    assert len(enrolled_events(sending, pending.customer_id)) == 1


def test_confirm_email_off_enrols_web_sign_ups_at_once(sending: Container) -> None:
    member = sign_up(sending, f"mo-{uuid.uuid4().hex[:10]}@example.com").customer
    assert member.member and member.card is not None and member.shown_status == "active"
