"""Turn the filter's decisions into sealed clearances: the only way an action reaches a platform.

`gate` clears `allowed` and `clipped` decisions, and `needs_approval` ones a person approved. It
refuses decisions this process's filter did not issue, and refuses everything while the kill switch
is on; call it right before each batch is sent so a `bidloop pause-all` stops a run already under way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bidloop.core.clearance import Clearance, _issue_clearance
from bidloop.core.decisions import Decision, Verdict
from bidloop.core.errors import UnfilteredActionError
from bidloop.core.store import Store
from bidloop.guardrails import _issued
from bidloop.guardrails.kill_switch import ensure_writes_allowed

__all__ = ["gate", "issued_by_this_process"]


def issued_by_this_process(decisions: Sequence[Decision]) -> bool:
    """Return True if every decision that `gate` would clear came from this process's `evaluate`.

    False after a resume in another process (decisions read from a checkpoint): run `evaluate` again
    on fresh snapshots before calling `gate`.
    """
    return all(
        _issued.was_issued(d) for d in decisions if d.final_action is not None and d.verdict is not Verdict.BLOCKED
    )


def gate(
    decisions: Sequence[Decision],
    *,
    approved: Mapping[str, bool] | None = None,
    store: Store | None = None,
    paused: bool | None = None,
) -> list[Clearance]:
    """Return clearances for the decisions that may be applied, in the order given.

    Args:
        decisions: Decisions from `evaluate` in this process.
        approved: Action id -> True for `needs_approval` decisions a person approved.
        store: The database; when given, its kill switch is read now.
        paused: The kill switch's state if the caller already read it (True refuses everything).

    Returns:
        One clearance per allowed or clipped decision, and per approved `needs_approval` one.
        Blocked and unapproved decisions are left out.

    Raises:
        WritesPausedError: If the kill switch is on (nothing is cleared).
        UnfilteredActionError: If a decision that would be cleared was not issued by this
            process's filter (built by hand, edited, or read from another process's checkpoint:
            run `evaluate` again on fresh snapshots).
    """
    ensure_writes_allowed(store, paused=paused)
    approved = approved or {}
    clearances: list[Clearance] = []
    for decision in decisions:
        if decision.final_action is None:
            continue
        if decision.verdict in (Verdict.ALLOWED, Verdict.CLIPPED):
            verdict = decision.verdict.value
        elif decision.verdict is Verdict.NEEDS_APPROVAL and approved.get(decision.action_id) is True:
            verdict = "approved"
        else:
            continue
        if decision.final_action.action_id != decision.action_id or not _issued.was_issued(decision):
            raise UnfilteredActionError(
                f"decision on action {decision.action_id} was not issued by this process's filter",
                hint="run bidloop.guardrails.evaluate() on fresh snapshots and gate its decisions",
            )
        clearances.append(_issue_clearance(decision.final_action, verdict=verdict, rule_id=decision.rule_id))
    return clearances
