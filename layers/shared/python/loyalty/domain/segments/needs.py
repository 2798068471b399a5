"""What a set of saved rules can look at, so the membership worker loads only that."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import timedelta

from loyalty.domain.segments.facts import Needs
from loyalty.domain.segments.model import All, Any_, EventCond, Node, Not, Purchased


def needs(rules: Iterable[Node]) -> Needs:
    """The longest purchase window, the longest event window and the event types the rules name.
    Each lookback is at least as long as its window, however the calendar falls."""
    purchase: timedelta | None = None
    event: timedelta | None = None
    types: set[str] = set()
    for node in (node for rule in rules for node in _walk(rule)):
        if isinstance(node, Purchased):
            span = node.purchased.within.upper_bound
            purchase = span if purchase is None else max(purchase, span)
        elif isinstance(node, EventCond):
            span = node.event.within.upper_bound
            event = span if event is None else max(event, span)
            types.add(node.event.type)
    return Needs(lookback=purchase, event_lookback=event, event_types=frozenset(types))


def _walk(rule: Node) -> Iterator[Node]:
    yield rule
    children: list[Node] = []
    if isinstance(rule, All):
        children = list(rule.all)
    elif isinstance(rule, Any_):
        children = list(rule.any)
    elif isinstance(rule, Not):
        children = [rule.not_]
    for child in children:
        yield from _walk(child)
