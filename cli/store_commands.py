"""The store commands: `bidloop store prune`.

`cli/main.py` calls `register(app)` once; the commands load settings through its global options.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

__all__ = ["register"]


def _cli() -> Any:
    # Imported late: cli/main.py imports this module to register the commands.
    from bidloop.cli import main

    return main


def _mb(n: int | None) -> str:
    return "–" if n is None else f"{n / 1_000_000:,.1f} MB"


def register(app: typer.Typer) -> None:
    """Add the `store` command group to `app`."""
    store_app = typer.Typer(help="Look after bidloop's database.", no_args_is_help=True)
    app.add_typer(store_app, name="store")

    @store_app.command()
    def prune(
        older_than: Annotated[
            float | None,
            typer.Option("--older-than", help="Age in days (default: retention_days from the settings, 30)."),
        ] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would go; delete nothing.")] = False,
        vacuum: Annotated[
            bool, typer.Option("--vacuum", help="Give the freed space back to the disk (locks the database).")
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    ) -> None:
        """Delete the snapshots and checkpoints of completed and skipped runs older than the retention.

        Only a resume reads them. Runs, reports, actions, decisions, the write ledger, approvals, rewards
        and the audit log are kept; failed runs keep everything (they may still be resumed).
        """
        from bidloop.core.store import Store
        from bidloop.graph.retention import prune_finished_runs

        cli = _cli()
        st = cli.settings()
        store = Store(st.resolved_database_url)
        try:
            result = prune_finished_runs(
                st,
                store,
                older_than_days=older_than,
                dry_run=dry_run,
                vacuum=vacuum,
                progress=None if as_json else (lambda line: cli.err.print(f"[dim]{line}[/]")),
            )
        finally:
            store.dispose()
        if as_json:
            cli.emit_json(
                {
                    "cutoff": result.cutoff.isoformat(),
                    "dry_run": result.dry_run,
                    "runs": result.runs,
                    "snapshot_rows": result.snapshot_rows,
                    "checkpoint_threads": result.checkpoint_threads,
                    "bytes_before": result.bytes_before,
                    "bytes_after": result.bytes_after,
                }
            )
            return
        when = f"{result.cutoff:%Y-%m-%d %H:%M} UTC"
        if result.dry_run:
            cli.out.print(f"would prune {len(result.runs)} run(s) that finished before {when} (nothing deleted)")
            for run_id in result.runs[:20]:
                cli.out.print(f"  {run_id}")
            if len(result.runs) > 20:
                cli.out.print(f"  ... and {len(result.runs) - 20} more")
            return
        cli.out.print(
            f"pruned {len(result.runs)} run(s) that finished before {when}: {result.snapshot_rows} snapshot row(s), "
            f"{result.checkpoint_threads} checkpoint thread(s); database {_mb(result.bytes_before)} → "
            f"{_mb(result.bytes_after)}" + ("" if vacuum else " (freed pages are reused; --vacuum returns them)")
        )
