"""Identity links of a profile: attach one (and, when another profile has it, refuse, move it or
merge that profile in), detach one; and how a link given by a caller is read."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from loyalty.adapters.customers import CustomerRepository, LinksTaken, StaleCustomer
from loyalty.adapters.idempotency import IdempotencyStore
from loyalty.domain import links as link_rules
from loyalty.domain.access import Principal
from loyalty.domain.customers import Customer
from loyalty.domain.errors import (
    ConcurrentUpdate,
    DomainError,
    LinkNotFound,
    LinkTaken,
    ServiceUnavailable,
    ValidationFailed,
)
from loyalty.domain.links import Link, OnConflict
from loyalty.domain.merges import MergeRecord
from loyalty.domain.programme import Programme
from loyalty.domain.replay import StoredResponse
from loyalty.services.config import ProgrammeService
from loyalty.services.ports import Clock, IdempotencyRequest, backoff, idempotency_ops, replay_if_recorded
from loyalty.services.resolver import CustomerResolver

_ATTEMPTS = 4
PLACEHOLDER_MSG = "{link.type} {link.value!r} is a placeholder value: it identifies nobody"

# An anonymous visitor identified: (anonymous_id, customer_id) -> its events come over (attribution)
Identified = Callable[[str, str], object]

# survivor, merged, the link, who asks, and the link call's Idempotency-Key (for the journal)
RequestMerge = Callable[[str, str, Link, Principal, IdempotencyRequest | None], MergeRecord]


@dataclass(frozen=True)
class RawLink:
    type: str
    value: str


@dataclass(frozen=True)
class CustomerResult:
    customer: Customer
    created: bool
    merge: MergeRecord | None = None  # a link taken by another profile, merged in (202)
    links_ignored: tuple[Link, ...] = ()  # placeholders the enrolment was given and did not attach


class CustomerLinks:
    def __init__(
        self,
        *,
        customers: CustomerRepository,
        resolver: CustomerResolver,
        programme: ProgrammeService,
        idempotency: IdempotencyStore,
        clock: Clock,
        request_merge: RequestMerge | None = None,
        identified: Identified | None = None,
    ) -> None:
        self._customers = customers
        self._resolver = resolver  # a write to a merged id goes to the survivor, as a read does
        self._programme = programme
        self._idempotency = idempotency
        self._clock = clock
        self._request_merge = request_merge
        self._identified = identified

    def add_link(
        self,
        customer_id: str,
        raw: RawLink,
        on_conflict: OnConflict,
        idempotency: IdempotencyRequest | None = None,
        principal: Principal | None = None,
    ) -> CustomerResult:
        link = identify(self._programme.current(), raw.type, raw.value, ("body", "type"), ("body", "value"))
        # A replay answers what the first call did (201 attached, 202 merging), not today's 200.
        replay_if_recorded(self._idempotency, idempotency)
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            customer = self._resolver.get(customer_id)
            now = self._clock.now()
            if customer.has_link(link):
                try:
                    return self._unchanged(customer, now, idempotency)
                except (StaleCustomer, LinksTaken):
                    continue
            updated = replace(customer.with_links(link), updated_at=now, version=customer.version + 1)
            result = CustomerResult(updated, created=True)
            extra = idempotency_ops(self._idempotency, idempotency, result, now)
            try:
                # No look-up first: the link's conditional put says who owns it when it is taken.
                self._customers.add_links(customer.customer_id, [link], now, extra)
                self._identify(link, customer.customer_id)
                return result
            except LinksTaken as taken:
                owner = taken.owners.get(link)
            except StaleCustomer:
                continue
            if owner is None:
                continue
            if on_conflict is OnConflict.MERGE and self._request_merge is not None and principal is not None:
                if owner == customer.customer_id:
                    try:
                        return self._unchanged(customer, now, idempotency)
                    except (StaleCustomer, LinksTaken):
                        continue
                # The other profile comes over with everything it has, this link included; the
                # journal records the key with the link call's own answer (its 202).
                as_merge = (
                    None
                    if idempotency is None
                    else replace(idempotency, render=_merge_answer(idempotency, customer))
                )
                merge = self._request_merge(customer.customer_id, owner, link, principal, as_merge)
                return CustomerResult(customer, created=False, merge=merge)
            if on_conflict is not OnConflict.MOVE:
                raise LinkTaken(f"{link.type} {link.value} belongs to customer {owner}", customer_id=owner)
            try:
                self._customers.move_link(link, owner, customer.customer_id, now, extra)
                self._identify(link, customer.customer_id)
                return result
            except (LinksTaken, StaleCustomer):
                continue  # the link moved on again meanwhile: look again
        raise ServiceUnavailable("the link kept changing; retry")

    def _identify(self, link: Link, customer_id: str) -> None:
        """An anonymous_id link identifies the visitor: its earlier events come over (a first,
        bounded pass now; the attribution job's second pass makes sure of the rest)."""
        if link.type == link_rules.ANONYMOUS_ID and self._identified is not None:
            with contextlib.suppress(DomainError):  # the link is made; the job's second pass moves it
                self._identified(link.value, customer_id)

    def _unchanged(
        self, customer: Customer, now: datetime, idempotency: IdempotencyRequest | None
    ) -> CustomerResult:
        """Nothing to change, yet a key still records this answer: were the link detached meanwhile,
        a replay must not attach it again."""
        result = CustomerResult(customer, created=False)
        if idempotency is not None:
            self._customers.add_links(
                customer.customer_id, [], now, idempotency_ops(self._idempotency, idempotency, result, now)
            )
        return result

    def remove_link(self, customer_id: str, link_type: str, link_value: str) -> None:
        link = normalise(
            self._programme.current(), link_type, link_value, ("path", "type"), ("path", "value")
        )
        customer = self._resolver.get(customer_id)
        if not customer.has_link(link):
            raise LinkNotFound(f"customer {customer_id} has no {link.type} {link.value}")
        try:
            self._customers.remove_link(customer.customer_id, link, self._clock.now())
        except (StaleCustomer, LinksTaken, ConcurrentUpdate):
            raise LinkNotFound(f"customer {customer_id} has no {link.type} {link.value}") from None


def identify(
    programme: Programme,
    link_type: str,
    value: str,
    type_loc: tuple[str | int, ...],
    value_loc: tuple[str | int, ...],
) -> Link:
    """A link that is to identify someone: a placeholder is refused, naming the value."""
    try:
        identity = programme.identify(link_type, value)
    except link_rules.LinkInvalid as bad:
        raise ValidationFailed.at(type_loc if bad.field == "type" else value_loc, bad.msg) from None
    if not identity.usable:
        raise ValidationFailed.at(
            value_loc, PLACEHOLDER_MSG.format(link=identity.link), link_rules.PLACEHOLDER
        )
    return identity.link


def normalise(
    programme: Programme,
    link_type: str,
    value: str,
    type_loc: tuple[str | int, ...],
    value_loc: tuple[str | int, ...],
) -> Link:
    try:
        return link_rules.normalise(link_type, value, programme.default_phone_region)
    except link_rules.LinkInvalid as bad:
        raise ValidationFailed.at(type_loc if bad.field == "type" else value_loc, bad.msg) from None


def _merge_answer(
    idempotency: IdempotencyRequest, customer: Customer
) -> Callable[[MergeRecord], StoredResponse]:
    return lambda record: idempotency.render(CustomerResult(customer, created=False, merge=record))
