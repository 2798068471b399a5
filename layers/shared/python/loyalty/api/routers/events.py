from __future__ import annotations

from aws_lambda_powertools.event_handler.router import Router

from loyalty.api import docs
from loyalty.api.http import idempotency, principal, reply, stored
from loyalty.api.models.events import EventBatchIn, EventsAcceptedOut
from loyalty.bootstrap import container
from loyalty.domain.replay import StoredResponse
from loyalty.observability import count
from loyalty.services.customer_events import IngestResult

TAGS = ["events"]


def _stored(result: IngestResult) -> StoredResponse:
    return stored(EventsAcceptedOut.of(result), 202)


def make_router() -> Router:
    """A fresh router: one per handler instance, because powertools keeps request state on it."""
    router = Router()

    @router.post(
        "/v1/events",
        summary="Record customer events (up to 100): each checked alone, event_id deduplicated for ever",
        tags=TAGS,
        responses={
            202: docs.model(EventsAcceptedOut, "what was kept, what was a duplicate, what was rejected"),
            403: docs.PROBLEM,
            409: docs.PROBLEM,
            413: docs.PROBLEM,
            422: docs.PROBLEM,
        },
    )
    def record(body: EventBatchIn):
        good, bad = body.parsed()
        result = container().events.record(good, principal(router), bad, idempotency(router, _stored))
        count("EventsAccepted", result.accepted)
        if result.duplicates:
            count("EventsDuplicate", result.duplicates)
        return reply(_stored(result))

    return router
