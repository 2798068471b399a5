"""Taking customer events in (POST /v1/events): check each alone, find whose it is, keep it once.

A batch costs, for known customers and no duplicates: one BatchGetItem for the events already
stored and the links and profiles named, one more for the profiles behind links, and one
TransactWriteItems of up to 100 event puts (each conditional on its key: event_id is deduplicated
per store for ever). Anonymous visitors' events carry a ConditionCheck that the visitor is not yet
identified, so none lands on the anonymous timeline after the identification; identification
itself (a customer and an anonymous_id in one event) links the anonymous id to the customer, and
services/attribution.py brings the visitor's earlier events over.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from loyalty.adapters.customer_events import CustomerEventRepository, Refused, anonymous_link
from loyalty.adapters.customers import CustomerRepository, LinksTaken, StaleCustomer
from loyalty.adapters.dynamo import TxOp
from loyalty.adapters.idempotency import IdempotencyStore
from loyalty.domain import event_earning as event_rules
from loyalty.domain import links as link_rules
from loyalty.domain.access import Principal
from loyalty.domain.activity import RecordedEvent
from loyalty.domain.customer_events import CustomerEvent, EventInput, check_properties, check_timing
from loyalty.domain.customers import Customer, CustomerStatus, identified_non_member
from loyalty.domain.errors import DomainError, FieldError, ServiceUnavailable
from loyalty.domain.ids import new_id
from loyalty.domain.links import Link
from loyalty.domain.stores import Store
from loyalty.services.config import ProgrammeService, StoreService
from loyalty.services.ports import Clock, IdempotencyRequest, backoff, record_unchanged, replay_if_recorded

_ATTEMPTS = 6
MAX_OPS = 100  # TransactWriteItems

# Per-event notes in the answer (stable slugs clients may switch on).
LINKED_ELSEWHERE = "anonymous-id-of-another-customer"  # kept on the named customer, not linked
PLACEHOLDER = link_rules.PLACEHOLDER  # the customer link identifies nobody: kept as anonymous/none
NOT_LINKED = "anonymous-id-not-linked"  # the profile could not take the link now (a merge running)


@dataclass
class EventOutcome:
    index: int
    event_id: str
    status: str  # accepted | duplicate | rejected
    customer_id: str | None = None
    note: str | None = None
    points_if_member: int = 0  # a non-member's or visitor's event: what the event rules give a member


@dataclass
class IngestResult:
    accepted: int
    duplicates: int
    rejected: list[tuple[int, list[FieldError]]]
    results: list[EventOutcome]
    identified: list[tuple[str, str]] = field(default_factory=list)  # (anonymous_id, customer_id)


@dataclass
class _Pending:
    index: int
    given: EventInput
    store: Store
    properties: dict[str, object]
    link: Link | None  # the customer ref's link (normalised, usable)
    customer_id: str | None = None  # resolved
    member: bool = False
    note: str | None = None
    unknown: bool = False  # names a customer id that is nobody (rejected)

    @property
    def key(self) -> tuple[str, str]:
        return (self.store.store_id, self.given.event_id)


@dataclass
class _Unit:
    events: list[_Pending]
    ops: list[TxOp]
    created: Customer | None = None


Attribute = Callable[[str, str], object]  # (anonymous_id, customer_id): the first pass


class EventIngest:
    def __init__(
        self,
        *,
        events: CustomerEventRepository,
        customers: CustomerRepository,
        stores: StoreService,
        programme: ProgrammeService,
        clock: Clock,
        resolve_customer: Callable[[str], Customer],
        idempotency: IdempotencyStore,
        attribute: Attribute | None = None,
    ) -> None:
        self._events = events
        self._idempotency = idempotency
        self._customers = customers
        self._stores = stores
        self._programme = programme
        self._clock = clock
        self._resolve_customer = resolve_customer  # follows merges; raises CustomerNotFound
        self._attribute = attribute

    def record(
        self,
        given: Sequence[tuple[int, EventInput]],
        principal: Principal,
        rejected: Sequence[tuple[int, list[FieldError]]] = (),
        idempotency: IdempotencyRequest | None = None,
    ) -> IngestResult:
        """`given`: the events whose shape passed (with their index in the batch); `rejected`: those
        whose shape did not. A body naming another store than the key's is refused whole (403)
        before anything is written. With an Idempotency-Key, a replay answers the first response
        (the events themselves are deduplicated by event_id with or without it)."""
        for _, event in given:
            principal.ensure_store(event.store_id)
        replay_if_recorded(self._idempotency, idempotency)
        now = self._clock.now()
        refused = dict(rejected)
        pending: list[_Pending] = []
        for index, event in given:
            checked = self._check(index, event, principal, now)
            if isinstance(checked, list):
                refused[index] = checked
            else:
                pending.append(checked)
        outcomes: dict[int, EventOutcome] = {}
        seen: set[tuple[str, str]] = set()
        unique: list[_Pending] = []
        stored = self._events.existing([p.key for p in pending]) if pending else set()
        for p in pending:
            if p.key in seen or p.key in stored:
                outcomes[p.index] = EventOutcome(p.index, p.given.event_id, "duplicate")
            else:
                seen.add(p.key)
                unique.append(p)
        identified = self._store(unique, now, outcomes, refused)
        for anonymous_id, customer_id in identified:
            if self._attribute is not None:
                # The first pass; should it fail, the events are kept and the job's second pass moves them.
                with contextlib.suppress(DomainError):
                    self._attribute(anonymous_id, customer_id)
        for index in refused:
            event_id = next((e.event_id for i, e in given if i == index), "")
            outcomes[index] = EventOutcome(index, event_id, "rejected")
        ordered = [outcomes[i] for i in sorted(outcomes)]
        result = IngestResult(
            accepted=sum(1 for o in ordered if o.status == "accepted"),
            duplicates=sum(1 for o in ordered if o.status == "duplicate"),
            rejected=sorted(refused.items()),
            results=ordered,
            identified=identified,
        )
        # After the events (a batch may take several transactions): a crash in between loses only
        # the stored answer, and the retry's events are duplicates, never kept twice.
        record_unchanged(self._idempotency, idempotency, result, now, self._events.commit)
        return result

    # ---- checking one event -----------------------------------------------------------------
    def _check(
        self, index: int, event: EventInput, principal: Principal, now: datetime
    ) -> _Pending | list[FieldError]:
        errors: list[FieldError] = []
        store_id = principal.ensure_store(event.store_id)
        store = None
        if store_id is None:
            errors.append(FieldError(("store_id",), "name the store (an admin key has none of its own)"))
        else:
            store = self._stores.find(store_id)
            if store is None:
                errors.append(FieldError(("store_id",), f"unknown store {store_id!r}"))
        properties, bad = check_properties(event.type, event.properties)
        errors.extend(bad)
        errors.extend(check_timing(event.occurred_at, now))
        link = None
        note = None
        if event.customer is not None and event.customer.link_type is not None:
            try:
                identity = self._programme.current().identify(
                    event.customer.link_type, event.customer.link_value or ""
                )
            except link_rules.LinkInvalid as invalid:
                errors.append(FieldError(("customer", "link", invalid.field), invalid.msg))
            else:
                link = identity.link if identity.usable else None
                note = None if identity.usable else PLACEHOLDER
        if event.anonymous_id is not None:
            try:
                link_rules.normalise(link_rules.ANONYMOUS_ID, event.anonymous_id)
            except link_rules.LinkInvalid as invalid:
                errors.append(FieldError(("anonymous_id",), invalid.msg))
        if errors or store is None:
            return [replace(e, loc=("body", "events", index, *e.loc)) for e in errors]
        return _Pending(index, event, store, properties, link, note=note)

    # ---- resolving and writing --------------------------------------------------------------
    def _store(
        self,
        pending: list[_Pending],
        now: datetime,
        outcomes: dict[int, EventOutcome],
        refused: dict[int, list[FieldError]],
    ) -> list[tuple[str, str]]:
        identified: list[tuple[str, str]] = []
        remaining = pending
        linked: dict[str, str] = {}
        for attempt in range(_ATTEMPTS):
            if not remaining:
                return identified
            backoff(attempt)
            creating = self._resolve(remaining, linked, now)
            for p in [p for p in remaining if p.unknown]:
                refused[p.index] = [
                    FieldError(("body", "events", p.index, "customer", "customer_id"), "no such customer")
                ]
            remaining = [p for p in remaining if not p.unknown]
            identified.extend(self._identify(remaining, linked, creating, now))
            remaining = self._write(self._units(remaining, creating), outcomes, linked, identified)
        if remaining:
            raise ServiceUnavailable("the customers' records kept changing; send the batch again")
        return identified

    def _if_member(self, p: _Pending) -> int:
        """Members earn through the activity worker; anyone else hears what a member would have
        earned by this event (before limits), as a sale's answer says."""
        if p.member:
            return 0
        event = RecordedEvent(
            event_id=p.given.event_id,
            store_id=p.store.store_id,
            type=p.given.type,
            occurred_at=p.given.occurred_at,
            received_at=self._clock.now(),
            properties=p.properties,
        )
        return event_rules.points_if_member(self._programme.current(), event)

    def _write(
        self,
        units: list[_Unit],
        outcomes: dict[int, EventOutcome],
        linked: dict[str, str],
        identified: list[tuple[str, str]],
    ) -> list[_Pending]:
        """Commit the units chunk by chunk; what is left to try again (after resolving again)."""
        remaining: list[_Pending] = []
        for chunk in _chunks(units):
            ops = [op for unit in chunk for op in unit.ops]
            events = [p for unit in chunk for p in unit.events]
            if remaining:  # an earlier chunk failed: resolve again before writing more
                remaining.extend(events)
                continue
            try:
                self._events.write(ops)
            except Refused as refusal:
                failed = {ops[i].label for i in refusal.duplicates}
                linked.update(refusal.linked)
                for p in events:
                    if f"event:{p.index}" in failed:
                        outcomes[p.index] = EventOutcome(p.index, p.given.event_id, "duplicate")
                    else:
                        remaining.append(p)
                continue
            for p in events:
                outcomes[p.index] = EventOutcome(
                    p.index, p.given.event_id, "accepted", p.customer_id, p.note, self._if_member(p)
                )
            for unit in chunk:
                if unit.created is not None:
                    identified.extend(
                        (link.value, unit.created.customer_id)
                        for link in unit.created.links
                        if link.type == link_rules.ANONYMOUS_ID
                    )
        return remaining

    def _resolve(
        self, pending: list[_Pending], linked: dict[str, str], now: datetime
    ) -> dict[Link, Customer]:
        """Whose each event is: the customer named (by id, following merges, or by a link; a link
        that matches nobody makes an identified non-member), else the customer the anonymous id is
        linked to, else nobody (the anonymous visitor). Returns the customers to create, by link."""
        links = {p.link for p in pending if p.link is not None}
        anonymous = {p.given.anonymous_id for p in pending if p.given.anonymous_id}
        link_owner = self._customers.link_owners([*links, *(anonymous_link(a) for a in anonymous)])
        linked.update(
            {link.value: owner for link, owner in link_owner.items() if link.type == link_rules.ANONYMOUS_ID}
        )
        named = {
            p.given.customer.customer_id for p in pending if p.given.customer and p.given.customer.customer_id
        }
        wanted = named | set(link_owner.values())
        profiles = self._customers.get_many(sorted(wanted)) if wanted else {}
        creating: dict[Link, Customer] = {}
        for p in pending:
            p.customer_id, p.member, p.unknown = None, False, False
            ref = p.given.customer
            customer_id = ref.customer_id if ref and ref.customer_id else None
            if p.link is not None:
                customer_id = link_owner.get(p.link)
                if customer_id is None:
                    new = creating.get(p.link) or identified_non_member(
                        new_id(), p.link, p.store.store_id, now, version=1
                    )
                    creating[p.link] = new
                    p.customer_id = new.customer_id
                    continue
            if customer_id is None and p.given.anonymous_id and not (ref and ref.customer_id):
                customer_id = linked.get(p.given.anonymous_id)
            if customer_id is None:
                continue
            customer = profiles.get(customer_id)
            if customer is None or customer.status is not CustomerStatus.ACTIVE:
                customer = self._live(customer_id)
            if customer is None:
                p.unknown = ref is not None and ref.customer_id is not None
                continue
            p.customer_id, p.member = customer.customer_id, customer.member
        for link, new in creating.items():  # a customer ref *by* anonymous_id that names nobody yet
            if link.type == link_rules.ANONYMOUS_ID:
                linked.setdefault(link.value, new.customer_id)
        return creating

    def _live(self, customer_id: str) -> Customer | None:
        try:
            return self._resolve_customer(customer_id)
        except DomainError:
            return None

    def _identify(
        self, pending: list[_Pending], linked: dict[str, str], creating: dict[Link, Customer], now: datetime
    ) -> list[tuple[str, str]]:
        """Events naming a customer and an anonymous id not yet linked: the link, now. A new
        non-member takes it in its own creation; an existing profile gets it first, on its own
        (its own transaction: its profile takes the link)."""
        done: list[tuple[str, str]] = []
        for p in pending:
            anonymous_id = p.given.anonymous_id
            if not anonymous_id or p.customer_id is None or p.given.customer is None:
                continue
            owner = linked.get(anonymous_id)
            if owner is not None:
                if owner != p.customer_id and self._survivor(owner) != p.customer_id:
                    p.note = LINKED_ELSEWHERE  # not stolen: kept on the named customer
                continue
            new = next((c for c in creating.values() if c.customer_id == p.customer_id), None)
            if new is not None:
                creating[next(k for k, v in creating.items() if v is new)] = new.with_links(
                    anonymous_link(anonymous_id)
                )
                linked[anonymous_id] = p.customer_id
                continue
            try:
                self._customers.add_links(p.customer_id, [anonymous_link(anonymous_id)], now)
            except LinksTaken as taken:
                other = next(iter(taken.owners.values()), None)
                if other is not None:
                    linked[anonymous_id] = other
                    if other != p.customer_id:
                        p.note = LINKED_ELSEWHERE
                continue
            except (StaleCustomer, DomainError):
                p.note = NOT_LINKED  # a merge holds the profile: the event is kept, the link is not
                continue
            linked[anonymous_id] = p.customer_id
            done.append((anonymous_id, p.customer_id))
        self._follow_links(pending, linked, creating)
        return done

    def _follow_links(
        self, pending: list[_Pending], linked: dict[str, str], creating: dict[Link, Customer]
    ) -> None:
        """Anonymous-only events of a visitor identified just now belong to the customer too (a
        customer this batch creates takes them without a read: it does not exist yet)."""
        new_ids = {c.customer_id for c in creating.values()}
        for p in pending:
            anonymous_id = p.given.anonymous_id
            # (A customer ref that identifies nobody - a placeholder - counts as none here.)
            if p.customer_id is None and anonymous_id in linked:
                owner = linked[anonymous_id]
                customer = None if owner in new_ids else self._live(owner)
                if owner in new_ids:
                    p.customer_id, p.member = owner, False
                elif customer is not None:
                    p.customer_id, p.member = customer.customer_id, customer.member

    def _survivor(self, customer_id: str) -> str | None:
        customer = self._live(customer_id)
        return customer.customer_id if customer else None

    def _units(self, pending: list[_Pending], creating: dict[Link, Customer]) -> list[_Unit]:
        """What must commit together: a new customer (profile and links), an anonymous visitor's
        events with the check that it is still unidentified, and every other event alone."""
        received = self._clock.now()
        units = [_Unit([], self._customers.create_ops(c), c) for c in creating.values()]
        visitors: dict[str, list[_Pending]] = {}
        for p in pending:
            if p.customer_id is None and p.given.anonymous_id:
                visitors.setdefault(p.given.anonymous_id, []).append(p)
            else:
                units.append(_Unit([p], [self._events.put_op(self._event(p, received), f"event:{p.index}")]))
        for anonymous_id, events in visitors.items():
            for start in range(0, len(events), MAX_OPS - 1):
                part = events[start : start + MAX_OPS - 1]
                ops = [self._events.unlinked_op(anonymous_id, f"anon:{anonymous_id}")]
                ops += [self._events.put_op(self._event(p, received), f"event:{p.index}") for p in part]
                units.append(_Unit(part, ops))
        return units

    def _event(self, p: _Pending, received: datetime) -> CustomerEvent:
        given = p.given
        return CustomerEvent(
            event_id=given.event_id,
            store_id=p.store.store_id,
            channel=p.store.channel.value,
            type=given.type,
            occurred_at=given.occurred_at,
            received_at=received,
            properties=dict(p.properties),
            customer_id=p.customer_id,
            anonymous_id=given.anonymous_id,
            member=p.member,
        )


def _chunks(units: list[_Unit]) -> list[list[_Unit]]:
    """Units packed into transactions of at most MAX_OPS ops, in order (new customers first)."""
    chunks: list[list[_Unit]] = []
    current: list[_Unit] = []
    size = 0
    for unit in units:
        if current and size + len(unit.ops) > MAX_OPS:
            chunks.append(current)
            current, size = [], 0
        current.append(unit)
        size += len(unit.ops)
    if current:
        chunks.append(current)
    return chunks
