"""Segments: rules over a customer's profile and behaviour, evaluated for one customer at a time.

The rule language is the contract's ("Segments and customer scores" in the API spec); `parse_rule`
reads its JSON, `evaluate` answers it for one customer's facts at an instant together with the
earliest later instant the answer may change by the passage of time alone, and `needs` says how
much history the saved rules can look at. The domain does no I/O: services load the facts.

What each condition means (the lake's SQL of previews answers the same):

Who is in no segment
    Erased and merged-away profiles match no rule. Anonymous visitors are not customers.

Attribute conditions ``{"attr": path, op: value}``
    - A missing value (no birthday, no scores, no enrolment, an absent profile attribute) makes
      every operator false except ``exists``: ``{"exists": false}`` holds for it. ``price_groups``
      and ``badges`` are sets, never missing; ``exists`` asks whether they are non-empty.
    - ``eq``/``ne``/``gt``/``gte``/``lt``/``lte`` compare numbers exactly (``stats.spend`` with
      ``"50.00"`` or ``50``; points with integers), text by code point, instants as instants (the
      operand an RFC 3339 timestamp with offset), dates as dates (``profile.birthday``). ``in`` and
      ``not_in`` take a list: the value equals one of them / none of them.
    - On ``price_groups`` and ``badges``: ``contains`` a name; ``in`` shares at least one name with
      the list, ``not_in`` none; ``eq``/``ne`` compare the whole set with the list's.
    - ``contains`` on text is a (case-sensitive) substring.
    - ``within`` holds when value >= now - duration, ``before`` when value < now - duration (an
      ISO 8601 duration: P1Y2M3W4DT5H6M7S, any part, not zero, at most 100 years). Years and
      months go back on the calendar first (the same day and time, in UTC; where that month lacks
      the day, 31 May less a month, the first instant of the next month, 1 May 00:00, so that a
      window's start never moves back), then weeks, days (24 hours) and time exactly. On
      ``profile.birthday`` and date-valued attributes both take whole days, months or years and
      compare with the customer's local date less the duration, clamped to the month's last day
      (``{"attr": "profile.birthday", "before": "P18Y"}`` is "18 or older"; ``within`` holds on
      the day the age is reached).
    - ``tier`` is the effective tier now; ``status`` is what clients see (``active``,
      ``pending_confirmation``); ``member`` is the profile's membership.
    - ``profile.attributes.<name>`` reads a free-form attribute; dots in the name walk into nested
      maps. Values compare by kind: both numbers (a JSON number or a decimal string such as
      ``"50.00"``) compare as numbers, both RFC 3339 timestamps as instants, both dates as dates,
      otherwise both strings as text, true/false only with true/false. Values of different kinds
      are neither equal nor ordered (``eq``, ``in`` and the orders are false; ``ne`` and ``not_in``
      true). ``contains`` on a list attribute asks for an element equal to the operand.

``{"birthday": {"within_days": N}}``
    The customer's next birthday (today counts; 29 February is 28 February in common years) falls
    in today..today+N on the customer's local calendar (profile time zone, else the programme's).

``{"purchased": {"within", "categories", "skus", "channels", "stores", "store_attributes",
"count", "spend"}}``
    ``within`` is required (it bounds the history the worker loads). The window is every
    purchase at or after now - within, as above (no end: a fact stamped ahead of the clock
    counts too); for one `now` (a preview's), `windows.back(now, duration)` gives its start. A
    purchase is at a matching place when its store is listed (if ``stores`` is given), its
    channel is listed (if ``channels``), and every ``store_attributes`` pair equals the store's
    attribute. A line matches when no ``skus``/``categories`` are given, or its SKU is
    listed, or its category is. ``count`` is the number of SALES in the window at a matching place
    with at least one matching line (with no line filter, every such sale). ``spend`` is the sum
    of the matching lines' paid amounts of those sales less the matching lines' refunded amounts
    of RETURNS in the window at a matching place. Every bound given (``eq``, ``gt``, ``gte``,
    ``lt``, ``lte``) must hold; neither ``count`` nor ``spend`` means count >= 1.

``{"event": {"type", "where", "within", "count"}}``
    ``within`` is required. The number of events of ``type`` at or after now - within whose
    properties equal every ``where`` pair (JSON equality: 2 equals 2.0, true is not 1, null
    equals a missing property); ``count`` bounds it, default >= 1.

``all`` / ``any`` / ``not``
    As in logic; ``all`` and ``any`` take at least one rule. At most 50 conditions and 5 levels
    (the root is level 1).

When the answer changes with no new fact (``Verdict.changes_at``)
    The earliest instant after now at which the answer may differ (evaluating again at that
    instant sees the change); None when only a new fact can change it. Sources: a counted
    purchase or event leaving its window when that changes the answer (the departures are
    played forward in order); ``within``/``before`` flipping when now - duration passes the value;
    ``birthday`` and date conditions at the start of a local day; ``tier`` when
    `CustomerFacts.tier_until` says. ``all``: when every child holds, the earliest child change;
    otherwise the latest change among the failing children (None if one of them never changes).
    ``any`` likewise, reversed. Static conditions never change by themselves.
"""

from __future__ import annotations

from loyalty.domain.scores import Scores
from loyalty.domain.segments.evaluation import evaluate
from loyalty.domain.segments.facts import CustomerFacts, EventFact, LineFact, Needs, PurchaseFact, Verdict
from loyalty.domain.segments.model import (
    All,
    Any_,
    Attr,
    Birthday,
    BirthdayWindow,
    CountRange,
    EventCond,
    EventSpec,
    MoneyRange,
    Node,
    Not,
    Purchased,
    PurchasedSpec,
    Rule,
    dump_rule,
)
from loyalty.domain.segments.needs import needs
from loyalty.domain.segments.parsing import MAX_CONDITIONS, MAX_LEVELS, SegmentRule, parse_rule
from loyalty.domain.segments.windows import Duration, parse_duration

__all__ = [
    "MAX_CONDITIONS",
    "MAX_LEVELS",
    "All",
    "Any_",
    "Attr",
    "Birthday",
    "BirthdayWindow",
    "CountRange",
    "CustomerFacts",
    "Duration",
    "EventCond",
    "EventFact",
    "EventSpec",
    "LineFact",
    "MoneyRange",
    "Needs",
    "Node",
    "Not",
    "PurchaseFact",
    "Purchased",
    "PurchasedSpec",
    "Rule",
    "Scores",
    "SegmentRule",
    "Verdict",
    "dump_rule",
    "evaluate",
    "needs",
    "parse_duration",
    "parse_rule",
]
