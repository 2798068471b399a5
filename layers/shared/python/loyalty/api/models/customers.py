"""API models: customers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    Field,
    StringConstraints,
    field_validator,
)

from loyalty.api.models.common import Name, StoreId, Strict, _check_attributes, _check_birthday, money
from loyalty.domain.customers import Address, Consents, Customer, Profile
from loyalty.domain.links import Link, OnConflict
from loyalty.domain.models import Model
from loyalty.domain.places import CountryCode, TimeZoneName
from loyalty.domain.programme import Programme
from loyalty.domain.scores import Scores
from loyalty.domain.tiers import TierProgress, effective_tier, tier_progress

if TYPE_CHECKING:
    from loyalty.domain.links import Link
    from loyalty.domain.programme import Programme
    from loyalty.services.customers import EnrolCommand, ProfilePatch


class LinkIn(Strict):
    type: str = Field(min_length=1, max_length=40, examples=["email"])
    value: str = Field(min_length=1, max_length=254, examples=["jane@example.com"])


class LinkOut(Model):
    type: str
    value: str


AddressLine = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
PostalCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16)]


class AddressIn(Strict):
    """A postal address as a mail house prints it; replaced whole, never line by line."""

    line1: AddressLine
    line2: AddressLine | None = None
    postal_code: PostalCode | None = None
    city: AddressLine
    country: CountryCode

    def to_domain(self) -> Address:
        return Address(
            line1=self.line1,
            line2=self.line2,
            postal_code=self.postal_code,
            city=self.city,
            country=self.country,
        )


class ProfileIn(Strict):
    first_name: Name | None = None
    last_name: Name | None = None
    birthday: date | None = None
    country: CountryCode | None = None
    timezone: TimeZoneName | None = Field(
        default=None, description="IANA time zone; messages use the programme's default when absent"
    )
    favourite_store_id: StoreId | None = Field(default=None, description="a known store")
    address: AddressIn | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    _attributes = field_validator("attributes")(_check_attributes)
    _birthday = field_validator("birthday")(_check_birthday)

    def to_domain(self) -> Profile:
        return Profile(
            self.first_name,
            self.last_name,
            self.birthday,
            dict(self.attributes),
            country=self.country,
            timezone=self.timezone,
            favourite_store_id=self.favourite_store_id,
            address=self.address.to_domain() if self.address else None,
        )


class ConsentsIn(Strict):
    email: bool = False
    sms: bool = False
    mail: bool = False


class CustomerCreate(Strict):
    links: list[LinkIn] = Field(default_factory=list, max_length=20)
    profile: ProfileIn = Field(default_factory=ProfileIn)
    consents: ConsentsIn = Field(default_factory=ConsentsIn)
    member: bool = Field(default=True, description="false records an identified non-member")
    store_id: StoreId | None = Field(default=None, description="defaults to the key's store")

    def to_command(self) -> EnrolCommand:
        from loyalty.services.customers import EnrolCommand, RawLink  # the services load on first use

        return EnrolCommand(
            links=[RawLink(link.type, link.value) for link in self.links],
            profile=self.profile.to_domain(),
            consents=Consents(**self.consents.model_dump()),
            member=self.member,
            store_id=self.store_id,
        )


class ProfilePatchIn(Strict):
    """Fields sent replace what is held (null clears them); fields left out stay as they are."""

    first_name: Name | None = None
    last_name: Name | None = None
    birthday: date | None = None
    country: CountryCode | None = None
    timezone: TimeZoneName | None = None
    favourite_store_id: StoreId | None = Field(default=None, description="a known store")
    address: AddressIn | None = Field(default=None, description="replaced whole; null clears it")
    attributes: dict[str, Any] | None = Field(
        default=None, description="merged key by key; null deletes a key"
    )

    _attributes = field_validator("attributes")(lambda v: v if v is None else _check_attributes(v))
    _birthday = field_validator("birthday")(_check_birthday)


class ConsentsPatchIn(Strict):
    email: bool | None = None
    sms: bool | None = None
    mail: bool | None = None


class CustomerPatch(Strict):
    profile: ProfilePatchIn | None = None
    consents: ConsentsPatchIn | None = None
    member: Literal[True] | None = Field(default=None, description="true enrols an identified non-member")

    def to_patch(self) -> ProfilePatch:
        from loyalty.services.customers import ProfilePatch

        fields: dict[str, Any] = {}
        attributes = None
        if self.profile is not None:
            sent = self.profile.model_dump(exclude_unset=True)
            attributes = sent.pop("attributes", None)
            fields = sent
            if "address" in fields:
                fields["address"] = self.profile.address.to_domain() if self.profile.address else None
        consents = self.consents.model_dump(exclude_unset=True, exclude_none=True) if self.consents else {}
        return ProfilePatch(fields=fields, attributes=attributes, consents=consents, member=self.member)


class LinkAdd(Strict):
    type: str = Field(min_length=1, max_length=40)
    value: str = Field(min_length=1, max_length=254)
    on_conflict: OnConflict = OnConflict.REJECT


class PointsOut(Model):
    available: int
    pending: int
    lifetime: int


class StatsOut(Model):
    transactions: int
    spend: str = Field(examples=["0.00"])
    currency: str
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None


class AddressOut(Model):
    line1: str
    line2: str | None
    postal_code: str | None
    city: str
    country: str

    @classmethod
    def of(cls, address: Address | None) -> AddressOut | None:
        if address is None:
            return None
        return cls(
            line1=address.line1,
            line2=address.line2,
            postal_code=address.postal_code,
            city=address.city,
            country=address.country,
        )


class ProfileOut(Model):
    first_name: str | None
    last_name: str | None
    birthday: date | None
    country: str | None
    timezone: str | None
    favourite_store_id: str | None
    address: AddressOut | None
    attributes: dict[str, Any]


class ConsentsOut(Model):
    email: bool
    sms: bool
    mail: bool


def _link_order(link: Link) -> tuple[str, str]:
    return link.type, link.value


class TierProgressOut(Model):
    points_in_window: int = Field(description="points earned in the programme's rolling window")
    next_tier: str | None
    points_to_next_tier: int | None

    @classmethod
    def of(cls, progress: TierProgress | None) -> TierProgressOut | None:
        if progress is None:
            return None
        return cls(
            points_in_window=progress.points_in_window,
            next_tier=progress.next_tier,
            points_to_next_tier=progress.points_to_next_tier,
        )


class BadgeOut(Model):
    badge_id: str
    earned_at: datetime


class ScoresOut(Model):
    """RFM quintiles over the programme's customers with purchases (5: most recent, most frequent,
    highest spend), recomputed daily from the data lake."""

    r: int = Field(ge=1, le=5, description="recency: 5 = bought most recently")
    f: int = Field(ge=1, le=5, description="frequency: sales in the last 12 months")
    m: int = Field(ge=1, le=5, description="monetary: spend in the last 12 months")
    rfm: str = Field(description='the three digits together, e.g. "545"', examples=["545"])
    computed_at: datetime

    @classmethod
    def of(cls, scores: Scores | None) -> ScoresOut | None:
        if scores is None:
            return None
        return cls(r=scores.r, f=scores.f, m=scores.m, rfm=scores.rfm, computed_at=scores.computed_at)


class CustomerView(Model):
    """The 360° view of one customer."""

    customer_id: str
    member: bool
    status: str = Field(
        description="active, pending_confirmation (a web enrolment waiting for its emailed link: not a "
        "member yet), merged or erased"
    )
    confirm_by: datetime | None = Field(
        default=None, description="pending_confirmation only: when the unconfirmed enrolment lapses"
    )
    profile: ProfileOut
    consents: ConsentsOut
    links: list[LinkOut]
    card: str | None = Field(description="the loyalty card barcode, when the customer has one")
    tier: str | None
    tier_progress: TierProgressOut | None
    points: PointsOut
    accounts: list[dict[str, Any]]
    stats: StatsOut
    segments: list[str] = Field(
        description="the saved segments the customer is in now (kept within seconds of every change)"
    )
    coupons_available: int
    badges: list[BadgeOut] = Field(default_factory=list, description="badges earned, first earned first")
    scores: ScoresOut | None = Field(
        default=None, description="RFM scores; null for a customer without purchases (or not scored yet)"
    )
    created_at: datetime
    enrolled_at: datetime | None
    merged_from: list[str] | None = None
    review: str | None = Field(
        default=None, description="why the profile is flagged for review (it stops merging until then)"
    )
    links_ignored: list[LinkOut] | None = Field(
        default=None,
        description="enrolment only: links given that are placeholders (test@test.com, 0000 ...), which "
        "identify nobody and were not attached",
    )

    @classmethod
    def of(
        cls,
        c: Customer,
        programme: Programme,
        now: datetime,
        requested_id: str | None = None,
        segments: Sequence[str] = (),
    ) -> CustomerView:
        merged_from = None
        if requested_id and requested_id != c.customer_id:
            merged_from = [requested_id]
        return cls(
            customer_id=c.customer_id,
            member=c.member,
            status=c.shown_status,
            confirm_by=c.confirm_by if c.pending_confirmation else None,
            profile=ProfileOut(
                first_name=c.profile.first_name,
                last_name=c.profile.last_name,
                birthday=c.profile.birthday,
                country=c.profile.country,
                timezone=c.profile.timezone,
                favourite_store_id=c.profile.favourite_store_id,
                address=AddressOut.of(c.profile.address),
                attributes=c.profile.attributes,
            ),
            consents=ConsentsOut(email=c.consents.email, sms=c.consents.sms, mail=c.consents.mail),
            links=[LinkOut(type=link.type, value=link.value) for link in sorted(c.links, key=_link_order)],
            card=c.card.value if c.card else None,
            tier=effective_tier(c, programme, now),
            tier_progress=TierProgressOut.of(tier_progress(c, programme, now)),
            points=PointsOut(
                available=c.points.available, pending=c.points.pending, lifetime=c.points.lifetime
            ),
            accounts=[],
            stats=StatsOut(
                transactions=c.stats.transactions,
                spend=money(c.stats.spend),
                currency=programme.currency,
                first_purchase_at=c.stats.first_purchase_at,
                last_purchase_at=c.stats.last_purchase_at,
            ),
            segments=sorted(segments),
            coupons_available=0,
            badges=[
                BadgeOut(badge_id=b, earned_at=at)
                for b, at in sorted(c.badges.items(), key=lambda kv: (kv[1], kv[0]))
            ],
            scores=ScoresOut.of(c.scores),
            created_at=c.created_at,
            enrolled_at=c.enrolled_at,
            merged_from=merged_from,
            review=c.review,
        )
