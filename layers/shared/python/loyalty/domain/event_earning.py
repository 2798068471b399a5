"""Event earn rules applied to one event: which rules earn, within which per-customer limits.
Pure rules, no I/O; the points themselves are earned by the ledger (domain/points.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from loyalty.domain.activity import RecordedEvent
from loyalty.domain.programme import EventEarnRule, Programme


def limit_period(rule: EventEarnRule, at: datetime) -> str:
    """The counter a rule's limit is kept in: the UTC day or month the event occurred in, or for
    ever. The programme has no time zone of its own (yet): days and months are UTC's."""
    per = rule.limit.per if rule.limit is not None else "ever"
    if per == "day":
        return f"{at.year:04d}-{at.month:02d}-{at.day:02d}"
    if per == "month":
        return f"{at.year:04d}-{at.month:02d}"
    return "ever"


def matching_rules(programme: Programme, event: RecordedEvent) -> list[EventEarnRule]:
    return [r for r in programme.event_rules if r.matches(event.type, event.properties, event.occurred_at)]


def too_old(programme: Programme, event: RecordedEvent, now: datetime) -> bool:
    """As for sales: an event that occurred more than max_backdate_days ago earns nothing (it is
    kept and counted elsewhere, but it cannot buy points that would long have expired)."""
    return event.occurred_at < now - timedelta(days=programme.max_backdate_days)


@dataclass(frozen=True)
class RuleDecision:
    rule: EventEarnRule
    period: str
    counted: int  # times this customer earned by the rule in the period, before this event
    earns: bool
    why_not: str | None = None  # limit_reached | already_earned

    @property
    def count_after(self) -> int:
        return self.counted + 1


def decide(
    rules: list[EventEarnRule],
    at: datetime,
    counts: Mapping[tuple[str, str], int],
    already: frozenset[str],
) -> list[RuleDecision]:
    """For each matching rule: does this event earn by it? Not twice for one event (`already`: the
    rules this event has earned by), and not beyond the rule's limit in its period (`counts`, by
    rule id and period)."""
    decisions = []
    for rule in rules:
        period = limit_period(rule, at)
        counted = counts.get((rule.rule_id, period), 0)
        if rule.rule_id in already:
            decisions.append(RuleDecision(rule, period, counted, False, "already_earned"))
        elif rule.limit is not None and counted >= rule.limit.per_customer:
            decisions.append(RuleDecision(rule, period, counted, False, "limit_reached"))
        else:
            decisions.append(RuleDecision(rule, period, counted, True))
    return decisions


def points_if_member(programme: Programme, event: RecordedEvent) -> int:
    """What the event's matching rules give a member (before limits): what an answer to a
    non-member or an anonymous visitor can say they would have earned, as sales do."""
    return sum(r.points for r in matching_rules(programme, event))
