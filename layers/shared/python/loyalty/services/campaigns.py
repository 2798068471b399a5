"""Campaign definitions: create or replace (checked against what they name), read, list, delete,
and what a saved campaign keeps in step with it — its EventBridge Scheduler schedule and the derived
segment of a birthday or inactivity trigger. Also the catalogue the triggers and runs read
(services/campaign_ports.CampaignCatalogue).

Order of a PUT: check the body (422 naming each field), save the definition (conditional on the
version read, and on its segment still existing), then bring the derived segment and the schedule in
line with it. The definition is the truth: the schedule only wakes the campaign-schedule function,
which starts a run only if the campaign is (still) an active schedule campaign; a PUT that failed
after its save is repaired by the next PUT of the campaign.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from loyalty.adapters.campaign_definitions import (
    CampaignExists,
    CampaignRepository,
    SegmentGone,
    StaleCampaign,
)
from loyalty.domain.campaign_definitions import (
    Named,
    Schedule,
    check_transition,
    has_trigger_segment,
    named_segments,
    next_run_at,
    problems,
    schedule_of,
    template_misfit,
    trigger_rule,
    trigger_segment_id,
    trigger_segment_wanted,
)
from loyalty.domain.campaigns import Campaign, CampaignDefinition, CouponAction, MessageAction
from loyalty.domain.errors import (
    CampaignNotFound,
    FieldError,
    SegmentInUse,
    SegmentNotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from loyalty.domain.ids import is_plausible_id
from loyalty.domain.segment_definitions import Use
from loyalty.domain.templates import Template
from loyalty.services.ports import Clock
from loyalty.services.segments import TRIGGER_SEGMENT_OWNER as OWNER
from loyalty.services.segments import parse_checked

if TYPE_CHECKING:
    from loyalty.adapters.offers import OfferRepository
    from loyalty.adapters.templates import TemplateRepository
    from loyalty.services.segments import SegmentService

log = logging.getLogger(__name__)


class CampaignSchedules(Protocol):
    """EventBridge Scheduler: one schedule per active schedule campaign (adapters/campaign_schedules)."""

    def put(self, campaign_id: str, schedule: Schedule) -> None:
        """Create or update the campaign's schedule."""
        ...

    def delete(self, campaign_id: str) -> None:
        """Delete it; nothing happens when there is none."""
        ...


@dataclass(frozen=True)
class CampaignView:
    campaign: Campaign
    next_run_at: datetime | None
    trigger_segment_id: str | None


class CampaignService:
    def __init__(
        self,
        *,
        repo: CampaignRepository,
        segments: SegmentService,
        offers: OfferRepository,
        templates: TemplateRepository,
        schedules: Callable[[], CampaignSchedules],
        clock: Clock,
    ) -> None:
        self._repo = repo
        self._segments = segments
        self._offers = offers
        self._templates = templates
        self._schedules = schedules  # built when a schedule campaign first needs Scheduler
        self._clock = clock

    # ---- definitions ------------------------------------------------------------------------
    def put(self, campaign_id: str, definition: CampaignDefinition) -> tuple[Campaign, bool]:
        """Create (True) or replace. 422 naming each field that names nothing or cannot work;
        409 (CampaignNotRunnable) for an ended campaign."""
        for _ in range(5):
            current = self._repo.get(campaign_id)
            if current is not None:
                check_transition(current.status, definition.status, campaign_id)
            now = self._clock.now()
            self._check(definition, current, now)
            rule = self._trigger_rule(definition)
            campaign = Campaign(
                **definition.model_dump(),
                campaign_id=campaign_id,
                version=1 if current is None else current.version + 1,
                created_at=current.created_at if current else now,
                updated_at=now,
            )
            try:
                self._repo.save(campaign, None if current is None else current.version)
            except (CampaignExists, StaleCampaign):
                continue
            except SegmentGone:
                raise _no_segment(campaign.audience.segment_id) from None
            self._keep_in_step(campaign, current, rule)
            return campaign, current is None
        raise ServiceUnavailable("the campaign kept changing; retry")

    def get(self, campaign_id: str) -> Campaign:
        """CampaignCatalogue.get: raises CampaignNotFound."""
        campaign = self._repo.get(campaign_id) if is_plausible_id(campaign_id) else None
        if campaign is None:
            raise CampaignNotFound(f"no campaign {campaign_id[:64]!r}", campaign_id=campaign_id[:64])
        return campaign

    def view(self, campaign: Campaign) -> CampaignView:
        return CampaignView(
            campaign,
            next_run_at(campaign, self._clock.now()),
            trigger_segment_id(campaign.campaign_id) if trigger_segment_wanted(campaign) else None,
        )

    def list_campaigns(self, limit: int, cursor: str | None) -> tuple[list[Campaign], str | None]:
        return self._repo.list_page(limit, cursor)

    def delete(self, campaign_id: str) -> None:
        """Delete the definition, then its schedule and its derived segment."""
        for _ in range(5):
            campaign = self.get(campaign_id)
            try:
                self._repo.delete(campaign_id, campaign.version)
            except StaleCampaign:
                continue
            if campaign.trigger.type == "schedule":
                self._schedules().delete(campaign_id)
            if has_trigger_segment(campaign):
                self._drop_trigger_segment(campaign_id)
            return
        raise ServiceUnavailable("the campaign kept changing; retry")

    # ---- CampaignCatalogue --------------------------------------------------------------------
    def triggered(self) -> list[Campaign]:
        """The active campaigns with an event, birthday or inactivity trigger."""
        return [c for c in self._repo.all() if c.live and c.triggered]

    # ---- who uses a segment (SegmentService's other_uses) ---------------------------------------
    def segment_uses(self, segment_id: str, _now: datetime) -> list[Use]:
        """Campaigns that have not ended and name the segment (audience, a segment trigger's
        `where`), and the campaign whose derived segment it is."""
        found: list[Use] = []
        for campaign in self._repo.all():
            if campaign.status == "ended":
                continue
            derived = (
                trigger_segment_wanted(campaign) and trigger_segment_id(campaign.campaign_id) == segment_id
            )
            if derived or segment_id in named_segments(campaign):
                found.append(Use("campaign", campaign.campaign_id, campaign.name, campaign.status))
        return found

    # ---- who uses a template (TemplateService's other_checks) -----------------------------------
    def template_misfit(self, template_id: str, template: Template | None) -> str | None:
        """Why saving `template` (None: deleting it) would break a campaign that has not ended."""
        broken = [
            (c, reason)
            for c in self._repo.all()
            if c.status != "ended" and (reason := template_misfit(c, template_id, template)) is not None
        ]
        if not broken:
            return None
        named = ", ".join(f"campaign {c.campaign_id!r}" for c, _ in broken[:10])
        return f"{named} send{'s' if len(broken) == 1 else ''} this template: {broken[0][1]}"

    # ---- checks ---------------------------------------------------------------------------------
    def _check(self, definition: CampaignDefinition, current: Campaign | None, now: datetime) -> None:
        found = problems(definition, self._named(definition), now=now, previous=current)
        if found:
            raise ValidationFailed(_summary(found), errors=found)

    def _named(self, definition: CampaignDefinition) -> Named:
        segments = {s for s in named_segments(definition) if self._segment_exists(s)}
        offers = {
            a.offer_id
            for a in definition.actions
            if isinstance(a, CouponAction) and self._offers.get_document("OFFER", a.offer_id) is not None
        }
        templates = self._templates.get_many(
            a.template_id for a in definition.actions if isinstance(a, MessageAction)
        )
        return Named(segments=segments, offers=offers, templates=templates)

    def _trigger_rule(self, definition: CampaignDefinition) -> dict[str, Any] | None:
        """The derived segment's rule (birthday, inactivity), checked as a segment's rule is."""
        if not has_trigger_segment(definition):
            return None
        audience_rule = None
        if definition.audience.segment_id is not None:
            audience_rule = self._segments.get(definition.audience.segment_id).definition.rule
        rule = trigger_rule(definition, audience_rule)
        try:
            parse_checked(rule)
        except ValidationFailed as exc:  # the audience's rule AND-ed with the trigger: too deep, too big
            raise ValidationFailed.at(
                ("body", "audience", "segment_id"),
                "its rule cannot take the trigger's condition too: "
                + "; ".join(e.msg for e in exc.errors[:3]),
            ) from None
        return rule

    def _segment_exists(self, segment_id: str) -> bool:
        try:
            self._segments.get(segment_id)
        except SegmentNotFound:
            return False
        return True

    # ---- what follows a saved campaign --------------------------------------------------------
    def _keep_in_step(
        self, campaign: Campaign, previous: Campaign | None, rule: dict[str, Any] | None
    ) -> None:
        was = [previous] if previous is not None else []
        if any(has_trigger_segment(c) for c in (campaign, *was)):
            self._keep_trigger_segment(campaign, rule)
        if any(c.trigger.type == "schedule" for c in (campaign, *was)):
            schedule = schedule_of(campaign, self._clock.now())
            if schedule is None:
                self._schedules().delete(campaign.campaign_id)
            else:
                self._schedules().put(campaign.campaign_id, schedule)

    def _keep_trigger_segment(self, campaign: Campaign, rule: dict[str, Any] | None) -> None:
        if rule is None or not trigger_segment_wanted(campaign):
            self._drop_trigger_segment(campaign.campaign_id)
            return
        segment_id = trigger_segment_id(campaign.campaign_id)
        name = f"Trigger of campaign {campaign.name}"[:200]
        description = (
            f"Kept by campaign {campaign.campaign_id!r} while it is active: the customers whose "
            f"{campaign.trigger.type} occasion has come. Change the campaign, not this segment."
        )
        try:
            existing = self._segments.get(segment_id).definition
        except SegmentNotFound:
            existing = None
        if existing is not None and (existing.rule, existing.name, existing.description) == (
            rule,
            name,
            description,
        ):
            return
        self._segments.put(segment_id, name=name, description=description, rule=rule, owner=OWNER)

    def _drop_trigger_segment(self, campaign_id: str) -> None:
        try:
            self._segments.delete(trigger_segment_id(campaign_id))
        except SegmentNotFound:
            pass
        except SegmentInUse:  # an offer or challenge names it too: it stays until they let go
            log.warning("campaign %s: its trigger segment is still in use, kept", campaign_id)


def _no_segment(segment_id: str | None) -> ValidationFailed:
    return ValidationFailed.at(("body", "audience", "segment_id"), f"no segment {segment_id!r}")


def _summary(found: Iterable[FieldError]) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e.loc[1:])}: {e.msg}" for e in found)
