"""Render runs for the terminal with Rich tables."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from bidloop.agents.reporting import RunReport
from bidloop.core.money import format_money

__all__ = ["print_report"]

_VERDICT_STYLE = {"allowed": "green", "clipped": "yellow", "needs_approval": "magenta", "blocked": "red"}
_AGENT_TITLES = {
    "keyword_insight": "Keyword insight",
    "bid_shifter": "Bid shifter",
    "creative_rotation": "Creative rotation",
    "operator": "Operator",
    "rollback": "Rollback",
}


def print_report(report: RunReport, console: Console) -> None:
    """Print accounts, each agent's proposals with verdicts and outcomes, and the summary."""
    accounts = Table(title=f"Run {report.run_id} · {report.mode}", title_justify="left")
    for col in ("account", "platform", "budget/day", "spent today", "pace", "ROAS 7d"):
        accounts.add_column(col, justify="right" if col not in ("account", "platform") else "left")
    for a in report.accounts:
        accounts.add_row(
            a.account_id,
            a.platform,
            format_money(a.daily_budget_micros, a.currency),
            format_money(a.spend_today_micros, a.currency),
            f"{a.pace_ratio:.0%}" if a.pace_ratio is not None else "–",
            f"{a.roas_7d:.2f}" if a.roas_7d is not None else "–",
        )
    console.print(accounts)

    for agent in ("keyword_insight", "bid_shifter", "creative_rotation", "operator", "rollback"):
        lines = [line for line in report.actions if line.agent == agent]
        if not lines and agent in ("operator", "rollback"):
            continue
        table = Table(title=f"{_AGENT_TITLES[agent]}: {len(lines)} proposed", title_justify="left", show_lines=False)
        for col in ("account", "entity", "change", "verdict", "outcome", "why"):
            table.add_column(col, overflow="fold")
        for line in lines:
            style = _VERDICT_STYLE.get(line.verdict, "")
            change = f"{line.old_value or '–'} → {line.new_value or '–'}"
            if line.final_value is not None and line.final_value != line.new_value:
                change += f" (clipped to {line.final_value})"
            name = line.entity_name or line.entity.rsplit(":", 1)[-1]
            table.add_row(
                line.account_id,
                f"{line.kind} {name}",
                change,
                f"[{style}]{line.verdict}[/] {line.rule_id}",
                line.outcome or "–",
                line.reason if line.verdict in ("allowed", "clipped") else f"{line.reason}. {line.verdict_message}",
            )
        if not lines:
            table.add_row("–", "nothing to propose", "", "", "", "")
        console.print(table)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"[bold]{report.summary}[/]")
