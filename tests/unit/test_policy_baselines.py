"""The baselines: each keeps the account budget, behaves as named, and is reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from bidloop.core.errors import InputError
from bidloop.policies.baselines import BASELINE_NAMES, EqualSplit, FittedCurves, RoasChaser, make_baseline
from bidloop.policies.env import EpisodeSpec, MarketSession
from bidloop.policies.evaluation import play
from bidloop.policies.observation import ReportedHolders

MICROS = 1_000_000


def _reported(budgets: list[float], week_roas: list[float], *, utilisation: float = 1.0) -> ReportedHolders:
    b = np.array(budgets) * MICROS
    week_cost = b * 7 * utilisation
    return ReportedHolders(
        budget_micros=b,
        bid_micros=np.full(len(b), np.nan),
        today_cost_micros=np.zeros(len(b)),
        today_value_micros=np.zeros(len(b)),
        today_clicks=np.zeros(len(b)),
        week_cost_micros=week_cost,
        week_value_micros=week_cost * np.array(week_roas),
        week_clicks=week_cost / MICROS,
        days_seen=7,
        daypart=0,
        dayparts_per_day=6,
        expected_spend_fraction=0.0,
    )


@pytest.mark.parametrize("name", BASELINE_NAMES)
def test_every_baseline_keeps_the_account_budget(name: str) -> None:
    result = play(make_baseline(name), EpisodeSpec("tight_budget", 1_000_010, n_holders=4, days=2))
    assert result.overspent_days == 0
    assert result.value > 0


def test_equal_split_moves_budgets_toward_the_mean() -> None:
    session = MarketSession(EpisodeSpec("stationary", 1_000_011, n_holders=4, days=2))
    policy = EqualSplit()
    spread_before = np.ptp(session.budget)
    while not session.done:
        session.apply(*policy.act(session.reported()))
        session.step()
    assert np.ptp(session.budget) < 0.2 * spread_before


def test_roas_chaser_wishes_more_budget_for_the_higher_roas_holder() -> None:
    wish, bid = RoasChaser(epsilon=0.0).act(_reported([100, 100], [4.0, 1.0]))
    assert wish[0] > 1 > wish[1] and (bid == 1).all()


def test_fitted_curves_allocates_toward_the_higher_return_and_respects_volume_caps() -> None:
    policy = FittedCurves()
    policy.reset(2, 0)
    wish, _ = policy.act(_reported([100, 100], [4.0, 1.0]))
    assert wish[0] > 1 > wish[1]
    policy.reset(2, 0)
    # the high-ROAS holder used only half of its budget: more budget cannot buy it more volume
    capped, _ = policy.act(_reported([100, 100], [4.0, 1.0], utilisation=0.5))
    assert capped[0] < wish[0]


def test_random_baseline_is_reproducible_per_seed() -> None:
    spec = EpisodeSpec("stationary", 1_000_012, n_holders=3, days=1)
    assert play(make_baseline("random"), spec).value == play(make_baseline("random"), spec).value


def test_unknown_baseline_is_refused_with_the_known_names() -> None:
    with pytest.raises(InputError, match="fitted_curves"):
        make_baseline("oracle_of_delphi")
