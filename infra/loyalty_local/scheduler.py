"""EventBridge Scheduler locally: moto stores schedules but never fires them; this fires them.

`ScheduleRunner.tick(now)` reads the schedules from moto's Scheduler API and fires every
occurrence that fell due since the last tick, in the schedule's time zone, the way EventBridge
Scheduler does: `at(...)` once (then deleted when ActionAfterCompletion is DELETE), `rate(...)` as a
fixed duration from the start date, `cron(...)` on the wall clock of its time zone. Daylight
saving time as AWS documents it: an occurrence whose wall-clock time does not exist (the hour
skipped in spring) is skipped; one whose time happens twice (autumn) fires once, at the first.

Targets: a Lambda function (invoked through moto, which runs our handler in-process,
loyalty_local.stepfunctions), a state machine (StartExecution, named after the schedule and the
occurrence, so a repeated tick starts nothing twice) and an SQS queue. The input gets Scheduler's
context attributes (`<aws.scheduler.scheduled-time>` and the others) filled in.

`make run` ticks every few seconds on the real clock (`ScheduleTicker`); tests call `tick` with a
clock they move. The expressions are evaluated by loyalty.domain.cron (AWS's syntax is not Unix
cron's, and the DST rule above has to be applied on the wall clock whatever library matches the
fields); campaign definitions use the same evaluator to refuse a schedule that never fires.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from loyalty.domain.cron import InvalidScheduleExpression, next_fire

log = logging.getLogger(__name__)


def _context(value: str, schedule: dict[str, Any], scheduled: datetime) -> str:
    for name, filled in (
        ("scheduled-time", scheduled.strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("execution-id", str(uuid.uuid4())),
        ("attempt-number", "1"),
        ("schedule-arn", str(schedule.get("Arn", ""))),
    ):
        value = value.replace(f"<aws.scheduler.{name}>", filled)
    return value


@dataclass
class Fired:
    group: str
    name: str
    scheduled: datetime
    target: str


@dataclass
class ScheduleRunner:
    """Fires moto's stored schedules. `tick(now)` fires what fell due in (last tick, now]."""

    session: Any
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    max_catch_up: int = 200  # occurrences fired per schedule and tick, at most
    fired: list[Fired] = field(default_factory=list)
    _cursors: dict[tuple[str, str], datetime] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def tick(self, now: datetime | None = None) -> list[Fired]:
        now = now or self.clock()
        fired: list[Fired] = []
        with self._lock:
            client = self.session.client("scheduler")
            for summary in self._schedules(client):
                group, name = summary.get("GroupName") or "default", summary["Name"]
                schedule = client.get_schedule(GroupName=group, Name=name)
                if schedule.get("State", "ENABLED") != "ENABLED":
                    continue
                fired.extend(self._due(client, schedule, group, name, now))
            self.fired.extend(fired)
        return fired

    def _schedules(self, client: Any) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            page = client.list_schedules(**({"NextToken": token} if token else {}))
            yield from page.get("Schedules", [])
            token = page.get("NextToken")
            if not token:
                return

    def _due(
        self, client: Any, schedule: dict[str, Any], group: str, name: str, now: datetime
    ) -> list[Fired]:
        key = (group, name)
        expression = str(schedule["ScheduleExpression"])
        timezone = str(schedule.get("ScheduleExpressionTimezone") or "UTC")
        start, end = _aware(schedule.get("StartDate")), _aware(schedule.get("EndDate"))
        if key not in self._cursors:
            # A recurring schedule fires from when it is first seen on; a one-time one whenever due.
            first_seen = now if not expression.startswith("at(") else datetime.min.replace(tzinfo=UTC)
            self._cursors[key] = max(first_seen, start) if start else first_seen
            if not expression.startswith("at("):
                return []
        fired: list[Fired] = []
        while len(fired) < self.max_catch_up:
            due = next_fire(expression, timezone, after=self._cursors[key], start=start)
            if due is None or due > now or (end is not None and due > end):
                break
            self._cursors[key] = due
            fired.append(self._fire(schedule, group, name, due))
        if expression.startswith("at(") and fired and schedule.get("ActionAfterCompletion") == "DELETE":
            client.delete_schedule(GroupName=group, Name=name)
            self._cursors.pop(key, None)
        return fired

    def _fire(self, schedule: dict[str, Any], group: str, name: str, scheduled: datetime) -> Fired:
        target = schedule["Target"]
        arn = str(target["Arn"])
        payload = _context(str(target.get("Input") or "{}"), schedule, scheduled)
        try:
            if ":lambda:" in arn:
                self.session.client("lambda").invoke(
                    FunctionName=arn, InvocationType="Event", Payload=payload
                )
            elif ":states:" in arn:
                # One execution per occurrence: a name Step Functions refuses to reuse.
                run_name = re.sub(r"[^A-Za-z0-9_-]", "-", f"{name}-{scheduled:%Y%m%dT%H%M}")[-80:]
                self.session.client("stepfunctions").start_execution(
                    stateMachineArn=arn, name=run_name, input=payload
                )
            elif ":sqs:" in arn:
                sqs = self.session.client("sqs")
                queue_name = arn.rsplit(":", 1)[-1]
                url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
                sqs.send_message(QueueUrl=url, MessageBody=payload)
            else:
                raise InvalidScheduleExpression(f"no local delivery to {arn}")
        except ClientError:  # Scheduler retries and then dead-letters; locally: logged, not retried
            log.exception("schedule %s/%s could not reach %s", group, name, arn)
        return Fired(group, name, scheduled, arn)


def _aware(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).astimezone(UTC)


class ScheduleTicker:
    """`make run`'s stand-in for Scheduler: ticks the runner every `interval` seconds."""

    def __init__(self, runner: ScheduleRunner, interval: float = 5.0) -> None:
        self._runner = runner
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ScheduleTicker:
        def loop() -> None:
            while not self._stop.wait(self._interval):
                try:
                    self._runner.tick()
                except Exception:  # the next tick tries again
                    log.exception("firing schedules failed")

        self._thread = threading.Thread(target=loop, name="scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
