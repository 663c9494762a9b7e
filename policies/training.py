"""Train the shared per-holder bid policy with PPO on simulated markets, and save it to the registry.

One policy is shared across budget holders (`bidloop.policies.env.HolderVecEnv`): every holder of every
training account is one SB3 sub-env, observation ``(F,)``, action ``(2,)`` (budget wish, bid factor).
Observations and rewards are normalised with `VecNormalize`; its statistics ship with the model.

Training scenarios come from `TRAINING_FAMILIES` with seeds below `TEST_SEED_BASE`; `HELD_OUT_FAMILIES`
are never trained on (the benchmark reports them separately as out-of-distribution).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecNormalize

from bidloop.core.errors import InputError, PolicyError
from bidloop.policies.env import TEST_SEED_BASE, TRAIN_SEED_BASE, BudgetMarketEnv, HolderVecEnv
from bidloop.policies.observation import N_FEATURES, OBSERVATION_SPEC_VERSION
from bidloop.policies.registry import PolicyFiles, PolicyMetadata, library_versions, write_metadata
from bidloop.tools.sim.scenarios import SCENARIO_FAMILIES

__all__ = [
    "DOCUMENTED_COMMAND",
    "HELD_OUT_FAMILIES",
    "TRAINING_FAMILIES",
    "TrainingConfig",
    "train_policy",
    "write_normalization",
]

HELD_OUT_FAMILIES: tuple[str, ...] = ("delayed_conv", "drift", "s_curves")
"""Families never seen in training (out-of-distribution test)."""
TRAINING_FAMILIES: tuple[str, ...] = tuple(f for f in SCENARIO_FAMILIES if f not in HELD_OUT_FAMILIES)
"""The default training families."""

DOCUMENTED_COMMAND = "bidloop train --timesteps 4000000 --seed 0 --id default"
"""The command that reproduces the shipped default policy."""


@dataclass
class TrainingConfig:
    """How to train.

    Attributes:
        families: Training families.
        total_timesteps: Holder-steps to train (each holder of each account is one step per daypart).
        seed: Seed of the run (network init, scenario draws).
        account_sizes: Holders per training account (one account env per entry).
        days: Days per training episode.
        n_steps: PPO rollout length per sub-env.
        batch_size: PPO minibatch size.
        n_epochs: PPO epochs per rollout.
        learning_rate: Adam step size.
        gamma: Discount per daypart.
        net_arch: Hidden layer sizes of the policy and value networks.
        log_std_init: Initial log-sd of the Gaussian policy.
        max_change_pct: Largest budget and bid move per step, percent.
        warm_start: Files of a policy to continue from (its normalisation statistics too).
    """

    families: Sequence[str] = TRAINING_FAMILIES
    total_timesteps: int = 4_000_000
    seed: int = 0
    account_sizes: Sequence[int] = (3, 4, 5, 6, 3, 4, 5, 6)
    days: int = 14
    n_steps: int = 84
    batch_size: int = 504
    n_epochs: int = 5
    learning_rate: float = 3e-4
    gamma: float = 0.95
    net_arch: list[int] = field(default_factory=lambda: [64, 64])
    log_std_init: float = -0.7
    max_change_pct: float = 20.0
    warm_start: PolicyFiles | None = None

    def validate(self) -> None:
        """Raise `InputError` on settings PPO cannot run with."""
        unknown = [f for f in self.families if f not in SCENARIO_FAMILIES]
        if not self.families or unknown:
            raise InputError(f"unknown training families {unknown}", hint=f"choose from {', '.join(SCENARIO_FAMILIES)}")
        if self.total_timesteps < 1 or self.n_steps < 2 or self.batch_size < 2 or not self.account_sizes:
            raise InputError("timesteps, n_steps and batch_size must be positive (n_steps and batch_size > 1)")


class _Progress(BaseCallback):
    def __init__(self, report: Callable[[int, int], None] | None, total: int, start: int) -> None:
        super().__init__()
        self.report = report
        self.total = total
        self.start = start

    def _on_step(self) -> bool:
        if self.report is not None:
            self.report(min(self.num_timesteps - self.start, self.total), self.total)
        return True


def write_normalization(files: PolicyFiles, norm: VecNormalize) -> None:
    """Write the observation normalisation numbers as JSON, so acting never needs the pickle."""
    rms = norm.obs_rms
    if isinstance(rms, dict):
        raise PolicyError("dict observations are not supported", hint="the holder policy observes a flat vector")
    numbers = {
        "obs_mean": [float(x) for x in rms.mean],
        "obs_var": [float(x) for x in rms.var],
        "clip_obs": float(norm.clip_obs),
        "epsilon": float(norm.epsilon),
    }
    files.normalization.write_text(json.dumps(numbers, indent=1) + "\n", encoding="utf-8")


def make_training_env(config: TrainingConfig) -> HolderVecEnv:
    """Return the holder-level vector env of the training accounts (seeds below `TEST_SEED_BASE`)."""
    envs = [
        BudgetMarketEnv(
            families=tuple(config.families),
            n_holders=size,
            days=config.days,
            seed_base=TRAIN_SEED_BASE,
            n_seeds=TEST_SEED_BASE - TRAIN_SEED_BASE,
            max_change_pct=config.max_change_pct,
        )
        for size in config.account_sizes
    ]
    return HolderVecEnv(envs, seed=config.seed * 10_007)


def train_policy(
    config: TrainingConfig,
    files: PolicyFiles,
    *,
    command: str,
    progress: Callable[[int, int], None] | None = None,
) -> PolicyMetadata:
    """Train a policy and write model, normalisation statistics and metadata to `files`.

    Args:
        config: The training settings.
        files: Where to write (see `bidloop.policies.registry`).
        command: The command line to record (reproduces the run).
        progress: Called with (timesteps done, total) as training advances.

    Raises:
        InputError: If the settings are invalid.
        PolicyError: If the warm-start policy cannot be loaded.
    """
    config.validate()
    torch.set_num_threads(1)
    started = time.perf_counter()
    venv = make_training_env(config)
    warm_meta: PolicyMetadata | None = None
    if config.warm_start is not None:
        warm_meta = config.warm_start.read_metadata()
        norm = VecNormalize.load(str(config.warm_start.vecnormalize), venv)
        norm.training = True
        norm.norm_reward = True
        model = PPO.load(str(config.warm_start.model), env=norm, device="cpu", seed=config.seed)
    else:
        norm = VecNormalize(venv, norm_obs=True, norm_reward=True, clip_obs=10.0, gamma=config.gamma)
        model = PPO(
            "MlpPolicy",
            norm,
            n_steps=config.n_steps,
            batch_size=config.batch_size,
            n_epochs=config.n_epochs,
            learning_rate=config.learning_rate,
            gamma=config.gamma,
            gae_lambda=0.9,
            ent_coef=0.0,
            policy_kwargs={"net_arch": list(config.net_arch), "log_std_init": config.log_std_init},
            seed=config.seed,
            device="cpu",
            verbose=0,
        )
    # A warm start keeps counting from the policy's own timesteps: the metadata then says how much it saw in all.
    start_steps = int(model.num_timesteps) if warm_meta else 0
    model.learn(
        total_timesteps=config.total_timesteps,
        callback=_Progress(progress, config.total_timesteps, start_steps),
        reset_num_timesteps=warm_meta is None,
    )
    files.model.parent.mkdir(parents=True, exist_ok=True)
    tmp = files.model.with_name(files.model.name + ".tmp.zip")
    model.save(str(tmp))
    shutil.move(str(tmp), files.model)
    norm.save(str(files.vecnormalize))
    write_normalization(files, norm)
    if not files.model.is_file():  # pragma: no cover - SB3 always writes the zip
        raise PolicyError(f"training finished but {files.model} was not written")
    meta = PolicyMetadata(
        policy_id=files.policy_id,
        version=f"ppo-holder@{files.policy_id}-{config.seed}",
        observation_spec_version=OBSERVATION_SPEC_VERSION,
        n_features=N_FEATURES,
        families=list(config.families),
        held_out_families=[f for f in SCENARIO_FAMILIES if f not in config.families],
        train_seed=config.seed,
        scenario_seed_range=(TRAIN_SEED_BASE, TEST_SEED_BASE),
        total_timesteps=int(model.num_timesteps),
        max_change_pct=config.max_change_pct,
        command=command,
        train_wall_s=round(time.perf_counter() - started, 1),
        library_versions=library_versions(),
        warm_start=warm_meta.policy_id if warm_meta else None,
    )
    write_metadata(files, meta)
    return meta
