"""The chat commands: `bidloop ask "PROMPT" [--thread ID] [--apply] [--json]` and the `bidloop chat` REPL.

`cli/main.py` calls `register(app)` once; the commands load settings through its global options
(`--config`, `--data-dir`) like every other command. A prompt only steers a run: in `chat`, applying a
plan needs the word `yes` typed by the operator after the plan is shown, and `ask` needs `--apply`.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bidloop.core.errors import BidloopError

__all__ = ["register"]

_VERDICT_STYLE = {"allowed": "green", "clipped": "yellow", "needs_approval": "magenta", "blocked": "red"}
_HELP = (
    "Type a request (e.g. 'Re-balance budgets on Meta and lift bids where it moves the needle'). "
    "Commands: `apply` applies the last plan (asks for `yes`), `history` shows this thread, `help`, `quit`."
)


def _cli() -> Any:
    # Imported late: cli/main.py imports this module to register the commands.
    from bidloop.cli import main

    return main


def print_answer(answer: Any, console: Console) -> None:
    """Print a chat answer: the plan as a table (old → new, verdict and rule, effect, why), then the summary."""
    if answer.refused:
        console.print(f"[red]refused:[/] {escape(answer.reason or '')}")
    elif answer.unclear:
        console.print(f"[yellow]?[/] {escape(answer.clarifying_question or '')}")
    if answer.plan:
        title = f"Plan {answer.run_id} · {answer.mode}" + (" · applied" if answer.applied else " · nothing written")
        table = Table(title=title, title_justify="left")
        for col in ("entity", "change", "Δ", "guardrails", "expected effect", "why"):
            table.add_column(col, overflow="fold")
        for line in answer.plan:
            style = _VERDICT_STYLE.get(line.verdict, "")
            change = f"{line.old_value or '–'} → {line.new_value or '–'}"
            if line.final_value is not None and line.final_value != line.new_value:
                change += f" (clipped to {line.final_value})"
            ident = line.entity.rsplit(":", 1)[-1]
            effect = "; ".join(e for e in (line.expected_effect, line.simulated_effect) if e) or "–"
            why = line.reason if line.verdict == "allowed" else f"{line.reason}. {line.verdict_message}"
            table.add_row(
                escape(f"{line.kind} {ident} {line.entity_name or ''}".strip()),
                escape(change),
                f"{line.change_pct:+.1f} %" if line.change_pct is not None else "–",
                f"[{style}]{line.verdict}[/] {escape(line.rule_id)}",
                escape(effect),
                escape(why),
            )
        console.print(table)
    for item in answer.pending_approvals:
        console.print(
            f"[magenta]waits for approval:[/] {escape(str(item.get('action_id')))}: {escape(str(item.get('message')))}"
        )
    for note in answer.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    console.print(f"[bold]{escape(answer.summary)}[/]")


def ask_command(
    prompt: Annotated[str, typer.Argument(help="What you want, in a sentence.")],
    thread: Annotated[
        str | None, typer.Option("--thread", "-t", help="Continue this conversation (the id an answer gave).")
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Run live: changes go out through the guardrails (default: dry run).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as one JSON document.")] = False,
) -> None:
    """Turn a sentence into a reviewable plan (a dry run), or with --apply into a live run through the guardrails."""
    from bidloop.graph.chat import ask

    cli = _cli()
    answer = ask(cli.settings(), prompt, thread_id=thread, apply=apply, progress=cli.progress_printer(not as_json))
    if as_json:
        cli.emit_json(answer.model_dump(mode="json"))
        return
    print_answer(answer, cli.out)
    cli.out.print(f'[dim]thread {answer.thread_id}: continue with `bidloop ask --thread {answer.thread_id} "..."`[/]')


def _read_line(prompt: str) -> str | None:
    """Return one line typed by the operator (without the newline), or None at end of input."""
    try:
        return input(prompt)
    except EOFError:
        return None


def chat_command(
    thread: Annotated[
        str | None, typer.Option("--thread", "-t", help="Continue this conversation (default: a new one).")
    ] = None,
) -> None:
    """Talk to bidloop: each request becomes a plan (dry run); `apply` then `yes` runs it live; `quit` ends."""
    from bidloop.graph.chat import ask, new_thread_id, thread_history

    cli = _cli()
    console: Console = cli.out
    if sys.stdin.isatty():
        import readline  # noqa: F401  (line editing and up-arrow history for input())

    st = cli.settings()
    thread_id = thread or new_thread_id()
    console.print(f"[dim]bidloop chat · thread {thread_id} · {_HELP}[/]")
    last: Any = None
    while True:
        line = _read_line("you> ")
        if line is None:
            console.print("[dim]bye[/]")
            return
        text = line.strip()
        if not text:
            continue
        command = text.lower()
        if command in ("quit", "exit", "bye"):
            console.print("[dim]bye[/]")
            return
        if command == "help":
            console.print(_HELP)
            continue
        if command == "history":
            from bidloop.core.store import Store

            store = Store(st.resolved_database_url)
            try:
                for row in thread_history(store, thread_id):
                    said = row.payload.get("prompt") if row.kind == "prompt" else row.payload.get("summary")
                    console.print(f"[dim]{row.ts:%H:%M:%S}[/] {row.kind}: {escape(str(said))}")
            finally:
                store.dispose()
            continue
        try:
            if command == "apply":
                last = _apply_last(st, last, thread_id, console)
                continue
            last = ask(st, text, thread_id=thread_id, progress=cli.progress_printer(True))
            print_answer(last, console)
            if last.plan and not last.applied:
                console.print("[dim]type `apply` to run this plan live[/]")
        except BidloopError as exc:
            cli.err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)


def _apply_last(st: Any, last: Any, thread_id: str, console: Console) -> Any:
    """Apply the last plan after the operator types `yes`; return the answer to remember."""
    from bidloop.agents.operator_intent import IntentKind
    from bidloop.graph.chat import ask

    if last is None or not last.plan or last.applied:
        console.print("nothing to apply: ask for a change first")
        return last
    if IntentKind.WHAT_IF in last.intent.intents:
        console.print("that was a what-if; ask for the change itself to apply it")
        return last
    console.print(
        f"Apply {len(last.plan)} change(s) live through the guardrails? The accounts are read again, so values "
        "may differ if they moved. Type [bold]yes[/] to confirm:"
    )
    confirmation = _read_line("confirm> ")
    if confirmation is None or confirmation.strip().lower() != "yes":
        console.print("not applied")
        return last
    answer = ask(
        st, last.prompt, thread_id=thread_id, apply=True, intent=last.intent, progress=_cli().progress_printer(True)
    )
    print_answer(answer, console)
    return answer


def register(app: typer.Typer) -> None:
    """Add `ask` and `chat` to the `bidloop` command."""
    app.command("ask")(ask_command)
    app.command("chat")(chat_command)
