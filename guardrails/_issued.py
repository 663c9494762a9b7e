"""Remember which decisions this process's filter issued, so `gate` clears nothing else.

A `Decision` is a plain model anyone could build with `verdict="allowed"`; the gate only clears
decisions whose digest this process's `evaluate` recorded. A decision read back from a checkpoint in
another process is unknown here: the resumed run must run the filter again (values may have moved
while it waited), exactly as `bidloop.core.clearance` requires.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from bidloop.core.decisions import Decision

_MAX_REMEMBERED = 200_000
_lock = threading.Lock()
_issued: OrderedDict[tuple[str, str, str, int], None] = OrderedDict()


def digest(decision: Decision) -> tuple[str, str, str, int]:
    """Return a key of what the gate acts on: action id, verdict, rule and the final action's value hash.

    Actions are frozen models, so their hash covers every field; an edited copy hashes differently.
    """
    return (decision.action_id, decision.verdict.value, decision.rule_id, hash(decision.final_action))


def remember(decision: Decision) -> None:
    """Record a decision as issued by the filter (oldest forgotten beyond 200,000)."""
    key = digest(decision)
    with _lock:
        _issued[key] = None
        _issued.move_to_end(key)
        while len(_issued) > _MAX_REMEMBERED:
            _issued.popitem(last=False)


def was_issued(decision: Decision) -> bool:
    """Return True if this process's filter issued exactly this decision."""
    key = digest(decision)
    with _lock:
        return key in _issued
