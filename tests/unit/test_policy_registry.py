"""The registry, the loader and the learned bid shifter: refuse what does not match, act within the limits."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bidloop.core.actions import AgentName, SetBudget
from bidloop.core.agent_context import AgentContext
from bidloop.core.entities import EntityKind
from bidloop.core.errors import PolicyError
from bidloop.core.settings import Settings
from bidloop.core.store import TrajectoryRow
from bidloop.policies.dataset import trajectory_dataset_from_rows
from bidloop.policies.learned import LearnedBidPolicy
from bidloop.policies.loader import load_bid_policy
from bidloop.policies.registry import PolicyFiles, find_policy, list_policies, user_files
from bidloop.policies.training import TrainingConfig, train_policy

MICROS = 1_000_000


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    config = TrainingConfig(
        families=("stationary",),
        total_timesteps=64,
        account_sizes=(2,),
        days=1,
        n_steps=32,
        batch_size=32,
        n_epochs=1,
        net_arch=[16],
    )
    train_policy(config, user_files(root, "mine"), command="bidloop train --id mine")
    return root


def _copy(src: PolicyFiles, data_dir: Path, policy_id: str) -> PolicyFiles:
    dst = user_files(data_dir, policy_id)
    dst.model.parent.mkdir(parents=True, exist_ok=True)
    pairs = (
        (src.model, dst.model),
        (src.vecnormalize, dst.vecnormalize),
        (src.normalization, dst.normalization),
        (src.metadata, dst.metadata),
    )
    for a, b in pairs:
        b.write_bytes(a.read_bytes())
    return dst


def test_heuristic_setting_loads_no_learned_policy(tmp_path: Path) -> None:
    assert load_bid_policy(Settings(data_dir=tmp_path, policy="heuristic")) is None


def test_a_registered_policy_loads_with_its_version(data_dir: Path) -> None:
    policy = load_bid_policy(Settings(data_dir=data_dir, policy="mine"))
    assert isinstance(policy, LearnedBidPolicy) and policy.version == "ppo-holder@mine-0"


def test_an_unknown_policy_id_stops_the_run_with_a_hint(data_dir: Path) -> None:
    with pytest.raises(PolicyError, match="no policy 'nope'") as info:
        load_bid_policy(Settings(data_dir=data_dir, policy="nope"))
    assert info.value.hint and "mine" in info.value.hint


def test_a_policy_with_another_observation_spec_is_refused(data_dir: Path) -> None:
    files = _copy(find_policy("mine", data_dir), data_dir, "old-spec")
    meta = json.loads(files.metadata.read_text())
    meta["observation_spec_version"] = "holder-obs@0"
    files.metadata.write_text(json.dumps(meta))
    with pytest.raises(PolicyError, match="observation spec"):
        load_bid_policy(Settings(data_dir=data_dir, policy="old-spec"))


def test_a_policy_with_a_missing_model_file_is_refused(data_dir: Path) -> None:
    files = _copy(find_policy("mine", data_dir), data_dir, "no-model")
    files.model.unlink()
    with pytest.raises(PolicyError, match="missing"):
        load_bid_policy(Settings(data_dir=data_dir, policy="no-model"))


def test_a_corrupt_model_file_is_refused(data_dir: Path) -> None:
    files = _copy(find_policy("mine", data_dir), data_dir, "corrupt")
    files.model.write_bytes(b"not a zip")
    with pytest.raises(PolicyError, match="cannot be loaded"):
        load_bid_policy(Settings(data_dir=data_dir, policy="corrupt"))


def test_the_shipped_default_policy_loads(tmp_path: Path) -> None:
    policy = load_bid_policy(Settings(data_dir=tmp_path, policy="default"))
    assert isinstance(policy, LearnedBidPolicy) and policy.version.startswith("ppo-holder@default")


def test_list_shows_shipped_and_trained_policies(data_dir: Path) -> None:
    listed = {(p.policy_id, p.shipped) for p in list_policies(data_dir)}
    assert ("default", True) in listed and ("mine", False) in listed


def test_learned_policy_proposes_budgets_that_keep_the_total_and_record_its_version(
    data_dir: Path, make_entity: Callable, make_metrics: Callable, make_snapshot: Callable
) -> None:
    holders = [
        make_entity(
            EntityKind.CAMPAIGN,
            str(i),
            daily_budget_micros=100 * MICROS,
            cpc_bid_micros=2 * MICROS,
            today=make_metrics(cost=20, value=40 * (i + 1), clicks=10),
            trailing_7d=make_metrics(cost=700, value=700 * (i + 1), clicks=350),
            daily_history=[make_metrics(cost=100, value=100 * (i + 1), clicks=50)] * 7,
        )
        for i in range(4)
    ]
    snap = make_snapshot(holders)
    policy = load_bid_policy(Settings(data_dir=data_dir, policy="mine"))
    assert isinstance(policy, LearnedBidPolicy) and policy.version.startswith("ppo-holder@mine")
    actions = policy.propose(snap, AgentContext(run_id="r1"))
    budgets = {h.ref.entity_id: h.daily_budget_micros for h in holders}
    for a in actions:
        assert a.policy_version == policy.version and a.agent is AgentName.BID_SHIFTER and a.reason
        if isinstance(a, SetBudget):
            budgets[a.entity.entity_id] = a.new_daily_budget_micros
            assert abs(a.new_daily_budget_micros - a.old_daily_budget_micros) <= 0.2 * a.old_daily_budget_micros + 1
    assert 400 * MICROS - 10 <= sum(budgets.values()) <= 400 * MICROS, "the account total never grows"
    assert len({a.action_id for a in actions}) == len(actions)


def test_logged_trajectories_load_as_a_dataset() -> None:
    rows = [
        TrajectoryRow(
            action_id="r1-bi00001",
            run_id="r1",
            account_id="acct",
            entity_key="k",
            policy_version="v1",
            state={
                "daily_budget_micros": 100 * MICROS,
                "roas_7d": 3.0,
                "expected_spend_fraction": 0.5,
                "day_avg_7d": {"cost_micros": 90 * MICROS},
            },
            action={
                "kind": "set_budget",
                "old_daily_budget_micros": 100 * MICROS,
                "new_daily_budget_micros": 120 * MICROS,
            },
            reward=2.0,
            next_state={"daily_budget_micros": 120 * MICROS, "roas_7d": 3.2},
        ),
        TrajectoryRow(
            action_id="r1-bi00002",
            run_id="r1",
            account_id="acct",
            entity_key="k",
            policy_version="v1",
            state={},
            action={"kind": "pause_creative"},
            reward=1.0,
        ),
        TrajectoryRow(
            action_id="r1-bi00003",
            run_id="r1",
            account_id="acct",
            entity_key="k",
            policy_version="v1",
            state={},
            action={"kind": "set_bid", "old_cpc_bid_micros": 2 * MICROS, "new_cpc_bid_micros": MICROS},
            reward=None,
        ),
    ]
    data = trajectory_dataset_from_rows(rows)
    assert len(data) == 1, "only matured budget and bid transitions are kept"
    assert data.actions[0] == pytest.approx(0.18232, abs=1e-4)
    assert data.states.shape == (1, 4) and data.rewards[0] == 2.0
    assert data.mean_reward("v1") == 2.0


@pytest.mark.parametrize("n_holders", [1, 10_000])
def test_learned_policy_acts_on_accounts_of_one_to_ten_thousand_holders(
    n_holders: int, make_entity: Callable, make_metrics: Callable, make_snapshot: Callable
) -> None:
    holders = [
        make_entity(
            EntityKind.CAMPAIGN,
            str(i),
            daily_budget_micros=(50 + i % 50) * MICROS,
            today=make_metrics(cost=10, value=20 + i % 7, clicks=5),
            trailing_7d=make_metrics(cost=300, value=600 + i % 300, clicks=200),
        )
        for i in range(n_holders)
    ]
    total = sum(h.daily_budget_micros for h in holders)
    policy = load_bid_policy(Settings(data_dir=Path("unused"), policy="default"))
    assert isinstance(policy, LearnedBidPolicy) and policy.version.startswith("ppo-holder@default")
    actions = policy.propose(make_snapshot(holders), AgentContext(run_id="big"))
    budgets = {h.ref.entity_id: h.daily_budget_micros for h in holders}
    for a in actions:
        if isinstance(a, SetBudget):
            budgets[a.entity.entity_id] = a.new_daily_budget_micros
    assert total - n_holders <= sum(budgets.values()) <= total
    if n_holders == 1:
        assert not any(isinstance(a, SetBudget) for a in actions), "one holder has no budget to shift"


def test_loading_a_policy_never_unpickles(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a policy load unpickled something")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    policy = load_bid_policy(Settings(data_dir=data_dir, policy="mine"))
    assert isinstance(policy, LearnedBidPolicy)
    shipped = load_bid_policy(Settings(data_dir=data_dir, policy="default"))
    assert isinstance(shipped, LearnedBidPolicy)


def test_a_policy_without_its_normalisation_numbers_is_refused(data_dir: Path) -> None:
    files = _copy(user_files(data_dir, "mine"), data_dir, "no-numbers")
    files.normalization.unlink()
    with pytest.raises(PolicyError, match="incomplete"):
        load_bid_policy(Settings(data_dir=data_dir, policy="no-numbers"))
