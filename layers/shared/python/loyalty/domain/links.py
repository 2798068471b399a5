"""Identity links: named pointers from an email, phone, card or external id to one customer.

Normalisation is what makes one person's "Jane@Example.com " and "jane@example.com" the same link.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from loyalty.domain.ids import is_valid_card_number, luhn_valid

EMAIL, PHONE, CARD = "email", "phone", "card"
# An anonymous visitor's id (a web or app cookie/device id): identifies the person once a customer
# and the anonymous id arrive together (POST /v1/events or a link call); see customer_events.
ANONYMOUS_ID = "anonymous_id"
ANONYMOUS_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
ANONYMOUS_ID_RULE = "1 to 128 letters, digits or . _ : -"
EXT_PREFIX = "ext:"
_EXT_SYSTEM = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
_CARD = re.compile(r"^[A-Z0-9-]{4,64}$")
MAX_VALUE_LENGTH = 254


class LinkInvalid(ValueError):
    def __init__(self, field: str, msg: str) -> None:
        super().__init__(msg)
        self.field = field
        self.msg = msg


@dataclass(frozen=True, slots=True)
class Link:
    type: str
    value: str

    @property
    def key(self) -> str:
        """Unique name of the link: its partition key and its entry in the profile's link map."""
        return f"{self.type}#{self.value}"

    def as_dict(self) -> dict[str, str]:
        return {"type": self.type, "value": self.value}


def normalise_type(raw_type: str) -> str:
    link_type = raw_type.strip().lower()
    if link_type in (EMAIL, PHONE, CARD, ANONYMOUS_ID):
        return link_type
    if link_type.startswith(EXT_PREFIX) and _EXT_SYSTEM.match(link_type[len(EXT_PREFIX) :]):
        return link_type
    raise LinkInvalid(
        "type",
        f"unknown link type {raw_type!r}: use email, phone, card, anonymous_id or ext:<system> "
        "(a-z, 0-9, _ . -)",
    )


def normalise(raw_type: str, raw_value: str, default_region: str = "NL") -> Link:
    """Return the canonical link, or raise LinkInvalid naming the bad part."""
    link_type = normalise_type(raw_type)
    value = raw_value.strip()
    if not value:
        raise LinkInvalid("value", "must not be empty")
    if len(value) > MAX_VALUE_LENGTH:
        raise LinkInvalid("value", f"at most {MAX_VALUE_LENGTH} characters")
    if link_type == EMAIL:
        return Link(EMAIL, _normalise_email(value))
    if link_type == PHONE:
        return Link(PHONE, _normalise_phone(value, default_region))
    if link_type == CARD:
        card = value.replace(" ", "").upper()
        if not _CARD.match(card):
            raise LinkInvalid("value", "a card number has 4 to 64 letters, digits or dashes")
        return Link(CARD, card)
    if link_type == ANONYMOUS_ID:
        # Taken as sent (case matters in cookie ids), but only in a shape that is safe in a key.
        if not ANONYMOUS_ID_PATTERN.match(value):
            raise LinkInvalid("value", f"an anonymous_id has {ANONYMOUS_ID_RULE}")
        return Link(ANONYMOUS_ID, value)
    return Link(link_type, value)


def _normalise_email(value: str) -> str:
    from email_validator import EmailNotValidError, validate_email  # 30 ms: only when an email comes in

    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise LinkInvalid("value", f"not a valid email address: {exc}") from None
    # The whole address is lower-cased: local parts are case-insensitive at every mailbox
    # provider our brands' customers use, and one person must not become two profiles.
    return result.normalized.lower()


def _normalise_phone(value: str, default_region: str) -> str:
    import phonenumbers  # 20 ms and 58 modules: only when a phone number comes in

    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        raise LinkInvalid("value", "not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise LinkInvalid("value", "not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Placeholders that point-of-sale systems and web forms put in when the customer gives nothing.
# Resolving or joining profiles on them is how one "customer" ends up with thousands of strangers'
# purchases, so they identify nobody.
BUILT_IN_BLOCKED = frozenset(
    {
        "null",
        "none",
        "nil",
        "undefined",
        "n/a",
        "na",
        "-",
        "-1",
        "0",
        "unknown",
        "test@test.com",
        "test@example.com",
        "noemail@noemail.com",
        "no@email.com",
        "none@none.com",
    }
)
_REPEATED = re.compile(r"^(\d)\1{3,}$")
_SEQUENTIAL = ("0123456789", "1234567890", "9876543210")
PLACEHOLDER = "placeholder-link"  # the reason a link was ignored, as receipts and problems name it
CARD_SCHEMES = ("luhn", "ean13")


def is_blocked(link: Link, extra: Iterable[str] = ()) -> bool:
    """A placeholder value: it never identifies a customer nor joins two profiles."""
    value = link.value.strip().lower()
    if value in BUILT_IN_BLOCKED or value in {v.strip().lower() for v in extra}:
        return True
    digits = re.sub(r"\D", "", value) if link.type != EMAIL else ""
    if link.type == PHONE and digits:
        # The subscriber part of an E.164 number: drop up to three country-code digits.
        return any(_REPEATED.match(digits[cut:]) or digits[cut:] in _SEQUENTIAL for cut in (1, 2, 3))
    if link.type == EMAIL:
        local = value.split("@", 1)[0]
        return bool(_REPEATED.match(local)) or local in {"test", "none", "noemail", "null"}
    return bool(digits and digits == value and (_REPEATED.match(value) or value in _SEQUENTIAL))


def card_passes(number: str, scheme: str | None) -> bool:
    """Whether a card number passes the programme's check-digit scheme (no scheme: any number)."""
    if scheme == "luhn":
        return luhn_valid(number)
    if scheme == "ean13":
        return is_valid_card_number(number)
    return True


@dataclass(frozen=True, slots=True)
class Identity:
    """A link as a request gave it, and whether it may identify anyone."""

    link: Link
    ignored: str | None = None  # PLACEHOLDER when the value identifies nobody

    @property
    def usable(self) -> bool:
        return self.ignored is None


def identify(
    raw_type: str,
    raw_value: str,
    *,
    region: str = "NL",
    blocked_values: Iterable[str] = (),
    card_scheme: str | None = None,
) -> Identity:
    """The one rule for every caller that creates or resolves a link (enrolment, sales, events,
    link calls, look-ups): normalise it, refuse what cannot be right (LinkInvalid: a card failing
    its check digit), and mark placeholders (`ignored`), which callers treat as no customer at all.
    """
    link = normalise(raw_type, raw_value, region)
    if link.type == CARD and not card_passes(link.value, card_scheme):
        raise LinkInvalid("value", f"not a valid card number: its check digit fails the {card_scheme} scheme")
    return Identity(link, PLACEHOLDER if is_blocked(link, blocked_values) else None)


# What adding a link another customer holds does: refuse, move the link, or merge the two. (A
# comment, not a docstring: the docstring would become the schema's description in the OpenAPI.)
class OnConflict(StrEnum):
    REJECT = "reject"
    MOVE = "move"
    MERGE = "merge"
