"""What the evaluator is given about one customer, and what it answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from loyalty.domain.customers import Customer
from loyalty.domain.scores import Scores

PurchaseType = Literal["sale", "return"]


@dataclass(frozen=True, slots=True)
class LineFact:
    """One line of a sale or return: `amount` is what was paid after discounts (for a return, what
    was refunded, as a positive amount)."""

    sku: str
    category: str | None
    amount: Decimal


@dataclass(frozen=True, slots=True)
class PurchaseFact:
    occurred_at: datetime
    type: PurchaseType
    store_id: str
    channel: str
    store_attributes: Mapping[str, Any] = field(default_factory=dict)
    lines: tuple[LineFact, ...] = ()


@dataclass(frozen=True, slots=True)
class EventFact:
    occurred_at: datetime
    type: str
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    """One customer as the rules see them. Purchases and events need only reach back as far as
    `needs(rules)` says; any order."""

    customer: Customer
    tier: str | None  # the effective tier now (effective_tier(customer, programme, now))
    scores: Scores | None
    purchases: tuple[PurchaseFact, ...]
    events: tuple[EventFact, ...]
    timezone: ZoneInfo  # the profile's time zone, else the programme's default (birthdays)
    # When the effective tier may next change with no new fact (its rolling window moving on);
    # None: not before something else happens. Rules on `tier` report it as their next change.
    tier_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether the rule holds now, and the earliest later instant at which it may not hold the same
    with no new fact (None: never by the passage of time alone). Evaluating again at `changes_at`
    itself already sees the change, if there is one."""

    matches: bool
    changes_at: datetime | None


@dataclass(frozen=True, slots=True)
class Needs:
    """What the saved rules can look at, so the membership worker loads no more than that.

    `lookback`: how far back purchases (sales and returns) matter; None when no rule looks at
    purchases. `event_lookback` likewise for events, of the types in `event_types` only."""

    lookback: timedelta | None = None
    event_lookback: timedelta | None = None
    event_types: frozenset[str] = frozenset()
