"""Benchmark the shipped (or a registered) bid policy against baselines and oracles on held-out markets.

Usage (from the repo root):
    python bench/policy_quality.py                 # 3 held-out scenarios per family, 14 days
    python bench/policy_quality.py --scenarios 1   # smallest (development)
    python bench/policy_quality.py --days 28       # longer horizon (myopia / end-of-horizon check)
    python bench/policy_quality.py --train         # also re-run the documented training and time it

Prints a table (% of horizon oracle per family, 95 % bootstrap CIs, paired difference to the best
baseline), then as the very last line one JSON object with the headline keys, among them
`target_actions_share`: of the learned policy's bid-type actions (bid or target moves of 2 % or more),
the share that were target changes on Smart Bidding holders (the rest are bids where the strategy uses
bids; under lowest cost the policy has no such lever). Same arguments ⇒ the same
numbers (common random numbers, fixed seeds, single-threaded torch).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bidloop.policies.baselines import BASELINE_NAMES
from bidloop.policies.env import BudgetMarketEnv, HolderVecEnv
from bidloop.policies.evaluation import MYOPIC, evaluate_scenarios, held_out_specs, plot_summary, summarise
from bidloop.policies.learned import HolderPolicyModel, SessionPolicy
from bidloop.policies.registry import DEFAULT_POLICY_ID, find_policy, shipped_files, user_files
from bidloop.policies.training import TrainingConfig, train_policy
from bidloop.tools.sim.scenarios import SCENARIO_FAMILIES


def env_throughput(seconds: float = 3.0) -> float:
    """Return holder-steps per second of the vectorised training env under random actions."""
    venv = HolderVecEnv([BudgetMarketEnv(families=SCENARIO_FAMILIES, n_holders=n) for n in (3, 4, 5, 6)], seed=0)
    venv.reset()
    rng = np.random.default_rng(0)
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        venv.step(rng.uniform(-1, 1, size=(venv.num_envs, 2)).astype(np.float32))
        steps += venv.num_envs
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default=DEFAULT_POLICY_ID, help="policy id (default: the shipped one)")
    parser.add_argument("--data-dir", type=Path, default=Path(".bidloop"), help="where user-trained policies live")
    parser.add_argument("--scenarios", type=int, default=3, help="held-out scenarios per family")
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--families", nargs="*", default=list(SCENARIO_FAMILIES))
    parser.add_argument("--oracle-iterations", type=int, default=200)
    parser.add_argument("--plot", type=Path, default=Path("bench/out/policy_quality.png"))
    parser.add_argument("--train", action="store_true", help="re-run the documented training and time it")
    args = parser.parse_args()
    torch.set_num_threads(1)

    files = (
        shipped_files(DEFAULT_POLICY_ID)
        if args.policy == DEFAULT_POLICY_ID
        else find_policy(args.policy, args.data_dir)
    )
    model = HolderPolicyModel(files)
    meta = model.metadata
    train_wall_s = meta.train_wall_s
    train_source = "metadata (recorded when the policy was trained)"
    if args.train:
        with tempfile.TemporaryDirectory() as tmp:
            config = TrainingConfig(total_timesteps=meta.total_timesteps, seed=meta.train_seed, families=meta.families)
            started = time.perf_counter()
            train_policy(config, user_files(Path(tmp), "bench"), command=meta.command)
            train_wall_s = round(time.perf_counter() - started, 1)
            train_source = "measured now"

    throughput = env_throughput()
    started = time.perf_counter()
    specs = held_out_specs(args.families, args.scenarios, days=args.days, seed=args.seed)
    scores = evaluate_scenarios(
        specs,
        {"learned": lambda: SessionPolicy(model)},
        oracle_iterations=args.oracle_iterations,
        progress=lambda line: print(f"  {line}", flush=True),
    )
    eval_wall_s = time.perf_counter() - started
    summary = summarise(scores, policy_names=["learned"])
    rows = summary["policies"]
    best = summary["best_baseline"]
    held_out = [f for f in args.families if f in meta.held_out_families]
    in_dist = [f for f in args.families if f not in meta.held_out_families]

    print()
    print(
        f"policy {meta.policy_id} ({meta.version}); trained on {', '.join(meta.families)}; held out: "
        f"{', '.join(meta.held_out_families) or 'none'}"
    )
    print(
        f"{len(specs)} held-out scenarios ({args.scenarios} per family, seeds from 1,000,000), {args.days} days, "
        "5 holders; value = expected conversion value (CRN); % of the guarded horizon oracle"
    )
    names = ["learned", MYOPIC, *BASELINE_NAMES]
    header = f"{'family':<14}" + "".join(f"{n[:13]:>14}" for n in names) + f"{'Δ vs ' + best[:10]:>22}"
    print(header)
    print("-" * len(header))
    for f in args.families:
        mark = "*" if f in held_out else " "
        cells = "".join(f"{rows[n]['per_family'][f]['mean_pct']:>14.1f}" for n in names)
        d = rows["learned"]["per_family"][f]
        ci = f"[{d['diff_ci_low']:+.1f},{d['diff_ci_high']:+.1f}]"
        print(f"{f + mark:<14}{cells}{d['diff_vs_best_baseline']:>+10.1f} {ci}")
    print("-" * len(header))
    cells = "".join(f"{rows[n]['mean_pct']:>14.1f}" for n in names)
    d = rows["learned"]
    print(f"{'mean':<14}{cells}{d['diff_vs_best_baseline']:>+10.1f} [{d['diff_ci_low']:+.1f},{d['diff_ci_high']:+.1f}]")
    print("(* = family held out of training; Δ = paired difference in points, 95 % bootstrap CI)")

    def family_mean(name: str, fams: list[str]) -> float | None:
        vals = [rows[name]["per_family"][f]["mean_pct"] for f in fams]
        return float(np.mean(vals)) if vals else None

    learned, best_pct, myopic = rows["learned"]["mean_pct"], rows[best]["mean_pct"], rows[MYOPIC]["mean_pct"]
    gap_closed = (learned - best_pct) / (100.0 - best_pct) if best_pct < 100 else 0.0
    pairs = {
        n: round(float(np.mean([s.pct_of_oracle("learned") - s.pct_of_oracle(n) for s in scores])), 3)
        for n in [*BASELINE_NAMES, MYOPIC]
    }
    plot_summary(summary, args.plot, title=f"{meta.policy_id}: % of horizon oracle ({args.days} days)")
    print(
        f"learned beats: {', '.join(n for n, v in pairs.items() if v > 0) or 'nothing'}; "
        f"loses to: {', '.join(n for n, v in pairs.items() if v <= 0) or 'nothing'}"
    )
    print(
        f"gap closed vs best baseline: {gap_closed:.1%}; overspend scenarios (learned): "
        f"{rows['learned']['overspend_scenarios']}; solver failures: {summary['solver_failures']}"
    )
    print(f"env throughput: {throughput:,.0f} holder-steps/s (vectorised, random actions, 1 process)")
    print(f"documented training run: {meta.command!r}: {train_wall_s:.0f} s wall ({train_source})")
    print(f"evaluation wall time: {eval_wall_s:.0f} s; plot: {args.plot}")
    overspend_any = sum(1 for s in scores if any(v > 0 for v in s.overspent_days.values()))
    bid_moves = sum(s.lever_moves.get("learned", (0, 0))[0] for s in scores)
    target_moves = sum(s.lever_moves.get("learned", (0, 0))[1] for s in scores)
    target_share = target_moves / (bid_moves + target_moves) if bid_moves + target_moves else 0.0
    print(
        f"learned bid-type actions: {bid_moves} bid moves, {target_moves} target moves "
        f"(target share {target_share:.1%})"
    )
    result = {
        "policy": meta.policy_id,
        "policy_version": meta.version,
        "days": args.days,
        "scenarios_per_family": args.scenarios,
        "policy_pct_of_oracle": round(learned, 3),
        "policy_ci95": [round(rows["learned"]["ci_low"], 3), round(rows["learned"]["ci_high"], 3)],
        "policy_pct_in_distribution": family_mean("learned", in_dist),
        "policy_pct_held_out_families": family_mean("learned", held_out),
        "best_baseline": best,
        "best_baseline_pct_of_oracle": round(best_pct, 3),
        "myopic_oracle_pct_of_oracle": round(myopic, 3),
        "paired_diff_vs_best_baseline": round(rows["learned"]["diff_vs_best_baseline"], 3),
        "paired_diff_points": pairs,
        "gap_closed_vs_best_baseline": round(gap_closed, 4),
        "per_family_pct": {f: round(rows["learned"]["per_family"][f]["mean_pct"], 3) for f in args.families},
        "overspend_scenarios": rows["learned"]["overspend_scenarios"],
        "overspend_scenarios_any_policy": overspend_any,
        "target_actions_share": round(target_share, 4),
        "learned_bid_moves": bid_moves,
        "learned_target_moves": target_moves,
        "solver_failures": summary["solver_failures"],
        "env_holder_steps_per_s": round(throughput, 1),
        "train_wall_s": train_wall_s,
        "train_command": meta.command,
        "eval_wall_s": round(eval_wall_s, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
