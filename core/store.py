"""Persist runs, actions, decisions, writes, trajectories, the audit log and approvals in one database.

One database URL. The default is a SQLite file in the data directory; `postgresql://...` uses the same
schema at scale. Tables (all created by `Store.create_schema`, later by Alembic migrations):

    runs           one row per optimization run (mode, trigger, status, report)
    actions        every proposed action (JSON payload), per run
    decisions      the filter's verdict on each action
    writes         the write ledger: intent before sending, outcome after (exactly-once on resume)
    snapshots      what each run observed, per account (JSON), so checkpoints stay small
    trajectories   (state, action, reward, next state), reward filled in when the window matures
    reward_restatements  each later change of a matured reward (late conversions), old and new value
    audit_log      append-only, hash-chained record of every decision and write
    approvals      actions waiting for, or decided by, a person
    controls       switches such as the kill switch (`writes_paused`)
    account_locks  one row per account being run (no two runs on one account at once)
    sim_markets    the simulated market's state, so a run against it persists like a real platform
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from bidloop.core.errors import BidloopError, RunError, StoreError

__all__ = [
    "AccountError",
    "AccountLockRow",
    "ActionRow",
    "ApprovalRow",
    "AuditRow",
    "Base",
    "ControlRow",
    "DecisionRow",
    "OutcomeObservation",
    "RewardRestatement",
    "RewardRestatementRow",
    "RunRow",
    "SimMarketRow",
    "SnapshotRow",
    "Store",
    "TrajectoryRow",
    "WriteRow",
    "utcnow",
]


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every bidloop table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class RunRow(Base):
    """One optimization run."""

    __tablename__ = "runs"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    mode: Mapped[str] = mapped_column(String(16))
    """`live`, `dry-run` or `simulate`."""
    trigger: Mapped[str] = mapped_column(String(32), default="cli")
    """Who asked: `cli`, `schedule`, `chat`, `simulate`, `rollback`."""
    accounts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running")
    """`running`, `waiting_approval`, `completed`, `failed`, `skipped`."""
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    report_md: Mapped[str | None] = mapped_column(Text, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    account_errors: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    """Accounts the run stopped (account id -> `code`, `message`, `hint`); the others ran."""


class ActionRow(Base):
    """A proposed action."""

    __tablename__ = "actions"

    action_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), index=True)
    account_id: Mapped[str] = mapped_column(String(64))
    agent: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    entity_key: Mapped[str] = mapped_column(String(255), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DecisionRow(Base):
    """The filter's verdict on an action."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), index=True)
    action_id: Mapped[str] = mapped_column(String(96), index=True)
    verdict: Mapped[str] = mapped_column(String(16))
    rule_id: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WriteRow(Base):
    """The write ledger: one row per action sent (or about to be sent) to a platform."""

    __tablename__ = "writes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), index=True)
    action_id: Mapped[str] = mapped_column(String(96), index=True)
    account_id: Mapped[str] = mapped_column(String(64))
    entity_key: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    """`intent` before sending; then `applied`, `validated`, `failed`, `deferred` or `skipped`."""
    before_value: Mapped[str | None] = mapped_column(String(255), default=None)
    after_value: Mapped[str | None] = mapped_column(String(255), default=None)
    message: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    effective_at: Mapped[datetime | None] = mapped_column(default=None)
    """When the write took effect on the platform's clock (the sim's clock in simulate mode)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SnapshotRow(Base):
    """What a run observed of one account (a `Snapshot` as JSON), kept out of the graph's checkpoints."""

    __tablename__ = "snapshots"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrajectoryRow(Base):
    """(state, action, reward, next state) for one applied action; reward once its window matures."""

    __tablename__ = "trajectories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), index=True)
    action_id: Mapped[str] = mapped_column(String(96), index=True)
    account_id: Mapped[str] = mapped_column(String(64))
    entity_key: Mapped[str] = mapped_column(String(255))
    policy_version: Mapped[str] = mapped_column(String(64))
    state: Mapped[dict[str, Any]] = mapped_column()
    action: Mapped[dict[str, Any]] = mapped_column()
    next_state: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    reward: Mapped[float | None] = mapped_column(Float, default=None)
    reward_components: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    feedback: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    """A person's approval or rejection with their reason (labelled feedback)."""
    matures_at: Mapped[datetime] = mapped_column(index=True)
    """When the attribution window closes (platform clock: the sim's clock in simulate mode)."""
    matured_at: Mapped[datetime | None] = mapped_column(default=None)
    outcome_date: Mapped[date | None] = mapped_column(Date, default=None)
    """The day whose performance is the action's outcome (the account's calendar); None on rows logged
    before outcomes had a day (they mature on the last full day and are never restated)."""
    outcome: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    """The latest reading of the outcome day: `metrics` (a `Metrics` dump) and `observed_at`."""
    restate_until: Mapped[datetime | None] = mapped_column(default=None)
    """Until when late conversions restate the reward (platform clock)."""
    first_reward: Mapped[float | None] = mapped_column(Float, default=None)
    """The reward when it first matured; `reward` is the latest (restated) value."""
    restatements: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    restated_at: Mapped[datetime | None] = mapped_column(default=None)
    """When the reward was last restated (platform clock)."""


class RewardRestatementRow(Base):
    """One change of a matured reward, because the outcome day's conversions changed afterwards."""

    __tablename__ = "reward_restatements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trajectory_id: Mapped[int] = mapped_column(ForeignKey("trajectories.id"), index=True)
    action_id: Mapped[str] = mapped_column(String(96))
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    old_reward: Mapped[float | None] = mapped_column(Float, default=None)
    new_reward: Mapped[float | None] = mapped_column(Float, default=None)
    old_outcome: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    new_outcome: Mapped[dict[str, Any]] = mapped_column()
    reward_components: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    restated_at: Mapped[datetime] = mapped_column()
    """The platform clock of the run that saw the change."""
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class OutcomeObservation:
    """A fresh reading of an action's outcome day (before its reward matures)."""

    trajectory_id: int
    outcome: dict[str, Any]


@dataclass(frozen=True)
class RewardRestatement:
    """A matured reward recomputed because its outcome day changed (late conversions)."""

    trajectory_id: int
    reward: float
    reward_components: dict[str, Any]
    outcome: dict[str, Any]
    restated_at: datetime
    next_state: dict[str, Any] | None = None


@dataclass(frozen=True)
class AccountError:
    """Why a run stopped one account (the run went on with the others)."""

    code: str
    message: str
    hint: str | None = None

    @classmethod
    def of(cls, error: BidloopError) -> AccountError:
        """Return the record of a bidloop error."""
        return cls(code=error.code.value, message=error.message, hint=error.hint)

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}" + (f" (hint: {self.hint})" if self.hint else "")


class AuditRow(Base):
    """One append-only, hash-chained audit record."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(default=utcnow)
    run_id: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    kind: Mapped[str] = mapped_column(String(32))
    """`decision`, `write`, `approval`, `prompt`, `answer`, `kill_switch`, `rollback`, ..."""
    actor: Mapped[str] = mapped_column(String(64))
    """Who or what asked: `schedule`, `cli`, `chat`, `approval:<name>`, ..."""
    policy_version: Mapped[str | None] = mapped_column(String(64), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column()
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class ApprovalRow(Base):
    """An action that needs (or got) a person's decision."""

    __tablename__ = "approvals"

    approval_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), index=True)
    action_id: Mapped[str] = mapped_column(String(96))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """`pending`, `approved` or `rejected`."""
    payload: Mapped[dict[str, Any]] = mapped_column()
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    decided_by: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)


class ControlRow(Base):
    """A named switch (e.g. `writes_paused`)."""

    __tablename__ = "controls"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="cli")


class AccountLockRow(Base):
    """A lease on one account; a run holds it while it runs, it expires if the holder dies."""

    __tablename__ = "account_locks"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    expires_at: Mapped[datetime] = mapped_column()


class SimMarketRow(Base):
    """The simulated market's state (bytes from `SimMarket.to_bytes`)."""

    __tablename__ = "sim_markets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


Index("ix_writes_run_action", WriteRow.run_id, WriteRow.action_id)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Store:
    """Open the database and read or write bidloop's records.

    Args:
        url: A SQLAlchemy URL (`sqlite:///path.sqlite`, `postgresql://...`).
        create: Create missing tables (and the SQLite file's folder).

    Raises:
        StoreError: If the database cannot be opened or its folder cannot be created or written.
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = _normalise_url(url)
        if self.url.startswith("sqlite:///") and create:
            _ensure_sqlite_dir(self.url)
        try:
            self.engine: Engine = create_engine(self.url, future=True)
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(f"cannot open database {self.redacted_url}: {exc}", hint="check database_url") from exc
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if create:
            self.create_schema()

    @property
    def redacted_url(self) -> str:
        """Return the URL with any password hidden, safe to print."""
        from sqlalchemy.engine import make_url

        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except SQLAlchemyError:
            return "<unparseable url>"

    @property
    def is_sqlite(self) -> bool:
        """Return True for a SQLite database."""
        return self.engine.dialect.name == "sqlite"

    def create_schema(self) -> None:
        """Bring the database to the newest schema with Alembic (creating every table on a new database).

        A database created before migrations existed (tables but no `alembic_version`) has its missing
        tables created and is stamped at the newest revision. Concurrent callers are serialised (an
        advisory lock on PostgreSQL, a lock file beside a SQLite file), so two processes starting at
        once on a new database do not race.

        Raises:
            StoreError: If the database refuses (read-only file, no permission, server down).
        """
        from bidloop.core.schema_migrations import migration_lock, upgrade_to_head

        try:
            with migration_lock(self.url), self.engine.begin() as conn:
                upgrade_to_head(conn)
        except OperationalError as exc:
            raise StoreError(
                f"cannot create or open the database at {self.redacted_url}: {exc.orig}",
                hint="choose a writable data_dir (BIDLOOP_DATA_DIR) or a reachable database_url",
            ) from exc

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Yield a session that commits on success and rolls back on error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            session.rollback()
            raise StoreError(f"database error on {self.redacted_url}: {exc.orig}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    # -- runs -----------------------------------------------------------------------------------

    def start_run(self, run_id: str, *, mode: str, trigger: str, accounts: Sequence[str]) -> None:
        """Record a new run as `running`."""
        with self.session() as s:
            s.add(RunRow(run_id=run_id, mode=mode, trigger=trigger, accounts={"ids": list(accounts)}))

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        summary: dict[str, Any] | None = None,
        report_md: str | None = None,
        error: str | None = None,
    ) -> None:
        """Mark a run finished (or waiting) with its summary and report."""
        values: dict[str, Any] = {"status": status}
        if status in ("completed", "failed", "skipped"):
            values["finished_at"] = utcnow()
        if summary is not None:
            values["summary"] = summary
        if report_md is not None:
            values["report_md"] = report_md
        if error is not None:
            values["error"] = error
        with self.session() as s:
            s.execute(update(RunRow).where(RunRow.run_id == run_id).values(**values))

    def get_run(self, run_id: str) -> RunRow:
        """Return one run.

        Raises:
            RunError: If no run has that id (the hint says how to list them).
        """
        with self.session() as s:
            row = s.get(RunRow, run_id)
            if row is None:
                matches = s.scalars(select(RunRow).where(RunRow.run_id.like(f"{run_id}%")).limit(2)).all()
                if len(matches) == 1:
                    return matches[0]
                raise RunError(f"no run {run_id!r} in {self.redacted_url}", hint="`bidloop runs list` shows run ids")
            return row

    def list_runs(self, limit: int = 20) -> list[RunRow]:
        """Return the most recent runs, newest first."""
        with self.session() as s:
            return list(s.scalars(select(RunRow).order_by(RunRow.started_at.desc()).limit(limit)).all())

    # -- actions, decisions, writes ---------------------------------------------------------------

    def add_actions(self, run_id: str, rows: Sequence[dict[str, Any]]) -> None:
        """Insert proposed actions (dicts with the `ActionRow` columns except `run_id`); skip known ids."""
        if not rows:
            return
        with self.session() as s:
            known = set(s.scalars(select(ActionRow.action_id).where(ActionRow.run_id == run_id)).all())
            fresh = [{**r, "run_id": run_id} for r in rows if r["action_id"] not in known]
            if fresh:
                s.execute(insert(ActionRow), fresh)

    def add_decisions(self, run_id: str, rows: Sequence[dict[str, Any]]) -> None:
        """Insert filter decisions (dicts with the `DecisionRow` columns except `run_id`)."""
        if not rows:
            return
        with self.session() as s:
            s.execute(insert(DecisionRow), [{**r, "run_id": run_id} for r in rows])

    def actions_of(self, run_id: str) -> list[ActionRow]:
        """Return a run's proposed actions in insertion order."""
        with self.session() as s:
            return list(s.scalars(select(ActionRow).where(ActionRow.run_id == run_id).order_by(ActionRow.created_at)))

    def decisions_of(self, run_id: str) -> list[DecisionRow]:
        """Return a run's decisions in order."""
        with self.session() as s:
            return list(s.scalars(select(DecisionRow).where(DecisionRow.run_id == run_id).order_by(DecisionRow.id)))

    def writes_of(self, run_id: str) -> list[WriteRow]:
        """Return a run's write ledger in order."""
        with self.session() as s:
            return list(s.scalars(select(WriteRow).where(WriteRow.run_id == run_id).order_by(WriteRow.id)))

    def record_write_intents(self, run_id: str, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Write `intent` rows before sending; return the ledger id of each action (existing ones reused)."""
        with self.session() as s:
            existing = {w.action_id: w.id for w in s.scalars(select(WriteRow).where(WriteRow.run_id == run_id)).all()}
            fresh = [{**r, "run_id": run_id, "status": "intent"} for r in rows if r["action_id"] not in existing]
            if fresh:
                s.execute(insert(WriteRow), fresh)
                existing = {
                    w.action_id: w.id for w in s.scalars(select(WriteRow).where(WriteRow.run_id == run_id)).all()
                }
            return existing

    def record_write_outcomes(self, outcomes: Sequence[dict[str, Any]]) -> None:
        """Update ledger rows with outcomes: dicts with `id`, `status`, `message`, `attempts` (and `after_value`)."""
        if not outcomes:
            return
        stamp = utcnow()
        rows = [{**o, "updated_at": stamp} for o in outcomes]
        with self.session() as s:
            # Group by key set: a bulk UPDATE by primary key needs the same columns in every row.
            for keys in {tuple(sorted(r)) for r in rows}:
                s.execute(update(WriteRow), [r for r in rows if tuple(sorted(r)) == keys])

    def add_pending_approvals(self, run_id: str, rows: Sequence[dict[str, Any]]) -> None:
        """Create `pending` approvals (dicts with `action_id` and `payload`); existing ones are kept as they are."""
        with self.session() as s:
            for r in rows:
                if s.get(ApprovalRow, r["action_id"]) is None:
                    s.add(
                        ApprovalRow(
                            approval_id=r["action_id"], run_id=run_id, action_id=r["action_id"], payload=r["payload"]
                        )
                    )

    def set_account_errors(self, run_id: str, errors: Mapping[str, AccountError]) -> None:
        """Record the accounts a run stopped (replacing an earlier observe's), and say so in the run's `error`."""
        with self.session() as s:
            row = s.get(RunRow, run_id)
            if row is None:
                raise RunError(f"no run {run_id!r}")
            row.account_errors = (
                {a: {"code": e.code, "message": e.message, "hint": e.hint} for a, e in sorted(errors.items())}
                if errors
                else None
            )
            row.error = "; ".join(f"{a}: {e}" for a, e in sorted(errors.items())) if errors else None

    def account_errors(self, run_id: str) -> dict[str, AccountError]:
        """Return the accounts a run stopped, with why (empty when every account ran)."""
        with self.session() as s:
            row = s.get(RunRow, run_id)
            raw = (row.account_errors if row is not None else None) or {}
            return {a: AccountError(code=e["code"], message=e["message"], hint=e.get("hint")) for a, e in raw.items()}

    def save_snapshots(self, run_id: str, payloads: dict[str, str]) -> None:
        """Store what a run observed: account id -> `Snapshot` JSON. A re-run of observe replaces them."""
        with self.session() as s:
            for account_id, payload in payloads.items():
                row = s.get(SnapshotRow, (run_id, account_id))
                if row is None:
                    s.add(SnapshotRow(run_id=run_id, account_id=account_id, payload=payload))
                else:
                    row.payload = payload

    def load_snapshots(self, run_id: str) -> dict[str, str]:
        """Return account id -> `Snapshot` JSON of a run."""
        with self.session() as s:
            rows = s.scalars(select(SnapshotRow).where(SnapshotRow.run_id == run_id)).all()
            return {r.account_id: r.payload for r in rows}

    def delete_snapshots(self, run_ids: Sequence[str]) -> int:
        """Delete the stored snapshots of these runs; return how many rows went."""
        deleted = 0
        with self.session() as s:
            for start in range(0, len(run_ids), 500):
                chunk = list(run_ids[start : start + 500])
                result = s.execute(delete(SnapshotRow).where(SnapshotRow.run_id.in_(chunk)))
                deleted += int(getattr(result, "rowcount", 0) or 0)
        return deleted

    def finished_runs(
        self, *, before: datetime, since: datetime | None = None, statuses: Sequence[str] = ("completed", "skipped")
    ) -> list[str]:
        """Return the ids of runs with one of `statuses` that finished in `[since, before)`, oldest first."""
        query = select(RunRow.run_id).where(
            RunRow.status.in_(list(statuses)), RunRow.finished_at.is_not(None), RunRow.finished_at < _utc(before)
        )
        if since is not None:
            query = query.where(RunRow.finished_at >= _utc(since))
        with self.session() as s:
            return list(s.scalars(query.order_by(RunRow.finished_at)).all())

    # -- trajectories -----------------------------------------------------------------------------

    def add_trajectories(self, run_id: str, rows: Sequence[dict[str, Any]]) -> None:
        """Insert trajectory records (reward pending)."""
        if not rows:
            return
        values = []
        for r in rows:
            v = {**r, "run_id": run_id, "matures_at": _utc(r["matures_at"])}
            if r.get("restate_until") is not None:
                v["restate_until"] = _utc(r["restate_until"])
            if r.get("reward") is not None:
                v.setdefault("first_reward", r["reward"])
            values.append(v)
        # One key set per statement: a bulk INSERT takes its columns from the first row.
        with self.session() as s:
            for keys in {tuple(sorted(v)) for v in values}:
                s.execute(insert(TrajectoryRow), [v for v in values if tuple(sorted(v)) == keys])

    def pending_trajectories(self, *, matured_by: datetime, account_id: str | None = None) -> list[TrajectoryRow]:
        """Return trajectories whose attribution window closed by `matured_by` and that have no reward yet."""
        with self.session() as s:
            q = select(TrajectoryRow).where(
                TrajectoryRow.matured_at.is_(None), TrajectoryRow.matures_at <= _utc(matured_by)
            )
            if account_id is not None:
                q = q.where(TrajectoryRow.account_id == account_id)
            return list(s.scalars(q.order_by(TrajectoryRow.id)))

    def complete_trajectories(self, rows: Sequence[dict[str, Any]]) -> None:
        """Fill in reward, components and next state (dicts with `id` and those columns)."""
        if not rows:
            return
        stamp = utcnow()
        with self.session() as s:
            values = [{**r, "matured_at": stamp, "first_reward": r.get("reward")} for r in rows]
            for keys in {tuple(sorted(v)) for v in values}:
                s.execute(update(TrajectoryRow), [v for v in values if tuple(sorted(v)) == keys])

    def reward_candidates(self, *, account_id: str, now: datetime) -> list[TrajectoryRow]:
        """Return an account's trajectories whose reward may change now, oldest first.

        Those without a reward yet, and matured ones with an outcome day still inside their restatement
        horizon (`restate_until` after `now`).
        """
        at = _utc(now)
        with self.session() as s:
            q = select(TrajectoryRow).where(
                TrajectoryRow.account_id == account_id,
                TrajectoryRow.matured_at.is_(None)
                | (
                    TrajectoryRow.outcome_date.is_not(None)
                    & TrajectoryRow.restate_until.is_not(None)
                    & (TrajectoryRow.restate_until > at)
                ),
            )
            return list(s.scalars(q.order_by(TrajectoryRow.id)))

    def record_outcome_observations(self, observations: Sequence[OutcomeObservation]) -> None:
        """Keep the latest reading of pending actions' outcome days (used if the day leaves the history)."""
        if not observations:
            return
        with self.session() as s:
            s.execute(update(TrajectoryRow), [{"id": o.trajectory_id, "outcome": o.outcome} for o in observations])

    def restate_rewards(self, restatements: Sequence[RewardRestatement]) -> None:
        """Replace matured rewards with recomputed ones, keeping the first value and one history row per change."""
        if not restatements:
            return
        with self.session() as s:
            for r in restatements:
                row = s.get(TrajectoryRow, r.trajectory_id)
                if row is None:
                    raise StoreError(f"no trajectory {r.trajectory_id} to restate")
                s.add(
                    RewardRestatementRow(
                        trajectory_id=row.id,
                        action_id=row.action_id,
                        account_id=row.account_id,
                        old_reward=row.reward,
                        new_reward=r.reward,
                        old_outcome=row.outcome,
                        new_outcome=r.outcome,
                        reward_components=r.reward_components,
                        restated_at=_utc(r.restated_at),
                    )
                )
                if row.first_reward is None:
                    row.first_reward = row.reward
                row.reward = r.reward
                row.reward_components = r.reward_components
                row.outcome = r.outcome
                row.restatements = (row.restatements or 0) + 1
                row.restated_at = _utc(r.restated_at)
                if r.next_state is not None:
                    row.next_state = r.next_state

    def reward_restatements(
        self, *, account_id: str | None = None, trajectory_id: int | None = None
    ) -> list[RewardRestatementRow]:
        """Return the history of restated rewards, oldest first (times timezone-aware)."""
        with self.session() as s:
            q = select(RewardRestatementRow)
            if account_id is not None:
                q = q.where(RewardRestatementRow.account_id == account_id)
            if trajectory_id is not None:
                q = q.where(RewardRestatementRow.trajectory_id == trajectory_id)
            rows = list(s.scalars(q.order_by(RewardRestatementRow.id)))
            for row in rows:
                row.restated_at = _aware(row.restated_at)
            return rows

    def trajectories(self, *, matured: bool | None = None, limit: int | None = None) -> list[TrajectoryRow]:
        """Return trajectory records, oldest first; `matured` filters on whether the reward is in."""
        with self.session() as s:
            q = select(TrajectoryRow)
            if matured is True:
                q = q.where(TrajectoryRow.matured_at.is_not(None))
            elif matured is False:
                q = q.where(TrajectoryRow.matured_at.is_(None))
            q = q.order_by(TrajectoryRow.id)
            if limit is not None:
                q = q.limit(limit)
            return list(s.scalars(q))

    # -- controls and the simulated market ---------------------------------------------------------

    def get_control(self, key: str) -> str | None:
        """Return a control's value, or None when never set."""
        with self.session() as s:
            row = s.get(ControlRow, key)
            return row.value if row else None

    def set_control(self, key: str, value: str, *, by: str = "cli") -> None:
        """Set a control's value atomically (an upsert: schedulers in several processes write the same keys)."""
        values = {"key": key, "value": value, "updated_at": utcnow(), "updated_by": by}
        changes = {"value": value, "updated_at": values["updated_at"], "updated_by": by}
        from sqlalchemy.dialects import postgresql, sqlite

        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            statement: Any = postgresql.insert(ControlRow).values(**values)
        elif dialect == "sqlite":
            statement = sqlite.insert(ControlRow).values(**values)
        else:  # pragma: no cover - bidloop supports SQLite and PostgreSQL
            raise StoreError(f"unsupported database dialect {dialect!r}", hint="use SQLite or PostgreSQL")
        statement = statement.on_conflict_do_update(index_elements=["key"], set_=changes)
        with self.session() as s:
            s.execute(statement)

    def load_sim_market(self, name: str) -> bytes | None:
        """Return the saved simulated-market bytes, or None if none was saved."""
        with self.session() as s:
            row = s.get(SimMarketRow, name)
            return row.state if row else None

    def save_sim_market(self, name: str, state: bytes) -> None:
        """Save the simulated market's state."""
        with self.session() as s:
            row = s.get(SimMarketRow, name)
            if row is None:
                s.add(SimMarketRow(name=name, state=state))
            else:
                row.state, row.updated_at = state, utcnow()

    def vacuum(self) -> None:
        """Give freed pages back to the disk (SQLite `VACUUM` after a WAL checkpoint; PostgreSQL `VACUUM`).

        Raises:
            StoreError: If the database refuses (another process holds a write lock).
        """
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                if self.is_sqlite:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.exec_driver_sql("VACUUM")
        except SQLAlchemyError as exc:
            raise StoreError(f"VACUUM failed: {exc}", hint="run it again when no bidloop run is writing") from exc

    def size_bytes(self) -> int | None:
        """Return the database size in bytes (SQLite file, or PostgreSQL database), if it can be measured."""
        if self.is_sqlite:
            path = Path(self.url.removeprefix("sqlite:///"))
            total = 0
            for suffix in ("", "-wal"):
                p = Path(str(path) + suffix)
                if p.exists():
                    total += p.stat().st_size
            return total
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect() as conn:
                return int(conn.execute(select(func.pg_database_size(func.current_database()))).scalar_one())
        return None

    # -- account locks ----------------------------------------------------------------------------

    def _lock_now(self, session: Session, now: datetime | None) -> datetime:
        """Return the lease clock: the server's on PostgreSQL (one clock for every machine), else this host's."""
        if now is not None:
            return _utc(now)
        if self.engine.dialect.name == "postgresql":
            return _utc(session.execute(select(func.now())).scalar_one())
        return utcnow()

    def try_lock_accounts(
        self,
        account_ids: Sequence[str],
        *,
        holder: str,
        run_id: str | None,
        ttl_s: float,
        now: datetime | None = None,
    ) -> list[AccountLockRow]:
        """Take a lease on every account, or on none: return the locks held by others (empty when all were taken).

        A lease is free when no row exists, when it expired, or when `holder` already holds it (re-entry
        renews it). Each account's upsert is one atomic statement, so two processes (or machines) never
        both hold one account.

        Args:
            account_ids: The accounts of the run.
            holder: Who takes the lease (`host:pid:token`).
            run_id: The run that will hold it (shown by `bidloop status`).
            ttl_s: Seconds until the lease expires unless renewed.
            now: The lease clock (tests); default the database server's clock, or this host's for SQLite.
        """
        from datetime import timedelta

        from sqlalchemy.dialects.postgresql import insert as pg_insert
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        if ttl_s <= 0:
            raise StoreError(f"a lease needs a positive ttl, got {ttl_s} s", hint="pass ttl_s > 0")
        insert_fn = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        with self.session() as s:
            at = self._lock_now(s, now)
            expires_at = at + timedelta(seconds=ttl_s)
            for account_id in sorted(set(account_ids)):
                stmt = insert_fn(AccountLockRow).values(
                    account_id=account_id, holder=holder, run_id=run_id, expires_at=expires_at
                )
                stmt = stmt.on_conflict_do_update(
                    index_elements=[AccountLockRow.account_id],
                    set_={"holder": holder, "run_id": run_id, "expires_at": expires_at},
                    where=(AccountLockRow.expires_at <= at) | (AccountLockRow.holder == holder),
                )
                s.execute(stmt)
            rows = s.scalars(select(AccountLockRow).where(AccountLockRow.account_id.in_(list(account_ids))))
            conflicts = [_lock_copy(r) for r in rows if r.holder != holder]
            if conflicts:
                s.rollback()
            return conflicts

    def renew_account_locks(
        self, account_ids: Sequence[str], *, holder: str, ttl_s: float, now: datetime | None = None
    ) -> list[str]:
        """Extend `holder`'s leases by `ttl_s` from now; return the accounts it still holds (lost ones are missing)."""
        from datetime import timedelta

        with self.session() as s:
            at = self._lock_now(s, now)
            s.execute(
                update(AccountLockRow)
                .where(AccountLockRow.account_id.in_(list(account_ids)), AccountLockRow.holder == holder)
                .values(expires_at=at + timedelta(seconds=ttl_s))
            )
            held = s.scalars(
                select(AccountLockRow.account_id).where(
                    AccountLockRow.account_id.in_(list(account_ids)), AccountLockRow.holder == holder
                )
            )
            return sorted(held)

    def release_account_locks(self, account_ids: Sequence[str], *, holder: str) -> None:
        """Give up `holder`'s leases on these accounts (leases held by others are left alone)."""
        from sqlalchemy import delete

        with self.session() as s:
            s.execute(
                delete(AccountLockRow).where(
                    AccountLockRow.account_id.in_(list(account_ids)), AccountLockRow.holder == holder
                )
            )

    def account_locks(self) -> list[AccountLockRow]:
        """Return every lease row (expired ones included), by account id, with timezone-aware expiry times."""
        with self.session() as s:
            return [_lock_copy(r) for r in s.scalars(select(AccountLockRow).order_by(AccountLockRow.account_id))]


def _lock_copy(row: AccountLockRow) -> AccountLockRow:
    """Return a detached copy of a lease row with a timezone-aware expiry (SQLite returns naive UTC)."""
    return AccountLockRow(
        account_id=row.account_id, holder=row.holder, run_id=row.run_id, expires_at=_aware(row.expires_at)
    )


def _aware(at: datetime) -> datetime:
    """Return `at` timezone-aware (SQLite hands back naive datetimes; bidloop stores UTC)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _utc(at: datetime) -> datetime:
    """Return `at` in UTC: SQLite keeps no offset, so every stored time is converted first."""
    return _aware(at).astimezone(UTC)


def _normalise_url(url: str) -> str:
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver bidloop installs; SQLAlchemy's bare postgresql:// means psycopg2.
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def _ensure_sqlite_dir(url: str) -> None:
    raw = url.removeprefix("sqlite:///")
    if raw in ("", ":memory:"):
        return
    folder = Path(raw).expanduser().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the data directory {folder}: {exc.strerror}",
            hint="set data_dir (or BIDLOOP_DATA_DIR) to a folder you can write",
        ) from exc
    try:
        # A uniquely named probe: several processes (schedulers) may check the same folder at once.
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".bidloop-write-test-"):
            pass
    except OSError as exc:
        raise StoreError(
            f"the data directory {folder} is not writable: {exc.strerror}",
            hint="set data_dir (or BIDLOOP_DATA_DIR) to a folder you can write",
        ) from exc
