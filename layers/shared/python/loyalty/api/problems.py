"""RFC 9457 problem documents: the one mapping from errors to HTTP responses."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.event_handler import Response

from loyalty.domain.errors import DomainError, FieldError

PROBLEM_BASE = "https://loyalty.example.com/problems/"
PROBLEM_JSON = "application/problem+json"


RESERVED = frozenset({"type", "title", "status", "detail", "errors", "instance"})


def problem_body(
    status: int,
    slug: str,
    title: str,
    detail: str,
    errors: Sequence[FieldError] = (),
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = [e.as_dict() for e in errors]
    # Extension members never overwrite the standard ones (an error's own "status" is not the HTTP one).
    body.update({k: v for k, v in (extra or {}).items() if v is not None and k not in RESERVED})
    return body


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    return Response(
        status_code=status,
        content_type=PROBLEM_JSON,
        body=json.dumps(problem_body(status, slug, title, detail, errors, extra), default=str),
        headers=headers,
    )


def from_domain_error(error: DomainError) -> Response:
    headers = {}
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return problem_response(
        error.status,
        error.slug,
        error.title,
        error.detail,
        error.errors,
        headers=headers or None,
        extra=error.extra,
    )


def from_validation_errors(errors: Sequence[dict[str, Any]]) -> Response:
    """pydantic/powertools validation errors: 400 for unreadable JSON, 422 listing every bad field."""
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(
            (e.get("ctx", {}).get("error") for e in errors if e.get("type") == "json_invalid"), None
        )
        return problem_response(
            400,
            "malformed-request",
            "Malformed request",
            f"the body is not valid JSON: {detail or 'unreadable'}",
        )
    field_errors = [
        FieldError(tuple(e.get("loc", ())), _message(e), str(e.get("type", "value_error"))) for e in errors
    ]
    names = ", ".join(".".join(str(p) for p in fe.loc) for fe in field_errors)
    return problem_response(
        422, "validation-failed", "Validation failed", f"invalid fields: {names}", field_errors
    )


def _message(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")
