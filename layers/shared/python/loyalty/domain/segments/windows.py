"""Time for segment rules: ISO 8601 durations, windows back from now, and the local calendar.

A duration goes back from an instant by its calendar part first (years and months: the same day
and time that many months earlier, in UTC) and then by its exact part (weeks, days, hours, minutes,
seconds as fixed lengths, days being 24 hours). Where the earlier month lacks the day (31 May less
one month), the window starts at the beginning of the month that follows it (1 May 00:00 UTC):
so a window's start only ever moves forward as time passes, and a fact that left a window never
comes back into it. Local dates (a birthday less P18Y) clamp to the month's last day instead
(29 February 2028 less one year is 28 February 2027), which moves forward too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_DURATION = re.compile(
    r"P(?:(?P<years>\d{1,3})Y)?(?:(?P<months>\d{1,4})M)?(?:(?P<weeks>\d{1,4})W)?(?:(?P<days>\d{1,5})D)?"
    r"(?:T(?:(?P<hours>\d{1,6})H)?(?:(?P<minutes>\d{1,8})M)?(?:(?P<seconds>\d{1,10})S)?)?"
)
# Further back than this no rule can usefully look (and the loaded history stays bounded).
MAX_SPAN = timedelta(days=100 * 366)
_MICRO = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Duration:
    """An ISO 8601 duration as written (`text`), split into its calendar and exact parts."""

    text: str
    months: int
    exact: timedelta

    @property
    def has_time(self) -> bool:
        return self.exact % timedelta(days=1) != timedelta(0)

    @property
    def upper_bound(self) -> timedelta:
        """At least as long as the duration, however the calendar falls (for loading history)."""
        return timedelta(days=31 * self.months) + self.exact

    def __str__(self) -> str:
        return self.text


def parse_duration(text: object) -> Duration:
    """A duration such as P90D, PT2M, P1Y6M or P2W; ValueError for anything else."""
    if not isinstance(text, str):
        raise ValueError('an ISO 8601 duration string such as "P90D" or "PT2M"')
    found = _DURATION.fullmatch(text)
    if found is None or text in {"P", "PT"} or text.endswith("T"):
        raise ValueError(f'{text[:40]!r} is not an ISO 8601 duration such as "P90D", "PT2M" or "P1Y"')
    part = {name: int(value) if value else 0 for name, value in found.groupdict().items()}
    exact = timedelta(
        weeks=part["weeks"],
        days=part["days"],
        hours=part["hours"],
        minutes=part["minutes"],
        seconds=part["seconds"],
    )
    months = 12 * part["years"] + part["months"]
    duration = Duration(text, months, exact)
    if duration.upper_bound > MAX_SPAN:
        raise ValueError("a duration of at most 100 years")
    if duration.upper_bound == timedelta(0):
        raise ValueError("a duration longer than zero")
    return duration


def shift_months(moment: datetime | date, months: int) -> datetime | date:
    """The same day and time `months` later (negative: earlier), clamped to the month's last day."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, _days_in_month(year, month + 1))
    return moment.replace(year=year, month=month + 1, day=day)


def _days_in_month(year: int, month: int) -> int:
    following = date(year + (month == 12), month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def back(now: datetime, duration: Duration) -> datetime:
    """`now` less the duration: the start of a window that ends now."""
    utc = now.astimezone(UTC)
    year, month = divmod(utc.year * 12 + utc.month - 1 - duration.months, 12)
    if utc.day <= _days_in_month(year, month + 1):
        shifted = utc.replace(year=year, month=month + 1)
    else:  # no such day in that month: the month that follows starts the window
        shifted = datetime(year + (month == 11), (month + 1) % 12 + 1, 1, tzinfo=UTC)
    return shifted - duration.exact


def leaves_at(moment: datetime, duration: Duration) -> datetime:
    """The first instant t with back(t, duration) > moment: when `moment` has left the window
    (and `value >= now - duration` turns false, `value < now - duration` true)."""
    mark = moment.astimezone(UTC) + duration.exact
    if duration.months == 0:
        return mark + _MICRO
    ahead = shift_months(mark, duration.months)
    assert isinstance(ahead, datetime)
    if shift_months(ahead, -duration.months) == mark:
        return ahead + _MICRO
    # `mark` fell on a day the later month lacks (31 March + 1 month = 30 April): every instant up
    # to the end of that month still goes back to before `mark`; the next month's first instant
    # goes back to the start of the month after `mark`'s.
    return datetime.combine(ahead.date() + timedelta(days=1), time(0), tzinfo=UTC)


def back_date(today: date, duration: Duration) -> date:
    """A local date less a duration of whole days, months and years."""
    shifted = shift_months(today, -duration.months)
    return shifted - timedelta(days=duration.exact.days)


def date_leaves_at(value: date, duration: Duration) -> date:
    """The first local date d with back_date(d, duration) > value."""
    ahead = shift_months(value + timedelta(days=duration.exact.days), duration.months)
    day = ahead + timedelta(days=1)
    # Days a shorter month lacks fold onto its last day (31 May less a month is 30 April), so a
    # few days after `ahead` may still go back to `value`.
    while back_date(day, duration) <= value:
        day += timedelta(days=1)
    return day


def local_date(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date()


def start_of(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of a local date (where midnight is skipped, the instant the day begins)."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def next_birthday(birthday: date, today: date) -> date:
    """The birthday on or after `today`; 29 February is kept on 28 February in common years."""
    this_year = _birthday_in(birthday, today.year)
    return this_year if this_year >= today else _birthday_in(birthday, today.year + 1)


def _birthday_in(birthday: date, year: int) -> date:
    return date(year, birthday.month, min(birthday.day, _days_in_month(year, birthday.month)))
