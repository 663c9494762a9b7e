"""The policy commands: `bidloop train`, `bidloop evaluate` and `bidloop policies list`.

`cli/main.py` calls `register(app)` once. The helpers of `cli/main.py` (settings, JSON output,
consoles) are imported inside each command, so either module may be imported first.
"""

from __future__ import annotations

import functools
import shlex
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from bidloop.core.errors import InputError

__all__ = ["register"]

policies_app = typer.Typer(help="Inspect the registered bid policies.", no_args_is_help=True)


def _main() -> Any:
    from bidloop.cli import main as cli_main

    return cli_main


def train(
    family: Annotated[
        list[str] | None,
        typer.Option("--family", "-f", help="Training family (repeatable; default: all but held-out)."),
    ] = None,
    timesteps: Annotated[int, typer.Option("--timesteps", "-n", help="Holder-steps to train.")] = 4_000_000,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Seed of the run.")] = 0,
    warm_start: Annotated[
        str | None, typer.Option("--warm-start", help="Continue from this registered policy (id or `default`).")
    ] = None,
    policy_id: Annotated[
        str | None, typer.Option("--id", help="Registry id to save as (default: ppo-<UTC timestamp>).")
    ] = None,
    eval_scenarios: Annotated[
        int, typer.Option("--eval-scenarios", help="Held-out scenarios per family scored after training (0: skip).")
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the policy's metadata as one JSON document.")] = False,
) -> None:
    """Train a shared per-holder PPO policy on simulated markets and register it under the data directory."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from bidloop.policies.registry import DEFAULT_POLICY_ID, find_policy, shipped_files, user_files, write_metadata
    from bidloop.policies.training import TRAINING_FAMILIES, TrainingConfig, train_policy

    cli = _main()
    st = cli.settings()
    if timesteps < 1:
        raise InputError(f"--timesteps must be positive, got {timesteps}", hint="for example --timesteps 200000")
    pid = policy_id or f"ppo-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    files = user_files(st.data_dir, pid)
    warm = None
    if warm_start is not None:
        warm = (
            shipped_files(DEFAULT_POLICY_ID)
            if warm_start == DEFAULT_POLICY_ID
            else find_policy(warm_start, st.data_dir)
        )
    config = TrainingConfig(
        families=tuple(family) if family else TRAINING_FAMILIES, total_timesteps=timesteps, seed=seed, warm_start=warm
    )
    command = (
        "bidloop " + shlex.join(sys.argv[1:])
        if sys.argv and "bidloop" in sys.argv[0]
        else _command(family, timesteps, seed, warm_start, pid)
    )
    with Progress(
        TextColumn("training"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} steps"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=cli.err,
        disable=as_json,
    ) as bar:
        task = bar.add_task("train", total=timesteps)
        meta = train_policy(
            config, files, command=command, progress=lambda done, total: bar.update(task, completed=done)
        )
    if eval_scenarios > 0:
        meta.evaluation = _quick_evaluation(files, eval_scenarios, seed, cli.progress_printer(not as_json))
        write_metadata(files, meta)
    if as_json:
        cli.emit_json(meta.model_dump(mode="json"))
        return
    cli.out.print(f"registered policy [bold]{pid}[/] in {files.model.parent} ({meta.train_wall_s:.0f} s)")
    if meta.evaluation:
        cli.out.print(f"  held-out mean: {meta.evaluation.get('policy_pct_of_oracle', float('nan')):.1f} % of oracle")
    cli.out.print(f"  use it with `policy: {pid}` in bidloop.yaml, or compare: `bidloop evaluate --policy {pid}`")


def _command(family: list[str] | None, timesteps: int, seed: int, warm_start: str | None, pid: str) -> str:
    parts = ["bidloop", "train", "--timesteps", str(timesteps), "--seed", str(seed), "--id", pid]
    for f in family or []:
        parts += ["--family", f]
    if warm_start:
        parts += ["--warm-start", warm_start]
    return shlex.join(parts)


def _quick_evaluation(files: Any, n: int, seed: int, progress: Any) -> dict[str, Any]:
    from bidloop.policies.evaluation import evaluate_scenarios, held_out_specs, summarise
    from bidloop.policies.learned import HolderPolicyModel, SessionPolicy
    from bidloop.tools.sim.scenarios import SCENARIO_FAMILIES

    model = HolderPolicyModel(files)
    scores = evaluate_scenarios(
        held_out_specs(SCENARIO_FAMILIES, n, seed=seed),
        {"learned": lambda: SessionPolicy(model)},
        oracle_iterations=150,
        progress=progress,
    )
    summary = summarise(scores, policy_names=["learned"])
    row = summary["policies"]["learned"]  # type: ignore[index]
    return {
        "policy_pct_of_oracle": row["mean_pct"],
        "per_family_pct": {f: v["mean_pct"] for f, v in row["per_family"].items()},
        "best_baseline": summary["best_baseline"],
        "scenarios_per_family": n,
        "days": 14,
    }


def evaluate(
    policy: Annotated[
        list[str] | None, typer.Option("--policy", "-p", help="Policy id (repeatable; default: the configured one).")
    ] = None,
    families: Annotated[
        list[str] | None, typer.Option("--families", "-f", help="Families to score (repeatable; default: all nine).")
    ] = None,
    scenarios: Annotated[int, typer.Option("--scenarios", "-n", help="Held-out scenarios per family.")] = 5,
    days: Annotated[int, typer.Option("--days", help="Scored days per scenario (14 or 28).")] = 14,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Evaluation seed (selects the held-out scenarios).")] = 0,
    plot: Annotated[Path | None, typer.Option("--plot", help="PNG to write (default: <data_dir>/reports/).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as one JSON document.")] = False,
) -> None:
    """Score policies against the baselines and the oracles on held-out simulated markets."""
    from rich.table import Table

    from bidloop.policies.baselines import BidPolicy
    from bidloop.policies.evaluation import evaluate_scenarios, held_out_specs, plot_summary, summarise
    from bidloop.policies.learned import HolderPolicyModel, SessionPolicy
    from bidloop.policies.loader import DEFAULT, HEURISTIC
    from bidloop.policies.registry import find_policy, shipped_files
    from bidloop.tools.sim.scenarios import SCENARIO_FAMILIES

    cli = _main()
    st = cli.settings()
    fams = list(families) if families else list(SCENARIO_FAMILIES)
    unknown = [f for f in fams if f not in SCENARIO_FAMILIES]
    if unknown:
        raise InputError(f"unknown families {unknown}", hint=f"choose from {', '.join(SCENARIO_FAMILIES)}")
    if days < 1:
        raise InputError(f"--days must be positive, got {days}")
    ids = list(policy) if policy else [st.policy if st.policy != HEURISTIC else DEFAULT]
    models: dict[str, Any] = {}
    for pid in ids:
        files = shipped_files(DEFAULT) if pid == DEFAULT else find_policy(pid, st.data_dir)
        models[pid] = HolderPolicyModel(files)
    factories: dict[str, Callable[[], BidPolicy]] = {
        pid: functools.partial(SessionPolicy, m, pid) for pid, m in models.items()
    }
    scores = evaluate_scenarios(
        held_out_specs(fams, scenarios, days=days, seed=seed), factories, progress=cli.progress_printer(not as_json)
    )
    summary = summarise(scores, policy_names=ids)
    png = plot or st.data_dir / "reports" / f"evaluate-{datetime.now(UTC):%Y%m%d-%H%M%S}.png"
    summary["plot"] = str(plot_summary(summary, png))
    if as_json:
        cli.emit_json(summary)
        return
    best = summary["best_baseline"]
    table = Table(title=f"% of horizon oracle ({scenarios} held-out scenarios per family, {days} days)")
    table.add_column("policy")
    for f in fams:
        table.add_column(f, justify="right")
    table.add_column("mean [95 % CI]", justify="right")
    table.add_column(f"Δ vs {best}", justify="right")
    rows: dict[str, dict[str, Any]] = summary["policies"]  # type: ignore[assignment]
    for name, row in rows.items():
        cells = [f"{row['per_family'][f]['mean_pct']:.1f}" for f in fams]
        diff = row.get("diff_vs_best_baseline")
        diff_cell = f"{diff:+.1f} [{row['diff_ci_low']:+.1f}, {row['diff_ci_high']:+.1f}]" if diff is not None else "–"
        table.add_row(name, *cells, f"{row['mean_pct']:.1f} [{row['ci_low']:.1f}, {row['ci_high']:.1f}]", diff_cell)
    cli.out.print(table)
    if summary["solver_failures"]:
        cli.out.print(f"[yellow]{summary['solver_failures']} scenario(s) where a policy beat the oracle's solver[/]")
    cli.out.print(f"plot: {summary['plot']}")


@policies_app.command("list")
def policies_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """List the shipped and user-trained policies with their observation spec and scores."""
    from rich.table import Table

    from bidloop.core.errors import PolicyError
    from bidloop.policies.registry import list_policies

    cli = _main()
    st = cli.settings()
    rows: list[dict[str, Any]] = []
    for files in list_policies(st.data_dir):
        try:
            meta = files.read_metadata()
            rows.append(
                {
                    "id": files.policy_id,
                    "source": "shipped" if files.shipped else "trained",
                    "version": meta.version,
                    "observation_spec": meta.observation_spec_version,
                    "families": meta.families,
                    "timesteps": meta.total_timesteps,
                    "pct_of_oracle": meta.evaluation.get("policy_pct_of_oracle"),
                    "created_at": meta.created_at.isoformat(),
                    "usable": True,
                    "problem": None,
                }
            )
        except PolicyError as exc:
            rows.append(
                {
                    "id": files.policy_id,
                    "source": "shipped" if files.shipped else "trained",
                    "usable": False,
                    "problem": exc.message,
                }
            )
    if as_json:
        cli.emit_json(rows)
        return
    table = Table(title=f"Policies (configured: {st.policy})", title_justify="left")
    for col in ("id", "source", "version", "obs spec", "timesteps", "% of oracle", "status"):
        table.add_column(col, overflow="fold")
    for r in rows:
        pct = r.get("pct_of_oracle")
        table.add_row(
            r["id"],
            r["source"],
            r.get("version", "–"),
            r.get("observation_spec", "–"),
            f"{r['timesteps']:,}" if r.get("timesteps") else "–",
            f"{pct:.1f}" if pct else "–",
            "ok" if r["usable"] else f"[red]unusable: {r['problem']}[/]",
        )
    if not rows:
        table.add_row("–", "no policies: try `bidloop train`", "", "", "", "", "")
    cli.out.print(table)


def register(app: typer.Typer) -> None:
    """Add `train`, `evaluate` and the `policies` sub-app to the `bidloop` command."""
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.add_typer(policies_app, name="policies")
