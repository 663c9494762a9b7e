"""Two scheduler processes on one database never run the same account at once (SQLite and PostgreSQL).

Each process runs the real `Scheduler` (what `bidloop schedule` runs) over three schedules whose account
groups overlap, ticking through a simulated morning as fast as it can. The run function stands in for a
run: it holds the run for a moment and appends `(account, start, end, process)` to a shared journal.
Afterwards no two journal intervals on one account may overlap, and both processes must have run
something and been turned away by a lease at least once (else the test proved nothing).
"""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path

from bidloop.core.store import Store

_PROCESS = textwrap.dedent(
    """
    import os, sys, time
    from datetime import UTC, datetime, timedelta
    from bidloop.core.schedules import ScheduleConfig
    from bidloop.core.settings import Settings
    from bidloop.core.store import Store
    from bidloop.graph.runner import RunOutcome
    from bidloop.graph.scheduler import Scheduler

    url, journal, tag, start_at = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    every = dict(every_minutes=5, time_zone="UTC", misfire_grace_minutes=60)
    settings = Settings(
        data_dir="unused",
        schedules=[
            ScheduleConfig(name="a", accounts=["sim-google", "sim-meta"], **every),
            ScheduleConfig(name="b", accounts=["sim-meta", "sim-amazon"], **every),
            ScheduleConfig(name="c", accounts=["sim-amazon"], **every),
        ],
    )
    store = Store(url)

    def fake_run(settings, *, account_ids, run_id, **kw):
        start = time.time()
        time.sleep(0.03)
        end = time.time()
        with open(journal, "a") as f:
            f.write("".join(f"{a} {start!r} {end!r} {tag}\\n" for a in account_ids))
        return RunOutcome(run_id=run_id, status="completed")

    scheduler = Scheduler(settings, store, run_fn=fake_run, lease_ttl_s=30)
    while time.time() < start_at:
        time.sleep(0.005)
    now = datetime(2026, 6, 10, 6, 0, tzinfo=UTC)
    counts = {}
    for step in range(60):
        for attempt in scheduler.tick(now + timedelta(minutes=5 * step)):
            counts[attempt.status] = counts.get(attempt.status, 0) + 1
    print(counts, flush=True)
    """
)


def test_two_scheduler_processes_never_run_one_account_at_once(database_url: str, tmp_path: Path) -> None:
    Store(database_url).dispose()  # create the schema once, before the race
    journal = tmp_path / "journal.txt"
    start_at = time.time() + 4.0  # both start ticking together, after their imports
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS, database_url, str(journal), tag, str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("p1", "p2")
    ]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    counts = [ast.literal_eval(out.strip().splitlines()[-1]) for out, _ in outputs]

    intervals: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for line in journal.read_text().splitlines():
        account, start, end, tag = line.split()
        intervals[account].append((float(start), float(end), tag))
    for account, spans in intervals.items():
        spans.sort()
        for (_, e1, t1), (s2, _, t2) in itertools.pairwise(spans):
            assert s2 >= e1, f"{account}: run of {t2} started at {s2} while the run of {t1} held it until {e1}"

    assert set(intervals) == {"sim-google", "sim-meta", "sim-amazon"}
    assert {tag for spans in intervals.values() for *_, tag in spans} == {"p1", "p2"}, counts
    ran = sum(c.get("completed", 0) for c in counts)
    turned_away = sum(c.get("skipped", 0) + c.get("taken", 0) for c in counts)
    assert ran >= 30 and turned_away >= 1, counts
