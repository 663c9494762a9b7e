"""Play days of intraday runs on the simulated market, against a hold-current baseline on the same seed.

Both markets start identical (same seed, same warm-up) and share their exogenous path (common random
numbers), so the difference in value is the effect of the actions. Value is the market's *expected*
conversion value given what was delivered (the hidden truth, noise-free), the fair yardstick; spend is
what was actually spent. Reward per day applies the configured reward spec to each account's day.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.table import Table

from bidloop.core.metrics import Metrics
from bidloop.core.money import MICROS_PER_UNIT
from bidloop.core.settings import Settings
from bidloop.core.store import Store
from bidloop.graph.runner import run_cycle
from bidloop.policies.reward import score_period
from bidloop.tools.registry import ClientSet
from bidloop.tools.sim import SimClient, SimMarket, default_market

__all__ = ["DayResult", "SimulationResult", "print_simulation", "run_simulation"]


class DayResult(BaseModel):
    """One simulated day, for the policy and the hold-current baseline. Money in micros."""

    model_config = ConfigDict(extra="forbid")

    day: int
    spend_micros: int
    value_micros: int
    roas: float | None
    reward: float
    baseline_spend_micros: int
    baseline_value_micros: int
    baseline_roas: float | None
    baseline_reward: float
    actions_applied: int


class SimulationResult(BaseModel):
    """A whole simulation: per day and in total."""

    model_config = ConfigDict(extra="forbid")

    seed: int
    days: int
    runs_per_day: int
    policy: str
    daily: list[DayResult]
    spend_micros: int
    value_micros: int
    roas: float | None
    reward: float
    baseline_spend_micros: int
    baseline_value_micros: int
    baseline_roas: float | None
    baseline_reward: float
    value_lift_pct: float
    spend_change_pct: float
    runs: int
    actions_applied: int
    beats_baseline: bool
    """True when value is higher at equal or lower spend (within 0.5 % rounding)."""


def _run_dayparts(dayparts_per_day: int, runs_per_day: int) -> set[int]:
    runs = min(runs_per_day, dayparts_per_day)
    return {int(i * dayparts_per_day / runs) for i in range(runs)}


def _day_truth(market: SimMarket, day: int) -> tuple[dict[str, float], dict[str, float]]:
    """Return (spend, expected value) per account of one day, in currency units."""
    ledger = market.true_ledger()
    rows = (ledger.step // market.dayparts_per_day) == day
    spend_by_holder = ledger.spend[rows].sum(axis=0) if rows.any() else np.zeros(len(market.holder_entity_ids()))
    value_by_holder = (
        ledger.expected_value[rows].sum(axis=0) if rows.any() else np.zeros(len(market.holder_entity_ids()))
    )
    spend: dict[str, float] = {}
    value: dict[str, float] = {}
    for (account_id, _), s, v in zip(market.holder_entity_ids(), spend_by_holder, value_by_holder, strict=True):
        spend[account_id] = spend.get(account_id, 0.0) + float(s)
        value[account_id] = value.get(account_id, 0.0) + float(v)
    return spend, value


def _day_reward(market: SimMarket, day: int, settings: Settings, budgets: dict[str, int]) -> float:
    spend, value = _day_truth(market, day)
    total = 0.0
    for account_id in spend:
        after = Metrics(
            cost_micros=int(spend[account_id] * MICROS_PER_UNIT),
            conversion_value_micros=int(value[account_id] * MICROS_PER_UNIT),
        )
        total += score_period(
            after, planned_spend_micros=budgets.get(account_id), before=None, spec=settings.reward
        ).total
    return total


def _account_budgets(market: SimMarket) -> dict[str, int]:
    budgets: dict[str, int] = {}
    for (account_id, _), b in zip(market.holder_entity_ids(), market.daily_budgets_micros(), strict=True):
        budgets[account_id] = budgets.get(account_id, 0) + int(b)
    return budgets


def run_simulation(
    settings: Settings,
    *,
    days: int,
    seed: int,
    runs_per_day: int = 3,
    bid_policy: object | None = None,
    progress: Callable[[str], None] | None = None,
) -> SimulationResult:
    """Play `days` days with `runs_per_day` optimization runs a day; compare with holding every setting.

    The simulation keeps its own throwaway database, so it never touches the configured one and the
    same seed gives the same result.
    """
    sim = settings.simulation
    market = default_market(seed=seed, dayparts_per_day=sim.dayparts_per_day, start_daypart=0)
    baseline = market.clone()
    run_at = _run_dayparts(market.dayparts_per_day, runs_per_day)
    sim_accounts = [a.id for a in settings.accounts if a.backend == "sim"]
    client = SimClient(market)
    clients = ClientSet(clients=dict.fromkeys(sim_accounts, client), sim_market=market)
    daily: list[DayResult] = []
    runs = 0
    applied_total = 0
    with tempfile.TemporaryDirectory(prefix="bidloop-sim-") as tmp:
        local = settings.model_copy(update={"data_dir": Path(tmp), "database_url": None})
        store = Store(local.resolved_database_url)
        saver = InMemorySaver()
        try:
            first_day = market.day
            for day in range(first_day, first_day + days):
                budgets_policy = _account_budgets(market)
                budgets_base = _account_budgets(baseline)
                applied_today = 0
                for _ in range(market.dayparts_per_day):
                    if market.daypart in run_at:
                        outcome = run_cycle(
                            local,
                            mode="simulate",
                            account_ids=sim_accounts,
                            trigger="simulate",
                            bid_policy=bid_policy,
                            store=store,
                            clients=clients,
                            checkpointer=saver,
                        )
                        runs += 1
                        applied_today += sum(1 for r in outcome.state.get("results", []) if r.status.value == "applied")
                    market.advance(1)
                    baseline.advance(1)
                spend, value = _day_truth(market, day)
                b_spend, b_value = _day_truth(baseline, day)
                s, v = sum(spend.values()), sum(value.values())
                bs, bv = sum(b_spend.values()), sum(b_value.values())
                result = DayResult(
                    day=day - first_day + 1,
                    spend_micros=int(s * MICROS_PER_UNIT),
                    value_micros=int(v * MICROS_PER_UNIT),
                    roas=v / s if s else None,
                    reward=_day_reward(market, day, settings, budgets_policy),
                    baseline_spend_micros=int(bs * MICROS_PER_UNIT),
                    baseline_value_micros=int(bv * MICROS_PER_UNIT),
                    baseline_roas=bv / bs if bs else None,
                    baseline_reward=_day_reward(baseline, day, settings, budgets_base),
                    actions_applied=applied_today,
                )
                applied_total += applied_today
                daily.append(result)
                if progress is not None:
                    progress(
                        f"day {result.day}/{days}: value {v:,.0f} vs {bv:,.0f} baseline, "
                        f"spend {s:,.0f} vs {bs:,.0f}, {applied_today} actions applied"
                    )
        finally:
            store.dispose()

    spend_total = sum(d.spend_micros for d in daily)
    value_total = sum(d.value_micros for d in daily)
    b_spend_total = sum(d.baseline_spend_micros for d in daily)
    b_value_total = sum(d.baseline_value_micros for d in daily)
    value_lift = (value_total / b_value_total - 1) * 100 if b_value_total else 0.0
    spend_change = (spend_total / b_spend_total - 1) * 100 if b_spend_total else 0.0
    return SimulationResult(
        seed=seed,
        days=days,
        runs_per_day=runs_per_day,
        policy=getattr(bid_policy, "version", None) or "heuristic-mroas@1",
        daily=daily,
        spend_micros=spend_total,
        value_micros=value_total,
        roas=value_total / spend_total if spend_total else None,
        reward=sum(d.reward for d in daily),
        baseline_spend_micros=b_spend_total,
        baseline_value_micros=b_value_total,
        baseline_roas=b_value_total / b_spend_total if b_spend_total else None,
        baseline_reward=sum(d.baseline_reward for d in daily),
        value_lift_pct=round(value_lift, 4),
        spend_change_pct=round(spend_change, 4),
        runs=runs,
        actions_applied=applied_total,
        beats_baseline=value_lift > 0 and spend_change <= 0.5,
    )


def print_simulation(result: SimulationResult, console: Console) -> None:
    """Print the per-day table and the verdict."""
    table = Table(
        title=f"Simulation · seed {result.seed} · {result.days} days · {result.runs_per_day} runs/day · "
        f"policy {result.policy}",
        title_justify="left",
    )
    for col in ("day", "spend", "value", "ROAS", "reward", "hold: spend", "hold: value", "hold: ROAS", "hold: reward"):
        table.add_column(col, justify="right")

    def money(micros: int) -> str:
        return f"{micros / MICROS_PER_UNIT:,.0f}"

    def ratio(x: float | None) -> str:
        return f"{x:.2f}" if x is not None else "–"

    for d in result.daily:
        table.add_row(
            str(d.day),
            money(d.spend_micros),
            money(d.value_micros),
            ratio(d.roas),
            f"{d.reward:+.0f}",
            money(d.baseline_spend_micros),
            money(d.baseline_value_micros),
            ratio(d.baseline_roas),
            f"{d.baseline_reward:+.0f}",
        )
    table.add_row(
        "all",
        money(result.spend_micros),
        money(result.value_micros),
        ratio(result.roas),
        f"{result.reward:+.0f}",
        money(result.baseline_spend_micros),
        money(result.baseline_value_micros),
        ratio(result.baseline_roas),
        f"{result.baseline_reward:+.0f}",
        style="bold",
    )
    console.print(table)
    verdict = "beats" if result.beats_baseline else "does not beat"
    console.print(
        f"The policy {verdict} hold-current: value {result.value_lift_pct:+.1f} % at spend "
        f"{result.spend_change_pct:+.1f} % ({result.actions_applied} actions applied in {result.runs} runs)."
    )
