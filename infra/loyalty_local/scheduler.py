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
clock they move. The cron evaluator is ours: AWS's syntax (six fields with a year, `?`, day of
week 1-7 from Sunday, `L`, `W`, `#`) is not Unix cron's, and the DST rule above has to be applied
on the wall clock whatever library matches the fields.
"""

from __future__ import annotations

import calendar
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from botocore.exceptions import ClientError

log = logging.getLogger(__name__)

MONTHS = {name: n for n, name in enumerate(calendar.month_abbr) if name}
MONTHS = {k.upper(): v for k, v in MONTHS.items()}
DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
# How far ahead an expression is searched before it is declared never to fire (a 30th of February).
HORIZON_DAYS = 366 * 5


class InvalidScheduleExpression(ValueError):
    pass


def _values(field_text: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    """A plain cron field (`*`, `a`, `a-b`, `a/n`, `a-b/n`, lists, names) as the set it allows."""
    allowed: set[int] = set()
    for item in field_text.split(","):
        part, step = item, 1
        if "/" in item:
            part, step_text = item.split("/", 1)
            if not step_text.isdigit():
                raise InvalidScheduleExpression(f"{field_text} has a bad step")
            step = int(step_text)
            if step < 1:
                raise InvalidScheduleExpression(f"a step must be positive: {field_text}")
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _number(a, names), _number(b, names)
        else:
            start = _number(part, names)
            end = high if step > 1 else start
        if not (low <= start <= high and low <= end <= high):
            raise InvalidScheduleExpression(f"{field_text} is outside {low}-{high}")
        if start <= end:
            allowed.update(range(start, end + 1, step))
        else:  # a range across the end (FRI-MON, NOV-FEB)
            allowed.update(
                v for i, v in enumerate([*range(start, high + 1), *range(low, end + 1)]) if i % step == 0
            )
    return allowed


def _number(text: str, names: dict[str, int] | None) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise InvalidScheduleExpression(f"{text!r} is not a number")
    return int(text)


def _sunday_first(day: date) -> int:
    return (day.isoweekday() % 7) + 1  # SUN=1 ... SAT=7, as AWS counts


@dataclass(frozen=True)
class Cron:
    """`cron(minutes hours day-of-month month day-of-week year)`, AWS's flavour."""

    minutes: frozenset[int]
    hours: frozenset[int]
    day_of_month: str
    months: frozenset[int]
    day_of_week: str
    years: frozenset[int]

    @classmethod
    def parse(cls, body: str) -> Cron:
        fields = body.split()
        if len(fields) != 6:
            raise InvalidScheduleExpression(
                "cron(...) takes six fields: minutes hours day-of-month month day-of-week year"
            )
        minute, hour, dom, month, dow, year = (f.upper() for f in fields)
        if (dom == "?") == (dow == "?"):
            raise InvalidScheduleExpression("exactly one of day-of-month and day-of-week must be '?'")
        cron = cls(
            frozenset(_values(minute, 0, 59)),
            frozenset(_values(hour, 0, 23)),
            dom,
            frozenset(_values(month, 1, 12, MONTHS)),
            dow,
            frozenset(_values(year, 1970, 2199)),
        )
        cron.matches_day(date(2026, 1, 1))  # a malformed day field fails here, not at the first tick
        return cron

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months or day.year not in self.years:
            return False
        if self.day_of_month != "?":
            return _day_of_month_matches(self.day_of_month, day)
        return _day_of_week_matches(self.day_of_week, day)


def _day_of_month_matches(text: str, day: date) -> bool:
    last = calendar.monthrange(day.year, day.month)[1]
    if text == "L":
        return day.day == last
    if text == "LW":
        target = date(day.year, day.month, last)
        while target.isoweekday() > 5:
            target -= timedelta(days=1)
        return day == target
    if text.endswith("W"):
        wanted = min(int(text[:-1]), last)
        target = date(day.year, day.month, wanted)
        if target.isoweekday() == 6:  # Saturday: the Friday before, unless that leaves the month
            target = target - timedelta(days=1) if wanted > 1 else target + timedelta(days=2)
        elif target.isoweekday() == 7:  # Sunday: the Monday after, unless that leaves the month
            target = target + timedelta(days=1) if wanted < last else target - timedelta(days=2)
        return day == target
    return day.day in _values(text, 1, 31)


def _day_of_week_matches(text: str, day: date) -> bool:
    weekday = _sunday_first(day)
    if "#" in text:
        name, nth = text.split("#", 1)
        return weekday == _number(name, DAYS) and (day.day - 1) // 7 + 1 == int(nth)
    if text.endswith("L") and text != "L":
        last = calendar.monthrange(day.year, day.month)[1]
        return weekday == _number(text[:-1], DAYS) and day.day > last - 7
    if text == "L":
        return weekday == 7
    return weekday in _values(text, 1, 7, DAYS)


_RATE = re.compile(r"^(\d+)\s+(minute|minutes|hour|hours|day|days)$")


@dataclass(frozen=True)
class ScheduleExpression:
    kind: str  # "at" | "rate" | "cron"
    at: datetime | None = None  # naive wall-clock time in the schedule's zone
    rate: timedelta | None = None
    cron: Cron | None = None

    @classmethod
    def parse(cls, expression: str) -> ScheduleExpression:
        match = re.match(r"^(at|rate|cron)\((.*)\)$", expression.strip())
        if match is None:
            raise InvalidScheduleExpression(f"{expression!r} is not at(...), rate(...) or cron(...)")
        kind, body = match.groups()
        if kind == "at":
            try:
                return cls("at", at=datetime.strptime(body, "%Y-%m-%dT%H:%M:%S"))
            except ValueError:
                raise InvalidScheduleExpression("at(...) takes yyyy-mm-ddThh:mm:ss") from None
        if kind == "rate":
            rate = _RATE.match(body.strip())
            if rate is None or int(rate.group(1)) < 1:
                raise InvalidScheduleExpression("rate(...) takes a positive number of minutes, hours or days")
            unit = rate.group(2).rstrip("s") + "s"
            return cls("rate", rate=timedelta(**{unit: int(rate.group(1))}))
        return cls("cron", cron=Cron.parse(body))


def _exists(local: datetime, zone: ZoneInfo) -> bool:
    """False for a wall-clock time the zone skips (spring forward)."""
    aware = local.replace(tzinfo=zone, fold=0)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == local


def cron_times(cron: Cron, zone: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """Occurrences strictly after `after` (aware), in order, as aware UTC datetimes."""
    start_local = after.astimezone(zone)
    day = start_local.date()
    last_day = day + timedelta(days=HORIZON_DAYS)
    hours, minutes = sorted(cron.hours), sorted(cron.minutes)
    while day <= last_day:
        if cron.matches_day(day):
            for hour in hours:
                for minute in minutes:
                    local = datetime(day.year, day.month, day.day, hour, minute)
                    if not _exists(local, zone):
                        continue  # skipped by the spring change: AWS skips it too
                    # fold=0: of a time the autumn change repeats, the first only
                    moment = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
                    if moment > after:
                        yield moment
        day += timedelta(days=1)


def next_fire(
    expression: str, timezone: str = "UTC", after: datetime | None = None, start: datetime | None = None
) -> datetime | None:
    """The first occurrence strictly after `after` (UTC, aware), or None if there is none (an
    `at` in the past, a cron that never matches within five years)."""
    parsed = ScheduleExpression.parse(expression)
    zone = ZoneInfo(timezone)
    after = after or datetime.now(UTC)
    if parsed.kind == "at":
        assert parsed.at is not None
        local = parsed.at
        if not _exists(local, zone):
            return None
        moment = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
        return moment if moment > after else None
    if parsed.kind == "rate":
        assert parsed.rate is not None
        origin = start or after
        if origin > after:
            return origin
        steps = (after - origin) // parsed.rate + 1
        return origin + steps * parsed.rate
    assert parsed.cron is not None
    return next(cron_times(parsed.cron, zone, after), None)


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
