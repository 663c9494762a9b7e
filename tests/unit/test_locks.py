"""Account leases: one holder per account across processes, all-or-nothing, renewed while alive, expire when dead."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta

import pytest

from bidloop.core.store import Store
from bidloop.graph.locks import AccountLease, AccountsLockedError, hold_accounts

T0 = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)


def holders(store: Store) -> dict[str, str]:
    return {lk.account_id: lk.holder for lk in store.account_locks()}


def test_a_free_account_is_leased_and_a_second_holder_is_refused(store: Store) -> None:
    assert store.try_lock_accounts(["a"], holder="h1", run_id="r1", ttl_s=60, now=T0) == []
    conflicts = store.try_lock_accounts(["a"], holder="h2", run_id="r2", ttl_s=60, now=T0 + timedelta(seconds=30))
    assert [(c.account_id, c.holder, c.run_id) for c in conflicts] == [("a", "h1", "r1")]
    assert holders(store) == {"a": "h1"}


def test_leasing_is_all_or_nothing_when_one_account_of_the_group_is_held(store: Store) -> None:
    store.try_lock_accounts(["b"], holder="h1", run_id="r1", ttl_s=60, now=T0)
    conflicts = store.try_lock_accounts(["a", "b", "c"], holder="h2", run_id="r2", ttl_s=60, now=T0)
    assert [c.account_id for c in conflicts] == ["b"]
    assert holders(store) == {"b": "h1"}  # a and c were not taken


def test_an_expired_lease_can_be_taken_over(store: Store) -> None:
    store.try_lock_accounts(["a"], holder="dead", run_id="r1", ttl_s=60, now=T0)
    later = T0 + timedelta(seconds=61)
    assert store.try_lock_accounts(["a"], holder="h2", run_id="r2", ttl_s=60, now=later) == []
    assert holders(store) == {"a": "h2"}


def test_the_holder_may_re_enter_and_renew_its_own_lease(store: Store) -> None:
    store.try_lock_accounts(["a"], holder="h1", run_id="r1", ttl_s=60, now=T0)
    assert store.try_lock_accounts(["a"], holder="h1", run_id="r1", ttl_s=60, now=T0 + timedelta(seconds=50)) == []
    assert store.renew_account_locks(["a"], holder="h1", ttl_s=60, now=T0 + timedelta(seconds=100)) == ["a"]
    # Renewed at t+100 for 60 s: still held at t+150 against another holder.
    assert store.try_lock_accounts(["a"], holder="h2", run_id="r2", ttl_s=60, now=T0 + timedelta(seconds=150))


def test_renewal_by_a_holder_that_lost_the_lease_reports_it_lost(store: Store) -> None:
    store.try_lock_accounts(["a"], holder="h1", run_id="r1", ttl_s=60, now=T0)
    store.try_lock_accounts(["a"], holder="h2", run_id="r2", ttl_s=60, now=T0 + timedelta(seconds=61))
    assert store.renew_account_locks(["a"], holder="h1", ttl_s=60, now=T0 + timedelta(seconds=62)) == []
    assert holders(store) == {"a": "h2"}


def test_release_frees_only_the_callers_leases(store: Store) -> None:
    store.try_lock_accounts(["a"], holder="h1", run_id="r1", ttl_s=60, now=T0)
    store.try_lock_accounts(["b"], holder="h2", run_id="r2", ttl_s=60, now=T0)
    store.release_account_locks(["a", "b"], holder="h1")
    assert holders(store) == {"b": "h2"}


def test_hold_accounts_raises_a_readable_error_and_releases_on_exit(store: Store) -> None:
    expected = r"account\(s\) locked by another run: b \(run r1 on h1"
    with hold_accounts(store, ["a", "b"], run_id="r1", holder="h1"), pytest.raises(AccountsLockedError, match=expected):
        AccountLease.acquire(store, ["b"], run_id="r2", holder="h2")
    assert holders(store) == {}


def test_a_running_lease_is_renewed_in_the_background_beyond_its_ttl(store: Store) -> None:
    with hold_accounts(store, ["a"], run_id="r1", holder="h1", ttl_s=0.6) as lease:
        time.sleep(1.5)
        with pytest.raises(AccountsLockedError):
            AccountLease.acquire(store, ["a"], run_id="r2", holder="h2", ttl_s=0.6)
        assert lease.lost == []


def test_a_holder_that_notices_its_lease_was_taken_records_it_as_lost(store: Store) -> None:
    lease = AccountLease.acquire(store, ["a"], run_id="r1", holder="h1", ttl_s=60, renew=False)
    store.release_account_locks(["a"], holder="h1")
    store.try_lock_accounts(["a"], holder="h2", run_id="r2", ttl_s=60)
    assert lease.renew() == []
    assert lease.lost == ["a"]
    lease.release()
    assert holders(store) == {"a": "h2"}


_HOLD_FOREVER = textwrap.dedent(
    """
    import sys, time
    from bidloop.core.store import Store
    from bidloop.graph.locks import AccountLease
    store = Store(sys.argv[1])
    AccountLease.acquire(store, ["a"], run_id="doomed", holder="child", ttl_s=float(sys.argv[2]))
    print("held", flush=True)
    time.sleep(600)
    """
)


def test_a_lease_whose_process_was_killed_expires_and_another_process_takes_the_account(database_url: str) -> None:
    store = Store(database_url)
    ttl_s = 2.0
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLD_FOREVER, database_url, str(ttl_s)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(AccountsLockedError):
            AccountLease.acquire(store, ["a"], run_id="r2", holder="parent", renew=False)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        deadline = time.monotonic() + ttl_s * 5
        while True:
            try:
                lease = AccountLease.acquire(store, ["a"], run_id="r2", holder="parent", renew=False)
                break
            except AccountsLockedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert holders(store) == {"a": "parent"}
        lease.release()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
        store.dispose()
