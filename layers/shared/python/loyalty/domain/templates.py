"""Message templates: what a template is, what each cause of a message offers it, and which
template may serve which trigger. No template engine here (loyalty.domain.rendering renders), so
the programme's checks run in functions that never load one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    MAIL = "mail"  # a line of a print file for the brand's mail house
    API = "api"  # a signed POST to the brand's webhook


class Purpose(StrEnum):
    MESSAGE = "message"
    CONFIRMATION = "confirmation"  # double opt-in: the only kind offered confirm_url


@dataclass(frozen=True, slots=True)
class Template:
    template_id: str
    channel: Channel
    body: str
    purpose: Purpose = Purpose.MESSAGE
    subject: str | None = None
    html: str | None = None
    # The top-level names it uses (first_name, points, coupon ...), found when it was saved: what
    # a trigger checks it offers, without loading the template engine.
    placeholders: frozenset[str] = frozenset()
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Cause(StrEnum):
    """Why a message goes out; each cause offers the template a known set of names."""

    WELCOME = "welcome"
    EARN_CONFIRMATION = "earn_confirmation"
    CONFIRMATION = "confirmation"
    CAMPAIGN = "campaign"


# Every message knows its customer, their points and tier, and the store they favour or enrolled in.
_ALWAYS = frozenset(
    {
        "customer_id",
        "first_name",
        "last_name",
        "birthday",
        "country",
        "timezone",
        "favourite_store_id",
        "address",
        "card",
        "points",
        "tier",
        "store",
        "unsubscribe_url",
    }
)
OFFERED: dict[Cause, frozenset[str]] = {
    Cause.WELCOME: _ALWAYS,
    Cause.EARN_CONFIRMATION: _ALWAYS,
    Cause.CONFIRMATION: _ALWAYS | {"confirm_url"},
    # A campaign may issue a coupon with the message, and says what it gave (`campaign.points` ...).
    Cause.CAMPAIGN: _ALWAYS | {"coupon", "campaign"},
}
# What a template may name when saved: what some cause offers. Its purpose narrows it.
ALL_NAMES = frozenset().union(*OFFERED.values())

# The programme's trigger fields and the cause each sends for.
TRIGGERS: dict[str, Cause] = {
    "welcome_template_id": Cause.WELCOME,
    "earn_confirmation_template_id": Cause.EARN_CONFIRMATION,
    "confirmation_template_id": Cause.CONFIRMATION,
}


def names_for(purpose: Purpose) -> frozenset[str]:
    """The names a template of this purpose may use: confirm_url only in confirmation templates."""
    if purpose is Purpose.CONFIRMATION:
        return OFFERED[Cause.CONFIRMATION]
    return ALL_NAMES - {"confirm_url"}


def misfit(template: Template, cause: Cause) -> str | None:
    """Why the template cannot serve a message of this cause (None: it can). A message must render
    whenever it is due, so a template naming what its cause does not offer is refused up front."""
    if cause is Cause.CONFIRMATION:
        if template.purpose is not Purpose.CONFIRMATION or template.channel is not Channel.EMAIL:
            return f"template {template.template_id!r} is not an email template with purpose confirmation"
    elif template.purpose is Purpose.CONFIRMATION:
        return f"template {template.template_id!r} is a confirmation template; it serves only confirmations"
    missing = sorted(template.placeholders - OFFERED[cause])
    if missing:
        return (
            f"template {template.template_id!r} uses {', '.join(missing)}, which a {cause.value} message "
            "does not offer"
        )
    return None
