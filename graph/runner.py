"""Run the optimization graph: start a run, resume one, and hand back its outcome.

The CLI, the scheduler and the chat front end all call these functions, so every way of asking
for a run goes through the same graph, the same filter and the same write ledger.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command

from bidloop.agents.reporting import RunReport
from bidloop.core.actions import Action
from bidloop.core.agent_context import AgentTuning, Steering
from bidloop.core.errors import BidloopError, RunError
from bidloop.core.settings import Settings
from bidloop.core.store import AccountError, Store
from bidloop.graph.builder import build_graph
from bidloop.graph.checkpoint import open_checkpointer
from bidloop.graph.context import RunContext
from bidloop.graph.state import Mode, RunState
from bidloop.tools.registry import ClientSet, build_clients

__all__ = ["RunOutcome", "new_run_id", "resume_run", "run_cycle", "select_accounts"]


@dataclass
class RunOutcome:
    """What a run ended with.

    Attributes:
        run_id: The run (and LangGraph thread) id.
        status: `completed`, or `waiting_approval` when it paused for a person.
        report: The report, once the run reached the report node.
        pending_approvals: The actions waiting for a person's decision.
        state: The final graph state (snapshots, proposals, decisions, results).
        account_errors: The accounts the run stopped (configuration mismatch, unreadable), with why;
            the others ran.
    """

    run_id: str
    status: str
    report: RunReport | None = None
    pending_approvals: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    account_errors: dict[str, AccountError] = field(default_factory=dict)


def new_run_id() -> str:
    """Return a new run id that sorts by time: `20260601-093000-a1b2c3`."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def select_accounts(settings: Settings, account_ids: Sequence[str] | None, steering: Steering | None) -> list[str]:
    """Return the accounts of a run: those asked for (each must be configured) or all, narrowed by platform."""
    chosen = [settings.account(a).id for a in account_ids] if account_ids else [a.id for a in settings.accounts]
    if steering is not None and steering.platforms is not None:
        chosen = [a for a in chosen if settings.account(a).platform.value in steering.platforms]
    if not chosen:
        raise RunError("no account to run", hint="configure accounts in bidloop.yaml or pass --account")
    return chosen


@contextmanager
def _resources(
    settings: Settings, store: Store | None, checkpointer: BaseCheckpointSaver[str] | None
) -> Iterator[tuple[Store, BaseCheckpointSaver[str]]]:
    with ExitStack() as stack:
        own_store = store is None
        the_store = store or Store(settings.resolved_database_url)
        if own_store:
            stack.callback(the_store.dispose)
        the_cp = checkpointer or stack.enter_context(open_checkpointer(settings))
        yield the_store, the_cp


def _invoke(
    graph_input: RunState | Command,
    run_id: str,
    *,
    context: RunContext,
    checkpointer: BaseCheckpointSaver[str],
) -> RunOutcome:
    graph = build_graph().compile(checkpointer=checkpointer)
    config: Any = {"configurable": {"thread_id": run_id}}
    try:
        # "sync": each step's checkpoint is on disk before the next step starts. LangGraph's default
        # ("async") writes it while the next step runs, so a process killed inside `apply` could resume
        # from before `filter`, judge the batch afresh and resend writes that had already landed.
        output = graph.invoke(graph_input, config, context=context, version="v2", durability="sync")
    except Exception as exc:
        # Record the failure (the checkpoint keeps the progress for `bidloop runs resume`), then re-raise.
        message = str(exc) if isinstance(exc, BidloopError) else f"{type(exc).__name__}: {exc}"
        context.store.finish_run(run_id, status="failed", error=message)
        raise
    state: dict[str, Any] = dict(output.value) if output.value else {}
    stopped = context.store.account_errors(run_id)
    if output.interrupts:
        context.store.finish_run(run_id, status="waiting_approval")
        pending = [item for intr in output.interrupts for item in intr.value.get("needs_approval", [])]
        return RunOutcome(
            run_id=run_id, status="waiting_approval", pending_approvals=pending, state=state, account_errors=stopped
        )
    report = RunReport.model_validate(state["report"]) if state.get("report") else None
    return RunOutcome(run_id=run_id, status="completed", report=report, state=state, account_errors=stopped)


def run_cycle(
    settings: Settings,
    *,
    mode: Mode = "live",
    account_ids: Sequence[str] | None = None,
    trigger: str = "cli",
    steering: Steering | None = None,
    tuning: AgentTuning | None = None,
    bid_policy: object | None = None,
    progress: Callable[[str], None] | None = None,
    store: Store | None = None,
    clients: ClientSet | None = None,
    checkpointer: BaseCheckpointSaver[str] | None = None,
    run_id: str | None = None,
    advance_sim: bool = True,
    proposals: Sequence[Action] = (),
    rollback_before_values: dict[str, str] | None = None,
) -> RunOutcome:
    """Run one optimization cycle: observe, propose, filter, (approve,) apply, report, log.

    Args:
        settings: The loaded settings.
        mode: `live` writes, `dry-run` writes nothing, `simulate` plays the simulated market.
        account_ids: The accounts to run (default: every configured account).
        trigger: Who asked (`cli`, `schedule`, `chat`, ...), recorded on the run and in the audit log.
        steering: Narrowing from an operator prompt.
        tuning: Agent thresholds (default: from the reward target).
        bid_policy: A learned bid policy; None uses the heuristic.
        progress: Receives one line per step.
        store: An open store (default: opened from the settings).
        clients: Prebuilt clients (default: built from the settings).
        checkpointer: A LangGraph checkpointer (default: beside the store).
        run_id: Use this id (default: a new one).
        advance_sim: After a live run on the simulated market, move its clock one daypart on and save it.
        proposals: Actions proposed before the agents run (a rollback's restoring actions); they pass
            the same filter, approvals and ledger.
        rollback_before_values: For a rollback run (trigger `rollback`): entity key -> recorded value.

    Raises:
        UnknownAccountError: If an account is not configured.
        BidloopError: If the run fails; the run is recorded as failed first.
    """
    run_id = run_id or new_run_id()
    steering = steering or Steering()
    accounts = select_accounts(settings, account_ids, steering)
    tuning = tuning or AgentTuning(roas_target=settings.reward.roas_target)
    with _resources(settings, store, checkpointer) as (the_store, the_cp):
        client_set = clients or build_clients(settings, the_store, accounts)
        the_store.start_run(run_id, mode=mode, trigger=trigger, accounts=accounts)
        context = RunContext(
            settings=settings,
            store=the_store,
            clients=client_set.clients,
            tuning=tuning,
            steering=steering,
            bid_policy=bid_policy,
            progress=progress,
            actor=trigger,
            rollback_before_values=dict(rollback_before_values or {}),
        )
        initial: RunState = {
            "run_id": run_id,
            "mode": mode,
            "trigger": trigger,
            "account_ids": accounts,
            "proposals": list(proposals),
            "notes": [],
        }
        outcome = _invoke(initial, run_id, context=context, checkpointer=the_cp)
        if mode == "live" and clients is None:
            client_set.persist(the_store, advance_dayparts=1 if advance_sim else 0)
        return outcome


def resume_run(
    settings: Settings,
    run_id: str,
    *,
    approvals: dict[str, bool] | None = None,
    progress: Callable[[str], None] | None = None,
    store: Store | None = None,
    clients: ClientSet | None = None,
    checkpointer: BaseCheckpointSaver[str] | None = None,
    actor: str = "cli",
) -> RunOutcome:
    """Resume a run that paused for approval or was interrupted (crash, kill), from its last checkpoint.

    Args:
        settings: The loaded settings.
        run_id: The run to resume (a unique prefix is enough).
        approvals: A person's decisions per action id, when the run waits for approval.
        progress: Receives one line per step.
        store: An open store (default: opened from the settings).
        clients: Prebuilt clients (default: built from the settings).
        checkpointer: A LangGraph checkpointer (default: beside the store).
        actor: Who resumes, for the audit log.

    Raises:
        RunError: If the run is unknown or already finished.
    """
    with _resources(settings, store, checkpointer) as (the_store, the_cp):
        row = the_store.get_run(run_id)
        run_id = row.run_id
        if row.status in ("completed", "skipped"):
            raise RunError(f"run {run_id} is already {row.status}", hint="`bidloop runs show RUN_ID` shows it")
        graph = build_graph().compile(checkpointer=the_cp)
        config: Any = {"configurable": {"thread_id": run_id}}
        snapshot = graph.get_state(config)
        if not snapshot.values:
            raise RunError(f"run {run_id} has no checkpoint to resume from", hint="start a new run with `bidloop run`")
        accounts = list(snapshot.values.get("account_ids", []))
        client_set = clients or build_clients(settings, the_store, accounts)
        context = RunContext(
            settings=settings,
            store=the_store,
            clients=client_set.clients,
            tuning=AgentTuning(roas_target=settings.reward.roas_target),
            progress=progress,
            actor=actor,
        )
        the_store.finish_run(run_id, status="running")
        graph_input: RunState | Command | None
        graph_input = Command(resume=approvals or {}) if snapshot.interrupts else None
        outcome = _invoke(graph_input, run_id, context=context, checkpointer=the_cp)  # type: ignore[arg-type]
        if snapshot.values.get("mode") == "live" and clients is None:
            client_set.persist(the_store, advance_dayparts=0)
        return outcome
