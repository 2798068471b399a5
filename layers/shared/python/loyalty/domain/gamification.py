"""Challenges, punch cards and badges: the documents and the rules, no I/O.

A challenge has tasks; each task counts activities (a customer event of a type, or a qualifying
purchase) up to its `count`. When the last task reaches its count the challenge completes and its
reward is given, once. A repeatable challenge (a punch card) starts again after each completion;
activities beyond the count of the completing one are not carried over. Only members take part.

A badge is earned once, when a metric of the customer reaches `gte`. Metrics are the profile's
counters (transactions, spend, lifetime points) and the activity counters the worker keeps
(`events:<type>`, `challenges_completed`), kept only for the metrics some badge uses.

The worker applies each activity (an event or a transaction, its `source`) at most once per
customer; what a purchase counted is remembered so a return before completion takes it back.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import ConfigDict, Field, field_validator, model_validator

from loyalty.domain.attributes import check_storable
from loyalty.domain.customers import Customer
from loyalty.domain.errors import FieldError
from loyalty.domain.models import Model
from loyalty.domain.money import ZERO, cents
from loyalty.domain.offers.model import Audience, PositiveMoney
from loyalty.domain.sales import Line
from loyalty.domain.stores import Channel, Store
from loyalty.domain.values import Factor, Timestamp

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Label = Annotated[str, Field(min_length=1, max_length=64)]
EventType = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
ChallengeStatus: TypeAlias = Literal["active", "paused", "draft"]
BadgeStatus: TypeAlias = Literal["active", "paused"]
_CHANNELS = frozenset(c.value for c in Channel)
_MISSING: Any = object()
MAX_TASK_COUNT = 10_000


class _Config(Model):
    model_config = ConfigDict(extra="forbid")


class EventTask(_Config):
    """Counts customer events of `type` whose properties equal every `where` entry."""

    type: EventType
    where: dict[str, Any] = Field(default_factory=dict, max_length=20)

    _storable = field_validator("where")(check_storable)


class PurchaseTask(_Config):
    """Counts sales that qualify: in a listed channel / store / store with these attributes, and
    spending at least `min_total` on the matching lines (lines of a listed SKU or category; every
    line when both lists are empty). Empty lists restrict nothing."""

    min_total: PositiveMoney | None = None
    categories: list[Label] = Field(default_factory=list, max_length=200)
    skus: list[Label] = Field(default_factory=list, max_length=1000)
    channels: list[str] = Field(default_factory=list, max_length=3)
    stores: list[Id] = Field(default_factory=list, max_length=1000)
    store_attributes: dict[str, Any] = Field(default_factory=dict, max_length=20)
    distinct_stores: bool = Field(
        default=False,
        description='true: each store counts once ("buy in three different coffee-corner stores")',
    )

    _storable = field_validator("store_attributes")(check_storable)

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, channels: list[str]) -> list[str]:
        unknown = [c for c in channels if c not in _CHANNELS]
        if unknown:
            raise ValueError(f"unknown channel {unknown[0]!r}: use {', '.join(sorted(_CHANNELS))}")
        return channels


class Task(_Config):
    task_id: Id
    event: EventTask | None = None
    purchase: PurchaseTask | None = None
    count: int = Field(default=1, ge=1, le=MAX_TASK_COUNT)

    @model_validator(mode="after")
    def _one_kind(self) -> Task:
        if (self.event is None) == (self.purchase is None):
            raise ValueError("a task counts either events (`event`) or purchases (`purchase`)")
        return self


class CouponReward(_Config):
    offer_id: Id
    valid_days: int = Field(default=30, ge=1, le=3650)


class ChallengeReward(_Config):
    points: int | None = Field(default=None, ge=1, le=1_000_000)
    coupon: CouponReward | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ChallengeReward:
        if (self.points is None) == (self.coupon is None):
            raise ValueError("a reward is either `points` or a `coupon`")
        return self


class Challenge(_Config):
    challenge_id: Id
    name: str = Field(min_length=1, max_length=200)
    status: ChallengeStatus = "active"
    valid_from: Timestamp | None = None
    valid_until: Timestamp | None = Field(default=None, description="exclusive: ends at this instant")
    audience: Audience = Field(default_factory=Audience)
    tasks: list[Task] = Field(min_length=1, max_length=20)
    reward: ChallengeReward
    repeatable: bool = Field(default=False, description="true: starts again after each reward (a punch card)")

    @model_validator(mode="after")
    def _consistent(self) -> Challenge:
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        ids = [t.task_id for t in self.tasks]
        if len(set(ids)) != len(ids):
            raise ValueError("task_id must be unique within a challenge")
        if self.audience.first_purchase:
            raise ValueError("audience.first_purchase is for offers; a challenge cannot use it")
        return self

    def live_at(self, at: datetime) -> bool:
        return (
            self.status == "active"
            and (self.valid_from is None or at >= self.valid_from)
            and (self.valid_until is None or at < self.valid_until)
        )


Metric = Annotated[
    str,
    Field(
        pattern=r"^(transactions|spend|lifetime_points|challenges_completed|events:[A-Za-z0-9_.:-]{1,64})$",
        description="transactions | spend | lifetime_points | challenges_completed | events:<type>",
    ),
]


class BadgeWhen(_Config):
    metric: Metric
    gte: Factor = Field(gt=0, le=Decimal("1000000000"), decimal_places=2)


class Badge(_Config):
    badge_id: Id
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    status: BadgeStatus = "active"
    when: BadgeWhen


# ---- what happened --------------------------------------------------------------------------


@dataclass(frozen=True)
class Sale:
    """A sale as a purchase task sees it: the store, and the lines still with the customer."""

    store: Store
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class Activity:
    """One event or transaction of a customer. `source` identifies it for ever (dedupe)."""

    source: str
    at: datetime
    store_id: str = ""
    event_type: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    sale: Sale | None = None


def event_source(store_id: str, event_id: str) -> str:
    return f"EVT#{store_id}#{event_id}"


def sale_source(store_id: str, transaction_id: str) -> str:
    return f"TXN#{store_id}#{transaction_id}"


def _event_matches(task: EventTask, activity: Activity) -> bool:
    if activity.event_type != task.type:
        return False
    return all(activity.properties.get(k, _MISSING) == v for k, v in task.where.items())


def sale_qualifies(task: PurchaseTask, sale: Sale) -> bool:
    store = sale.store
    if task.channels and str(store.channel) not in task.channels:
        return False
    if task.stores and store.store_id not in task.stores:
        return False
    if any(store.attributes.get(k, _MISSING) != v for k, v in task.store_attributes.items()):
        return False
    selective = bool(task.skus or task.categories)
    matching = [
        line
        for line in sale.lines
        if line.quantity > 0
        and (not selective or line.sku in task.skus or (line.category or "") in task.categories)
    ]
    if not matching:
        return False
    spent = cents(sum((line.amount for line in matching), ZERO))
    return task.min_total is None or spent >= task.min_total


def task_matches(task: Task, activity: Activity) -> bool:
    if task.event is not None:
        return _event_matches(task.event, activity)
    assert task.purchase is not None
    return activity.sale is not None and sale_qualifies(task.purchase, activity.sale)


# ---- progress -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """A customer's progress on one challenge; `version` 0: nothing stored yet."""

    challenge_id: str
    tasks: Mapping[str, int] = field(default_factory=dict)
    stores: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # distinct-store tasks' stores
    completions: int = 0
    completed_at: datetime | None = None  # the last completion
    last_reward: Mapping[str, Any] | None = None
    updated_at: datetime | None = None
    version: int = 0

    def task_progress(self, task_id: str) -> int:
        return int(self.tasks.get(task_id, 0))

    def finished(self, challenge: Challenge) -> bool:
        """A one-off challenge that was completed takes nothing more."""
        return not challenge.repeatable and self.completions > 0


@dataclass(frozen=True)
class Step:
    """What one activity did to one challenge."""

    progress: Progress
    counted: tuple[str, ...]  # the task ids it counted for
    cycle: int  # the completions before it: a return only takes back what the current cycle holds
    completed: bool


def _distinct(task: Task) -> bool:
    return task.purchase is not None and task.purchase.distinct_stores


def _counts(task: Task, progress: Progress, activity: Activity) -> bool:
    if progress.task_progress(task.task_id) >= task.count or not task_matches(task, activity):
        return False
    return not _distinct(task) or activity.store_id not in progress.stores.get(task.task_id, ())


def advance(challenge: Challenge, progress: Progress, activity: Activity) -> Step | None:
    """Count the activity for every task it matches that is not yet full (a distinct-store task: in
    a store it has not counted yet this round); None: nothing counted."""
    if progress.finished(challenge):
        return None
    counted = tuple(t.task_id for t in challenge.tasks if _counts(t, progress, activity))
    if not counted:
        return None
    tasks = {t.task_id: progress.task_progress(t.task_id) + (t.task_id in counted) for t in challenge.tasks}
    stores = dict(progress.stores)
    for task in challenge.tasks:
        if task.task_id in counted and _distinct(task):
            stores[task.task_id] = (*stores.get(task.task_id, ()), activity.store_id)
    completed = all(tasks[t.task_id] >= t.count for t in challenge.tasks)
    cycle = progress.completions
    if completed and challenge.repeatable:
        tasks, stores = {t.task_id: 0 for t in challenge.tasks}, {}
    after = replace(progress, tasks=tasks, stores=stores)
    if completed:
        after = replace(after, completions=progress.completions + 1, completed_at=activity.at)
    return Step(after, counted, cycle, completed)


def no_longer_counting(challenge: Challenge, task_ids: Iterable[str], sale: Sale) -> list[str]:
    """Of the purchase tasks a sale counted for, those it no longer qualifies for as it stands now
    (after returns); event tasks and tasks removed from the challenge since are left alone."""
    tasks = {t.task_id: t.purchase for t in challenge.tasks if t.purchase is not None}
    return [t for t in task_ids if (task := tasks.get(t)) is not None and not sale_qualifies(task, sale)]


def withdraw(
    challenge: Challenge, progress: Progress, tasks: Iterable[str], cycle: int, store_id: str = ""
) -> Progress | None:
    """A returned purchase's count comes off the tasks it counted for (and its store off a
    distinct-store task's), while the cycle it counted in is still running; after a completion
    nothing is taken back (the reward stays given)."""
    if progress.completions != cycle or progress.finished(challenge):
        return None
    known = {t.task_id for t in challenge.tasks}
    taken = [t for t in tasks if t in known and progress.task_progress(t) > 0]
    if not taken:
        return None
    stores = {
        t: tuple(s for s in listed if t not in taken or s != store_id)
        for t, listed in progress.stores.items()
    }
    return replace(
        progress, tasks={**progress.tasks, **{t: progress.task_progress(t) - 1 for t in taken}}, stores=stores
    )


def admits(
    challenge: Challenge, customer: Customer, at: datetime, segments: AbstractSet[str] = frozenset()
) -> bool:
    """Members only; the audience as offers read it (`segments`: the ones the customer is in)."""
    audience = challenge.audience
    if not customer.member or not challenge.live_at(at):
        return False
    if audience.tiers and customer.tier not in audience.tiers:
        return False
    if audience.price_groups and customer.price_groups.isdisjoint(audience.price_groups):
        return False
    return not audience.segments or not segments.isdisjoint(audience.segments)


# ---- badges ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counters:
    """A customer's activity counters and earned badges; `version` 0: nothing stored yet."""

    events: Mapping[str, int] = field(default_factory=dict)
    challenges_completed: int = 0
    badges: Mapping[str, datetime] = field(default_factory=dict)
    version: int = 0


def tracked_event_types(badges: Iterable[Badge]) -> frozenset[str]:
    return frozenset(
        b.when.metric.removeprefix("events:") for b in badges if b.when.metric.startswith("events:")
    )


def metric_value(metric: str, customer: Customer, counters: Counters) -> Decimal:
    if metric == "transactions":
        return Decimal(customer.stats.transactions)
    if metric == "spend":
        return Decimal(customer.stats.spend)
    if metric == "lifetime_points":
        return Decimal(customer.points.lifetime)
    if metric == "challenges_completed":
        return Decimal(counters.challenges_completed)
    return Decimal(counters.events.get(metric.removeprefix("events:"), 0))


def count_event(counters: Counters, event_type: str | None, tracked: frozenset[str]) -> Counters:
    if event_type is None or event_type not in tracked:
        return counters
    return replace(counters, events={**counters.events, event_type: counters.events.get(event_type, 0) + 1})


def newly_earned(badges: Iterable[Badge], customer: Customer, counters: Counters) -> list[Badge]:
    """Active badges the member has reached and not earned before (members only, as challenges)."""
    if not customer.member:
        return []
    return [
        b
        for b in badges
        if b.status == "active"
        and b.badge_id not in counters.badges
        and metric_value(b.when.metric, customer, counters) >= b.when.gte
    ]


def unknown_references(
    challenge: Challenge, *, tiers: Collection[str], stores: Collection[str], price_groups: Collection[str]
) -> list[FieldError]:
    """Tiers, stores and price groups the challenge names that do not exist: each would make it
    silently count nobody, so saving it is refused, naming every one (as offers are)."""
    audience = challenge.audience
    errors = [
        FieldError(
            ("body", "audience", "tiers", i), f"unknown tier {tier!r}: the programme has {sorted(tiers)}"
        )
        for i, tier in enumerate(audience.tiers)
        if tier not in tiers
    ]
    errors += [
        FieldError(("body", "audience", "price_groups", i), f"unknown price group {group!r}: create it first")
        for i, group in enumerate(audience.price_groups)
        if group not in price_groups
    ]
    errors += [
        FieldError(("body", "tasks", t, "purchase", "stores", i), f"unknown store {store!r}")
        for t, task in enumerate(challenge.tasks)
        for i, store in enumerate(task.purchase.stores if task.purchase else ())
        if store not in stores
    ]
    return errors


def named_stores(challenge: Challenge) -> set[str]:
    return {s for task in challenge.tasks if task.purchase for s in task.purchase.stores}
