"""EventBridge Scheduler's schedule expressions, evaluated the way AWS documents them. No I/O.

`at(yyyy-mm-ddThh:mm:ss)` once, `rate(n minutes|hours|days)` as a fixed duration from its start,
`cron(minutes hours day-of-month month day-of-week year)` on the wall clock of the schedule's time
zone. AWS's cron is not Unix cron: six fields with a year, `?` in one of the two day fields, day of
week 1-7 from Sunday, `L`, `W` and `#`. Daylight saving time as AWS documents it for Scheduler: an
occurrence whose wall-clock time does not exist (the hour skipped in spring) is skipped; one whose
time happens twice (autumn) fires once, at the first.

Campaign definitions use it to refuse a schedule that never fires (a 30th of February) before
Scheduler is asked to keep it; the local Scheduler (loyalty_local.scheduler) fires by it.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTHS = {name: n for n, name in enumerate(calendar.month_abbr) if name}
MONTHS = {k.upper(): v for k, v in MONTHS.items()}
DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
# How far ahead an expression is searched before it is declared never to fire (a 30th of February).
HORIZON_DAYS = 366 * 5


class InvalidScheduleExpression(ValueError):
    pass


def zone_of(timezone: str) -> ZoneInfo:
    """The IANA time zone by name (InvalidScheduleExpression for one that does not exist)."""
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidScheduleExpression(f"{timezone[:64]!r} is not an IANA time zone") from None


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
    expression: str, timezone: str, after: datetime, start: datetime | None = None
) -> datetime | None:
    """The first occurrence strictly after `after` (aware), as an aware UTC datetime, or None if
    there is none (an `at` in the past or at a time the zone skips, a cron that never matches
    within HORIZON_DAYS). `start` anchors a `rate` (its first run; else `after`). Raises
    InvalidScheduleExpression for a malformed expression and for an unknown time zone."""
    parsed = ScheduleExpression.parse(expression)
    zone = zone_of(timezone)
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
