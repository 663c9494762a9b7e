"""Run the schedules of `bidloop.yaml`: decide what is due, hold each account's lease, run, and resume crashed runs.

One `Scheduler.tick` does, in order:

1. **Resume** scheduled runs that a dead process left `running` (their lease expired): each resumes from
   its last LangGraph checkpoint, and the write ledger makes every approved action land exactly once.
2. **Run what is due**: per schedule, the fire times since its last slot. A slot at most
   `misfire_grace_minutes` late runs; older slots were *missed* (bidloop was not running) and follow
   the schedule's `missed` policy: `skip` records one skipped run, `run_once` runs once to catch up.
   A run whose accounts are leased by another run (another `bidloop schedule`, another machine) is
   skipped and recorded as skipped; it never waits.

The last slot of each schedule is kept in the `controls` table (`schedule:<name>:last_slot`), so
several scheduler processes on one database agree on what ran. `Scheduler.serve` loops until its stop
event is set (the CLI sets it on SIGINT/SIGTERM): the run under way finishes first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select

from bidloop.core.errors import BidloopError, ConfigError, RunError
from bidloop.core.schedules import ScheduleConfig, fire_times_between, next_fire_time
from bidloop.core.settings import Settings
from bidloop.core.store import ApprovalRow, RunRow, Store, WriteRow, utcnow
from bidloop.graph.locks import DEFAULT_LEASE_TTL_S, AccountLease, AccountsLockedError, new_holder_id
from bidloop.graph.retention import maybe_prune
from bidloop.graph.runner import RunOutcome, new_run_id, resume_run, run_cycle

__all__ = [
    "DueRun",
    "RunAttempt",
    "ScheduleStatus",
    "Scheduler",
    "SchedulerStatus",
    "scheduler_status",
]

SCHEDULE_TRIGGER = "schedule"
"""The `trigger` recorded on every run the scheduler starts."""

_log = logging.getLogger(__name__)

AttemptStatus = Literal["completed", "waiting_approval", "failed", "skipped", "missed", "resumed", "taken"]


@dataclass(frozen=True)
class DueRun:
    """A run a schedule wants now.

    Attributes:
        schedule: The schedule.
        slot: The fire time it stands for (the latest one due), in the schedule's zone.
        account_ids: The accounts of the run.
        missed_slots: Slots before it that were missed while bidloop was not running.
        catch_up: True when every slot is missed and the run happens because the policy is `run_once`;
            False for an on-time slot.
        skip_missed: True when every slot is missed and the policy is `skip`: record, do not run.
    """

    schedule: ScheduleConfig
    slot: datetime
    account_ids: list[str]
    missed_slots: int = 0
    catch_up: bool = False
    skip_missed: bool = False


@dataclass(frozen=True)
class RunAttempt:
    """What the scheduler did about one due run or one interrupted run.

    Attributes:
        schedule: The schedule's name (None for a resumed run).
        run_id: The run (None when nothing was recorded: `taken`).
        status: `completed`, `waiting_approval`, `failed`, `skipped` (accounts leased by another run),
            `missed` (missed slots skipped by policy), `resumed` (an interrupted run finished), or
            `taken` (another scheduler process ran this slot).
        message: One sentence for the operator.
    """

    schedule: str | None
    run_id: str | None
    status: AttemptStatus
    message: str = ""


RunFunction = Callable[..., RunOutcome]
"""`run_cycle`'s signature: `(settings, *, mode, account_ids, trigger, run_id, store, progress, ...)`."""
ResumeFunction = Callable[..., RunOutcome]
"""`resume_run`'s signature: `(settings, run_id, *, store, progress, actor, ...)`."""


def _control_key(schedule: str, what: str) -> str:
    return f"schedule:{schedule}:{what}"


@dataclass
class Scheduler:
    """Decide and run scheduled runs against one database.

    Attributes:
        settings: The loaded settings (its `schedules` are run).
        store: The database (leases, runs, the last slot of each schedule).
        run_fn: Starts a run (default `run_cycle`; tests and the bench pass their own).
        resume_fn: Resumes a run (default `resume_run`).
        run_kwargs: Extra keyword arguments for `run_fn` (e.g. `bid_policy`, `checkpointer`).
        holder: This process's lease holder id.
        lease_ttl_s: How long a lease outlives its holder.
        progress: Receives one line per event.
        clock: Returns the current time (timezone-aware).

    Raises:
        ConfigError: If two schedules share a name or a schedule names an unknown account.
    """

    settings: Settings
    store: Store
    run_fn: RunFunction = run_cycle
    resume_fn: ResumeFunction = resume_run
    run_kwargs: dict[str, Any] = field(default_factory=dict)
    holder: str = field(default_factory=new_holder_id)
    lease_ttl_s: float = DEFAULT_LEASE_TTL_S
    progress: Callable[[str], None] | None = None
    clock: Callable[[], datetime] = utcnow

    def __post_init__(self) -> None:
        names = [s.name for s in self.settings.schedules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(
                f"schedule name(s) used twice: {', '.join(duplicates)}", hint="give every schedule its own name"
            )
        for schedule in self.settings.schedules:
            try:
                self.accounts_of(schedule)
            except BidloopError as exc:
                raise ConfigError(f"schedule {schedule.name!r}: {exc.message}", hint=exc.hint) from exc

    # -- what is due -------------------------------------------------------------------------------

    def accounts_of(self, schedule: ScheduleConfig) -> list[str]:
        """Return the schedule's accounts (every configured account when it names none).

        Raises:
            UnknownAccountError: If it names an account that is not configured.
        """
        if schedule.accounts:
            return [self.settings.account(a).id for a in schedule.accounts]
        return [a.id for a in self.settings.accounts]

    def zone_of(self, schedule: ScheduleConfig) -> str:
        """Return the zone name a schedule runs in: its own, else its accounts' (UTC when they differ)."""
        if schedule.time_zone:
            return schedule.time_zone
        zones = {self.settings.account(a).time_zone for a in self.accounts_of(schedule)}
        return zones.pop() if len(zones) == 1 else "UTC"

    def last_slot(self, schedule: ScheduleConfig) -> datetime | None:
        """Return the last slot this schedule ran (or skipped), or None if it never did."""
        value = self.store.get_control(_control_key(schedule.name, "last_slot"))
        return datetime.fromisoformat(value) if value else None

    def next_run(self, schedule: ScheduleConfig, now: datetime | None = None) -> datetime | None:
        """Return the schedule's next fire time after `now`, in its zone (None if it never fires again)."""
        return next_fire_time(schedule, now or self.clock(), default_zone=self.zone_of(schedule))

    def due(self, now: datetime | None = None) -> list[DueRun]:
        """Return the runs due at `now`, one at most per enabled schedule (the latest slot stands for all)."""
        now = now or self.clock()
        out: list[DueRun] = []
        for schedule in self.settings.schedules:
            if not schedule.enabled:
                continue
            last = self.last_slot(schedule)
            # A schedule never run before has missed nothing: it starts from now (minus the grace).
            since = last if last is not None else now - schedule.misfire_grace
            slots = fire_times_between(schedule, since, now, default_zone=self.zone_of(schedule))
            if not slots:
                continue
            on_time = [t for t in slots if now - t <= schedule.misfire_grace]
            missed = [t for t in slots if now - t > schedule.misfire_grace]
            accounts = self.accounts_of(schedule)
            if on_time:
                out.append(DueRun(schedule, on_time[-1], accounts, missed_slots=len(missed)))
            elif schedule.missed == "run_once":
                out.append(DueRun(schedule, missed[-1], accounts, missed_slots=len(missed), catch_up=True))
            else:
                out.append(DueRun(schedule, missed[-1], accounts, missed_slots=len(missed), skip_missed=True))
        return out

    # -- doing it ----------------------------------------------------------------------------------

    def _say(self, line: str) -> None:
        _log.info(line)
        if self.progress is not None:
            self.progress(line)

    def _record(self, run_id: str, *, mode: str, accounts: Sequence[str], status: str, error: str) -> None:
        self.store.start_run(run_id, mode=mode, trigger=SCHEDULE_TRIGGER, accounts=accounts)
        self.store.finish_run(run_id, status=status, error=error)

    def _claim(self, due: DueRun) -> bool:
        """Mark the slot as taken by this process; False when another process already took it."""
        last = self.last_slot(due.schedule)
        if last is not None and last >= due.slot:
            return False
        self.store.set_control(_control_key(due.schedule.name, "last_slot"), due.slot.isoformat(), by=self.holder[:64])
        return True

    def run_due(self, due: DueRun) -> RunAttempt:
        """Run (or skip, or record as missed) one due run under the lease of its accounts."""
        name = due.schedule.name
        run_id = new_run_id()
        try:
            lease = AccountLease.acquire(
                self.store, due.account_ids, run_id=run_id, holder=self.holder, ttl_s=self.lease_ttl_s
            )
        except AccountsLockedError as exc:
            if not self._claim(due):
                return RunAttempt(name, None, "taken", f"slot {due.slot:%Y-%m-%d %H:%M %Z} was run by another process")
            self._record(run_id, mode=due.schedule.mode, accounts=due.account_ids, status="skipped", error=exc.message)
            self._say(f"{name}: skipped, {exc.message}")
            return RunAttempt(name, run_id, "skipped", exc.message)
        try:
            if not self._claim(due):
                return RunAttempt(name, None, "taken", f"slot {due.slot:%Y-%m-%d %H:%M %Z} was run by another process")
            if due.skip_missed:
                message = (
                    f"missed {due.missed_slots} slot(s) up to {due.slot:%Y-%m-%d %H:%M %Z} while bidloop was not "
                    "running; policy `skip`"
                )
                self._record(run_id, mode=due.schedule.mode, accounts=due.account_ids, status="skipped", error=message)
                self._say(f"{name}: {message}")
                return RunAttempt(name, run_id, "missed", message)
            self.store.set_control(_control_key(name, "last_run"), run_id, by=self.holder[:64])
            why = f"catching up {due.missed_slots} missed slot(s)" if due.catch_up else f"slot {due.slot:%H:%M %Z}"
            self._say(f"{name}: run {run_id} on {', '.join(due.account_ids)} ({why})")
            return self._start(due, run_id)
        finally:
            lease.release()

    def _start(self, due: DueRun, run_id: str) -> RunAttempt:
        name = due.schedule.name
        try:
            outcome = self.run_fn(
                self.settings,
                mode=due.schedule.mode,
                account_ids=due.account_ids,
                trigger=SCHEDULE_TRIGGER,
                run_id=run_id,
                store=self.store,
                progress=self.progress,
                **self.run_kwargs,
            )
        except Exception as exc:
            # Keep serving the other schedules; the run is recorded as failed (its checkpoint allows a resume).
            message = str(exc) if isinstance(exc, BidloopError) else f"{type(exc).__name__}: {exc}"
            _log.exception("scheduled run %s failed", run_id)
            self._ensure_failed(run_id, due, message)
            self._say(f"{name}: run {run_id} failed: {message}")
            return RunAttempt(name, run_id, "failed", message)
        status: AttemptStatus = "waiting_approval" if outcome.status == "waiting_approval" else "completed"
        self._say(f"{name}: run {run_id} {outcome.status}")
        return RunAttempt(name, run_id, status, outcome.status)

    def _ensure_failed(self, run_id: str, due: DueRun, message: str) -> None:
        try:
            row = self.store.get_run(run_id)
        except RunError:
            self._record(run_id, mode=due.schedule.mode, accounts=due.account_ids, status="failed", error=message)
            return
        if row.status not in ("failed", "completed"):
            self.store.finish_run(run_id, status="failed", error=message)

    def interrupted_runs(self) -> list[RunRow]:
        """Return scheduled runs left `running` (their process may have died), oldest first."""
        with self.store.session() as s:
            q = select(RunRow).where(RunRow.status == "running", RunRow.trigger == SCHEDULE_TRIGGER)
            return list(s.scalars(q.order_by(RunRow.started_at)))

    def resume_interrupted(self, stop: threading.Event | None = None) -> list[RunAttempt]:
        """Resume every scheduled run whose process died (its lease is free), from its last checkpoint."""
        attempts: list[RunAttempt] = []
        for row in self.interrupted_runs():
            if stop is not None and stop.is_set():
                break
            accounts = list(row.accounts.get("ids", []))
            try:
                lease = AccountLease.acquire(
                    self.store, accounts, run_id=row.run_id, holder=self.holder, ttl_s=self.lease_ttl_s
                )
            except AccountsLockedError:
                continue  # still running somewhere, or another scheduler is resuming it
            try:
                if self.store.get_run(row.run_id).status != "running":
                    continue  # finished (or resumed by another process) between the query and the lease
                self._say(f"resume interrupted run {row.run_id} on {', '.join(accounts)}")
                attempts.append(self._resume(row.run_id))
            finally:
                lease.release()
        return attempts

    def _resume(self, run_id: str) -> RunAttempt:
        try:
            outcome = self.resume_fn(
                self.settings, run_id, store=self.store, progress=self.progress, actor=SCHEDULE_TRIGGER
            )
        except RunError as exc:
            self.store.finish_run(run_id, status="failed", error=f"could not resume: {exc.message}")
            return RunAttempt(None, run_id, "failed", exc.message)
        except Exception as exc:
            message = str(exc) if isinstance(exc, BidloopError) else f"{type(exc).__name__}: {exc}"
            _log.exception("resuming run %s failed", run_id)
            return RunAttempt(None, run_id, "failed", message)
        status: AttemptStatus = "waiting_approval" if outcome.status == "waiting_approval" else "resumed"
        return RunAttempt(None, run_id, status, outcome.status)

    def tick(self, now: datetime | None = None, *, stop: threading.Event | None = None) -> list[RunAttempt]:
        """Resume interrupted scheduled runs, then run whatever is due at `now`; return what happened."""
        attempts = self.resume_interrupted(stop)
        for due in self.due(now):
            if stop is not None and stop.is_set():
                break
            attempts.append(self.run_due(due))
        self._prune()
        return attempts

    def _prune(self) -> None:
        """Drop old finished runs' snapshots and checkpoints, once a day (by the real clock: runs finish on it)."""
        try:
            result = maybe_prune(self.settings, self.store)
        except BidloopError as exc:
            _log.warning("pruning old runs failed: %s", exc.message)
            return
        if result is not None and result.runs:
            self._say(
                f"pruned the snapshots and checkpoints of {len(result.runs)} run(s) "
                f"finished before {result.cutoff:%Y-%m-%d}"
            )

    def seconds_until_next(self, now: datetime | None = None) -> float | None:
        """Return seconds until the earliest next fire time of any enabled schedule (None if none fires)."""
        now = now or self.clock()
        nexts = [t for s in self.settings.schedules if s.enabled and (t := self.next_run(s, now)) is not None]
        return max((min(nexts) - now).total_seconds(), 0.0) if nexts else None

    def serve(self, stop: threading.Event, *, poll_s: float = 30.0) -> list[RunAttempt]:
        """Tick until `stop` is set, sleeping until the next fire time (at most `poll_s` between ticks).

        The run under way when `stop` is set finishes before this returns; nothing new starts after.
        Returns every attempt made.

        Raises:
            ConfigError: If no schedule is configured.
        """
        if not any(s.enabled for s in self.settings.schedules):
            raise ConfigError("no enabled schedule", hint="add `schedules:` to bidloop.yaml (see `bidloop init`)")
        attempts: list[RunAttempt] = []
        while not stop.is_set():
            attempts.extend(self.tick(stop=stop))
            wait = self.seconds_until_next()
            stop.wait(min(poll_s, wait + 0.5) if wait is not None else poll_s)
        return attempts


# -- status ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleStatus:
    """One schedule as `bidloop status` shows it."""

    name: str
    accounts: list[str]
    zone: str
    enabled: bool
    last_slot: datetime | None
    last_run_id: str | None
    last_run_status: str | None
    next_run: datetime | None


@dataclass(frozen=True)
class SchedulerStatus:
    """What `bidloop status` shows: schedules, recent failures, deferred writes, approvals, leases."""

    schedules: list[ScheduleStatus]
    recent_failures: list[dict[str, Any]]
    interrupted_runs: list[str]
    deferred_writes: list[dict[str, Any]]
    pending_approvals: list[dict[str, Any]]
    leases: list[dict[str, Any]]
    runs_by_status: dict[str, int]


def scheduler_status(
    settings: Settings, store: Store, *, now: datetime | None = None, limit: int = 10
) -> SchedulerStatus:
    """Collect the scheduler's state from the database for `bidloop status`.

    Raises:
        ConfigError: If the schedules in the settings are invalid.
        StoreError: If the database cannot be read.
    """
    now = now or utcnow()
    sched = Scheduler(settings, store)
    items: list[ScheduleStatus] = []
    for s in settings.schedules:
        last_run_id = store.get_control(_control_key(s.name, "last_run"))
        last_status = None
        if last_run_id:
            try:
                last_status = store.get_run(last_run_id).status
            except RunError:
                last_status = "unknown"
        items.append(
            ScheduleStatus(
                name=s.name,
                accounts=sched.accounts_of(s),
                zone=sched.zone_of(s),
                enabled=s.enabled,
                last_slot=sched.last_slot(s),
                last_run_id=last_run_id,
                last_run_status=last_status,
                next_run=sched.next_run(s, now) if s.enabled else None,
            )
        )
    with store.session() as ses:
        failures = [
            {"run_id": r.run_id, "started_at": r.started_at, "trigger": r.trigger, "error": r.error}
            for r in ses.scalars(
                select(RunRow).where(RunRow.status == "failed").order_by(RunRow.started_at.desc()).limit(limit)
            )
        ]
        deferred = [
            {"run_id": w.run_id, "action_id": w.action_id, "entity_key": w.entity_key, "message": w.message}
            for w in ses.scalars(
                select(WriteRow).where(WriteRow.status == "deferred").order_by(WriteRow.id.desc()).limit(limit)
            )
        ]
        approvals = [
            {"approval_id": a.approval_id, "run_id": a.run_id, "message": a.payload.get("message", "")}
            for a in ses.scalars(
                select(ApprovalRow).where(ApprovalRow.status == "pending").order_by(ApprovalRow.created_at)
            )
        ]
        counts = {
            status: int(n) for status, n in ses.execute(select(RunRow.status, func.count()).group_by(RunRow.status))
        }
    leases = [
        {"account_id": lk.account_id, "holder": lk.holder, "run_id": lk.run_id, "expires_at": lk.expires_at}
        for lk in store.account_locks()
        if lk.expires_at > now - timedelta(seconds=0)
    ]
    return SchedulerStatus(
        schedules=items,
        recent_failures=failures,
        interrupted_runs=[r.run_id for r in sched.interrupted_runs()],
        deferred_writes=deferred,
        pending_approvals=approvals,
        leases=leases,
        runs_by_status=counts,
    )
