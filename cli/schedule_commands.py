"""The scheduling commands: `bidloop schedule [--once]`, `bidloop status`, `bidloop runs resume`, `bidloop rewards`.

`cli/main.py` calls `register(app, runs_app)` once; the commands load settings through its global
options (`--config`, `--data-dir`) like every other command.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from types import FrameType
from typing import Annotated, Any

import typer
from rich.table import Table

__all__ = ["register"]


def _cli() -> Any:
    # Imported late: cli/main.py imports this module to register the commands.
    from bidloop.cli import main

    return main


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set `stop` on the first SIGINT/SIGTERM (the run under way finishes); a second one stops at once."""
    console = _cli().err

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        console.print(
            f"[yellow]{signal.Signals(signum).name}: finishing the current run, then stopping[/] "
            "(signal again to stop now; the next `bidloop schedule` resumes an interrupted run)"
        )

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _when(at: datetime | None) -> str:
    return "–" if at is None else f"{at:%Y-%m-%d %H:%M %Z}".strip()


def _signed(reward: float | None) -> str:
    return "–" if reward is None else f"{reward:+.2f}"


def register(app: typer.Typer, runs_app: typer.Typer) -> None:
    """Add `schedule`, `status` and `rewards` to `app`, and `resume` to `runs_app`."""

    @app.command()
    def schedule(
        once: Annotated[
            bool, typer.Option("--once", help="Run whatever is due now, then exit (for system cron or a CronJob).")
        ] = False,
        poll_s: Annotated[float, typer.Option("--poll", help="Most seconds between checks in the foreground.")] = 30.0,
        as_json: Annotated[bool, typer.Option("--json", help="With --once: print what happened as JSON.")] = False,
    ) -> None:
        """Run the schedules in bidloop.yaml in the foreground until SIGINT/SIGTERM (or once with --once)."""
        from bidloop.core.errors import ConfigError, InputError
        from bidloop.core.store import Store
        from bidloop.graph.scheduler import Scheduler
        from bidloop.policies.loader import load_bid_policy

        cli = _cli()
        if poll_s <= 0:
            raise InputError(f"--poll must be positive, got {poll_s}", hint="for example --poll 30")
        st = cli.settings()
        if not st.schedules:
            raise ConfigError(
                "no schedules configured", hint="add a `schedules:` block to bidloop.yaml (see the example)"
            )
        store = Store(st.resolved_database_url)
        try:
            scheduler = Scheduler(
                st,
                store,
                run_kwargs={"bid_policy": load_bid_policy(st)},
                progress=cli.progress_printer(not as_json),
            )
            if once:
                attempts = scheduler.tick()
            else:
                stop = threading.Event()
                with _stop_on_signals(stop):
                    cli.err.print(
                        f"[dim]serving {len(st.schedules)} schedule(s) on {store.redacted_url}; Ctrl-C stops[/]"
                    )
                    attempts = scheduler.serve(stop, poll_s=poll_s)
        finally:
            store.dispose()
        if as_json:
            cli.emit_json([a.__dict__ for a in attempts])
        elif once and not attempts:
            cli.out.print("nothing due")
        else:
            for a in attempts:
                cli.out.print(f"{a.schedule or 'resume'}: {a.status} {a.run_id or ''} {a.message}".rstrip())
        if any(a.status == "failed" for a in attempts):
            raise typer.Exit(1)

    @app.command()
    def status(
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    ) -> None:
        """Show last and next scheduled runs, failures, interrupted runs, deferred writes and pending approvals."""
        from bidloop.core.store import Store
        from bidloop.graph.scheduler import scheduler_status

        cli = _cli()
        st = cli.settings()
        store = Store(st.resolved_database_url)
        try:
            report = scheduler_status(st, store)
        finally:
            store.dispose()
        if as_json:
            cli.emit_json(
                {
                    "schedules": [s.__dict__ for s in report.schedules],
                    "runs_by_status": report.runs_by_status,
                    "recent_failures": report.recent_failures,
                    "interrupted_runs": report.interrupted_runs,
                    "deferred_writes": report.deferred_writes,
                    "pending_approvals": report.pending_approvals,
                    "leases": report.leases,
                }
            )
            return
        table = Table(title="Schedules", title_justify="left")
        for col in ("schedule", "accounts", "zone", "last slot", "last run", "next run"):
            table.add_column(col, overflow="fold")
        for s in report.schedules:
            last = f"{s.last_run_id} ({s.last_run_status})" if s.last_run_id else "–"
            table.add_row(
                s.name + ("" if s.enabled else " (off)"),
                ", ".join(s.accounts),
                s.zone,
                _when(s.last_slot),
                last,
                _when(s.next_run),
            )
        if not report.schedules:
            table.add_row("–", "no schedules: add `schedules:` to bidloop.yaml", "", "", "", "")
        cli.out.print(table)
        counts = ", ".join(f"{k} {v}" for k, v in sorted(report.runs_by_status.items())) or "none"
        cli.out.print(f"runs: {counts}")
        for lease in report.leases:
            cli.out.print(f"[cyan]running[/] {lease['run_id']} on {lease['account_id']} ({lease['holder']})")
        for run_id in report.interrupted_runs:
            cli.out.print(f"[yellow]interrupted[/] {run_id}: resumes on the next schedule, or `bidloop runs resume`")
        for f in report.recent_failures:
            cli.out.print(f"[red]failed[/] {f['run_id']} ({f['trigger']}): {f['error'] or ''}")
        for w in report.deferred_writes:
            cli.out.print(f"[yellow]deferred[/] {w['entity_key']} in {w['run_id']}: {w['message']}")
        for a in report.pending_approvals:
            cli.out.print(f"[magenta]needs approval[/] {a['approval_id']} (run {a['run_id']}): {a['message']}")

    @runs_app.command("resume")
    def runs_resume(
        run_id: Annotated[str, typer.Argument(help="The run id (a unique prefix is enough).")],
        as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as one JSON document.")] = False,
    ) -> None:
        """Resume an interrupted run from its last checkpoint; each approved action is applied exactly once."""
        from bidloop.core.errors import InputError
        from bidloop.core.store import Store
        from bidloop.graph.locks import hold_accounts
        from bidloop.graph.runner import resume_run

        cli = _cli()
        st = cli.settings()
        store = Store(st.resolved_database_url)
        try:
            row = store.get_run(run_id)
            if row.status == "waiting_approval":
                raise InputError(
                    f"run {row.run_id} waits for a person's approval",
                    hint="`bidloop approvals list`, then `bidloop approvals approve ID` or `reject ID --reason ...`",
                )
            with hold_accounts(store, list(row.accounts.get("ids", [])), run_id=row.run_id):
                outcome = resume_run(
                    st, row.run_id, store=store, progress=cli.progress_printer(not as_json), actor="cli"
                )
        finally:
            store.dispose()
        if as_json:
            cli.emit_json(
                {
                    "run_id": outcome.run_id,
                    "status": outcome.status,
                    "needs_approval": outcome.pending_approvals,
                    "report": outcome.report.model_dump(mode="json") if outcome.report else None,
                }
            )
        elif outcome.report is not None:
            cli.print_report(outcome.report, cli.out)
        else:
            cli.out.print(f"run {outcome.run_id}: {outcome.status}")

    @app.command()
    def rewards(
        recent: Annotated[int, typer.Option(help="How many recent matured rewards to list.")] = 10,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    ) -> None:
        """Show matured rewards (attribution window closed) and pending ones, per account."""
        from bidloop.core.store import Store
        from bidloop.graph.rewards import reward_summary

        cli = _cli()
        st = cli.settings()
        store = Store(st.resolved_database_url)
        try:
            summary = reward_summary(store, recent=recent)
        finally:
            store.dispose()
        if as_json:
            cli.emit_json(
                {
                    "matured": summary.matured,
                    "pending": summary.pending,
                    "accounts": [a.__dict__ for a in summary.accounts],
                    "recent": summary.recent,
                    "restated": [r.__dict__ for r in summary.restated],
                }
            )
            return
        table = Table(title="Rewards", title_justify="left")
        for col in ("account", "matured", "mean reward", "restated", "pending", "next window closes"):
            table.add_column(col, justify="left" if col == "account" else "right")
        for a in summary.accounts:
            mean = "–" if a.mean_reward is None else f"{a.mean_reward:+.2f}"
            table.add_row(a.account_id, str(a.matured), mean, str(a.restated), str(a.pending), _when(a.next_maturity))
        if not summary.accounts:
            table.add_row("–", "no applied actions yet", "", "", "", "")
        cli.out.print(table)
        if summary.restated:
            restated = Table(title="Restated by late conversions", title_justify="left")
            for col in ("entity", "first", "now", "times", "last restated"):
                restated.add_column(col, justify="left" if col == "entity" else "right")
            for rr in summary.restated:
                restated.add_row(
                    f"{rr.entity_key} ({rr.account_id})",
                    _signed(rr.first_reward),
                    _signed(rr.reward),
                    str(rr.restatements),
                    _when(rr.restated_at),
                )
            cli.out.print(restated)
        for r in summary.recent:
            was = f" (first {_signed(r['first_reward'])})" if r.get("restatements") else ""
            cli.out.print(f"  {_signed(r['reward'])}{was}  {r['entity_key']}  (run {r['run_id']})")
