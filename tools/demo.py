"""`python -m tools.demo`: richer demo data, loaded into a running `make run` through its public API.

Everything goes over HTTP with the demo keys, as a till, the web shop and the console would send it,
so loading the demo also exercises the contract. It can run any number of times: every write is
named by an id the demo owns (a `transaction_id`, `redemption_id`, `request_id`, an
Idempotency-Key) or is a PUT of a whole document, and what already exists is read back, not made
again. A second run creates nothing and moves no balance.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

ADMIN_KEY, POS_KEY, WEB_KEY = "local-admin-key", "local-pos-key", "local-web-key"
POS_STORE, WEB_STORE = "ams-01", "web-nl"  # the seeded stores the pos and web keys belong to
CURRENCY = "EUR"
# A marketer's change reaches every warm function within this many seconds (the catalogue cache,
# loyalty.services.offers.CATALOGUE_SECONDS): sales recorded sooner might not see new offers.
CATALOGUE_SECONDS = 10.0

STORES: dict[str, dict[str, Any]] = {
    "rtm-01": {
        "channel": "pos",
        "format": "flagship",
        "name": "Rotterdam flagship",
        "attributes": {"coffee_corner": True, "city": "Rotterdam", "opened": "2019-04-12"},
    },
    "utr-x1": {
        "channel": "pos",
        "format": "express",
        "name": "Utrecht Centraal express",
        "attributes": {"coffee_corner": True, "city": "Utrecht", "station": True, "seats": 0},
    },
    "rmd-o1": {
        "channel": "pos",
        "format": "outlet",
        "name": "Roermond outlet",
        "attributes": {"coffee_corner": False, "city": "Roermond", "clearance": True},
    },
}

# sku -> (category, shelf price)
PRODUCTS: dict[str, tuple[str, str]] = {
    "BEANS-ETH": ("coffee", "12.95"),
    "BEANS-COL": ("coffee", "9.95"),
    "ESPRESSO": ("coffee", "2.80"),
    "CROISSANT": ("pastry", "1.95"),
    "TEA-SENCHA": ("tea", "7.50"),
    "MUG-01": ("homeware", "14.95"),
    "GRINDER": ("equipment", "89.00"),
    "MACHINE": ("equipment", "449.00"),
}

PRICE_GROUPS: dict[str, dict[str, Any]] = {
    "staff": {
        "group_id": "staff",
        "name": "Staff",
        # Anyone whose profile says so, and whoever is assigned explicitly (see STAFF_ASSIGNED).
        "members": {"attributes": {"staff": True}},
        "prices": [
            {"category": "coffee", "percent_off": "20"},
            {"sku": "MUG-01", "price": "7.50"},
        ],
    },
}

OFFERS: dict[str, dict[str, Any]] = {
    "demo-coffee-corner": {
        "name": "10% off coffee in coffee-corner stores",
        "audience": {"members_only": True},
        "where": {"channels": ["pos"], "store_attributes": {"coffee_corner": True}},
        "condition": {"categories": ["coffee"]},
        "effect": {"type": "percent_off", "value": "10", "applies_to": "lines", "categories": ["coffee"]},
        "priority": 10,
    },
    "demo-pastry-pair": {
        "name": "Pastries 1.50 each when you take two or more",
        "condition": {"categories": ["pastry"], "min_quantity": 2},
        "effect": {"type": "fixed_price", "value": "1.50", "applies_to": "lines", "categories": ["pastry"]},
        "priority": 5,
    },
    "demo-gold-double": {
        "name": "Gold members earn double points",
        "audience": {"members_only": True, "tiers": ["gold"]},
        "effect": {"type": "points_multiplier", "value": "2"},
    },
    "demo-basket-50": {
        "name": "5.00 off a basket of 50.00 or more",
        "condition": {"min_subtotal": "50.00"},
        "effect": {"type": "amount_off", "value": "5", "applies_to": "basket"},
        "priority": 1,
    },
    "demo-welcome5": {
        "name": "5.00 off your next visit (personal coupon)",
        "requires_coupon": True,
        "condition": {"min_subtotal": "20.00"},
        "effect": {"type": "amount_off", "value": "5", "applies_to": "basket"},
    },
}


@dataclass(frozen=True)
class Person:
    slug: str
    first_name: str
    last_name: str
    member: bool
    store_id: str
    links: tuple[tuple[str, str], ...] = ()
    birthday: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    consents: Mapping[str, bool] = field(default_factory=dict)


def _address(line1: str, postal_code: str, city: str) -> dict[str, str]:
    return {"line1": line1, "postal_code": postal_code, "city": city, "country": "NL"}


# Enrolled (or recorded as identified non-members) at a till, the web shop or the console. Two more
# people join through their purchases: a guest checkout (GUEST) and a non-member who enrols later.
PEOPLE: tuple[Person, ...] = (
    Person(
        "anna",
        "Anna",
        "de Vries",
        True,
        POS_STORE,
        links=(("email", "anna.devries@demo.example"), ("phone", "+31 6 1000 0001")),
        birthday="1986-03-14",
        attributes={
            "address": _address("Prinsengracht 263", "1016 GV", "Amsterdam"),
            "favourite_store_id": POS_STORE,
        },
        consents={"email": True, "sms": True},
    ),
    Person(
        "bram",
        "Bram",
        "Jansen",
        True,
        "rtm-01",
        links=(("email", "bram.jansen@demo.example"), ("card", "DEMO-CARD-0002")),
        birthday="1992-11-02",
        attributes={"address": _address("Witte de Withstraat 50", "3012 BR", "Rotterdam")},
        consents={"email": True},
    ),
    Person(
        "chloe",
        "Chloé",
        "Bakker",
        True,
        "utr-x1",
        links=(("phone", "+31 6 1000 0003"),),
        birthday="1999-07-21",
        attributes={"staff": True, "favourite_store_id": "utr-x1"},
        consents={"sms": True},
    ),
    Person(
        "daan",
        "Daan",
        "Visser",
        True,
        POS_STORE,
        links=(("email", "daan.visser@demo.example"),),
        consents={"email": True},
    ),
    Person(
        "eva",
        "Eva",
        "Smit",
        True,
        WEB_STORE,
        links=(("email", "eva.smit@demo.example"), ("phone", "+31 6 1000 0005")),
        birthday="1978-12-30",
        attributes={"address": _address("Oudegracht 120", "3511 AW", "Utrecht")},
        consents={"email": True, "mail": True},
    ),
    Person("finn", "Finn", "Meijer", True, "rtm-01", links=(("card", "DEMO-CARD-0006"),)),
    Person(
        "gwen",
        "Gwen",
        "de Boer",
        True,
        WEB_STORE,
        links=(("email", "gwen.deboer@demo.example"),),
        birthday="2001-05-09",
        consents={"email": True},
    ),
    Person(
        "hugo",
        "Hugo",
        "Mulder",
        True,
        "rmd-o1",
        links=(("email", "hugo.mulder@demo.example"),),
        attributes={"address": _address("Stationsplein 9", "6041 GA", "Roermond")},
    ),
    Person("joost", "Joost", "de Groot", False, POS_STORE, links=(("phone", "+31 6 1000 0010"),)),
    Person("kim", "Kim", "Bos", False, WEB_STORE, links=(("email", "kim.bos@demo.example"),)),
)
GUEST = ("iris", ("email", "iris.vos@demo.example"))  # a web-shop guest checkout: becomes a non-member
LATE_JOINER = Person(  # buys as an identified non-member, then enrols: retro credit
    "lars", "Lars", "Peters", False, "utr-x1", links=(("phone", "+31 6 1000 0012"),)
)
STAFF_ASSIGNED = "daan"  # in the staff price group by explicit assignment, not by attribute


@dataclass(frozen=True)
class Sale:
    transaction_id: str
    store_id: str
    days_ago: float
    customer: str | None  # a person's slug, GUEST's slug, or None (anonymous)
    lines: tuple[tuple[str, int], ...]  # (sku, quantity)
    coupon_of: str | None = None  # use the demo coupon issued to this person
    order_status: str | None = None  # web orders: where the order got to


@dataclass(frozen=True)
class Return:
    transaction_id: str
    original: Sale
    line_ids: tuple[str, ...]
    days_ago: float


def _sales() -> tuple[tuple[Sale, ...], tuple[Return, ...]]:
    s = Sale
    sales = (
        s("demo-s-001", POS_STORE, 26, "anna", (("MACHINE", 2), ("BEANS-ETH", 2))),
        s("demo-s-002", "rtm-01", 22, "anna", (("GRINDER", 1), ("BEANS-COL", 3), ("MUG-01", 2))),
        s("demo-s-003", POS_STORE, 12, "anna", (("BEANS-ETH", 2), ("CROISSANT", 2), ("ESPRESSO", 1))),
        s("demo-s-004", "rtm-01", 20, "bram", (("BEANS-COL", 2), ("ESPRESSO", 2))),
        s("demo-s-005", "rtm-01", 6, "bram", (("GRINDER", 1), ("MUG-01", 1))),
        s("demo-s-006", "utr-x1", 9, "chloe", (("ESPRESSO", 1), ("CROISSANT", 2))),
        s("demo-s-007", "utr-x1", 2, "chloe", (("BEANS-ETH", 1), ("MUG-01", 1))),
        s("demo-s-008", POS_STORE, 15, "daan", (("BEANS-COL", 2), ("TEA-SENCHA", 1))),
        s("demo-w-009", WEB_STORE, 18, "eva", (("GRINDER", 1), ("BEANS-ETH", 1)), order_status="delivered"),
        s("demo-w-010", WEB_STORE, 4, "eva", (("TEA-SENCHA", 2),), order_status="shipped"),
        s("demo-s-011", "rtm-01", 11, "finn", (("ESPRESSO", 2), ("CROISSANT", 3))),
        s("demo-w-012", WEB_STORE, 7, "gwen", (("MUG-01", 2), ("BEANS-COL", 1)), order_status="delivered"),
        s("demo-w-013", WEB_STORE, 3, "gwen", (("BEANS-ETH", 3),), order_status="cancelled"),
        s("demo-s-014", "rmd-o1", 5, "hugo", (("MUG-01", 2), ("TEA-SENCHA", 1)), coupon_of="hugo"),
        s("demo-s-015", POS_STORE, 8, "joost", (("BEANS-ETH", 1), ("ESPRESSO", 1))),
        s("demo-w-016", WEB_STORE, 10, "kim", (("TEA-SENCHA", 1),), order_status="delivered"),
        s("demo-w-017", WEB_STORE, 1, "iris", (("BEANS-COL", 2), ("MUG-01", 1)), order_status="placed"),
        s("demo-s-018", "utr-x1", 14, "lars", (("BEANS-ETH", 2), ("CROISSANT", 1))),
        s("demo-s-019", "utr-x1", 0.2, None, (("ESPRESSO", 1), ("CROISSANT", 1))),
        s("demo-s-020", "rmd-o1", 13, None, (("GRINDER", 1),)),
    )
    by_id = {sale.transaction_id: sale for sale in sales}
    returns = (
        Return("demo-r-001", by_id["demo-s-002"], ("2",), 20),  # anna returns the beans of a sale
        Return("demo-r-002", by_id["demo-s-005"], ("1",), 4),  # bram brings the grinder back
        Return("demo-r-003", by_id["demo-w-009"], ("1", "2"), 12),  # eva returns a whole web order
    )
    return sales, returns


SALES, RETURNS = _sales()
# The order-status updates a web order receives on its way to where the demo leaves it.
ORDER_STEPS: dict[str, tuple[str, ...]] = {
    "placed": (),
    "shipped": ("shipped",),
    "delivered": ("shipped", "delivered"),
    "cancelled": ("cancelled",),
}


# Messages, challenges and badges for the console's screens; behavioural events for the timelines.
TEMPLATES: dict[str, dict[str, Any]] = {
    "demo-points-email": {
        "channel": "email",
        "subject": "{{ first_name }}, your points",
        "body": "Hello {{ first_name }}, you have {{ points.available }} points ({{ tier }}).\n\n"
        "Unsubscribe: {{ unsubscribe_url }}",
    },
    "demo-coupon-sms": {
        "channel": "sms",
        "body": "{{ first_name }}, your coupon {{ coupon.code }} is valid until {{ coupon.valid_until }}.",
    },
}
CHALLENGES: dict[str, dict[str, Any]] = {
    "demo-coffee-lover": {
        "name": "Coffee lover: two coffee purchases",
        "tasks": [{"task_id": "coffee", "purchase": {"categories": ["coffee"]}, "count": 2}],
        "reward": {"points": 150},
    },
    "demo-explorer": {
        "name": "Explorer: visit a store and look at three products",
        "tasks": [
            {"task_id": "visit", "event": {"type": "store_visit"}, "count": 1},
            {"task_id": "browse", "event": {"type": "product_view"}, "count": 3},
        ],
        "reward": {"points": 50},
    },
}
BADGES: dict[str, dict[str, Any]] = {
    "demo-regular": {"name": "Regular", "when": {"metric": "transactions", "gte": 2}},
    "demo-big-spender": {"name": "Big spender", "when": {"metric": "spend", "gte": 250}},
}
# (person, event type, days ago, properties): a store visit and some browsing before a purchase.
EVENTS: tuple[tuple[str, str, float, dict[str, Any]], ...] = (
    ("anna", "store_visit", 13, {}),
    ("anna", "product_view", 12.5, {"sku": "BEANS-ETH", "category": "coffee"}),
    ("anna", "product_view", 12.4, {"sku": "MACHINE", "category": "equipment"}),
    ("anna", "product_view", 12.3, {"sku": "GRINDER", "category": "equipment"}),
    ("bram", "product_view", 7, {"sku": "GRINDER", "category": "equipment"}),
    ("bram", "store_visit", 6.2, {}),
    ("chloe", "product_view", 3, {"sku": "MUG-01", "category": "homeware"}),
)


# A segment and a finished campaign for the console (issue 20): members who bought in the last 90
# days are thanked with points and an email; half are held out as the control group (with a dozen
# customers a 10% control group would usually be empty), and three of them buy again afterwards,
# so the campaign's report has a treatment, a control group and conversions to compare.
SEGMENTS: dict[str, dict[str, Any]] = {
    "demo-buyers-90d": {
        "name": "Bought in the last 90 days",
        "description": "Everyone with a purchase in the last 90 days (demo)",
        "rule": {"all": [{"purchased": {"within": "P90D"}}]},
    },
}
CAMPAIGN_ID = "demo-thank-you"
CAMPAIGN: dict[str, Any] = {
    "name": "Thank you: 50 points for this quarter's members",
    "description": "A manual campaign the demo ran once (issue 20's finished campaign)",
    "trigger": {"type": "manual"},
    "audience": {"segment_id": "demo-buyers-90d", "members_only": True},
    "actions": [{"type": "points", "points": 50}, {"type": "message", "template_id": "demo-points-email"}],
    "control_group": {"percent": 50},
    "limits": {"budget": {"points": 1000}},
    "status": "active",
}
# Customers who buy again after the campaign, two of the treatment group and one of the control
# group (by name, so a re-run picks the same ones): (sku, quantity) each.
AFTER_CAMPAIGN = {"treatment": 2, "control": 1}
# No coffee: a coffee purchase would complete the coffee challenge and move points after the demo.
AFTER_LINES: tuple[tuple[str, int], ...] = (("MUG-01", 1), ("CROISSANT", 1))
SEGMENT_SECONDS = 60.0  # real-time membership after the last sale: seconds
RUN_SECONDS = 180.0  # the run, a Step Functions execution run locally: seconds
FINISHED = ("succeeded", "failed", "cancelled")


class DemoError(RuntimeError):
    """A call answered what the demo cannot go on from."""


@dataclass
class Client:
    base: str
    session: requests.Session = field(default_factory=requests.Session)

    def call(
        self,
        method: str,
        path: str,
        key: str,
        body: Any = None,
        idempotency_key: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> requests.Response:
        headers = {"x-api-key": key}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return self.session.request(
            method, self.base + path, json=body, headers=headers, params=params, timeout=30
        )

    def expect(self, response: requests.Response, *statuses: int) -> Any:
        if response.status_code not in statuses:
            raise DemoError(
                f"{response.request.method} {response.url} answered {response.status_code}: {response.text}"
            )
        return response.json() if response.content else None


def problem_slug(response: requests.Response) -> str:
    if not response.headers.get("Content-Type", "").startswith("application/problem+json"):
        return ""
    return str(response.json().get("type", "")).rsplit("/", 1)[-1]


def key_for(store_id: str) -> str:
    # A till's key and the web shop's key act for their own store; the other demo stores have no
    # key of their own (a new key's secret is shown once, so re-runs could not reuse it): the admin
    # key names them.
    return {POS_STORE: POS_KEY, WEB_STORE: WEB_KEY}.get(store_id, ADMIN_KEY)


def _same(wanted: Any, got: Any) -> bool:
    """Does the stored document already say what `wanted` says (defaults it fills in aside)?"""
    if isinstance(wanted, dict):
        return isinstance(got, dict) and all(_same(v, got.get(k)) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(got, list) and len(wanted) == len(got) and all(map(_same, wanted, got))
    if isinstance(wanted, str) and isinstance(got, str | int | float) and not isinstance(got, bool):
        try:
            return Decimal(wanted) == Decimal(str(got))
        except InvalidOperation:
            return wanted == got
    return bool(wanted == got)


def line_total(lines: list[dict[str, Any]]) -> Decimal:
    """The contract's total: the sum of quantity x unit_price - discount."""
    return sum(
        (Decimal(ln["quantity"]) * Decimal(ln["unit_price"]) - Decimal(ln["discount"]) for ln in lines),
        Decimal(0),
    )


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Report:
    stores: list[str] = field(default_factory=list)
    offers: list[str] = field(default_factory=list)
    price_groups: list[str] = field(default_factory=list)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    sales: list[str] = field(default_factory=list)
    returns: list[str] = field(default_factory=list)
    coupons: dict[str, str] = field(default_factory=dict)
    gift_cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    merchandise_credit: dict[str, str] = field(default_factory=dict)
    segments: dict[str, int] = field(default_factory=dict)  # segment_id -> size
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)  # campaign_id -> its last run
    created: int = 0  # writes that made something new (0 on a re-run)


class Demo:
    def __init__(self, client: Client, now: datetime | None = None, *, campaigns: bool = False) -> None:
        self.api = client
        # The campaign runs on the platform's state machines: `make run` has them (the workflows of
        # loyalty_local), a test's runtime only when started with workflows=True.
        self.with_campaigns = campaigns
        self.now = now or datetime.now(UTC)
        self.report = Report()
        self.ids: dict[str, str] = {}  # person slug -> customer_id
        self.max_backdate_days = 30

    # ---- catalogue: stores, price groups, offers -------------------------------------------------
    def programme(self) -> None:
        programme = self.api.expect(self.api.call("GET", "/v1/admin/programme", ADMIN_KEY), 200)
        self.max_backdate_days = int(programme.get("max_backdate_days", 30))

    def stores(self) -> None:
        for store_id, body in STORES.items():
            current = self.api.call("GET", f"/v1/admin/stores/{store_id}", ADMIN_KEY)
            if current.status_code != 200 or not _same(body, current.json()):
                self.api.expect(
                    self.api.call("PUT", f"/v1/admin/stores/{store_id}", ADMIN_KEY, body), 200, 201
                )
                self.report.created += current.status_code == 404
        self.report.stores = [POS_STORE, WEB_STORE, *STORES]

    def catalogue(self) -> bool:
        """Price groups and offers; True when anything changed (tills see it within seconds)."""
        changed = False
        for group_id, body in PRICE_GROUPS.items():
            path = f"/v1/admin/price-groups/{group_id}"
            current = self.api.call("GET", path, ADMIN_KEY)
            if current.status_code != 200 or not _same(body, current.json()):
                self.api.expect(self.api.call("PUT", path, ADMIN_KEY, body), 200, 201)
                changed = True
                self.report.created += current.status_code == 404
            self.report.price_groups.append(group_id)
        valid_from = stamp((self.now - timedelta(days=90)).replace(hour=0, minute=0, second=0))
        for offer_id, spec in OFFERS.items():
            path = f"/v1/admin/offers/{offer_id}"
            current = self.api.call("GET", path, ADMIN_KEY)
            if current.status_code == 200 and _same({**spec, "status": "active"}, current.json()):
                self.report.offers.append(offer_id)
                continue
            # Kept from the first run, so a re-run does not move the validity it began with.
            start = current.json().get("valid_from") if current.status_code == 200 else None
            body = {"offer_id": offer_id, "status": "active", "valid_from": start or valid_from, **spec}
            if current.status_code == 200:
                self.api.expect(self.api.call("PUT", path, ADMIN_KEY, body), 200)
            else:
                made = self.api.call("POST", "/v1/admin/offers", ADMIN_KEY, body, f"demo-offer-{offer_id}")
                self.api.expect(made, 201)
                self.report.created += 1
            changed = True
            self.report.offers.append(offer_id)
        return changed

    # ---- engagement: templates, challenges, badges (before the activity they count) -------
    def engagement(self) -> None:
        valid_from = stamp((self.now - timedelta(days=90)).replace(hour=0, minute=0, second=0))
        # (kind, its items, defaults, the body's id field: challenges and badges name themselves)
        kinds: tuple[tuple[str, dict[str, dict[str, Any]], dict[str, Any], str | None], ...] = (
            ("templates", TEMPLATES, {}, None),
            ("challenges", CHALLENGES, {"valid_from": valid_from}, "challenge_id"),
            ("badges", BADGES, {}, "badge_id"),
        )
        for kind, specs, defaults, id_field in kinds:
            for item_id, spec in specs.items():
                path = f"/v1/admin/{kind}/{item_id}"
                current = self.api.call("GET", path, ADMIN_KEY)
                if current.status_code == 200 and _same(spec, current.json()):
                    continue
                # A challenge keeps the validity its first run gave it.
                kept = {k: current.json().get(k) for k in defaults} if current.status_code == 200 else {}
                body = {**defaults, **{k: v for k, v in kept.items() if v}, **spec}
                if id_field:
                    body[id_field] = item_id
                self.api.expect(self.api.call("PUT", path, ADMIN_KEY, body), 200, 201)
                self.report.created += current.status_code == 404

    def events(self) -> None:
        batch = [
            {
                "event_id": f"demo-e-{index:03d}",
                "type": kind,
                "customer": {"customer_id": self.ids[slug]},
                "store_id": POS_STORE,
                "occurred_at": stamp(self.now - timedelta(days=days_ago)),
                "properties": properties,
            }
            for index, (slug, kind, days_ago, properties) in enumerate(EVENTS, start=1)
        ]
        sent = self.api.call("POST", "/v1/events", POS_KEY, {"events": batch})
        result = self.api.expect(sent, 202)
        if result["rejected"]:
            raise DemoError(f"events rejected: {result['rejected']}")
        self.report.created += int(result["accepted"])

    # ---- customers ---------------------------------------------------------------------------
    def enrol(self, person: Person, idempotency_key: str | None = None) -> str:
        profile: dict[str, Any] = {"first_name": person.first_name, "last_name": person.last_name}
        if person.birthday:
            profile["birthday"] = person.birthday
        if person.attributes:
            profile["attributes"] = dict(person.attributes)
        body = {
            "links": [{"type": t, "value": v} for t, v in person.links],
            "profile": profile,
            "consents": dict(person.consents),
            "member": person.member,
            "store_id": person.store_id,
        }
        response = self.api.call(
            "POST",
            "/v1/customers",
            key_for(person.store_id),
            body,
            idempotency_key or f"demo-enrol-{person.slug}",
        )
        if response.status_code == 409 and problem_slug(response) == "identity-conflict":
            # Enrolled by an earlier run whose Idempotency-Key has since expired: already there.
            return str(response.json()["customer_ids"][0])
        customer = self.api.expect(response, 200, 201)
        return str(customer["customer_id"])

    def customers(self) -> None:
        for person in (*PEOPLE, LATE_JOINER):
            self.ids[person.slug] = self.enrol(person)
        self.api.expect(
            self.api.call(
                "PUT", f"/v1/admin/price-groups/staff/members/{self.ids[STAFF_ASSIGNED]}", ADMIN_KEY
            ),
            200,
            201,
        )

    def find(self, link_type: str, value: str) -> str:
        found = self.api.call(
            "GET", "/v1/customers", ADMIN_KEY, params={"link_type": link_type, "link_value": value}
        )
        return str(self.api.expect(found, 200)["customer_id"])

    # ---- coupons, sales and returns ----------------------------------------------------------
    def coupons(self) -> None:
        for slug in ("hugo", "bram"):
            issued = self.api.call(
                "POST",
                f"/v1/customers/{self.ids[slug]}/coupons",
                POS_KEY,
                {"request_id": f"demo-coupon-{slug}", "offer_id": "demo-welcome5", "source": "api"},
                f"demo-coupon-{slug}",
            )
            self.report.coupons[slug] = str(self.api.expect(issued, 200, 201)["code"])

    def when(self, days_ago: float) -> str:
        # Within the programme's max_backdate_days, so the sale earns as a fresh one would.
        days = min(days_ago, max(self.max_backdate_days - 1, 0))
        return stamp(self.now - timedelta(days=days, minutes=30))

    def customer_ref(self, slug: str | None) -> dict[str, Any] | None:
        if slug is None:
            return None
        if slug == GUEST[0]:
            link_type, value = GUEST[1]
            return {"link": {"type": link_type, "value": value}}
        return {"customer_id": self.ids[slug]}

    def recorded(self, store_id: str, transaction_id: str) -> dict[str, Any] | None:
        found = self.api.call("GET", f"/v1/transactions/{store_id}/{transaction_id}", ADMIN_KEY)
        if found.status_code == 404:
            return None
        result: dict[str, Any] = self.api.expect(found, 200)
        return result

    def sale_lines(self, sale: Sale) -> tuple[list[dict[str, Any]], list[str]]:
        """The sale's lines priced as a till prices them: the cart evaluation's personal prices and
        offer discounts, carried on the lines (a sale must carry what the offers give)."""
        cart_lines = [
            {
                "line_id": str(n),
                "sku": sku,
                "category": PRODUCTS[sku][0],
                "quantity": str(quantity),
                "unit_price": PRODUCTS[sku][1],
            }
            for n, (sku, quantity) in enumerate(sale.lines, start=1)
        ]
        coupons = [self.report.coupons[sale.coupon_of]] if sale.coupon_of else []
        body: dict[str, Any] = {
            "store_id": sale.store_id,
            "currency": CURRENCY,
            "lines": cart_lines,
            "coupons": coupons,
        }
        if (ref := self.customer_ref(sale.customer)) is not None:
            body["customer"] = ref
        priced = self.api.expect(
            self.api.call("POST", "/v1/cart/evaluate", key_for(sale.store_id), body), 200
        )
        by_line = {line["line_id"]: line for line in priced["lines"]}
        lines = []
        for line in cart_lines:
            out = by_line[line["line_id"]]
            quantity = Decimal(line["quantity"])
            saving = quantity * (Decimal(out["unit_price"]) - Decimal(out["price"])) + Decimal(
                out["discount"]
            )
            lines.append({**line, "discount": f"{saving:.2f}"})
        return lines, coupons

    def record_sale(self, sale: Sale, occurred_at: str | None = None) -> None:
        receipt = self.recorded(sale.store_id, sale.transaction_id)
        if receipt is None:
            lines, coupons = self.sale_lines(sale)
            total = line_total(lines)
            body: dict[str, Any] = {
                "transaction_id": sale.transaction_id,
                "type": "sale",
                "store_id": sale.store_id,
                "occurred_at": occurred_at or self.when(sale.days_ago),
                "lines": lines,
                "currency": CURRENCY,
                "total": f"{total:.2f}",
                "coupons": coupons,
            }
            if (ref := self.customer_ref(sale.customer)) is not None:
                body["customer"] = ref
            if sale.order_status:
                body["order_status"] = "placed"
            receipt = self.api.expect(
                self.api.call(
                    "POST", "/v1/transactions", key_for(sale.store_id), body, f"demo-{sale.transaction_id}"
                ),
                200,
                201,
            )
            self.report.created += 1
        self.report.sales.append(sale.transaction_id)
        self.follow_order(sale, receipt)

    def follow_order(self, sale: Sale, receipt: dict[str, Any]) -> None:
        """A web order moves on as the warehouse reports it; each step is sent once."""
        steps = ORDER_STEPS.get(sale.order_status or "placed", ())
        status = receipt.get("order_status")
        if status in steps:
            steps = steps[steps.index(status) + 1 :]
        elif status != "placed":
            steps = ()
        for step in steps:
            patched = self.api.call(
                "PATCH",
                f"/v1/transactions/{sale.store_id}/{sale.transaction_id}",
                key_for(sale.store_id),
                {"order_status": step},
                f"demo-{sale.transaction_id}-{step}",
            )
            self.api.expect(patched, 200)
            self.report.created += 1

    def record_return(self, ret: Return) -> None:
        sale = ret.original
        if self.recorded(sale.store_id, ret.transaction_id) is None:
            original = self.recorded(sale.store_id, sale.transaction_id)
            if original is None:
                raise DemoError(f"the sale {sale.transaction_id} a return refers to is not recorded")
            lines = [dict(ln) for ln in original["lines"] if ln["line_id"] in ret.line_ids]
            body: dict[str, Any] = {
                "transaction_id": ret.transaction_id,
                "type": "return",
                "store_id": sale.store_id,
                "occurred_at": self.when(ret.days_ago),
                "lines": [
                    {k: ln[k] for k in ("line_id", "sku", "category", "quantity", "unit_price", "discount")}
                    for ln in lines
                ],
                "currency": CURRENCY,
                "total": f"{line_total(lines):.2f}",
                "original_transaction_id": sale.transaction_id,
            }
            if (ref := self.customer_ref(sale.customer)) is not None:
                body["customer"] = ref
            self.api.expect(
                self.api.call(
                    "POST", "/v1/transactions", key_for(sale.store_id), body, f"demo-{ret.transaction_id}"
                ),
                200,
                201,
            )
            self.report.created += 1
        self.report.returns.append(ret.transaction_id)

    def enrol_late_joiner(self) -> None:
        """A non-member who shopped, then joins at the till with the same phone number: the profile
        is enrolled, keeps its history and is credited for its recent purchases."""
        customer_id = self.ids[LATE_JOINER.slug]
        current = self.api.expect(self.api.call("GET", f"/v1/customers/{customer_id}", ADMIN_KEY), 200)
        if not current["member"]:
            # POST /v1/customers, not PATCH: only enrolment by link credits earlier purchases today.
            joined = self.enrol(replace(LATE_JOINER, member=True), idempotency_key="demo-enrol-late-lars")
            if joined != customer_id:
                raise DemoError(f"enrolling {LATE_JOINER.slug} made another profile ({joined})")
            self.report.created += 1

    # ---- value: points redeemed, gift cards, merchandise credit -------------------------------
    def value(self) -> None:
        spent = self.api.call(
            "POST",
            "/v1/redemptions",
            POS_KEY,
            {
                "redemption_id": "demo-rdm-anna-1",
                "store_id": POS_STORE,
                "customer": {"customer_id": self.ids["anna"]},
                "kind": "points",
                "points": 1000,
            },
            "demo-rdm-anna-1",
        )
        self.api.expect(spent, 200, 201)

        physical = self.gift_card(
            POS_KEY,
            {
                "request_id": "demo-gc-physical-1",
                "amount": "50.00",
                "currency": CURRENCY,
                "card_number": "6280990000000000",
            },
        )
        redeemed = self.api.call(
            "POST",
            f"/v1/gift-cards/{physical}/redeem",
            POS_KEY,
            {"redemption_id": "demo-gc-redeem-1", "amount": "12.50"},
            "demo-gc-redeem-1",
        )
        self.api.expect(redeemed, 200, 201)
        self.gift_card(
            WEB_KEY,
            {
                "request_id": "demo-gc-ecard-1",
                "amount": "25.00",
                "currency": CURRENCY,
                "delivery": {
                    "email": "gwen.deboer@demo.example",
                    "name": "Gwen",
                    "message": "Happy birthday! Love, Eva",
                },
            },
        )
        for card_number in list(self.report.gift_cards):
            card = self.api.expect(self.api.call("GET", f"/v1/gift-cards/{card_number}", POS_KEY), 200)
            self.report.gift_cards[card_number] = {"balance": card["balance"], "e_card": card["e_card"]}

        credit = self.api.call(
            "POST",
            f"/v1/customers/{self.ids['eva']}/accounts",
            POS_KEY,
            {
                "request_id": "demo-credit-eva-1",
                "kind": "merchandise_credit",
                "amount": "15.00",
                "currency": CURRENCY,
            },
            "demo-credit-eva-1",
        )
        account = self.api.expect(credit, 200, 201)
        self.report.merchandise_credit[self.ids["eva"]] = str(account["account_id"])

    def gift_card(self, key: str, body: dict[str, Any]) -> str:
        made = self.api.call("POST", "/v1/gift-cards", key, body, body["request_id"])
        card = self.api.expect(made, 200, 201)
        self.report.gift_cards[str(card["card_number"])] = {}
        return str(card["card_number"])

    # ---- a segment and a finished campaign (issue 20) ------------------------------------------
    def segments(self) -> None:
        """Saved before the customers exist: real-time membership puts them in as they buy."""
        for segment_id, spec in SEGMENTS.items():
            path = f"/v1/admin/segments/{segment_id}"
            current = self.api.call("GET", path, ADMIN_KEY)
            if current.status_code == 200 and _same(spec, current.json()):
                continue
            self.api.expect(self.api.call("PUT", path, ADMIN_KEY, spec), 200, 201)
            self.report.created += current.status_code == 404

    def segment_size(self, segment_id: str, expected: int) -> int:
        """The segment's size once every buyer is in it (bounded: membership is real time)."""
        deadline = time.monotonic() + SEGMENT_SECONDS
        while True:
            segment = self.api.expect(
                self.api.call("GET", f"/v1/admin/segments/{segment_id}", ADMIN_KEY), 200
            )
            size = int(segment["size"])
            if size >= expected:
                return size
            if time.monotonic() > deadline:
                raise DemoError(f"segment {segment_id} holds {size} customers, not the {expected} buyers")
            time.sleep(0.5)

    def campaign(self) -> None:
        """The campaign defined, run once to the end through the API, and its report's conversions."""
        buyers = {sale.customer for sale in SALES if sale.customer}
        segment_id = CAMPAIGN["audience"]["segment_id"]
        self.report.segments[segment_id] = self.segment_size(segment_id, len(buyers))
        path = f"/v1/admin/campaigns/{CAMPAIGN_ID}"
        current = self.api.call("GET", path, ADMIN_KEY)
        if current.status_code != 200 or not _same(CAMPAIGN, current.json()):
            self.api.expect(self.api.call("PUT", path, ADMIN_KEY, CAMPAIGN), 200, 201)
            self.report.created += current.status_code == 404
        runs = self.api.expect(self.api.call("GET", f"{path}/runs", ADMIN_KEY), 200)["items"]
        done = [r for r in runs if r["status"] == "succeeded"]
        if done:
            run = self.api.expect(self.api.call("GET", f"{path}/runs/{done[0]['run_id']}", ADMIN_KEY), 200)
            run_id = done[0]["run_id"]
        else:
            started = self.api.expect(self.api.call("POST", f"{path}/runs", ADMIN_KEY, {}), 202)
            run_id = started["run_id"]
            run = self.watch(f"{path}/runs/{run_id}")
            self.report.created += 1
        self.report.campaigns[CAMPAIGN_ID] = {
            "run_id": run_id,
            "status": run["status"],
            "counts": run["counts"],
        }
        self.buy_again()

    def watch(self, run_path: str) -> dict[str, Any]:
        deadline = time.monotonic() + RUN_SECONDS
        while True:
            run: dict[str, Any] = self.api.expect(self.api.call("GET", run_path, ADMIN_KEY), 200)
            if run["status"] in FINISHED:
                if run["status"] != "succeeded":
                    raise DemoError(f"the demo campaign's run ended {run['status']}: {run}")
                return run
            if time.monotonic() > deadline:
                raise DemoError(f"the demo campaign's run did not finish in {RUN_SECONDS:.0f} s: {run}")
            time.sleep(0.5)

    def buy_again(self) -> None:  # after campaign() has put the run in the report
        """Some of the treatment group and of the control group buy again after the campaign (now,
        later than every action of its run), so its report compares conversions."""
        from loyalty.domain.campaigns import in_control  # the platform's own hold-out rule, no I/O

        percent = int(CAMPAIGN["control_group"]["percent"])
        # Members the email reaches (the campaign is for members; the others get nothing).
        emailed = [p.slug for p in PEOPLE if p.member and p.consents.get("email")]
        chosen: list[str] = []
        for group, wanted in AFTER_CAMPAIGN.items():
            held_out = group == "control"
            picks = [s for s in sorted(emailed) if in_control(CAMPAIGN_ID, self.ids[s], percent) == held_out]
            chosen += picks[:wanted]
        for slug in chosen:
            sale = Sale(f"demo-after-{slug}", POS_STORE, 0, slug, AFTER_LINES)
            if self.recorded(sale.store_id, sale.transaction_id) is None:
                self.record_sale(sale, occurred_at=stamp(datetime.now(UTC)))
        self.report.campaigns[CAMPAIGN_ID]["bought_again"] = chosen

    # ---- the whole run -----------------------------------------------------------------------
    def run(self, settle: bool = True) -> Report:
        self.programme()
        self.stores()
        self.engagement()
        if self.with_campaigns:
            self.segments()
        changed_at = time.monotonic() if self.catalogue() and settle else None
        # Customers and their events need no offer: they are loaded while the change settles.
        self.customers()
        self.events()
        if changed_at is not None:
            time.sleep(max(0.0, changed_at + CATALOGUE_SECONDS + 1 - time.monotonic()))
        self.coupons()
        for sale in SALES:
            self.record_sale(sale)
        for ret in RETURNS:
            self.record_return(ret)
        self.ids[GUEST[0]] = self.find(*GUEST[1])
        self.enrol_late_joiner()
        self.value()
        if self.with_campaigns:
            self.campaign()
        for slug, customer_id in self.ids.items():
            view = self.api.expect(self.api.call("GET", f"/v1/customers/{customer_id}", ADMIN_KEY), 200)
            self.report.customers[slug] = {
                "customer_id": customer_id,
                "member": view["member"],
                "tier": view["tier"],
                "points": view["points"],
                "transactions": view["stats"]["transactions"],
                "spend": view["stats"]["spend"],
            }
        return self.report


def _counts(counts: dict[str, Any]) -> str:
    skipped = sum((counts.get("skipped") or {}).values())
    return (
        f"(audience {counts.get('audience')}, control {counts.get('control')}, "
        f"actioned {counts.get('actioned')}, skipped {skipped}, failed {counts.get('failed')})"
    )


def summary(report: Report, base: str) -> str:
    members = sum(1 for c in report.customers.values() if c["member"])
    cards = ", ".join(
        f"{number} (balance {card.get('balance')})" for number, card in report.gift_cards.items()
    )
    lines = [
        "Demo data loaded" + (f" ({report.created} new writes)" if report.created else " (already there)"),
        f"  stores        {', '.join(report.stores)}",
        f"  price groups  {', '.join(report.price_groups)}",
        f"  offers        {', '.join(report.offers)}",
        f"  customers     {len(report.customers)} ({members} members, "
        f"{len(report.customers) - members} identified non-members)",
        f"  transactions  {len(report.sales)} sales, {len(report.returns)} returns",
        f"  coupons       {', '.join(f'{code} ({slug})' for slug, code in report.coupons.items())}",
        f"  engagement    templates {', '.join(TEMPLATES)}; challenges {', '.join(CHALLENGES)}; "
        f"badges {', '.join(BADGES)}; {len(EVENTS)} store visits and product views",
        f"  gift cards    {cards}",
        *(f"  segment       {sid} ({size} customers)" for sid, size in report.segments.items()),
        *(
            f"  campaign      {cid}: run {run['run_id']} {run['status']} {_counts(run['counts'])}"
            for cid, run in report.campaigns.items()
        ),
        "",
        "  who    customer_id                 tier        points  transactions",
    ]
    for slug, c in report.customers.items():
        tier = c["tier"] or ("member" if c["member"] else "non-member")
        points, count = c["points"]["available"], c["transactions"]
        lines.append(f"  {slug:<6} {c['customer_id']:<27} {tier:<10} {points:>7}  {count:>12}")
    anna = report.customers["anna"]["customer_id"]
    card = next(iter(report.gift_cards), "")
    lines += [
        "",
        "Look around",
        f"  curl -s {base}/v1/customers/{anna} -H 'x-api-key: {POS_KEY}'",
        f"  curl -s {base}/v1/customers/{anna}/ledger -H 'x-api-key: {POS_KEY}'",
        f"  curl -s '{base}/v1/customers?link_type=card&link_value=DEMO-CARD-0002' -H 'x-api-key: {POS_KEY}'",
        f"  curl -s {base}/v1/gift-cards/{card} -H 'x-api-key: {POS_KEY}'",
        f"  curl -s {base}/v1/admin/offers -H 'x-api-key: {ADMIN_KEY}'",
        f"  curl -s {base}/v1/admin/stores -H 'x-api-key: {ADMIN_KEY}'",
        "",
        f"The console: {base}/console/ (sign in with {ADMIN_KEY} or local-marketer-key)",
        *(f"  its campaign: {base}/console/#/campaigns/{cid}" for cid in report.campaigns),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__.splitlines()[0])
    default = os.environ.get("LOYALTY_API") or f"http://127.0.0.1:{os.environ.get('PORT', '3000')}"
    parser.add_argument("--api", default=default, help="the running platform (default %(default)s)")
    args = parser.parse_args(argv)
    base = args.api.rstrip("/")
    client = Client(base)
    try:
        client.expect(client.call("GET", "/v1/health", ADMIN_KEY), 200)
    except requests.ConnectionError:
        print(f"demo: nothing answers at {base}; start the platform with `make run` first", file=sys.stderr)
        return 1
    try:
        report = Demo(client, campaigns=True).run()
    except DemoError as failed:
        print(f"demo: {failed}", file=sys.stderr)
        return 1
    print(summary(report, base))
    return 0


if __name__ == "__main__":
    sys.exit(main())
