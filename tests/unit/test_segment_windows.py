"""Windows back from now: a window's start only moves forward, and `leaves_at` is exactly the first
instant at which a moment is out of the window (what `changes_at` is built on)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.domain.segments import Duration, parse_duration
from loyalty.domain.segments.windows import (
    back,
    back_date,
    date_leaves_at,
    leaves_at,
    local_date,
    next_birthday,
    start_of,
)

MICRO = timedelta(microseconds=1)
durations = st.sampled_from(
    ["PT1S", "PT2M", "P1D", "P30D", "P1M", "P2M", "P3M", "P1M1D", "P1MT1H", "P1Y", "P1Y1M", "P4Y", "P2W"]
).map(parse_duration)
date_durations = st.sampled_from(["P1D", "P1M", "P1M1D", "P1Y", "P18Y", "P4Y", "P2Y6M"]).map(parse_duration)
# Instants near the ends of months, where calendar arithmetic is awkward, to the microsecond.
instants = st.builds(
    lambda year, month, back_us: (
        datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC) - timedelta(microseconds=back_us)
    ),
    st.integers(2026, 2029),
    st.integers(1, 12),
    st.one_of(st.integers(0, 4 * 86_400_000_000), st.integers(0, 40 * 86_400_000_000)),
)
steps = st.one_of(
    st.integers(0, 10).map(lambda us: timedelta(microseconds=us)),
    st.integers(0, 3 * 86_400).map(lambda s: timedelta(seconds=s)),
)


@settings(max_examples=500, deadline=None)
@given(now=instants, step=steps, duration=durations)
def test_a_windows_start_never_moves_back(now: datetime, step: timedelta, duration: Duration) -> None:
    assert back(now, duration) <= back(now + step, duration)


@settings(max_examples=500, deadline=None)
@given(moment=instants, duration=durations)
def test_leaves_at_is_the_first_instant_out_of_the_window(moment: datetime, duration: Duration) -> None:
    gone = leaves_at(moment, duration)
    assert back(gone, duration) > moment
    assert back(gone - MICRO, duration) <= moment


@settings(max_examples=500, deadline=None)
@given(
    value=st.dates(date(1950, 1, 1), date(2030, 12, 31)),
    step=st.integers(0, 40),
    today=st.dates(date(2020, 1, 1), date(2040, 12, 31)),
    duration=date_durations,
)
def test_date_windows(value: date, step: int, today: date, duration: Duration) -> None:
    assert back_date(today, duration) <= back_date(today + timedelta(days=step), duration)
    gone = date_leaves_at(value, duration)
    assert back_date(gone, duration) > value
    assert back_date(gone - timedelta(days=1), duration) <= value


def test_calendar_months() -> None:
    p1m = parse_duration("P1M")
    assert back(datetime(2026, 3, 15, 10, tzinfo=UTC), p1m) == datetime(2026, 2, 15, 10, tzinfo=UTC)
    assert back(datetime(2026, 3, 31, 10, tzinfo=UTC), p1m) == datetime(2026, 3, 1, tzinfo=UTC)
    assert back(datetime(2028, 2, 29, 10, tzinfo=UTC), parse_duration("P1Y")) == datetime(
        2027, 3, 1, tzinfo=UTC
    )
    assert back_date(date(2028, 2, 29), parse_duration("P1Y")) == date(2027, 2, 28)
    assert back_date(date(2026, 6, 15), parse_duration("P18Y")) == date(2008, 6, 15)
    # 30 and 31 May both go back to 30 April: a date of 30 April leaves the window on 1 June.
    assert date_leaves_at(date(2026, 4, 30), p1m) == date(2026, 6, 1)
    assert leaves_at(datetime(2026, 3, 31, 10, tzinfo=UTC), p1m) == datetime(2026, 5, 1, tzinfo=UTC)


def test_next_birthday() -> None:
    assert next_birthday(date(2000, 2, 29), date(2027, 2, 1)) == date(2027, 2, 28)
    assert next_birthday(date(2000, 2, 29), date(2028, 2, 1)) == date(2028, 2, 29)
    assert next_birthday(date(1990, 6, 20), date(2026, 6, 20)) == date(2026, 6, 20)
    assert next_birthday(date(1990, 6, 20), date(2026, 6, 21)) == date(2027, 6, 20)


@pytest.mark.parametrize(
    ("text", "days"),
    [("P90D", 90), ("PT2M", 0), ("P2W", 14), ("P1Y2M3W4DT5H6M7S", 25), ("PT36H", 1)],
)
def test_durations(text: str, days: int) -> None:
    duration = parse_duration(text)
    assert str(duration) == text
    assert duration.exact.days == days


@pytest.mark.parametrize(
    "text", ["", "P", "PT", "P1DT", "90D", "P-1D", "P1.5D", "p1d", "P0D", "PT0S", "P101Y", 90]
)
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    "zone",
    [
        "Europe/Amsterdam",
        "America/New_York",
        "America/Santiago",
        "America/Havana",
        "Asia/Tehran",
        "Pacific/Apia",
    ],
)
def test_start_of_is_the_first_instant_of_the_local_day(zone: str) -> None:
    # Every day of three years, the days clocks change (some at midnight) among them.
    where = ZoneInfo(zone)
    day = date(2026, 1, 1)
    while day < date(2029, 1, 1):
        first = start_of(day, where)
        assert local_date(first, where) == day
        assert local_date(first - MICRO, where) < day
        day += timedelta(days=1)
