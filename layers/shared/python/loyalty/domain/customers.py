"""Customer profiles and the identity rules that decide what an enrolment does."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any

from loyalty.domain.links import Link
from loyalty.domain.money import cents
from loyalty.domain.scores import Scores

if TYPE_CHECKING:  # loaded with the code that spends points, not with every profile
    from loyalty.domain.lots import LotSummary


class CustomerStatus(StrEnum):
    ACTIVE = "active"
    MERGED = "merged"
    ERASED = "erased"


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address, as a mail house prints it (country: ISO 3166-1 alpha-2)."""

    line1: str
    city: str
    country: str
    line2: str | None = None
    postal_code: str | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    first_name: str | None = None
    last_name: str | None = None
    birthday: date | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    country: str | None = None  # ISO 3166-1 alpha-2
    timezone: str | None = None  # IANA; messages fall back to the programme's default
    favourite_store_id: str | None = None
    address: Address | None = None


@dataclass(frozen=True, slots=True)
class Consents:
    email: bool = False
    sms: bool = False
    mail: bool = False


@dataclass(frozen=True, slots=True)
class PointsSummary:
    available: int = 0
    pending: int = 0
    lifetime: int = 0

    @property
    def balance(self) -> int:
        """What a member is told they have: spendable and pending points together."""
        return self.available + self.pending


@dataclass(frozen=True, slots=True)
class Stats:
    transactions: int = 0
    spend: Decimal = Decimal("0.00")
    first_purchase_at: datetime | None = None
    last_purchase_at: datetime | None = None

    def with_sale(self, amount: Decimal, at: datetime) -> Stats:
        first, last = self.first_purchase_at, self.last_purchase_at
        return Stats(
            transactions=self.transactions + 1,
            spend=cents(self.spend + amount),
            first_purchase_at=min(first, at) if first else at,
            last_purchase_at=max(last, at) if last else at,
        )


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str
    member: bool
    status: CustomerStatus
    profile: Profile
    consents: Consents
    links: tuple[Link, ...]
    created_at: datetime
    enrolled_at: datetime | None = None
    updated_at: datetime | None = None
    origin_store_id: str | None = None
    tier: str | None = None
    points: PointsSummary = PointsSummary()
    stats: Stats = Stats()
    merged_into: str | None = None
    merged_from: tuple[str, ...] = ()
    version: int = 1
    earned_by_month: dict[str, int] = field(default_factory=dict)  # tier progress, by YYYY-MM
    ledger_seq: int = 0  # number of the last ledger entry
    price_groups: frozenset[str] = frozenset()  # assigned by an admin (groups may also match by tier)
    points_holds: dict[str, tuple[int, datetime]] = field(default_factory=dict)  # hold id -> points, until
    merge_lock: str | None = None  # the merge (or undo) moving this profile's records right now
    merge_count: int = 0  # merges this profile has absorbed (a guard rail stops it at a limit)
    merges_reviewed: int = 0  # merge_count when a person last cleared a review: the limit counts on from it
    review: str | None = None  # why the profile was flagged for a person to look at
    badges: dict[str, datetime] = field(default_factory=dict)  # badge id -> when it was earned (once)
    # The first open lots to spend, exact while its stamp is `ledger_seq` (see domain/lots.py).
    lots: LotSummary | None = None
    # Double opt-in: a web enrolment waiting for its emailed link until this instant (not a member
    # yet, no card, no earning); None once confirmed, lapsed, or never asked.
    confirm_by: datetime | None = None
    scores: Scores | None = None  # RFM quintiles, written by the scores job (services/customer_scores)

    @property
    def pending_confirmation(self) -> bool:
        return self.confirm_by is not None and not self.member and self.status is CustomerStatus.ACTIVE

    @property
    def shown_status(self) -> str:
        """The status clients see: `pending_confirmation` is an active non-member awaiting the link."""
        return "pending_confirmation" if self.pending_confirmation else self.status.value

    def points_held(self, now: datetime) -> int:
        return sum(points for points, until in self.points_holds.values() if now < until)

    def spendable(self, now: datetime) -> int:
        """Available points less those held for orders not yet captured (expired holds hold nothing)."""
        return self.points.available - self.points_held(now)

    def live_points_holds(self, now: datetime) -> dict[str, tuple[int, datetime]]:
        return {k: v for k, v in self.points_holds.items() if now < v[1]}

    def __post_init__(self) -> None:
        # One canonical order, so a profile compares equal however its links were gathered.
        object.__setattr__(self, "links", tuple(sorted(set(self.links), key=lambda k: (k.type, k.value))))

    def with_links(self, *links: Link) -> Customer:
        known = {link.key for link in self.links}
        return replace(self, links=self.links + tuple(link for link in links if link.key not in known))

    def without_link(self, link: Link) -> Customer:
        return replace(self, links=tuple(existing for existing in self.links if existing != link))

    def has_link(self, link: Link) -> bool:
        return link in self.links

    @property
    def card(self) -> Link | None:
        return next((link for link in self.links if link.type == "card"), None)


def identified_non_member(
    customer_id: str, link: Link, store_id: str, now: datetime, *, version: int
) -> Customer:
    """A link that matches nobody (a guest checkout's email, an event's customer ref) makes an
    identified non-member. `version`: what the writer expects to store (a sale writes the profile
    with its own version bump; an event batch puts the new profile as it is)."""
    return Customer(
        customer_id=customer_id,
        member=False,
        status=CustomerStatus.ACTIVE,
        profile=Profile(),
        consents=Consents(),
        links=(link,),
        created_at=now,
        updated_at=now,
        origin_store_id=store_id,
        version=version,
    )


class EnrolmentOutcome(Enum):
    CREATE = "create"  # no link known: a new profile
    ENROL_EXISTING = "enrol_existing"  # the known links all point to one non-member who now joins
    RETURN_EXISTING = "return_existing"  # a non-member re-identified as a non-member: nothing to create
    CONFLICT = "conflict"  # an existing member, or several customers


@dataclass(frozen=True, slots=True)
class EnrolmentDecision:
    outcome: EnrolmentOutcome
    customer_id: str | None = None
    conflicting_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LinkOwner:
    customer_id: str
    member: bool


def decide_enrolment(owners: dict[Link, LinkOwner], wants_member: bool) -> EnrolmentDecision:
    """What POST /v1/customers does, given who already owns the requested links.

    Links nobody owns yet are attached to whichever profile results, so a till that knows a
    non-member by email and now also gets their phone enrols them with both.
    """
    if not owners:
        return EnrolmentDecision(EnrolmentOutcome.CREATE)
    ids = tuple(sorted({owner.customer_id for owner in owners.values()}))
    if len(ids) > 1:
        return EnrolmentDecision(EnrolmentOutcome.CONFLICT, conflicting_ids=ids)
    owner = next(iter(owners.values()))
    if owner.member:
        return EnrolmentDecision(EnrolmentOutcome.CONFLICT, conflicting_ids=ids)
    if wants_member:
        return EnrolmentDecision(EnrolmentOutcome.ENROL_EXISTING, customer_id=owner.customer_id)
    return EnrolmentDecision(EnrolmentOutcome.RETURN_EXISTING, customer_id=owner.customer_id)


@dataclass(frozen=True)
class CustomerRef:
    """Who a request is about: a platform id, or a link (type and value) to resolve."""

    customer_id: str | None = None
    link_type: str | None = None
    link_value: str | None = None
