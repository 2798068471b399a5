from __future__ import annotations

import json
from functools import cache
from typing import Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import Router

from loyalty import __version__
from loyalty.api import docs, swagger
from loyalty.domain.models import Model


class Health(Model):
    status: Literal["ok"]
    version: str


@cache
def _openapi_json() -> str:
    # Built on the first request, not at import: a health check never pays for it.
    from loyalty.api.openapi import openapi_document

    return json.dumps(openapi_document())


def make_router() -> Router:
    """A fresh router: one per handler instance, because powertools keeps request state on it."""
    router = Router()

    @router.get("/v1/health", summary="Liveness and version (no key needed)", tags=["health"])
    def health() -> Health:
        return Health(status="ok", version=__version__)

    @router.get(
        "/docs",
        summary="Swagger UI for this API (no key needed; its script and styles come from this API)",
        tags=["health"],
        responses={200: {"description": "the page", "content": {"text/html": {}}}},
    )
    def docs_page():
        return Response(200, swagger.HTML_TYPE, swagger.PAGE, headers={"Cache-Control": "no-cache"})

    @router.get(
        "/docs/<asset>",
        summary="Swagger UI's script and stylesheet",
        tags=["health"],
        responses={
            200: {
                "description": "the asset",
                "content": {"application/javascript": {}, "text/css": {}},
            },
            404: docs.PROBLEM,
        },
    )
    def docs_asset(asset: str):
        body, content_type = swagger.asset(asset)
        return Response(200, content_type, body, headers={"Cache-Control": swagger.ASSET_CACHE})

    @router.get(
        "/openapi.json",
        summary="This API's OpenAPI document (no key needed)",
        tags=["health"],
        responses={200: {"description": "the OpenAPI 3 document", "content": {"application/json": {}}}},
    )
    def openapi():
        return Response(200, "application/json", _openapi_json())

    return router
