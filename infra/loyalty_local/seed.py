"""The demo programme, stores and keys that `make run` prints: fixed values, created once."""

from __future__ import annotations

import contextlib
from typing import Any

from loyalty.adapters.dynamo import TransactionCancelled
from loyalty.bootstrap import Container
from loyalty.domain.access import KeyKind
from loyalty.domain.programme import default_programme
from loyalty.domain.stores import Channel, Store

DEMO_STORES = (
    Store(
        "ams-01",
        Channel.POS,
        format="flagship",
        name="Amsterdam flagship",
        attributes={"coffee_corner": True, "city": "Amsterdam"},
    ),
    Store("web-nl", Channel.ONLINE, name="Web shop NL"),
)

# (secret, kind, store, name): the spec fixes these values for local mode only.
DEMO_KEYS = (
    ("local-admin-key", KeyKind.ADMIN, None, "demo admin"),
    ("local-pos-key", KeyKind.POS, "ams-01", "demo till ams-01"),
    ("local-web-key", KeyKind.WEB, "web-nl", "demo web shop"),
    # For the console: what a marketer may do, and may not (no keys, stores or programme).
    ("local-marketer-key", KeyKind.MARKETER, None, "demo marketer"),
)


def seed(container: Container) -> None:
    from loyalty.adapters.programme import ProgrammeRepository

    programmes = ProgrammeRepository(container.table)
    if programmes.get() is None:
        programmes.put(default_programme(), container.clock.now())
    for store in DEMO_STORES:
        if container.stores.find(store.store_id) is None:
            container.stores.put(store)
    for secret, kind, store_id, name in DEMO_KEYS:
        # Seeded before (or revoked on purpose): leave it as it is.
        with contextlib.suppress(TransactionCancelled):
            container.api_keys.issue(kind, store_id, name, secret=secret)


# ---- demo campaigns (issue 19, item 6): `make run` only, never the tests' tables ------------------
# Created once, when missing: a marketer edits (or deletes) them in the console like any campaign.
# The triggered ones are active; they act once the campaign actions and triggers run.
_UNSUBSCRIBE = "\n\nUnsubscribe: {{ unsubscribe_url }}"
DEMO_OFFERS: tuple[dict[str, Any], ...] = (
    {
        "offer_id": "demo-welcome-10",
        "name": "Welcome: 10% off your next purchase",
        "requires_coupon": True,
        "effect": {"type": "percent_off", "value": "10"},
    },
    {
        "offer_id": "demo-birthday-15",
        "name": "Birthday: 15% off",
        "requires_coupon": True,
        "effect": {"type": "percent_off", "value": "15"},
    },
    {
        "offer_id": "demo-win-back-20",
        "name": "We miss you: 20% off",
        "requires_coupon": True,
        "effect": {"type": "percent_off", "value": "20"},
    },
)
DEMO_TEMPLATES: tuple[tuple[str, str, str], ...] = (  # (template_id, subject, body)
    (
        "demo-welcome-coupon",
        "Welcome, {{ first_name | default('friend') }}",
        "Thanks for joining. Your code {{ coupon.code }} gives 10% off your next purchase.",
    ),
    (
        "demo-birthday-coupon",
        "Happy birthday, {{ first_name | default('friend') }}!",
        "Celebrate with 15% off: use {{ coupon.code }}.",
    ),
    (
        "demo-tier-upgrade",
        "Welcome to {{ tier }}",
        "You reached {{ tier }}: enjoy its extra points on every purchase.",
    ),
    ("demo-win-back", "We miss you", "It has been a while. Here is 20% off to come back: {{ coupon.code }}."),
    ("demo-abandoned-cart", "You left something behind", "Your cart is waiting for you."),
    ("demo-app-install", "Thanks for installing our app", "We added 100 bonus points to your account."),
)
# Put something in the cart within two days, nothing added in the last day, no purchase in two days.
DEMO_ABANDONED_CART = {
    "all": [
        {"event": {"type": "cart_add", "within": "P2D"}},
        {"not": {"event": {"type": "cart_add", "within": "P1D"}}},
        {"not": {"purchased": {"within": "P2D"}}},
    ]
}


def _message(template_id: str) -> dict[str, str]:
    return {"type": "message", "template_id": template_id}


DEMO_CAMPAIGNS: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "demo-welcome-coupon",
        {
            "name": "Welcome coupon on enrolment",
            "trigger": {"type": "event", "event": "CustomerEnrolled"},
            "actions": [
                {"type": "coupon", "offer_id": "demo-welcome-10", "valid_days": 30},
                _message("demo-welcome-coupon"),
            ],
            "status": "active",
        },
    ),
    (
        "demo-birthday-coupon",
        {
            "name": "Birthday coupon",
            "trigger": {"type": "birthday", "days_before": 0},
            "audience": {"members_only": True},
            "actions": [
                {"type": "coupon", "offer_id": "demo-birthday-15", "valid_days": 14},
                _message("demo-birthday-coupon"),
            ],
            "status": "active",
        },
    ),
    (
        "demo-tier-upgrade",
        {
            "name": "Tier upgrade message (gold)",
            "trigger": {"type": "event", "event": "TierChanged", "where": {"to": "gold"}},
            "audience": {"members_only": True},
            "actions": [_message("demo-tier-upgrade")],
            "status": "active",
        },
    ),
    (
        "demo-win-back",
        {
            "name": "Win-back after 90 days without a purchase",
            "trigger": {"type": "inactivity", "days": 90},
            "actions": [
                {"type": "coupon", "offer_id": "demo-win-back-20", "valid_days": 21},
                _message("demo-win-back"),
            ],
            "control_group": {"percent": 10},
            "status": "active",
        },
    ),
    (
        "demo-abandoned-cart",
        {
            "name": "Abandoned cart reminder",
            "trigger": {
                "type": "event",
                "event": "SegmentEntered",
                "where": {"segment_id": "demo-abandoned-cart"},
            },
            "actions": [_message("demo-abandoned-cart")],
            "limits": {"reentry_days": 7},
            "status": "active",
        },
    ),
    (
        "demo-app-install",
        {
            "name": "App install bonus",
            "trigger": {"type": "event", "event": "CustomerEventRecorded", "where": {"type": "app_install"}},
            "actions": [{"type": "points", "points": 100}, _message("demo-app-install")],
            "limits": {"budget": {"points": 100_000}},
            "status": "active",
        },
    ),
)


def seed_demo_campaigns(container: Container) -> list[str]:
    """The six demo campaigns of the issue with their offers, templates and segment, each created
    only when missing (edits and deletions of what exists are the marketer's); the ids created."""
    from loyalty.domain.campaigns import CampaignDefinition
    from loyalty.domain.errors import CampaignNotFound, OfferNotFound, SegmentNotFound, TemplateNotFound
    from loyalty.domain.offers import Offer
    from loyalty.domain.templates import Channel as MessageChannel
    from loyalty.domain.templates import Template

    created: list[str] = []
    for offer in DEMO_OFFERS:
        try:
            container.offers.get_offer(offer["offer_id"])
        except OfferNotFound:
            container.offers.create_offer(Offer.model_validate(offer))
    for template_id, subject, body in DEMO_TEMPLATES:
        try:
            container.templates.get(template_id)
        except TemplateNotFound:
            container.templates.put(
                Template(template_id, MessageChannel.EMAIL, body + _UNSUBSCRIBE, subject=subject)
            )
    try:
        container.segments.get("demo-abandoned-cart")
    except SegmentNotFound:
        container.segments.put(
            "demo-abandoned-cart",
            name="Abandoned cart",
            description="Added to the cart within two days, nothing added in the last day, no purchase",
            rule=DEMO_ABANDONED_CART,
        )
    for campaign_id, definition in DEMO_CAMPAIGNS:
        try:
            container.campaigns.get(campaign_id)
        except CampaignNotFound:
            container.campaigns.put(campaign_id, CampaignDefinition.model_validate(definition))
            created.append(campaign_id)
    return created
