"""Every error the platform can answer with, in one place.

Each class carries the HTTP status and the stable slug that ends the problem document's ``type``;
``loyalty.api.problems`` maps them to responses once. Services and repositories raise these, never
HTTP or botocore errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


class InvalidCursor(DomainError):
    """A list's cursor that list did not issue (for these ids and filters), forged, or expired."""

    status, slug, title = 400, "invalid-cursor", "Invalid cursor"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, errors=[FieldError(("query", "cursor"), detail)])


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


class RewardNotFound(NotFound):
    slug, title = "reward-not-found", "Reward not found"


class RewardExists(Conflict):
    slug, title = "reward-exists", "A reward with this id exists"


class ChallengeNotFound(NotFound):
    slug, title = "challenge-not-found", "Challenge not found"


class BadgeNotFound(NotFound):
    slug, title = "badge-not-found", "Badge not found"


class OfferNotFound(NotFound):
    slug, title = "offer-not-found", "Offer not found"


class PriceGroupNotFound(NotFound):
    slug, title = "price-group-not-found", "Price group not found"


class CouponNotFound(NotFound):
    slug, title = "coupon-not-found", "Coupon not found"


class OfferExists(Conflict):
    slug, title = "offer-exists", "An offer with this id exists"


class PriceGroupExists(Conflict):
    slug, title = "price-group-exists", "A price group with this id exists"


class TransactionCustomerMismatch(Conflict):
    slug, title = "transaction-customer-mismatch", "The original transaction belongs to another customer"


class InvalidOrderTransition(Conflict):
    slug, title = "invalid-order-transition", "The order cannot move to that status"


class TransactionNotFound(NotFound):
    slug, title = "transaction-not-found", "Transaction not found"


class AccountNotFound(NotFound):
    slug, title = "account-not-found", "No such gift card or account"


class HoldNotFound(NotFound):
    slug, title = "hold-not-found", "Hold not found"


class CardExists(Conflict):
    slug, title = "card-exists", "This card number is already active"


class CardLocked(Conflict):
    slug, title = "card-locked", "Too many wrong PINs: the card is locked for a while"


class InvalidPin(Forbidden):
    slug, title = "invalid-pin", "Wrong PIN"


class PinRequired(Forbidden):
    """No PIN was sent where the card needs one: refused, and not counted as a wrong PIN."""

    slug, title = "pin-required", "This card needs its PIN (x-gift-card-pin header)"


class HoldNotCapturable(Conflict):
    slug, title = "hold-not-capturable", "The hold cannot be captured"


class AccountNotUsable(Conflict):
    slug, title = "account-not-usable", "The account is expired or closed"


class NotAGiftCard(Conflict):
    """Reloading is for gift cards: merchandise credit and promotional cash get value only through
    their own paths (a refund, an admin's issue), so a till cannot top one up."""

    slug, title = "not-a-gift-card", "Only a gift card can be reloaded"


class RedemptionReversed(Conflict):
    slug, title = "redemption-reversed", "This redemption was reversed; use a new redemption_id"


class InsufficientBalance(Conflict):
    slug, title = "insufficient-balance", "Not enough to spend"


class CouponNotRedeemable(Conflict):
    slug, title = "coupon-not-redeemable", "The coupon cannot be redeemed"


class RewardUnavailable(Conflict):
    slug, title = "reward-unavailable", "The reward is paused, out of date or out of stock"


class RedemptionNotFound(NotFound):
    slug, title = "redemption-not-found", "Redemption not found"


class TemplateNotFound(NotFound):
    slug, title = "template-not-found", "Template not found"


class TemplateInUse(Conflict):
    slug, title = "template-in-use", "The programme or a campaign uses this template"


class SegmentNotFound(NotFound):
    slug, title = "segment-not-found", "Segment not found"


class SegmentInUse(Conflict):
    slug, title = "segment-in-use", "Offers, challenges or campaigns use this segment"


class IdempotencyKeyInUse(Conflict):
    slug, title = "idempotency-key-in-use", "A request with this Idempotency-Key is still running"


class IdempotencyKeyMismatch(DomainError):
    status, slug, title = 422, "idempotency-key-mismatch", "Idempotency key reused with another request"


class PayloadTooLarge(DomainError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(DomainError):
    status, slug, title = 415, "unsupported-media-type", "Send the body as application/json"


class Throttled(DomainError):
    status, slug, title = 429, "throttled", "Too many requests"


class ServiceUnavailable(DomainError):
    status, slug, title = 503, "service-unavailable", "Temporarily unavailable; retry"

    def __init__(self, detail: str, *, retry_after: int = 1, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class MergeNotFound(NotFound):
    slug, title = "merge-not-found", "Merge not found"


class MergeRefused(Conflict):
    """A merge or undo that the identity rules do not allow (itself, a tombstone, erased, undone)."""

    slug, title = "merge-refused", "This merge is not allowed"


class MergeInProgress(ServiceUnavailable):
    slug, title = "merge-in-progress", "The customer is being merged; retry"


class InvalidUnsubscribeToken(DomainError):
    """An unsubscribe link the platform did not send (forged, cut short, or for no channel)."""

    status, slug, title = 400, "invalid-unsubscribe-token", "Invalid unsubscribe link"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, errors=[FieldError(("query", "token"), detail)])


class InvalidConfirmationToken(DomainError):
    """A confirmation link the platform did not send, or one past its expiry."""

    status, slug, title = 400, "invalid-confirmation-token", "Invalid confirmation link"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, errors=[FieldError(("query", "token"), detail)])


class CampaignNotFound(NotFound):
    slug, title = "campaign-not-found", "Campaign not found"


class CampaignRunNotFound(NotFound):
    slug, title = "campaign-run-not-found", "Campaign run not found"


class CampaignNotRunnable(Conflict):
    slug, title = "campaign-not-runnable", "The campaign cannot do that in its current status"
