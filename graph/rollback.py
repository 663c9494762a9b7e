"""Roll a run back: restore the previous value of everything it changed, through the same filter and clients."""

from __future__ import annotations

from collections.abc import Callable

from bidloop.core.agent_context import Steering
from bidloop.core.settings import Settings
from bidloop.core.store import Store
from bidloop.graph.runner import RunOutcome, run_cycle
from bidloop.guardrails.rollback import RollbackPlan, plan_rollback
from bidloop.tools.registry import build_clients

__all__ = ["rollback_run"]


def rollback_run(
    settings: Settings,
    run_id: str,
    *,
    dry_run: bool = False,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    store: Store | None = None,
) -> tuple[RollbackPlan, RunOutcome | None]:
    """Plan the restoration of a run's changes and run it (or validate it, with `dry_run`).

    The restoring actions are absolute targets (the values recorded before each write), proposed to a
    run with trigger `rollback` in which no agent proposes anything else; they pass the filter (rule
    `rollback_restore`), the approvals and the write ledger like any action.

    Returns:
        The plan (with what cannot be restored, and why) and the rollback run's outcome (None when
        there is nothing to restore).

    Raises:
        RunError: If the run is unknown.
    """
    the_store = store or Store(settings.resolved_database_url)
    row = the_store.get_run(run_id)
    accounts = list(row.accounts.get("ids", []))
    clients = build_clients(settings, the_store, accounts)
    snapshots = {a: clients.clients[a].read_snapshot(a) for a in accounts}
    plan = plan_rollback(the_store, row.run_id, snapshots, force=force)
    if not plan.actions:
        return plan, None
    outcome = run_cycle(
        settings,
        mode="dry-run" if dry_run else "live",
        account_ids=sorted({a.entity.account_id for a in plan.actions}),
        trigger="rollback",
        steering=Steering(agents=frozenset()),
        progress=progress,
        store=the_store,
        proposals=plan.actions,
        rollback_before_values=plan.before_values,
        advance_sim=False,
    )
    return plan, outcome
