"""bidloop.guardrails: the safe-action filter, its gate to the platforms, and everything around them.

    decisions = evaluate(actions, snapshots, settings.guardrails, context=FilterContext(...))
    clearances = gate(decisions, approved={...}, store=store)   # right before each batch is sent

Also here: the kill switch (`pause_all`, `resume_all`, `writes_paused`), the hash-chained audit log
(`bidloop.guardrails.audit`), approvals (`bidloop.guardrails.approvals`), rollback plans
(`plan_rollback`) and the brand-safety text check (`scan_text`).
"""

from __future__ import annotations

from bidloop.guardrails.approvals import (
    ApprovalFeedback,
    approval_answers,
    approval_feedback,
    approve,
    create_pending,
    list_approvals,
    reject,
)
from bidloop.guardrails.audit import AuditVerification, append, append_many, show, verify
from bidloop.guardrails.brand_safety import BrandSafetyFinding, scan_text
from bidloop.guardrails.filter import FilterContext, evaluate, history_from_ledger
from bidloop.guardrails.gate import gate, issued_by_this_process
from bidloop.guardrails.kill_switch import ensure_writes_allowed, pause_all, resume_all, writes_paused
from bidloop.guardrails.rollback import RollbackPlan, RollbackSkip, plan_rollback

__all__ = [
    "ApprovalFeedback",
    "AuditVerification",
    "BrandSafetyFinding",
    "FilterContext",
    "RollbackPlan",
    "RollbackSkip",
    "append",
    "append_many",
    "approval_answers",
    "approval_feedback",
    "approve",
    "create_pending",
    "ensure_writes_allowed",
    "evaluate",
    "gate",
    "history_from_ledger",
    "issued_by_this_process",
    "list_approvals",
    "pause_all",
    "plan_rollback",
    "reject",
    "resume_all",
    "scan_text",
    "show",
    "verify",
    "writes_paused",
]
