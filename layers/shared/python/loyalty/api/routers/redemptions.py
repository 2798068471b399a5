from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.event_handler.router import Router

from loyalty.api import docs
from loyalty.api.http import idempotency, ok, principal, reply, request_fingerprint, stored
from loyalty.api.models.common import PathId
from loyalty.api.models.redemptions import PointsHoldIn, RedemptionIn, RedemptionOut, render_redemption
from loyalty.api.models.stored_value import PointsHoldOut, StoreQuery
from loyalty.bootstrap import container
from loyalty.observability import count

if TYPE_CHECKING:
    from loyalty.adapters.stored_value import HoldRecord
    from loyalty.domain.customers import Customer
    from loyalty.domain.replay import StoredResponse
    from loyalty.services.redemptions import Redemption

TAGS = ["redemptions"]


def _redeemed(result: Redemption) -> StoredResponse:
    return stored(RedemptionOut.of(result.record, result.balance_after), 201)


def _reversed(result: Redemption) -> StoredResponse:
    return stored(RedemptionOut.of(result.record, result.balance_after))


def _points_held(result: tuple[HoldRecord, Customer]) -> StoredResponse:
    hold, customer = result
    return stored(PointsHoldOut.of(hold, container().clock.now(), customer), 201)


def make_router() -> Router:
    """A fresh router: one per handler instance, because powertools keeps request state on it."""
    router = Router()

    @router.post(
        "/v1/redemptions",
        summary="Spend points (lots that expire first) or a coupon; exactly once per redemption_id",
        tags=TAGS,
        responses={
            201: docs.model(RedemptionOut, "redeemed (or the first answer, replayed)"),
            404: docs.PROBLEM,  # reward-not-found: no reward with that reward_id
            409: docs.PROBLEM,
            422: docs.PROBLEM,
        },
    )
    def redeem(body: RedemptionIn):
        fingerprint = request_fingerprint("POST", "/v1/redemptions", router.current_event.body)
        result = container().redemptions.redeem(
            body.to_command(fingerprint),
            principal(router),
            idempotency(router, _redeemed),
            render=render_redemption,
        )
        if result.record.kind == "points":
            count("PointsRedeemed", result.record.points)
        return reply(_redeemed(result))

    @router.post(
        "/v1/customers/<customer_id>/holds",
        summary="Hold points for a web order: captured on shipment, released on cancellation, free on expiry",
        tags=TAGS,
        responses={201: docs.model(PointsHoldOut, "held"), 409: docs.PROBLEM, 422: docs.PROBLEM},
    )
    def hold_points(customer_id: PathId, body: PointsHoldIn):
        held = container().redemptions.hold_points(
            customer_id,
            body.hold_id,
            body.points,
            body.expires_in_seconds,
            principal(router),
            idempotency(router, _points_held),
        )
        return reply(_points_held(held))

    @router.get(
        "/v1/redemptions/<redemption_id>",
        summary="A redemption of this store (an admin key names the store_id)",
        tags=TAGS,
        responses={
            200: docs.model(RedemptionOut, "the redemption"),
            403: docs.PROBLEM,
            404: docs.PROBLEM,
            422: docs.PROBLEM,
        },
    )
    def get_redemption(redemption_id: PathId, store_id: StoreQuery = None):
        record = container().redemptions.get(redemption_id, principal(router), store_id)
        return ok(RedemptionOut.of(record))

    @router.post(
        "/v1/redemptions/<redemption_id>/reverse",
        summary="Put back what a redemption of this store took (a cancelled order); idempotent",
        tags=TAGS,
        responses={
            200: docs.model(RedemptionOut, "reversed"),
            403: docs.PROBLEM,
            404: docs.PROBLEM,
            422: docs.PROBLEM,
        },
    )
    def reverse(redemption_id: PathId, store_id: StoreQuery = None):
        result = container().redemptions.reverse(
            redemption_id, principal(router), store_id, idempotency(router, _reversed)
        )
        return reply(_reversed(result))

    return router
