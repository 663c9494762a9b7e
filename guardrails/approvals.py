"""Hold actions that need a person's approval, record the person's decision, and turn it into feedback.

A `needs_approval` decision becomes a pending `ApprovalRow` (id = the action id). `approve` and
`reject` record who decided, when and why (a rejection needs a reason), in the approvals table and
in the audit log. `approval_answers` gives the `{action_id: bool}` map a paused run resumes with;
`approval_feedback` gives the labelled feedback stored beside the trajectory and the reward penalty a
rejection carries into the training data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from bidloop.core.decisions import Decision, Verdict
from bidloop.core.errors import InputError
from bidloop.core.store import ApprovalRow, Store, utcnow
from bidloop.guardrails.audit import append, append_many

__all__ = [
    "DEFAULT_REJECTION_PENALTY",
    "ApprovalFeedback",
    "approval_answers",
    "approval_feedback",
    "approve",
    "create_pending",
    "list_approvals",
    "reject",
]

DEFAULT_REJECTION_PENALTY = -1.0
"""Reward added to a rejected action's trajectory: an operator's "no" is a negative outcome."""

_STATUSES = ("pending", "approved", "rejected")


@dataclass(frozen=True)
class ApprovalFeedback:
    """A person's decision as training data.

    Attributes:
        feedback: The labelled feedback for `TrajectoryRow.feedback`.
        reward_penalty: Added to the action's reward (negative for a rejection, 0 for an approval).
    """

    feedback: dict[str, Any]
    reward_penalty: float


def create_pending(store: Store, run_id: str, decisions: Sequence[Decision], *, actor: str) -> list[str]:
    """Create a pending approval for each `needs_approval` decision (existing ones stay as they are).

    Returns:
        The approval ids (the action ids) now waiting or already decided, in order.
    """
    pending = [d for d in decisions if d.verdict is Verdict.NEEDS_APPROVAL]
    if not pending:
        return []
    store.add_pending_approvals(
        run_id, [{"action_id": d.action_id, "payload": d.model_dump(mode="json")} for d in pending]
    )
    append_many(
        store,
        [
            {
                "kind": "approval_requested",
                "actor": actor,
                "run_id": run_id,
                "payload": {"action_id": d.action_id, "rule_id": d.rule_id, "message": d.message},
            }
            for d in pending
        ],
    )
    return [d.action_id for d in pending]


def list_approvals(store: Store, *, status: str | None = "pending", run_id: str | None = None) -> list[ApprovalRow]:
    """Return approvals, oldest first, filtered by status (None: all) and run.

    Raises:
        InputError: If `status` is not `pending`, `approved`, `rejected` or None.
    """
    if status is not None and status not in _STATUSES:
        raise InputError(f"unknown approval status {status!r}", hint=f"use one of: {', '.join(_STATUSES)}")
    with store.session() as s:
        q = select(ApprovalRow)
        if status is not None:
            q = q.where(ApprovalRow.status == status)
        if run_id is not None:
            q = q.where(ApprovalRow.run_id == run_id)
        return list(s.scalars(q.order_by(ApprovalRow.created_at, ApprovalRow.approval_id)))


def _decide(store: Store, approval_id: str, *, approved: bool, by: str, reason: str | None) -> ApprovalRow:
    if not by or not by.strip():
        raise InputError("say who decides", hint="pass --by NAME (or set $USER)")
    with store.session() as s:
        row = s.get(ApprovalRow, approval_id)
        if row is None:
            matches = list(
                s.scalars(select(ApprovalRow).where(ApprovalRow.approval_id.like(f"{approval_id}%")).limit(2))
            )
            if len(matches) != 1:
                raise InputError(
                    f"no approval {approval_id!r}" + (" (the prefix is ambiguous)" if matches else ""),
                    hint="`bidloop approvals list` shows the pending ones",
                )
            row = matches[0]
        if row.status != "pending":
            raise InputError(
                f"approval {row.approval_id} was already {row.status} by {row.decided_by}",
                hint="a decision is final; propose the action again to ask anew",
            )
        row.status = "approved" if approved else "rejected"
        row.reason = reason
        row.decided_by = by
        row.decided_at = utcnow()
        s.flush()
        s.expunge(row)
    append(
        store,
        kind="approval",
        actor=f"approval:{by}",
        run_id=row.run_id,
        payload={"approval_id": row.approval_id, "action_id": row.action_id, "status": row.status, "reason": reason},
    )
    return row


def approve(store: Store, approval_id: str, *, by: str, reason: str | None = None) -> ApprovalRow:
    """Approve a pending action (a unique prefix of its id is enough).

    Raises:
        InputError: If no pending approval matches, or it was already decided.
    """
    return _decide(store, approval_id, approved=True, by=by, reason=reason)


def reject(store: Store, approval_id: str, *, by: str, reason: str) -> ApprovalRow:
    """Reject a pending action; the reason is required (it becomes labelled feedback).

    Raises:
        InputError: If the reason is empty, no pending approval matches, or it was already decided.
    """
    if not reason or not reason.strip():
        raise InputError("a rejection needs a reason", hint="pass --reason '...': it teaches the policy why")
    return _decide(store, approval_id, approved=False, by=by, reason=reason)


def approval_answers(store: Store, run_id: str) -> dict[str, bool]:
    """Return `{action_id: approved?}` for a run's decided approvals (pending ones are left out)."""
    return {
        row.action_id: row.status == "approved"
        for row in list_approvals(store, status=None, run_id=run_id)
        if row.status != "pending"
    }


def approval_feedback(row: ApprovalRow, *, rejection_penalty: float = DEFAULT_REJECTION_PENALTY) -> ApprovalFeedback:
    """Return a decided approval as labelled feedback and its reward penalty.

    Raises:
        InputError: If the approval is still pending.
    """
    if row.status not in ("approved", "rejected"):
        raise InputError(f"approval {row.approval_id} is still pending; there is no feedback yet")
    feedback = {
        "label": row.status,
        "reason": row.reason,
        "decided_by": row.decided_by,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "approval_id": row.approval_id,
        "rule_id": (row.payload or {}).get("rule_id"),
    }
    return ApprovalFeedback(feedback=feedback, reward_penalty=rejection_penalty if row.status == "rejected" else 0.0)
