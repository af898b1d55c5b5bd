"""The one clock: UTC, report dates, instants and what "as of" means."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from ierkit import clock

UTC = dt.UTC


def test_to_utc_reads_naive_times_as_utc_and_converts_aware_ones() -> None:
    assert clock.to_utc(dt.datetime(2026, 11, 20, 9)) == dt.datetime(2026, 11, 20, 9, tzinfo=UTC)
    chicago = dt.datetime(2026, 11, 20, 9, tzinfo=zoneinfo.ZoneInfo("America/Chicago"))
    assert clock.to_utc(chicago) == dt.datetime(2026, 11, 20, 15, tzinfo=UTC)
    assert clock.to_utc(chicago).tzinfo is UTC


def test_end_of_day_is_the_next_midnight_utc() -> None:
    assert clock.end_of_day(dt.date(2026, 11, 20)) == dt.datetime(2026, 11, 21, tzinfo=UTC)


def test_end_of_day_in_a_report_time_zone() -> None:
    # Midnight in Chicago (UTC-6 in November) is 06:00 UTC.
    end = clock.end_of_day(dt.date(2026, 11, 20), zone="America/Chicago")
    assert end == dt.datetime(2026, 11, 21, 6, tzinfo=UTC)
    # Daylight saving: in July Chicago is UTC-5.
    summer = clock.end_of_day(dt.date(2026, 7, 1), zone="America/Chicago")
    assert summer == dt.datetime(2026, 7, 2, 5, tzinfo=UTC)


def test_day_of_an_instant_depends_on_the_zone() -> None:
    instant = dt.datetime(2026, 11, 21, 3, tzinfo=UTC)
    assert clock.day_of(instant) == dt.date(2026, 11, 21)
    assert clock.day_of(instant, zone="America/Chicago") == dt.date(2026, 11, 20)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", None),
        (None, None),
        ("  ", None),
        (" 2026-10-01 ", dt.date(2026, 10, 1)),
        (dt.date(2026, 1, 2), dt.date(2026, 1, 2)),
        ("2026-03-04T10:30", dt.datetime(2026, 3, 4, 10, 30, tzinfo=UTC)),
        ("2026-03-04T10:30+02:00", dt.datetime(2026, 3, 4, 8, 30, tzinfo=UTC)),
        (dt.datetime(2026, 3, 4, 10, 30), dt.datetime(2026, 3, 4, 10, 30, tzinfo=UTC)),
    ],
)
def test_parse_as_of(value: object, expected: object) -> None:
    assert clock.parse_as_of(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["20/11/2026", "2026-13-01", "yesterday", "2026-11-20 noonish"])
def test_parse_as_of_names_the_parameter_and_the_value(text: str) -> None:
    with pytest.raises(clock.ClockError, match=rf"week_of: '{text}' is not a date"):
        clock.parse_as_of(text, name="week_of")


def test_an_instant_is_itself_and_a_date_is_its_end() -> None:
    instant = dt.datetime(2026, 11, 20, 12, tzinfo=UTC)
    assert clock.as_of_instant(instant) == instant
    assert clock.as_of_instant(dt.date(2026, 11, 20)) == dt.datetime(2026, 11, 21, tzinfo=UTC)


def test_unknown_time_zone_is_refused_by_name() -> None:
    with pytest.raises(clock.ClockError, match="'Mars/Olympus' is not an IANA zone"):
        clock.end_of_day(dt.date(2026, 11, 20), zone="Mars/Olympus")
