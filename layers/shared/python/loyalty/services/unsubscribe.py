"""Unsubscribe links: what a signed token names, and turning that channel off at once.

The token (domain/unsubscribe.py) is checked before anything is read; the change is an ordinary
profile update (consent for the channel off), so it is on the profile's version like any other and
shows in the 360° view at once. Doing it twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from loyalty.domain import unsubscribe
from loyalty.domain.customers import CustomerStatus
from loyalty.domain.errors import CustomerNotFound, InvalidUnsubscribeToken
from loyalty.domain.templates import Channel
from loyalty.services.customers import CustomerService, ProfilePatch


@dataclass(frozen=True)
class Subscription:
    customer_id: str
    channel: Channel
    subscribed: bool


class UnsubscribeService:
    def __init__(self, *, customers: CustomerService, key: Callable[[], str]) -> None:
        self._customers = customers
        self._key = key

    def look(self, token: str) -> Subscription:
        customer_id, channel = unsubscribe.read(self._key(), token)
        if channel is Channel.API:
            raise InvalidUnsubscribeToken("this link names no channel a customer can turn off here")
        customer = self._customers.get(customer_id)
        if customer.status is not CustomerStatus.ACTIVE:
            raise CustomerNotFound(f"no customer {customer_id}", customer_id=customer_id)
        return Subscription(customer.customer_id, channel, bool(getattr(customer.consents, channel.value)))

    def unsubscribe(self, token: str) -> Subscription:
        found = self.look(token)
        if found.subscribed:
            patch = ProfilePatch(
                fields={}, attributes=None, consents={found.channel.value: False}, member=None
            )
            self._customers.update(found.customer_id, patch)
        return Subscription(found.customer_id, found.channel, False)
