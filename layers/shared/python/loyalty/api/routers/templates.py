"""Routes of message templates (served by the messaging function)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import Router

from loyalty.api import docs
from loyalty.api.http import cursor_in, cursor_out, no_content, ok, page
from loyalty.api.models.common import PathId
from loyalty.api.models.templates import TemplateList, TemplateOut, TemplatePut
from loyalty.api.routers import messages
from loyalty.bootstrap import container
from loyalty.domain.programme import TemplateId

TAGS = ["messaging"]


def make_router() -> Router:
    """A fresh router: one per handler instance, because powertools keeps request state on it."""
    router = Router()

    @router.put(
        "/v1/admin/templates/<template_id>",
        summary="Create or replace a message template (refused with a 422 when it cannot render)",
        tags=TAGS,
        responses={
            201: docs.model(TemplateOut, "created"),
            200: docs.model(TemplateOut, "replaced"),
            409: docs.PROBLEM,
            422: docs.PROBLEM,
        },
    )
    def put_template(template_id: TemplateId, body: TemplatePut):
        template, created = container().templates.put(body.to_domain(template_id))
        return ok(TemplateOut.of(template), 201 if created else 200)

    @router.get("/v1/admin/templates", summary="List message templates", tags=TAGS)
    def list_templates(
        limit: Annotated[int | None, Query(ge=1, le=200)] = None,
        cursor: Annotated[str | None, Query(max_length=1024)] = None,
    ) -> TemplateList:
        templates, next_cursor = container().templates.list(page(limit), cursor_in(router, cursor))
        return TemplateList(
            items=[TemplateOut.of(t) for t in templates], next_cursor=cursor_out(router, next_cursor)
        )

    @router.get(
        "/v1/admin/templates/<template_id>",
        summary="A message template",
        tags=TAGS,
        responses={200: docs.model(TemplateOut, "the template"), 404: docs.PROBLEM},
    )
    def get_template(template_id: PathId):
        return ok(TemplateOut.of(container().templates.get(template_id)))

    @router.delete(
        "/v1/admin/templates/<template_id>",
        summary="Delete a message template (409 while the programme uses it)",
        tags=TAGS,
        responses={204: docs.empty("deleted"), 404: docs.PROBLEM, 409: docs.PROBLEM},
    )
    def delete_template(template_id: PathId):
        container().templates.delete(template_id)
        return no_content()

    messages.add_routes(router)  # unsubscribe links and print files: the same function serves them
    return router
