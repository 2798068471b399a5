from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import Router

from loyalty.api import docs
from loyalty.api.http import cursor_in, cursor_out, ok, page, principal, replay_guards, reply, stored
from loyalty.api.models.cart import CartIn, CartOut, CouponIssueIn, CouponList, CouponOut
from loyalty.api.models.common import PathId
from loyalty.bootstrap import container

if TYPE_CHECKING:
    from loyalty.adapters.offers import CouponRecord
    from loyalty.domain.replay import StoredResponse


def _issued(coupon: CouponRecord) -> StoredResponse:
    return stored(CouponOut.of(coupon, container().clock.now()), 201)


def make_router() -> Router:
    """A fresh router: one per handler instance, because powertools keeps request state on it."""
    router = Router()

    @router.post(
        "/v1/cart/evaluate",
        summary="Personal prices, offers, coupons and points for a cart; no side effects",
        description="Safe to call on every cart change. `explain=true` (admin keys only) says for every "
        "offer why it did or did not apply.",
        tags=["cart"],
        responses={200: docs.model(CartOut, "the evaluated cart"), 403: docs.PROBLEM, 422: docs.PROBLEM},
    )
    def evaluate_cart(body: CartIn, explain: Annotated[bool, Query()] = False):
        result = container().cart.evaluate(body.to_command(), principal(router), explain=explain)
        return ok(CartOut.of(result))

    @router.post(
        "/v1/customers/<customer_id>/coupons",
        summary="Issue a personal coupon (a unique, unguessable code) for an offer",
        tags=["coupons"],
        responses={201: docs.model(CouponOut, "the coupon"), 404: docs.PROBLEM, 422: docs.PROBLEM},
    )
    def issue_coupon(customer_id: PathId, body: CouponIssueIn):
        coupon = container().offers.issue_coupon(
            customer_id,
            body.offer_id,
            body.valid_until,
            body.source,
            body.max_uses,
            idempotency=replay_guards(router, _issued, body.request_id),
        )
        return reply(_issued(coupon))

    @router.get(
        "/v1/customers/<customer_id>/coupons", summary="A customer's coupons, newest first", tags=["coupons"]
    )
    def customer_coupons(
        customer_id: PathId,
        limit: Annotated[int | None, Query(ge=1, le=200)] = None,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
    ) -> CouponList:
        customer = container().resolver.get(customer_id)
        coupons, next_cursor = container().offers.coupons_of(
            customer.customer_id, page(limit), cursor_in(router, cursor)
        )
        now = container().clock.now()
        return CouponList(
            items=[CouponOut.of(c, now) for c in coupons], next_cursor=cursor_out(router, next_cursor)
        )

    @router.get(
        "/v1/coupons/<code>",
        summary="A coupon by its code",
        tags=["coupons"],
        responses={200: docs.model(CouponOut, "the coupon"), 404: docs.PROBLEM},
    )
    def get_coupon(code: PathId):
        return ok(CouponOut.of(container().offers.get_coupon(code), container().clock.now()))

    return router
