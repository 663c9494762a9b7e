"""A platform call that raises mid-batch: what landed is read back and recorded, nothing is lost or sent twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bidloop.core.clearance import Clearance
from bidloop.core.decisions import WriteResult
from bidloop.core.entities import AccountInfo, EntityRef, EntityState
from bidloop.core.errors import PlatformError
from bidloop.core.settings import Settings
from bidloop.core.snapshot import Snapshot
from bidloop.core.store import Store
from bidloop.graph.runner import resume_run, run_cycle
from bidloop.guardrails.audit import verify
from bidloop.tools.registry import ClientSet
from bidloop.tools.sim import SimClient, default_market


class HalfThenTimeout:
    """The simulated platform, except that the first batch lands only its first half and then times out."""

    def __init__(self, inner: SimClient, *, reads_fail: bool = False) -> None:
        self.inner, self.reads_fail, self.name = inner, reads_fail, inner.name
        self.failed_once = False
        self.sent: Counter[str] = Counter()

    def list_accounts(self) -> list[AccountInfo]:
        return self.inner.list_accounts()

    def read_snapshot(self, account_id: str) -> Snapshot:
        if self.reads_fail and self.failed_once:
            raise PlatformError("read timed out", platform="sim", account_id=account_id, retryable=True)
        return self.inner.read_snapshot(account_id)

    def read_back(self, account_id: str, refs: Sequence[EntityRef]) -> dict[str, EntityState]:
        if self.reads_fail and self.failed_once:
            raise PlatformError("read timed out", platform="sim", account_id=account_id, retryable=True)
        return self.inner.read_back(account_id, refs)

    def apply(self, account_id: str, clearances: Sequence[Clearance], *, validate_only: bool = False) -> list[Any]:
        if self.failed_once or validate_only or len(clearances) < 2:
            results: list[WriteResult] = self.inner.apply(account_id, clearances, validate_only=validate_only)
            self.sent.update(c.action.action_id for c in clearances if not validate_only)
            return results
        self.failed_once = True
        half = list(clearances)[: len(clearances) // 2]
        self.inner.apply(account_id, half)
        self.sent.update(c.action.action_id for c in half)
        raise PlatformError("the batch timed out", platform="sim", account_id=account_id, retryable=True)


def run_with(tmp_path: Path, client: HalfThenTimeout) -> tuple[Settings, Store, ClientSet]:
    settings = Settings(data_dir=tmp_path / "data", policy="heuristic")
    store = Store(settings.resolved_database_url)
    clients = ClientSet(clients=dict.fromkeys((a.id for a in settings.accounts), client))  # type: ignore[arg-type]
    return settings, store, clients


def test_the_landed_half_of_a_failed_batch_is_recorded_applied_and_the_rest_failed(tmp_path: Path) -> None:
    client = HalfThenTimeout(SimClient(default_market()))
    settings, store, clients = run_with(tmp_path, client)
    outcome = run_cycle(settings, mode="live", trigger="test", run_id="r-half", store=store, clients=clients)
    assert outcome.status == "completed" and client.failed_once
    ledger = {w.action_id: w for w in store.writes_of("r-half")}
    applied = {a for a, w in ledger.items() if w.status == "applied"}
    assert applied == set(client.sent), "the ledger calls applied exactly what reached the platform"
    read_back = [w for w in ledger.values() if "read-back shows the change live" in w.message]
    assert read_back, "some writes of the failed batch were settled by read-back"
    failed = [w for w in ledger.values() if w.status == "failed"]
    assert failed and all("timed out" in w.message for w in failed)
    assert verify(store).ok
    store.dispose()


def test_when_the_read_back_fails_too_the_run_fails_open_and_a_resume_settles_it(tmp_path: Path) -> None:
    client = HalfThenTimeout(SimClient(default_market()), reads_fail=True)
    settings, store, clients = run_with(tmp_path, client)
    with pytest.raises(PlatformError, match="the batch timed out"):
        run_cycle(settings, mode="live", trigger="test", run_id="r-open", store=store, clients=clients)
    assert store.get_run("r-open").status == "failed"
    assert {w.status for w in store.writes_of("r-open")} == {"intent"}, "uncertain writes stay open, not failed"

    client.reads_fail = False
    outcome = resume_run(settings, "r-open", store=store, clients=clients, actor="test")
    assert outcome.status == "completed"
    ledger = {w.action_id: w.status for w in store.writes_of("r-open")}
    assert "intent" not in ledger.values()
    assert {a: n for a, n in client.sent.items() if n != 1} == {}, "nothing reached the platform twice"
    assert {a for a, s in ledger.items() if s == "applied"} == set(client.sent)
    assert verify(store).ok
    store.dispose()
