"""Property tests: over 100,000 adversarial actions and configurations, not one passes outside the limits.

Each hypothesis example draws a seed (so shrinking still finds the smallest failing seed) from which
`random_case` builds accounts, a configuration and a batch of actions with NaN, infinities,
negative and huge values, unit slips, stale and unknown entities, duplicates and conflicts. The
independent checker `violations` lists every allowed, clipped or approvable action outside the limits.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bidloop.core.actions import AgentName, SetBid, SetBudget, SetTargetCpa, SetTargetRoas
from bidloop.core.decisions import Decision, Verdict
from bidloop.core.entities import BiddingStrategy, EntityKind, EntityRef, EntityState, Platform
from bidloop.core.limits import GuardrailLimits
from bidloop.core.metrics import Metrics
from bidloop.core.money import MAX_MICROS
from bidloop.core.snapshot import Snapshot
from bidloop.guardrails import FilterContext, evaluate
from bidloop.testing.guardrail_fuzz import NOW, FuzzCase, random_case, violations

ACTIONS_PER_BATCH = 200
FUZZ_EXAMPLES = 520
_tried = {"actions": 0, "applicable": 0}

_settings = settings(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@settings(_settings, max_examples=FUZZ_EXAMPLES)
@given(seed=st.integers(min_value=0, max_value=2**63 - 1))
def _fuzz_one_batch(seed: int) -> None:
    case = random_case(random.Random(seed), n_actions=ACTIONS_PER_BATCH)
    decisions = evaluate(case.actions, case.snapshots, case.limits, context=case.context)
    _tried["actions"] += len(case.actions)
    _tried["applicable"] += sum(d.verdict is not Verdict.BLOCKED for d in decisions)
    assert violations(case, decisions) == []


def test_over_100k_fuzzed_actions_not_one_outside_the_limits_is_let_through() -> None:
    _tried.update(actions=0, applicable=0)
    _fuzz_one_batch()
    assert _tried["actions"] >= 100_000
    # The batches must exercise the limits, not only be refused wholesale.
    assert _tried["applicable"] >= _tried["actions"] // 20


def test_the_checker_catches_a_filter_that_lets_everything_through() -> None:
    case = random_case(random.Random(11), n_actions=ACTIONS_PER_BATCH)
    judged = evaluate(case.actions, case.snapshots, case.limits, context=case.context)
    pass_through = [
        Decision(action_id=d.action_id, verdict=Verdict.ALLOWED, rule_id="none", message="ok", final_action=a)
        for d, a in zip(judged, case.actions, strict=True)
        if isinstance(a, SetBudget | SetBid)
    ]
    kept = [a for a in case.actions if isinstance(a, SetBudget | SetBid)]
    assert violations(FuzzCase(kept, case.snapshots, case.limits, case.context), pass_through) != []


@pytest.mark.parametrize("kinds", [(SetTargetRoas, SetTargetCpa), (SetBid,), (SetBudget,)])
def test_the_checker_catches_a_filter_that_ignores_the_lever_rules(kinds: tuple[type, ...]) -> None:
    """Pass through exactly what the filter blocked for a lever rule: the checker must object to each one."""
    lever_rules = {
        "bid_ignored_by_strategy",
        "target_not_used_by_strategy",
        "not_delivering",
        "insufficient_data",
        "target_learning_period",
    }
    caught = 0
    for seed in range(40):
        case = random_case(random.Random(seed), n_actions=ACTIONS_PER_BATCH)
        judged = evaluate(case.actions, case.snapshots, case.limits, context=case.context)
        for d, a in zip(judged, case.actions, strict=True):
            if not isinstance(a, kinds) or d.rule_id not in lever_rules:
                continue
            through = Decision(
                action_id=d.action_id, verdict=Verdict.ALLOWED, rule_id="none", message="ok", final_action=a
            )
            found = violations(FuzzCase([a], case.snapshots, case.limits, case.context), [through])
            assert found, f"{d.rule_id} on {a.kind} {a.entity.key} was let through unnoticed"
            caught += 1
    assert caught >= 20


def test_the_same_batch_gets_the_same_decisions() -> None:
    case = random_case(random.Random(5), n_actions=ACTIONS_PER_BATCH)
    first = evaluate(case.actions, case.snapshots, case.limits, context=case.context)
    again = evaluate(case.actions, case.snapshots, case.limits, context=case.context)
    assert first == again


# -- actions drawn field by field by hypothesis, on one fixed account --------------------------------

_ACCOUNT = "acct"
_CAMPAIGNS = [("c1", 100_000_000), ("c2", 40_000_000), ("c3", 1_000_000)]
_KEYWORDS = [("k1", 1_000_000), ("k2", 60_000), ("k3", 19_000_000)]
_HISTORY = [Metrics(impressions=1_000, clicks=20, cost_micros=10_000_000) for _ in range(14)]


def _ref(kind: EntityKind, entity_id: str) -> EntityRef:
    return EntityRef(platform=Platform.META, account_id=_ACCOUNT, kind=kind, entity_id=entity_id)


_SNAPSHOT = Snapshot(
    account_id=_ACCOUNT,
    platform=Platform.META,
    as_of=NOW,
    account_daily_budget_micros=sum(b for _, b in _CAMPAIGNS),
    entities=[
        EntityState(ref=_ref(EntityKind.CAMPAIGN, i), name=i, daily_budget_micros=b, daily_history=_HISTORY)
        for i, b in _CAMPAIGNS
    ]
    + [
        EntityState(ref=_ref(EntityKind.KEYWORD, i), name=i, campaign_id="c1", cpc_bid_micros=b, daily_history=_HISTORY)
        for i, b in _KEYWORDS
    ],
)

_amounts = st.one_of(
    st.integers(min_value=0, max_value=MAX_MICROS),
    st.integers(min_value=-(10**18), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([b * 1_000_000 for _, b in _CAMPAIGNS + _KEYWORDS]),  # a million times off
    st.none(),
    st.booleans(),
)


@st.composite
def _money_action(draw: st.DrawFn, n: int) -> object:
    if draw(st.booleans()):
        entity_id, current = draw(st.sampled_from([*_CAMPAIGNS, ("c404", 5_000_000)]))
        old = draw(st.one_of(st.just(current), _amounts))
        fields = {"old_daily_budget_micros": old, "new_daily_budget_micros": draw(_amounts)}
        cls: type = SetBudget
        kind = draw(st.sampled_from([EntityKind.CAMPAIGN, EntityKind.AD_GROUP, EntityKind.KEYWORD]))
    else:
        entity_id, current = draw(st.sampled_from(_KEYWORDS))
        old = draw(st.one_of(st.just(current), _amounts))
        fields = {"old_cpc_bid_micros": old, "new_cpc_bid_micros": draw(_amounts)}
        cls = SetBid
        kind = draw(st.sampled_from([EntityKind.KEYWORD, EntityKind.CREATIVE]))
    common = {
        "action_id": f"a{draw(st.integers(0, n))}",
        "entity": _ref(kind, entity_id),
        "agent": draw(st.sampled_from(list(AgentName))),
        "reason": "hypothesis",
    }
    try:
        return cls(**common, **fields)
    except (ValueError, TypeError):
        return cls.model_construct(**common, **fields)  # type: ignore[attr-defined]


@st.composite
def _limits(draw: st.DrawFn) -> GuardrailLimits:
    floor = draw(st.integers(0, 2_000_000))
    return GuardrailLimits(
        max_change_pct=draw(st.floats(min_value=0.001, max_value=100, exclude_min=False)),
        max_change_micros=draw(st.none() | st.integers(0, MAX_MICROS)),
        max_daily_change_pct=draw(st.floats(min_value=0.001, max_value=1000)),
        bid_floor_micros=floor,
        bid_ceiling_micros=draw(st.integers(floor, MAX_MICROS)),
        approval_above_micros=draw(st.integers(0, MAX_MICROS)),
        account_daily_budget_cap_micros=draw(st.none() | st.integers(0, MAX_MICROS)),
        allow_total_budget_increase=draw(st.booleans()),
        cooldown_minutes=draw(st.sampled_from([0.0, 60.0])),
        max_changes_per_run=draw(st.integers(0, 50)),
    )


_TARGET_SNAPSHOT = Snapshot(
    account_id=_ACCOUNT,
    platform=Platform.GOOGLE_ADS,
    as_of=NOW,
    account_daily_budget_micros=100_000_000,
    entities=[
        EntityState(
            ref=EntityRef(platform=Platform.GOOGLE_ADS, account_id=_ACCOUNT, kind=EntityKind.CAMPAIGN, entity_id=i),
            name=i,
            campaign_id=i,
            daily_budget_micros=50_000_000,
            bidding_strategy=strategy,
            target_roas_bps=30_000 if strategy is BiddingStrategy.TARGET_ROAS else None,
            target_cpa_micros=20_000_000 if strategy is BiddingStrategy.TARGET_CPA else None,
            daily_history=_HISTORY,
        )
        for i, strategy in (("roas", BiddingStrategy.TARGET_ROAS), ("cpa", BiddingStrategy.TARGET_CPA))
    ],
)


@settings(_settings, max_examples=300)
@given(data=st.data())
def test_hypothesis_drawn_targets_stay_within_their_floors_ceilings_and_max_change(data: st.DataObject) -> None:
    floor = data.draw(st.integers(0, 40_000))
    cpa_floor = data.draw(st.integers(0, 30_000_000))
    limits = GuardrailLimits(
        target_max_change_pct=data.draw(st.floats(min_value=0.001, max_value=100)),
        target_max_daily_change_pct=data.draw(st.floats(min_value=0.001, max_value=1000)),
        target_roas_floor_bps=floor,
        target_roas_ceiling_bps=data.draw(st.integers(floor, 10**6)),
        target_cpa_floor_micros=cpa_floor,
        target_cpa_ceiling_micros=data.draw(st.integers(cpa_floor, MAX_MICROS)),
        target_cooldown_days=data.draw(st.sampled_from([0.0, 7.0])),
        target_approval_above_pct=data.draw(st.floats(min_value=0, max_value=100)),
        approval_above_micros=data.draw(st.integers(0, MAX_MICROS)),
        min_clicks_to_act=data.draw(st.sampled_from([0, 30, 500])),
    )
    actions: list[object] = []
    for n in range(data.draw(st.integers(1, 8))):
        roas = data.draw(st.booleans())
        cls: type = SetTargetRoas if roas else SetTargetCpa
        fields = (
            {
                "old_target_roas_bps": data.draw(st.one_of(st.just(30_000), _amounts)),
                "new_target_roas_bps": data.draw(_amounts),
            }
            if roas
            else {
                "old_target_cpa_micros": data.draw(st.one_of(st.just(20_000_000), _amounts)),
                "new_target_cpa_micros": data.draw(_amounts),
            }
        )
        common = {
            "action_id": f"t{n}",
            "entity": _ref(EntityKind.CAMPAIGN, data.draw(st.sampled_from(["roas", "cpa"]))).model_copy(
                update={"platform": Platform.GOOGLE_ADS}
            ),
            "agent": AgentName.BID_SHIFTER,
            "reason": "hypothesis",
        }
        try:
            actions.append(cls(**common, **fields))
        except (ValueError, TypeError):
            actions.append(cls.model_construct(**common, **fields))  # type: ignore[attr-defined]
    days_ago = data.draw(st.lists(st.floats(min_value=-1, max_value=30), max_size=3))
    roas_key = _TARGET_SNAPSHOT.entities[0].ref.key
    context = FilterContext(
        run_id="h",
        actor="cli",
        now=NOW,
        target_changes={roas_key: [NOW - timedelta(days=d) for d in days_ago]},
        target_changes_today_pct={roas_key: data.draw(st.floats(allow_nan=True, allow_infinity=True))},
    )
    case = FuzzCase(actions=actions, snapshots={_ACCOUNT: _TARGET_SNAPSHOT}, limits=limits, context=context)
    decisions = evaluate(actions, case.snapshots, limits, context=context)
    assert violations(case, decisions) == []


@settings(_settings, max_examples=300)
@given(data=st.data())
def test_hypothesis_drawn_actions_and_limits_never_pass_outside_the_limits(data: st.DataObject) -> None:
    limits = data.draw(_limits())
    n = data.draw(st.integers(1, 25))
    actions = [data.draw(_money_action(n)) for _ in range(n)]
    minutes_ago = data.draw(st.lists(st.integers(-30, 600), max_size=6))
    recent = {_ref(EntityKind.CAMPAIGN, "c1").key: [NOW - timedelta(minutes=m) for m in minutes_ago]}
    today = {_ref(EntityKind.KEYWORD, "k1").key: data.draw(st.floats(allow_nan=True, allow_infinity=True))}
    context = FilterContext(run_id="h", actor="cli", now=NOW, recent_changes=recent, changes_today_pct=today)
    case = FuzzCase(actions=actions, snapshots={_ACCOUNT: _SNAPSHOT}, limits=limits, context=context)
    decisions = evaluate(actions, case.snapshots, limits, context=context)
    assert violations(case, decisions) == []
