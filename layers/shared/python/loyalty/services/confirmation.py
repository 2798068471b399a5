"""Double opt-in: the confirmation email's queueing, and following its signed link.

A web enrolment under `messaging.confirm_email` leaves the customer pending (services/customers.py);
this queues the email once per pending period (the message key's cause id is the customer and the
period's end, so asking again inside the window queues nothing, and a new sign-up after a lapse
gets a new email). The link (domain/confirmation.py) is minted when the mailer renders the email,
from the period's end carried on the message: only the mailer and this service hold the key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from loyalty.domain import confirmation
from loyalty.domain.customers import CustomerStatus
from loyalty.domain.errors import InvalidConfirmationToken
from loyalty.domain.templates import Cause, Channel
from loyalty.services.customers import CustomerService
from loyalty.services.messaging import MessageQueue
from loyalty.services.ports import Clock


class ConfirmationQueue:
    """CustomerService's ConfirmationRequests: the email goes out through the ordinary outbox."""

    def __init__(self, *, queue: MessageQueue) -> None:
        self._queue = queue

    def request(self, customer_id: str, confirm_by: datetime, template_id: str) -> None:
        self._queue.queue(
            Cause.CONFIRMATION,
            f"{customer_id}@{confirm_by.isoformat()}",
            customer_id,
            Channel.EMAIL,
            template_id,
            {"confirm_by": confirm_by},
        )


@dataclass(frozen=True)
class Confirmation:
    customer_id: str
    confirmed: bool  # a member now (False: the page still asks)
    card: str | None


class ConfirmationService:
    def __init__(self, *, customers: CustomerService, key: Callable[[], str], clock: Clock) -> None:
        self._customers = customers
        self._key = key
        self._clock = clock

    def look(self, token: str) -> Confirmation:
        customer_id = confirmation.read(self._key(), token, self._clock.now())
        customer = self._customers.get(customer_id)
        if customer.status is not CustomerStatus.ACTIVE:
            raise InvalidConfirmationToken("no enrolment waits for this link")
        if not customer.member and not customer.pending_confirmation:
            raise InvalidConfirmationToken("no enrolment waits for this link: enrol again")
        return Confirmation(
            customer.customer_id, customer.member, customer.card.value if customer.card else None
        )

    def confirm(self, token: str) -> Confirmation:
        customer_id = confirmation.read(self._key(), token, self._clock.now())
        customer = self._customers.confirm(customer_id)
        return Confirmation(customer.customer_id, True, customer.card.value if customer.card else None)
