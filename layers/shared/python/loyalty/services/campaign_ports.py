"""The seams between the campaign services: who reads definitions, who actions a customer.

- `CampaignCatalogue` (loyalty.services.campaigns): the saved campaigns.
- `CampaignActor` (loyalty.services.campaign_actions): one customer on one occasion — decided,
  then written in one conditional transaction (`act`), or only decided (`evaluate`, the dry run).
  Runs (loyalty.services.campaign_runs), triggers (loyalty.services.campaign_triggers) and the dry
  run all go through it, so the rules for who gets what live in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from loyalty.domain.campaigns import ActResult, Campaign, Occasion


class CampaignCatalogue(Protocol):
    def get(self, campaign_id: str) -> Campaign:
        """Raises CampaignNotFound."""
        ...

    def triggered(self) -> list[Campaign]:
        """The active campaigns with an event, birthday or inactivity trigger (may be cached for a
        few seconds by the caller's process)."""
        ...


class CampaignActor(Protocol):
    def act(self, campaign: Campaign, occasion: Occasion, customer_id: str) -> ActResult:
        """Decide and, when the customer is actioned or held out, write everything at once, keyed
        by (campaign, occasion, customer). Called again for the same key it writes nothing and
        answers the recorded outcome with `first_time=False`."""
        ...

    def evaluate(
        self, campaign: Campaign, occasion: Occasion, customer_ids: Sequence[str]
    ) -> list[ActResult]:
        """What `act` would do to each customer, in order (the budget and max_recipients consumed
        as it goes), without writing anything: the dry run."""
        ...
