"""Time one optimization cycle for 100, 1,000 and 10,000 entities on the simulated market.

For each size the same work is timed twice in this process:

* `direct`: the agents' and the filter's own computation, plus the platform read and the (validate-only)
  apply, called as plain functions: the baseline.
* `cycle`: a full `bidloop run --dry-run` cycle through the LangGraph graph with the SQLite store and the
  SQLite checkpointer.

`overhead_share` = (cycle - own computation measured inside the cycle) / cycle: the share spent in the
graph, the store, the checkpoints and the report. Last line: JSON with the largest size's figures.

Run: python bench/cycle_speed.py [--sizes 100,1000,10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bidloop.agents import bid_shifter, creative_rotation, keyword_insight
from bidloop.core.agent_context import AgentContext
from bidloop.core.entities import Platform
from bidloop.core.settings import AccountConfig, Settings
from bidloop.core.store import Store
from bidloop.graph import nodes
from bidloop.graph.checkpoint import open_checkpointer
from bidloop.graph.runner import run_cycle
from bidloop.guardrails import FilterContext, evaluate, gate
from bidloop.tools.registry import ClientSet
from bidloop.tools.sim import SimClient, generated_market

ACCOUNT = "sim-gen"


class Stopwatch:
    """Accumulate the time spent inside wrapped functions."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


def direct_cycle(client: SimClient) -> float:
    start = time.perf_counter()
    snap = client.read_snapshot(ACCOUNT)
    ctx = AgentContext(run_id="direct")
    actions = (
        keyword_insight.propose_keyword_actions(snap, ctx)
        + bid_shifter.propose_bid_actions(snap, ctx)
        + creative_rotation.propose_creative_actions(snap, ctx)
    )
    decisions = evaluate(
        actions,
        {ACCOUNT: snap},
        Settings().guardrails,
        context=FilterContext(run_id="d", actor="bench", now=snap.as_of),
    )
    client.apply(ACCOUNT, gate(decisions), validate_only=True)
    return time.perf_counter() - start


def measure(size: int, repeats: int) -> dict[str, Any]:
    market = generated_market(size, seed=1)
    client = SimClient(market)
    n_entities = len(client.read_snapshot(ACCOUNT).entities)
    direct = statistics.median(direct_cycle(client) for _ in range(repeats))

    watch = Stopwatch()
    originals = {
        "propose_keyword_actions": nodes.propose_keyword_actions,
        "propose_bid_actions": nodes.propose_bid_actions,
        "propose_creative_actions": nodes.propose_creative_actions,
        "evaluate": nodes.evaluate,
        "gate": nodes.gate,
    }
    for name, fn in originals.items():
        setattr(nodes, name, watch.wrap(fn))
    timed_client = SimClient(market)
    timed_client.read_snapshot = watch.wrap(timed_client.read_snapshot)  # type: ignore[method-assign]
    timed_client.apply = watch.wrap(timed_client.apply)  # type: ignore[method-assign]
    cycles, owns = [], []
    try:
        with tempfile.TemporaryDirectory(prefix="bidloop-bench-") as tmp:
            settings = Settings(data_dir=Path(tmp), accounts=[AccountConfig(id=ACCOUNT, platform=Platform.GOOGLE_ADS)])
            store = Store(settings.resolved_database_url)
            clients = ClientSet(clients={ACCOUNT: timed_client}, sim_market=market)
            with open_checkpointer(settings) as saver:
                for _ in range(repeats):
                    watch.seconds = 0.0
                    start = time.perf_counter()
                    outcome = run_cycle(
                        settings, mode="dry-run", store=store, clients=clients, checkpointer=saver, trigger="bench"
                    )
                    cycles.append(time.perf_counter() - start)
                    owns.append(watch.seconds)
            actions = len(outcome.state.get("proposals", []))
            db_bytes = store.size_bytes() or 0
            store.dispose()
    finally:
        for name, fn in originals.items():
            setattr(nodes, name, fn)
    i = cycles.index(statistics.median(cycles))
    cycle, own = cycles[i], owns[i]
    return {
        "entities": n_entities,
        "actions": actions,
        "direct_s": round(direct, 4),
        "cycle_s": round(cycle, 4),
        "own_s": round(own, 4),
        "overhead_s": round(cycle - own, 4),
        "overhead_share": round((cycle - own) / cycle, 4),
        "cycle_over_direct": round(cycle / direct, 3),
        "store_mb_after": round(db_bytes / 2**20, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="comma-separated entity counts")
    parser.add_argument("--repeats", type=int, default=3, help="cycles per size (the median is reported)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = [measure(size, args.repeats) for size in sizes]

    header = (
        "entities",
        "actions",
        "direct s",
        "cycle s",
        "own s",
        "overhead s",
        "overhead %",
        "cycle/direct",
        "peak RSS MB",
    )
    print(" | ".join(f"{h:>12}" for h in header))
    for r in rows:
        print(
            " | ".join(
                f"{v:>12}"
                for v in (
                    r["entities"],
                    r["actions"],
                    f"{r['direct_s']:.3f}",
                    f"{r['cycle_s']:.3f}",
                    f"{r['own_s']:.3f}",
                    f"{r['overhead_s']:.3f}",
                    f"{100 * r['overhead_share']:.1f}",
                    f"{r['cycle_over_direct']:.2f}x",
                    r["peak_rss_mb"],
                )
            )
        )
    largest = rows[-1]
    print(json.dumps({**largest, "sizes": rows}))


if __name__ == "__main__":
    main()
