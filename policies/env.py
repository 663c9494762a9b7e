"""Wrap the one market model (`bidloop.tools.sim.model`) as a Gymnasium env at the level of budget holders.

* `MarketSession` plays one scenario: a decision step is a daypart; the policy sets each holder's daily
  budget (the platform paces it within the day) and bid multiplier. It keeps the account's total
  budget (the projection never lets a day's spend exceed it), reports what a platform would (spend and
  clicks exactly; conversions and their value noisy and delayed; the bid where the strategy uses bids,
  the ROAS or CPA target where it uses one) and accumulates the *expected* true value of
  what was played, which is what every policy is scored on (common random numbers: the exogenous
  path depends on the seed only).
* `BudgetMarketEnv` is the Gymnasium env over one session of fixed size (passes `check_env`):
  observation ``(N · F,)`` (the per-holder features of `bidloop.policies.observation`, flattened),
  action ``(N · 2,)`` in [-1, 1] (per holder: budget wish, lever factor). The lever is what the
  holder's bidding strategy listens to (`bidloop.tools.sim.model.lever_factor_to_mult`): the bid under
  manual CPC, the target under Smart Bidding (a factor > 1 lowers a ROAS target or raises a CPA target:
  more spend at a lower return), nothing under lowest cost.
* `HolderVecEnv` exposes every holder of several sessions as one SB3 sub-env with observation ``(F,)``
  and action ``(2,)``: one policy shared across holders (parameter sharing), which is what lets the
  trained policy act on an account of 1 to 10,000 holders. Every holder of an account gets the
  account's reward.

Reward (training only): the step's expected conversion value minus what holding the initial set-up
would have earned at the same step, divided by the latter's mean per step. Subtracting an
action-independent baseline leaves the optimal policy unchanged and removes most of the variance
between scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from bidloop.core.errors import InputError
from bidloop.core.money import MICROS_PER_UNIT
from bidloop.policies.observation import N_FEATURES, ReportedHolders, holder_features
from bidloop.policies.projection import action_to_multipliers, project_budgets
from bidloop.tools.sim.model import (
    BID_MULT_HIGH,
    BID_MULT_LOW,
    STRATEGY_MANUAL,
    STRATEGY_TARGET_CPA,
    STRATEGY_TARGET_ROAS,
    CoreState,
    ExoPath,
    MarketParams,
    draw_conversions,
    draw_delay_fractions,
    draw_exo_path,
    draw_order_value,
    expected_step,
    initial_core_state,
    initial_exo_state,
    lever_factor_to_mult,
    rollout_expected,
    targets_from_mult,
)
from bidloop.tools.sim.scenarios import SCENARIO_FAMILIES, draw_scenario

__all__ = [
    "BID_MULT_HIGH",
    "BID_MULT_LOW",
    "MIN_LEVER_MOVE",
    "TEST_SEED_BASE",
    "TRAIN_SEED_BASE",
    "BudgetMarketEnv",
    "EpisodeSpec",
    "HolderVecEnv",
    "MarketSession",
]

TRAIN_SEED_BASE = 0
"""Training scenarios use seeds in [0, 1_000_000)."""
TEST_SEED_BASE = 1_000_000
"""Test scenarios use seeds from 1_000_000 on: disjoint from training by construction."""

MIN_LEVER_MOVE = 0.02
"""A bid or target move below 2 % is not an action (the live policy drops it too)."""
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class EpisodeSpec:
    """One scenario to play.

    Attributes:
        family: Scenario family (see `bidloop.tools.sim.scenarios`).
        seed: Scenario seed (parameters and every random stream derive from it).
        n_holders: Budget holders in the account.
        days: Scored days (14 or 28 in the benchmark).
        dayparts_per_day: Decision steps per day.
        warmup_days: Days played at the initial set-up before the episode, so trailing counters exist.
        max_change_pct: Largest budget or bid move per step, percent (the guardrails' limit).
    """

    family: str
    seed: int
    n_holders: int = 5
    days: int = 14
    dayparts_per_day: int = 6
    warmup_days: int = 3
    max_change_pct: float = 20.0

    def __post_init__(self) -> None:
        if self.family not in SCENARIO_FAMILIES:
            raise InputError(f"unknown family {self.family!r}", hint=f"choose from {', '.join(SCENARIO_FAMILIES)}")
        if self.n_holders < 1 or self.days < 1 or self.warmup_days < 1:
            raise InputError("an episode needs at least one holder, one day and one warm-up day")

    @property
    def n_steps(self) -> int:
        """Return the scored steps T."""
        return self.days * self.dayparts_per_day


class MarketSession:
    """Play one scenario of the market model, step by step (see the module docstring).

    Attributes:
        spec: The episode.
        params: The scenario's true parameters (hidden from policies).
        total_budget: The account's daily budget, currency units (constant).
        start_state: Core state at the first scored step (after warm-up).
        exo_path: The realised exogenous path of the scored steps.
    """

    def __init__(self, spec: EpisodeSpec) -> None:
        self.spec = spec
        p = spec.dayparts_per_day
        self.params: MarketParams = draw_scenario(spec.family, spec.seed, spec.n_holders, p)
        self.core = self.params.core()
        h = spec.n_holders
        seq = np.random.SeedSequence([spec.seed, 7_919, 1 + list(SCENARIO_FAMILIES).index(spec.family)])
        exo_rng, self._noise_rng, self._delay_rng = (np.random.default_rng(s) for s in seq.spawn(3))
        warm = spec.warmup_days * p
        full_path, _ = draw_exo_path(
            self.params, initial_exo_state(self.params, exo_rng), exo_rng, 0, warm + spec.n_steps
        )
        self._full_path = full_path
        self.exo_path = ExoPath(*(np.asarray(a)[warm:] for a in full_path))
        self.total_budget = float(self.params.daily_budget.sum())
        self.initial_budget = self.params.daily_budget.copy()
        self.budget = self.initial_budget.copy()
        self.bid_mult = np.ones(h)
        self._ones = np.ones(h)
        self._share = np.ones((h, 1))
        self.state: CoreState = initial_core_state(h, 1)
        self.step_index = 0
        self.spent_today = np.zeros(h)
        self._today = np.zeros((4, h))  # cost, reported value, clicks, reported conversions
        self._days = np.zeros((7, 4, h))
        self._days_seen = 0
        self._pending = np.zeros((h, self.params.delay_steps))
        self._pending_conv = np.zeros((h, self.params.delay_steps))
        codes = self.params.strategy_codes
        self.uses_bids = codes == STRATEGY_MANUAL
        self.smart = (codes == STRATEGY_TARGET_ROAS) | (codes == STRATEGY_TARGET_CPA)
        self.bid_moves = 0
        self.target_moves = 0
        self.value_trace: list[float] = []
        self.spend_trace: list[FloatArray] = []
        self.bid_trace: list[FloatArray] = []
        self.budget_trace: list[FloatArray] = []
        self.day_spend: list[float] = []
        self.scored_from = warm
        for _ in range(warm):
            self._advance()
        self.start_state = CoreState(self.state.adstock.copy(), self.state.exposures.copy())
        self.value_trace.clear()
        self.spend_trace.clear()
        self.bid_trace.clear()
        self.budget_trace.clear()
        self.day_spend.clear()
        self.bid_moves = 0
        self.target_moves = 0

    # -- playing ----------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Return True once every scored step was played."""
        return self.step_index >= self.scored_from + self.spec.n_steps

    @property
    def daypart(self) -> int:
        """Return the daypart of the next step."""
        return self.step_index % self.spec.dayparts_per_day

    def apply(self, budget_wish: FloatArray, bid_factor: FloatArray) -> None:
        """Set budgets (through the projection) and bid multipliers for the next step.

        Args:
            budget_wish: ``(N,)`` wished budget factors (1 = keep).
            bid_factor: ``(N,)`` lever factors (1 = keep; > 1 = spend more): a bid factor under manual
                CPC, a target move under Smart Bidding, ignored under lowest cost; m stays in [0.5, 2].
        """
        limit = self.spec.max_change_pct
        cur = np.round(self.budget * MICROS_PER_UNIT)
        new = project_budgets(
            cur,
            budget_wish,
            total_micros=round(self.total_budget * MICROS_PER_UNIT),
            max_change_pct=limit,
            floor_micros=self.spent_today * MICROS_PER_UNIT,
        )
        self.budget = new.astype(np.float64) / MICROS_PER_UNIT
        step = 1.0 + limit / 100.0
        factor = np.clip(np.asarray(bid_factor, dtype=np.float64), 1.0 / step, step)
        moved = np.abs(factor - 1.0) >= MIN_LEVER_MOVE
        self.bid_moves += int((moved & self.uses_bids).sum())
        self.target_moves += int((moved & self.smart).sum())
        self.bid_mult = lever_factor_to_mult(self.params, self.bid_mult, factor)

    def step(self) -> float:
        """Play the next daypart with the current budgets and bids; return its expected conversion value."""
        return self._advance()

    def _advance(self) -> float:
        p = self.spec.dayparts_per_day
        t = self.step_index
        daypart = t % p
        if daypart == 0 and t > 0:
            self._close_day()
        planned = np.maximum(self.budget - self.spent_today, 0.0) * self.core.pacing_share[:, daypart]
        exo = self._full_path.step(t)
        self.state, out = expected_step(
            np,
            self.core,
            self.state,
            exo,
            planned_spend=planned,
            bid_mult=self.bid_mult,
            reach=self._ones,
            quality=self._ones,
            creative_share=self._share,
        )
        self.spent_today = self.spent_today + out.spend
        conversions = draw_conversions(out.conversions, self.params.dispersion, self._noise_rng)
        value = draw_order_value(conversions, self.params.aov, self.params.aov_sigma, self._noise_rng)
        fractions = draw_delay_fractions(self.params.delay_kernel, conversions, self._delay_rng)
        self._pending += value[:, None] * fractions
        self._pending_conv += conversions[:, None] * fractions
        reported_value = self._pending[:, 0].copy()
        reported_conv = self._pending_conv[:, 0].copy()
        self._pending[:, :-1] = self._pending[:, 1:]
        self._pending[:, -1] = 0.0
        self._pending_conv[:, :-1] = self._pending_conv[:, 1:]
        self._pending_conv[:, -1] = 0.0
        self._today += np.stack([out.spend, reported_value, out.clicks, reported_conv])
        self.step_index += 1
        expected_value = float(out.value.sum())
        self.value_trace.append(expected_value)
        self.spend_trace.append(out.spend.copy())
        self.bid_trace.append(self.bid_mult.copy())
        self.budget_trace.append(self.budget.copy())
        if self.step_index % p == 0:
            self.day_spend.append(float(self.spent_today.sum()))
        return expected_value

    def _close_day(self) -> None:
        self._days = np.roll(self._days, 1, axis=0)
        self._days[0] = self._today
        self._days_seen = min(self._days_seen + 1, 7)
        self._today = np.zeros_like(self._today)
        self.spent_today = np.zeros_like(self.spent_today)

    # -- what a platform reports --------------------------------------------------------------------

    def reported(self) -> ReportedHolders:
        """Return the reported view before the next step (money in micros; value delayed and noisy)."""
        p = self.spec.dayparts_per_day
        daypart = self.step_index % p
        if daypart == 0 and self.step_index > 0:
            today = np.zeros_like(self._today)
            days = np.roll(self._days, 1, axis=0)
            days[0] = self._today
            days_seen = min(self._days_seen + 1, 7)
        else:
            today, days, days_seen = self._today, self._days, self._days_seen
        week = days[:days_seen].sum(axis=0) if days_seen else np.zeros_like(today)
        w = self.params.daypart_weights
        done_share = w[:, :daypart].sum(axis=1) / w.sum(axis=1)
        esf = float((self.budget * done_share).sum() / max(self.budget.sum(), 1e-9))
        m = MICROS_PER_UNIT
        target_roas, target_cpa = targets_from_mult(self.params, self.bid_mult)
        return ReportedHolders(
            budget_micros=np.round(self.budget * m),
            bid_micros=np.where(self.uses_bids, self.bid_mult * self.params.ref_bid * m, np.nan),
            today_cost_micros=today[0] * m,
            today_value_micros=today[1] * m,
            today_clicks=today[2].copy(),
            week_cost_micros=week[0] * m,
            week_value_micros=week[1] * m,
            week_clicks=week[2].copy(),
            days_seen=days_seen,
            daypart=daypart,
            dayparts_per_day=p,
            expected_spend_fraction=esf,
            week_conversions=week[3].copy(),
            target_roas=target_roas,
            target_cpa_micros=target_cpa * m,
        )

    # -- scoring ----------------------------------------------------------------------------------

    def hold_values(self) -> FloatArray:
        """Return the expected account value per scored step of holding the initial set-up: ``(T,)``."""
        out = rollout_expected(
            np,
            self.core,
            self.start_state,
            self.exo_path,
            bid_mult=self._ones,
            reach=self._ones,
            quality=self._ones,
            creative_share=self._share,
            daily_budget=self.initial_budget,
        )
        return np.asarray(out.value).sum(axis=1)

    @property
    def total_value(self) -> float:
        """Return the expected conversion value of the scored steps played so far, currency units."""
        return float(sum(self.value_trace))

    def overspent_days(self, tolerance: float = 1e-6) -> int:
        """Return the number of scored days whose spend exceeded the account's daily budget."""
        limit = self.total_budget * (1.0 + tolerance) + 1e-6
        return int(sum(1 for s in self.day_spend if s > limit))


class BudgetMarketEnv(gym.Env[np.ndarray, np.ndarray]):
    """Gymnasium env over one account of fixed size; scenarios drawn per episode from families and seeds.

    Args:
        families: Families to draw from (uniformly per episode).
        n_holders: Budget holders per account (N).
        days: Scored days per episode.
        seed_base: First scenario seed (`TRAIN_SEED_BASE` or `TEST_SEED_BASE`).
        n_seeds: Scenario seeds are drawn from [seed_base, seed_base + n_seeds).
        max_change_pct: Largest budget and bid move per step, percent.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - Gymnasium's class attribute

    def __init__(
        self,
        families: tuple[str, ...] | list[str] = ("stationary",),
        n_holders: int = 4,
        days: int = 14,
        seed_base: int = TRAIN_SEED_BASE,
        n_seeds: int = 1_000_000,
        max_change_pct: float = 20.0,
    ) -> None:
        super().__init__()
        unknown = [f for f in families if f not in SCENARIO_FAMILIES]
        if not families or unknown:
            raise InputError(f"unknown or no families: {unknown}", hint=f"choose from {', '.join(SCENARIO_FAMILIES)}")
        self.families = tuple(families)
        self.n_holders = n_holders
        self.days = days
        self.seed_base = seed_base
        self.n_seeds = n_seeds
        self.max_change_pct = max_change_pct
        self.observation_space = spaces.Box(low=-5.0, high=5.0, shape=(n_holders * N_FEATURES,), dtype=np.float32)
        self.action_space = spaces.Box(low=-1.0, high=1.0, shape=(n_holders * 2,), dtype=np.float32)
        self.session: MarketSession | None = None
        self._hold: FloatArray = np.zeros(0)
        self._scale = 1.0
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Draw a new scenario (from `options["spec"]` if given) and return the first observation."""
        super().reset(seed=seed)
        if options and isinstance(options.get("spec"), EpisodeSpec):
            spec = options["spec"]
        else:
            family = self.families[int(self.np_random.integers(len(self.families)))]
            scenario_seed = self.seed_base + int(self.np_random.integers(self.n_seeds))
            spec = EpisodeSpec(family, scenario_seed, self.n_holders, self.days, max_change_pct=self.max_change_pct)
        self.session = MarketSession(spec)
        self._hold = self.session.hold_values()
        self._scale = max(float(self._hold.mean()), 1e-6)
        self._t = 0
        return self.observe(), {"family": spec.family, "scenario_seed": spec.seed}

    def observe(self) -> np.ndarray:
        """Return the current observation, flattened ``(N · F,)`` float32 in [-5, 5]."""
        if self.session is None:
            raise InputError("call reset() before observe()")
        return np.clip(holder_features(self.session.reported()).reshape(-1), -5.0, 5.0)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply per-holder actions, play one daypart, and return (obs, reward, terminated, truncated, info)."""
        if self.session is None:
            raise InputError("call reset() before step()")
        wish, factor = action_to_multipliers(np.asarray(action).reshape(self.n_holders, 2), self.max_change_pct)
        self.session.apply(wish, factor)
        value = self.session.step()
        reward = (value - float(self._hold[self._t])) / self._scale
        self._t += 1
        truncated = self._t >= self.session.spec.n_steps
        info = {"expected_value": value}
        if truncated:
            info["episode_value"] = self.session.total_value
            info["hold_value"] = float(self._hold.sum())
        return self.observe(), float(reward), False, truncated, info


class HolderVecEnv(VecEnv):
    """Expose every holder of several `BudgetMarketEnv`s as one SB3 sub-env (one shared per-holder policy).

    Args:
        envs: The account envs; sub-env i belongs to the account that holds it (in order).
        seed: Seeds each account env's first reset (seed + k).
    """

    def __init__(self, envs: list[BudgetMarketEnv], seed: int = 0) -> None:
        self.envs = envs
        self.sizes = [e.n_holders for e in envs]
        self.offsets = np.cumsum([0, *self.sizes])
        obs_space = spaces.Box(low=-5.0, high=5.0, shape=(N_FEATURES,), dtype=np.float32)
        act_space = spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float32)
        super().__init__(int(self.offsets[-1]), obs_space, act_space)
        self._seed = seed
        self._actions: np.ndarray | None = None
        self._first_reset = True

    def _split(self, flat: np.ndarray, k: int) -> np.ndarray:
        return flat.reshape(self.sizes[k], N_FEATURES)

    def reset(self) -> VecEnvObs:
        """Reset every account and return ``(num_envs, F)`` observations."""
        rows = []
        for k, env in enumerate(self.envs):
            obs, _ = env.reset(seed=self._seed + k if self._first_reset else None)
            rows.append(self._split(obs, k))
        self._first_reset = False
        return np.concatenate(rows, axis=0)

    def step_async(self, actions: np.ndarray) -> None:
        """Store the per-holder actions ``(num_envs, 2)``."""
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        """Step every account; each holder gets its account's reward and done flag."""
        if self._actions is None:
            raise InputError("step_async must come before step_wait")
        obs_rows, rewards, dones, infos = [], [], [], []
        for k, env in enumerate(self.envs):
            a = self._actions[self.offsets[k] : self.offsets[k + 1]].reshape(-1)
            obs, reward, terminated, truncated, info = env.step(a)
            done = terminated or truncated
            holder_obs = self._split(obs, k)
            holder_infos: list[dict[str, Any]] = [{} for _ in range(self.sizes[k])]
            if done:
                for i, h_info in enumerate(holder_infos):
                    h_info["terminal_observation"] = holder_obs[i].copy()
                    h_info["TimeLimit.truncated"] = truncated and not terminated
                holder_infos[0]["episode"] = {
                    "r": info["episode_value"] / max(info["hold_value"], 1e-9),
                    "l": env.session.spec.n_steps if env.session else 0,
                }
                obs, _ = env.reset()
                holder_obs = self._split(obs, k)
            obs_rows.append(holder_obs)
            rewards.extend([reward] * self.sizes[k])
            dones.extend([done] * self.sizes[k])
            infos.extend(holder_infos)
        return (
            np.concatenate(obs_rows, axis=0),
            np.asarray(rewards, dtype=np.float32),
            np.asarray(dones, dtype=bool),
            infos,
        )

    def close(self) -> None:
        """Close every account env."""
        for env in self.envs:
            env.close()

    def _holder_env(self, i: int) -> BudgetMarketEnv:
        return self.envs[int(np.searchsorted(self.offsets, i, side="right") - 1)]

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Return an attribute of the account env behind each holder."""
        return [getattr(self._holder_env(i), attr_name) for i in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute on the account env behind each holder."""
        for i in self._indices(indices):
            setattr(self._holder_env(i), attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **kw: Any) -> list[Any]:
        """Call a method of the account env behind each holder."""
        return [getattr(self._holder_env(i), method_name)(*method_args, **kw) for i in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """Return False for each holder: account envs are not wrapped."""
        return [False for _ in self._indices(indices)]
