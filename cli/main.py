"""The `bidloop` command: run, simulate, inspect runs, and write an example config.

Errors that the user can fix are printed as one message with a hint (exit code 2 for bad input or
configuration, 1 for everything else); `--json` output goes to stdout alone, progress to stderr.

`bidloop run` stops an account it cannot run and goes on with the others (a partial failure): after
the report it prints each stopped account's error and exits 2 if any was stopped by configuration
(bidloop.yaml's currency or time zone differs from the platform's), else 1 if any could not be read.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from bidloop.cli.render import print_report
from bidloop.core.errors import BidloopError, ConfigError, ErrorCode, InputError
from bidloop.core.settings import DEFAULT_CONFIG_FILE, Settings, load_settings

__all__ = ["app", "main"]

app = typer.Typer(
    name="bidloop",
    help="Multi-agent ad optimization: agents propose, guardrails decide, platforms apply, outcomes teach.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
runs_app = typer.Typer(help="Inspect past runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


def _register_commands() -> None:
    """Add the command groups that live in their own modules."""
    from bidloop.cli import (
        accounts_commands,
        chat_commands,
        guardrail_commands,
        policy_commands,
        schedule_commands,
        store_commands,
    )

    chat_commands.register(app)
    guardrail_commands.register(app)
    accounts_commands.register(app)
    schedule_commands.register(app, runs_app)
    policy_commands.register(app)
    store_commands.register(app)


out = Console()
err = Console(stderr=True)


class _Global:
    """The global options of the current invocation (set by the root callback)."""

    def __init__(self) -> None:
        self.config: Path | None = None
        self.data_dir: Path | None = None

    def reset(self) -> None:
        """Forget the options of an earlier invocation in the same process."""
        self.__init__()  # type: ignore[misc]


_global = _Global()


@app.callback()
def _options(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help=f"Settings file (default: ./{DEFAULT_CONFIG_FILE} if present)."),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Folder for the SQLite database, checkpoints and reports.")
    ] = None,
) -> None:
    """Optimize ad budgets and bids with agents, a learned policy and guardrails that fail closed."""
    _global.config = config
    _global.data_dir = data_dir


def settings() -> Settings:
    """Load the settings named by the global options."""
    overrides: dict[str, Any] = {}
    if _global.data_dir is not None:
        overrides["data_dir"] = _global.data_dir
    return load_settings(_global.config, **overrides)


def progress_printer(enabled: bool) -> Any:
    """Return a callback printing progress lines to stderr (dimmed), or None."""
    if not enabled:
        return None
    return lambda line: err.print(f"[dim]· {line}[/]")


def emit_json(document: Any) -> None:
    """Print one JSON document on stdout, and nothing else."""
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


@app.command()
def init(
    path: Annotated[Path, typer.Option(help="Where to write the example settings.")] = Path(DEFAULT_CONFIG_FILE),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented example bidloop.yaml (simulated market, conservative guardrails)."""
    if path.exists() and not force:
        raise InputError(f"{path} already exists", hint="pass --force to overwrite it, or --path to write elsewhere")
    text = resources.files("bidloop.core").joinpath("bidloop.example.yaml").read_text(encoding="utf-8")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}", hint="choose a writable --path") from exc
    out.print(f"wrote {path}; edit it, then try `bidloop run --dry-run`")


@app.command()
def run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Propose and judge, but write nothing.")] = False,
    account: Annotated[
        list[str] | None, typer.Option("--account", "-a", help="Account id to run (repeatable; default: all).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run report as one JSON document.")] = False,
) -> None:
    """Run one optimization cycle: observe, propose, filter, apply, report, log."""
    from bidloop.graph.runner import run_cycle
    from bidloop.policies.loader import load_bid_policy

    st = settings()
    policy = load_bid_policy(st)
    outcome = run_cycle(
        st,
        mode="dry-run" if dry_run else "live",
        account_ids=account,
        bid_policy=policy,
        progress=progress_printer(not as_json),
    )
    if outcome.status == "waiting_approval":
        if as_json:
            emit_json({"run_id": outcome.run_id, "status": outcome.status, "needs_approval": outcome.pending_approvals})
            return
        out.print(f"[magenta]run {outcome.run_id} waits for approval of {len(outcome.pending_approvals)} action(s):[/]")
        for item in outcome.pending_approvals:
            out.print(f"  {item['action_id']}: {item['message']}")
        out.print(
            "approve with `bidloop approvals approve ID` or reject with `bidloop approvals reject ID --reason ...`"
        )
        return
    if outcome.report is None:  # pragma: no cover - a completed run always reaches the report node
        raise BidloopError(f"run {outcome.run_id} finished without a report")
    if as_json:
        emit_json(outcome.report.model_dump(mode="json"))
    else:
        print_report(outcome.report, out)
        out.print(f"[dim]stored in {st.resolved_database_url}; `bidloop runs show {outcome.run_id}` shows it again[/]")
    _exit_on_stopped_accounts(outcome.account_errors)


def _exit_on_stopped_accounts(stopped: dict[str, Any]) -> None:
    """Print the accounts a run stopped and exit 2 (a configuration to fix) or 1 (unreadable); return if none."""
    if not stopped:
        return
    for account_id, error in sorted(stopped.items()):
        err.print(f"[red]error:[/] account {escape(account_id)} was stopped: {escape(str(error))}", highlight=False)
    config = {ErrorCode.CONFIG_INVALID.value, ErrorCode.ACCOUNT_MISMATCH.value}
    raise typer.Exit(2 if any(e.code in config for e in stopped.values()) else 1)


@app.command()
def simulate(
    days: Annotated[int, typer.Option("--days", "-d", help="Days to play out (1-365).")] = 7,
    seed: Annotated[int | None, typer.Option("--seed", "-s", help="Market seed (default: simulation.seed).")] = None,
    runs_per_day: Annotated[int, typer.Option("--runs-per-day", help="Intraday runs per simulated day.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as one JSON document.")] = False,
) -> None:
    """Play N days of intraday runs on the simulated market against a hold-current baseline on the same seed."""
    from bidloop.graph.simulate import print_simulation, run_simulation
    from bidloop.policies.loader import load_bid_policy

    if days < 1 or days > 365:
        raise InputError(f"--days must be between 1 and 365, got {days}", hint="for example --days 14")
    if runs_per_day < 1:
        raise InputError(f"--runs-per-day must be at least 1, got {runs_per_day}")
    st = settings()
    result = run_simulation(
        st,
        days=days,
        seed=st.simulation.seed if seed is None else seed,
        runs_per_day=runs_per_day,
        bid_policy=load_bid_policy(st),
        progress=progress_printer(not as_json),
    )
    if as_json:
        emit_json(result.model_dump(mode="json"))
    else:
        print_simulation(result, out)


@runs_app.command("list")
def runs_list(
    limit: Annotated[int, typer.Option(help="How many runs to show, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """List recent runs."""
    from rich.table import Table

    from bidloop.core.store import Store

    st = settings()
    rows = Store(st.resolved_database_url).list_runs(limit=limit)
    if as_json:
        emit_json(
            [
                {
                    "run_id": r.run_id,
                    "started_at": r.started_at,
                    "mode": r.mode,
                    "trigger": r.trigger,
                    "status": r.status,
                    "summary": r.summary.get("summary"),
                }
                for r in rows
            ]
        )
        return
    table = Table(title=f"Runs in {st.resolved_database_url}", title_justify="left")
    for col in ("run id", "started (UTC)", "mode", "trigger", "status", "summary"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r.run_id, f"{r.started_at:%Y-%m-%d %H:%M:%S}", r.mode, r.trigger, r.status, r.summary.get("summary", "")
        )
    if not rows:
        table.add_row("–", "no runs yet: try `bidloop run --dry-run`", "", "", "", "")
    out.print(table)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run id (a unique prefix is enough).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the stored report as one JSON document.")] = False,
) -> None:
    """Show one run's report."""
    from bidloop.core.store import Store

    st = settings()
    store = Store(st.resolved_database_url)
    row = store.get_run(run_id)
    report_path = st.data_dir / "reports" / f"{row.run_id}.json"
    if as_json:
        if report_path.exists():
            sys.stdout.write(report_path.read_text(encoding="utf-8"))
        else:
            emit_json({"run_id": row.run_id, "status": row.status, "summary": row.summary, "error": row.error})
        return
    if report_path.exists():
        from bidloop.agents.reporting import RunReport

        print_report(RunReport.model_validate_json(report_path.read_text(encoding="utf-8")), out)
    elif row.report_md:
        out.print(row.report_md)
    else:
        out.print(f"run {row.run_id}: {row.status}" + (f" ({row.error})" if row.error else ""))


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and turn bidloop's errors into a message and an exit code (2: fix your input, 1: other)."""
    _global.reset()
    try:
        app(args=argv, prog_name="bidloop")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except (ConfigError, InputError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        return 2
    except BidloopError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
