"""Saved segments: create or replace (checking the rule), read with their size, list, delete while
nothing uses them, and page through their members."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loyalty.adapters.offers import OfferRepository
from loyalty.adapters.segment_definitions import (
    CatalogueMoved,
    Member,
    SegmentDefinitionRepository,
    SegmentExists,
    StaleSegment,
)
from loyalty.domain.campaign_definitions import TRIGGER_SEGMENT_PREFIX
from loyalty.domain.errors import (
    SegmentInUse,
    SegmentNotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from loyalty.domain.gamification import Challenge
from loyalty.domain.ids import is_plausible_id, new_id
from loyalty.domain.offers import Offer
from loyalty.domain.segment_definitions import SegmentDefinition, Use, blocks_deletion, saved
from loyalty.services.ports import Clock, Idempotency, idempotency_ops, replay_if_recorded
from loyalty.services.segment_passes import purge_message, start_message

if TYPE_CHECKING:
    from loyalty.adapters.idempotency import IdempotencyStore
    from loyalty.services.segment_passes import JobQueue

# Who else may name a segment in an audience: campaigns add their finder here through the
# composition root, `segment_id, now -> uses`, and guard their own saves the way offers do.
UseFinder = Callable[[str, datetime], list[Use]]
# Birthday and inactivity campaigns keep a derived segment each (TRIGGER_SEGMENT_PREFIX + id):
# only the campaign service, saying so with this owner, may write one.
TRIGGER_SEGMENT_OWNER = "campaigns"


@dataclass(frozen=True)
class SegmentView:
    definition: SegmentDefinition
    size: int
    size_as_of: datetime


@dataclass(frozen=True)
class MemberView:
    customer_id: str
    member: bool
    entered_at: datetime | None


def parse_checked(rule: Any) -> None:
    """A 422 naming each bad place of the rule under the request's body, e.g.
    ["body", "rule", "all", 1, "purchased", "within"]."""
    from loyalty.domain.segments import parse_rule  # the rule language's module, first used here

    parse_rule(rule, loc=("body", "rule"))


class SegmentService:
    def __init__(
        self,
        *,
        repo: SegmentDefinitionRepository,
        documents: OfferRepository,
        idempotency: IdempotencyStore,
        clock: Clock,
        queue: Callable[[], JobQueue],
        other_uses: Sequence[UseFinder] = (),
    ) -> None:
        self._repo = repo
        self._documents = documents
        self._idempotency = idempotency
        self._clock = clock
        self._queue = queue  # the segments job's queue, built when a pass first starts
        self._other_uses = tuple(other_uses)

    def put(
        self,
        segment_id: str,
        *,
        name: str,
        description: str,
        rule: Any,
        idempotency: Idempotency = None,
        owner: str | None = None,
    ) -> tuple[SegmentView, bool]:
        """Create (True) or replace; a new or changed rule starts the background pass. A campaign's
        trigger segment is the campaign service's to write (409 for anyone else)."""
        replay_if_recorded(self._idempotency, idempotency)
        if segment_id.startswith(TRIGGER_SEGMENT_PREFIX) and owner != TRIGGER_SEGMENT_OWNER:
            raise SegmentInUse(
                f"{segment_id!r} is kept by a campaign for its birthday or inactivity trigger; change "
                "the campaign instead",
                segment_id=segment_id,
                used_by=[u.as_dict() for u in self.uses(segment_id)],
            )
        parse_checked(rule)
        for _ in range(5):
            found = self._repo.get(segment_id)
            current, size = found if found else (None, 0)
            now = self._clock.now()
            definition = saved(
                current,
                segment_id=segment_id,
                name=name,
                description=description,
                rule=rule,
                now=now,
                new_pass_id=new_id(),
            )
            view = SegmentView(definition, size, now)
            created = current is None
            extra = idempotency_ops(self._idempotency, idempotency, (view, created), now)
            try:
                if current is None:
                    self._repo.create(definition, extra)
                else:
                    self._repo.replace(definition, current.version, extra)
            except (SegmentExists, StaleSegment):
                continue
            if definition.evaluation.status == "pending":
                # A new pass, or one whose start message may have been lost: a duplicate is dropped.
                self._queue().send(start_message(definition))
            return view, created
        raise ServiceUnavailable("the segment kept changing; retry")

    def get(self, segment_id: str) -> SegmentView:
        found = self._repo.get(segment_id) if is_plausible_id(segment_id) else None
        if found is None:
            raise SegmentNotFound(f"no segment {segment_id[:64]!r}", segment_id=segment_id[:64])
        definition, size = found
        return SegmentView(definition, size, self._clock.now())

    def list_segments(self, limit: int, cursor: str | None) -> tuple[list[SegmentView], str | None]:
        definitions, next_cursor = self._repo.list_page(limit, cursor)
        now = self._clock.now()
        sizes = self._repo.sizes([d.segment_id for d in definitions])
        return [SegmentView(d, sizes.get(d.segment_id, 0), now) for d in definitions], next_cursor

    def delete(self, segment_id: str) -> None:
        """Delete it while no offer, challenge (or campaign) that can still apply names it."""
        for _ in range(5):
            definition = self._repo.definition(segment_id) if is_plausible_id(segment_id) else None
            if definition is None:
                raise SegmentNotFound(f"no segment {segment_id[:64]!r}", segment_id=segment_id[:64])
            offers_version = self._repo.offers_version()
            uses = self.uses(segment_id)
            if uses:
                listed = ", ".join(f"{u.kind} {u.id!r}" for u in uses[:10])
                raise SegmentInUse(
                    f"{len(uses)} audience(s) name this segment ({listed}); take it out of them first",
                    segment_id=segment_id,
                    used_by=[u.as_dict() for u in uses],
                )
            try:
                self._repo.delete(segment_id, definition.version, offers_version, self._clock.now())
            except (CatalogueMoved, StaleSegment):
                continue
            self._queue().send(purge_message(segment_id))  # its members leave it in the background
            return
        raise ServiceUnavailable("the segment or the offers kept changing; retry")

    def uses(self, segment_id: str) -> list[Use]:
        now = self._clock.now()
        found: list[Use] = []
        for stored in self._documents.all_documents("OFFER"):
            offer = Offer.model_validate_json(stored.document)
            if segment_id in offer.audience.segments and blocks_deletion(offer.valid_until, now):
                found.append(Use("offer", offer.offer_id, offer.name, offer.status))
        for stored in self._documents.all_documents("CHALLENGE"):
            challenge = Challenge.model_validate_json(stored.document)
            if segment_id in challenge.audience.segments and blocks_deletion(challenge.valid_until, now):
                found.append(Use("challenge", challenge.challenge_id, challenge.name, challenge.status))
        for finder in self._other_uses:
            found.extend(finder(segment_id, now))
        return found

    def members(self, segment_id: str, after: str | None, limit: int) -> tuple[list[MemberView], str | None]:
        """A page of members in customer_id order; the next page starts after the last one."""
        self.get(segment_id)  # 404 for a segment that does not exist
        if after is not None and not is_plausible_id(after):
            raise ValidationFailed.at(("query", "cursor"), "not a cursor of this list")
        members, more = self._repo.members(segment_id, after, limit)
        flags = self._repo.member_flags([m.customer_id for m in members]) if members else {}
        page = [_view(m, flags) for m in members]
        return page, (members[-1].customer_id if more and members else None)


def _view(member: Member, flags: dict[str, bool]) -> MemberView:
    return MemberView(member.customer_id, flags.get(member.customer_id, False), member.entered_at)
