"""Quiet hours in the customer's own time zone, across midnight and the nights clocks change."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from loyalty.domain.programme import Messaging, QuietHours

AMS, NYC = ZoneInfo("Europe/Amsterdam"), ZoneInfo("America/New_York")
NIGHT = QuietHours(start="21:00", end="08:00")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "zone", "release"),
    [
        (utc(2026, 6, 1, 10, 0), AMS, None),  # 12:00 CEST: not quiet
        (utc(2026, 6, 1, 20, 0), AMS, utc(2026, 6, 2, 6, 0)),  # 22:00 CEST -> 08:00 CEST next day
        (utc(2026, 6, 1, 4, 0), AMS, utc(2026, 6, 1, 6, 0)),  # 06:00 CEST -> 08:00 the same day
        (utc(2026, 6, 1, 19, 0), AMS, utc(2026, 6, 2, 6, 0)),  # 21:00 sharp is quiet
        (utc(2026, 6, 1, 6, 0), AMS, None),  # 08:00 sharp is not
        # The same instant is evening in Amsterdam and afternoon in New York.
        (utc(2026, 6, 1, 20, 0), NYC, None),
        (utc(2026, 6, 2, 2, 0), NYC, utc(2026, 6, 2, 12, 0)),  # 22:00 EDT -> 08:00 EDT
        # Spring forward (Amsterdam, 29 March 2026 02:00 -> 03:00): the night is an hour shorter.
        (utc(2026, 3, 28, 22, 0), AMS, utc(2026, 3, 29, 6, 0)),  # 23:00 CET -> 08:00 CEST
        # Fall back (25 October 2026 03:00 -> 02:00): an hour longer.
        (utc(2026, 10, 24, 20, 0), AMS, utc(2026, 10, 25, 7, 0)),  # 22:00 CEST -> 08:00 CET
        (utc(2026, 10, 25, 0, 30), AMS, utc(2026, 10, 25, 7, 0)),  # 02:30 CEST, the first one
        (utc(2026, 10, 25, 1, 30), AMS, utc(2026, 10, 25, 7, 0)),  # 02:30 CET, the second one
    ],
)
def test_a_message_due_in_quiet_hours_waits_until_they_end_there(
    at: datetime, zone: ZoneInfo, release: datetime | None
) -> None:
    assert NIGHT.release_at(at, zone) == release


def test_a_window_inside_one_day() -> None:
    lunch = QuietHours(start="12:00", end="14:00")
    assert lunch.release_at(utc(2026, 6, 1, 11, 0), AMS) == utc(2026, 6, 1, 12, 0)  # 13:00 CEST
    assert lunch.release_at(utc(2026, 6, 1, 12, 0), AMS) is None  # 14:00 CEST


def test_a_window_that_ends_in_the_spring_forward_gap_ends_after_it() -> None:
    small_hours = QuietHours(start="01:00", end="02:30")  # 02:30 does not exist on 29 March 2026
    release = small_hours.release_at(utc(2026, 3, 29, 0, 15), AMS)  # 01:15 CET
    assert release == utc(2026, 3, 29, 1, 30)  # 03:30 CEST: past the gap, never before it
    assert release.astimezone(AMS).hour == 3


def test_a_customer_without_a_zone_keeps_the_programme_default() -> None:
    messaging = Messaging(default_timezone="Europe/Brussels")
    assert messaging.zone_of(None) == "Europe/Brussels"
    assert messaging.zone_of("America/New_York") == "America/New_York"
