"""Act with a trained, shared per-holder policy: on a simulated session or on a live `Snapshot`.

`HolderPolicyModel` is the loaded network with its normalisation statistics: features ``(N, F)`` in,
deterministic actions ``(N, 2)`` out, for any N. `LearnedBidPolicy` is what the graph's bid shifter
calls: it builds the observation from the snapshot with the same function the env uses, projects the
budget wishes onto budgets that keep the account total and the max-change limit, and returns
`SetBudget` / `SetBid` / `SetTargetRoas` / `SetTargetCpa` actions that record the policy version and
say why in words.

The policy's second output is the holder's spend lever (> 1 = spend more). It becomes the lever the
bidding strategy in force listens to: the bids where the strategy uses bids (manual CPC, Meta bid
cap), the ROAS target where it bids to one (divided by the factor: a lower target spends more), the
CPA target where it bids to one (multiplied by the factor), nothing under lowest cost. Only holders
that deliver and have at least `min_clicks_for_bid_change` clicks over the trailing week are acted on.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from numpy.typing import NDArray
from stable_baselines3.common.policies import ActorCriticPolicy

from bidloop.core.actions import Action, AgentName, SetBid, SetBudget, SetTargetCpa, SetTargetRoas
from bidloop.core.agent_context import AgentContext
from bidloop.core.entities import EntityKind, EntityState
from bidloop.core.errors import PolicyError
from bidloop.core.money import format_money
from bidloop.core.snapshot import Snapshot
from bidloop.policies.observation import (
    N_FEATURES,
    ReportedHolders,
    holder_features,
    reported_from_snapshot,
    uses_bids,
)
from bidloop.policies.projection import action_to_multipliers, project_budgets
from bidloop.policies.registry import PolicyFiles, PolicyMetadata

__all__ = ["HolderPolicyModel", "LearnedBidPolicy", "SessionPolicy"]

FloatArray = NDArray[np.float64]
AGENT = AgentName.BID_SHIFTER
_MIN_BUDGET_MOVE = 0.005
"""Budget moves below 0.5 % are not worth an action (and a write)."""
_MIN_BID_MOVE = 0.02
"""Bid moves below 2 % are not worth an action."""


def _load_network(model_zip: Path) -> ActorCriticPolicy:
    """Rebuild the policy network from an SB3 model zip without unpickling anything.

    The architecture comes from the zip's JSON `data` (`policy_kwargs`: plain numbers), the weights from
    `policy.pth` through ``torch.load(weights_only=True)``; SB3's serialized classes are never loaded.
    """
    with zipfile.ZipFile(model_zip) as archive:
        data = json.loads(archive.read("data"))
        state = torch.load(io.BytesIO(archive.read("policy.pth")), map_location="cpu", weights_only=True)
    kwargs: dict[str, Any] = data.get("policy_kwargs") or {}
    net_arch = kwargs.get("net_arch")
    if not (isinstance(net_arch, list) and all(isinstance(x, int) for x in net_arch)):
        raise ValueError(f"unsupported net_arch {net_arch!r} in the model's policy_kwargs")
    log_std_init = float(kwargs.get("log_std_init", 0.0))
    policy = ActorCriticPolicy(
        spaces.Box(low=-5.0, high=5.0, shape=(N_FEATURES,), dtype=np.float32),
        spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float32),
        lr_schedule=lambda _: 0.0,
        net_arch=list(net_arch),
        log_std_init=log_std_init,
    )
    policy.load_state_dict(state)
    policy.set_training_mode(False)
    return policy


def _read_normalization(path: Path) -> dict[str, Any]:
    """Return the observation normalisation numbers written at training (`write_normalization`)."""
    numbers: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    for key in ("obs_mean", "obs_var"):
        values = numbers.get(key)
        if not isinstance(values, list) or len(values) != N_FEATURES:
            raise ValueError(f"{key} must list {N_FEATURES} numbers")
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            raise ValueError(f"{key} holds a value that is not a finite number")
    return numbers


class HolderPolicyModel:
    """A trained shared per-holder policy: normalise features, predict deterministic actions.

    Loads without unpickling anything (see `bidloop.policies.registry`).

    Args:
        files: The policy's files in the registry.

    Raises:
        PolicyError: If a file is missing or corrupt, or the observation spec does not match.
    """

    def __init__(self, files: PolicyFiles) -> None:
        self.files = files
        self.metadata: PolicyMetadata = files.read_metadata()
        try:
            self.network = _load_network(Path(files.model))
            norm = _read_normalization(Path(files.normalization))
        except (OSError, ValueError, KeyError, EOFError, RuntimeError, zipfile.BadZipFile) as exc:
            raise PolicyError(
                f"policy {files.policy_id!r} cannot be loaded: {exc}",
                hint="train it again with `bidloop train`, or set `policy: heuristic`",
            ) from exc
        self.obs_mean = np.asarray(norm["obs_mean"], dtype=np.float64)
        self.obs_var = np.asarray(norm["obs_var"], dtype=np.float64)
        self.clip_obs = float(norm.get("clip_obs", 10.0))
        self.epsilon = float(norm.get("epsilon", 1e-8))
        self.max_change_pct = self.metadata.max_change_pct

    @property
    def version(self) -> str:
        """Return the version recorded on actions."""
        return self.metadata.version

    def act_features(self, features: NDArray[np.float32]) -> NDArray[np.float64]:
        """Return deterministic actions ``(N, 2)`` in [-1, 1] for features ``(N, F)``."""
        obs = np.clip((features - self.obs_mean) / np.sqrt(self.obs_var + self.epsilon), -self.clip_obs, self.clip_obs)
        with torch.no_grad():
            action = self.network._predict(torch.as_tensor(obs, dtype=torch.float32), deterministic=True)
        return np.clip(action.numpy().astype(np.float64).reshape(-1, 2), -1.0, 1.0)

    def act(self, reported: ReportedHolders) -> tuple[FloatArray, FloatArray]:
        """Return (budget wish, bid factor) per holder for a reported view."""
        return action_to_multipliers(self.act_features(holder_features(reported)), self.max_change_pct)


class SessionPolicy:
    """Adapt a `HolderPolicyModel` to the evaluation's `BidPolicy` protocol."""

    def __init__(self, model: HolderPolicyModel, name: str = "learned") -> None:
        self.model = model
        self.name = name

    def reset(self, n_holders: int, seed: int) -> None:
        """Nothing to forget: the policy is stateless."""

    def act(self, reported: ReportedHolders) -> tuple[FloatArray, FloatArray]:
        """Return the model's deterministic wishes."""
        return self.model.act(reported)


def _bid_targets(snapshot: Snapshot) -> dict[str, list[EntityState]]:
    """Return, per holder id, the entities whose bid moves with the holder's (its enabled keywords / ad groups)."""
    targets: dict[str, list[EntityState]] = {}
    for e in snapshot.entities:
        if not e.cpc_bid_micros or not e.is_delivering or not uses_bids(e):
            continue
        if e.ref.kind not in (EntityKind.KEYWORD, EntityKind.AD_GROUP):
            continue
        for parent in {e.campaign_id, e.parent_id} - {None, e.ref.entity_id}:
            targets.setdefault(str(parent), []).append(e)
    return targets


def _drop_small_moves(current: NDArray[np.int64], delta: NDArray[np.int64]) -> NDArray[np.int64]:
    """Return budget moves without the ones too small to be worth a write, never growing the account total.

    Dropping a small decrease would leave the increases unfunded, so increases are scaled down (rounded
    toward zero) until they are covered by the decreases that remain.
    """
    keep = np.abs(delta) >= _MIN_BUDGET_MOVE * np.maximum(current, 1)
    kept = np.where(keep, delta, 0).astype(np.int64)
    increases = int(kept[kept > 0].sum())
    decreases = int(-kept[kept < 0].sum())
    if increases > decreases:
        scaled = np.floor(kept * (decreases / increases)).astype(np.int64)
        kept = np.where(kept > 0, scaled, kept)
    return kept


class LearnedBidPolicy:
    """The bid shifter's learned policy: one shared per-holder network plus the deterministic projection.

    Attributes:
        version: Recorded as `policy_version` on every action.
    """

    def __init__(self, model: HolderPolicyModel, *, max_change_pct: float | None = None) -> None:
        self.model = model
        self.version = model.version
        self.max_change_pct = max_change_pct if max_change_pct is not None else model.max_change_pct

    @classmethod
    def from_files(cls, files: PolicyFiles) -> LearnedBidPolicy:
        """Load a policy from the registry.

        Raises:
            PolicyError: If it is missing, corrupt or built for another observation spec.
        """
        return cls(HolderPolicyModel(files))

    def propose(self, snapshot: Snapshot, ctx: AgentContext) -> list[Action]:
        """Return budget and bid actions for one account, from its snapshot only."""
        if not ctx.allows(AGENT.value):
            return []
        min_clicks = ctx.tuning.min_clicks_for_bid_change
        holders = [
            h
            for h in snapshot.budget_holders()
            if h.is_delivering and h.daily_budget_micros and h.trailing_7d.clicks >= min_clicks
        ]
        if not holders:
            return []
        reported = reported_from_snapshot(snapshot, holders)
        features = holder_features(reported)
        raw = self.model.act_features(features)
        wish, bid_factor = action_to_multipliers(raw, self.max_change_pct)
        current = np.array([h.daily_budget_micros or 0 for h in holders], dtype=np.int64)
        actions: list[Action] = []
        if ctx.steering.budget_shifts and len(holders) > 1:
            new = project_budgets(
                current,
                wish,
                total_micros=int(current.sum()),
                max_change_pct=self.max_change_pct,
                floor_micros=reported.today_cost_micros,
            )
            delta = _drop_small_moves(current, new - current)
            order = np.argsort(delta, kind="stable")  # decreases first: the total never grows mid-way
            for i in order:
                if delta[i] == 0:
                    continue
                old = int(current[i])
                actions.append(self._budget_action(snapshot, ctx, holders[i], old, old + int(delta[i]), features[i]))
        if ctx.steering.bid_changes:
            children = _bid_targets(snapshot)
            for i, holder in enumerate(holders):
                factor = float(bid_factor[i])
                if abs(factor - 1.0) < _MIN_BID_MOVE:
                    continue
                direction = "up" if factor > 1 else "down"
                if ctx.steering.bid_direction and ctx.steering.bid_direction != direction:
                    continue
                if not uses_bids(holder):
                    target_action = self._target_action(snapshot, ctx, holder, factor, features[i])
                    if target_action is not None:
                        actions.append(target_action)
                    continue
                targets = [holder] if holder.cpc_bid_micros else children.get(holder.ref.entity_id, [])
                targets = [t for t in targets if t.trailing_7d.clicks >= min_clicks]
                for target in targets:
                    old_bid = int(target.cpc_bid_micros or 0)
                    new_bid = max(1, int(old_bid * factor))
                    if new_bid == old_bid:
                        continue
                    actions.append(self._bid_action(snapshot, ctx, target, old_bid, new_bid, features[i]))
        return actions

    def _target_action(
        self, snapshot: Snapshot, ctx: AgentContext, holder: EntityState, factor: float, f: NDArray[np.float32]
    ) -> Action | None:
        """Return the target change a lever factor means under the holder's Smart Bidding strategy, or None."""
        strategy = holder.bidding_strategy
        if strategy is None:
            return None
        pacing = float(f[1])
        more = factor > 1
        if strategy.uses_target_roas and holder.target_roas_bps:
            old = holder.target_roas_bps
            new = max(1, round(old / factor))
            if new == old:
                return None
            verb = "lowers" if more else "raises"
            return SetTargetRoas(
                action_id=ctx.next_action_id(AGENT.value),
                entity=holder.ref,
                agent=AGENT,
                reason=f"the learned policy {verb} the ROAS target ({old / 10_000:.2f} -> {new / 10_000:.2f}): "
                f"spend today is at {pacing:.0%} of pace; {strategy.value} ignores bids, the target is its lever",
                policy_version=self.version,
                old_target_roas_bps=old,
                new_target_roas_bps=new,
                expected_effect="more volume at a lower return" if more else "less spend at a higher return",
            )
        if strategy.uses_target_cpa and holder.target_cpa_micros:
            old_cpa = holder.target_cpa_micros
            new_cpa = max(1, round(old_cpa * factor))
            if new_cpa == old_cpa:
                return None
            verb = "raises" if more else "lowers"
            return SetTargetCpa(
                action_id=ctx.next_action_id(AGENT.value),
                entity=holder.ref,
                agent=AGENT,
                reason=f"the learned policy {verb} the CPA target ({format_money(old_cpa, snapshot.currency)} -> "
                f"{format_money(new_cpa, snapshot.currency)}): spend today is at {pacing:.0%} of pace; "
                f"{strategy.value} ignores bids, the target is its lever",
                policy_version=self.version,
                old_target_cpa_micros=old_cpa,
                new_target_cpa_micros=new_cpa,
                expected_effect="more volume at a higher cost per conversion" if more else "cheaper conversions",
            )
        return None

    def _budget_action(
        self, snapshot: Snapshot, ctx: AgentContext, holder: EntityState, old: int, new: int, f: NDArray[np.float32]
    ) -> SetBudget:
        delta = new - old
        roas_rel = float(np.exp(f[3]))
        pacing = float(f[1])
        utilisation = float(f[2])
        if delta > 0:
            why = (
                f"the learned policy moves budget in: ROAS is {roas_rel:.2f}x the account's over the last days "
                f"and {utilisation:.0%} of the budget was used"
            )
        else:
            why = (
                f"the learned policy moves budget out: ROAS is {roas_rel:.2f}x the account's, "
                f"{utilisation:.0%} of the budget was used and today's spend is at {pacing:.0%} of pace"
            )
        return SetBudget(
            action_id=ctx.next_action_id(AGENT.value),
            entity=holder.ref,
            agent=AGENT,
            reason=f"{why}; {format_money(abs(delta), snapshot.currency)} moved {'in' if delta > 0 else 'out'} "
            "(account total unchanged)",
            policy_version=self.version,
            old_daily_budget_micros=old,
            new_daily_budget_micros=new,
            expected_effect="more conversion value for the same account budget (simulated-market trained)",
        )

    def _bid_action(
        self, snapshot: Snapshot, ctx: AgentContext, target: EntityState, old: int, new: int, f: NDArray[np.float32]
    ) -> SetBid:
        pacing = float(f[1])
        if new > old:
            why = f"the learned policy lifts the bid: spend today is at {pacing:.0%} of pace, so volume limits it"
        else:
            why = (
                f"the learned policy lowers the bid: spend today is at {pacing:.0%} of pace, "
                "so cheaper clicks should still spend the budget"
            )
        return SetBid(
            action_id=ctx.next_action_id(AGENT.value),
            entity=target.ref,
            agent=AGENT,
            reason=f"{why} ({format_money(old, snapshot.currency)} -> {format_money(new, snapshot.currency)})",
            policy_version=self.version,
            old_cpc_bid_micros=old,
            new_cpc_bid_micros=new,
            expected_effect="more clicks per unit of budget" if new < old else "more volume where budget is left",
        )
