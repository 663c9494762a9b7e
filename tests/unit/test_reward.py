"""The reward spec: +2 at ROAS >= target, +1 within pace tolerance, -3 on a CPC spike; configurable."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bidloop.core.metrics import Metrics
from bidloop.core.settings import RewardConfig
from bidloop.policies.reward import score_period

SPEC = RewardConfig()


def metrics(cost: int, value: int, clicks: int = 100) -> Metrics:
    return Metrics(
        impressions=clicks * 20, clicks=clicks, cost_micros=cost, conversions=1.0, conversion_value_micros=value
    )


def test_roas_at_target_on_pace_without_spike_scores_three() -> None:
    r = score_period(
        metrics(100_000_000, 300_000_000), planned_spend_micros=100_000_000, before=metrics(100_000_000, 1), spec=SPEC
    )
    assert (r.roas_term, r.pace_term, r.cpc_term, r.total) == (2.0, 1.0, 0.0, 3.0)


def test_cpc_spike_above_twenty_percent_is_penalised() -> None:
    before = metrics(100_000_000, 0, clicks=100)
    after = metrics(100_000_000, 0, clicks=80)  # CPC +25 %
    r = score_period(after, planned_spend_micros=None, before=before, spec=SPEC)
    assert r.cpc_term == -3.0 and round(r.cpc_change_pct or 0, 1) == 25.0


def test_spend_six_percent_off_pace_gets_no_pace_bonus() -> None:
    r = score_period(metrics(94_000_000, 0), planned_spend_micros=100_000_000, before=None, spec=SPEC)
    assert r.pace_term == 0.0


def test_the_spec_is_configurable() -> None:
    spec = RewardConfig(roas_target=5.0, roas_bonus=10.0)
    r = score_period(metrics(100_000_000, 400_000_000), planned_spend_micros=None, before=None, spec=spec)
    assert r.roas_term == 0.0
    r = score_period(metrics(100_000_000, 500_000_000), planned_spend_micros=None, before=None, spec=spec)
    assert r.roas_term == 10.0


@given(
    cost=st.integers(min_value=0, max_value=10**12),
    value=st.integers(min_value=0, max_value=10**12),
    clicks=st.integers(min_value=0, max_value=10**6),
    planned=st.one_of(st.none(), st.integers(min_value=0, max_value=10**12)),
    before_clicks=st.integers(min_value=0, max_value=10**6),
)
def test_reward_is_always_one_of_the_spec_sums(
    cost: int, value: int, clicks: int, planned: int | None, before_clicks: int
) -> None:
    after = Metrics(clicks=clicks, cost_micros=cost, conversion_value_micros=value)
    before = Metrics(clicks=before_clicks, cost_micros=cost)
    r = score_period(after, planned_spend_micros=planned, before=before, spec=SPEC)
    possible = {a + b + c for a in (0.0, 2.0) for b in (0.0, 1.0) for c in (0.0, -3.0)}
    assert r.total in possible
    assert r.total == r.roas_term + r.pace_term + r.cpc_term
    if r.roas_term:
        assert cost > 0 and value / cost >= SPEC.roas_target
