"""The attribute paths a rule may name, the operators each kind of value takes, and how a
condition's operand is read (at validation, so evaluation never meets a malformed operand)."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Literal, TypeAlias, get_args

from loyalty.domain.segments.windows import parse_duration

AttrOp: TypeAlias = Literal[
    "eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "contains", "before", "within"
]
OPS: tuple[str, ...] = get_args(AttrOp)
MAX_LISTED = 1000
CONSENT_CHANNELS = ("email", "sms", "mail")
STATUSES = ("active", "pending_confirmation", "merged", "erased")


class Kind(Enum):
    BOOL = "bool"
    NUMBER = "number"
    TEXT = "text"
    INSTANT = "instant"
    DATE = "date"
    SET = "set"  # a set of names (price groups, badges)
    ANY = "any"  # a free-form profile attribute: the operand decides how it compares


_ORDER = ("gt", "gte", "lt", "lte")
_MEMBERSHIP = ("eq", "ne", "in", "not_in", "exists")
OPS_BY_KIND: dict[Kind, frozenset[str]] = {
    Kind.BOOL: frozenset(_MEMBERSHIP),
    Kind.NUMBER: frozenset((*_MEMBERSHIP, *_ORDER)),
    Kind.TEXT: frozenset((*_MEMBERSHIP, *_ORDER, "contains")),
    Kind.INSTANT: frozenset(("eq", "ne", "exists", *_ORDER, "before", "within")),
    Kind.DATE: frozenset((*_MEMBERSHIP, *_ORDER, "before", "within")),
    Kind.SET: frozenset((*_MEMBERSHIP, "contains")),
    Kind.ANY: frozenset(OPS),
}

PATHS: dict[str, Kind] = {
    "member": Kind.BOOL,
    "status": Kind.TEXT,
    "tier": Kind.TEXT,
    "points.available": Kind.NUMBER,
    "points.pending": Kind.NUMBER,
    "points.lifetime": Kind.NUMBER,
    "stats.transactions": Kind.NUMBER,
    "stats.spend": Kind.NUMBER,
    "stats.first_purchase_at": Kind.INSTANT,
    "stats.last_purchase_at": Kind.INSTANT,
    "created_at": Kind.INSTANT,
    "enrolled_at": Kind.INSTANT,
    "profile.birthday": Kind.DATE,
    "profile.country": Kind.TEXT,
    "price_groups": Kind.SET,
    "badges": Kind.SET,
    "scores.r": Kind.NUMBER,
    "scores.f": Kind.NUMBER,
    "scores.m": Kind.NUMBER,
    "scores.rfm": Kind.TEXT,
    **{f"consents.{channel}": Kind.BOOL for channel in CONSENT_CHANNELS},
}
ATTRIBUTES = "profile.attributes."
_ATTRIBUTE_NAME = re.compile(r"[^.\s]{1,64}(?:\.[^.\s]{1,64}){0,7}")
_NUMBER_TEXT = re.compile(r"-?[0-9]{1,20}(?:\.[0-9]{1,12})?")


def kind_of(path: object) -> Kind:
    """The kind of value at `path`; ValueError naming the paths there are."""
    if not isinstance(path, str):
        raise ValueError("a path such as tier, points.available or profile.attributes.<name>")
    if path.startswith(ATTRIBUTES):
        if _ATTRIBUTE_NAME.fullmatch(path.removeprefix(ATTRIBUTES)) is None:
            raise ValueError("profile.attributes.<name>: a name of 1-64 characters (dots walk into maps)")
        return Kind.ANY
    kind = PATHS.get(path)
    if kind is None:
        raise ValueError(f"unknown path {path[:64]!r}: use {', '.join(PATHS)} or {ATTRIBUTES}<name>")
    return kind


def read_path_operand(path: str, op: str, raw: Any) -> Any:
    """The operand of a condition on `path`; ValueError saying what `op` expects there."""
    operand = read_operand(kind_of(path), op, raw)
    if path == "status" and op in ("eq", "ne", "in", "not_in"):
        named = operand if isinstance(operand, tuple) else (operand,)
        unknown = [status for status in named if status not in STATUSES]
        if unknown:
            raise ValueError(f"unknown status {unknown[0]!r}: use {', '.join(STATUSES)}")
    return operand


def read_operand(kind: Kind, op: str, raw: Any) -> Any:
    """The operand as evaluation uses it; ValueError saying what `op` expects at this kind."""
    if op not in OPS_BY_KIND[kind]:
        allowed = ", ".join(o for o in OPS if o in OPS_BY_KIND[kind])
        raise ValueError(f"{op!r} does not apply to this path: use {allowed}")
    if op == "exists":
        if not isinstance(raw, bool):
            raise ValueError("exists takes true or false")
        return raw
    if op in ("before", "within"):
        duration = parse_duration(raw)
        if kind is Kind.DATE and duration.has_time:
            raise ValueError("a date compares with whole days, months or years (such as P18Y)")
        return duration
    if op in ("in", "not_in") or (kind is Kind.SET and op in ("eq", "ne")):
        if not isinstance(raw, list) or len(raw) > MAX_LISTED:
            raise ValueError(f"{op} takes a list of at most {MAX_LISTED} values")
        items = tuple(_scalar(kind, item) for item in raw)
        return frozenset(items) if kind is Kind.SET else items
    if kind is Kind.SET:  # contains: one name
        return _text(raw)
    return _scalar(kind, raw)


def _scalar(kind: Kind, raw: Any) -> Any:
    readers = {
        Kind.BOOL: _bool,
        Kind.NUMBER: number,
        Kind.TEXT: _text,
        Kind.INSTANT: _instant,
        Kind.DATE: _date,
        Kind.SET: _text,
        Kind.ANY: _json_scalar,
    }
    return readers[kind](raw)


def _bool(raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise ValueError("true or false")
    return raw


def number(raw: Any) -> Decimal:
    """A JSON number or a decimal string ("50.00") as an exact Decimal; ValueError otherwise."""
    if isinstance(raw, bool):
        raise ValueError("a number, not true or false")
    if isinstance(raw, int | Decimal):
        return Decimal(raw)
    if isinstance(raw, float):
        return Decimal(repr(raw))
    if isinstance(raw, str) and _NUMBER_TEXT.fullmatch(raw):
        try:
            return Decimal(raw)
        except InvalidOperation:  # pragma: no cover - the pattern admits only plain decimals
            pass
    raise ValueError('a number, or a decimal string such as "50.00"')


def _text(raw: Any) -> str:
    if not isinstance(raw, str) or not 0 < len(raw) <= 200:
        raise ValueError("a string of 1-200 characters")
    return raw


def _instant(raw: Any) -> datetime:
    moment = instant(raw)
    if moment is None:
        raise ValueError("an RFC 3339 timestamp with its offset, such as 2026-11-22T10:00:00Z")
    return moment


def _date(raw: Any) -> date:
    found = calendar_date(raw)
    if found is None:
        raise ValueError("a date such as 1990-05-01")
    return found


def _json_scalar(raw: Any) -> Any:
    if isinstance(raw, str):
        return _text(raw)
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float | Decimal):
        return number(raw)
    raise ValueError("a string, a number or true/false")


def instant(raw: Any) -> datetime | None:
    """An aware timestamp from a datetime or an RFC 3339 string; None when it is not one."""
    if isinstance(raw, datetime):
        return raw if raw.tzinfo is not None else None
    if not isinstance(raw, str) or "T" not in raw.upper() or len(raw) > 40:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def calendar_date(raw: Any) -> date | None:
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw
    if not isinstance(raw, str) or len(raw) != 10:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return None
