"""Saved segments as marketers manage them: the definition, its versions and its background pass.

The rule language itself (parsing, evaluation) is loyalty.domain.segments; this module decides what
a PUT does to a saved segment and how a background evaluation moves along, without any I/O.

A PUT always makes a new `version`. Only a changed rule starts a new background pass (a new
`pass_id`, `rule_version` = that version): renaming a segment re-evaluates nobody. A pass walks the
live customers in customer_id order, a page at a time; `cursor` is the last customer_id done, so a
page message that does not start at the cursor is a duplicate (or belongs to an older pass) and is
dropped, and progress counts each customer once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import StringConstraints

SegmentId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
PassStatus: TypeAlias = Literal["pending", "running", "done", "failed"]
# What a pass waits for before reading the lake: its own save in the lake (the lake writer has then
# read the table's stream past the save, so every customer created before it is there too), or, if
# that never shows (a record the writer could not take), this long for the stream to deliver.
LAKE_SETTLE_SECONDS = 120
# A pass with no progress for this long lost its message (a failed send, or five failed deliveries
# and the dead-letter queue): the minute sweep sends it again, at most MAX_RESUMES times in a row,
# then marks it failed (a customer whose evaluation always fails, say) for a person to look at.
STALLED_SECONDS = 300
MAX_RESUMES = 3


@dataclass(frozen=True)
class Evaluation:
    """The background pass of one rule version over every existing customer."""

    status: PassStatus
    rule_version: int
    pass_id: str
    requested_at: datetime  # when the rule was saved: the lake must have caught up with it
    evaluated: int = 0
    total: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cursor: str = ""  # the last customer_id evaluated ("" before the first page)
    previous: str | None = None  # the cursor before the last page (a retried page re-sends the next)
    snapshot: datetime | None = None  # the lake state the pass reads (the same set on every page)
    progressed_at: datetime | None = None  # the last page done (or the start)
    resumes: int = 0  # sends by the sweep since the last progress

    @property
    def active(self) -> bool:
        return self.status in ("pending", "running")


@dataclass(frozen=True)
class SegmentDefinition:
    segment_id: str
    name: str
    description: str
    rule: Any  # the rule's JSON as the marketer gave it (checked by loyalty.domain.segments)
    version: int
    created_at: datetime
    updated_at: datetime
    evaluation: Evaluation

    @property
    def rule_json(self) -> str:
        return canonical(self.rule)


def canonical(rule: Any) -> str:
    """One text per rule whatever its key order: what decides whether a PUT changed the rule."""
    return json.dumps(rule, sort_keys=True, separators=(",", ":"))


def saved(
    current: SegmentDefinition | None,
    *,
    segment_id: str,
    name: str,
    description: str,
    rule: Any,
    now: datetime,
    new_pass_id: str,
) -> SegmentDefinition:
    """The definition after a PUT: a new version; a new pending pass when the rule is new or changed,
    else the running (or finished) pass carries on."""
    version = 1 if current is None else current.version + 1
    if current is not None and current.rule_json == canonical(rule):
        evaluation = current.evaluation
    else:
        evaluation = Evaluation(status="pending", rule_version=version, pass_id=new_pass_id, requested_at=now)
    return SegmentDefinition(
        segment_id=segment_id,
        name=name,
        description=description,
        rule=rule,
        version=version,
        created_at=current.created_at if current else now,
        updated_at=now,
        evaluation=evaluation,
    )


def lake_ready(evaluation: Evaluation, version_in_lake: int | None, now: datetime) -> bool:
    """Whether the lake holds every customer that existed when the rule was saved: the newest
    version of the definition the lake has is the one that saved this rule, or a later one."""
    if version_in_lake is not None and version_in_lake >= evaluation.rule_version:
        return True
    return (now - evaluation.requested_at).total_seconds() >= LAKE_SETTLE_SECONDS


def started(evaluation: Evaluation, *, total: int, snapshot: datetime, now: datetime) -> Evaluation:
    return replace(
        evaluation,
        status="running",
        total=total,
        snapshot=snapshot,
        started_at=now,
        progressed_at=now,
        resumes=0,
    )


def advanced(evaluation: Evaluation, *, page: list[str], last_page: bool, now: datetime) -> Evaluation:
    """After a page: the cursor moves to its last customer; the last page finishes the pass (and
    its total becomes what was evaluated, should customers have reached the lake meanwhile)."""
    done = last_page
    evaluated = evaluation.evaluated + len(page)
    return replace(
        evaluation,
        evaluated=evaluated,
        total=max(evaluation.total or 0, evaluated) if done else evaluation.total,
        previous=evaluation.cursor,
        cursor=page[-1] if page else evaluation.cursor,
        status="done" if done else "running",
        finished_at=now if done else None,
        progressed_at=now,
        resumes=0,
    )


def stalled(evaluation: Evaluation, now: datetime) -> Evaluation | None:
    """What the sweep does with a pass: None while it moves (or is over); else the pass with one
    more resume (send its message again), or failed after MAX_RESUMES resumes without progress."""
    if not evaluation.active or not evaluation.pass_id:  # (a definition no PUT wrote has no pass)
        return None
    last = evaluation.progressed_at or evaluation.requested_at
    if (now - last).total_seconds() < STALLED_SECONDS * (evaluation.resumes + 1):
        return None
    if evaluation.resumes >= MAX_RESUMES:
        return replace(evaluation, status="failed", finished_at=now)
    return replace(evaluation, resumes=evaluation.resumes + 1)


@dataclass(frozen=True)
class Use:
    """An offer, challenge or campaign naming a segment in its audience."""

    kind: Literal["offer", "challenge", "campaign"]
    id: str
    name: str
    status: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id, "name": self.name, "status": self.status}


def blocks_deletion(valid_until: datetime | None, now: datetime) -> bool:
    """An offer or challenge that can still apply keeps its segments: active ones, and paused or
    draft ones too, since one call activates them and their audience would then silently be
    nobody. One that has ended (valid_until passed) no longer counts."""
    return valid_until is None or valid_until > now
