"""Summarise a run: what each agent proposed, what the guardrails decided, what was applied, how accounts stand.

`build_report` makes a typed `RunReport` (its JSON is the `--json` output and the stored report);
`render_markdown` makes the Markdown report saved beside it. The terminal tables live in the CLI.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from bidloop.core.actions import Action, SetTargetRoas
from bidloop.core.decisions import Decision, WriteResult
from bidloop.core.entities import EntityState
from bidloop.core.money import format_money
from bidloop.core.snapshot import Snapshot

__all__ = ["AccountSummary", "ActionLine", "RunReport", "build_report", "render_markdown"]


class ActionLine(BaseModel):
    """One proposed action with its verdict and outcome, as people read it."""

    model_config = ConfigDict(extra="forbid")

    action_id: str
    account_id: str
    agent: str
    kind: str
    entity: str
    entity_name: str | None
    old_value: str | None
    new_value: str | None
    final_value: str | None
    """The value that may be applied after clipping (None if blocked)."""
    reason: str
    policy_version: str
    expected_effect: str | None
    verdict: str
    rule_id: str
    verdict_message: str
    checks_passed: list[str]
    outcome: str | None
    """`applied`, `validated`, `failed`, `deferred`, `skipped`, or None when not sent."""
    outcome_message: str | None


class AccountSummary(BaseModel):
    """How one account stood when the run observed it."""

    model_config = ConfigDict(extra="forbid")

    account_id: str
    platform: str
    currency: str
    entities: int
    daily_budget_micros: int
    spend_today_micros: int
    expected_spend_fraction: float
    pace_ratio: float | None
    """Spend so far / spend that would be on pace (1.0 = on pace)."""
    roas_7d: float | None
    conversion_value_7d_micros: int
    cost_7d_micros: int


class RunReport(BaseModel):
    """The report of one run."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    mode: str
    trigger: str
    status: str
    accounts: list[AccountSummary]
    actions: list[ActionLine]
    proposed_by_agent: dict[str, int]
    verdicts: dict[str, int]
    outcomes: dict[str, int]
    summary: str
    notes: list[str] = Field(default_factory=list)


def _fmt(value: object, currency: str, action: Action) -> str | None:
    """Format an action's value as people read it: money, a ROAS target (`ROAS 3.50 (350 %)`), or text."""
    if value is None:
        return None
    if isinstance(action, SetTargetRoas) and isinstance(value, int):
        return f"ROAS {value / 10_000:.2f} ({value / 100:g} %)"
    if action.is_money_change and isinstance(value, int):
        return format_money(value, currency)
    return str(value)


def _reports_anything(entity: EntityState) -> bool:
    days = [entity.today, entity.trailing_7d, *entity.daily_history]
    return any(d.impressions or d.clicks or d.cost_micros for d in days)


def _evidence_notes(snapshots: Mapping[str, Snapshot], lines: Sequence[ActionLine]) -> list[str]:
    """Say, per account, when changes were refused for lack of data, and when the account reports none."""
    notes: list[str] = []
    for account_id, snap in snapshots.items():
        starved = sum(1 for line in lines if line.account_id == account_id and line.rule_id == "insufficient_data")
        if snap.entities and not any(_reports_anything(e) for e in snap.entities):
            notes.append(
                f"{account_id}: the platform reports no impressions, clicks or spend for any of its "
                f"{len(snap.entities)} entities; no budget, bid or target change is made without evidence "
                "(insufficient_data)."
            )
        elif starved:
            notes.append(
                f"{account_id}: {starved} budget, bid or target change(s) held back: too few clicks, spend or "
                "days of data of their own (insufficient_data; limits min_clicks_to_act, "
                "min_spend_to_act_micros, min_days_of_data)."
            )
    return notes


def build_report(
    *,
    run_id: str,
    mode: str,
    trigger: str,
    status: str,
    snapshots: Mapping[str, Snapshot],
    actions: Sequence[Action],
    decisions: Sequence[Decision],
    results: Sequence[WriteResult],
    notes: Sequence[str] = (),
) -> RunReport:
    """Assemble the report of one run from its pieces."""
    decision_by_id = {d.action_id: d for d in decisions}
    result_by_id = {r.action_id: r for r in results}
    names: dict[str, str] = {}
    for snap in snapshots.values():
        for e in snap.entities:
            names[e.ref.key] = e.name

    lines: list[ActionLine] = []
    for a in actions:
        currency = snapshots[a.entity.account_id].currency if a.entity.account_id in snapshots else "USD"
        d = decision_by_id.get(a.action_id)
        r = result_by_id.get(a.action_id)
        final = d.final_action if d else None
        lines.append(
            ActionLine(
                action_id=a.action_id,
                account_id=a.entity.account_id,
                agent=a.agent.value,
                kind=a.kind,
                entity=a.entity.key,
                entity_name=names.get(a.entity.key),
                old_value=_fmt(a.old_value, currency, a),
                new_value=_fmt(a.new_value, currency, a),
                final_value=_fmt(final.new_value, currency, final) if final is not None else None,
                reason=a.reason,
                policy_version=a.policy_version,
                expected_effect=a.expected_effect,
                verdict=d.verdict.value if d else "undecided",
                rule_id=d.rule_id if d else "none",
                verdict_message=d.message if d else "not judged",
                checks_passed=list(d.checks_passed) if d else [],
                outcome=r.status.value if r else None,
                outcome_message=r.message if r else None,
            )
        )

    accounts = []
    for account_id, snap in snapshots.items():
        today = snap.totals_today()
        week_cost = sum(e.trailing_7d.cost_micros for e in snap.budget_holders())
        week_value = sum(e.trailing_7d.conversion_value_micros for e in snap.budget_holders())
        planned = snap.account_daily_budget_micros * snap.expected_spend_fraction
        accounts.append(
            AccountSummary(
                account_id=account_id,
                platform=snap.platform.value,
                currency=snap.currency,
                entities=len(snap.entities),
                daily_budget_micros=snap.account_daily_budget_micros,
                spend_today_micros=today.cost_micros,
                expected_spend_fraction=snap.expected_spend_fraction,
                pace_ratio=(today.cost_micros / planned) if planned else None,
                roas_7d=(week_value / week_cost) if week_cost else None,
                conversion_value_7d_micros=week_value,
                cost_7d_micros=week_cost,
            )
        )

    by_agent = Counter(line.agent for line in lines)
    verdicts = Counter(line.verdict for line in lines)
    outcomes = Counter(line.outcome for line in lines if line.outcome)
    applied = outcomes.get("applied", 0)
    summary = (
        f"{len(lines)} actions proposed across {len(accounts)} account(s) "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(by_agent.items())) or 'none'}); "
        f"guardrails: {', '.join(f'{k} {v}' for k, v in sorted(verdicts.items())) or 'nothing to judge'}; "
        + (
            f"{applied} applied."
            if mode == "live"
            else f"nothing applied ({mode}: {outcomes.get('validated', 0)} validated)."
        )
    )
    return RunReport(
        run_id=run_id,
        mode=mode,
        trigger=trigger,
        status=status,
        accounts=accounts,
        actions=lines,
        proposed_by_agent=dict(sorted(by_agent.items())),
        verdicts=dict(sorted(verdicts.items())),
        outcomes=dict(sorted(outcomes.items())),
        summary=summary,
        notes=[*notes, *_evidence_notes(snapshots, lines)],
    )


def render_markdown(report: RunReport) -> str:
    """Render a run report as Markdown."""
    out = [f"# bidloop run {report.run_id}", "", f"Mode: **{report.mode}** · trigger: {report.trigger}", ""]
    out += [report.summary, "", "## Accounts", ""]
    out += ["| account | platform | budget/day | spent today | pace | ROAS 7d |", "|---|---|---:|---:|---:|---:|"]
    for a in report.accounts:
        pace = f"{a.pace_ratio:.0%}" if a.pace_ratio is not None else "–"
        roas = f"{a.roas_7d:.2f}" if a.roas_7d is not None else "–"
        out.append(
            f"| {a.account_id} | {a.platform} | {format_money(a.daily_budget_micros, a.currency)} | "
            f"{format_money(a.spend_today_micros, a.currency)} | {pace} | {roas} |"
        )
    out += ["", "## Actions", ""]
    if not report.actions:
        out.append("No action proposed.")
    else:
        out += ["| agent | entity | change | verdict | outcome | why |", "|---|---|---|---|---|---|"]
        for line in report.actions:
            change = f"{line.old_value or '–'} → {line.final_value or line.new_value or '–'}"
            name = line.entity_name or line.entity.rsplit(":", 1)[-1]
            out.append(
                f"| {line.agent} | {name} | {change} | {line.verdict} ({line.rule_id}) | "
                f"{line.outcome or '–'} | {line.reason} |"
            )
    if report.notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    return "\n".join(out) + "\n"
