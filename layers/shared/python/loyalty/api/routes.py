"""The route table: every route, the function that serves it and who may call it.

The CDK API, the local gateway, the access check in every function and the OpenAPI test all
read this one list, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from loyalty.domain.access import Access


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str
    access: Access


@dataclass(frozen=True)
class FunctionDef:
    name: str
    description: str
    memory_mb: int = 512
    timeout_s: int = 10


FUNCTIONS: tuple[FunctionDef, ...] = (
    FunctionDef("health", "Liveness and version", memory_mb=256, timeout_s=3),
    FunctionDef("customers", "Enrolment, lookup, profiles and identity links"),
    FunctionDef("admin", "API keys, stores and the programme"),
    FunctionDef("transactions", "Sales, returns, order status, history and the points ledger"),
    FunctionDef("cart", "Real-time cart evaluation and personal coupons", memory_mb=1024),
    FunctionDef("offers", "Marketers' offers and price groups"),
    FunctionDef("redemptions", "Spending points, coupons and stored value, and reversing it"),
    FunctionDef("accounts", "Gift cards, merchandise credit, promotional cash and holds"),
)

AUTHORIZER = FunctionDef("authorizer", "Checks hashed API keys for API Gateway", memory_mb=256, timeout_s=3)


@dataclass(frozen=True)
class JobDef:
    """A function no route reaches: run on a schedule, or fed by the table's stream."""

    name: str
    description: str
    memory_mb: int = 512
    timeout_s: int = 60
    schedule: str | None = None  # an EventBridge Scheduler expression
    consumes_stream: bool = False  # gets the table's stream records that carry an outbox
    publishes_events: bool = False


JOBS: tuple[JobDef, ...] = (
    JobDef(
        "sweeper",
        "Matures pending points, reviews tiers, expires lots (hourly)",
        timeout_s=600,
        schedule="rate(1 hour)",
    ),
    JobDef(
        "publisher",
        "Publishes the outbox of every committed change to the EventBridge bus",
        timeout_s=60,
        consumes_stream=True,
        publishes_events=True,
    ),
)

ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/health", "health", Access.PUBLIC),
    Route("POST", "/v1/customers", "customers", Access.CLIENT),
    Route("GET", "/v1/customers", "customers", Access.CLIENT),
    Route("GET", "/v1/customers/{customer_id}", "customers", Access.CLIENT),
    Route("PATCH", "/v1/customers/{customer_id}", "customers", Access.CLIENT),
    Route("POST", "/v1/customers/{customer_id}/links", "customers", Access.CLIENT),
    Route("DELETE", "/v1/customers/{customer_id}/links/{type}/{value}", "customers", Access.CLIENT),
    Route("POST", "/v1/transactions", "transactions", Access.CLIENT),
    Route("GET", "/v1/transactions/{store_id}/{transaction_id}", "transactions", Access.CLIENT),
    Route("PATCH", "/v1/transactions/{store_id}/{transaction_id}", "transactions", Access.CLIENT),
    Route("GET", "/v1/customers/{customer_id}/transactions", "transactions", Access.CLIENT),
    Route("GET", "/v1/customers/{customer_id}/ledger", "transactions", Access.CLIENT),
    Route("POST", "/v1/cart/evaluate", "cart", Access.CLIENT),
    Route("POST", "/v1/customers/{customer_id}/coupons", "cart", Access.CLIENT),
    Route("GET", "/v1/customers/{customer_id}/coupons", "cart", Access.CLIENT),
    Route("GET", "/v1/coupons/{code}", "cart", Access.CLIENT),
    Route("POST", "/v1/redemptions", "redemptions", Access.CLIENT),
    Route("GET", "/v1/redemptions/{redemption_id}", "redemptions", Access.CLIENT),
    Route("POST", "/v1/customers/{customer_id}/holds", "redemptions", Access.CLIENT),
    Route("POST", "/v1/redemptions/{redemption_id}/reverse", "redemptions", Access.CLIENT),
    Route("POST", "/v1/gift-cards", "accounts", Access.CLIENT),
    Route("GET", "/v1/gift-cards/{card_number}", "accounts", Access.CLIENT),
    Route("POST", "/v1/gift-cards/{card_number}/redeem", "accounts", Access.CLIENT),
    Route("POST", "/v1/gift-cards/{card_number}/reload", "accounts", Access.CLIENT),
    Route("POST", "/v1/gift-cards/{card_number}/holds", "accounts", Access.CLIENT),
    Route("POST", "/v1/holds/{hold_id}/capture", "accounts", Access.CLIENT),
    Route("POST", "/v1/holds/{hold_id}/release", "accounts", Access.CLIENT),
    Route("GET", "/v1/customers/{customer_id}/accounts", "accounts", Access.CLIENT),
    Route("POST", "/v1/customers/{customer_id}/accounts", "accounts", Access.CLIENT),
    Route("GET", "/v1/accounts/{account_id}/ledger", "accounts", Access.CLIENT),
    Route("GET", "/v1/admin/outbox", "accounts", Access.ADMIN),
    Route("POST", "/v1/admin/rewards", "offers", Access.ADMIN),
    Route("GET", "/v1/admin/rewards", "offers", Access.ADMIN),
    Route("GET", "/v1/admin/rewards/{reward_id}", "offers", Access.ADMIN),
    Route("PUT", "/v1/admin/rewards/{reward_id}", "offers", Access.ADMIN),
    Route("POST", "/v1/admin/offers", "offers", Access.ADMIN),
    Route("GET", "/v1/admin/offers", "offers", Access.ADMIN),
    Route("GET", "/v1/admin/offers/{offer_id}", "offers", Access.ADMIN),
    Route("PUT", "/v1/admin/offers/{offer_id}", "offers", Access.ADMIN),
    Route("POST", "/v1/admin/offers/{offer_id}/pause", "offers", Access.ADMIN),
    Route("POST", "/v1/admin/offers/{offer_id}/activate", "offers", Access.ADMIN),
    Route("GET", "/v1/admin/price-groups", "offers", Access.ADMIN),
    Route("GET", "/v1/admin/price-groups/{group_id}", "offers", Access.ADMIN),
    Route("PUT", "/v1/admin/price-groups/{group_id}", "offers", Access.ADMIN),
    Route("PUT", "/v1/admin/price-groups/{group_id}/members/{customer_id}", "offers", Access.ADMIN),
    Route("DELETE", "/v1/admin/price-groups/{group_id}/members/{customer_id}", "offers", Access.ADMIN),
    Route("POST", "/v1/admin/api-keys", "admin", Access.ADMIN),
    Route("GET", "/v1/admin/api-keys", "admin", Access.ADMIN),
    Route("DELETE", "/v1/admin/api-keys/{key_id}", "admin", Access.ADMIN),
    Route("GET", "/v1/admin/stores", "admin", Access.ADMIN),
    Route("GET", "/v1/admin/stores/{store_id}", "admin", Access.ADMIN),
    Route("PUT", "/v1/admin/stores/{store_id}", "admin", Access.ADMIN),
    Route("GET", "/v1/admin/programme", "admin", Access.ADMIN),
    Route("PUT", "/v1/admin/programme", "admin", Access.ADMIN),
)

_BY_KEY = {(r.method, r.path): r for r in ROUTES}


def route_for(method: str, resource: str) -> Route | None:
    return _BY_KEY.get((method.upper(), resource))
