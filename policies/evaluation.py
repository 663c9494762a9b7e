"""Score policies against baselines and oracles on held-out simulated markets ("% of horizon oracle").

Every policy plays the same scenarios (common random numbers: the exogenous path depends on the
scenario seed only) and is scored on the *expected* conversion value of what it played. Test scenarios
use seeds from `TEST_SEED_BASE` on, disjoint from training seeds. Statistics: mean with a 95 %
bootstrap interval per family, and paired differences (same scenarios) against the best baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bidloop.core.errors import InputError
from bidloop.policies.baselines import BASELINE_NAMES, BidPolicy, make_baseline
from bidloop.policies.env import TEST_SEED_BASE, EpisodeSpec, MarketSession
from bidloop.policies.oracle import Plan, guard_oracle, horizon_oracle, myopic_oracle

__all__ = [
    "EpisodeResult",
    "ScenarioScores",
    "bootstrap_mean_ci",
    "evaluate_scenarios",
    "held_out_specs",
    "play",
    "plot_summary",
    "summarise",
]

MYOPIC = "myopic_oracle"


@dataclass
class EpisodeResult:
    """What one policy did on one scenario.

    Attributes:
        value: Expected conversion value over the scored steps, currency units.
        overspent_days: Days whose account spend exceeded the account's daily budget.
        plan: Spend and bid multipliers per step (seeds the oracle).
        mean_abs_budget_change: Mean |Δbudget| / budget per step (action volatility).
        bid_moves: Lever moves (≥ 2 %) on holders whose strategy uses bids.
        target_moves: Lever moves (≥ 2 %) on Smart Bidding holders: target changes.
    """

    value: float
    overspent_days: int
    plan: Plan
    mean_abs_budget_change: float
    bid_moves: int = 0
    target_moves: int = 0


def play(policy: BidPolicy, spec: EpisodeSpec) -> EpisodeResult:
    """Play one scenario with a policy and return its score."""
    session = MarketSession(spec)
    policy.reset(spec.n_holders, spec.seed)
    while not session.done:
        wish, factor = policy.act(session.reported())
        session.apply(wish, factor)
        session.step()
    budgets = np.stack(session.budget_trace)
    prev = np.vstack([session.initial_budget[None, :], budgets[:-1]])
    change = float(np.mean(np.abs(budgets - prev) / np.maximum(prev, 1e-9)))
    plan = Plan(np.stack(session.spend_trace), np.stack(session.bid_trace))
    return EpisodeResult(
        session.total_value, session.overspent_days(), plan, change, session.bid_moves, session.target_moves
    )


@dataclass
class ScenarioScores:
    """Every policy's value on one scenario, and the oracle's.

    Attributes:
        spec: The scenario.
        values: Expected value per policy name (baselines, the myopic oracle, learned policies).
        oracle_value: The guarded horizon oracle's value.
        solver_failures: Policies that beat the raw oracle (flagged, then the oracle is raised to them).
        overspent_days: Overspent days per policy.
        volatility: Mean |Δbudget| / budget per step, per policy.
        lever_moves: (bid moves, target moves) per policy.
    """

    spec: EpisodeSpec
    values: dict[str, float]
    oracle_value: float
    solver_failures: list[str] = field(default_factory=list)
    overspent_days: dict[str, int] = field(default_factory=dict)
    volatility: dict[str, float] = field(default_factory=dict)
    lever_moves: dict[str, tuple[int, int]] = field(default_factory=dict)

    def target_share(self, name: str) -> float | None:
        """Return the share of a policy's bid-type moves that were target changes (None if it moved none)."""
        bids, targets = self.lever_moves.get(name, (0, 0))
        return targets / (bids + targets) if bids + targets else None

    def pct_of_oracle(self, name: str) -> float:
        """Return a policy's value as % of the horizon oracle."""
        return 100.0 * self.values[name] / self.oracle_value if self.oracle_value > 0 else 0.0


def held_out_specs(
    families: Sequence[str], n_scenarios: int, *, n_holders: int = 5, days: int = 14, seed: int = 0
) -> list[EpisodeSpec]:
    """Return held-out test scenarios: `n_scenarios` per family, seeds from `TEST_SEED_BASE + 1000·seed`."""
    if n_scenarios < 1:
        raise InputError("evaluate at least one scenario per family", hint="pass --scenarios 1 or more")
    base = TEST_SEED_BASE + 1000 * seed
    return [EpisodeSpec(f, base + i, n_holders, days) for f in families for i in range(n_scenarios)]


def evaluate_scenarios(
    specs: Sequence[EpisodeSpec],
    policies: dict[str, Callable[[], BidPolicy]],
    *,
    baselines: Sequence[str] = BASELINE_NAMES,
    oracle_iterations: int = 300,
    with_myopic: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[ScenarioScores]:
    """Play every policy and baseline on every scenario and compute the oracles.

    Args:
        specs: The scenarios.
        policies: Learned (or other) policies by name, as factories.
        baselines: Baseline names to include.
        oracle_iterations: Adam steps of the horizon oracle.
        with_myopic: Whether to compute the myopic oracle too (it also seeds the horizon oracle).
        progress: Called with one line per scenario.
    """
    results: list[ScenarioScores] = []
    for index, spec in enumerate(specs):
        played: dict[str, EpisodeResult] = {}
        for name in baselines:
            played[name] = play(make_baseline(name, spec.max_change_pct), spec)
        for name, factory in policies.items():
            played[name] = play(factory(), spec)
        session = MarketSession(spec)
        values = {k: r.value for k, r in played.items()}
        seeds = {k: r.plan for k, r in played.items()}
        if with_myopic:
            myopic = myopic_oracle(session)
            values[MYOPIC] = myopic.value
            seeds[MYOPIC] = myopic.plan
        oracle = horizon_oracle(session, seeds, iterations=oracle_iterations)
        guarded, beaten = guard_oracle(oracle.value, values)
        results.append(
            ScenarioScores(
                spec=spec,
                values=values,
                oracle_value=guarded,
                solver_failures=beaten,
                overspent_days={k: r.overspent_days for k, r in played.items()},
                volatility={k: r.mean_abs_budget_change for k, r in played.items()},
                lever_moves={k: (r.bid_moves, r.target_moves) for k, r in played.items()},
            )
        )
        if progress is not None:
            progress(f"scenario {index + 1}/{len(specs)}: {spec.family} seed {spec.seed} done")
    return results


def bootstrap_mean_ci(
    samples: Sequence[float] | np.ndarray,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    strata: Sequence[str] | None = None,
) -> tuple[float, float, float]:
    """Return (mean, low, high): the mean and its 95 % percentile-bootstrap interval (stratified if given)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    if strata is None:
        idx = rng.integers(0, x.size, size=(n_resamples, x.size))
        means = x[idx].mean(axis=1)
    else:
        groups = [np.flatnonzero(np.asarray(strata) == g) for g in dict.fromkeys(strata)]
        # mean over strata of the stratum means, resampling within each stratum
        per_group = [x[g][rng.integers(0, g.size, size=(n_resamples, g.size))].mean(axis=1) for g in groups]
        means = np.mean(per_group, axis=0)
        return float(np.mean([x[g].mean() for g in groups])), *np.percentile(means, [2.5, 97.5]).tolist()
    return float(x.mean()), *np.percentile(means, [2.5, 97.5]).tolist()


def summarise(
    scores: Sequence[ScenarioScores], *, policy_names: Sequence[str], baselines: Sequence[str] = BASELINE_NAMES
) -> dict[str, object]:
    """Return per-policy, per-family mean % of oracle with 95 % CIs and paired differences to the best baseline.

    The best baseline is the one with the highest mean % of oracle over all scenarios (stratified by family).
    """
    families = list(dict.fromkeys(s.spec.family for s in scores))
    strata = [s.spec.family for s in scores]
    names = [*policy_names, *baselines]
    if scores and MYOPIC in scores[0].values:
        names.append(MYOPIC)
    pct = {n: np.array([s.pct_of_oracle(n) for s in scores]) for n in names}
    overall = {n: bootstrap_mean_ci(pct[n], strata=strata) for n in names}
    best_baseline = max(baselines, key=lambda b: overall[b][0]) if baselines else None
    table: dict[str, object] = {"families": families, "best_baseline": best_baseline, "policies": {}}
    policies_out: dict[str, object] = {}
    for n in names:
        per_family = {}
        for f in families:
            mask = np.array([s.spec.family == f for s in scores])
            mean, lo, hi = bootstrap_mean_ci(pct[n][mask])
            entry: dict[str, float] = {"mean_pct": mean, "ci_low": lo, "ci_high": hi}
            if best_baseline is not None and n != best_baseline:
                d_mean, d_lo, d_hi = bootstrap_mean_ci(pct[n][mask] - pct[best_baseline][mask])
                entry.update({"diff_vs_best_baseline": d_mean, "diff_ci_low": d_lo, "diff_ci_high": d_hi})
            per_family[f] = entry
        mean, lo, hi = overall[n]
        row: dict[str, object] = {"mean_pct": mean, "ci_low": lo, "ci_high": hi, "per_family": per_family}
        if best_baseline is not None and n != best_baseline:
            d = bootstrap_mean_ci(pct[n] - pct[best_baseline], strata=strata)
            row.update({"diff_vs_best_baseline": d[0], "diff_ci_low": d[1], "diff_ci_high": d[2]})
        row["overspend_scenarios"] = sum(1 for s in scores if s.overspent_days.get(n, 0) > 0)
        policies_out[n] = row
    table["policies"] = policies_out
    table["solver_failures"] = sum(1 for s in scores if s.solver_failures)
    return table


def plot_summary(summary: dict[str, object], path: str | Path, *, title: str = "% of horizon oracle") -> Path:
    """Write a PNG bar chart of mean % of oracle per family and policy, with the 95 % intervals.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = list(summary["families"])  # type: ignore[call-overload]
    policies: dict[str, dict[str, object]] = summary["policies"]  # type: ignore[assignment]
    names = list(policies)
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(max(8.0, 1.3 * len(families) + 3), 4.5))
    x = np.arange(len(families))
    for k, name in enumerate(names):
        per_family: dict[str, dict[str, float]] = policies[name]["per_family"]  # type: ignore[assignment]
        means = np.array([per_family[f]["mean_pct"] for f in families])
        low = means - np.array([per_family[f]["ci_low"] for f in families])
        high = np.array([per_family[f]["ci_high"] for f in families]) - means
        ax.bar(x + (k - (len(names) - 1) / 2) * width, means, width, yerr=[low, high], label=name, capsize=2)
    ax.set_xticks(x, families, rotation=30, ha="right")
    ax.set_ylabel("% of horizon oracle (mean, 95 % CI)")
    lowest = min(
        (float(policies[n]["per_family"][f]["mean_pct"]) for n in names for f in families),  # type: ignore[index]
        default=50.0,
    )
    ax.set_ylim(max(0.0, lowest - 5.0), 102.0)
    ax.axhline(100.0, color="black", linewidth=0.8)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
