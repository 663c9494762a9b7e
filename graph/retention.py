"""Keep the store bounded: finished runs drop what only a resume needs (their snapshots and checkpoints).

A scheduled day of 50 accounts adds about 43 MB of snapshots and 40 MB of checkpoints. Neither is read
once a run has completed: a resume needs them, a completed or skipped run is never resumed. What is
the record stays for good: runs and their reports, actions, decisions, the write ledger, approvals,
trajectories and rewards, and the audit log. Failed runs keep everything (`bidloop runs resume` may still
pick them up).

`prune_finished_runs` is idempotent. It remembers the cutoff it reached (control `retention.pruned_until`)
so each pass only visits runs finished since the last one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from langgraph.checkpoint.base import BaseCheckpointSaver

from bidloop.core.errors import InputError
from bidloop.core.settings import Settings
from bidloop.core.store import Store, utcnow
from bidloop.graph.checkpoint import open_checkpointer, vacuum_checkpoints

__all__ = ["PRUNED_UNTIL", "PruneResult", "maybe_prune", "prune_finished_runs"]

PRUNED_UNTIL = "retention.pruned_until"
"""Control key: runs that finished before this time have been pruned."""
_LAST_PRUNE = "retention.last_prune_at"
PRUNE_EVERY = timedelta(days=1)
"""How often `bidloop schedule` prunes."""
PRUNED_STATUSES = ("completed", "skipped")

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PruneResult:
    """What one prune did (or, with `dry_run`, would do).

    Attributes:
        cutoff: Runs that finished before this time were pruned.
        runs: The ids of the runs pruned in this pass, oldest first.
        snapshot_rows: Snapshot rows deleted (0 in a dry run).
        checkpoint_threads: Checkpoint threads deleted (0 in a dry run).
        dry_run: True when nothing was deleted.
        bytes_before: The database size before, when it can be measured.
        bytes_after: The database size after (SQLite reuses freed pages; `vacuum` gives them back to the disk).
    """

    cutoff: datetime
    runs: list[str] = field(default_factory=list)
    snapshot_rows: int = 0
    checkpoint_threads: int = 0
    dry_run: bool = False
    bytes_before: int | None = None
    bytes_after: int | None = None


def prune_finished_runs(
    settings: Settings,
    store: Store,
    *,
    older_than_days: float | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
    vacuum: bool = False,
    checkpointer: BaseCheckpointSaver[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> PruneResult:
    """Delete the snapshots and checkpoints of completed and skipped runs that finished long enough ago.

    Args:
        settings: The loaded settings (`retention_days` is the default age).
        store: The open store.
        older_than_days: Prune runs that finished more than this many days ago (default: `retention_days`).
        now: The current time (default: the clock).
        dry_run: List what would go, delete nothing.
        vacuum: Give freed space back to the disk afterwards (SQLite `VACUUM`; locks the file meanwhile).
        checkpointer: The checkpointer (default: the one beside the configured database).
        progress: Receives one line per step.

    Raises:
        InputError: If no age is given and `retention_days` is unset, or the age is not positive.
    """
    days = older_than_days if older_than_days is not None else settings.retention_days
    if days is None:
        raise InputError("retention_days is not set, so nothing is pruned by default", hint="pass --older-than DAYS")
    if days <= 0:
        raise InputError(f"the age must be positive, got {days} days", hint="e.g. --older-than 30")
    say = progress or (lambda _line: None)
    cutoff = (now or utcnow()) - timedelta(days=days)
    pruned_until = store.get_control(PRUNED_UNTIL)
    since = datetime.fromisoformat(pruned_until) if pruned_until else None
    before = store.size_bytes()
    if since is not None and since >= cutoff:
        return PruneResult(cutoff=cutoff, dry_run=dry_run, bytes_before=before, bytes_after=before)
    runs = store.finished_runs(before=cutoff, since=since, statuses=PRUNED_STATUSES)
    say(f"{len(runs)} finished run(s) before {cutoff:%Y-%m-%d %H:%M} UTC to prune")
    if dry_run or not runs:
        if not dry_run:
            store.set_control(PRUNED_UNTIL, cutoff.isoformat(), by="retention")
        return PruneResult(cutoff=cutoff, runs=runs, dry_run=dry_run, bytes_before=before, bytes_after=before)
    snapshot_rows = store.delete_snapshots(runs)
    say(f"deleted {snapshot_rows} snapshot row(s)")
    if checkpointer is not None:
        threads = _delete_threads(checkpointer, runs)
    else:
        with open_checkpointer(settings) as saver:
            threads = _delete_threads(saver, runs)
    say(f"deleted the checkpoints of {threads} run(s)")
    store.set_control(PRUNED_UNTIL, cutoff.isoformat(), by="retention")
    if vacuum:
        say("vacuuming (the database is locked meanwhile)")
        store.vacuum()
        if checkpointer is None:
            vacuum_checkpoints(settings)
    after = store.size_bytes()
    _log.info("pruned %d run(s) finished before %s", len(runs), cutoff.isoformat())
    return PruneResult(
        cutoff=cutoff,
        runs=runs,
        snapshot_rows=snapshot_rows,
        checkpoint_threads=threads,
        bytes_before=before,
        bytes_after=after,
    )


def maybe_prune(settings: Settings, store: Store, *, now: datetime | None = None) -> PruneResult | None:
    """Prune at most once per `PRUNE_EVERY` (what `bidloop schedule` calls after its runs); None if not due."""
    if settings.retention_days is None:
        return None
    now = now or utcnow()
    last = store.get_control(_LAST_PRUNE)
    if last is not None and now - datetime.fromisoformat(last) < PRUNE_EVERY:
        return None
    store.set_control(_LAST_PRUNE, now.astimezone(UTC).isoformat(), by="retention")
    return prune_finished_runs(settings, store, now=now)


def _delete_threads(saver: BaseCheckpointSaver[str], run_ids: list[str]) -> int:
    for run_id in run_ids:
        saver.delete_thread(run_id)
    return len(run_ids)
