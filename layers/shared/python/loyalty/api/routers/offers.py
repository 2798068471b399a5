from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import Router

from loyalty.api import docs
from loyalty.api.http import cursor_in, cursor_out, idempotency, ok, page, reply, stored
from loyalty.api.models.cart import PriceGroupMemberOut
from loyalty.api.models.common import PathId
from loyalty.api.models.rewards import RewardIn, RewardList, RewardOut
from loyalty.api.routers import gamification, segments
from loyalty.bootstrap import container
from loyalty.domain.errors import ValidationFailed
from loyalty.domain.models import Model
from loyalty.domain.offers import Offer, PriceGroup

if TYPE_CHECKING:
    from loyalty.domain.replay import StoredResponse
    from loyalty.domain.rewards import Reward

TAGS = ["offers"]


class OfferList(Model):
    items: list[Offer]
    next_cursor: str | None


class PriceGroupList(Model):
    items: list[PriceGroup]
    next_cursor: str | None


def _offer(offer: Offer) -> StoredResponse:
    return stored(offer)


def _created_offer(offer: Offer) -> StoredResponse:
    return stored(offer, 201)


def _created_reward(reward: Reward) -> StoredResponse:
    # A new reward has given nothing away yet: all of its stock remains.
    return stored(RewardOut.of(reward, reward.stock), 201)


def make_router() -> Router:  # noqa: C901 - the routes are nested functions
    """A fresh router: one per handler instance, because powertools keeps request state on it."""
    router = Router()

    @router.post(
        "/v1/admin/offers",
        summary="Create an offer (offer_id generated when left out)",
        tags=TAGS,
        responses={
            201: docs.model(Offer, "the offer, with its offer_id"),
            409: docs.PROBLEM,
            422: docs.PROBLEM,
        },
    )
    def create_offer(body: Offer):
        return reply(
            _created_offer(container().offers.create_offer(body, idempotency(router, _created_offer)))
        )

    @router.get("/v1/admin/offers", summary="List offers", tags=TAGS)
    def list_offers(
        limit: Annotated[int | None, Query(ge=1, le=200)] = None,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
    ) -> OfferList:
        offers, next_cursor = container().offers.list_offers(page(limit), cursor_in(router, cursor))
        return OfferList(items=offers, next_cursor=cursor_out(router, next_cursor))

    @router.get(
        "/v1/admin/offers/<offer_id>",
        summary="An offer",
        tags=TAGS,
        responses={200: docs.model(Offer, "the offer"), 404: docs.PROBLEM},
    )
    def get_offer(offer_id: PathId):
        return ok(container().offers.get_offer(offer_id))

    @router.put(
        "/v1/admin/offers/<offer_id>",
        summary="Replace an offer (tills see the change within 10 s)",
        tags=TAGS,
        responses={200: docs.model(Offer, "the offer"), 404: docs.PROBLEM, 422: docs.PROBLEM},
    )
    def replace_offer(offer_id: PathId, body: Offer):
        if "offer_id" not in body.model_fields_set:
            body = body.model_copy(update={"offer_id": offer_id})  # the path names it
        elif body.offer_id != offer_id:
            raise ValidationFailed.at(("body", "offer_id"), "must match the path")
        return ok(container().offers.replace_offer(body))

    @router.post(
        "/v1/admin/offers/<offer_id>/pause",
        summary="Pause an offer",
        tags=TAGS,
        responses={200: docs.model(Offer, "the offer"), 404: docs.PROBLEM},
    )
    def pause_offer(offer_id: PathId):
        return reply(_offer(container().offers.set_status(offer_id, "paused", idempotency(router, _offer))))

    @router.post(
        "/v1/admin/offers/<offer_id>/activate",
        summary="Activate a paused or draft offer",
        tags=TAGS,
        responses={200: docs.model(Offer, "the offer"), 404: docs.PROBLEM},
    )
    def activate_offer(offer_id: PathId):
        return reply(_offer(container().offers.set_status(offer_id, "active", idempotency(router, _offer))))

    def with_remaining(reward: Reward) -> RewardOut:
        return RewardOut.of(reward, container().offers.reward_stock_left(reward))

    @router.post(
        "/v1/admin/rewards",
        summary="Add a reward to the catalogue (points price, validity, stock where limited)",
        tags=TAGS,
        responses={201: docs.model(RewardOut, "the reward"), 409: docs.PROBLEM, 422: docs.PROBLEM},
    )
    def create_reward(body: RewardIn):
        created = container().offers.put_reward(
            body.to_reward(), create=True, idempotency=idempotency(router, _created_reward)
        )
        return reply(_created_reward(created))

    @router.get("/v1/admin/rewards", summary="List rewards, each with what remains of its stock", tags=TAGS)
    def list_rewards(
        limit: Annotated[int | None, Query(ge=1, le=200)] = None,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
    ) -> RewardList:
        rewards, next_cursor = container().offers.list_rewards(page(limit), cursor_in(router, cursor))
        left = container().offers.rewards_left(rewards)
        return RewardList(
            items=[RewardOut.of(r, left[r.reward_id]) for r in rewards],
            next_cursor=cursor_out(router, next_cursor),
        )

    @router.get(
        "/v1/admin/rewards/<reward_id>",
        summary="A reward, with what remains of its stock",
        tags=TAGS,
        responses={200: docs.model(RewardOut, "the reward"), 404: docs.PROBLEM},
    )
    def get_reward(reward_id: PathId):
        return ok(with_remaining(container().offers.get_reward(reward_id)))

    @router.put(
        "/v1/admin/rewards/<reward_id>",
        summary="Replace a reward (price, validity, stock, pause)",
        tags=TAGS,
        responses={200: docs.model(RewardOut, "the reward"), 404: docs.PROBLEM, 422: docs.PROBLEM},
    )
    def replace_reward(reward_id: PathId, body: RewardIn):
        if body.reward_id != reward_id:
            raise ValidationFailed.at(("body", "reward_id"), "must match the path")
        return ok(with_remaining(container().offers.put_reward(body.to_reward(), create=False)))

    @router.get("/v1/admin/price-groups", summary="List price groups", tags=TAGS)
    def list_price_groups(
        limit: Annotated[int | None, Query(ge=1, le=200)] = None,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
    ) -> PriceGroupList:
        groups, next_cursor = container().offers.list_price_groups(page(limit), cursor_in(router, cursor))
        return PriceGroupList(items=groups, next_cursor=cursor_out(router, next_cursor))

    @router.get(
        "/v1/admin/price-groups/<group_id>",
        summary="A price group",
        tags=TAGS,
        responses={200: docs.model(PriceGroup, "the group"), 404: docs.PROBLEM},
    )
    def get_price_group(group_id: PathId):
        return ok(container().offers.get_price_group(group_id))

    @router.put(
        "/v1/admin/price-groups/<group_id>",
        summary="Create or replace a price group (who belongs by tier or attribute, and its prices)",
        tags=TAGS,
        responses={
            201: docs.model(PriceGroup, "created"),
            200: docs.model(PriceGroup, "replaced"),
            422: docs.PROBLEM,
        },
    )
    def put_price_group(group_id: PathId, body: PriceGroup):
        if body.group_id != group_id:
            raise ValidationFailed.at(("body", "group_id"), "must match the path")
        group, created = container().offers.put_price_group(body)
        return ok(group, 201 if created else 200)

    @router.put(
        "/v1/admin/price-groups/<group_id>/members/<customer_id>",
        summary="Put a customer in a price group (staff, VIP, club ...)",
        tags=TAGS,
        responses={200: docs.model(PriceGroupMemberOut, "done"), 404: docs.PROBLEM},
    )
    def add_member(group_id: PathId, customer_id: PathId):
        container().offers.get_price_group(group_id)
        customer = container().customers.set_price_group(customer_id, group_id, True)
        return ok(PriceGroupMemberOut(group_id=group_id, customer_id=customer.customer_id, member=True))

    @router.delete(
        "/v1/admin/price-groups/<group_id>/members/<customer_id>",
        summary="Take a customer out of a price group",
        tags=TAGS,
        responses={200: docs.model(PriceGroupMemberOut, "done"), 404: docs.PROBLEM},
    )
    def remove_member(group_id: PathId, customer_id: PathId):
        container().offers.get_price_group(group_id)
        customer = container().customers.set_price_group(customer_id, group_id, False)
        return ok(PriceGroupMemberOut(group_id=group_id, customer_id=customer.customer_id, member=False))

    gamification.add_routes(router)
    segments.add_routes(router)
    return router
