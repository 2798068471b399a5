"""Evaluating a rule tree for one customer at one instant, with the next instant it may change."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from loyalty.domain.customers import CustomerStatus
from loyalty.domain.segments.attributes import attr_verdict, birthday_verdict
from loyalty.domain.segments.behaviour import event_verdict, purchased_verdict
from loyalty.domain.segments.facts import CustomerFacts, Verdict
from loyalty.domain.segments.model import All, Any_, Attr, Birthday, EventCond, Node, Not, Purchased


def evaluate(rule: Node, facts: CustomerFacts, now: datetime) -> Verdict:
    """Whether `rule` holds for the customer at `now` (an aware instant), and the earliest later
    instant at which it may stop or start holding with no new fact (see the package notes)."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware instant")
    if facts.customer.status is not CustomerStatus.ACTIVE:  # erased and merged-away: in no segment
        return Verdict(False, None)
    return _verdict(rule, facts, now)


def _verdict(rule: Node, facts: CustomerFacts, now: datetime) -> Verdict:
    return _BY_TYPE[type(rule)](rule, facts, now)


def _all(rule: Node, facts: CustomerFacts, now: datetime) -> Verdict:
    assert isinstance(rule, All)
    return _combine([_verdict(child, facts, now) for child in rule.all], want=True)


def _any(rule: Node, facts: CustomerFacts, now: datetime) -> Verdict:
    assert isinstance(rule, Any_)
    return _combine([_verdict(child, facts, now) for child in rule.any], want=False)


def _combine(verdicts: list[Verdict], *, want: bool) -> Verdict:
    """`all` (want=True) or `any` (want=False) of the children.

    When every child agrees with `want` (all true for `all`, all false for `any`), the first child
    to change changes the answer. Otherwise the answer changes only once every child that
    disagrees has changed: not before the latest of their next changes, never if one of them
    cannot change."""
    deciding = [v for v in verdicts if v.matches is not want]
    if not deciding:
        return Verdict(want, _earliest(v.changes_at for v in verdicts))
    changes = [v.changes_at for v in deciding]
    latest = None if any(at is None for at in changes) else max(at for at in changes if at is not None)
    return Verdict(not want, latest)


def _earliest(moments: Iterable[datetime | None]) -> datetime | None:
    return min((at for at in moments if at is not None), default=None)


def _not(rule: Node, facts: CustomerFacts, now: datetime) -> Verdict:
    assert isinstance(rule, Not)
    inner = _verdict(rule.not_, facts, now)
    return Verdict(not inner.matches, inner.changes_at)


def _attr(rule: Node, facts: CustomerFacts, now: datetime) -> Verdict:
    assert isinstance(rule, Attr)
    return attr_verdict(rule, facts, now)


def _birthday(rule: Node, facts: CustomerFacts, now: datetime) -> Verdict:
    assert isinstance(rule, Birthday)
    return birthday_verdict(rule.birthday.within_days, facts, now)


def _purchased(rule: Node, facts: CustomerFacts, now: datetime) -> Verdict:
    assert isinstance(rule, Purchased)
    return purchased_verdict(rule.purchased, facts, now)


def _event(rule: Node, facts: CustomerFacts, now: datetime) -> Verdict:
    assert isinstance(rule, EventCond)
    return event_verdict(rule.event, facts, now)


_BY_TYPE: dict[type, Callable[[Node, CustomerFacts, datetime], Verdict]] = {
    All: _all,
    Any_: _any,
    Not: _not,
    Attr: _attr,
    Birthday: _birthday,
    Purchased: _purchased,
    EventCond: _event,
}
