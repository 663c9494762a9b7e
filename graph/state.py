"""Define the typed state one optimization run carries from node to node (and into its checkpoints)."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal

from typing_extensions import TypedDict

from bidloop.core.actions import Action
from bidloop.core.decisions import Decision, WriteResult

__all__ = ["Mode", "RunState"]

Mode = Literal["live", "dry-run", "simulate"]


class RunState(TypedDict, total=False):
    """The state of one run. Agents append to `proposals`; every other field has one writer."""

    run_id: str
    """The run's id (also the LangGraph thread id)."""
    mode: Mode
    """`live` writes; `dry-run` writes nothing (platform validate-only); `simulate` plays the simulated market."""
    trigger: str
    """Who asked: `cli`, `schedule`, `chat`, `simulate`, `rollback`."""
    account_ids: list[str]
    observed_accounts: list[str]
    """The accounts `observe` read. The snapshots themselves are in the store (`RunContext.snapshots`):
    checkpointing thousands of entities at every step would cost more than the agents' own work."""
    proposals: Annotated[list[Action], operator.add]
    """Actions proposed by the agents (each agent appends)."""
    decisions: list[Decision]
    """The filter's verdict on each proposal, same order."""
    approvals: dict[str, bool]
    """A person's decision per action id for `needs_approval` verdicts."""
    results: list[WriteResult]
    """What each platform write did."""
    report: dict[str, Any]
    """The run report (`RunReport` as JSON-ready dict)."""
    notes: Annotated[list[str], operator.add]
    """Things the run wants the operator to know (deferred writes, paused writes, skipped accounts)."""
