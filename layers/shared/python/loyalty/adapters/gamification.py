"""A customer's challenge progress, badges and activity counters, and the activities applied.

CHALLENGE#<id>        CHALLENGE                 a challenge document  (gsi1: CHALLENGES / <id>)
BADGE#<id>            BADGE                     a badge document      (gsi1: BADGES / <id>)
CUST#<customer_id>    ACTIVITY                  counters (events by tracked type, challenges
                                                completed) and earned badges, with a version
CUST#<customer_id>    CHALLENGE#<id>            progress on one challenge, with a version (timeline)
CUST#<customer_id>    CHALLENGE#<id>#DONE#<n>   the n-th completion and its reward (timeline, outbox)
CUST#<customer_id>    BADGE#<id>                a badge earned, once (timeline, outbox)
CUST#<customer_id>    SRC#<source>              an event or transaction applied: its key is the
                                                dedupe key; it keeps what a purchase counted

One activity is one transaction: its SRC record (must not exist), every progress item it changes
(each at the version read), the counters, the profile (badges, a points reward) and the rewards. Two
deliveries of one activity, or two activities completing one challenge, cannot both commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loyalty.adapters.codec import customer_from_item, customer_pk, from_iso, to_iso
from loyalty.adapters.customers import UNLOCKED
from loyalty.adapters.dynamo import DynamoTable, Item, TransactionCancelled, TxOp
from loyalty.adapters.lots import summary_to_attr
from loyalty.adapters.segments import memberships_key, segments_in
from loyalty.adapters.timeline import timeline_fields
from loyalty.domain.customers import Customer, CustomerStatus
from loyalty.domain.gamification import Counters, Progress

COUNTERS_SK = "ACTIVITY"


def progress_sk(challenge_id: str) -> str:
    return f"CHALLENGE#{challenge_id}"


def source_sk(source: str) -> str:
    return f"SRC#{source}"


@dataclass(frozen=True)
class SourceRecord:
    """An applied activity: per challenge, the cycle it counted in and the tasks it counted for."""

    source: str
    counted: Mapping[str, tuple[int, tuple[str, ...]]] = field(default_factory=dict)
    withdrawn: frozenset[str] = frozenset()
    version: int = 1


@dataclass(frozen=True)
class ActivityState:
    customer: Customer | None
    counters: Counters
    progress: Mapping[str, Progress]
    source: SourceRecord | None  # this activity, if it was applied already
    original: SourceRecord | None  # the sale a return undoes, if asked for
    segments: frozenset[str] = frozenset()  # the segments the customer is in (challenge audiences)


@dataclass
class ActivityConflict(Exception):
    """Something read changed before the write (or the activity was applied meanwhile)."""

    labels: set[str]


class GamificationRepository:
    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    # ---- reads ----------------------------------------------------------------------------
    def load(
        self,
        customer_id: str,
        challenge_ids: Sequence[str],
        source: str,
        original: str | None = None,
    ) -> ActivityState:
        """Everything one activity needs, in one BatchGetItem."""
        pk = customer_pk(customer_id)
        keys = [(pk, "PROFILE"), (pk, COUNTERS_SK), (pk, source_sk(source)), memberships_key(customer_id)]
        keys += [(pk, progress_sk(c)) for c in challenge_ids]
        if original:
            keys.append((pk, source_sk(original)))
        items = {str(i["sk"]): i for i in self._table.batch_get(keys)}
        profile = items.get("PROFILE")
        return ActivityState(
            customer=customer_from_item(profile) if profile else None,
            counters=_counters(items.get(COUNTERS_SK)),
            progress={c: _progress(items[progress_sk(c)]) for c in challenge_ids if progress_sk(c) in items},
            source=_source(items[source_sk(source)]) if source_sk(source) in items else None,
            original=_source(items[source_sk(original)])
            if original and source_sk(original) in items
            else None,
            segments=segments_in(list(items.values())),
        )

    def progress_of(self, customer_id: str) -> list[Progress]:
        """Every challenge the customer has progress on (completion records left out)."""
        found: list[Progress] = []
        cursor = None
        while True:
            items, cursor = self._table.query(
                customer_pk(customer_id), sk_prefix="CHALLENGE#", limit=200, cursor=cursor, consistent=True
            )
            found += [_progress(i) for i in items if "#DONE#" not in str(i["sk"])]
            if cursor is None:
                return found

    # ---- writes ---------------------------------------------------------------------------
    def source_op(self, customer_id: str, record: SourceRecord, now: datetime) -> TxOp:
        item = {
            "pk": customer_pk(customer_id),
            "sk": source_sk(record.source),
            "type": "activity_source",
            "source": record.source,
            "counted": {
                c: {"cycle": cycle, "tasks": list(tasks)} for c, (cycle, tasks) in record.counted.items()
            },
            "applied_at": to_iso(now),
            "version": 1,
        }
        return self._table.put_op(item, "attribute_not_exists(pk)", label="source")

    def withdraw_op(self, customer_id: str, record: SourceRecord, withdrawn: frozenset[str]) -> TxOp:
        return self._table.update_op(
            customer_pk(customer_id),
            source_sk(record.source),
            "SET #withdrawn = :withdrawn, #version = :next",
            "#version = :expected",
            values={
                ":withdrawn": sorted(withdrawn),
                ":next": record.version + 1,
                ":expected": record.version,
            },
            label="original",
        )

    def counters_op(self, customer_id: str, counters: Counters, now: datetime) -> TxOp:
        item = {
            "pk": customer_pk(customer_id),
            "sk": COUNTERS_SK,
            "type": "activity_counters",
            "events": dict(counters.events) or None,
            "challenges_completed": counters.challenges_completed,
            "badges": {k: to_iso(v) for k, v in counters.badges.items()} or None,
            "updated_at": to_iso(now),
            "version": counters.version + 1,
        }
        return self._put_versioned(item, counters.version, "counters")

    def progress_op(
        self, customer_id: str, before: Progress, after: Progress, name: str, counts: Mapping[str, int]
    ) -> TxOp:
        """The progress item, with its timeline entry moved to the latest activity that changed it."""
        at = after.updated_at or datetime.min
        total = sum(counts.values())
        done = sum(min(after.task_progress(t), n) for t, n in counts.items())
        item = {
            "pk": customer_pk(customer_id),
            "sk": progress_sk(after.challenge_id),
            "type": "challenge_progress",
            "customer_id": customer_id,
            "challenge_id": after.challenge_id,
            "tasks": dict(after.tasks),
            "stores": {t: list(s) for t, s in after.stores.items() if s} or None,
            "completions": after.completions,
            "completed_at": to_iso(after.completed_at),
            "last_reward": dict(after.last_reward) if after.last_reward else None,
            "updated_at": to_iso(at),
            "version": before.version + 1,
            **timeline_fields(
                customer_pk(customer_id),
                at,
                "challenge",
                "challenge_progress",
                f"{name}: {done} of {total}",
                {"challenge_id": after.challenge_id},
                {"tasks": dict(after.tasks), "completions": after.completions},
            ),
        }
        return self._put_versioned(item, before.version, f"progress:{after.challenge_id}")

    def completion_op(
        self,
        customer_id: str,
        challenge_id: str,
        name: str,
        number: int,
        at: datetime,
        reward: Mapping[str, Any],
        outbox: Sequence[dict[str, Any]],
    ) -> TxOp:
        item = {
            "pk": customer_pk(customer_id),
            "sk": f"{progress_sk(challenge_id)}#DONE#{number:06d}",
            "type": "challenge_completion",
            "customer_id": customer_id,
            "challenge_id": challenge_id,
            "completion": number,
            "completed_at": to_iso(at),
            "reward": dict(reward),
            "outbox": list(outbox) or None,
            **timeline_fields(
                customer_pk(customer_id),
                at,
                "challenge",
                "challenge_completed",
                f"{name} completed",
                {"challenge_id": challenge_id, "completion": number},
                {"reward": dict(reward)},
            ),
        }
        return self._table.put_op(item, "attribute_not_exists(pk)", label="completion")

    def badge_op(
        self, customer_id: str, badge_id: str, name: str, at: datetime, outbox: Sequence[dict[str, Any]]
    ) -> TxOp:
        item = {
            "pk": customer_pk(customer_id),
            "sk": f"BADGE#{badge_id}",
            "type": "badge",
            "customer_id": customer_id,
            "badge_id": badge_id,
            "earned_at": to_iso(at),
            "outbox": list(outbox) or None,
            **timeline_fields(
                customer_pk(customer_id),
                at,
                "badge",
                "badge_earned",
                f"Badge earned: {name}",
                {"badge_id": badge_id},
                {"name": name},
            ),
        }
        return self._table.put_op(item, "attribute_not_exists(pk)", label="badge")

    def profile_op(self, customer: Customer, expected_version: int, outbox: Sequence[dict[str, Any]]) -> TxOp:
        """Badges and a points reward on the profile, if nothing changed since it was read."""
        return self._table.update_op(
            customer_pk(customer.customer_id),
            "PROFILE",
            "SET #points_available = :available, #points_pending = :pending, #points_lifetime = :lifetime, "
            "#earned_by_month = :months, #ledger_seq = :seq, #tier = :tier, #badges = :badges, "
            "#version = :next, #updated_at = :now, #outbox = :outbox, #lots = :lots",
            condition="#version = :expected AND #status = :active" + UNLOCKED,
            values={
                ":available": customer.points.available,
                ":pending": customer.points.pending,
                ":lifetime": customer.points.lifetime,
                ":months": dict(customer.earned_by_month),
                ":seq": customer.ledger_seq,
                ":tier": customer.tier,
                ":badges": {k: to_iso(v) for k, v in customer.badges.items()},
                # A points reward spends nothing but adds a lot: the summary a redemption reads
                # first follows it (a stale one would only cost that redemption a second read).
                ":lots": summary_to_attr(customer.lots, customer.updated_at),
                ":next": expected_version + 1,
                ":now": to_iso(customer.updated_at),
                ":outbox": list(outbox) or None,
                ":expected": expected_version,
                ":active": CustomerStatus.ACTIVE.value,
            },
            label="customer",
        )

    def commit(self, ops: Sequence[TxOp]) -> None:
        try:
            self._table.transact(ops)
        except TransactionCancelled as cancelled:
            raise ActivityConflict(cancelled.failed_labels()) from None

    def _put_versioned(self, item: Item, expected: int, label: str) -> TxOp:
        if expected == 0:
            return self._table.put_op(item, "attribute_not_exists(pk)", label=label)
        return self._table.put_op(item, "#version = :expected", values={":expected": expected}, label=label)


def _counters(item: Item | None) -> Counters:
    if item is None:
        return Counters()
    return Counters(
        events={k: int(v) for k, v in (item.get("events") or {}).items()},
        challenges_completed=int(item.get("challenges_completed", 0)),
        badges={k: from_iso(v) or datetime.min for k, v in (item.get("badges") or {}).items()},
        version=int(item["version"]),
    )


def _progress(item: Item) -> Progress:
    return Progress(
        challenge_id=str(item["challenge_id"]),
        tasks={k: int(v) for k, v in (item.get("tasks") or {}).items()},
        stores={k: tuple(str(s) for s in v) for k, v in (item.get("stores") or {}).items()},
        completions=int(item.get("completions", 0)),
        completed_at=from_iso(item.get("completed_at")),
        last_reward=item.get("last_reward"),
        updated_at=from_iso(item.get("updated_at")),
        version=int(item["version"]),
    )


def _source(item: Item) -> SourceRecord:
    return SourceRecord(
        source=str(item["source"]),
        counted={
            c: (int(v["cycle"]), tuple(str(t) for t in v["tasks"]))
            for c, v in (item.get("counted") or {}).items()
        },
        withdrawn=frozenset(str(c) for c in item.get("withdrawn") or ()),
        version=int(item.get("version", 1)),
    )
