"""Record the guardrails' verdict on each action, and the outcome of each platform write."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from bidloop.core.actions import Action

__all__ = ["Decision", "Verdict", "WriteResult", "WriteStatus"]


class Verdict(StrEnum):
    """What the safe-action filter decided."""

    ALLOWED = "allowed"
    CLIPPED = "clipped"
    NEEDS_APPROVAL = "needs_approval"
    BLOCKED = "blocked"


class Decision(BaseModel):
    """The filter's verdict on one action.

    Attributes:
        action_id: The action judged.
        verdict: Allowed, clipped (see `final_action`), needs approval, or blocked.
        rule_id: The rule that decided (for `allowed`, the last rule checked: `all_checks_passed`).
        message: One sentence a person understands.
        final_action: What may be applied: the action itself, or its clipped copy. None if blocked.
        checks_passed: The rule ids the action passed, in order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    action_id: str
    verdict: Verdict
    rule_id: str
    message: str
    final_action: Action | None = None
    checks_passed: list[str] = Field(default_factory=list)

    @property
    def may_apply(self) -> bool:
        """Return True if the verdict lets the action through without a person's approval."""
        return self.verdict in (Verdict.ALLOWED, Verdict.CLIPPED) and self.final_action is not None


class WriteStatus(StrEnum):
    """What happened when an action was sent to a platform."""

    APPLIED = "applied"
    VALIDATED = "validated"
    """Dry run: the platform checked the write (or nothing was sent) and nothing changed."""
    FAILED = "failed"
    DEFERRED = "deferred"
    """The platform asked us to wait long (quota, Meta's budget lock); retry in a later run."""
    SKIPPED = "skipped"
    """Not sent: already at target (read-back), or writes paused."""


class WriteResult(BaseModel):
    """The outcome of one action at one platform."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action_id: str
    status: WriteStatus
    message: str = ""
    retryable: bool = False
    retry_after_s: float | None = None
    read_back: str | None = None
    """The value read from the platform after the write, as text (e.g. `"7500000"`, `"paused"`)."""
    attempts: int = 1
