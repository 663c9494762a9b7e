"""A run killed with SIGKILL at a random point of `apply` resumes and applies every approved action exactly once.

How the test stays honest:

* **The platform outlives the run process.** A real platform keeps a write the moment it accepts it,
  whatever happens to bidloop afterwards. The embedded simulated market normally lives inside the run
  process (`ClientSet.persist` saves it when a live run ends), so a kill would silently take the
  platform's memory of the writes with it and any double send would go unnoticed. Here the market is
  wrapped as a *durable platform*: each accepted write is committed, together with a journal row
  naming the action, to the platform's own SQLite file before the client returns. The Meta trials use
  the fake Graph API server, which lives in the test process and counts applied updates per object.
* **The kill lands anywhere in apply.** The run process is a fork of the test process; a harness
  (test code, not production code) counts events inside the `apply` node: its start, right after the
  ledger's intent rows are committed, before and after each single write reaches the platform, after
  the outcomes are committed, before and after the audit records are appended. A counting run gives
  the number of events N; each trial draws k in 1..N and the process SIGKILLs itself at event k.
* **After the resume** (another process, from the LangGraph checkpoint): the run is completed; every
  cleared action has one final ledger row; the platform received every applied action exactly once
  (journal / server counters); the platform's end state equals that of an uninterrupted run; every
  decision and every write has exactly one audit record; and the audit chain verifies.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from sqlalchemy import select

from bidloop.core.clearance import Clearance
from bidloop.core.decisions import WriteResult, WriteStatus
from bidloop.core.entities import AccountInfo, EntityRef, EntityState, Platform
from bidloop.core.settings import AccountConfig, Settings
from bidloop.core.snapshot import Snapshot
from bidloop.core.store import AuditRow, Store
from bidloop.graph import nodes
from bidloop.graph.runner import resume_run, run_cycle
from bidloop.guardrails.audit import verify
from bidloop.tools.protocol import PlatformClient
from bidloop.tools.registry import ClientSet
from bidloop.tools.sim import SimClient, SimMarket, default_market

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the kill harness forks run processes (POSIX only)")

TRIALS = 20
RUN_ID = "20260610-080000-crash1"

# -- the harness: kill at the k-th event inside apply ------------------------------------------------


class KillHooks:
    """Count events inside `apply`; SIGKILL this process at event `kill_at` (0: never)."""

    def __init__(self, kill_at: int) -> None:
        self.kill_at = kill_at
        self.armed = False
        self.events: list[str] = []

    def event(self, name: str) -> None:
        if not self.armed:
            return
        self.events.append(name)
        if len(self.events) == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


def install_hooks(hooks: KillHooks) -> None:
    """Patch the graph's `apply` node and its audit append (in the forked run process only)."""
    real_apply, real_append = nodes.apply, nodes.append_many

    def apply(state: Any, runtime: Any) -> dict[str, Any]:
        hooks.armed = True
        hooks.event("apply-start")
        try:
            return real_apply(state, runtime)
        finally:
            hooks.armed = False

    def append_many(store: Store, records: Sequence[Any]) -> Any:
        hooks.event("audit-before")
        rows = real_append(store, records)
        hooks.event("audit-after")
        return rows

    nodes.apply = apply  # type: ignore[assignment]
    nodes.append_many = append_many  # type: ignore[assignment]


class HookedStore(Store):
    """The real store, reporting when the ledger's intents and outcomes are committed."""

    hooks: KillHooks

    def record_write_intents(self, run_id: str, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
        ids = super().record_write_intents(run_id, rows)
        self.hooks.event("intents-committed")
        return ids

    def record_write_outcomes(self, outcomes: Sequence[dict[str, Any]]) -> None:
        super().record_write_outcomes(outcomes)
        self.hooks.event("outcomes-committed")


class OneAtATime:
    """Send each clearance in its own platform call, so a kill can fall between two writes of one batch."""

    def __init__(self, inner: Any, hooks: KillHooks, on_applied: Callable[[Clearance], None] | None = None) -> None:
        self.inner, self.hooks, self.on_applied = inner, hooks, on_applied
        self.name = inner.name

    def list_accounts(self) -> list[AccountInfo]:
        return self.inner.list_accounts()  # type: ignore[no-any-return]

    def read_snapshot(self, account_id: str) -> Snapshot:
        return self.inner.read_snapshot(account_id)  # type: ignore[no-any-return]

    def read_back(self, account_id: str, refs: Sequence[EntityRef]) -> dict[str, EntityState]:
        return self.inner.read_back(account_id, refs)  # type: ignore[no-any-return]

    def apply(self, account_id: str, clearances: Sequence[Clearance], *, validate_only: bool = False) -> list[Any]:
        results: list[WriteResult] = []
        for c in clearances:
            self.hooks.event("before-send")
            [result] = self.inner.apply(account_id, [c], validate_only=validate_only)
            if result.status is WriteStatus.APPLIED and self.on_applied is not None:
                self.on_applied(c)
            self.hooks.event("after-send")
            results.append(result)
        return results


class DurablePlatform:
    """The simulated market as an external platform: state and a journal of applied writes, committed together."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def create(self, market: SimMarket) -> None:
        with sqlite3.connect(self.path) as db:
            db.execute("CREATE TABLE market (id INTEGER PRIMARY KEY CHECK (id = 1), state BLOB NOT NULL)")
            db.execute("CREATE TABLE journal (seq INTEGER PRIMARY KEY, action_id TEXT NOT NULL)")
            db.execute("INSERT INTO market VALUES (1, ?)", (market.to_bytes(),))
        db.close()

    def load(self) -> SimMarket:
        with sqlite3.connect(self.path) as db:
            state = db.execute("SELECT state FROM market").fetchone()[0]
        db.close()
        return SimMarket.from_bytes(state)

    def commit(self, market: SimMarket, action_id: str) -> None:
        with sqlite3.connect(self.path) as db:
            db.execute("UPDATE market SET state = ? WHERE id = 1", (market.to_bytes(),))
            db.execute("INSERT INTO journal (action_id) VALUES (?)", (action_id,))
        db.close()

    def journal(self) -> Counter[str]:
        with sqlite3.connect(self.path) as db:
            rows = db.execute("SELECT action_id FROM journal").fetchall()
        db.close()
        return Counter(r[0] for r in rows)


def in_child(fn: Callable[[], None]) -> int:
    """Run `fn` in a forked process; return its wait status (exit code 1 and a traceback when it raised)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            fn()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return status


def killed(status: int) -> bool:
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def exited_ok(status: int) -> bool:
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


# -- checks after the resume -------------------------------------------------------------------------


def check_exactly_once(store: Store, run_id: str) -> set[str]:
    """Assert the run's ledger and audit records; return the ids of the actions the ledger calls applied."""
    assert store.get_run(run_id).status == "completed"
    decisions = store.decisions_of(run_id)
    cleared = {d.action_id for d in decisions if d.verdict in ("allowed", "clipped")}
    ledger = store.writes_of(run_id)
    final = {w.action_id: w.status for w in ledger}
    assert len(ledger) == len(final), "one ledger row per action"
    assert set(final) == cleared, "every cleared action has a ledger row, nothing else does"
    assert "intent" not in final.values(), "no write is left uncertain"
    applied = {a for a, s in final.items() if s == "applied"}
    assert applied, "the run applied something (else this test proves nothing)"
    with store.session() as s:
        audit = list(s.scalars(select(AuditRow).where(AuditRow.run_id == run_id)))
    write_records = Counter(r.payload["action_id"] for r in audit if r.kind == "write")
    decision_records = Counter(r.payload["action"]["action_id"] for r in audit if r.kind == "decision")
    assert write_records == Counter(cleared), "one audit record per write"
    assert decision_records == Counter(d.action_id for d in decisions), "one audit record per decision"
    assert verify(store).ok
    return applied


def check_sim_platform(applied: set[str], journal: Counter[str]) -> None:
    """Assert the durable sim platform accepted each applied action exactly once, and nothing else."""
    assert {a: n for a, n in journal.items() if n != 1} == {}, "no action reached the platform twice"
    assert set(journal) == applied, "the platform got exactly the actions the ledger calls applied"


# -- the simulated market ----------------------------------------------------------------------------


def sim_settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir)


def run_sim(trial_dir: Path, platform: DurablePlatform, kill_at: int, *, resume: bool = False) -> None:
    """Run (or resume) the crash run on the durable simulated platform, killing at event `kill_at`."""
    hooks = KillHooks(kill_at)
    install_hooks(hooks)
    settings = sim_settings(trial_dir / "data")
    store = HookedStore(settings.resolved_database_url)
    store.hooks = hooks
    market = platform.load()
    sim = SimClient(market)
    client = OneAtATime(sim, hooks, on_applied=lambda c: platform.commit(market, c.action.action_id))
    clients: dict[str, PlatformClient] = {a.id: client for a in settings.accounts}  # type: ignore[misc]
    client_set = ClientSet(clients=clients)
    if resume:
        resume_run(settings, RUN_ID, store=store, clients=client_set, actor="schedule")
    else:
        run_cycle(settings, mode="live", trigger="schedule", run_id=RUN_ID, store=store, clients=client_set)
    if hooks.kill_at == 0:
        (trial_dir / "events").write_text("\n".join(hooks.events), encoding="utf-8")


class SimTemplate(NamedTuple):
    platform_file: Path
    """The simulated platform before the run (copied for each trial)."""
    events: list[str]
    """The kill points of one uninterrupted run, in order."""
    end_state: bytes
    """The platform after an uninterrupted run."""


@pytest.fixture(scope="module")
def sim_template(tmp_path_factory: pytest.TempPathFactory) -> SimTemplate:
    """Return the initial platform file, the kill points of one run, and the uninterrupted end state."""
    base = tmp_path_factory.mktemp("sim-template")
    DurablePlatform(base / "platform.sqlite").create(default_market())
    reference = tmp_path_factory.mktemp("sim-reference")
    shutil.copy(base / "platform.sqlite", reference / "platform.sqlite")
    platform = DurablePlatform(reference / "platform.sqlite")
    assert exited_ok(in_child(lambda: run_sim(reference, platform, 0)))
    events = (reference / "events").read_text(encoding="utf-8").splitlines()
    assert events.count("before-send") >= 5, events
    store = Store(sim_settings(reference / "data").resolved_database_url)
    check_sim_platform(check_exactly_once(store, RUN_ID), platform.journal())
    store.dispose()
    return SimTemplate(base / "platform.sqlite", events, platform.load().to_bytes())


@dataclass
class Trial:
    """One kill-and-resume: where it was killed, and what the checks found (None: all well)."""

    kill_at: int
    exactly_once_problem: str | None
    end_state_matches: bool


def findings(trials: list[Trial], what: str) -> list[str]:
    if what == "exactly_once":
        return [f"kill at event {t.kill_at}: {t.exactly_once_problem}" for t in trials if t.exactly_once_problem]
    return [f"kill at event {t.kill_at}" for t in trials if not t.end_state_matches]


def kill_and_resume(kill_at: int, run: Callable[[int, bool], None]) -> str | None:
    """Run, expecting SIGKILL at event `kill_at`; resume in a fresh process; return a problem, or None."""
    if not killed(in_child(lambda: run(kill_at, False))):
        return f"the run was not killed at event {kill_at}"
    if not exited_ok(in_child(lambda: run(0, True))):
        return "the resume failed (traceback above)"
    return None


@pytest.fixture(scope="module")
def sim_trials(sim_template: SimTemplate, tmp_path_factory: pytest.TempPathFactory) -> list[Trial]:
    """Kill the sim run at TRIALS random points of apply, resume each, and check them."""
    platform_file, events, reference_state = sim_template
    n_events = len(events)
    rng = random.Random(7)
    trials: list[Trial] = []
    for kill_at in sorted(rng.randint(1, n_events) for _ in range(TRIALS)):
        trial_dir = tmp_path_factory.mktemp(f"sim-kill-{kill_at}")
        shutil.copy(platform_file, trial_dir / "platform.sqlite")
        platform = DurablePlatform(trial_dir / "platform.sqlite")
        problem = kill_and_resume(
            kill_at,
            lambda k, resume, d=trial_dir, p=platform: run_sim(d, p, k, resume=resume),  # type: ignore[misc]
        )
        store = Store(sim_settings(trial_dir / "data").resolved_database_url)
        if problem is None:
            try:
                check_sim_platform(check_exactly_once(store, RUN_ID), platform.journal())
            except AssertionError as exc:
                problem = str(exc).splitlines()[0]
        store.dispose()
        trials.append(Trial(kill_at, problem, platform.load().to_bytes() == reference_state))
    return trials


def test_sigkill_anywhere_in_apply_then_resume_applies_each_action_once_on_the_sim(sim_trials: list[Trial]) -> None:
    assert len(sim_trials) >= 20
    problems = findings(sim_trials, "exactly_once")
    assert not problems, "\n".join(problems)


def test_a_resumed_sim_run_ends_where_an_uninterrupted_run_ends(sim_trials: list[Trial]) -> None:
    problems = findings(sim_trials, "end_state")
    assert not problems, "\n".join(problems)


def drop_checkpoints_from(settings: Settings, node: str) -> None:
    """Forget every checkpoint of the run from the one about to run `node` on, with its pending writes.

    This is what a resume finds when the last steps' checkpoints never reached the disk (LangGraph
    writes them in the background unless told `durability="sync"`): its checkpoints say the batch was
    never judged, while the write ledger says part of it was sent.
    """
    from bidloop.graph.builder import build_graph
    from bidloop.graph.checkpoint import open_checkpointer

    config: Any = {"configurable": {"thread_id": RUN_ID}}
    with open_checkpointer(settings) as saver:
        history = list(build_graph().compile(checkpointer=saver).get_state_history(config))
    cutoff = next(h for h in history if h.next == (node,)).config["configurable"]["checkpoint_id"]
    with sqlite3.connect(Path(settings.data_dir) / "checkpoints.sqlite") as db:
        db.execute("DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_id > ?", (RUN_ID, cutoff))
        db.execute("DELETE FROM writes WHERE thread_id = ? AND checkpoint_id >= ?", (RUN_ID, cutoff))
    db.close()


def test_a_resume_whose_checkpoints_lag_the_ledger_reads_back_instead_of_resending(
    sim_template: SimTemplate, tmp_path: Path
) -> None:
    # Killed after the third write of the first batch had landed; the checkpoints then lose the filter's
    # and the approval's steps, so the resumed process judges the batch itself. Its decisions are its own
    # (the gate would clear them), yet the ledger's intents must still be read back, not resent.
    kill_at = [i for i, e in enumerate(sim_template.events, start=1) if e == "after-send"][2]
    shutil.copy(sim_template.platform_file, tmp_path / "platform.sqlite")
    platform = DurablePlatform(tmp_path / "platform.sqlite")
    assert killed(in_child(lambda: run_sim(tmp_path, platform, kill_at)))
    assert sum(platform.journal().values()) == 3
    drop_checkpoints_from(sim_settings(tmp_path / "data"), "filter")
    assert exited_ok(in_child(lambda: run_sim(tmp_path, platform, 0, resume=True)))
    store = Store(sim_settings(tmp_path / "data").resolved_database_url)
    try:
        check_sim_platform(check_exactly_once(store, RUN_ID), platform.journal())
        settled = [w for w in store.writes_of(RUN_ID) if w.message.startswith("already applied")]
        assert len(settled) == 3, [w.message for w in store.writes_of(RUN_ID)]
    finally:
        store.dispose()
    assert platform.load().to_bytes() == sim_template.end_state


# -- the fake Meta Graph API server -----------------------------------------------------------------

META_TOKEN = "fake-meta-token"


def meta_settings(data_dir: Path, address: str) -> Settings:
    account = AccountConfig(
        id="meta-fake", platform=Platform.META, backend="live", platform_account_id="act_1000", endpoint=address
    )
    return Settings(data_dir=data_dir, accounts=[account])


def run_meta(trial_dir: Path, address: str, kill_at: int, *, resume: bool = False) -> None:
    from bidloop.tools.meta import MetaClient

    hooks = KillHooks(kill_at)
    install_hooks(hooks)
    settings = meta_settings(trial_dir / "data", address)
    store = HookedStore(settings.resolved_database_url)
    store.hooks = hooks
    client = OneAtATime(MetaClient.from_account(settings.accounts[0]), hooks)
    client_set = ClientSet(clients={"meta-fake": client})  # type: ignore[dict-item]
    if resume:
        resume_run(settings, RUN_ID, store=store, clients=client_set, actor="schedule")
    else:
        run_cycle(settings, mode="live", trigger="schedule", run_id=RUN_ID, store=store, clients=client_set)
    if hooks.kill_at == 0:
        (trial_dir / "events").write_text("\n".join(hooks.events), encoding="utf-8")


@pytest.fixture(scope="module")
def meta_snapshot() -> Snapshot:
    return SimClient(default_market()).read_snapshot("sim-meta")


def check_meta_server(store: Store, applied: set[str], server: Any) -> None:
    """Assert the fake server applied one update per applied action on each object, and nothing else."""
    objects = Counter(w.entity_key.rsplit(":", 1)[-1] for w in store.writes_of(RUN_ID) if w.action_id in applied)
    assert dict(server.writes_by_entity) == dict(objects), "each applied action reached the server exactly once"


def fake_meta(snapshot: Snapshot) -> Any:
    from bidloop.testing.meta.fake_server import FakeMetaServer

    # The client asks for "today" by the real clock: put the snapshot's day there.
    return FakeMetaServer.from_snapshot(snapshot, platform_account_id="act_1000", today=datetime.now(UTC).date())


@pytest.fixture(scope="module")
def meta_reference(meta_snapshot: Snapshot, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any]]:
    """Return the number of kill points in one uninterrupted run on the fake server, and the server's end state."""
    reference_dir = tmp_path_factory.mktemp("meta-reference")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("META_ACCESS_TOKEN", META_TOKEN)
        with fake_meta(meta_snapshot) as server:
            assert exited_ok(in_child(lambda: run_meta(reference_dir, server.address, 0)))
            reference_objects = {k: dict(v) for k, v in server.objects.items()}
            store = Store(meta_settings(reference_dir / "data", server.address).resolved_database_url)
            check_meta_server(store, check_exactly_once(store, RUN_ID), server)
            store.dispose()
    n_events = len((reference_dir / "events").read_text(encoding="utf-8").splitlines())
    return n_events, reference_objects


def test_the_harness_finds_kill_points_in_apply_and_checks_uninterrupted_runs_clean(
    sim_template: SimTemplate, meta_reference: tuple[int, dict[str, Any]]
) -> None:
    # The fixtures ran one uninterrupted run each and passed every exactly-once check on it.
    assert len(sim_template.events) >= 20
    assert meta_reference[0] >= 10


@pytest.fixture(scope="module")
def meta_trials(
    meta_snapshot: Snapshot, meta_reference: tuple[int, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> list[Trial]:
    """Kill the run against the fake Meta server at TRIALS random points of apply, resume each, and check them."""
    n_events, reference_objects = meta_reference
    rng = random.Random(11)
    trials: list[Trial] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("META_ACCESS_TOKEN", META_TOKEN)
        for kill_at in sorted(rng.randint(1, n_events) for _ in range(TRIALS)):
            trial_dir = tmp_path_factory.mktemp(f"meta-kill-{kill_at}")
            with fake_meta(meta_snapshot) as server:
                problem = kill_and_resume(
                    kill_at,
                    lambda k, resume, d=trial_dir, a=server.address: run_meta(d, a, k, resume=resume),  # type: ignore[misc]
                )
                store = Store(meta_settings(trial_dir / "data", server.address).resolved_database_url)
                if problem is None:
                    try:
                        check_meta_server(store, check_exactly_once(store, RUN_ID), server)
                    except AssertionError as exc:
                        problem = str(exc).splitlines()[0]
                store.dispose()
                trials.append(Trial(kill_at, problem, server.objects == reference_objects))
    return trials


def test_sigkill_anywhere_in_apply_then_resume_applies_each_action_once_on_the_fake_meta_server(
    meta_trials: list[Trial],
) -> None:
    assert len(meta_trials) >= 20
    problems = findings(meta_trials, "exactly_once")
    assert not problems, "\n".join(problems)


def test_a_resumed_meta_run_ends_where_an_uninterrupted_run_ends(meta_trials: list[Trial]) -> None:
    problems = findings(meta_trials, "end_state")
    assert not problems, "\n".join(problems)
