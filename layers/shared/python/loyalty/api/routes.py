"""The route table: every route, the function that serves it and who may call it.

The CDK API, the local gateway, the access check in every function and the OpenAPI test all
read this one list, so they cannot drift apart. With `expected_outcome` it is also the
authorisation matrix (route x key kind x own/other store) that the functions enforce and the
end-to-end test tests/e2e/test_authorization_matrix.py checks route by route.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from loyalty.domain.access import Access, Area, KeyKind, StoreScope, kind_may_call


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str
    access: Access
    # How a pos/web key is bound to a store on this route (admin keys act for every store). NONE
    # routes act, where they record a store at all, in the key's own store (a points or gift-card
    # hold, a reload, merchandise credit): there is nothing to name, so nothing to refuse.
    store: StoreScope
    # The largest body the route takes (the guard answers 413 above it): event batches are bigger.
    max_body: int = 64 * 1024
    # What the route works on, where that is a marketer's (domain.access.Area); None: not theirs.
    # A new segments or campaigns route gets the marketer's right by declaring its area here.
    area: Area | None = None


# Store binding (StoreScope): customers, their links, history, coupons and accounts are the brand's,
# so any store's key reads and changes them (NONE). Gift cards are brand-wide tender too: any till
# checks, reloads and holds one, and the store that takes value from it is the key's own (the
# redeem body's store_id, BODY). Transactions are named by their store (PATH); redemptions and
# holds belong to the store that made them (RECORD): their caller-owned ids are unique per store, so
# a key finds only its own store's (an admin key names the store in the `store_id` query, and a key
# naming another store there is refused).
ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/health", "health", Access.PUBLIC, StoreScope.NONE),
    Route("GET", "/docs", "health", Access.PUBLIC, StoreScope.NONE),
    Route("GET", "/docs/{asset}", "health", Access.PUBLIC, StoreScope.NONE),
    Route("GET", "/openapi.json", "health", Access.PUBLIC, StoreScope.NONE),
    Route("POST", "/v1/customers", "customers", Access.CLIENT, StoreScope.BODY),
    Route("GET", "/v1/customers", "customers", Access.CLIENT, StoreScope.NONE, area=Area.CUSTOMER_READS),
    Route(
        "GET",
        "/v1/customers/{customer_id}",
        "customers",
        Access.CLIENT,
        StoreScope.NONE,
        area=Area.CUSTOMER_READS,
    ),
    Route("PATCH", "/v1/customers/{customer_id}", "customers", Access.CLIENT, StoreScope.NONE),
    Route("POST", "/v1/customers/{customer_id}/links", "customers", Access.CLIENT, StoreScope.NONE),
    Route(
        "DELETE",
        "/v1/customers/{customer_id}/links/{type}/{value}",
        "customers",
        Access.CLIENT,
        StoreScope.NONE,
    ),
    Route("POST", "/v1/merges", "customers", Access.CLIENT, StoreScope.NONE),
    Route("GET", "/v1/merges/{merge_id}", "customers", Access.CLIENT, StoreScope.NONE),
    # Undo, export and erasure are operators' decisions: admin keys only.
    Route("POST", "/v1/merges/{merge_id}/undo", "customers", Access.ADMIN, StoreScope.NONE),
    Route(
        "GET",
        "/v1/customers/{customer_id}/timeline",
        "customers",
        Access.CLIENT,
        StoreScope.NONE,
        area=Area.CUSTOMER_READS,
    ),
    Route("GET", "/v1/customers/{customer_id}/export", "customers", Access.ADMIN, StoreScope.NONE),
    Route("DELETE", "/v1/customers/{customer_id}", "customers", Access.ADMIN, StoreScope.NONE),
    Route("DELETE", "/v1/customers/{customer_id}/review", "customers", Access.ADMIN, StoreScope.NONE),
    Route("POST", "/v1/transactions", "transactions", Access.CLIENT, StoreScope.BODY),
    Route(
        "GET", "/v1/transactions/{store_id}/{transaction_id}", "transactions", Access.CLIENT, StoreScope.PATH
    ),
    Route(
        "PATCH",
        "/v1/transactions/{store_id}/{transaction_id}",
        "transactions",
        Access.CLIENT,
        StoreScope.PATH,
    ),
    Route(
        "GET",
        "/v1/customers/{customer_id}/transactions",
        "transactions",
        Access.CLIENT,
        StoreScope.NONE,
        area=Area.CUSTOMER_READS,
    ),
    Route(
        "GET",
        "/v1/customers/{customer_id}/ledger",
        "transactions",
        Access.CLIENT,
        StoreScope.NONE,
        area=Area.CUSTOMER_READS,
    ),
    # Each event names its store (default: the key's); one naming another store refuses the batch.
    Route("POST", "/v1/events", "events", Access.CLIENT, StoreScope.BODY, max_body=256 * 1024),
    Route("POST", "/v1/cart/evaluate", "cart", Access.CLIENT, StoreScope.BODY),
    Route(
        "POST",
        "/v1/customers/{customer_id}/coupons",
        "cart",
        Access.CLIENT,
        StoreScope.NONE,
        area=Area.COUPON_ISSUE,
    ),
    Route(
        "GET",
        "/v1/customers/{customer_id}/coupons",
        "cart",
        Access.CLIENT,
        StoreScope.NONE,
        area=Area.CUSTOMER_READS,
    ),
    Route("GET", "/v1/coupons/{code}", "cart", Access.CLIENT, StoreScope.NONE, area=Area.CUSTOMER_READS),
    Route("POST", "/v1/redemptions", "redemptions", Access.CLIENT, StoreScope.BODY),
    Route("GET", "/v1/redemptions/{redemption_id}", "redemptions", Access.CLIENT, StoreScope.RECORD),
    Route("POST", "/v1/customers/{customer_id}/holds", "redemptions", Access.CLIENT, StoreScope.NONE),
    Route("POST", "/v1/redemptions/{redemption_id}/reverse", "redemptions", Access.CLIENT, StoreScope.RECORD),
    Route("POST", "/v1/gift-cards", "accounts", Access.CLIENT, StoreScope.BODY),
    Route("GET", "/v1/gift-cards/{card_number}", "accounts", Access.CLIENT, StoreScope.NONE),
    Route("POST", "/v1/gift-cards/{card_number}/redeem", "accounts", Access.CLIENT, StoreScope.BODY),
    Route("POST", "/v1/gift-cards/{card_number}/reload", "accounts", Access.CLIENT, StoreScope.NONE),
    Route("POST", "/v1/gift-cards/{card_number}/holds", "accounts", Access.CLIENT, StoreScope.NONE),
    Route("POST", "/v1/holds/{hold_id}/capture", "accounts", Access.CLIENT, StoreScope.RECORD),
    Route("POST", "/v1/holds/{hold_id}/release", "accounts", Access.CLIENT, StoreScope.RECORD),
    Route(
        "GET",
        "/v1/customers/{customer_id}/accounts",
        "accounts",
        Access.CLIENT,
        StoreScope.NONE,
        area=Area.CUSTOMER_READS,
    ),
    Route("POST", "/v1/customers/{customer_id}/accounts", "accounts", Access.CLIENT, StoreScope.NONE),
    Route("GET", "/v1/accounts/{account_id}/ledger", "accounts", Access.CLIENT, StoreScope.NONE),
    Route("GET", "/v1/admin/outbox", "accounts", Access.ADMIN, StoreScope.NONE, area=Area.OUTBOX),
    Route("POST", "/v1/admin/rewards", "offers", Access.ADMIN, StoreScope.NONE, area=Area.REWARDS),
    Route("GET", "/v1/admin/rewards", "offers", Access.ADMIN, StoreScope.NONE, area=Area.REWARDS),
    Route("GET", "/v1/admin/rewards/{reward_id}", "offers", Access.ADMIN, StoreScope.NONE, area=Area.REWARDS),
    Route("PUT", "/v1/admin/rewards/{reward_id}", "offers", Access.ADMIN, StoreScope.NONE, area=Area.REWARDS),
    Route("POST", "/v1/admin/offers", "offers", Access.ADMIN, StoreScope.NONE, area=Area.OFFERS),
    Route("GET", "/v1/admin/offers", "offers", Access.ADMIN, StoreScope.NONE, area=Area.OFFERS),
    Route("GET", "/v1/admin/offers/{offer_id}", "offers", Access.ADMIN, StoreScope.NONE, area=Area.OFFERS),
    Route("PUT", "/v1/admin/offers/{offer_id}", "offers", Access.ADMIN, StoreScope.NONE, area=Area.OFFERS),
    Route(
        "POST", "/v1/admin/offers/{offer_id}/pause", "offers", Access.ADMIN, StoreScope.NONE, area=Area.OFFERS
    ),
    Route(
        "POST",
        "/v1/admin/offers/{offer_id}/activate",
        "offers",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.OFFERS,
    ),
    Route("GET", "/v1/admin/price-groups", "offers", Access.ADMIN, StoreScope.NONE, area=Area.PRICE_GROUPS),
    Route(
        "GET",
        "/v1/admin/price-groups/{group_id}",
        "offers",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.PRICE_GROUPS,
    ),
    Route(
        "PUT",
        "/v1/admin/price-groups/{group_id}",
        "offers",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.PRICE_GROUPS,
    ),
    Route(
        "PUT",
        "/v1/admin/price-groups/{group_id}/members/{customer_id}",
        "offers",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.PRICE_GROUPS,
    ),
    Route(
        "DELETE",
        "/v1/admin/price-groups/{group_id}/members/{customer_id}",
        "offers",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.PRICE_GROUPS,
    ),
    # Message templates: admin keys for now (issue 20 brings a marketer kind).
    Route(
        "PUT",
        "/v1/admin/templates/{template_id}",
        "messaging",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.TEMPLATES,
    ),
    Route("GET", "/v1/admin/templates", "messaging", Access.ADMIN, StoreScope.NONE, area=Area.TEMPLATES),
    Route(
        "GET",
        "/v1/admin/templates/{template_id}",
        "messaging",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.TEMPLATES,
    ),
    Route(
        "DELETE",
        "/v1/admin/templates/{template_id}",
        "messaging",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.TEMPLATES,
    ),
    # Unsubscribe links in messages: no key (the signed token names customer and channel).
    Route("GET", "/v1/unsubscribe", "messaging", Access.PUBLIC, StoreScope.NONE),
    Route("POST", "/v1/unsubscribe", "messaging", Access.PUBLIC, StoreScope.NONE),
    # Double opt-in links: no key (the signed, expiring token names the pending customer).
    Route("GET", "/v1/confirm", "messaging", Access.PUBLIC, StoreScope.NONE),
    Route("POST", "/v1/confirm", "messaging", Access.PUBLIC, StoreScope.NONE),
    Route("GET", "/v1/admin/print-files", "messaging", Access.ADMIN, StoreScope.NONE, area=Area.OUTBOX),
    # Reports over the data lake.
    Route("GET", "/v1/admin/reports/activity", "reports", Access.ADMIN, StoreScope.NONE, area=Area.REPORTS),
    Route(
        "GET",
        "/v1/admin/reports/members-vs-non-members",
        "reports",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.REPORTS,
    ),
    Route("GET", "/v1/admin/reports/cohorts", "reports", Access.ADMIN, StoreScope.NONE, area=Area.REPORTS),
    Route(
        "GET",
        "/v1/admin/reports/campaigns/{campaign_id}",
        "reports",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.REPORTS,
    ),
    # The backtest reads the lake: the reports function serves it, a campaign's route for marketers.
    Route(
        "POST",
        "/v1/admin/campaigns/{campaign_id}/backtest",
        "reports",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.CAMPAIGNS,
    ),
    # Challenges and badges are marketers' (served with offers); a customer's standing is the brand's.
    Route(
        "PUT",
        "/v1/admin/challenges/{challenge_id}",
        "offers",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.CHALLENGES,
    ),
    Route("GET", "/v1/admin/challenges", "offers", Access.ADMIN, StoreScope.NONE, area=Area.CHALLENGES),
    Route(
        "GET",
        "/v1/admin/challenges/{challenge_id}",
        "offers",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.CHALLENGES,
    ),
    Route("PUT", "/v1/admin/badges/{badge_id}", "offers", Access.ADMIN, StoreScope.NONE, area=Area.BADGES),
    Route("GET", "/v1/admin/badges", "offers", Access.ADMIN, StoreScope.NONE, area=Area.BADGES),
    Route("GET", "/v1/admin/badges/{badge_id}", "offers", Access.ADMIN, StoreScope.NONE, area=Area.BADGES),
    Route(
        "GET",
        "/v1/customers/{customer_id}/challenges",
        "offers",
        Access.CLIENT,
        StoreScope.NONE,
        area=Area.CUSTOMER_READS,
    ),
    Route("POST", "/v1/admin/segments/preview", "reports", Access.ADMIN, StoreScope.NONE, area=Area.SEGMENTS),
    # Segments are the audiences offers and challenges name: served with them.
    Route(
        "PUT", "/v1/admin/segments/{segment_id}", "offers", Access.ADMIN, StoreScope.NONE, area=Area.SEGMENTS
    ),
    Route("GET", "/v1/admin/segments", "offers", Access.ADMIN, StoreScope.NONE, area=Area.SEGMENTS),
    Route(
        "GET", "/v1/admin/segments/{segment_id}", "offers", Access.ADMIN, StoreScope.NONE, area=Area.SEGMENTS
    ),
    Route(
        "DELETE",
        "/v1/admin/segments/{segment_id}",
        "offers",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.SEGMENTS,
    ),
    Route(
        "GET",
        "/v1/admin/segments/{segment_id}/customers",
        "offers",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.SEGMENTS,
    ),
    # Campaigns: their own function (definitions here; runs and dry runs join it).
    Route(
        "PUT",
        "/v1/admin/campaigns/{campaign_id}",
        "campaigns",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.CAMPAIGNS,
    ),
    Route("GET", "/v1/admin/campaigns", "campaigns", Access.ADMIN, StoreScope.NONE, area=Area.CAMPAIGNS),
    Route(
        "GET",
        "/v1/admin/campaigns/{campaign_id}",
        "campaigns",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.CAMPAIGNS,
    ),
    Route(
        "DELETE",
        "/v1/admin/campaigns/{campaign_id}",
        "campaigns",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.CAMPAIGNS,
    ),
    Route(
        "POST",
        "/v1/admin/campaigns/{campaign_id}/runs",
        "campaigns",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.CAMPAIGNS,
    ),
    Route(
        "GET",
        "/v1/admin/campaigns/{campaign_id}/runs",
        "campaigns",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.CAMPAIGNS,
    ),
    Route(
        "GET",
        "/v1/admin/campaigns/{campaign_id}/runs/{run_id}",
        "campaigns",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.CAMPAIGNS,
    ),
    Route(
        "POST",
        "/v1/admin/campaigns/{campaign_id}/runs/{run_id}/cancel",
        "campaigns",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.CAMPAIGNS,
    ),
    Route(
        "POST",
        "/v1/admin/campaigns/{campaign_id}/runs/{run_id}/retry",
        "campaigns",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.CAMPAIGNS,
    ),
    Route(
        "POST",
        "/v1/admin/campaigns/{campaign_id}/dry-run",
        "campaigns",
        Access.ADMIN,
        StoreScope.NONE,
        area=Area.CAMPAIGNS,
    ),
    Route("POST", "/v1/admin/api-keys", "admin", Access.ADMIN, StoreScope.NONE),
    Route("GET", "/v1/admin/api-keys", "admin", Access.ADMIN, StoreScope.NONE),
    Route("DELETE", "/v1/admin/api-keys/{key_id}", "admin", Access.ADMIN, StoreScope.NONE),
    Route("GET", "/v1/admin/stores", "admin", Access.ADMIN, StoreScope.NONE),
    Route("GET", "/v1/admin/stores/{store_id}", "admin", Access.ADMIN, StoreScope.NONE),
    Route("PUT", "/v1/admin/stores/{store_id}", "admin", Access.ADMIN, StoreScope.NONE),
    Route("GET", "/v1/admin/programme", "admin", Access.ADMIN, StoreScope.NONE),
    Route("PUT", "/v1/admin/programme", "admin", Access.ADMIN, StoreScope.NONE),
)

_BY_KEY = {(r.method, r.path): r for r in ROUTES}


def route_for(method: str, resource: str) -> Route | None:
    return _BY_KEY.get((method.upper(), resource))


class Outcome(StrEnum):
    """What a caller gets on a route before anything else is looked at."""

    UNAUTHENTICATED = "401"  # no key, an unknown or a revoked key
    FORBIDDEN = "403"  # a valid key that may not do this (here)
    ALLOWED = "allowed"  # a valid request gets its 2xx


def expected_outcome(route: Route, kind: KeyKind | None, own_store: bool = True) -> Outcome:
    """The authorisation matrix: `kind` is the caller's key kind (None: no valid key) and
    `own_store` whether the store the request names or touches (see `Route.store`) is the key's own.
    The functions' guard decides by it, and the matrix test expects exactly what it answers.
    A marketer key goes by the route's `area` (domain.access.Area), whatever its access level."""
    if route.access is Access.PUBLIC:
        return Outcome.ALLOWED
    if kind is None:
        return Outcome.UNAUTHENTICATED
    if not kind_may_call(kind, route.access, route.area):
        return Outcome.FORBIDDEN
    # Marketers' routes are brand-wide (StoreScope.NONE, a test holds it): no store to own.
    if not kind.store_bound or own_store or route.store is StoreScope.NONE:
        return Outcome.ALLOWED
    return Outcome.FORBIDDEN
