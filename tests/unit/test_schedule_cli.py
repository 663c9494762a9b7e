"""The commands: `bidloop schedule --once`, `bidloop status`, `bidloop rewards`, `bidloop runs resume`, SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bidloop.cli import main as cli_main
from bidloop.cli.schedule_commands import register

if "schedule" not in {c.name or (c.callback.__name__ if c.callback else "") for c in cli_main.app.registered_commands}:
    register(cli_main.app, cli_main.runs_app)

CONFIG = textwrap.dedent(
    """
    schedules:
      - name: every-five
        accounts: [sim-meta]
        every_minutes: 5
        time_zone: UTC
        mode: dry-run
    """
)


def bidloop(tmp_path: Path, *argv: str) -> int:
    config = tmp_path / "bidloop.yaml"
    if not config.exists():
        config.write_text(CONFIG, encoding="utf-8")
    return cli_main.main(["--config", str(config), "--data-dir", str(tmp_path / "data"), *argv])


def test_schedule_once_runs_what_is_due_and_status_shows_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Every 5 minutes with a 10-minute grace: a first `--once` always finds one slot due.
    assert bidloop(tmp_path, "schedule", "--once", "--json") == 0
    [attempt] = json.loads(capsys.readouterr().out)
    assert (attempt["schedule"], attempt["status"]) == ("every-five", "completed")

    assert bidloop(tmp_path, "schedule", "--once", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []  # that slot is done

    assert bidloop(tmp_path, "status", "--json") == 0
    status = json.loads(capsys.readouterr().out)
    [item] = status["schedules"]
    assert (item["last_run_id"], item["last_run_status"]) == (attempt["run_id"], "completed")
    assert item["next_run"] is not None and status["leases"] == []


def test_rewards_lists_matured_and_pending_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bidloop(tmp_path, "rewards", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {
        "matured": 0,
        "pending": 0,
        "accounts": [],
        "recent": [],
        "restated": [],
    }


def test_resuming_a_completed_run_is_refused_with_a_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bidloop(tmp_path, "schedule", "--once", "--json") == 0
    [attempt] = json.loads(capsys.readouterr().out)
    assert bidloop(tmp_path, "runs", "resume", attempt["run_id"]) == 1
    assert "already completed" in capsys.readouterr().err


def test_schedule_with_no_schedules_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bidloop.yaml").write_text("policy: heuristic\n", encoding="utf-8")
    assert bidloop(tmp_path, "schedule", "--once") == 2
    assert "no schedules configured" in capsys.readouterr().err


_FOREGROUND = textwrap.dedent(
    """
    import sys
    from bidloop.cli import main
    from bidloop.cli.schedule_commands import register
    if "schedule" not in {c.name or c.callback.__name__ for c in main.app.registered_commands}:
        register(main.app, main.runs_app)
    sys.exit(main.main(sys.argv[1:]))
    """
)


def test_sigterm_stops_the_foreground_scheduler_cleanly(tmp_path: Path) -> None:
    config = tmp_path / "bidloop.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    argv = ["--config", str(config), "--data-dir", str(tmp_path / "data"), "schedule", "--poll", "0.2"]
    proc = subprocess.Popen([sys.executable, "-c", _FOREGROUND, *argv], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        seen = ""
        while "serving" not in seen and time.monotonic() < deadline:
            seen += proc.stderr.readline()
        assert "serving 1 schedule(s)" in seen
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, rest
    assert "SIGTERM: finishing the current run, then stopping" in rest
