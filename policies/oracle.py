"""Compute the clairvoyant oracles that normalise every score: the horizon oracle and the myopic one.

Both know the true curves (`MarketParams`) and the realised exogenous path; both act on the spend put up
per daypart and holder (``planned_spend``) and the multiplier m in [0.5, 2] that the holder's lever
reaches (the bid under manual CPC; under Smart Bidding the oracle sets the m its target would give
directly; under lowest cost m stays 1, as for every policy), a superset of what any policy can do
through budgets, bids and targets: a policy whose days never exceed the account budget is one point of the
oracle's feasible set, so a policy can at best tie it.

* `horizon_oracle` optimises all T × N spends and bids jointly under "each day's spend ≤ the account's
  daily budget" (per day, a softmax over dayparts × holders plus an "unspent" slot), with gradients from
  torch autodiff through `rollout_expected`. It is multi-started (equal split, holding the initial set-up,
  the myopic plan and any plans passed in, e.g. the baselines'), the starts batched as extra holders.
* `myopic_oracle` maximises each daypart's value alone (true curves, current state), with the day's
  remaining budget paced by the demand curve: what a perfectly informed but non-anticipating policy gets.

The guard `guard_oracle` takes the maximum of the oracle and every policy's value and flags a solver
failure when a policy beat the solver.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from numpy.typing import NDArray

from bidloop.policies.env import BID_MULT_HIGH, BID_MULT_LOW, MarketSession
from bidloop.tools.sim.model import CoreParams, CoreState, ExoPath, convert_arrays, expected_step, rollout_expected

__all__ = ["OracleResult", "Plan", "guard_oracle", "horizon_oracle", "myopic_oracle", "plan_value"]

FloatArray = NDArray[np.float64]
_LOG2 = float(np.log(2.0))


@dataclass(frozen=True)
class Plan:
    """Spend put up and bid multipliers per scored step: each ``(T, N)``; spend in currency units."""

    spend: FloatArray
    bid_mult: FloatArray


@dataclass
class OracleResult:
    """An oracle's value (expected conversion value over the scored steps) and its plan."""

    value: float
    plan: Plan
    starts: dict[str, float] = field(default_factory=dict)
    """Value reached from each start."""


def _torch(a: object) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


def _tile(session: MarketSession, copies: int) -> tuple[CoreParams, CoreState, ExoPath]:
    """Return params, start state and exo path with the holders repeated `copies` times (torch)."""
    core = session.core
    params = CoreParams(
        *(np.concatenate([np.asarray(a)] * copies, axis=0) for a in core)  # (S·N,) or (S·N, P)
    )
    state = CoreState(
        np.concatenate([session.start_state.adstock] * copies),
        np.concatenate([session.start_state.exposures] * copies, axis=0),
    )
    path = session.exo_path
    tiled = [_torch(np.concatenate([np.asarray(a)] * copies, axis=1)) for a in path[:5]]
    exo = ExoPath._make([*tiled, np.asarray(path.daypart)])
    return convert_arrays(params, _torch), convert_arrays(state, _torch), exo


def plan_value(session: MarketSession, plan: Plan) -> float:
    """Return the expected value of a plan from the session's start (numpy, no gradient)."""
    n = session.spec.n_holders
    out = rollout_expected(
        np,
        session.core,
        session.start_state,
        session.exo_path,
        bid_mult=plan.bid_mult,
        reach=np.ones(n),
        quality=np.ones(n),
        creative_share=np.ones((n, 1)),
        planned_spend=plan.spend,
    )
    return float(np.asarray(out.value).sum())


def _plan_to_vars(plan: Plan, budget: float, days: int, p: int) -> tuple[FloatArray, FloatArray]:
    _t, n = plan.spend.shape
    spend = np.maximum(plan.spend, 0.0).reshape(days, p * n)
    eps = 1e-4 * budget
    unspent = np.maximum(budget - spend.sum(axis=1, keepdims=True), eps)
    logits = np.log(np.concatenate([spend + eps, unspent], axis=1) / budget)
    u = np.arctanh(np.clip(np.log(np.clip(plan.bid_mult, BID_MULT_LOW, BID_MULT_HIGH)) / _LOG2, -0.995, 0.995))
    return logits, u


def horizon_oracle(
    session: MarketSession,
    extra_plans: dict[str, Plan] | None = None,
    *,
    iterations: int = 300,
    learning_rate: float = 0.08,
) -> OracleResult:
    """Return the best plan found for the whole horizon, knowing the true curves and the realised path.

    Args:
        session: The scenario (only its parameters, start state and exo path are read).
        extra_plans: Plans to start from besides equal split and hold-current (e.g. the baselines').
        iterations: Adam steps (all starts move together, batched as extra holders).
        learning_rate: Adam's step size on the logits.
    """
    spec = session.spec
    n, p, days, t_steps = spec.n_holders, spec.dayparts_per_day, spec.days, spec.n_steps
    budget = session.total_budget
    starts: dict[str, Plan] = {
        "equal": Plan(np.full((t_steps, n), budget / (p * n)), np.ones((t_steps, n))),
        "hold": _hold_plan(session),
    }
    starts.update(extra_plans or {})
    names = list(starts)
    s = len(names)
    init = [_plan_to_vars(starts[k], budget, days, p) for k in names]
    logits = torch.tensor(np.stack([i[0] for i in init]), dtype=torch.float64, requires_grad=True)  # (S, D, P·N+1)
    u = torch.tensor(np.stack([i[1] for i in init]), dtype=torch.float64, requires_grad=True)  # (S, T, N)
    params, state, exo = _tile(session, s)
    lever = torch.as_tensor(np.tile(session.params.has_lever.astype(np.float64), s), dtype=torch.float64)
    ones = torch.ones(s * n, dtype=torch.float64)
    share = torch.ones((s * n, 1), dtype=torch.float64)

    def evaluate(z: torch.Tensor, uu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        spend = torch.softmax(z, dim=-1)[..., : p * n] * budget  # (S, D, P·N)
        spend = spend.reshape(s, t_steps, n).permute(1, 0, 2).reshape(t_steps, s * n)
        mult = torch.exp2(torch.tanh(uu).permute(1, 0, 2).reshape(t_steps, s * n) * lever)
        out = rollout_expected(
            torch,
            params,
            state,
            exo,
            bid_mult=mult,
            reach=ones,
            quality=ones,
            creative_share=share,
            planned_spend=spend,
        )
        per_start = out.value.reshape(t_steps, s, n).sum(dim=(0, 2))
        return per_start, spend, mult

    optimizer = torch.optim.Adam([logits, u], lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(iterations, 1), eta_min=0.005)
    best_value = np.full(s, -np.inf)
    best_spend = np.zeros((s, t_steps, n))
    best_mult = np.ones((s, t_steps, n))
    for _ in range(iterations + 1):
        optimizer.zero_grad()
        per_start, spend, mult = evaluate(logits, u)
        values = per_start.detach().numpy()
        improved = values > best_value
        if improved.any():
            sp = spend.detach().numpy().reshape(t_steps, s, n).transpose(1, 0, 2)
            mu = mult.detach().numpy().reshape(t_steps, s, n).transpose(1, 0, 2)
            best_value[improved] = values[improved]
            best_spend[improved] = sp[improved]
            best_mult[improved] = mu[improved]
        (-per_start.sum() / budget).backward()
        optimizer.step()
        schedule.step()
    k = int(np.argmax(best_value))
    plan = Plan(best_spend[k], best_mult[k])
    return OracleResult(plan_value(session, plan), plan, dict(zip(names, best_value.tolist(), strict=True)))


def _hold_plan(session: MarketSession) -> Plan:
    n = session.spec.n_holders
    out = rollout_expected(
        np,
        session.core,
        session.start_state,
        session.exo_path,
        bid_mult=np.ones(n),
        reach=np.ones(n),
        quality=np.ones(n),
        creative_share=np.ones((n, 1)),
        daily_budget=session.initial_budget,
    )
    return Plan(np.asarray(out.planned_spend), np.ones((session.spec.n_steps, n)))


def myopic_oracle(session: MarketSession, *, iterations: int = 40, learning_rate: float = 0.15) -> OracleResult:
    """Return the value of maximising each daypart's value alone with the true curves and current state.

    The day's remaining account budget is put up in proportion to the demand still to come that day
    (budget-weighted day-parting), and split across holders and bids to maximise this daypart's value.
    """
    spec = session.spec
    n, _p, t_steps = spec.n_holders, spec.dayparts_per_day, spec.n_steps
    budget = session.total_budget
    core_np = session.core
    core_t = convert_arrays(core_np, _torch)
    weights = session.params.daypart_weights * session.initial_budget[:, None]
    account_w = weights.sum(axis=0)
    tail = np.cumsum(account_w[::-1])[::-1]
    state = CoreState(session.start_state.adstock.copy(), session.start_state.exposures.copy())
    z = torch.zeros(n + 1, dtype=torch.float64, requires_grad=True)
    u = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    lever = torch.as_tensor(session.params.has_lever.astype(np.float64), dtype=torch.float64)
    ones_t = torch.ones(n, dtype=torch.float64)
    share_t = torch.ones((n, 1), dtype=torch.float64)
    spend_plan = np.zeros((t_steps, n))
    mult_plan = np.ones((t_steps, n))
    total = 0.0
    spent_today = 0.0
    for t in range(t_steps):
        daypart = int(session.exo_path.daypart[t])
        if daypart == 0:
            spent_today = 0.0
        step_budget = max(budget - spent_today, 0.0) * account_w[daypart] / tail[daypart]
        exo_np = session.exo_path.step(t)
        exo_t = type(exo_np)(*(_torch(a) for a in exo_np))
        state_t = convert_arrays(state, _torch)
        optimizer = torch.optim.Adam([z, u], lr=learning_rate)
        best: tuple[float, FloatArray, FloatArray] = (-np.inf, np.zeros(n), np.ones(n))
        for _ in range(iterations):
            optimizer.zero_grad()
            planned = torch.softmax(z, dim=0)[:n] * step_budget
            mult = torch.exp2(torch.tanh(u) * lever)
            _, out = expected_step(
                torch,
                core_t,
                state_t,
                exo_t,
                planned_spend=planned,
                bid_mult=mult,
                reach=ones_t,
                quality=ones_t,
                creative_share=share_t,
            )
            value = out.value.sum()
            current = float(value.detach())
            if current > best[0]:
                best = (current, planned.detach().numpy().copy(), mult.detach().numpy().copy())
            (-value / max(step_budget, 1e-9)).backward()
            optimizer.step()
        _, planned_np, mult_np = best
        state, out_np = expected_step(
            np,
            core_np,
            state,
            exo_np,
            planned_spend=planned_np,
            bid_mult=mult_np,
            reach=np.ones(n),
            quality=np.ones(n),
            creative_share=np.ones((n, 1)),
        )
        spent_today += float(out_np.spend.sum())
        total += float(out_np.value.sum())
        spend_plan[t] = planned_np
        mult_plan[t] = mult_np
    return OracleResult(total, Plan(spend_plan, mult_plan))


def guard_oracle(
    oracle_value: float, policy_values: dict[str, float], rel_tol: float = 1e-6
) -> tuple[float, list[str]]:
    """Return max(oracle, every policy's value) and the names of policies that beat the solver (failures)."""
    beaten = [name for name, v in policy_values.items() if v > oracle_value * (1.0 + rel_tol)]
    return max([oracle_value, *policy_values.values()]), beaten
