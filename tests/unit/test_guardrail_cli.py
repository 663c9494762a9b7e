"""The operator's controls from the command line: rollback, approvals, the kill switch and the audit log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from bidloop.cli.main import main
from bidloop.core.entities import EntityKind
from bidloop.core.settings import load_settings
from bidloop.core.store import Store
from bidloop.tools.registry import load_sim_market
from bidloop.tools.sim import SimClient


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BIDLOOP_CONFIG", raising=False)
    return tmp_path


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def money_settings() -> dict[str, tuple[int | None, int | None, str]]:
    settings = load_settings()
    market = load_sim_market(settings, Store(settings.resolved_database_url))
    client = SimClient(market)
    values = {}
    for account in ("sim-google", "sim-meta", "sim-amazon"):
        for e in client.read_snapshot(account).entities:
            if e.ref.kind is not EntityKind.SEARCH_TERM:
                values[e.ref.key] = (e.daily_budget_micros, e.cpc_bid_micros, e.status.value)
    return values


def test_rollback_restores_every_changed_value_exactly(workdir: Path, capsys) -> None:
    before = money_settings()
    run = cli_json(capsys, "run", "--json")
    changed = {line["entity"] for line in run["actions"] if line["outcome"] == "applied"}
    assert changed
    result = cli_json(capsys, "rollback", run["run_id"], "--json")
    assert result["restoring_actions"] > 0 and result["report"]["verdicts"].keys() <= {"allowed"}
    after = money_settings()
    for key in before:  # new keywords stay (reported as skipped); every existing value is back
        assert after[key] == before[key], key
    assert all("keyword" in s["reason"] or s["reason"] for s in result["skipped"])


def test_rollback_dry_run_changes_nothing(workdir: Path, capsys) -> None:
    run = cli_json(capsys, "run", "--json")
    mid = money_settings()
    result = cli_json(capsys, "rollback", run["run_id"], "--dry-run", "--json")
    assert result["restoring_actions"] > 0
    assert money_settings() == mid


def test_kill_switch_stops_every_write_until_resumed(workdir: Path, capsys) -> None:
    assert main(["pause-all", "--reason", "incident"]) == 0
    before = money_settings() if (workdir / ".bidloop").exists() else None
    paused = cli_json(capsys, "run", "--json")
    assert paused["outcomes"].keys() <= {"skipped"} and paused["outcomes"]
    if before is not None:
        assert money_settings() == before
    assert main(["resume-all"]) == 0
    resumed = cli_json(capsys, "run", "--json")
    assert resumed["outcomes"].get("applied", 0) > 0


def test_approve_from_the_cli_resumes_the_run(workdir: Path, capsys) -> None:
    (workdir / "bidloop.yaml").write_text("guardrails:\n  approval_above_micros: 1\n", encoding="utf-8")
    assert main(["run"]) == 0
    pending = cli_json(capsys, "approvals", "list", "--json")
    assert pending
    for item in pending[:-1]:
        assert main(["approvals", "approve", item["approval_id"], "--by", "ana", "--no-resume"]) == 0
    assert main(["approvals", "reject", pending[-1]["approval_id"], "--by", "ana", "--reason", "too much"]) == 0
    store = Store(load_settings().resolved_database_url)
    run = store.get_run(pending[0]["run_id"])
    assert run.status == "completed"
    rejected = [t for t in store.trajectories() if t.action_id == pending[-1]["approval_id"]]
    assert rejected and rejected[0].reward is not None and rejected[0].reward < 0
    assert rejected[0].feedback and rejected[0].feedback["reason"] == "too much"
    assert cli_json(capsys, "approvals", "list", "--json") == []


def test_audit_verify_fails_on_an_edited_record(workdir: Path, capsys) -> None:
    assert main(["run", "--dry-run"]) == 0
    assert cli_json(capsys, "audit", "verify", "--json")["ok"] is True
    store = Store(load_settings().resolved_database_url)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"))
    capsys.readouterr()
    assert main(["audit", "verify", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["first_bad_seq"] == 2
