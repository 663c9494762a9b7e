"""Schedules: cron or every-N-minutes in a daily window, in the account's zone, across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from bidloop.core.errors import ConfigError, InputError
from bidloop.core.schedules import ScheduleConfig, fire_times_between, next_fire_time
from bidloop.core.settings import load_settings

BERLIN = ZoneInfo("Europe/Berlin")


def local_times(times: list[datetime], zone: ZoneInfo) -> list[str]:
    return [t.astimezone(zone).strftime("%m-%d %H:%M") for t in times]


def test_every_two_hours_from_six_to_ten_pm_fires_nine_times_a_day_in_the_accounts_zone() -> None:
    s = ScheduleConfig(name="intraday", every_minutes=120, window="06:00-22:00", time_zone="Europe/Berlin")
    day = datetime(2026, 6, 10, tzinfo=BERLIN)
    fires = fire_times_between(s, day, day + timedelta(days=1))
    assert local_times(fires, BERLIN) == [f"06-10 {h:02d}:00" for h in range(6, 23, 2)]


def test_interval_schedule_keeps_local_wall_clock_times_across_the_spring_dst_change() -> None:
    s = ScheduleConfig(name="intraday", every_minutes=120, window="06:00-22:00", time_zone="Europe/Berlin")
    # Berlin moves from UTC+1 to UTC+2 on 2026-03-29.
    fires = fire_times_between(s, datetime(2026, 3, 28, 12, tzinfo=UTC), datetime(2026, 3, 29, 11, tzinfo=UTC))
    assert local_times(fires, BERLIN) == [
        "03-28 14:00",
        "03-28 16:00",
        "03-28 18:00",
        "03-28 20:00",
        "03-28 22:00",
        "03-29 06:00",
        "03-29 08:00",
        "03-29 10:00",
        "03-29 12:00",
    ]
    assert fires[-1].astimezone(UTC).hour == 10  # 12:00 local is 10:00 UTC after the change


def test_cron_schedule_fires_in_its_zone_not_in_utc() -> None:
    s = ScheduleConfig(name="ny", cron=["0 6-22/2 * * *"], time_zone="America/New_York")
    fires = fire_times_between(s, datetime(2026, 6, 10, 4, tzinfo=UTC), datetime(2026, 6, 10, 12, tzinfo=UTC))
    # 04:00-12:00 UTC is 00:00-08:00 in New York (UTC-4): only 06:00 and 08:00 local fire.
    assert [t.astimezone(UTC).hour for t in fires] == [10, 12]


def test_several_cron_expressions_fire_once_per_distinct_time_and_respect_the_window() -> None:
    s = ScheduleConfig(name="two", cron=["0 * * * *", "0 */2 * * *"], window="09:00-12:00", time_zone="UTC")
    fires = fire_times_between(s, datetime(2026, 6, 10, tzinfo=UTC), datetime(2026, 6, 11, tzinfo=UTC))
    assert [t.hour for t in fires] == [9, 10, 11, 12]


def test_bounds_are_exclusive_below_and_inclusive_above() -> None:
    s = ScheduleConfig(name="h", cron=["0 * * * *"], time_zone="UTC")
    at_ten = datetime(2026, 6, 10, 10, tzinfo=UTC)
    assert fire_times_between(s, at_ten, at_ten + timedelta(hours=1)) == [at_ten + timedelta(hours=1)]


def test_next_fire_time_after_the_window_is_the_next_mornings_first_slot() -> None:
    s = ScheduleConfig(name="intraday", every_minutes=120, window="06:00-22:00", time_zone="Europe/Berlin")
    nxt = next_fire_time(s, datetime(2026, 6, 10, 22, 30, tzinfo=BERLIN))
    assert nxt is not None and local_times([nxt], BERLIN) == ["06-11 06:00"]


def test_schedule_without_a_zone_uses_the_default_zone_given() -> None:
    s = ScheduleConfig(name="h", cron=["0 9 * * *"])
    nxt = next_fire_time(s, datetime(2026, 6, 10, tzinfo=UTC), default_zone="Asia/Tokyo")
    assert nxt is not None and nxt.astimezone(UTC).hour == 0  # 09:00 in Tokyo is 00:00 UTC


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cron": ["61 * * * *"]}, "not valid"),
        ({"cron": ["0 * * *"]}, "not valid"),
        ({}, "exactly one of"),
        ({"cron": ["0 * * * *"], "every_minutes": 60}, "exactly one of"),
        ({"every_minutes": 60, "window": "22:00-06:00"}, "ends before it starts"),
        ({"every_minutes": 60, "window": "6 to 22"}, "must look like"),
        ({"every_minutes": 1}, "greater than or equal to 5"),
        ({"every_minutes": 60, "missed": "later"}, "skip"),
    ],
)
def test_invalid_schedules_are_refused_with_the_reason(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ScheduleConfig(name="bad", **fields)  # type: ignore[arg-type]


def test_unknown_time_zone_is_refused_with_a_hint() -> None:
    with pytest.raises(InputError, match="unknown time zone 'Mars/Olympus'"):
        ScheduleConfig(name="bad", every_minutes=60, time_zone="Mars/Olympus")


def test_naive_datetimes_are_refused() -> None:
    s = ScheduleConfig(name="h", cron=["0 * * * *"])
    with pytest.raises(InputError, match="timezone-aware"):
        fire_times_between(s, datetime(2026, 6, 10), datetime(2026, 6, 11, tzinfo=UTC))


def test_schedules_load_from_bidloop_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bidloop.yaml"
    path.write_text(
        "schedules:\n"
        "  - name: intraday\n"
        "    accounts: [sim-meta]\n"
        "    every_minutes: 120\n"
        "    window: '06:00-22:00'\n"
        "    missed: run_once\n",
        encoding="utf-8",
    )
    settings = load_settings(path)
    assert [(s.name, s.accounts, s.missed) for s in settings.schedules] == [("intraday", ["sim-meta"], "run_once")]


def test_a_misspelt_schedule_field_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bidloop.yaml"
    path.write_text("schedules:\n  - name: a\n    every_minute: 60\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"schedules\.0\.every_minute: unknown field"):
        load_settings(path)
