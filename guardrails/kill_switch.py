"""Stop every platform write at once, and start them again: the kill switch.

The switch lives in the database (`controls` table, key `writes_paused`), so `bidloop pause-all` in
one process stops writes in every other process, including runs already under way: `gate` reads the
switch each time it is called, and the apply step calls `gate` (or `ensure_writes_allowed`) right
before each batch it sends.
"""

from __future__ import annotations

from bidloop.core.errors import WritesPausedError
from bidloop.core.store import Store
from bidloop.guardrails.audit import append

__all__ = ["WRITES_PAUSED_KEY", "ensure_writes_allowed", "pause_all", "resume_all", "writes_paused"]

WRITES_PAUSED_KEY = "writes_paused"
_ON = "1"
_OFF = "0"


def pause_all(store: Store, by: str, reason: str) -> None:
    """Turn the kill switch on: from now on no write reaches any platform until `resume_all`.

    Args:
        store: The shared database.
        by: Who pulled the switch (a person's name, `cli`, ...).
        reason: Why, for the audit log.
    """
    store.set_control(WRITES_PAUSED_KEY, _ON, by=by)
    _audit(store, kind="kill_switch", actor=by, payload={"writes_paused": True, "reason": reason})


def resume_all(store: Store, by: str, reason: str = "") -> None:
    """Turn the kill switch off: writes may go out again (each still through the filter)."""
    store.set_control(WRITES_PAUSED_KEY, _OFF, by=by)
    _audit(store, kind="kill_switch", actor=by, payload={"writes_paused": False, "reason": reason})


def writes_paused(store: Store) -> bool:
    """Return True if the kill switch is on.

    Fails closed: a value other than the two the switch writes reads as paused. A database that
    cannot be read raises `StoreError` (callers must not treat that as "not paused").
    """
    value = store.get_control(WRITES_PAUSED_KEY)
    return value is not None and value != _OFF


def ensure_writes_allowed(store: Store | None = None, *, paused: bool | None = None) -> None:
    """Raise if writes are paused, by the store's switch or the given flag.

    Raises:
        WritesPausedError: If the kill switch is on.
        StoreError: If the switch cannot be read.
    """
    if paused or (store is not None and writes_paused(store)):
        raise WritesPausedError(
            "writes are paused by the kill switch: nothing is sent to any platform",
            hint="run `bidloop resume-all` when it is safe to write again",
        )


def _audit(store: Store, *, kind: str, actor: str, payload: dict[str, object]) -> None:
    append(store, kind=kind, actor=actor, run_id=None, payload=payload)
