"""The contact policy at the moment of sending (domain/contact.py) and unsubscribe tokens, on a
controlled clock: consent, address, caps, quiet hours across zones and both daylight-saving nights."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loyalty.domain import contact, unsubscribe
from loyalty.domain.customers import Address, Consents, Customer, CustomerStatus, Profile
from loyalty.domain.errors import InvalidUnsubscribeToken
from loyalty.domain.links import Link
from loyalty.domain.programme import FrequencyCap, Messaging, QuietHours
from loyalty.domain.templates import Channel

ALL = Consents(email=True, sms=True, mail=True)
NIGHT = QuietHours(start="21:00", end="08:00")


def person(
    *,
    consents: Consents = ALL,
    zone: str | None = None,
    phone: str | None = "+31612345678",
    status: CustomerStatus = CustomerStatus.ACTIVE,
) -> Customer:
    links = [Link("email", "a@example.com")] + ([Link("phone", phone)] if phone else [])
    return Customer(
        customer_id="c1",
        member=True,
        status=status,
        profile=Profile(timezone=zone, address=Address(line1="Dam 1", city="Amsterdam", country="NL")),
        consents=consents,
        links=tuple(links),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def decide(customer: Customer | None, channel: Channel, now: datetime, **policy: object) -> contact.Decision:
    log = policy.pop("log", {})
    return contact.decide(
        customer=customer,
        channel=channel,
        messaging=Messaging(**policy),
        sent_log=log,
        now=now,  # type: ignore[arg-type]
    )


NOON = datetime(2026, 11, 22, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("customer", "channel", "reason"),
    [
        (None, Channel.EMAIL, "customer-not-found"),
        (person(status=CustomerStatus.ERASED), Channel.EMAIL, "customer-not-active"),
        (person(consents=Consents(email=False, sms=True, mail=True)), Channel.EMAIL, "no-consent"),
        (person(consents=Consents(email=True, sms=False, mail=True)), Channel.SMS, "no-consent"),
        (person(consents=Consents(email=True, sms=True, mail=False)), Channel.MAIL, "no-consent"),
        (person(phone=None), Channel.SMS, "no-address"),
        (person(phone="0612345678"), Channel.SMS, "no-address"),  # not E.164: never guessed
    ],
)
def test_what_is_never_sent(customer: Customer | None, channel: Channel, reason: str) -> None:
    assert decide(customer, channel, NOON) == contact.Decision("suppress", reason)


def test_consent_and_an_address_send() -> None:
    for channel in Channel:
        assert decide(person(), channel, NOON) == contact.SEND


def test_the_cap_counts_sends_in_the_window_on_its_channel_only() -> None:
    caps = {"email": FrequencyCap(max=2, per_days=7)}
    two = [NOON - timedelta(days=6, hours=23), NOON - timedelta(days=1)]
    assert (
        decide(person(), Channel.EMAIL, NOON, frequency_caps=caps, log={"email": two}).reason
        == "frequency-cap"
    )
    assert decide(person(), Channel.SMS, NOON, frequency_caps=caps, log={"sms": two * 5}) == contact.SEND
    old = [NOON - timedelta(days=7, minutes=1), NOON - timedelta(days=1)]  # one left the window
    assert decide(person(), Channel.EMAIL, NOON, frequency_caps=caps, log={"email": old}) == contact.SEND


@pytest.mark.parametrize(
    ("zone", "now", "release"),
    [
        (
            "Europe/Amsterdam",
            datetime(2026, 11, 22, 20, 0, tzinfo=UTC),
            datetime(2026, 11, 23, 7, 0, tzinfo=UTC),
        ),
        ("America/New_York", datetime(2026, 11, 22, 20, 0, tzinfo=UTC), None),  # 15:00 there
        (
            "America/New_York",
            datetime(2026, 11, 23, 3, 0, tzinfo=UTC),
            datetime(2026, 11, 23, 13, 0, tzinfo=UTC),
        ),
        ("Asia/Tokyo", datetime(2026, 11, 22, 20, 0, tzinfo=UTC), datetime(2026, 11, 22, 23, 0, tzinfo=UTC)),
        # Autumn: Amsterdam goes from CEST (+2) to CET (+1) at 03:00 on 25 Oct 2026.
        (
            "Europe/Amsterdam",
            datetime(2026, 10, 24, 20, 0, tzinfo=UTC),
            datetime(2026, 10, 25, 7, 0, tzinfo=UTC),
        ),
        # Spring: CET to CEST at 02:00 on 29 Mar 2026: 08:00 CEST is 06:00 UTC.
        (
            "Europe/Amsterdam",
            datetime(2026, 3, 28, 21, 0, tzinfo=UTC),
            datetime(2026, 3, 29, 6, 0, tzinfo=UTC),
        ),
        # No zone on the profile: the programme's default (Amsterdam).
        (None, datetime(2026, 11, 22, 6, 59, tzinfo=UTC), datetime(2026, 11, 22, 7, 0, tzinfo=UTC)),
        (None, datetime(2026, 11, 22, 7, 0, tzinfo=UTC), None),
    ],
)
def test_quiet_hours_defer_in_the_customers_zone(
    zone: str | None, now: datetime, release: datetime | None
) -> None:
    decision = decide(person(zone=zone), Channel.SMS, now, quiet_hours=NIGHT)
    assert decision == (
        contact.SEND if release is None else contact.Decision("defer", "quiet-hours", release)
    )


def test_no_consent_wins_over_quiet_hours() -> None:
    night = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
    nobody = person(consents=Consents())
    assert decide(nobody, Channel.EMAIL, night, quiet_hours=NIGHT).action == "suppress"


def test_the_send_log_keeps_only_its_window() -> None:
    log = [NOON - timedelta(days=d) for d in (400, 366, 10, 1)]
    assert contact.pruned_log(log, NOON, 365) == [NOON - timedelta(days=10), NOON - timedelta(days=1)]


def test_unsubscribe_tokens_are_bound_to_customer_and_channel() -> None:
    token = unsubscribe.mint("k", "cust.1", Channel.SMS)
    assert unsubscribe.read("k", token) == ("cust.1", Channel.SMS)
    forged = [
        token.replace(".sms.", ".email."),
        token.replace("cust.1", "cust.2"),
        token[:-1] + ("0" if token[-1] != "0" else "1"),
        "u1.cust.1.sms",
        "",
        "garbage",
    ]
    for bad in forged:
        with pytest.raises(InvalidUnsubscribeToken):
            unsubscribe.read("k", bad)
    with pytest.raises(InvalidUnsubscribeToken):
        unsubscribe.read("another-key", token)


def test_a_confirmation_email_goes_at_once_while_its_enrolment_is_pending() -> None:
    from dataclasses import replace

    night = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
    pending = replace(person(consents=Consents()), member=False, confirm_by=night + timedelta(days=7))
    capped = {"email": [night - timedelta(minutes=m) for m in range(5)]}

    def confirm(customer: Customer, at: datetime) -> contact.Decision:
        return contact.decide(
            customer=customer,
            channel=Channel.EMAIL,
            messaging=Messaging(quiet_hours=NIGHT, frequency_caps={"email": FrequencyCap(max=1, per_days=1)}),
            sent_log=capped,
            now=at,
            confirmation=True,
        )

    # Asked for a moment ago: no consent flag yet, no cap, no quiet hours.
    assert confirm(pending, night) == contact.SEND
    assert confirm(replace(pending, links=()), night) == contact.Decision("suppress", "no-address")
    # Confirmed meanwhile (a member), or the window passed: not sent.
    confirmed = replace(pending, member=True, confirm_by=None)
    assert confirm(confirmed, night) == contact.Decision("suppress", "no-longer-pending")
    assert confirm(pending, night + timedelta(days=7)) == contact.Decision("suppress", "no-longer-pending")


def test_nothing_but_the_confirmation_reaches_a_pending_double_opt_in() -> None:
    from dataclasses import replace

    noon = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    # Consent given on the enrolment form, but the address is not confirmed yet.
    pending = replace(person(), member=False, confirm_by=noon + timedelta(days=7))
    assert pending.pending_confirmation
    for channel in (Channel.EMAIL, Channel.SMS, Channel.API):
        assert decide(pending, channel, noon) == contact.Decision("suppress", "address-not-confirmed")
    # Once confirmed, the same customer is reached.
    confirmed = replace(pending, member=True, confirm_by=None)
    assert decide(confirmed, Channel.EMAIL, noon) == contact.SEND
