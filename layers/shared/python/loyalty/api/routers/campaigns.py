"""Campaign definitions (served by the campaigns function, with the campaigns' runs)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import Router
from pydantic import StringConstraints

from loyalty.api import docs
from loyalty.api.http import cursor_in, cursor_out, no_content, ok, page
from loyalty.api.models.campaigns import CampaignList, CampaignOut, CampaignPut
from loyalty.api.models.common import PathId
from loyalty.api.routers import campaign_runs
from loyalty.bootstrap import container

TAGS = ["campaigns"]
Limit = Annotated[int | None, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=2048)]
# A new campaign's id: as loyalty.domain.campaigns.CampaignId says.
CampaignId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


def add_routes(router: Router) -> None:
    @router.put(
        "/v1/admin/campaigns/<campaign_id>",
        summary="Create or replace a campaign (what it names is checked: a 422 names each field; "
        "an ended campaign is final, 409)",
        tags=TAGS,
        responses={
            201: docs.model(CampaignOut, "created"),
            200: docs.model(CampaignOut, "replaced"),
            409: docs.PROBLEM,
            422: docs.PROBLEM,
        },
    )
    def put_campaign(campaign_id: CampaignId, body: CampaignPut):
        campaigns = container().campaigns
        campaign, created = campaigns.put(campaign_id, body)
        return ok(CampaignOut.of(campaigns.view(campaign)), 201 if created else 200)

    @router.get("/v1/admin/campaigns", summary="List campaigns, in campaign_id order", tags=TAGS)
    def list_campaigns(limit: Limit = None, cursor: Cursor = None) -> CampaignList:
        campaigns = container().campaigns
        found, next_cursor = campaigns.list_campaigns(page(limit), cursor_in(router, cursor))
        return CampaignList(
            items=[CampaignOut.of(campaigns.view(c)) for c in found],
            next_cursor=cursor_out(router, next_cursor),
        )

    @router.get(
        "/v1/admin/campaigns/<campaign_id>",
        summary="A campaign",
        tags=TAGS,
        responses={200: docs.model(CampaignOut, "the campaign"), 404: docs.PROBLEM},
    )
    def get_campaign(campaign_id: PathId):
        campaigns = container().campaigns
        return ok(CampaignOut.of(campaigns.view(campaigns.get(campaign_id))))

    @router.delete(
        "/v1/admin/campaigns/<campaign_id>",
        summary="Delete a campaign, with its schedule and its trigger segment (its runs' records stay)",
        tags=TAGS,
        responses={204: docs.empty("deleted"), 404: docs.PROBLEM},
    )
    def delete_campaign(campaign_id: PathId):
        container().campaigns.delete(campaign_id)
        return no_content()


def make_router() -> Router:
    """A fresh router: one per handler instance, because powertools keeps request state on it.
    The runs' routes (camprun) add themselves here too."""
    router = Router()
    add_routes(router)
    campaign_runs.add_routes(router)
    return router
