"""Triggered campaigns: one bus event in, each matching active campaign's actions for its customer.

The `campaign-triggers` function gets every event of `TRIGGER_EVENTS` from a rule on the bus
(resources.CAMPAIGN_TRIGGER). For each active triggered campaign the event starts
(loyalty.domain.campaign_triggers: detail-type and `where`, or the entry into a birthday or
inactivity campaign's derived segment) it works out the occasion, checks the audience (members
only; the audience segment, from the stored memberships, else evaluated live) and hands the
customer to `CampaignActor.act`, which writes everything at once keyed by (campaign, occasion,
customer): an event delivered twice, or a second enrolment event, gives nothing more.

The active triggered campaigns are read once every few seconds per warm function, not per event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from loyalty.domain.campaign_triggers import (
    TriggerEvent,
    TriggerFacts,
    audience_skip,
    matches,
    needs_facts,
    occasion_for,
)
from loyalty.domain.campaigns import ActResult, Campaign
from loyalty.services.campaign_ports import CampaignActor, CampaignCatalogue

# How stale the list of active triggered campaigns may be in a warm function: a campaign activated,
# paused or edited acts (or stops) on events within this many seconds.
CATALOGUE_SECONDS = 5.0


class CustomerTriggerFacts(Protocol):
    def facts(self, customer_id: str) -> TriggerFacts | None:
        """The customer's membership, segments, birthday and last purchase; None when there is no
        live profile (erased, merged away, unknown: the actor decides what that means)."""
        ...


@dataclass(frozen=True)
class Triggered:
    """What one campaign did with one event: the result, or why nothing was asked of the actor."""

    campaign_id: str
    occasion: str | None
    result: ActResult | None


class CampaignTriggers:
    def __init__(
        self,
        *,
        catalogue: CampaignCatalogue,
        actor: CampaignActor,
        facts: CustomerTriggerFacts,
        live_segments: Callable[[str], frozenset[str]] | None = None,
        ttl: float = CATALOGUE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalogue = catalogue
        self._actor = actor
        self._facts = facts
        # The segments a from-scratch evaluation puts the customer in now: asked only when the stored
        # memberships lack the audience segment, as the segments job may not have caught up yet with
        # the very event being handled (an enrolment, a sale that brings them into the audience).
        self._live_segments = live_segments
        self._ttl = ttl
        self._monotonic = monotonic
        self._cached: tuple[float, list[Campaign]] | None = None

    def campaigns(self) -> list[Campaign]:
        """The active triggered campaigns, at most `ttl` seconds old."""
        now = self._monotonic()
        if self._cached is None or now - self._cached[0] >= self._ttl:
            live = [c for c in self._catalogue.triggered() if c.live and c.triggered]
            self._cached = (now, live)
        return self._cached[1]

    def handle(self, envelope: Mapping[str, Any]) -> list[Triggered]:
        """Act on one bus event (as EventBridge hands it to Lambda). Errors propagate: the
        invocation fails and is retried, and every effect already written is keyed."""
        event = TriggerEvent.from_bus(envelope)
        if event is None:
            return []
        matching = [c for c in self.campaigns() if matches(c, event)]
        if not matching:
            return []
        facts = self._facts.facts(event.customer_id) if any(needs_facts(c) for c in matching) else None
        return [self._one(campaign, event, facts) for campaign in matching]

    def _one(self, campaign: Campaign, event: TriggerEvent, facts: TriggerFacts | None) -> Triggered:
        occasion = occasion_for(campaign, event, facts)
        if occasion is None:
            return Triggered(campaign.campaign_id, None, None)
        customer_id = event.customer_id
        if facts is not None:
            skip = audience_skip(campaign, facts)
            if skip == "not_in_audience" and self._live_segments is not None:
                live = self._live_segments(facts.customer_id)
                skip = audience_skip(campaign, replace(facts, segments=facts.segments | live))
            if skip is not None:
                return Triggered(campaign.campaign_id, occasion.key, ActResult(customer_id, "skipped", skip))
            customer_id = facts.customer_id  # the survivor, when the event named a merged-away id
        return Triggered(campaign.campaign_id, occasion.key, self._actor.act(campaign, occasion, customer_id))
