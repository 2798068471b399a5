"""Routes of identity merges, export and erasure (served by the customers function)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.event_handler.router import Router

from loyalty.api import docs
from loyalty.api.http import idempotency, no_content, ok, principal, reply, stored
from loyalty.api.models.common import PathId
from loyalty.api.models.customers import CustomerView
from loyalty.api.models.merges import CustomerExport, MergeAccepted, MergeCreate, MergeView
from loyalty.bootstrap import container
from loyalty.observability import count

if TYPE_CHECKING:
    from loyalty.domain.merges import MergeRecord
    from loyalty.domain.replay import StoredResponse

TAGS = ["merges"]


def render_accepted(record: MergeRecord) -> StoredResponse:
    return stored(MergeAccepted.of(record), 202)


def register(router: Router) -> None:
    @router.post(
        "/v1/merges",
        summary="Merge one customer into another (queued: 202, then GET /v1/merges/{merge_id})",
        tags=TAGS,
        responses={
            202: docs.model(MergeAccepted, "queued"),
            404: docs.PROBLEM,
            409: docs.PROBLEM,
            422: docs.PROBLEM,
        },
    )
    def request_merge(body: MergeCreate):
        record = container().merge_requests.request(
            body.survivor_id,
            body.merged_id,
            body.reason,
            principal(router),
            idempotency=idempotency(router, render_accepted),
        )
        count("MergesRequested")
        return reply(render_accepted(record))

    @router.get(
        "/v1/merges/<merge_id>",
        summary="A merge: queued, running, done or failed, with what was moved (and its undo)",
        tags=TAGS,
        responses={200: docs.model(MergeView, "the merge"), 404: docs.PROBLEM},
    )
    def get_merge(merge_id: PathId):
        return ok(MergeView.of(container().merge_requests.get(merge_id)))

    @router.post(
        "/v1/merges/<merge_id>/undo",
        summary="Split merged profiles again (202); what happened after the merge stays with the survivor",
        tags=TAGS,
        responses={
            202: docs.model(MergeAccepted, "the undo is queued"),
            404: docs.PROBLEM,
            409: docs.PROBLEM,
        },
    )
    def undo_merge(merge_id: PathId):
        record = container().merge_requests.request_undo(
            merge_id, principal(router), idempotency(router, render_accepted)
        )
        count("MergeUndosRequested")
        return reply(render_accepted(record))

    @router.get(
        "/v1/customers/<customer_id>/export",
        summary="Everything held on the customer (GDPR Art. 15/20), as JSON",
        tags=["privacy"],
        responses={200: docs.model(CustomerExport, "the export"), 404: docs.PROBLEM},
    )
    def export_customer(customer_id: PathId):
        c = container()
        customer = c.resolver.get(customer_id)
        records = c.privacy.export(customer)
        view = CustomerView.of(
            customer,
            c.programme.current(),
            c.clock.now(),
            requested_id=customer_id,
            segments=sorted(c.segment_membership.memberships(customer.customer_id)),
        )
        return ok(CustomerExport(exported_at=c.clock.now(), customer=view, **records))

    @router.delete(
        "/v1/customers/<customer_id>",
        summary="Erase the customer (GDPR Art. 17): personal data and links go, transactions stay anonymised",
        tags=["privacy"],
        responses={204: docs.empty("erased"), 404: docs.PROBLEM, 503: docs.PROBLEM},
    )
    def erase_customer(customer_id: PathId):
        container().privacy.erase(customer_id, principal(router))
        count("CustomersErased")
        return no_content()

    @router.delete(
        "/v1/customers/<customer_id>/review",
        summary="Clear a profile's review flag after a person checked it (it may merge again)",
        tags=TAGS,
        responses={204: docs.empty("cleared (or there was no flag)"), 404: docs.PROBLEM},
    )
    def clear_review(customer_id: PathId):
        container().merge_requests.clear_review(customer_id)
        return no_content()
