"""Respect Meta's limit of 4 budget changes per ad set per hour before sending anything.

Meta answers a fifth change within an hour with error 17 and blocks that ad set's budget for an
hour. Sending it anyway wastes a call and can lock the ad set, so the client asks this tracker first
and hands the action back as deferred, with the time until a change is allowed again.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Callable

__all__ = ["BUDGET_CHANGES_PER_HOUR", "BudgetChangeTracker"]

BUDGET_CHANGES_PER_HOUR = 4
"""Meta's documented limit of budget changes per ad set per rolling hour."""

_WINDOW_S = 3600.0


class BudgetChangeTracker:
    """Count budget changes per ad set over a rolling hour (seconds from an injectable clock).

    One tracker may be shared by several clients of the same process (thread-safe). It only knows
    the changes this process made; Meta's own error 17 is still handled as a one-hour deferral.
    """

    def __init__(self, clock: Callable[[], float], *, limit_per_hour: int = BUDGET_CHANGES_PER_HOUR) -> None:
        self._clock = clock
        self._limit = limit_per_hour
        self._changes: dict[str, deque[float]] = defaultdict(deque)
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def _prune(self, entity_id: str, now: float) -> deque[float]:
        times = self._changes[entity_id]
        while times and times[0] <= now - _WINDOW_S:
            times.popleft()
        return times

    def wait_s(self, entity_id: str, *, pending: int = 0) -> float:
        """Return seconds until one more change is allowed, counting `pending` changes about to be sent.

        0.0 means a change may be sent now.
        """
        with self._lock:
            now = self._clock()
            locked = self._locked_until.get(entity_id, 0.0) - now
            times = self._prune(entity_id, now)
            used = len(times) + pending
            wait = 0.0
            if used >= self._limit:
                # The change that frees a slot is the (used - limit + 1)-th oldest; pending ones count as "now".
                stamps = sorted([*times, *([now] * pending)])
                wait = stamps[used - self._limit] + _WINDOW_S - now
            return max(wait, locked, 0.0)

    def record(self, entity_id: str) -> None:
        """Record one budget change that reached the platform (applied)."""
        with self._lock:
            now = self._clock()
            self._prune(entity_id, now).append(now)

    def lock(self, entity_id: str, seconds: float = _WINDOW_S) -> None:
        """Block changes to an ad set for `seconds` (Meta answered error 17 on a budget change)."""
        with self._lock:
            self._locked_until[entity_id] = max(self._locked_until.get(entity_id, 0.0), self._clock() + seconds)
