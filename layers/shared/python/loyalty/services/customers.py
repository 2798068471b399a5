"""Enrolment, lookup, profile updates and identity links."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from loyalty.adapters.customers import CustomerRepository, LinksTaken, StaleCustomer
from loyalty.adapters.idempotency import IdempotencyStore
from loyalty.domain import events as ev
from loyalty.domain import links as link_rules
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customers import (
    Consents,
    Customer,
    CustomerStatus,
    EnrolmentOutcome,
    LinkOwner,
    Profile,
    decide_enrolment,
)
from loyalty.domain.errors import (
    CustomerNotActive,
    CustomerNotFound,
    FieldError,
    IdentityConflict,
    InvalidConfirmationToken,
    ServiceUnavailable,
    StoreNotFound,
    ValidationFailed,
)
from loyalty.domain.ids import new_card_number, new_id
from loyalty.domain.links import Link
from loyalty.domain.programme import Messaging
from loyalty.services.config import ProgrammeService, StoreService
from loyalty.services.customer_links import (
    PLACEHOLDER_MSG,
    CustomerLinks,
    CustomerResult,
    OnConflict,
    RawLink,
    identify,
)
from loyalty.services.ports import (
    Clock,
    IdempotencyRequest,
    backoff,
    idempotency_ops,
)
from loyalty.services.resolver import CustomerResolver
from loyalty.services.retro_credit import RetroCredit

_ATTEMPTS = 4


class ConfirmationRequests(Protocol):
    def request(self, customer_id: str, confirm_by: datetime, template_id: str) -> None:
        """Queue the confirmation email for this pending period (once, however often asked)."""
        ...


@dataclass(frozen=True)
class EnrolCommand:
    links: Sequence[RawLink]
    profile: Profile
    consents: Consents
    member: bool
    store_id: str | None


@dataclass(frozen=True)
class ProfilePatch:
    """Only the fields a caller sent; `attributes` is merged key by key (None deletes a key)."""

    fields: dict[str, Any]
    attributes: dict[str, Any] | None
    consents: dict[str, bool]
    member: bool | None


class CustomerService:
    def __init__(
        self,
        *,
        customers: CustomerRepository,
        resolver: CustomerResolver,
        stores: StoreService,
        programme: ProgrammeService,
        idempotency: IdempotencyStore,
        clock: Clock,
        new_customer_id: Callable[[], str] = new_id,
        new_card: Callable[[str | None], str] = new_card_number,
        links: CustomerLinks,
        retro_credit: Callable[[Customer, datetime], RetroCredit] | None = None,
        confirmations: ConfirmationRequests | None = None,
    ) -> None:
        self._confirmations = confirmations
        self._links = links
        self._customers = customers
        self._resolver = resolver
        self._stores = stores
        self._programme = programme
        self._idempotency = idempotency
        self._clock = clock
        self._new_customer_id = new_customer_id
        self._new_card = new_card
        self._retro_credit = retro_credit

    # ---- reads ----------------------------------------------------------------------------
    def get(self, customer_id: str) -> Customer:
        return self._resolver.get(customer_id)

    def lookup(self, link_type: str, link_value: str) -> Customer:
        link = identify(
            self._programme.current(), link_type, link_value, ("query", "link_type"), ("query", "link_value")
        )
        owner = self._customers.owner_of(link)
        if owner is None:
            raise CustomerNotFound(f"no customer has {link.type} {link.value}")
        return self.get(owner)

    # ---- enrolment ------------------------------------------------------------------------
    def enrol(
        self, command: EnrolCommand, principal: Principal, idempotency: IdempotencyRequest | None = None
    ) -> CustomerResult:
        store_id = principal.ensure_store(command.store_id)
        if store_id is not None:
            self._require_store(store_id)
        self._require_favourite_store(command.profile.favourite_store_id)
        links, ignored = self._identify_all(command.links)
        if not command.member and not links:
            raise ValidationFailed.at(("body", "links"), "an identified non-member needs at least one link")
        confirming = self._confirming(principal) if command.member else None
        if confirming is not None and not any(link.type == link_rules.EMAIL for link in links):
            raise ValidationFailed.at(
                ("body", "links"), "a web enrolment is confirmed by email: give an email link"
            )
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            now = self._clock.now()
            if confirming is not None:
                created = self._create_pending(
                    command, links, ignored, store_id, confirming, idempotency, now
                )
                if created is not None:
                    return created
                taken = self._customers.link_owners(links)
                outcome = (
                    self._enrol_known(command, links, taken, store_id, idempotency, ignored, confirming)
                    if taken
                    else None
                )
                if outcome is not None:
                    return outcome
                continue
            card = Link(link_rules.CARD, self._card()) if command.member and not _has_card(links) else None
            customer = Customer(
                customer_id=self._new_customer_id(),
                member=command.member,
                status=CustomerStatus.ACTIVE,
                profile=command.profile,
                consents=command.consents,
                links=tuple(links) + ((card,) if card else ()),
                created_at=now,
                updated_at=now,
                enrolled_at=now if command.member else None,
                origin_store_id=store_id,
                tier=self._programme.current().base_tier if command.member else None,
            )
            result = CustomerResult(customer, created=True, links_ignored=ignored)
            events = [_enrolled_event(customer, store_id, previously_known=False)] if command.member else []
            try:
                self._customers.create(
                    customer, idempotency_ops(self._idempotency, idempotency, result, now), ev.outbox(events)
                )
                return result
            except LinksTaken as taken:
                requested = {link: owner for link, owner in taken.owners.items() if link != card}
                if not requested:
                    continue  # only the generated card collided: draw another
                outcome = self._enrol_known(command, links, requested, store_id, idempotency, ignored)
                if outcome is not None:
                    return outcome
        raise ServiceUnavailable("the customer's links kept changing; retry")

    def _create_pending(
        self,
        command: EnrolCommand,
        links: Sequence[Link],
        ignored: tuple[Link, ...],
        store_id: str | None,
        messaging: Messaging,
        idempotency: IdempotencyRequest | None,
        now: datetime,
    ) -> CustomerResult | None:
        """A new web sign-up under double opt-in: a non-member (no card, no tier, no earning) that
        waits for its emailed link; None when a link is taken (the caller decides on the owner)."""
        customer = Customer(
            customer_id=self._new_customer_id(),
            member=False,
            status=CustomerStatus.ACTIVE,
            profile=command.profile,
            consents=command.consents,
            links=tuple(links),
            created_at=now,
            updated_at=now,
            origin_store_id=store_id,
            confirm_by=now + timedelta(days=messaging.confirm_within_days),
        )
        result = CustomerResult(customer, created=True, links_ignored=ignored)
        try:
            self._customers.create(customer, idempotency_ops(self._idempotency, idempotency, result, now))
        except LinksTaken:
            return None
        self._request_confirmation(customer, messaging)
        return result

    def _await_confirmation(
        self,
        existing: Customer,
        updated: Customer,
        new_links: Sequence[Link],
        messaging: Messaging,
        idempotency: IdempotencyRequest | None,
        now: datetime,
        ignored: tuple[Link, ...] = (),
    ) -> CustomerResult:
        """A known non-member asks to join from the web under double opt-in. While an earlier request
        is still within its window the answer is that pending profile and its email is not sent again
        (the message key is per pending period); once the window has passed a new period starts."""
        if existing.pending_confirmation and existing.confirm_by and existing.confirm_by > now:
            pending = replace(updated, confirm_by=existing.confirm_by)
        else:
            pending = replace(updated, confirm_by=now + timedelta(days=messaging.confirm_within_days))
        result = CustomerResult(pending, created=False, links_ignored=ignored)
        self._customers.await_confirmation(
            pending, new_links, existing.version, idempotency_ops(self._idempotency, idempotency, result, now)
        )
        self._request_confirmation(pending, messaging)
        return result

    def _request_confirmation(self, customer: Customer, messaging: Messaging) -> None:
        # After the profile is written: a crash in between is healed by the client's retry, which
        # finds the pending profile and asks again (the message is keyed, so it is queued once).
        if self._confirmations is not None and customer.confirm_by and messaging.confirmation_template_id:
            self._confirmations.request(
                customer.customer_id, customer.confirm_by, messaging.confirmation_template_id
            )

    def _confirming(self, principal: Principal | None) -> Messaging | None:
        """The programme's messaging when an enrolment by this key must wait for the emailed link:
        web keys only (a till's customer is in front of the till, an admin acts for the brand)."""
        if principal is None or principal.kind is not KeyKind.WEB:
            return None
        messaging = self._programme.current().messaging
        return messaging if messaging.confirm_email and messaging.confirmation_template_id else None

    # ---- double opt-in ----------------------------------------------------------------------
    def confirm(self, customer_id: str) -> Customer:
        """Follow a confirmation link: the pending customer becomes a member as any enrolment does
        (card, base tier, CustomerEnrolled, retro credit). A member already: the same answer."""
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            current = self.get(customer_id)
            if current.member:
                return current
            now = self._clock.now()
            if not current.pending_confirmation or current.confirm_by is None or current.confirm_by <= now:
                raise InvalidConfirmationToken("no enrolment waits for this link: enrol again")
            updated = replace(current, updated_at=now, version=current.version + 1, confirm_by=None)
            try:
                return self._enrol_now(current, updated, now, None).customer
            except (StaleCustomer, LinksTaken):
                continue
        raise ServiceUnavailable("the profile kept changing; retry")

    def lapse_confirmations(self) -> int:
        """Unconfirmed web enrolments past their window stay what they were: non-members. The
        profile, its links and its history are kept; only the pending state goes."""
        now = self._clock.now()
        lapsed, cursor = 0, None
        while True:
            ids, cursor = self._customers.pending_confirmations(now, cursor)
            for customer_id in ids:
                current = self._customers.get(customer_id)
                if current is None or current.confirm_by is None or current.confirm_by > now:
                    continue
                lapsed += self._customers.lapse_confirmation(customer_id, current.confirm_by, now)
            if cursor is None:
                return lapsed

    def _enrol_known(
        self,
        command: EnrolCommand,
        links: Sequence[Link],
        taken: dict[Link, str],
        store_id: str | None,
        idempotency: IdempotencyRequest | None,
        ignored: tuple[Link, ...] = (),
        confirming: Messaging | None = None,
    ) -> CustomerResult | None:
        profiles = self._customers.owners(sorted(set(taken.values())))
        owners = {link: profiles.get(cid, LinkOwner(cid, member=False)) for link, cid in taken.items()}
        decision = decide_enrolment(owners, command.member)
        if decision.outcome is EnrolmentOutcome.CONFLICT:
            raise IdentityConflict(
                "the links belong to an existing member or to several customers",
                customer_ids=list(decision.conflicting_ids),
            )
        assert decision.customer_id is not None
        existing = self._customers.get(decision.customer_id)
        if existing is None or existing.status is not CustomerStatus.ACTIVE:
            return None  # it moved on meanwhile: decide again
        now = self._clock.now()
        new_links = [link for link in links if not existing.has_link(link)]
        try:
            if decision.outcome is EnrolmentOutcome.ENROL_EXISTING and confirming is not None:
                updated = replace(
                    existing.with_links(*new_links),
                    updated_at=now,
                    profile=_merge_profiles(existing.profile, command.profile),
                    consents=command.consents,
                    origin_store_id=existing.origin_store_id or store_id,
                    version=existing.version + 1,
                )
                return self._await_confirmation(
                    existing, updated, new_links, confirming, idempotency, now, ignored
                )
            if decision.outcome is EnrolmentOutcome.ENROL_EXISTING:
                if existing.card is None and not _has_card(new_links):
                    new_links.append(Link(link_rules.CARD, self._card()))
                enrolled = replace(
                    existing.with_links(*new_links),
                    member=True,
                    enrolled_at=now,
                    updated_at=now,
                    tier=self._programme.current().base_tier,
                    profile=_merge_profiles(existing.profile, command.profile),
                    consents=command.consents,
                    origin_store_id=existing.origin_store_id or store_id,
                    version=existing.version + 1,
                )
                credit = self._credit(enrolled, now)
                result = CustomerResult(credit.customer, created=False, links_ignored=ignored)
                self._customers.enrol_existing(
                    credit.customer,
                    new_links,
                    existing.version,
                    [*credit.ops, *idempotency_ops(self._idempotency, idempotency, result, now)],
                    ev.outbox([_enrolled_event(enrolled, store_id, previously_known=True), *credit.events]),
                )
                return result
            # A non-member identified again as a non-member: the same profile, plus any new links.
            known = existing.with_links(*new_links)
            known = replace(known, version=existing.version + bool(new_links))
            result = CustomerResult(known, created=False, links_ignored=ignored)
            if new_links or idempotency is not None:
                self._customers.add_links(
                    existing.customer_id,
                    new_links,
                    now,
                    idempotency_ops(self._idempotency, idempotency, result, now),
                )
            return result
        except (LinksTaken, StaleCustomer, CustomerNotActive):
            return None

    # ---- profile --------------------------------------------------------------------------
    def update(
        self,
        customer_id: str,
        patch: ProfilePatch,
        idempotency: IdempotencyRequest | None = None,
        principal: Principal | None = None,
    ) -> CustomerResult:
        self._require_favourite_store(patch.fields.get("favourite_store_id"))
        confirming = self._confirming(principal) if patch.member else None
        for attempt in range(_ATTEMPTS):
            backoff(attempt)
            current = self.get(customer_id)
            now = self._clock.now()
            profile = current.profile
            if patch.fields or patch.attributes is not None:
                attributes = dict(profile.attributes)
                for key, value in (patch.attributes or {}).items():
                    if value is None:
                        attributes.pop(key, None)
                    else:
                        attributes[key] = value
                profile = replace(profile, **patch.fields, attributes=attributes)
            consents = replace(current.consents, **patch.consents)
            updated = replace(
                current, profile=profile, consents=consents, updated_at=now, version=current.version + 1
            )
            try:
                if patch.member and not current.member and confirming is not None:
                    return self._await_confirmation(current, updated, [], confirming, idempotency, now)
                if patch.member and not current.member:
                    return self._enrol_now(current, replace(updated, confirm_by=None), now, idempotency)
                result = CustomerResult(updated, created=False)
                changed = changed_fields(current, updated)
                self._customers.save_profile(
                    updated,
                    current.version,
                    idempotency_ops(self._idempotency, idempotency, result, now),
                    ev.outbox(
                        [ev.DomainEvent(ev.CUSTOMER_UPDATED, {"customer_id": customer_id, "fields": changed})]
                    )
                    if changed
                    else [],
                )
                return result
            except (StaleCustomer, LinksTaken):
                continue
        raise ServiceUnavailable("the profile kept changing; retry")

    def _enrol_now(
        self, current: Customer, updated: Customer, now: datetime, idempotency: IdempotencyRequest | None
    ) -> CustomerResult:
        """A known non-member becomes a member: a card if they have none, the base tier, retro credit
        for recent purchases and CustomerEnrolled, in one write guarded by the version read."""
        card = [] if current.card else [Link(link_rules.CARD, self._card())]
        updated = replace(
            updated.with_links(*card),
            member=True,
            enrolled_at=now,
            tier=self._programme.current().base_tier,
        )
        # Enrolling by PATCH (or by a confirmation link) is enrolling: recent purchases are credited
        # once, and the enrolment is announced, as when POST /v1/customers enrols a known non-member.
        credit = self._credit(updated, now)
        result = CustomerResult(credit.customer, created=False)
        self._customers.enrol_existing(
            credit.customer,
            card,
            current.version,
            [*credit.ops, *idempotency_ops(self._idempotency, idempotency, result, now)],
            ev.outbox(
                [
                    _enrolled_event(updated, updated.origin_store_id, previously_known=True),
                    *credit.events,
                ]
            ),
        )
        return result

    # ---- links ----------------------------------------------------------------------------
    def add_link(
        self,
        customer_id: str,
        raw: RawLink,
        on_conflict: OnConflict,
        idempotency: IdempotencyRequest | None = None,
        principal: Principal | None = None,
    ) -> CustomerResult:
        return self._links.add_link(customer_id, raw, on_conflict, idempotency, principal)

    def remove_link(self, customer_id: str, link_type: str, link_value: str) -> None:
        self._links.remove_link(customer_id, link_type, link_value)

    def set_price_group(self, customer_id: str, group_id: str, member: bool) -> Customer:
        customer = self.get(customer_id)
        self._customers.set_price_group(customer.customer_id, group_id, member, self._clock.now())
        return self.get(customer.customer_id)

    # ---- helpers --------------------------------------------------------------------------
    def _credit(self, enrolled: Customer, now: datetime) -> RetroCredit:
        if self._retro_credit is None:
            return RetroCredit(enrolled, [], [])
        return self._retro_credit(enrolled, now)

    def _require_store(self, store_id: str) -> None:
        try:
            self._stores.require(store_id)
        except StoreNotFound:
            raise ValidationFailed.at(("body", "store_id"), f"unknown store {store_id!r}") from None

    def _require_favourite_store(self, store_id: str | None) -> None:
        if store_id is not None and self._stores.find(store_id) is None:
            raise ValidationFailed.at(
                ("body", "profile", "favourite_store_id"), f"unknown store {store_id!r}"
            )

    def _card(self) -> str:
        return self._new_card(self._programme.current().card_scheme)

    def _identify_all(self, raw_links: Sequence[RawLink]) -> tuple[list[Link], tuple[Link, ...]]:
        """The usable links, and the placeholders left out; only placeholders is a 422 naming them."""
        programme = self._programme.current()
        errors: list[FieldError] = []
        links: list[Link] = []
        ignored: dict[int, Link] = {}
        for index, raw in enumerate(raw_links):
            try:
                identity = programme.identify(raw.type, raw.value)
            except link_rules.LinkInvalid as bad:
                errors.append(FieldError(("body", "links", index, bad.field), bad.msg))
                continue
            if not identity.usable:
                ignored[index] = identity.link
            elif identity.link not in links:
                links.append(identity.link)
        if errors:
            raise ValidationFailed("some links are not valid", errors=errors)
        if ignored and not links:
            raise ValidationFailed(
                "every link given is a placeholder that identifies nobody",
                errors=[
                    FieldError(
                        ("body", "links", index, "value"),
                        PLACEHOLDER_MSG.format(link=link),
                        link_rules.PLACEHOLDER,
                    )
                    for index, link in ignored.items()
                ],
            )
        return links, tuple(dict.fromkeys(ignored.values()))


def _enrolled_event(customer: Customer, store_id: str | None, previously_known: bool) -> ev.DomainEvent:
    return ev.DomainEvent(
        ev.CUSTOMER_ENROLLED,
        {
            "customer_id": customer.customer_id,
            "store_id": store_id,
            "card": customer.card.value if customer.card else None,
            "enrolled_at": customer.enrolled_at,
            "previously_known": previously_known,  # an identified non-member who joined
            "consents": {
                "email": customer.consents.email,
                "sms": customer.consents.sms,
                "mail": customer.consents.mail,
            },
        },
    )


def _has_card(links: Sequence[Link]) -> bool:
    return any(link.type == link_rules.CARD for link in links)


def _merge_profiles(existing: Profile, given: Profile) -> Profile:
    """Enrolment fills in what the customer now tells us; it does not blank what we knew."""
    birthday: date | None = given.birthday or existing.birthday
    return Profile(
        first_name=given.first_name or existing.first_name,
        last_name=given.last_name or existing.last_name,
        birthday=birthday,
        attributes={**existing.attributes, **given.attributes},
        country=given.country or existing.country,
        timezone=given.timezone or existing.timezone,
        favourite_store_id=given.favourite_store_id or existing.favourite_store_id,
        address=given.address or existing.address,
    )


__all__ = [
    "CustomerResult",
    "CustomerService",
    "EnrolCommand",
    "OnConflict",
    "ProfilePatch",
    "RawLink",
]


_PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "birthday",
    "country",
    "timezone",
    "favourite_store_id",
    "address",
)


def changed_fields(before: Customer, after: Customer) -> list[str]:
    """What CustomerUpdated names: the changed fields, by the paths segment rules use."""
    changed = [
        f"profile.{f}" for f in _PROFILE_FIELDS if getattr(before.profile, f) != getattr(after.profile, f)
    ]
    old, new = before.profile.attributes, after.profile.attributes
    changed += [f"profile.attributes.{k}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    changed += [
        f"consents.{c}"
        for c in ("email", "sms", "mail")
        if getattr(before.consents, c) != getattr(after.consents, c)
    ]
    return changed
