"""Describe when scheduled intraday runs fire: cron expressions or a fixed interval in a daily window, per zone.

One `ScheduleConfig` is one scheduled run over one account or a group of accounts:

    schedules:
      - name: intraday
        accounts: [sim-google, sim-meta]      # empty: every configured account
        every_minutes: 120                    # or cron: ["0 6-22/2 * * *"]
        window: "06:00-22:00"                 # local time in time_zone (inclusive)
        time_zone: Europe/Berlin              # default: the accounts' zone (UTC when they differ)
        missed: skip                          # or run_once: one catch-up run for slots missed while down

`fire_times_between` and `next_fire_time` do the calendar arithmetic; `bidloop.graph.scheduler` decides
what is due and runs it. Times going in and out are timezone-aware; naive datetimes are refused.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bidloop.core.errors import InputError

__all__ = ["MissedRunPolicy", "ScheduleConfig", "fire_times_between", "next_fire_time", "parse_window"]

MissedRunPolicy = Literal["skip", "run_once"]

_MAX_FIRES_SCANNED = 10_000
"""Upper bound on cron fire times examined per query (a year of 5-minute slots is 105,120: scan windows, not years)."""


def parse_window(text: str) -> tuple[time, time]:
    """Parse a daily window `HH:MM-HH:MM` (local time, both ends inclusive).

    Raises:
        ValueError: If the text is not two `HH:MM` times separated by `-`, or the end is before the start.
    """
    parts = [p.strip() for p in text.split("-")]
    if len(parts) != 2:
        raise ValueError(f"window {text!r} must look like '06:00-22:00'")
    try:
        start, end = (time.fromisoformat(p) for p in parts)
    except ValueError as exc:
        raise ValueError(f"window {text!r} must look like '06:00-22:00' (24-hour HH:MM)") from exc
    if end < start:
        raise ValueError(f"window {text!r} ends before it starts; windows crossing midnight are not supported")
    return start, end


class ScheduleConfig(BaseModel):
    """One scheduled run: which accounts, when (in which zone), and what to do about missed slots.

    Attributes:
        name: A unique name (letters, digits, `_.-`), used in `bidloop status` and to remember the last slot.
        accounts: Account ids run together in one run (a group); empty means every configured account.
        cron: Cron expressions (minute hour day month weekday) in `time_zone`; any of them fires the run.
        every_minutes: Instead of cron: fire every N minutes from the window's start (e.g. 120 → 06:00, 08:00, ...).
        window: Daily window `HH:MM-HH:MM` in `time_zone`, inclusive; fire times outside it are ignored.
        time_zone: IANA zone; None means the zone of the accounts (UTC when they are in different zones).
        missed: `skip` ignores slots missed while bidloop was not running; `run_once` runs once to catch up.
        misfire_grace_minutes: A slot this late or less is on time, not missed.
        mode: `live` writes; `dry-run` only proposes and judges.
        enabled: False keeps the schedule in the file without running it.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.\-]+$")
    accounts: list[str] = Field(default_factory=list)
    cron: list[str] = Field(default_factory=list)
    every_minutes: int | None = Field(default=None, ge=5, le=1440)
    window: str = "00:00-23:59"
    time_zone: str | None = None
    missed: MissedRunPolicy = "skip"
    misfire_grace_minutes: int = Field(default=10, ge=0, le=1440)
    mode: Literal["live", "dry-run"] = "live"
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, expressions: list[str]) -> list[str]:
        for expr in expressions:
            if not croniter.is_valid(expr) or len(expr.split()) != 5:
                raise ValueError(f"cron expression {expr!r} is not valid; use 5 fields, e.g. '0 6-22/2 * * *'")
        return expressions

    @field_validator("window")
    @classmethod
    def _valid_window(cls, window: str) -> str:
        parse_window(window)
        return window

    @field_validator("time_zone")
    @classmethod
    def _valid_zone(cls, zone: str | None) -> str | None:
        if zone is not None:
            _zone(zone)
        return zone

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleConfig:
        if bool(self.cron) == (self.every_minutes is not None):
            raise ValueError(f"schedule {self.name!r} needs exactly one of `cron` or `every_minutes`")
        return self

    @property
    def window_bounds(self) -> tuple[time, time]:
        """Return the daily window's start and end (local time, inclusive)."""
        return parse_window(self.window)

    @property
    def misfire_grace(self) -> timedelta:
        """Return how late a slot may be and still count as on time."""
        return timedelta(minutes=self.misfire_grace_minutes)

    def zone(self, default: str = "UTC") -> ZoneInfo:
        """Return the schedule's zone, or `default` (the accounts' zone) when none is set.

        Raises:
            InputError: If the zone is not a known IANA name.
        """
        return _zone(self.time_zone or default)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(f"unknown time zone {name!r}", hint="use an IANA name such as Europe/Berlin or UTC") from exc


def _require_aware(at: datetime, what: str) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise InputError(f"{what} must be timezone-aware, got {at!r}", hint="pass datetime.now(UTC) or similar")


def _in_window(local: datetime, start: time, end: time) -> bool:
    return start <= local.time().replace(second=0, microsecond=0) <= end


def _interval_fires(schedule: ScheduleConfig, zone: ZoneInfo, after: datetime, until: datetime) -> list[datetime]:
    """Return interval fire times in (after, until], stepping through local days."""
    start, end = schedule.window_bounds
    step = timedelta(minutes=schedule.every_minutes or 0)
    fires: list[datetime] = []
    day = after.astimezone(zone).date()
    last_day = until.astimezone(zone).date()
    while day <= last_day and len(fires) < _MAX_FIRES_SCANNED:
        # Wall-clock arithmetic in the zone: 06:00 stays 06:00 across a DST change.
        local = datetime.combine(day, start, tzinfo=zone)
        while local.time() <= end and local.date() == day:
            if after < local <= until:
                fires.append(local)
            local += step
        day += timedelta(days=1)
    return fires


def _cron_fires(schedule: ScheduleConfig, zone: ZoneInfo, after: datetime, until: datetime) -> list[datetime]:
    start, end = schedule.window_bounds
    fires: set[datetime] = set()
    for expr in schedule.cron:
        it = croniter(expr, after.astimezone(zone))
        for _ in range(_MAX_FIRES_SCANNED):
            at: datetime = it.get_next(datetime)
            if at > until:
                break
            if _in_window(at, start, end):
                fires.add(at)
    return sorted(fires)


def fire_times_between(
    schedule: ScheduleConfig, after: datetime, until: datetime, *, default_zone: str = "UTC"
) -> list[datetime]:
    """Return the schedule's fire times in (after, until], oldest first, in the schedule's zone.

    Args:
        schedule: The schedule.
        after: Exclusive lower bound (timezone-aware).
        until: Inclusive upper bound (timezone-aware).
        default_zone: The accounts' zone, used when the schedule names none.

    Raises:
        InputError: If a bound is naive or the zone is unknown.
    """
    _require_aware(after, "after")
    _require_aware(until, "until")
    if until <= after:
        return []
    zone = schedule.zone(default_zone)
    if schedule.every_minutes is not None:
        return _interval_fires(schedule, zone, after, until)
    return _cron_fires(schedule, zone, after, until)


def next_fire_time(schedule: ScheduleConfig, after: datetime, *, default_zone: str = "UTC") -> datetime | None:
    """Return the first fire time strictly after `after` (within the next 400 days), or None if there is none.

    Raises:
        InputError: If `after` is naive or the zone is unknown.
    """
    _require_aware(after, "after")
    horizon = after
    for days in (1, 8, 32, 400):
        until = after + timedelta(days=days)
        fires = fire_times_between(schedule, horizon, until, default_zone=default_zone)
        if fires:
            return fires[0]
        horizon = until
    return None
