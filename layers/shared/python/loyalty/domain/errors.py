"""Every error the platform can answer with, in one place.

Each class carries the HTTP status and the stable slug that ends the problem document's ``type``;
``loyalty.api.problems`` maps them to responses once. Services and repositories raise these, never
HTTP or botocore errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldError:
    loc: tuple[str | int, ...]
    msg: str
    type: str = "value_error"

    def as_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


class DomainError(Exception):
    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, *, errors: Sequence[FieldError] = (), **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)
        self.extra = extra


class MalformedRequest(DomainError):
    status, slug, title = 400, "malformed-request", "Malformed request"


class ValidationFailed(DomainError):
    status, slug, title = 422, "validation-failed", "Validation failed"

    @classmethod
    def at(cls, loc: tuple[str | int, ...], msg: str, type_: str = "value_error") -> ValidationFailed:
        return cls(msg, errors=[FieldError(loc, msg, type_)])


class Unauthenticated(DomainError):
    status, slug, title = 401, "unauthenticated", "Missing, unknown or revoked API key"


class Forbidden(DomainError):
    status, slug, title = 403, "forbidden", "This key may not do that"


class NotFound(DomainError):
    status, slug, title = 404, "not-found", "Not found"


class CustomerNotFound(NotFound):
    slug, title = "customer-not-found", "Customer not found"


class StoreNotFound(NotFound):
    slug, title = "store-not-found", "Store not found"


class LinkNotFound(NotFound):
    slug, title = "link-not-found", "Link not found"


class ApiKeyNotFound(NotFound):
    slug, title = "api-key-not-found", "API key not found"


class Conflict(DomainError):
    status, slug, title = 409, "conflict", "State conflict"


class IdentityConflict(Conflict):
    slug, title = "identity-conflict", "The links belong to another customer"


class LinkTaken(Conflict):
    slug, title = "link-taken", "The link belongs to another customer"


class CustomerNotActive(Conflict):
    slug, title = "customer-not-active", "The customer is merged or erased"


class ConcurrentUpdate(Conflict):
    slug, title = "concurrent-update", "The resource changed meanwhile; read it again and retry"


class IdempotencyKeyInUse(Conflict):
    slug, title = "idempotency-key-in-use", "A request with this Idempotency-Key is still running"


class IdempotencyKeyMismatch(DomainError):
    status, slug, title = 422, "idempotency-key-mismatch", "Idempotency key reused with another request"


class PayloadTooLarge(DomainError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class Throttled(DomainError):
    status, slug, title = 429, "throttled", "Too many requests"


class ServiceUnavailable(DomainError):
    status, slug, title = 503, "service-unavailable", "Temporarily unavailable; retry"

    def __init__(self, detail: str, *, retry_after: int = 1, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


@dataclass
class IdempotentReplay(Exception):
    """Not an error: the request was already answered; carries the first response."""

    status_code: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
