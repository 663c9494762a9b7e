"""Hold a lease per account in the database while a run works on it, so no two runs touch one account at once.

The lease is a row in `account_locks` (see `Store.try_lock_accounts`): it works across processes and
machines that share the database, and it expires `ttl_s` seconds after its last renewal, so a holder
that dies (`kill -9`, power loss) frees its accounts by itself. While a run is under way a daemon thread
renews the lease every `ttl_s / 3` seconds.

    with hold_accounts(store, ["sim-meta"], run_id=run_id) as lease:
        run_cycle(...)                 # raises AccountsLockedError before the block if another run holds one

The lease clock is the database server's on PostgreSQL (one clock for every machine) and the host's on
SQLite (a SQLite file is only shared by processes of one host).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from bidloop.core.errors import BidloopError, RunError
from bidloop.core.store import AccountLockRow, Store

__all__ = ["DEFAULT_LEASE_TTL_S", "AccountLease", "AccountsLockedError", "hold_accounts", "new_holder_id"]

DEFAULT_LEASE_TTL_S = 120.0
"""Seconds a lease outlives its last renewal: how long a dead holder keeps its accounts."""

_log = logging.getLogger(__name__)


class AccountsLockedError(RunError):
    """Another run holds the lease on one or more of the run's accounts.

    Attributes:
        locks: The leases held by others (account id, holder, run id, expiry).
    """

    def __init__(self, locks: Sequence[AccountLockRow]) -> None:
        held = ", ".join(
            f"{lk.account_id} (run {lk.run_id or '?'} on {lk.holder}, until {lk.expires_at:%H:%M:%S} UTC)"
            for lk in locks
        )
        super().__init__(
            f"account(s) locked by another run: {held}",
            hint="wait for that run to finish; a lease whose holder died expires by itself",
        )
        self.locks = list(locks)


def new_holder_id() -> str:
    """Return an id for this process's leases: `host:pid:random` (at most 128 characters)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass
class AccountLease:
    """A held lease on some accounts, renewed in the background until `release`.

    Attributes:
        store: The database holding the lease rows.
        account_ids: The leased accounts.
        holder: This holder's id.
        run_id: The run the lease is for.
        ttl_s: Seconds the lease outlives its last renewal.
        lost: Accounts whose lease was lost (renewal found another holder, or the database was unreachable
            until the lease expired); empty while all is well.
    """

    store: Store
    account_ids: list[str]
    holder: str
    run_id: str | None
    ttl_s: float = DEFAULT_LEASE_TTL_S
    lost: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @classmethod
    def acquire(
        cls,
        store: Store,
        account_ids: Sequence[str],
        *,
        run_id: str | None,
        holder: str | None = None,
        ttl_s: float = DEFAULT_LEASE_TTL_S,
        renew: bool = True,
    ) -> AccountLease:
        """Take the lease on every account (all or none) and start renewing it.

        Raises:
            AccountsLockedError: If another live holder has any of the accounts (nothing is taken then).
            StoreError: If the database is unreachable.
        """
        who = holder or new_holder_id()
        conflicts = store.try_lock_accounts(account_ids, holder=who, run_id=run_id, ttl_s=ttl_s)
        if conflicts:
            raise AccountsLockedError(conflicts)
        lease = cls(store=store, account_ids=sorted(set(account_ids)), holder=who, run_id=run_id, ttl_s=ttl_s)
        if renew:
            lease._thread = threading.Thread(target=lease._renew_loop, name=f"lease-{run_id}", daemon=True)
            lease._thread.start()
        return lease

    def renew(self) -> list[str]:
        """Extend the lease now; return the accounts still held (records any lost ones in `lost`)."""
        held = self.store.renew_account_locks(self.account_ids, holder=self.holder, ttl_s=self.ttl_s)
        missing = [a for a in self.account_ids if a not in held and a not in self.lost]
        if missing:
            self.lost.extend(missing)
            _log.error("lease on %s lost by %s (run %s)", ", ".join(missing), self.holder, self.run_id)
        return held

    def _renew_loop(self) -> None:
        interval = max(self.ttl_s / 3.0, 0.05)
        while not self._stop.wait(interval):
            try:
                self.renew()
            except BidloopError as exc:
                # The database may be briefly unreachable; the lease survives until ttl_s, so try again.
                _log.warning("could not renew the lease for run %s: %s", self.run_id, exc)

    def release(self) -> None:
        """Stop renewing and give the accounts back (safe to call twice)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.ttl_s)
        self.store.release_account_locks(self.account_ids, holder=self.holder)


@contextmanager
def hold_accounts(
    store: Store,
    account_ids: Sequence[str],
    *,
    run_id: str | None,
    holder: str | None = None,
    ttl_s: float = DEFAULT_LEASE_TTL_S,
) -> Iterator[AccountLease]:
    """Hold the lease on every account for the duration of the block, then release it.

    Raises:
        AccountsLockedError: If another live holder has any of the accounts (the block does not run).
    """
    lease = AccountLease.acquire(store, account_ids, run_id=run_id, holder=holder, ttl_s=ttl_s)
    try:
        yield lease
    finally:
        lease.release()
