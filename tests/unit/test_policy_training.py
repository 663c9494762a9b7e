"""Tiny training runs: they write a loadable policy whose deterministic actions survive save and load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from bidloop.core.errors import InputError
from bidloop.policies.env import EpisodeSpec, MarketSession
from bidloop.policies.learned import HolderPolicyModel
from bidloop.policies.observation import OBSERVATION_SPEC_VERSION, holder_features
from bidloop.policies.registry import PolicyFiles, user_files
from bidloop.policies.training import TrainingConfig, make_training_env, train_policy


def tiny_config(**changes: object) -> TrainingConfig:
    config = TrainingConfig(
        families=("stationary",),
        total_timesteps=128,
        account_sizes=(2,),
        days=1,
        n_steps=32,
        batch_size=32,
        n_epochs=1,
        net_arch=[16],
    )
    for key, value in changes.items():
        setattr(config, key, value)
    return config


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> PolicyFiles:
    files = user_files(tmp_path_factory.mktemp("data"), "tiny")
    train_policy(tiny_config(), files, command="bidloop train --timesteps 128 --id tiny")
    return files


def test_training_writes_model_statistics_and_metadata(trained: PolicyFiles) -> None:
    meta = trained.read_metadata()
    assert trained.model.is_file() and trained.vecnormalize.is_file()
    assert meta.observation_spec_version == OBSERVATION_SPEC_VERSION
    assert meta.families == ["stationary"] and "s_curves" in meta.held_out_families
    assert meta.total_timesteps >= 128 and meta.command.startswith("bidloop train")
    assert {"torch", "stable-baselines3", "gymnasium", "numpy"} <= set(meta.library_versions)


def test_saved_and_loaded_policy_act_identically(trained: PolicyFiles) -> None:
    features = holder_features(MarketSession(EpisodeSpec("tight_budget", 1_000_020, n_holders=7, days=1)).reported())
    loaded = HolderPolicyModel(trained)
    # reference: SB3's own load of the model and of the normalisation statistics
    model = PPO.load(str(trained.model), device="cpu")
    norm = VecNormalize.load(str(trained.vecnormalize), make_training_env(tiny_config()))
    norm.training = False
    expected, _ = model.predict(norm.normalize_obs(features), deterministic=True)
    actions = loaded.act_features(features)
    assert actions.shape == (7, 2)
    assert np.allclose(actions, np.clip(expected, -1, 1), atol=1e-6)
    assert np.array_equal(actions, HolderPolicyModel(trained).act_features(features))


def test_same_seed_trains_identical_parameters(tmp_path: Path) -> None:
    a, b = user_files(tmp_path, "a"), user_files(tmp_path, "b")
    train_policy(tiny_config(), a, command="x")
    train_policy(tiny_config(), b, command="x")
    features = holder_features(MarketSession(EpisodeSpec("stationary", 1_000_021, n_holders=3, days=1)).reported())
    assert np.array_equal(HolderPolicyModel(a).act_features(features), HolderPolicyModel(b).act_features(features))


def test_warm_start_continues_from_a_registered_policy(trained: PolicyFiles, tmp_path: Path) -> None:
    files = user_files(tmp_path, "warm")
    meta = train_policy(tiny_config(warm_start=trained), files, command="bidloop train --warm-start tiny")
    assert meta.warm_start == "tiny" and meta.total_timesteps > trained.read_metadata().total_timesteps


def test_unknown_family_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        train_policy(tiny_config(families=("moon_market",)), user_files(tmp_path, "x"), command="x")
