"""An account whose platform contradicts bidloop.yaml is stopped; the others run; the error is shown."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bidloop.cli.main import main
from bidloop.core.clearance import Clearance
from bidloop.core.entities import AccountInfo, EntityRef, EntityState
from bidloop.core.errors import AccountMismatchError
from bidloop.core.settings import Settings
from bidloop.core.snapshot import Snapshot
from bidloop.core.store import Store
from bidloop.graph.runner import run_cycle
from bidloop.tools.registry import ClientSet
from bidloop.tools.sim import SimClient, default_market


class Mismatched:
    """A client whose account reports another currency than bidloop.yaml's."""

    name = "meta"

    def list_accounts(self) -> list[AccountInfo]:
        return []

    def read_snapshot(self, account_id: str) -> Snapshot:
        raise AccountMismatchError(account_id, "currency", "USD", "EUR", platform="meta")

    def read_back(self, account_id: str, refs: Sequence[EntityRef]) -> dict[str, EntityState]:
        raise AssertionError("a stopped account is never read back")

    def apply(self, account_id: str, clearances: Sequence[Clearance], *, validate_only: bool = False) -> list[Any]:
        raise AssertionError("a stopped account gets no actions")


class Noting:
    """The simulated platform, with a note on every read (as Amazon notes incomplete days)."""

    def __init__(self, inner: SimClient) -> None:
        self.inner, self.name = inner, inner.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def read_snapshot(self, account_id: str) -> Snapshot:
        snap = self.inner.read_snapshot(account_id)
        return snap.model_copy(update={"notes": ["today's data is incomplete up to 09:00"]})


def clients() -> ClientSet:
    sim = SimClient(default_market())
    return ClientSet(clients={"sim-google": sim, "sim-meta": Mismatched(), "sim-amazon": Noting(sim)})  # type: ignore[dict-item]


def test_a_mismatched_account_is_stopped_and_the_others_run(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", policy="heuristic")
    store = Store(settings.resolved_database_url)
    outcome = run_cycle(settings, mode="dry-run", trigger="test", run_id="r1", store=store, clients=clients())
    assert outcome.status == "completed"
    assert set(outcome.account_errors) == {"sim-meta"}
    error = outcome.account_errors["sim-meta"]
    assert error.code == "ACCOUNT_MISMATCH" and "'USD'" in error.message and "'EUR'" in error.message
    assert error.hint is not None and "currency: EUR" in error.hint
    assert outcome.state["observed_accounts"] == ["sim-google", "sim-amazon"]
    assert all(a.entity.account_id != "sim-meta" for a in outcome.state.get("proposals", []))
    assert outcome.report is not None
    stopped = [n for n in outcome.report.notes if n.startswith("sim-meta:")]
    assert stopped and "'EUR'" in stopped[0] and "currency: EUR" in stopped[0]
    assert "sim-amazon: today's data is incomplete up to 09:00" in outcome.report.notes
    row = store.get_run("r1")
    assert row.status == "completed" and row.error is not None and "sim-meta: [ACCOUNT_MISMATCH]" in row.error
    store.dispose()


def test_the_cli_prints_the_stopped_account_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BIDLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BIDLOOP_POLICY", "heuristic")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("bidloop.graph.runner.build_clients", lambda *_a, **_k: clients())
    assert main(["run", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "account sim-meta was stopped" in err and "'EUR'" in err and "currency: EUR" in err


def test_a_run_where_every_account_ran_records_no_error(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", policy="heuristic")
    store = Store(settings.resolved_database_url)
    sim = SimClient(default_market())
    everyone = ClientSet(clients=dict.fromkeys(("sim-google", "sim-meta", "sim-amazon"), sim))  # type: ignore[arg-type]
    outcome = run_cycle(settings, mode="dry-run", trigger="test", run_id="r2", store=store, clients=everyone)
    assert outcome.account_errors == {} and store.get_run("r2").error is None
    store.dispose()
