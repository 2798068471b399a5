"""Typed pieces of the OpenAPI `responses` that the routers declare."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from loyalty.api.problems import PROBLEM_JSON

# The problem document's schema: the committed document names it `Problem` (loyalty.api.openapi).
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}

PROBLEM: OpenAPIResponse = {
    "description": "RFC 9457 problem document",
    "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
}


def model(schema: Any, description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": schema}}}


def empty(description: str) -> OpenAPIResponse:
    return {"description": description}
