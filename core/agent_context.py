"""Give every proposer (agents and learned policies) the same run inputs: run id, targets, steering, ids."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AgentContext", "AgentTuning", "Steering"]


class AgentTuning(BaseModel):
    """Thresholds of the deterministic agents. Money in micros, rates as ratios, shares in percent."""

    model_config = ConfigDict(extra="forbid")

    roas_target: float = Field(default=3.0, gt=0)
    # keyword insight
    negative_min_cost_micros: int = Field(default=20_000_000, ge=0)
    """A search term must have spent at least this (trailing 7 days + today) with no conversion to be negated."""
    negative_min_clicks: int = Field(default=15, ge=0)
    promote_min_conversions: float = Field(default=3.0, ge=0)
    promote_roas_factor: float = Field(default=1.2, gt=0)
    """A search term converting at >= roas_target x this is promoted to an exact keyword."""
    ngram_min_terms: int = Field(default=2, ge=2)
    # bid shifter (heuristic)
    max_budget_shift_pct: float = Field(default=15.0, gt=0, le=100)
    bid_step_pct: float = Field(default=10.0, gt=0, le=100)
    min_clicks_for_bid_change: int = Field(default=30, ge=0)
    pace_lag_pct: float = Field(default=10.0, ge=0)
    """An account whose spend today trails pace by more than this is 'lagging'."""
    # creative rotation
    fatigue_drop_pct: float = Field(default=25.0, gt=0, lt=100)
    fatigue_min_impressions: int = Field(default=2_000, ge=0)
    rest_days_before_reenable: int = Field(default=5, ge=0)


class Steering(BaseModel):
    """How an operator prompt narrows a run (set by the operator agent; empty means 'no constraint')."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agents: frozenset[str] | None = None
    """The agents that may propose (None = all)."""
    budget_shifts: bool = True
    """Whether the bid shifter may move budgets."""
    bid_changes: bool = True
    """Whether the bid shifter may change bids."""
    platforms: frozenset[str] | None = None
    """The platforms the run touches (None = every configured account)."""
    focus_entity_ids: frozenset[str] = frozenset()
    """Entities the operator named (e.g. ad sets 117 and 124), by platform id. The bid shifter gives them budget
    first; keyword insight and creative rotation act only in and under them (none in an account that has none)."""
    bid_direction: str | None = None
    """`up`, `down` or None (both)."""
    bid_step_pct: float | None = None
    only_where_effective: bool = False
    """Lift bids only where ROAS is above target ("where it moves the needle")."""
    negative_terms: frozenset[str] = frozenset()
    """Words or phrases the operator asked to add as negative keywords ("add 'free' as a negative"), lower case.
    When set, keyword insight proposes exactly these (phrase match, on the ad groups whose search terms contain
    them) and nothing else: no mined negatives, no promotions."""


@dataclass
class AgentContext:
    """Run-scoped inputs to every agent.

    Attributes:
        run_id: The run the actions belong to (action ids are derived from it).
        tuning: Thresholds.
        steering: Narrowing from an operator prompt.
        policy_version: Recorded on every action the bid shifter proposes.
    """

    run_id: str
    tuning: AgentTuning = field(default_factory=AgentTuning)
    steering: Steering = field(default_factory=Steering)
    policy_version: str = "heuristic-mroas@1"
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_action_id(self, agent: str) -> str:
        """Return a new action id, unique within the run and stable for a replay of the same run."""
        return f"{self.run_id}-{agent[:2]}{next(self._counter):05d}"

    def allows(self, agent: str) -> bool:
        """Return True if the steering lets this agent propose."""
        return self.steering.agents is None or agent in self.steering.agents
