"""Play one simulated day of scheduled intraday runs over 50 accounts and report time, outcomes and store size.

    python bench/schedule_day.py [--accounts 50] [--runs-per-day 12] [--group-size 10] [--database-url URL]

The simulated market gets N Google-like accounts (3 campaigns × 2 ad groups × 3 keywords × 2 search
terms, 2 ads per group), built with `MarketBuilder` because the sim's fixtures make only the 3 demo
accounts or one generated account. Schedules of `--group-size` accounts each fire every 24/R hours
from 00:00 to the day's last slot; the `Scheduler` (what `bidloop schedule` runs) plays the day on a
simulated clock, each run a real `run_cycle` on the shared market (leases, ledger, checkpoints, audit).
The market advances one daypart per slot. Baseline: the time spent inside the runs themselves, measured
in this process; the scheduler's overhead is the rest. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bidloop.core.entities import MatchType, Platform
from bidloop.core.money import MICROS_PER_UNIT
from bidloop.core.schedules import ScheduleConfig
from bidloop.core.settings import AccountConfig, Settings, SimulationConfig
from bidloop.core.store import Store
from bidloop.graph.runner import RunOutcome, run_cycle
from bidloop.graph.scheduler import Scheduler
from bidloop.tools.registry import SIM_MARKET_NAME
from bidloop.tools.sim import MarketBuilder, SimMarket, build_params, draw_design

DAY = datetime(2026, 6, 10, tzinfo=UTC)
CAMPAIGNS, GROUPS, KEYWORDS, TERMS, ADS = 3, 2, 3, 2, 2
WORDS = ("shoes", "jackets", "socks", "boots", "hats", "bags", "gloves", "belts", "scarves", "shirts")


def build_market(n_accounts: int, dayparts_per_day: int, seed: int = 7) -> SimMarket:
    """Return a market with `n_accounts` Google-like accounts `gen-00`..., warmed up for 14 days."""
    n_holders = n_accounts * CAMPAIGNS
    design = draw_design("stationary", seed, n_holders, dayparts_per_day)
    params = build_params(design)
    builder = MarketBuilder()
    next_id = 1_000_000

    def new_id() -> str:
        nonlocal next_id
        next_id += 1
        return str(next_id)

    for a in range(n_accounts):
        account = builder.account(f"gen-{a:02d}", Platform.GOOGLE_ADS, f"Generated account {a:02d}")
        for c in range(CAMPAIGNS):
            h = a * CAMPAIGNS + c
            word = WORDS[(a + c) % len(WORDS)]
            bid = max(50_000, round(float(params.ref_bid[h]) * MICROS_PER_UNIT))
            campaign = builder.campaign(
                account,
                new_id(),
                f"{word.title()} – Search {c + 1}",
                daily_budget_micros=round(float(design.daily_budget[h]) * MICROS_PER_UNIT),
            )
            for g in range(GROUPS):
                group = builder.ad_group(campaign, new_id(), f"{word.title()} – Group {g + 1}", cpc_bid_micros=bid)
                for k in range(KEYWORDS):
                    text = f"{('buy', 'best', 'cheap')[k]} {word} {a}{c}{g}"
                    kw = builder.keyword(group, new_id(), text, MatchType.PHRASE, cpc_bid_micros=bid)
                    for t in range(TERMS):
                        waste = t == TERMS - 1 and k == 0
                        term = f"free {text}" if waste else f"{text} {t + 1}"
                        builder.search_term(kw, term, cvr_mult=0.0 if waste else 1.0)
                for ad in range(ADS):
                    builder.creative(group, new_id(), f"{word.title()} ad {ad + 1}", ctr=0.02 + 0.01 * ad)
    market = builder.build(params, seed=seed)
    market.advance(14 * dayparts_per_day)
    return market


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--runs-per-day", type=int, default=12)
    parser.add_argument("--group-size", type=int, default=10, help="accounts per schedule (one run each)")
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary folder")
    args = parser.parse_args()
    if 24 * 60 % args.runs_per_day:
        parser.error("--runs-per-day must divide a day into whole minutes")

    data_dir = Path(tempfile.mkdtemp(prefix="bidloop-bench-"))
    every_minutes = 24 * 60 // args.runs_per_day
    last_slot = DAY + timedelta(minutes=every_minutes * (args.runs_per_day - 1))
    accounts = [AccountConfig(id=f"gen-{a:02d}", platform=Platform.GOOGLE_ADS) for a in range(args.accounts)]
    groups = [accounts[i : i + args.group_size] for i in range(0, len(accounts), args.group_size)]
    schedules = [
        ScheduleConfig(
            name=f"group-{g:02d}",
            accounts=[a.id for a in group],
            every_minutes=every_minutes,
            window=f"00:00-{last_slot:%H:%M}",
            time_zone="UTC",
        )
        for g, group in enumerate(groups)
    ]
    settings = Settings(
        data_dir=data_dir,
        database_url=args.database_url,
        accounts=accounts,
        schedules=schedules,
        simulation=SimulationConfig(dayparts_per_day=args.runs_per_day, start_daypart=0),
    )

    t0 = time.perf_counter()
    market = build_market(args.accounts, args.runs_per_day)
    build_s = time.perf_counter() - t0
    store = Store(settings.resolved_database_url)
    store.save_sim_market(SIM_MARKET_NAME, market.to_bytes())

    run_seconds: list[float] = []

    def timed_run(st: Settings, **kw: Any) -> RunOutcome:
        start = time.perf_counter()
        try:
            return run_cycle(st, advance_sim=False, **kw)
        finally:
            run_seconds.append(time.perf_counter() - start)

    scheduler = Scheduler(settings, store, run_fn=timed_run)
    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    for slot in range(args.runs_per_day):
        now = DAY + timedelta(minutes=every_minutes * slot, seconds=30)
        for attempt in scheduler.tick(now):
            counts[attempt.status] = counts.get(attempt.status, 0) + 1
        # The platform's clock moves on one daypart per slot, whatever the runs did.
        saved = store.load_sim_market(SIM_MARKET_NAME)
        moved = SimMarket.from_bytes(saved) if saved is not None else market
        moved.advance(1)
        store.save_sim_market(SIM_MARKET_NAME, moved.to_bytes())
    wall_s = time.perf_counter() - t0

    runs = store.list_runs(limit=100_000)
    writes = sum(len(store.writes_of(r.run_id)) for r in runs)
    store_bytes = store.size_bytes() or 0
    checkpoint_file = data_dir / "checkpoints.sqlite"
    checkpoint_bytes = sum(p.stat().st_size for p in (checkpoint_file, Path(f"{checkpoint_file}-wal")) if p.exists())
    in_runs_s = sum(run_seconds)
    completed = counts.get("completed", 0) + counts.get("waiting_approval", 0)
    result = {
        "accounts": args.accounts,
        "schedules": len(schedules),
        "slots": args.runs_per_day,
        "runs_completed": completed,
        "runs_skipped": counts.get("skipped", 0) + counts.get("missed", 0),
        "runs_failed": counts.get("failed", 0),
        "writes": writes,
        "wall_s": round(wall_s, 2),
        "in_runs_s": round(in_runs_s, 2),
        "scheduler_overhead_ratio": round((wall_s - in_runs_s) / in_runs_s, 4) if in_runs_s else None,
        "mean_run_s": round(in_runs_s / len(run_seconds), 3) if run_seconds else None,
        "market_build_s": round(build_s, 2),
        "store_bytes": store_bytes,
        "checkpoint_bytes": checkpoint_bytes,
        "database": store.engine.dialect.name,
    }
    print(f"one simulated day: {args.accounts} accounts, {len(schedules)} schedules × {args.runs_per_day} slots")
    print(f"{'metric':<28}{'value':>16}")
    print("-" * 44)
    for key in (
        "runs_completed",
        "runs_skipped",
        "runs_failed",
        "writes",
        "wall_s",
        "in_runs_s",
        "scheduler_overhead_ratio",
        "mean_run_s",
        "store_bytes",
        "checkpoint_bytes",
    ):
        print(f"{key:<28}{result[key]!s:>16}")
    store.dispose()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
