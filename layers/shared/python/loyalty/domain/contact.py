"""The contact policy, decided at the moment a message is sent (pure: no I/O, the clock is passed in).

In order: a customer who is gone (merged, erased) or gave no address for the channel is never
contacted; consent for the channel (email, sms, mail) must be on; the frequency cap counts the
messages sent on the channel in the window (from the customer's send log); quiet hours defer the
message to the end of the window in the customer's own time zone. A deferral is not a skip: the
message goes when the window ends (and the other rules are asked again then).

The `api` channel hands the message to the brand's own system (its webhook), which owns that
contact: the profile holds no consent for it, so only the customer's status, the cap and quiet
hours apply, and the payload carries the customer's consents for the brand to honour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from loyalty.domain.customers import Customer, CustomerStatus
from loyalty.domain.links import EMAIL, PHONE
from loyalty.domain.programme import Messaging
from loyalty.domain.templates import Channel

# Suppression reasons (recorded on the message, shown in the outbox).
NO_CUSTOMER = "customer-not-found"
CUSTOMER_GONE = "customer-not-active"
NO_CONSENT = "no-consent"
NO_ADDRESS = "no-address"
FREQUENCY_CAP = "frequency-cap"
NO_TEMPLATE = "template-not-found"
NOT_RENDERED = "template-failed"
NOT_PENDING = "no-longer-pending"  # a confirmation email whose enrolment was confirmed or lapsed
UNCONFIRMED = "address-not-confirmed"  # a double opt-in still pending: only its confirmation email goes


@dataclass(frozen=True)
class Decision:
    """send, defer (until `release_at`) or suppress (for `reason`)."""

    action: str
    reason: str | None = None
    release_at: datetime | None = None


SEND = Decision("send")


def address_of(customer: Customer, channel: Channel) -> str | None:
    """Where the channel reaches the customer: an email, an E.164 number, a postal address's city
    line (present or not), or the customer id for the brand's webhook."""
    if channel is Channel.EMAIL:
        return next((link.value for link in customer.links if link.type == EMAIL), None)
    if channel is Channel.SMS:
        phone = next((link.value for link in customer.links if link.type == PHONE), None)
        return phone if phone and is_e164(phone) else None
    if channel is Channel.MAIL:
        address = customer.profile.address
        return f"{address.line1}, {address.city}" if address else None
    return customer.customer_id


def is_e164(number: str) -> bool:
    digits = number[1:]
    return number.startswith("+") and digits.isdigit() and 8 <= len(digits) <= 15 and digits[0] != "0"


def consented(customer: Customer, channel: Channel) -> bool:
    if channel is Channel.API:
        return True
    return bool(getattr(customer.consents, channel.value))


def reachable(customer: Customer, channel: Channel) -> bool:
    """Whether a message on the channel may reach the customer at all, caps and quiet hours aside:
    what `decide` checks before those, plus a double opt-in still pending (their address is not
    confirmed yet). Bounces and complaints turned email consent off already (suppression). Segment
    previews count this per channel (the lake's `reachable_*` facets)."""
    return (
        customer.status is CustomerStatus.ACTIVE
        and not customer.pending_confirmation
        and consented(customer, channel)
        and address_of(customer, channel) is not None
    )


def sent_in_window(sent_at: Sequence[datetime], now: datetime, per_days: int) -> int:
    since = now - timedelta(days=per_days)
    return sum(1 for at in sent_at if since < at <= now)


def decide(  # noqa: PLR0911 - one answer per rule, in the order they apply
    *,
    customer: Customer | None,
    channel: Channel,
    messaging: Messaging,
    sent_log: Mapping[str, Sequence[datetime]],
    now: datetime,
    confirmation: bool = False,
) -> Decision:
    """`confirmation`: the double opt-in email, which the customer asked for a moment ago and which
    is how their consent is verified: it needs an address and a pending enrolment, and goes at once
    (no consent flag to check yet, not counted against caps, not held for quiet hours)."""
    if customer is None:
        return Decision("suppress", NO_CUSTOMER)
    if customer.status is not CustomerStatus.ACTIVE:
        return Decision("suppress", CUSTOMER_GONE)
    if confirmation:
        if not customer.pending_confirmation or customer.confirm_by is None or customer.confirm_by <= now:
            return Decision("suppress", NOT_PENDING)
        return SEND if address_of(customer, channel) is not None else Decision("suppress", NO_ADDRESS)
    if customer.pending_confirmation:
        return Decision("suppress", UNCONFIRMED)
    if not consented(customer, channel):
        return Decision("suppress", NO_CONSENT)
    if address_of(customer, channel) is None:
        return Decision("suppress", NO_ADDRESS)
    cap = messaging.frequency_caps.get(channel.value)
    if cap is not None and sent_in_window(sent_log.get(channel.value, ()), now, cap.per_days) >= cap.max:
        return Decision("suppress", FREQUENCY_CAP)
    if messaging.quiet_hours is not None:
        zone = ZoneInfo(messaging.zone_of(customer.profile.timezone))
        release = messaging.quiet_hours.release_at(now, zone)
        if release is not None:
            return Decision("defer", "quiet-hours", release)
    return SEND


def pruned_log(
    sent_at: Sequence[datetime], now: datetime, keep_days: int, limit: int = 1000
) -> list[datetime]:
    """What a channel's send log keeps: the sends inside the longest window a cap may ask about."""
    since = now - timedelta(days=keep_days)
    return sorted(at for at in sent_at if at > since)[-limit:]
