"""Prove that an action passed the safe-action filter before any client may send it.

The guardrails issue a `Clearance` for each action they let through (allowed, clipped, or approved
by a person). Every platform client's write path calls `verify_clearance` first and refuses
anything else, so there is exactly one path from a proposed action to a platform write.

The seal is an HMAC of the action's canonical JSON with a key that lives only in this process, so a
clearance cannot be built by hand, edited after issue, or carried over from another process: a
resumed run asks the filter again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from pydantic import BaseModel, ConfigDict

from bidloop.core.actions import ACTION_ADAPTER, Action
from bidloop.core.errors import UnfilteredActionError

__all__ = ["Clearance", "verify_clearance"]

_PROCESS_KEY = secrets.token_bytes(32)


def _seal(action: Action, verdict: str, rule_id: str) -> str:
    payload = ACTION_ADAPTER.dump_json(action) + b"|" + verdict.encode() + b"|" + rule_id.encode()
    return hmac.new(_PROCESS_KEY, payload, hashlib.sha256).hexdigest()


class Clearance(BaseModel):
    """An action the filter let through, sealed so it cannot be forged or altered.

    Build one only through `bidloop.guardrails` (its gate calls `_issue_clearance`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Action
    verdict: str
    rule_id: str
    seal: str


def _issue_clearance(action: Action, *, verdict: str, rule_id: str) -> Clearance:
    """Seal an action as cleared. Private to the guardrails: nothing else may call this."""
    return Clearance(action=action, verdict=verdict, rule_id=rule_id, seal=_seal(action, verdict, rule_id))


def verify_clearance(clearance: object) -> Action:
    """Return the cleared action, or raise if it did not come from the filter.

    Raises:
        UnfilteredActionError: If `clearance` is not a `Clearance` or its seal does not match.
    """
    if not isinstance(clearance, Clearance):
        raise UnfilteredActionError(
            f"refusing to write {type(clearance).__name__}: only actions cleared by the guardrails may be sent",
            hint="pass actions through bidloop.guardrails.gate() first",
        )
    expected = _seal(clearance.action, clearance.verdict, clearance.rule_id)
    if not hmac.compare_digest(expected, clearance.seal):
        raise UnfilteredActionError(
            f"refusing to write action {clearance.action.action_id}: its clearance seal does not match",
            hint="the action was edited after the filter cleared it, or the clearance came from another process",
        )
    return clearance.action
