from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import Router

from loyalty.api import docs
from loyalty.api.http import (
    cursor_in,
    cursor_out,
    idempotency,
    no_content,
    ok,
    page,
    principal,
    reply,
    stored,
)
from loyalty.api.models.common import PathId, PathLinkType, PathLinkValue
from loyalty.api.models.customers import CustomerCreate, CustomerPatch, CustomerView, LinkAdd, LinkOut
from loyalty.api.models.merges import MergeAccepted
from loyalty.api.models.timeline import TimelineItem, TimelinePage
from loyalty.api.routers import merges
from loyalty.bootstrap import container
from loyalty.observability import count

if TYPE_CHECKING:
    from loyalty.domain.replay import StoredResponse
    from loyalty.services.customers import CustomerResult

TAGS = ["customers"]


def _render(result: CustomerResult, created_status: int = 201) -> StoredResponse:
    if result.merge is not None:
        return merges.render_accepted(result.merge)
    # A new profile is in no segment yet (its evaluation follows its enrolment event).
    segments = (
        []
        if result.created
        else sorted(container().segment_membership.memberships(result.customer.customer_id))
    )
    view = CustomerView.of(
        result.customer, container().programme.current(), container().clock.now(), segments=segments
    )
    if result.links_ignored:
        view.links_ignored = [LinkOut(type=link.type, value=link.value) for link in result.links_ignored]
    return stored(view, created_status if result.created else 200)


def make_router() -> Router:
    """A fresh router: one per handler instance, because powertools keeps request state on it."""
    router = Router()

    @router.post(
        "/v1/customers",
        summary="Enrol a member or record an identified non-member",
        tags=TAGS,
        responses={
            201: docs.model(CustomerView, "a new customer"),
            200: docs.model(CustomerView, "an existing non-member, now enrolled (history kept)"),
            409: docs.PROBLEM,
            422: docs.PROBLEM,
        },
    )
    def enrol(body: CustomerCreate):
        result = container().customers.enrol(
            body.to_command(), principal(router), idempotency(router, _render)
        )
        if result.created or body.member:
            count("CustomersEnrolled" if body.member else "NonMembersIdentified")
        return reply(_render(result))

    @router.get(
        "/v1/customers",
        summary="Look a customer up by a link (card, email, phone, ext:<system>)",
        tags=TAGS,
        responses={200: docs.model(CustomerView, "the customer"), 404: docs.PROBLEM, 422: docs.PROBLEM},
    )
    def lookup(
        link_type: Annotated[str, Query(min_length=1, max_length=40)],
        link_value: Annotated[str, Query(min_length=1, max_length=254)],
    ):
        customer = container().customers.lookup(link_type, link_value)
        segments = sorted(container().segment_membership.memberships(customer.customer_id))
        return ok(
            CustomerView.of(
                customer, container().programme.current(), container().clock.now(), segments=segments
            )
        )

    @router.get(
        "/v1/customers/<customer_id>",
        summary="The 360° view of a customer (a merged-away id answers with its survivor)",
        tags=TAGS,
        responses={200: docs.model(CustomerView, "the customer"), 404: docs.PROBLEM},
    )
    def get_customer(customer_id: PathId):
        # The profile and its memberships in one BatchGetItem (a merged-away id: its survivor's).
        customer, segments = container().segment_membership.customer_with_segments(customer_id)
        return ok(
            CustomerView.of(
                customer,
                container().programme.current(),
                container().clock.now(),
                requested_id=customer_id,
                segments=segments,
            )
        )

    @router.patch(
        "/v1/customers/<customer_id>",
        summary="Update profile fields and consents, or enrol (member: true)",
        tags=TAGS,
        responses={
            200: docs.model(CustomerView, "the updated customer"),
            404: docs.PROBLEM,
            422: docs.PROBLEM,
        },
    )
    def update_customer(customer_id: PathId, body: CustomerPatch):
        result = container().customers.update(
            customer_id, body.to_patch(), idempotency(router, _render), principal(router)
        )
        return reply(_render(result))

    @router.post(
        "/v1/customers/<customer_id>/links",
        summary="Attach a link; on_conflict decides what happens when another customer has it",
        tags=TAGS,
        responses={
            201: docs.model(CustomerView, "the link was attached (or moved)"),
            200: docs.model(CustomerView, "the customer already had the link"),
            202: docs.model(MergeAccepted, "on_conflict merge: the other profile is being merged in"),
            404: docs.PROBLEM,
            409: docs.PROBLEM,
            422: docs.PROBLEM,
        },
    )
    def add_link(customer_id: PathId, body: LinkAdd):
        from loyalty.services.customer_links import RawLink  # the services load on first use

        result = container().customer_links.add_link(
            customer_id,
            RawLink(body.type, body.value),
            body.on_conflict,
            idempotency(router, _render),
            principal(router),
        )
        return reply(_render(result))

    @router.delete(
        "/v1/customers/<customer_id>/links/<type>/<value>",
        summary="Detach a link",
        tags=TAGS,
        responses={204: docs.empty("detached"), 404: docs.PROBLEM},
    )
    def remove_link(customer_id: PathId, type: PathLinkType, value: PathLinkValue):
        container().customer_links.remove_link(customer_id, type, value)
        return no_content()

    @router.get(
        "/v1/customers/<customer_id>/timeline",
        summary="Everything that happened to a customer, newest first (a merged-away id: its survivor's)",
        tags=TAGS,
        responses={
            200: docs.model(TimelinePage, "a page of the timeline"),
            400: docs.PROBLEM,
            404: docs.PROBLEM,
            422: docs.PROBLEM,
        },
    )
    def timeline(
        customer_id: PathId,
        types: Annotated[
            str | None,
            Query(
                max_length=200,
                description="comma-separated kinds: transaction, event, points, redemption, tier, coupon, "
                "message, badge, challenge, merge",
            ),
        ] = None,
        limit: Annotated[int | None, Query(ge=1, le=200)] = None,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
    ) -> TimelinePage:
        items, next_cursor = container().timeline.page(
            customer_id, types, page(limit), cursor_in(router, cursor)
        )
        return TimelinePage(
            items=[TimelineItem.model_validate(i) for i in items], next_cursor=cursor_out(router, next_cursor)
        )

    merges.register(router)
    return router
