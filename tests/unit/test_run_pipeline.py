"""One full run through the LangGraph workflow and the `bidloop` command, on the simulated market."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bidloop.cli.main import main
from bidloop.core.settings import load_settings
from bidloop.core.store import Store
from bidloop.graph.app import graph as studio_graph
from bidloop.graph.builder import NODE_ORDER
from bidloop.graph.runner import run_cycle
from bidloop.guardrails.audit import verify
from bidloop.tools.registry import SIM_MARKET_NAME


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BIDLOOP_CONFIG", raising=False)
    return tmp_path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    capsys.readouterr()
    assert main(list(argv)) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out)


def test_run_json_shows_every_agent_and_a_verdict_for_each_action(workdir: Path, capsys) -> None:
    report = run_json(capsys, "run", "--dry-run", "--json")
    assert set(report["proposed_by_agent"]) == {"keyword_insight", "bid_shifter", "creative_rotation"}
    assert {a["account_id"] for a in report["accounts"]} == {"sim-google", "sim-meta", "sim-amazon"}
    assert all(line["verdict"] in ("allowed", "clipped", "needs_approval", "blocked") for line in report["actions"])
    assert all(line["rule_id"] for line in report["actions"])
    assert report["summary"] and report["mode"] == "dry-run"


def test_dry_run_changes_nothing_in_the_simulated_market(workdir: Path, capsys) -> None:
    assert main(["run", "--json"]) == 0  # a live run first, so a saved market exists
    store = Store(load_settings().resolved_database_url)
    before = store.load_sim_market(SIM_MARKET_NAME)
    report = run_json(capsys, "run", "--dry-run", "--json")
    assert report["actions"], "the dry run should still propose"
    assert {line["outcome"] for line in report["actions"] if line["outcome"]} <= {"validated"}
    assert store.load_sim_market(SIM_MARKET_NAME) == before


def test_live_run_applies_records_the_ledger_and_keeps_the_audit_chain(workdir: Path, capsys) -> None:
    report = run_json(capsys, "run", "--json")
    applied = [line for line in report["actions"] if line["outcome"] == "applied"]
    assert applied
    store = Store(load_settings().resolved_database_url)
    writes = store.writes_of(report["run_id"])
    assert {w.action_id for w in writes if w.status == "applied"} == {line["action_id"] for line in applied}
    assert all(w.before_value is not None for w in writes if w.payload.get("kind") in ("set_budget", "set_bid"))
    assert verify(store).ok
    assert store.get_run(report["run_id"]).status == "completed"
    assert (workdir / ".bidloop" / "reports" / f"{report['run_id']}.md").exists()
    runs = run_json(capsys, "runs", "list", "--json")
    assert runs[0]["run_id"] == report["run_id"]


def test_run_for_one_account_only_touches_that_account(workdir: Path, capsys) -> None:
    report = run_json(capsys, "run", "--dry-run", "--account", "sim-meta", "--json")
    assert {line["account_id"] for line in report["actions"]} == {"sim-meta"}


def test_approval_pauses_the_run_and_an_approval_from_another_process_resumes_it(workdir: Path, capsys) -> None:
    (workdir / "bidloop.yaml").write_text("guardrails:\n  approval_above_micros: 1\n", encoding="utf-8")
    settings = load_settings()
    outcome = run_cycle(settings, mode="live")
    assert outcome.status == "waiting_approval" and outcome.pending_approvals
    store = Store(settings.resolved_database_url)
    assert store.get_run(outcome.run_id).status == "waiting_approval"
    ids = [p["action_id"] for p in outcome.pending_approvals]
    script = textwrap.dedent(
        f"""
        from bidloop.core.settings import load_settings
        from bidloop.graph.runner import resume_run
        out = resume_run(load_settings(), {outcome.run_id!r}, approvals={{i: True for i in {ids!r}}})
        print(out.status, sum(r.status.value == "applied" for r in out.state["results"]))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=workdir, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    status, applied = done.stdout.split()
    assert status == "completed" and int(applied) >= len(ids)
    assert verify(store).ok


def test_simulate_is_reproducible_for_a_seed(workdir: Path, capsys) -> None:
    first = run_json(capsys, "simulate", "--days", "2", "--seed", "7", "--json")
    second = run_json(capsys, "simulate", "--days", "2", "--seed", "7", "--json")
    assert first == second
    assert len(first["daily"]) == 2 and first["runs"] == 6


def test_heuristic_beats_hold_current_on_value_at_no_more_spend(workdir: Path, capsys) -> None:
    (workdir / "bidloop.yaml").write_text("policy: heuristic\n", encoding="utf-8")
    result = run_json(capsys, "simulate", "--days", "14", "--seed", "7", "--json")
    assert result["policy"] == "heuristic-mroas@1"
    assert result["value_micros"] > result["baseline_value_micros"]
    assert result["spend_micros"] <= result["baseline_spend_micros"]
    assert result["beats_baseline"] is True


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["simulate", "--days", "-3"], "--days must be between 1 and 365"),
        (["run", "--dry-run", "--account", "nope"], "no account 'nope' is configured"),
        (["--config", "missing.yaml", "run"], "does not exist"),
    ],
)
def test_bad_input_names_what_to_fix(workdir: Path, capsys, argv: list[str], expected: str) -> None:
    assert main(argv) == 2
    assert expected in capsys.readouterr().err


def test_malformed_config_field_is_named(workdir: Path, capsys) -> None:
    (workdir / "bidloop.yaml").write_text("guardrails:\n  max_change_pct: lots\n", encoding="utf-8")
    assert main(["run", "--dry-run"]) == 2
    assert "guardrails.max_change_pct" in capsys.readouterr().err


def test_unwritable_data_dir_is_a_clear_error(workdir: Path, capsys) -> None:
    blocker = workdir / "file"
    blocker.write_text("x")
    assert main(["--data-dir", str(blocker / "sub"), "run", "--dry-run"]) == 1
    assert "data_dir" in capsys.readouterr().err


def test_init_writes_an_example_that_loads(workdir: Path, capsys) -> None:
    assert main(["init"]) == 0
    assert load_settings(workdir / "bidloop.yaml").simulation.seed == 7
    assert main(["init"]) == 2  # refuses to overwrite without --force


def test_studio_graph_is_compiled_without_a_checkpointer_and_has_every_node() -> None:
    assert studio_graph.checkpointer is None
    assert set(NODE_ORDER) <= set(studio_graph.get_graph().nodes)
