"""Define the run-scoped resources every node receives through `Runtime[RunContext]` (never checkpointed)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bidloop.core.agent_context import AgentTuning, Steering
from bidloop.core.settings import Settings
from bidloop.core.snapshot import Snapshot
from bidloop.core.store import Store
from bidloop.tools.protocol import PlatformClient

__all__ = ["RunContext"]


@dataclass
class RunContext:
    """Resources of one run.

    Attributes:
        settings: The loaded settings.
        store: The database.
        clients: One platform client per account id in the run.
        tuning: Agent thresholds.
        steering: Narrowing from an operator prompt (empty for scheduled runs).
        bid_policy: Proposes the bid shifter's actions; None means the marginal-ROAS heuristic.
        progress: Called with a short line as the run advances (the CLI shows it).
        actor: Recorded in the audit log as who asked.
    """

    settings: Settings
    store: Store
    clients: Mapping[str, PlatformClient]
    tuning: AgentTuning = field(default_factory=AgentTuning)
    steering: Steering = field(default_factory=Steering)
    bid_policy: object | None = None
    progress: Callable[[str], None] | None = None
    actor: str = "cli"
    rollback_before_values: dict[str, str] = field(default_factory=dict)
    """For a rollback run: entity key -> the value recorded before the rolled-back write."""
    snapshot_cache: dict[str, dict[str, Snapshot]] = field(default_factory=dict)
    """Run id -> account id -> snapshot; filled by `observe`, reloaded from the store after a restart."""

    def snapshots(self, run_id: str) -> dict[str, Snapshot]:
        """Return what the run observed, from memory or (after a restart) from the store."""
        cached = self.snapshot_cache.get(run_id)
        if cached is None:
            cached = {
                account_id: Snapshot.model_validate_json(payload)
                for account_id, payload in self.store.load_snapshots(run_id).items()
            }
            self.snapshot_cache[run_id] = cached
        return cached

    def say(self, line: str) -> None:
        """Report progress, if anyone listens."""
        if self.progress is not None:
            self.progress(line)
