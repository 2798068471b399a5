"""Attribute conditions: what a path reads from the facts, and how each operator compares."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from loyalty.domain.segments.facts import CustomerFacts, Verdict
from loyalty.domain.segments.model import Attr
from loyalty.domain.segments.paths import ATTRIBUTES, Kind, calendar_date, instant, kind_of, number
from loyalty.domain.segments.windows import (
    Duration,
    back,
    back_date,
    date_leaves_at,
    leaves_at,
    local_date,
    next_birthday,
    start_of,
)

_NUMERIC_TEXT = frozenset("0123456789.-")


def _score(name: str) -> Callable[[CustomerFacts], Any]:
    return lambda facts: getattr(facts.scores, name) if facts.scores is not None else None


_READ: dict[str, Callable[[CustomerFacts], Any]] = {
    "member": lambda f: f.customer.member,
    "status": lambda f: f.customer.shown_status,
    "tier": lambda f: f.tier,
    "points.available": lambda f: f.customer.points.available,
    "points.pending": lambda f: f.customer.points.pending,
    "points.lifetime": lambda f: f.customer.points.lifetime,
    "stats.transactions": lambda f: f.customer.stats.transactions,
    "stats.spend": lambda f: f.customer.stats.spend,
    "stats.first_purchase_at": lambda f: f.customer.stats.first_purchase_at,
    "stats.last_purchase_at": lambda f: f.customer.stats.last_purchase_at,
    "created_at": lambda f: f.customer.created_at,
    "enrolled_at": lambda f: f.customer.enrolled_at,
    "profile.birthday": lambda f: f.customer.profile.birthday,
    "profile.country": lambda f: f.customer.profile.country,
    "price_groups": lambda f: frozenset(f.customer.price_groups),
    "badges": lambda f: frozenset(f.customer.badges),
    "consents.email": lambda f: f.customer.consents.email,
    "consents.sms": lambda f: f.customer.consents.sms,
    "consents.mail": lambda f: f.customer.consents.mail,
    **{f"scores.{name}": _score(name) for name in ("r", "f", "m", "rfm")},
}


def read_path(path: str, facts: CustomerFacts) -> Any:
    """The value at `path`, None where the customer has none."""
    if path.startswith(ATTRIBUTES):
        value: Any = facts.customer.profile.attributes
        for name in path.removeprefix(ATTRIBUTES).split("."):
            if not isinstance(value, Mapping):
                return None
            value = value.get(name)
        return value
    return _READ[path](facts)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, frozenset) and not value)


def attr_verdict(condition: Attr, facts: CustomerFacts, now: datetime) -> Verdict:
    kind = kind_of(condition.attr)
    value = read_path(condition.attr, facts)
    # The effective tier moves with its rolling window: the caller says when it may next.
    moves_at = facts.tier_until if condition.attr == "tier" and facts.tier_until else None
    moves_at = moves_at if moves_at is not None and moves_at > now else None
    if condition.op == "exists":
        return Verdict(_present(value) is condition.operand, moves_at)
    if value is None:
        return Verdict(False, moves_at)
    if condition.op in ("before", "within"):
        return _timed(kind, condition.op, value, condition.operand, facts, now)
    return Verdict(_compare(kind, condition.op, value, condition.operand), moves_at)


# ---- comparisons ------------------------------------------------------------------------------


def _compare(kind: Kind, op: str, value: Any, operand: Any) -> bool:
    if kind is Kind.SET:
        return _set_compare(op, value, operand)
    if kind is Kind.ANY:
        return _loose_compare(op, value, operand)
    if kind is Kind.NUMBER:
        value = number(value)
    if op == "contains":
        return isinstance(value, str) and operand in value
    return _strict_compare(op, value, operand)


def _strict_compare(op: str, value: Any, operand: Any) -> bool:  # noqa: PLR0911 - one line per operator
    if op == "eq":
        return bool(value == operand)
    if op == "ne":
        return bool(value != operand)
    if op == "in":
        return value in operand
    if op == "not_in":
        return value not in operand
    if op == "gt":
        return bool(value > operand)
    if op == "gte":
        return bool(value >= operand)
    if op == "lt":
        return bool(value < operand)
    return bool(value <= operand)


def _set_compare(op: str, value: frozenset[str], operand: Any) -> bool:
    if op == "contains":
        return operand in value
    if op == "in":
        return not value.isdisjoint(operand)
    if op == "not_in":
        return value.isdisjoint(operand)
    return (value == operand) is (op == "eq")


def _loose_compare(op: str, value: Any, operand: Any) -> bool:
    """A free-form attribute against a condition's operand (see the package's notes)."""
    if op == "contains":
        if isinstance(value, str):
            return isinstance(operand, str) and operand in value
        return isinstance(value, list) and any(_loose_equal(item, operand) for item in value)
    if op in ("in", "not_in"):
        found = any(_loose_equal(value, item) for item in operand)
        return found is (op == "in")
    if op in ("eq", "ne"):
        return _loose_equal(value, operand) is (op == "eq")
    pair = _comparable(value, operand)
    return pair is not None and _strict_compare(op, *pair)


def _loose_equal(value: Any, operand: Any) -> bool:
    pair = _comparable(value, operand)
    return pair is not None and pair[0] == pair[1]


def _comparable(value: Any, operand: Any) -> tuple[Any, Any] | None:
    """Both sides read the same way (numbers, instants, dates, then text), or None: they differ
    in kind and no order or equality holds between them."""
    if isinstance(value, bool) or isinstance(operand, bool):
        return (value, operand) if isinstance(value, bool) and isinstance(operand, bool) else None
    numbers = _as_number(value), _as_number(operand)
    if numbers[0] is not None and numbers[1] is not None:
        return numbers
    if not isinstance(value, str) or not isinstance(operand, str):
        return None
    for reader in (instant, calendar_date):
        read = reader(value), reader(operand)
        if read[0] is not None and read[1] is not None:
            return read
    return value, operand


def _as_number(value: Any) -> Decimal | None:
    if isinstance(value, str) and not set(value) <= _NUMERIC_TEXT:
        return None
    try:
        return number(value)
    except ValueError:
        return None


# ---- windows back from now -------------------------------------------------------------------


def _timed(
    kind: Kind, op: str, value: Any, duration: Duration, facts: CustomerFacts, now: datetime
) -> Verdict:
    """`within`: value >= now - duration; `before`: value < now - duration. Both flip, once and for
    good, when now - duration passes the value; dates compare on the customer's local calendar."""
    moment = instant(value) if kind in (Kind.INSTANT, Kind.ANY) else None
    if moment is not None:
        inside = moment >= back(now, duration)
        flips = leaves_at(moment, duration) if inside else None
        return Verdict(inside is (op == "within"), flips)
    day = calendar_date(value) if kind in (Kind.DATE, Kind.ANY) else None
    if day is None or (kind is Kind.ANY and duration.has_time):
        return Verdict(False, None)
    today = local_date(now, facts.timezone)
    inside = day >= back_date(today, duration)
    flips_on = date_leaves_at(day, duration) if inside else None
    return Verdict(inside is (op == "within"), start_of(flips_on, facts.timezone) if flips_on else None)


def birthday_verdict(within_days: int, facts: CustomerFacts, now: datetime) -> Verdict:
    """The next birthday (29 February: 28 February in common years) in today..today+N, local."""
    born = facts.customer.profile.birthday
    if born is None:
        return Verdict(False, None)
    today = local_date(now, facts.timezone)
    upcoming = next_birthday(born, today)
    if (upcoming - today).days <= within_days:
        # Holds through the birthday itself; the day after, the next one is a year away.
        return Verdict(True, start_of(upcoming + timedelta(days=1), facts.timezone))
    return Verdict(False, start_of(upcoming - timedelta(days=within_days), facts.timezone))
