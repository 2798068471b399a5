"""The authorisation matrix over HTTP: every route in the route table, called by every kind of caller.

For each route a case builds a valid request (its prerequisites made through the API) for the
store of an owner: the demo till (`ams-01`) or the demo web shop (`web-nl`). The request is then
sent with no key, an unknown key, a revoked key, another store's till key, the web key, the till's
own key, the web key for its own store, a marketer key and an admin key; each answer must be exactly what
`loyalty.api.routes.expected_outcome` says — 401, 403, or a 2xx (so every case must be valid).

Refused calls reuse one request (they change nothing); the till's own call then sends that same
request and must succeed, which shows the refused calls consumed nothing. Every other allowed call
gets a fresh request. A route added to the table without a case here fails its test.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
import requests

from loyalty.api.authorizer import AUTHORIZER_CACHE_SECONDS
from loyalty.api.routes import ROUTES, Outcome, Route, expected_outcome
from loyalty.domain import confirmation, unsubscribe
from loyalty.domain.access import KeyKind
from loyalty.domain.stored_value import luhn_check_digit
from loyalty.domain.templates import Channel
from tests.e2e.conftest import ADMIN_KEY, POS_KEY, WEB_KEY, Api, assert_problem, unique_email

# One worker builds the world (a second store, its till key, a revoked key) once for every route.
pytestmark = pytest.mark.xdist_group("authorization-matrix")

SKU = "AUTHZ-NOBODY-SELLS-THIS"  # offers and sales here touch a SKU no other test uses


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Owner:
    """Whose request it is: the key that makes the prerequisites and the store the request names."""

    key: str
    store: str


TILL = Owner(POS_KEY, "ams-01")
WEB_SHOP = Owner(WEB_KEY, "web-nl")


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    json: Any = None
    params: dict[str, str] | None = None


@dataclass(frozen=True)
class Caller:
    name: str
    key: Callable[[World], str | None]
    kind: KeyKind | None  # None: no valid key
    owner: Owner  # whose request it sends
    own_store: bool


# Refused callers first: they share the till's request, which the till's own call then sends.
CALLERS: tuple[Caller, ...] = (
    Caller("no key", lambda w: None, None, TILL, True),
    Caller("unknown key", lambda w: w.unknown_key, None, TILL, True),
    Caller("revoked key", lambda w: w.revoked_key, None, TILL, True),
    Caller("pos key, other store", lambda w: w.other_till_key, KeyKind.POS, TILL, False),
    Caller("web key, other store", lambda w: WEB_KEY, KeyKind.WEB, TILL, False),
    # Brand-wide, like an admin key, but only on the marketer's areas (no store to own or not).
    Caller("marketer key", lambda w: w.marketer_key, KeyKind.MARKETER, TILL, True),
    Caller("pos key, own store", lambda w: POS_KEY, KeyKind.POS, TILL, True),
    Caller("web key, own store", lambda w: WEB_KEY, KeyKind.WEB, WEB_SHOP, True),
    Caller("admin key", lambda w: ADMIN_KEY, KeyKind.ADMIN, TILL, True),
)


@dataclass
class World:
    """Prerequisites made through the API; read-only ones are made once per owner."""

    api: Api
    other_store: str = ""
    other_till_key: str = ""
    revoked_key: str = ""
    marketer_key: str = ""
    unknown_key: str = field(default_factory=lambda: "lk_" + uuid.uuid4().hex)
    rich_customer: str = ""  # 10,000 points, for redemptions and points holds
    _memo: dict[tuple[str, Owner | None], Any] = field(default_factory=dict)

    # ---- plumbing ----------------------------------------------------------------------
    def ok(self, method: str, path: str, key: str, json: Any = None) -> Any:
        response = self.api.call(method, path, key, json=json)
        assert 200 <= response.status_code < 300, f"prerequisite {method} {path}: {response.text}"
        return response.json() if response.content else None

    def once(self, name: str, owner: Owner | None, make: Callable[[], Any]) -> Any:
        if (name, owner) not in self._memo:
            self._memo[(name, owner)] = make()
        return self._memo[(name, owner)]

    # ---- customers ---------------------------------------------------------------------
    def new_customer(self, owner: Owner, email: str | None = None) -> str:
        links = [{"type": "email", "value": email or unique_email()}]
        body = {"links": links, "store_id": owner.store, "member": True}
        return str(self.ok("POST", "/v1/customers", owner.key, body)["customer_id"])

    def customer(self, owner: Owner) -> str:
        return str(self.once("customer", owner, lambda: self.new_customer(owner)))

    def new_merge(self, owner: Owner) -> str:
        body = {"survivor_id": self.new_customer(owner), "merged_id": self.new_customer(owner)}
        return str(self.ok("POST", "/v1/merges", owner.key, body)["merge_id"])

    def done_merge(self) -> str:
        merge_id = self.new_merge(TILL)
        deadline = time.monotonic() + 30
        while (status := self.ok("GET", f"/v1/merges/{merge_id}", ADMIN_KEY)["status"]) != "done":
            assert status in ("queued", "running") and time.monotonic() < deadline, status
            time.sleep(0.05)
        return merge_id

    # ---- transactions ------------------------------------------------------------------
    @staticmethod
    def sale_body(owner: Owner, euros: int = 2, **extra: Any) -> dict[str, Any]:
        return {
            "transaction_id": uid("AZ"),
            "type": "sale",
            "store_id": owner.store,
            "occurred_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
            "lines": [
                {
                    "line_id": "1",
                    "sku": SKU,
                    "category": "authz",
                    "quantity": "1",
                    "unit_price": f"{euros}.00",
                }
            ],
            "currency": "EUR",
            "total": f"{euros}.00",
            **extra,
        }

    def new_order(self, owner: Owner) -> str:
        """An order (order_status placed): web-nl's sales are orders by themselves."""
        body = self.sale_body(owner, order_status="placed")
        self.ok("POST", "/v1/transactions", owner.key, body)
        return str(body["transaction_id"])

    def sale(self, owner: Owner) -> str:
        return str(self.once("sale", owner, lambda: self.new_order(owner)))

    # ---- redemptions and holds -----------------------------------------------------------
    def redemption_body(self, owner: Owner) -> dict[str, Any]:
        return {
            "redemption_id": uid("AZR"),
            "store_id": owner.store,
            "customer": {"customer_id": self.rich_customer},
            "kind": "points",
            "points": 1,
        }

    def new_redemption(self, owner: Owner) -> str:
        return str(
            self.ok("POST", "/v1/redemptions", owner.key, self.redemption_body(owner))["redemption_id"]
        )

    def redemption(self, owner: Owner) -> str:
        return str(self.once("redemption", owner, lambda: self.new_redemption(owner)))

    def new_card(self, owner: Owner) -> str:
        digits = "6036" + str(uuid.uuid4().int)[:11]
        number = digits + luhn_check_digit(digits)
        body = {"amount": "500.00", "currency": "EUR", "store_id": owner.store, "card_number": number}
        self.ok("POST", "/v1/gift-cards", owner.key, body)
        return number

    def card(self, owner: Owner) -> str:
        return str(self.once("card", owner, lambda: self.new_card(owner)))

    def new_hold(self, owner: Owner) -> str:
        body = {"hold_id": uid("AZH"), "amount": "1.00", "expires_in_seconds": 600}
        return str(self.ok("POST", f"/v1/gift-cards/{self.card(owner)}/holds", owner.key, body)["hold_id"])

    # ---- the catalogue (admin) -----------------------------------------------------------
    def new_offer(self, status: str = "active", requires_coupon: bool = False) -> dict[str, Any]:
        return {
            "offer_id": uid("authz"),
            "name": "authorisation matrix",
            "status": status,
            "requires_coupon": requires_coupon,
            "effect": {"type": "amount_off", "value": "1", "skus": [SKU]},
        }

    def offer(self) -> str:
        return str(
            self.once(
                "offer",
                None,
                lambda: self.ok("POST", "/v1/admin/offers", ADMIN_KEY, self.new_offer())["offer_id"],
            )
        )

    def coupon_offer(self) -> str:
        return str(
            self.once(
                "coupon-offer",
                None,
                lambda: self.ok("POST", "/v1/admin/offers", ADMIN_KEY, self.new_offer(requires_coupon=True))[
                    "offer_id"
                ],
            )
        )

    def coupon(self, owner: Owner) -> str:
        def make() -> str:
            path = f"/v1/customers/{self.customer(owner)}/coupons"
            return str(self.ok("POST", path, owner.key, {"offer_id": self.coupon_offer()})["code"])

        return str(self.once("coupon", owner, make))

    @staticmethod
    def reward_body(reward_id: str | None = None) -> dict[str, Any]:
        return {"reward_id": reward_id or uid("authz"), "name": "authorisation matrix", "points": 5}

    def reward(self) -> str:
        return str(
            self.once(
                "reward",
                None,
                lambda: self.ok("POST", "/v1/admin/rewards", ADMIN_KEY, self.reward_body())["reward_id"],
            )
        )

    def new_price_group(self) -> str:
        group_id = uid("authz")
        self.ok(
            "PUT", f"/v1/admin/price-groups/{group_id}", ADMIN_KEY, {"group_id": group_id, "name": "authz"}
        )
        return group_id

    def price_group(self) -> str:
        return str(self.once("price-group", None, self.new_price_group))

    def new_key(self, store: str = "ams-01") -> dict[str, Any]:
        body = {"kind": "pos", "store_id": store, "name": "authorisation matrix"}
        result: dict[str, Any] = self.ok("POST", "/v1/admin/api-keys", ADMIN_KEY, body)
        return result


# ---- one case per route: a valid request for the owner's store ----------------------------------
Case = Callable[[World, Owner], Req]
CASES: dict[tuple[str, str], Case] = {}


def case(method: str, path: str) -> Callable[[Case], Case]:
    def register(build: Case) -> Case:
        assert (method, path) not in CASES, f"two cases for {method} {path}"
        CASES[(method, path)] = build
        return build

    return register


@case("GET", "/v1/health")
def _health(w: World, o: Owner) -> Req:
    return Req("GET", "/v1/health")


@case("GET", "/docs")
def _docs(w: World, o: Owner) -> Req:
    return Req("GET", "/docs")


@case("GET", "/docs/{asset}")
def _docs_asset(w: World, o: Owner) -> Req:
    return Req("GET", "/docs/swagger-ui.css")


@case("GET", "/openapi.json")
def _openapi(w: World, o: Owner) -> Req:
    return Req("GET", "/openapi.json")


# customers and identity
@case("POST", "/v1/customers")
def _enrol(w: World, o: Owner) -> Req:
    return Req(
        "POST", "/v1/customers", {"links": [{"type": "email", "value": unique_email()}], "store_id": o.store}
    )


@case("GET", "/v1/customers")
def _lookup(w: World, o: Owner) -> Req:
    email = unique_email()
    w.new_customer(o, email)
    return Req("GET", "/v1/customers", params={"link_type": "email", "link_value": email})


@case("GET", "/v1/customers/{customer_id}")
def _get_customer(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/customers/{w.customer(o)}")


@case("PATCH", "/v1/customers/{customer_id}")
def _patch_customer(w: World, o: Owner) -> Req:
    return Req("PATCH", f"/v1/customers/{w.customer(o)}", {"profile": {"first_name": "Matrix"}})


@case("POST", "/v1/customers/{customer_id}/links")
def _add_link(w: World, o: Owner) -> Req:
    return Req("POST", f"/v1/customers/{w.customer(o)}/links", {"type": "email", "value": unique_email()})


@case("DELETE", "/v1/customers/{customer_id}/links/{type}/{value}")
def _remove_link(w: World, o: Owner) -> Req:
    email = unique_email()
    return Req("DELETE", f"/v1/customers/{w.new_customer(o, email)}/links/email/{quote(email)}")


@case("POST", "/v1/merges")
def _merge(w: World, o: Owner) -> Req:
    return Req("POST", "/v1/merges", {"survivor_id": w.new_customer(o), "merged_id": w.new_customer(o)})


@case("GET", "/v1/merges/{merge_id}")
def _get_merge(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/merges/{w.once('merge', o, lambda: w.new_merge(o))}")


@case("POST", "/v1/merges/{merge_id}/undo")
def _undo(w: World, o: Owner) -> Req:
    return Req("POST", f"/v1/merges/{w.done_merge()}/undo")


@case("GET", "/v1/customers/{customer_id}/export")
def _export(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/customers/{w.customer(o)}/export")


@case("DELETE", "/v1/customers/{customer_id}")
def _erase(w: World, o: Owner) -> Req:
    return Req("DELETE", f"/v1/customers/{w.new_customer(o)}")


@case("DELETE", "/v1/customers/{customer_id}/review")
def _clear_review(w: World, o: Owner) -> Req:
    return Req("DELETE", f"/v1/customers/{w.new_customer(o)}/review")


# transactions
@case("POST", "/v1/transactions")
def _record(w: World, o: Owner) -> Req:
    return Req("POST", "/v1/transactions", w.sale_body(o))


@case("GET", "/v1/transactions/{store_id}/{transaction_id}")
def _get_transaction(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/transactions/{o.store}/{w.sale(o)}")


@case("PATCH", "/v1/transactions/{store_id}/{transaction_id}")
def _order_status(w: World, o: Owner) -> Req:
    return Req("PATCH", f"/v1/transactions/{o.store}/{w.new_order(o)}", {"order_status": "shipped"})


@case("GET", "/v1/customers/{customer_id}/transactions")
def _history(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/customers/{w.customer(o)}/transactions")


@case("GET", "/v1/customers/{customer_id}/timeline")
def _timeline(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/customers/{w.customer(o)}/timeline")


@case("GET", "/v1/customers/{customer_id}/ledger")
def _ledger(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/customers/{w.customer(o)}/ledger")


# customer events: each event names its store; one naming another store refuses the batch
@case("POST", "/v1/events")
def _events(w: World, o: Owner) -> Req:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {"event_id": uid("AZE"), "type": "store_visit", "store_id": o.store, "occurred_at": now}
    return Req("POST", "/v1/events", {"events": [event]})


# cart and coupons
@case("POST", "/v1/cart/evaluate")
def _cart(w: World, o: Owner) -> Req:
    line = {"line_id": "1", "sku": SKU, "quantity": "1", "unit_price": "2.00"}
    return Req("POST", "/v1/cart/evaluate", {"store_id": o.store, "currency": "EUR", "lines": [line]})


@case("POST", "/v1/customers/{customer_id}/coupons")
def _issue_coupon(w: World, o: Owner) -> Req:
    return Req("POST", f"/v1/customers/{w.customer(o)}/coupons", {"offer_id": w.coupon_offer()})


@case("GET", "/v1/customers/{customer_id}/coupons")
def _coupons(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/customers/{w.customer(o)}/coupons")


@case("GET", "/v1/coupons/{code}")
def _coupon(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/coupons/{w.coupon(o)}")


# redemptions
@case("POST", "/v1/redemptions")
def _redeem(w: World, o: Owner) -> Req:
    return Req("POST", "/v1/redemptions", w.redemption_body(o))


# A redemption_id or hold_id is unique per store: the request names its store, as an admin key must
# (another store's key naming it is refused; one that does not name it looks in its own store).
@case("GET", "/v1/redemptions/{redemption_id}")
def _get_redemption(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/redemptions/{w.redemption(o)}", params={"store_id": o.store})


@case("POST", "/v1/customers/{customer_id}/holds")
def _hold_points(w: World, o: Owner) -> Req:
    body = {"hold_id": uid("AZP"), "points": 1, "expires_in_seconds": 600}
    return Req("POST", f"/v1/customers/{w.rich_customer}/holds", body)


@case("POST", "/v1/redemptions/{redemption_id}/reverse")
def _reverse(w: World, o: Owner) -> Req:
    return Req("POST", f"/v1/redemptions/{w.new_redemption(o)}/reverse", params={"store_id": o.store})


# stored value
@case("POST", "/v1/gift-cards")
def _sell(w: World, o: Owner) -> Req:
    digits = "6036" + str(uuid.uuid4().int)[:11]
    body = {
        "amount": "10.00",
        "currency": "EUR",
        "store_id": o.store,
        "card_number": digits + luhn_check_digit(digits),
    }
    return Req("POST", "/v1/gift-cards", body)


@case("GET", "/v1/gift-cards/{card_number}")
def _balance(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/gift-cards/{w.card(o)}")


@case("POST", "/v1/gift-cards/{card_number}/redeem")
def _spend(w: World, o: Owner) -> Req:
    body = {"redemption_id": uid("AZG"), "amount": "1.00", "store_id": o.store}
    return Req("POST", f"/v1/gift-cards/{w.card(o)}/redeem", body)


@case("POST", "/v1/gift-cards/{card_number}/reload")
def _reload(w: World, o: Owner) -> Req:
    return Req("POST", f"/v1/gift-cards/{w.card(o)}/reload", {"amount": "1.00"})


@case("POST", "/v1/gift-cards/{card_number}/holds")
def _hold(w: World, o: Owner) -> Req:
    body = {"hold_id": uid("AZH"), "amount": "1.00", "expires_in_seconds": 600}
    return Req("POST", f"/v1/gift-cards/{w.card(o)}/holds", body)


@case("POST", "/v1/holds/{hold_id}/capture")
def _capture(w: World, o: Owner) -> Req:
    return Req("POST", f"/v1/holds/{w.new_hold(o)}/capture", {"amount": "1.00"}, {"store_id": o.store})


@case("POST", "/v1/holds/{hold_id}/release")
def _release(w: World, o: Owner) -> Req:
    return Req("POST", f"/v1/holds/{w.new_hold(o)}/release", params={"store_id": o.store})


@case("GET", "/v1/customers/{customer_id}/accounts")
def _accounts(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/customers/{w.customer(o)}/accounts")


@case("POST", "/v1/customers/{customer_id}/accounts")
def _issue_account(w: World, o: Owner) -> Req:
    body = {"kind": "merchandise_credit", "amount": "5.00", "currency": "EUR"}
    return Req("POST", f"/v1/customers/{w.customer(o)}/accounts", body)


@case("GET", "/v1/accounts/{account_id}/ledger")
def _account_ledger(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/accounts/{w.card(o)}/ledger")


@case("GET", "/v1/admin/outbox")
def _outbox(w: World, o: Owner) -> Req:
    return Req("GET", "/v1/admin/outbox", params={"limit": "1"})


# the catalogue (admin)
@case("POST", "/v1/admin/rewards")
def _create_reward(w: World, o: Owner) -> Req:
    return Req("POST", "/v1/admin/rewards", w.reward_body())


@case("GET", "/v1/admin/rewards")
def _rewards(w: World, o: Owner) -> Req:
    return Req("GET", "/v1/admin/rewards", params={"limit": "1"})


@case("GET", "/v1/admin/rewards/{reward_id}")
def _reward(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/admin/rewards/{w.reward()}")


@case("PUT", "/v1/admin/rewards/{reward_id}")
def _replace_reward(w: World, o: Owner) -> Req:
    return Req("PUT", f"/v1/admin/rewards/{w.reward()}", w.reward_body(w.reward()))


@case("POST", "/v1/admin/offers")
def _create_offer(w: World, o: Owner) -> Req:
    return Req("POST", "/v1/admin/offers", w.new_offer())


@case("GET", "/v1/admin/offers")
def _offers(w: World, o: Owner) -> Req:
    return Req("GET", "/v1/admin/offers", params={"limit": "1"})


@case("GET", "/v1/admin/offers/{offer_id}")
def _offer(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/admin/offers/{w.offer()}")


@case("PUT", "/v1/admin/offers/{offer_id}")
def _replace_offer(w: World, o: Owner) -> Req:
    return Req("PUT", f"/v1/admin/offers/{w.offer()}", {**w.new_offer(), "offer_id": w.offer()})


@case("POST", "/v1/admin/offers/{offer_id}/pause")
def _pause(w: World, o: Owner) -> Req:
    return Req("POST", f"/v1/admin/offers/{w.offer()}/pause")


@case("POST", "/v1/admin/offers/{offer_id}/activate")
def _activate(w: World, o: Owner) -> Req:
    return Req("POST", f"/v1/admin/offers/{w.offer()}/activate")


@case("GET", "/v1/admin/price-groups")
def _price_groups(w: World, o: Owner) -> Req:
    return Req("GET", "/v1/admin/price-groups", params={"limit": "1"})


@case("GET", "/v1/admin/price-groups/{group_id}")
def _price_group(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/admin/price-groups/{w.price_group()}")


@case("PUT", "/v1/admin/price-groups/{group_id}")
def _put_price_group(w: World, o: Owner) -> Req:
    group_id = uid("authz")
    return Req("PUT", f"/v1/admin/price-groups/{group_id}", {"group_id": group_id, "name": "authz"})


@case("PUT", "/v1/admin/price-groups/{group_id}/members/{customer_id}")
def _join(w: World, o: Owner) -> Req:
    return Req("PUT", f"/v1/admin/price-groups/{w.price_group()}/members/{w.new_customer(o)}")


@case("DELETE", "/v1/admin/price-groups/{group_id}/members/{customer_id}")
def _leave(w: World, o: Owner) -> Req:
    customer_id = w.new_customer(o)
    w.ok("PUT", f"/v1/admin/price-groups/{w.price_group()}/members/{customer_id}", ADMIN_KEY)
    return Req("DELETE", f"/v1/admin/price-groups/{w.price_group()}/members/{customer_id}")


# challenges and badges (admin), a customer's challenges (any client). Drafts and paused badges:
# they must change nothing for the other tests on this platform.
def _challenge_body(challenge_id: str) -> dict[str, Any]:
    return {
        "challenge_id": challenge_id,
        "name": "authz",
        "status": "draft",
        "tasks": [{"task_id": "t", "event": {"type": "authz-nobody-sends-this"}, "count": 1}],
        "reward": {"points": 1},
    }


def _badge_body(badge_id: str) -> dict[str, Any]:
    return {
        "badge_id": badge_id,
        "name": "authz",
        "status": "paused",
        "when": {"metric": "transactions", "gte": 1},
    }


@case("PUT", "/v1/admin/challenges/{challenge_id}")
def _put_challenge(w: World, o: Owner) -> Req:
    challenge_id = uid("authz")
    return Req("PUT", f"/v1/admin/challenges/{challenge_id}", _challenge_body(challenge_id))


@case("GET", "/v1/admin/challenges")
def _challenges(w: World, o: Owner) -> Req:
    return Req("GET", "/v1/admin/challenges", params={"limit": "1"})


@case("GET", "/v1/admin/challenges/{challenge_id}")
def _challenge(w: World, o: Owner) -> Req:
    challenge_id = uid("authz")
    w.ok("PUT", f"/v1/admin/challenges/{challenge_id}", ADMIN_KEY, _challenge_body(challenge_id))
    return Req("GET", f"/v1/admin/challenges/{challenge_id}")


@case("PUT", "/v1/admin/badges/{badge_id}")
def _put_badge(w: World, o: Owner) -> Req:
    badge_id = uid("authz")
    return Req("PUT", f"/v1/admin/badges/{badge_id}", _badge_body(badge_id))


@case("GET", "/v1/admin/badges")
def _badges(w: World, o: Owner) -> Req:
    return Req("GET", "/v1/admin/badges", params={"limit": "1"})


@case("GET", "/v1/admin/badges/{badge_id}")
def _badge(w: World, o: Owner) -> Req:
    badge_id = uid("authz")
    w.ok("PUT", f"/v1/admin/badges/{badge_id}", ADMIN_KEY, _badge_body(badge_id))
    return Req("GET", f"/v1/admin/badges/{badge_id}")


@case("GET", "/v1/customers/{customer_id}/challenges")
def _customer_challenges(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/customers/{w.customer(o)}/challenges")


# keys, stores and the programme (admin)
@case("POST", "/v1/admin/api-keys")
def _issue_key(w: World, o: Owner) -> Req:
    return Req(
        "POST", "/v1/admin/api-keys", {"kind": "pos", "store_id": "ams-01", "name": "authorisation matrix"}
    )


@case("GET", "/v1/admin/api-keys")
def _keys(w: World, o: Owner) -> Req:
    return Req("GET", "/v1/admin/api-keys", params={"limit": "1"})


@case("DELETE", "/v1/admin/api-keys/{key_id}")
def _revoke(w: World, o: Owner) -> Req:
    return Req("DELETE", f"/v1/admin/api-keys/{w.new_key()['key_id']}")


@case("GET", "/v1/admin/stores")
def _stores(w: World, o: Owner) -> Req:
    return Req("GET", "/v1/admin/stores", params={"limit": "1"})


@case("GET", "/v1/admin/stores/{store_id}")
def _store(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/admin/stores/{w.other_store}")


@case("PUT", "/v1/admin/stores/{store_id}")
def _put_store(w: World, o: Owner) -> Req:
    return Req("PUT", f"/v1/admin/stores/{uid('authz')}", {"channel": "pos", "name": "Authorisation matrix"})


@case("GET", "/v1/admin/programme")
def _programme(w: World, o: Owner) -> Req:
    return Req("GET", "/v1/admin/programme")


@case("PUT", "/v1/admin/programme")
def _put_programme(w: World, o: Owner) -> Req:
    # The programme as it is: other tests on this worker see no change.
    return Req("PUT", "/v1/admin/programme", w.ok("GET", "/v1/admin/programme", ADMIN_KEY))


# message templates (admin)
TEMPLATE = {"channel": "sms", "body": "Hi {{ first_name }}, you have {{ points.available }} points"}


def _new_template(w: World) -> str:
    template_id = uid("authz-tpl")
    w.ok("PUT", f"/v1/admin/templates/{template_id}", ADMIN_KEY, TEMPLATE)
    return template_id


@case("PUT", "/v1/admin/templates/{template_id}")
def _put_template(w: World, o: Owner) -> Req:
    return Req("PUT", f"/v1/admin/templates/{uid('authz-tpl')}", TEMPLATE)


@case("GET", "/v1/admin/templates")
def _templates(w: World, o: Owner) -> Req:
    return Req("GET", "/v1/admin/templates", params={"limit": "1"})


@case("GET", "/v1/admin/templates/{template_id}")
def _template(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/admin/templates/{w.once('template', None, lambda: _new_template(w))}")


@case("DELETE", "/v1/admin/templates/{template_id}")
def _delete_template(w: World, o: Owner) -> Req:
    return Req("DELETE", f"/v1/admin/templates/{_new_template(w)}")


# segments (admin)
# A rule nobody matches: other tests read their customers' whole list of segments.
SEGMENT = {"name": "authz", "rule": {"attr": "profile.attributes.cohort", "eq": "authz-matches-nobody"}}


def _new_segment(w: World) -> str:
    segment_id = uid("authz-seg")
    w.ok("PUT", f"/v1/admin/segments/{segment_id}", ADMIN_KEY, SEGMENT)
    return segment_id


@case("PUT", "/v1/admin/segments/{segment_id}")
def _put_segment(w: World, o: Owner) -> Req:
    return Req("PUT", f"/v1/admin/segments/{uid('authz-seg')}", SEGMENT)


@case("GET", "/v1/admin/segments")
def _segments(w: World, o: Owner) -> Req:
    return Req("GET", "/v1/admin/segments", params={"limit": "1"})


@case("GET", "/v1/admin/segments/{segment_id}")
def _segment(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/admin/segments/{w.once('segment', None, lambda: _new_segment(w))}")


@case("DELETE", "/v1/admin/segments/{segment_id}")
def _delete_segment(w: World, o: Owner) -> Req:
    return Req("DELETE", f"/v1/admin/segments/{_new_segment(w)}")


@case("GET", "/v1/admin/segments/{segment_id}/customers")
def _segment_customers(w: World, o: Owner) -> Req:
    segment_id = w.once("segment", None, lambda: _new_segment(w))
    return Req("GET", f"/v1/admin/segments/{segment_id}/customers", params={"limit": "1"})


# unsubscribe links (no key: the token names customer and channel) and print files (admin)
def _unsubscribe_token(w: World, o: Owner) -> str:
    assert w.api.runtime is not None
    return unsubscribe.mint(w.api.runtime.container.cursor_key(), w.customer(o), Channel.SMS)


@case("GET", "/v1/unsubscribe")
def _unsubscribe_page(w: World, o: Owner) -> Req:
    return Req("GET", "/v1/unsubscribe", params={"token": _unsubscribe_token(w, o)})


@case("POST", "/v1/unsubscribe")
def _unsubscribe(w: World, o: Owner) -> Req:
    return Req("POST", "/v1/unsubscribe", params={"token": _unsubscribe_token(w, o)})


# confirmation links (no key: the signed, expiring token names the customer; a member is confirmed)
def _confirm_token(w: World, o: Owner) -> str:
    assert w.api.runtime is not None
    expires = datetime.now(UTC) + timedelta(days=1)
    return confirmation.mint(w.api.runtime.container.cursor_key(), w.customer(o), expires)


@case("GET", "/v1/confirm")
def _confirm_page(w: World, o: Owner) -> Req:
    return Req("GET", "/v1/confirm", params={"token": _confirm_token(w, o)})


@case("POST", "/v1/confirm")
def _confirm(w: World, o: Owner) -> Req:
    return Req("POST", "/v1/confirm", params={"token": _confirm_token(w, o)})


@case("GET", "/v1/admin/print-files")
def _print_files(w: World, o: Owner) -> Req:
    return Req("GET", "/v1/admin/print-files", params={"limit": "1"})


# campaigns (admin): a draft event campaign naming nothing, so it needs no segment, offer or template
CAMPAIGN = {
    "name": "authz",
    "trigger": {"type": "event", "event": "CustomerEventRecorded", "where": {"type": "authz-nobody-sends"}},
    "actions": [{"type": "points", "points": 1}],
}


def _new_campaign(w: World) -> str:
    campaign_id = uid("authz-camp")
    w.ok("PUT", f"/v1/admin/campaigns/{campaign_id}", ADMIN_KEY, CAMPAIGN)
    return campaign_id


@case("PUT", "/v1/admin/campaigns/{campaign_id}")
def _put_campaign(w: World, o: Owner) -> Req:
    return Req("PUT", f"/v1/admin/campaigns/{uid('authz-camp')}", CAMPAIGN)


@case("GET", "/v1/admin/campaigns")
def _campaigns(w: World, o: Owner) -> Req:
    return Req("GET", "/v1/admin/campaigns", params={"limit": "1"})


@case("GET", "/v1/admin/campaigns/{campaign_id}")
def _campaign(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/admin/campaigns/{w.once('campaign', None, lambda: _new_campaign(w))}")


@case("DELETE", "/v1/admin/campaigns/{campaign_id}")
def _delete_campaign(w: World, o: Owner) -> Req:
    return Req("DELETE", f"/v1/admin/campaigns/{_new_campaign(w)}")


# campaign runs (admin): an active manual campaign over the segment nobody matches, so its runs give
# nobody anything (other tests read their customers' balances)
def _runnable_campaign(w: World) -> str:
    campaign_id = uid("authz-run")
    body = {
        "name": "authz runs",
        "trigger": {"type": "manual"},
        "audience": {"segment_id": w.once("segment", None, lambda: _new_segment(w))},
        "actions": [{"type": "points", "points": 1}],
        "status": "active",
    }
    w.ok("PUT", f"/v1/admin/campaigns/{campaign_id}", ADMIN_KEY, body)
    return campaign_id


def _run_in(w: World, status: str) -> tuple[str, str]:
    """A run's record as it stands while its execution runs (or once cancelled), written where the
    run control keeps it: a run of nobody ends in a moment, too soon to cancel it over HTTP."""
    from loyalty.adapters.campaign_runs import DynamoRunRecords
    from loyalty.domain.campaign_runs import CampaignRun, execution_name

    assert w.api.runtime is not None and w.api.runtime.container is not None
    campaign_id, run_id = w.once("run-campaign", None, lambda: _runnable_campaign(w)), uid("authz")
    run = CampaignRun(
        campaign_id=campaign_id,
        run_id=run_id,
        status="running",
        trigger="manual",
        attempt=1,
        execution=execution_name(campaign_id, run_id, 1),
        started_at=datetime.now(UTC).isoformat(),
    )
    records = DynamoRunRecords(w.api.runtime.container.table)
    assert records.create(run) is None
    if status == "cancelled":
        assert records.cancel(run, datetime.now(UTC).isoformat())
    return campaign_id, run_id


@case("POST", "/v1/admin/campaigns/{campaign_id}/runs")
def _start_run(w: World, o: Owner) -> Req:
    return Req(
        "POST", f"/v1/admin/campaigns/{w.once('run-campaign', None, lambda: _runnable_campaign(w))}/runs"
    )


@case("GET", "/v1/admin/campaigns/{campaign_id}/runs")
def _runs(w: World, o: Owner) -> Req:
    campaign_id = w.once("run-campaign", None, lambda: _runnable_campaign(w))
    return Req("GET", f"/v1/admin/campaigns/{campaign_id}/runs", params={"limit": "1"})


@case("GET", "/v1/admin/campaigns/{campaign_id}/runs/{run_id}")
def _run(w: World, o: Owner) -> Req:
    campaign_id, run_id = w.once("run", None, lambda: _run_in(w, "running"))
    return Req("GET", f"/v1/admin/campaigns/{campaign_id}/runs/{run_id}")


@case("POST", "/v1/admin/campaigns/{campaign_id}/runs/{run_id}/cancel")
def _cancel_run(w: World, o: Owner) -> Req:
    campaign_id, run_id = _run_in(w, "running")
    return Req("POST", f"/v1/admin/campaigns/{campaign_id}/runs/{run_id}/cancel")


@case("POST", "/v1/admin/campaigns/{campaign_id}/runs/{run_id}/retry")
def _retry_run(w: World, o: Owner) -> Req:
    campaign_id, run_id = _run_in(w, "cancelled")
    return Req("POST", f"/v1/admin/campaigns/{campaign_id}/runs/{run_id}/retry")


@case("POST", "/v1/admin/campaigns/{campaign_id}/dry-run")
def _dry_run(w: World, o: Owner) -> Req:
    campaign_id = w.once("run-campaign", None, lambda: _runnable_campaign(w))
    return Req("POST", f"/v1/admin/campaigns/{campaign_id}/dry-run")


# reports over the data lake (admin)
@case("GET", "/v1/admin/reports/activity")
def _activity_report(w: World, o: Owner) -> Req:
    return Req("GET", "/v1/admin/reports/activity", params={"from": "2026-01-01", "to": "2026-01-31"})


@case("GET", "/v1/admin/reports/members-vs-non-members")
def _members_report(w: World, o: Owner) -> Req:
    params = {"from": "2026-01-01", "to": "2026-01-31"}
    return Req("GET", "/v1/admin/reports/members-vs-non-members", params=params)


@case("GET", "/v1/admin/reports/cohorts")
def _cohorts_report(w: World, o: Owner) -> Req:
    return Req("GET", "/v1/admin/reports/cohorts", params={"by": "enrolment_month"})


def _campaign(w: World) -> str:
    """A saved campaign to report on (written as the campaign service keeps it)."""
    from tests.e2e.test_campaign_report_http import save_campaign

    def make() -> str:
        campaign_id = uid("authz")
        save_campaign(w.api, campaign_id, datetime.now(UTC) - timedelta(days=1))
        return campaign_id

    return str(w.once("campaign", None, make))


@case("GET", "/v1/admin/reports/campaigns/{campaign_id}")
def _campaign_report(w: World, o: Owner) -> Req:
    return Req("GET", f"/v1/admin/reports/campaigns/{_campaign(w)}", params={"window_days": "30"})


@case("POST", "/v1/admin/campaigns/{campaign_id}/backtest")
def _campaign_backtest(w: World, o: Owner) -> Req:
    as_of = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    return Req(
        "POST", f"/v1/admin/campaigns/{_campaign(w)}/backtest", json={"as_of": as_of, "window_days": 7}
    )


# segment previews over the data lake (admin; issue 17)
@case("POST", "/v1/admin/segments/preview")
def _segment_preview(w: World, o: Owner) -> Req:
    return Req("POST", "/v1/admin/segments/preview", json={"rule": {"attr": "member", "eq": True}})


# ---- the world and the test -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(api: Api) -> World:
    w = World(api)
    # A key that worked (so the gateway cached its verdict) and was then revoked: it must be refused
    # once the authorizer's cache has expired. The rest of the set-up runs while that time passes.
    revoked = w.new_key()
    w.revoked_key = revoked["api_key"]
    assert api.call("GET", "/v1/customers/nobody", w.revoked_key).status_code == 404
    w.ok("DELETE", f"/v1/admin/api-keys/{revoked['key_id']}", ADMIN_KEY)
    revoked_at = time.monotonic()

    w.other_store = uid("authz")
    w.ok("PUT", f"/v1/admin/stores/{w.other_store}", ADMIN_KEY, {"channel": "pos", "name": "Other store"})
    w.other_till_key = w.new_key(w.other_store)["api_key"]
    marketer = {"kind": "marketer", "name": "authorisation matrix"}
    w.marketer_key = w.ok("POST", "/v1/admin/api-keys", ADMIN_KEY, marketer)["api_key"]
    w.rich_customer = w.new_customer(TILL)
    sale = w.sale_body(TILL, euros=1000, customer={"customer_id": w.rich_customer})
    assert w.ok("POST", "/v1/transactions", POS_KEY, sale)["points_earned"] == 10_000

    time.sleep(max(0.0, revoked_at + AUTHORIZER_CACHE_SECONDS + 0.5 - time.monotonic()))
    assert api.call("GET", "/v1/customers/nobody", w.revoked_key).status_code == 401
    return w


def test_every_route_has_a_case() -> None:
    routes = {(r.method, r.path) for r in ROUTES}
    assert set(CASES) - routes == set(), "cases for routes that do not exist"
    assert routes - set(CASES) == set(), "routes without a case in the authorisation matrix"


def check(route: Route, caller: Caller, expected: Outcome, request: Req, response: requests.Response) -> None:
    where = f"{route.method} {route.path} as {caller.name} ({request.method} {request.path})"
    if expected is Outcome.UNAUTHENTICATED:
        assert response.status_code == 401, (
            f"{where}: expected 401, got {response.status_code} {response.text}"
        )
        assert_problem(response, 401, "unauthenticated")
    elif expected is Outcome.FORBIDDEN:
        assert response.status_code == 403, (
            f"{where}: expected 403, got {response.status_code} {response.text}"
        )
        assert_problem(response, 403, "forbidden")
    else:
        assert 200 <= response.status_code < 300, (
            f"{where}: expected 2xx, got {response.status_code} {response.text}"
        )


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_each_caller_gets_exactly_what_the_matrix_says(api: Api, world: World, route: Route) -> None:
    build = CASES.get((route.method, route.path))
    assert build is not None, f"{route.method} {route.path} has no case in the authorisation matrix"
    unused: dict[Owner, Req] = {}  # a request no allowed call has sent yet
    for caller in CALLERS:
        expected = expected_outcome(route, caller.kind, own_store=caller.own_store)
        if expected is Outcome.ALLOWED:
            request = unused.pop(caller.owner, None) or build(world, caller.owner)
        else:
            if caller.owner not in unused:
                unused[caller.owner] = build(world, caller.owner)
            request = unused[caller.owner]
        response = api.call(
            request.method, request.path, caller.key(world), json=request.json, params=request.params
        )
        check(route, caller, expected, request, response)


def test_points_holds_belong_to_the_store_that_placed_them_too(api: Api, world: World) -> None:
    """The matrix captures and releases gift-card holds; a points hold takes the other branch."""
    held = [
        world.ok(
            "POST",
            f"/v1/customers/{world.rich_customer}/holds",
            POS_KEY,
            {"hold_id": uid("AZP"), "points": 2, "expires_in_seconds": 600},
        )["hold_id"]
        for _ in range(2)
    ]
    capture, release = f"/v1/holds/{held[0]}/capture", f"/v1/holds/{held[1]}/release"
    till = {"store_id": "ams-01"}
    for key in (world.other_till_key, WEB_KEY):
        # A hold_id is unique per store: another store's key does not see the till's hold at all,
        # and naming the till's store is refused.
        assert_problem(api.call("POST", capture, key, json={"points": 2}), 404, "hold-not-found")
        assert_problem(api.call("POST", release, key), 404, "hold-not-found")
        assert_problem(api.call("POST", capture, key, json={"points": 2}, params=till), 403, "forbidden")
        assert_problem(api.call("POST", release, key, params=till), 403, "forbidden")
    captured = api.call("POST", capture, POS_KEY, json={"points": 2})
    assert (captured.status_code, captured.json()["status"]) == (200, "captured"), captured.text
    released = api.call("POST", release, POS_KEY)
    assert (released.status_code, released.json()["status"]) == (200, "released"), released.text


def test_a_customers_own_account_is_spent_through_the_gift_card_routes_only_for_its_owner(
    api: Api, world: World
) -> None:
    """Whatever the key, merchandise credit (and promotional cash, a registered card) named on the
    gift-card routes is spent or held only for the customer who owns it (as on /v1/redemptions)."""
    owner, stranger = world.new_customer(TILL), world.new_customer(TILL)
    body = {"kind": "merchandise_credit", "amount": "5.00", "currency": "EUR"}
    account = world.ok("POST", f"/v1/customers/{owner}/accounts", POS_KEY, body)["account_id"]
    for key in (POS_KEY, WEB_KEY, world.other_till_key, ADMIN_KEY):
        spend = {"redemption_id": uid("AZO"), "amount": "1.00", "store_id": "ams-01"}
        if key in (WEB_KEY, world.other_till_key):
            spend.pop("store_id")  # their own store
        hold = {"hold_id": uid("AZO"), "amount": "1.00"}
        for path, request in (
            (f"/v1/gift-cards/{account}/redeem", spend),
            (f"/v1/gift-cards/{account}/holds", hold),
        ):
            assert_problem(api.call("POST", path, key, json=request), 422, "validation-failed")
            as_stranger = {**request, "customer": {"customer_id": stranger}}
            assert_problem(api.call("POST", path, key, json=as_stranger), 403, "forbidden")
    accounts = world.ok("GET", f"/v1/customers/{owner}/accounts", POS_KEY)["items"]
    assert [(a["balance"], a["held"]) for a in accounts] == [("5.00", "0.00")]
    for_owner = {"redemption_id": uid("AZO"), "amount": "1.00", "customer": {"customer_id": owner}}
    assert world.ok("POST", f"/v1/gift-cards/{account}/redeem", POS_KEY, for_owner)["balance"] == "4.00"


def test_reload_adds_value_to_gift_cards_only(api: Api, world: World) -> None:
    """The reload route is open to every store's key because gift cards are brand-wide tender; it
    must not become a way to add promotional cash (admins only) or merchandise credit (refunds)."""
    route = next(r for r in ROUTES if (r.method, r.path) == ("POST", "/v1/gift-cards/{card_number}/reload"))
    accounts = f"/v1/customers/{world.customer(TILL)}/accounts"
    promo = world.ok("POST", accounts, ADMIN_KEY, {"kind": "promo_cash", "amount": "5.00", "currency": "EUR"})
    credit = world.ok(
        "POST", accounts, POS_KEY, {"kind": "merchandise_credit", "amount": "4.00", "currency": "EUR"}
    )
    for account in (promo, credit):
        request = Req("POST", f"/v1/gift-cards/{account['account_id']}/reload", {"amount": "1000.00"})
        for caller in CALLERS:
            response = api.call(request.method, request.path, caller.key(world), json=request.json)
            expected = expected_outcome(route, caller.kind, own_store=caller.own_store)
            if expected is Outcome.ALLOWED:
                assert_problem(response, 409, "not-a-gift-card")
            else:
                check(route, caller, expected, request, response)
        ledger = world.ok("GET", f"/v1/accounts/{account['account_id']}/ledger", POS_KEY)["items"]
        assert [(m["reason"], m["amount"]) for m in ledger] == [("issue", account["balance"])]
