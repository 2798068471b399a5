"""EventBridge Scheduler's expressions as loyalty.domain.cron evaluates them (campaign definitions
check their schedules with it; the local Scheduler, loyalty_local.scheduler, fires by it).

Daylight saving time as AWS documents it for Scheduler: a cron time the spring change skips does
not fire that day; a time the autumn change repeats fires once. Europe/Amsterdam changes on
2027-03-28 (02:00 -> 03:00) and on 2026-10-25 (03:00 -> 02:00).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loyalty.domain.cron import (
    Cron,
    InvalidScheduleExpression,
    ScheduleExpression,
    cron_times,
    next_fire,
)

AMS = "Europe/Amsterdam"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def occurrences(expression: str, timezone: str, after: datetime, count: int) -> list[datetime]:
    found = []
    moment: datetime | None = after
    for _ in range(count):
        assert moment is not None
        moment = next_fire(expression, timezone, after=moment)
        if moment is None:
            break
        found.append(moment)
    return found


def test_a_daily_cron_keeps_its_wall_clock_time_across_the_spring_change() -> None:
    fired = occurrences("cron(0 9 * * ? *)", AMS, utc(2027, 3, 26, 12), 4)
    # 09:00 in Amsterdam: 08:00Z in winter time, 07:00Z in summer time.
    assert fired == [utc(2027, 3, 27, 8), utc(2027, 3, 28, 7), utc(2027, 3, 29, 7), utc(2027, 3, 30, 7)]


def test_a_time_the_spring_change_skips_does_not_fire_that_day() -> None:
    fired = occurrences("cron(30 2 * * ? *)", AMS, utc(2027, 3, 26, 12), 3)
    assert fired == [utc(2027, 3, 27, 1, 30), utc(2027, 3, 29, 0, 30), utc(2027, 3, 30, 0, 30)]


def test_a_time_the_autumn_change_repeats_fires_once() -> None:
    fired = occurrences("cron(30 2 * * ? *)", AMS, utc(2026, 10, 23, 12), 3)
    # 2026-10-25 02:30 happens at 00:30Z (summer time) and again at 01:30Z: the first only.
    assert fired == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_every_15_minutes_over_the_autumn_change_counts_real_quarter_hours_once() -> None:
    fired = occurrences("cron(0/15 * * * ? *)", AMS, utc(2026, 10, 24, 23, 59), 16)
    # The repeated hour 02:00-03:00 wall time fires once (its first pass): 12 real quarter-hours
    # from 00:00Z to 02:45Z less the four of the second pass.
    assert fired[0] == utc(2026, 10, 25, 0, 0)
    assert len(set(fired)) == len(fired)
    assert utc(2026, 10, 25, 1, 0) not in fired  # 02:00 wall time, second pass
    assert utc(2026, 10, 25, 2, 0) in fired  # 03:00 wall time


def test_day_fields_last_nearest_weekday_and_nth() -> None:
    assert next_fire("cron(0 10 L * ? *)", "UTC", after=utc(2027, 2, 1)) == utc(2027, 2, 28, 10)
    # The 15th of May 2027 is a Saturday: the nearest weekday is Friday the 14th.
    assert next_fire("cron(0 10 15W * ? *)", "UTC", after=utc(2027, 5, 1)) == utc(2027, 5, 14, 10)
    # The first Monday (2) of March 2027 is the 1st; the last Friday (6L) is the 26th.
    assert next_fire("cron(0 10 ? * 2#1 *)", "UTC", after=utc(2027, 2, 27)) == utc(2027, 3, 1, 10)
    assert next_fire("cron(0 10 ? * 6L *)", "UTC", after=utc(2027, 3, 1)) == utc(2027, 3, 26, 10)
    assert next_fire("cron(0 8 ? * MON-FRI *)", "UTC", after=utc(2027, 3, 5, 9)) == utc(2027, 3, 8, 8)
    assert next_fire("cron(0 8 1 JAN ? 2028)", "UTC", after=utc(2027, 3, 5)) == utc(2028, 1, 1, 8)


def test_one_time_and_rate_schedules() -> None:
    assert next_fire("at(2027-03-28T09:00:00)", AMS, after=utc(2027, 3, 1)) == utc(2027, 3, 28, 7)
    assert next_fire("at(2027-03-28T09:00:00)", AMS, after=utc(2027, 3, 28, 7)) is None
    assert next_fire("at(2027-03-28T02:30:00)", AMS, after=utc(2027, 3, 1)) is None  # never exists
    start = utc(2027, 3, 27, 9)
    # A rate in days is 24 hours, whatever the wall clock does.
    assert next_fire("rate(1 day)", AMS, after=utc(2027, 3, 27, 10), start=start) == start + timedelta(days=1)
    assert next_fire("rate(5 minutes)", "UTC", after=utc(2027, 1, 1, 0, 7), start=utc(2027, 1, 1)) == utc(
        2027, 1, 1, 0, 10
    )


def test_a_cron_that_never_fires_has_no_next_time() -> None:
    assert next_fire("cron(0 0 30 2 ? *)", "UTC", after=utc(2027, 1, 1)) is None
    parsed = ScheduleExpression.parse("cron(0 0 30 2 ? *)").cron
    assert isinstance(parsed, Cron)
    assert list(cron_times(parsed, __import__("zoneinfo").ZoneInfo("UTC"), utc(2027, 1, 1))) == []


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 9 * * *)",  # five fields: Unix cron, not AWS's
        "cron(0 9 * * MON *)",  # neither day field is '?'
        "cron(0 9 ? * ? *)",  # both are
        "cron(61 9 * * ? *)",
        "cron(0 9 ? * FUNDAY *)",
        "rate(0 minutes)",
        "rate(1 week)",
        "at(2027-03-28 09:00)",
        "every day",
    ],
)
def test_malformed_expressions_are_refused(expression: str) -> None:
    with pytest.raises(InvalidScheduleExpression):
        ScheduleExpression.parse(expression)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(InvalidScheduleExpression):
        next_fire("cron(0 9 * * ? *)", "Europe/Atlantis", after=utc(2027, 1, 1))
    with pytest.raises(InvalidScheduleExpression):
        next_fire("cron(0 9 * * ? *)", "../etc/passwd", after=utc(2027, 1, 1))


def test_a_cron_that_fires_only_in_a_leap_year_is_found_within_the_horizon() -> None:
    # 29 February: the next one after March 2027 is in 2028.
    assert next_fire("cron(0 9 29 2 ? *)", "UTC", after=utc(2027, 3, 1)) == utc(2028, 2, 29, 9)
