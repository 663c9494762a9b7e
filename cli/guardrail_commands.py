"""Commands around the guardrails: approvals, the kill switch, the audit log and rollback."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.table import Table

from bidloop.core.errors import InputError

__all__ = ["register"]

approvals_app = typer.Typer(help="Actions waiting for a person's decision.", no_args_is_help=True)
audit_app = typer.Typer(help="The append-only, hash-chained audit log.", no_args_is_help=True)


def _me() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


By = Annotated[str | None, typer.Option("--by", help="Who decides (default: your user name).")]


@approvals_app.command("list")
def approvals_list(
    run: Annotated[str | None, typer.Option("--run", help="Only this run.")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Decided ones too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """List pending approvals (or all, with --all)."""
    from bidloop.cli import main as cli
    from bidloop.core.store import Store
    from bidloop.guardrails.approvals import list_approvals

    store = Store(cli.settings().resolved_database_url)
    rows = list_approvals(store, status=None if show_all else "pending", run_id=run)
    if as_json:
        cli.emit_json(
            [
                {
                    "approval_id": r.approval_id,
                    "run_id": r.run_id,
                    "status": r.status,
                    "message": (r.payload or {}).get("message"),
                    "reason": r.reason,
                    "decided_by": r.decided_by,
                }
                for r in rows
            ]
        )
        return
    table = Table(title="Approvals" + ("" if show_all else " pending"), title_justify="left")
    for col in ("id", "run", "status", "what", "reason"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r.approval_id, r.run_id, r.status, (r.payload or {}).get("message", ""), r.reason or "")
    if not rows:
        table.add_row("–", "", "", "nothing waits for a decision", "")
    cli.out.print(table)


def _decide(approval_id: str, *, approved: bool, reason: str | None, by: str | None, resume: bool) -> None:
    from bidloop.cli import main as cli
    from bidloop.cli.render import print_report
    from bidloop.core.store import Store
    from bidloop.graph.runner import resume_run
    from bidloop.guardrails.approvals import approval_answers, approve, list_approvals, reject

    st = cli.settings()
    store = Store(st.resolved_database_url)
    who = by or _me()
    row = (
        approve(store, approval_id, by=who, reason=reason)
        if approved
        else reject(store, approval_id, by=who, reason=reason or "")
    )
    cli.out.print(f"{row.status} {row.approval_id} (run {row.run_id}) by {who}")
    waiting = list_approvals(store, status="pending", run_id=row.run_id)
    if waiting:
        cli.out.print(f"{len(waiting)} more approval(s) of run {row.run_id} still wait; the run resumes after the last")
        return
    if not resume:
        cli.out.print(f"resume it with `bidloop runs resume {row.run_id}`")
        return
    outcome = resume_run(
        st,
        row.run_id,
        approvals=approval_answers(store, row.run_id),
        progress=cli.progress_printer(True),
        store=store,
        actor=f"approval:{who}",
    )
    if outcome.report is not None:
        print_report(outcome.report, cli.out)


@approvals_app.command("approve")
def approvals_approve(
    approval_id: Annotated[str, typer.Argument(help="The approval id (a unique prefix is enough).")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why (stored as labelled feedback).")] = None,
    by: By = None,
    resume: Annotated[bool, typer.Option(help="Resume the run once nothing else waits.")] = True,
) -> None:
    """Approve an action; the run resumes once all its approvals are decided."""
    _decide(approval_id, approved=True, reason=reason, by=by, resume=resume)


@approvals_app.command("reject")
def approvals_reject(
    approval_id: Annotated[str, typer.Argument(help="The approval id (a unique prefix is enough).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (required; a rejection teaches the policy).")],
    by: By = None,
    resume: Annotated[bool, typer.Option(help="Resume the run once nothing else waits.")] = True,
) -> None:
    """Reject an action (it counts as negative reward in the training data)."""
    if not reason.strip():
        raise InputError("a rejection needs a reason", hint='pass --reason "..."')
    _decide(approval_id, approved=False, reason=reason, by=by, resume=resume)


@audit_app.command("show")
def audit_show(
    run: Annotated[str | None, typer.Option("--run", help="Only this run's records.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind (decision, write, prompt, ...).")] = None,
    limit: Annotated[int, typer.Option(help="How many of the newest records.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Show the newest audit records."""
    from bidloop.cli import main as cli
    from bidloop.core.store import Store
    from bidloop.guardrails.audit import show

    rows = show(Store(cli.settings().resolved_database_url), run, limit=limit, kind=kind)
    if as_json:
        cli.emit_json(
            [
                {
                    "seq": r.seq,
                    "ts": r.ts,
                    "run_id": r.run_id,
                    "kind": r.kind,
                    "actor": r.actor,
                    "policy_version": r.policy_version,
                    "payload": r.payload,
                    "hash": r.hash,
                }
                for r in rows
            ]
        )
        return
    table = Table(title="Audit log", title_justify="left")
    for col in ("seq", "time (UTC)", "run", "kind", "actor", "what"):
        table.add_column(col, overflow="fold")
    for r in rows:
        p = r.payload or {}
        what = p.get("message") or p.get("status") or p.get("reason") or ""
        entity = (p.get("action") or {}).get("entity", {}) if isinstance(p.get("action"), dict) else {}
        label = p.get("entity") or (entity.get("entity_id") if isinstance(entity, dict) else "") or ""
        table.add_row(str(r.seq), f"{r.ts:%Y-%m-%d %H:%M:%S}", r.run_id or "", r.kind, r.actor, f"{label} {what}")
    cli.out.print(table)


@audit_app.command("verify")
def audit_verify(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Check the hash chain: detects an edited, deleted or reordered record (exit 1 if broken)."""
    from bidloop.cli import main as cli
    from bidloop.core.store import Store
    from bidloop.guardrails.audit import verify

    result = verify(Store(cli.settings().resolved_database_url))
    if as_json:
        cli.emit_json(
            {
                "ok": result.ok,
                "records": result.records,
                "head_seq": result.head_seq,
                "head_hash": result.head_hash,
                "first_bad_seq": result.first_bad_seq,
                "problems": result.problems,
            }
        )
    elif result.ok:
        cli.out.print(f"[green]audit log intact[/]: {result.records} records, head {result.head_hash[:16]}…")
    else:
        cli.out.print(f"[red]audit log broken[/] at record {result.first_bad_seq}:")
        for problem in result.problems:
            cli.out.print(f"  - {problem}")
    if not result.ok:
        raise typer.Exit(1)


def pause_all(
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")] = "operator stop",
    by: By = None,
) -> None:
    """Stop every write now, also in runs already under way (they skip their next batch)."""
    from bidloop.cli import main as cli
    from bidloop.core.store import Store
    from bidloop.guardrails.kill_switch import pause_all as _pause

    _pause(Store(cli.settings().resolved_database_url), by=by or _me(), reason=reason)
    cli.out.print("[red]writes paused[/]: no action reaches a platform until `bidloop resume-all`")


def resume_all(
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")] = "",
    by: By = None,
) -> None:
    """Allow writes again after `bidloop pause-all`."""
    from bidloop.cli import main as cli
    from bidloop.core.store import Store
    from bidloop.guardrails.kill_switch import resume_all as _resume

    _resume(Store(cli.settings().resolved_database_url), by=by or _me(), reason=reason)
    cli.out.print("[green]writes allowed again[/]")


def rollback(
    run_id: Annotated[str, typer.Argument(help="The run to roll back (a unique prefix is enough).")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show and validate the restoration; write nothing.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Restore entities changed again since.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Restore the previous values of everything a run changed, through the same filter and clients."""
    from bidloop.cli import main as cli
    from bidloop.cli.render import print_report
    from bidloop.graph.rollback import rollback_run

    st = cli.settings()
    plan, outcome = rollback_run(st, run_id, dry_run=dry_run, force=force, progress=cli.progress_printer(not as_json))
    skipped = [s.model_dump() for s in plan.skipped]
    if as_json:
        cli.emit_json(
            {
                "run_id": plan.run_id,
                "restoring_actions": len(plan.actions),
                "skipped": skipped,
                "rollback_run": outcome.run_id if outcome else None,
                "status": outcome.status if outcome else "nothing to restore",
                "report": outcome.report.model_dump(mode="json") if outcome and outcome.report else None,
            }
        )
        return
    if outcome is not None and outcome.report is not None:
        print_report(outcome.report, cli.out)
    elif outcome is None:
        cli.out.print(f"run {plan.run_id}: nothing to restore")
    for s in plan.skipped:
        cli.out.print(f"[yellow]not restored[/] {s.entity_key}: {s.reason}")


def register(app: typer.Typer) -> None:
    """Add `approvals`, `audit`, `pause-all`, `resume-all` and `rollback` to the CLI."""
    app.add_typer(approvals_app, name="approvals")
    app.add_typer(audit_app, name="audit")
    app.command("pause-all")(pause_all)
    app.command("resume-all")(resume_all)
    app.command("rollback")(rollback)
