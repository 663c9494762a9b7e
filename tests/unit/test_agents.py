"""The deterministic agents: each proposes what an experienced media buyer would, and nothing more."""

from __future__ import annotations

from collections.abc import Callable

from bidloop.agents.bid_shifter import propose_bid_actions
from bidloop.agents.creative_rotation import propose_creative_actions
from bidloop.agents.keyword_insight import propose_keyword_actions
from bidloop.agents.reporting import build_report, render_markdown
from bidloop.core.actions import AddKeyword, AddNegativeKeyword, EnableCreative, PauseCreative, SetBid, SetBudget
from bidloop.core.agent_context import AgentContext, Steering
from bidloop.core.entities import BudgetPeriod, EntityKind, MatchType, Platform, Status
from bidloop.core.metrics import Metrics

K = EntityKind


def _search_account(make_entity: Callable, make_metrics: Callable, make_snapshot: Callable):
    return make_snapshot(
        [
            make_entity(K.CAMPAIGN, "c1", daily_budget_micros=100_000_000, trailing_7d=make_metrics(500, 2000, 400)),
            make_entity(K.AD_GROUP, "g1", parent_id="c1", campaign_id="c1", cpc_bid_micros=1_200_000),
            make_entity(
                K.KEYWORD,
                "k1",
                parent_id="g1",
                campaign_id="c1",
                text="running shoes",
                match_type=MatchType.BROAD,
                cpc_bid_micros=1_000_000,
            ),
            make_entity(
                K.SEARCH_TERM,
                "s1",
                parent_id="k1",
                text="free running shoes",
                trailing_7d=make_metrics(cost=30, clicks=25),
            ),
            make_entity(
                K.SEARCH_TERM, "s2", parent_id="k1", text="free shoes", trailing_7d=make_metrics(cost=25, clicks=20)
            ),
            make_entity(
                K.SEARCH_TERM,
                "s3",
                parent_id="k1",
                text="trail running shoes men",
                trailing_7d=make_metrics(cost=40, value=400, clicks=30, conversions=5),
            ),
            make_entity(
                K.SEARCH_TERM,
                "s4",
                parent_id="k1",
                text="running shoes sale",
                trailing_7d=make_metrics(cost=5, clicks=4),
            ),
        ]
    )


def test_wasteful_search_terms_get_exact_negatives(make_entity, make_metrics, make_snapshot) -> None:
    actions = propose_keyword_actions(
        _search_account(make_entity, make_metrics, make_snapshot), AgentContext(run_id="r")
    )
    exact = sorted(a.text for a in actions if isinstance(a, AddNegativeKeyword) and a.match_type is MatchType.EXACT)
    assert exact == ["free running shoes", "free shoes"]
    assert all(a.entity.kind is K.AD_GROUP and a.entity.entity_id == "g1" for a in actions)


def test_a_word_shared_by_wasteful_terms_becomes_a_phrase_negative(make_entity, make_metrics, make_snapshot) -> None:
    actions = propose_keyword_actions(
        _search_account(make_entity, make_metrics, make_snapshot), AgentContext(run_id="r")
    )
    phrase = [a.text for a in actions if isinstance(a, AddNegativeKeyword) and a.match_type is MatchType.PHRASE]
    assert phrase == ["free"]


def test_low_spend_terms_are_left_alone(make_entity, make_metrics, make_snapshot) -> None:
    actions = propose_keyword_actions(
        _search_account(make_entity, make_metrics, make_snapshot), AgentContext(run_id="r")
    )
    assert "running shoes sale" not in {getattr(a, "text", "") for a in actions}


def test_converting_term_is_promoted_to_exact_keyword_at_its_keyword_bid(
    make_entity, make_metrics, make_snapshot
) -> None:
    actions = propose_keyword_actions(
        _search_account(make_entity, make_metrics, make_snapshot), AgentContext(run_id="r")
    )
    added = [a for a in actions if isinstance(a, AddKeyword)]
    assert [(a.text, a.match_type, a.cpc_bid_micros) for a in added] == [
        ("trail running shoes men", MatchType.EXACT, 1_000_000)
    ]


def _holders(make_entity, make_metrics, make_snapshot, *, platform=Platform.META):
    def holder(i: str, roas: float, utilisation: float, bid: int | None = None):
        budget = 100_000_000
        cost = 7 * 100 * utilisation
        history = [
            make_metrics(cost / 7 * f, cost / 7 * f * roas, int(cost / 7 * f))
            for f in (0.8, 0.9, 1.0, 1.1, 1.2, 1.0, 1.0)
        ]
        return make_entity(
            K.AD_GROUP,
            i,
            platform=platform,
            daily_budget_micros=budget,
            cpc_bid_micros=bid,
            trailing_7d=make_metrics(cost, cost * roas, clicks=int(cost)),
            daily_history=history,
        )

    return make_snapshot(
        [
            holder("117", 5.0, 1.0, 900_000),
            holder("124", 4.5, 1.0, 900_000),
            holder("120", 1.2, 1.0),
            holder("121", 1.0, 0.5),
        ],
        platform=platform,
    )


def test_budget_moves_from_low_to_high_marginal_return_and_keeps_the_total(
    make_entity, make_metrics, make_snapshot
) -> None:
    snap = _holders(make_entity, make_metrics, make_snapshot)
    actions = [a for a in propose_bid_actions(snap, AgentContext(run_id="r")) if isinstance(a, SetBudget)]
    delta = {a.entity.entity_id: a.new_daily_budget_micros - a.old_daily_budget_micros for a in actions}
    assert sum(delta.values()) == 0
    assert delta["117"] > 0  # the best marginal return receives first
    assert delta["120"] < 0  # lowest marginal return among holders that spend their budget
    assert "121" not in delta  # half its budget unused: moving it to a holder that spends it would raise spend
    assert all(abs(d) <= 15_000_000 for d in delta.values())  # at most 15 % of a 100.00 budget
    assert all(a.policy_version == "heuristic-mroas@1" for a in actions)


def test_bids_rise_only_where_roas_beats_target_when_steered(make_entity, make_metrics, make_snapshot) -> None:
    snap = _holders(make_entity, make_metrics, make_snapshot)
    steer = Steering(focus_entity_ids=frozenset({"117", "124"}), bid_direction="up", only_where_effective=True)
    bids = [a for a in propose_bid_actions(snap, AgentContext(run_id="r", steering=steer)) if isinstance(a, SetBid)]
    assert {a.entity.entity_id for a in bids} == {"117", "124"}
    assert all(a.new_cpc_bid_micros == 990_000 for a in bids)


def test_unattended_bids_never_rise(make_entity, make_metrics, make_snapshot) -> None:
    snap = _holders(make_entity, make_metrics, make_snapshot)
    bids = [a for a in propose_bid_actions(snap, AgentContext(run_id="r")) if isinstance(a, SetBid)]
    assert all(a.new_cpc_bid_micros < a.old_cpc_bid_micros for a in bids)


def test_named_leaders_receive_budget_first(make_entity, make_metrics, make_snapshot) -> None:
    snap = _holders(make_entity, make_metrics, make_snapshot)
    steer = Steering(focus_entity_ids=frozenset({"124"}))
    actions = [
        a for a in propose_bid_actions(snap, AgentContext(run_id="r", steering=steer)) if isinstance(a, SetBudget)
    ]
    gains = {a.entity.entity_id for a in actions if a.new_daily_budget_micros > a.old_daily_budget_micros}
    assert "124" in gains


def _creatives(make_entity, make_metrics, make_snapshot, fatigued_drop: float):
    fresh = [make_metrics(clicks=100, impressions=5000) for _ in range(10)]
    tired = [make_metrics(clicks=100, impressions=5000) for _ in range(7)] + [
        make_metrics(clicks=int(100 * (1 - fatigued_drop)), impressions=5000) for _ in range(3)
    ]
    rested = [make_metrics(clicks=100, impressions=5000) for _ in range(3)] + [Metrics() for _ in range(7)]
    return make_snapshot(
        [
            make_entity(K.AD_GROUP, "g1"),
            make_entity(K.CREATIVE, "a1", parent_id="g1", daily_history=tired),
            make_entity(K.CREATIVE, "a2", parent_id="g1", daily_history=fresh),
            make_entity(K.CREATIVE, "a3", parent_id="g1", status=Status.PAUSED, daily_history=rested),
        ]
    )


def test_fatigued_creative_is_paused_and_a_rested_one_enabled(make_entity, make_metrics, make_snapshot) -> None:
    actions = propose_creative_actions(
        _creatives(make_entity, make_metrics, make_snapshot, 0.4), AgentContext(run_id="r")
    )
    assert [(type(a), a.entity.entity_id) for a in actions] == [(PauseCreative, "a1"), (EnableCreative, "a3")]


def test_small_ctr_dips_are_not_fatigue(make_entity, make_metrics, make_snapshot) -> None:
    assert (
        propose_creative_actions(_creatives(make_entity, make_metrics, make_snapshot, 0.1), AgentContext(run_id="r"))
        == []
    )


def test_an_ad_group_is_never_left_without_a_creative(make_entity, make_metrics, make_snapshot) -> None:
    tired = [make_metrics(clicks=100, impressions=5000) for _ in range(7)] + [
        make_metrics(clicks=50, impressions=5000) for _ in range(3)
    ]
    snap = make_snapshot(
        [make_entity(K.AD_GROUP, "g1"), make_entity(K.CREATIVE, "a1", parent_id="g1", daily_history=tired)]
    )
    assert propose_creative_actions(snap, AgentContext(run_id="r")) == []


def test_a_disapproved_creative_is_never_enabled_even_when_rested(make_entity, make_metrics, make_snapshot) -> None:
    snap = _creatives(make_entity, make_metrics, make_snapshot, 0.4)
    # Meta's effective_status names review outcomes such as DISAPPROVED; such an ad is not served whatever
    # its own status (https://developers.facebook.com/documentation/ads-commerce/marketing-api/ads-webhooks/effective-status).
    blocked = [
        e.model_copy(update={"delivery_blocked_by": "DISAPPROVED"}) if e.ref.entity_id == "a3" else e
        for e in snap.entities
    ]
    actions = propose_creative_actions(snap.model_copy(update={"entities": blocked}), AgentContext(run_id="r"))
    assert not any(isinstance(a, EnableCreative) for a in actions)
    assert [(type(a), a.entity.entity_id) for a in actions] == [(PauseCreative, "a1")]  # a2 still runs


def test_an_enabled_creative_that_does_not_deliver_does_not_count_as_running(
    make_entity, make_metrics, make_snapshot
) -> None:
    tired = [make_metrics(clicks=100, impressions=5000) for _ in range(7)] + [
        make_metrics(clicks=50, impressions=5000) for _ in range(3)
    ]
    fresh = [make_metrics(clicks=100, impressions=5000) for _ in range(10)]
    snap = make_snapshot(
        [
            make_entity(K.AD_GROUP, "g1"),
            make_entity(K.CREATIVE, "a1", parent_id="g1", daily_history=tired),
            # Enabled, but in review: pausing a1 would leave the ad group with nothing on air.
            make_entity(K.CREATIVE, "a2", parent_id="g1", daily_history=fresh, delivery_blocked_by="PENDING_REVIEW"),
        ]
    )
    assert propose_creative_actions(snap, AgentContext(run_id="r")) == []


def test_steering_can_silence_an_agent(make_entity, make_metrics, make_snapshot) -> None:
    ctx = AgentContext(run_id="r", steering=Steering(agents=frozenset({"bid_shifter"})))
    assert propose_keyword_actions(_search_account(make_entity, make_metrics, make_snapshot), ctx) == []


def test_action_ids_are_unique_and_stable_for_a_replay(make_entity, make_metrics, make_snapshot) -> None:
    snap = _search_account(make_entity, make_metrics, make_snapshot)
    first = [a.action_id for a in propose_keyword_actions(snap, AgentContext(run_id="r1"))]
    again = [a.action_id for a in propose_keyword_actions(snap, AgentContext(run_id="r1"))]
    assert first == again and len(set(first)) == len(first)


def test_report_counts_agents_verdicts_and_renders_markdown(make_entity, make_metrics, make_snapshot) -> None:
    snap = _search_account(make_entity, make_metrics, make_snapshot)
    actions = propose_keyword_actions(snap, AgentContext(run_id="r"))
    report = build_report(
        run_id="r",
        mode="dry-run",
        trigger="cli",
        status="completed",
        snapshots={"acct": snap},
        actions=actions,
        decisions=[],
        results=[],
    )
    assert report.proposed_by_agent == {"keyword_insight": len(actions)}
    assert report.accounts[0].daily_budget_micros == 100_000_000
    md = render_markdown(report)
    assert "free shoes" in md and "| keyword_insight |" in md


# ---------------------------------------------------------------- bid shifter: the lever each strategy listens to


def _strategy_account(make_entity, make_metrics, make_snapshot, *, blocked: str | None = None, clicks: int = 900):
    """A tROAS campaign doing badly (ROAS 1.0 vs a 3.0 target, budget spent), a tCPA one, a manual one."""
    from bidloop.core.entities import BiddingStrategy

    def campaign(cid: str, strategy: BiddingStrategy, roas: float, **extra):
        history = [make_metrics(100 * f, 100 * f * roas, int(100 * f)) for f in (0.8, 0.9, 1.0, 1.1, 1.2, 1.0, 1.0)]
        return make_entity(
            K.CAMPAIGN,
            cid,
            daily_budget_micros=100_000_000,
            bidding_strategy=strategy,
            trailing_7d=make_metrics(700, 700 * roas, clicks=clicks),
            daily_history=history,
            **extra,
        )

    def keyword(kid: str, cid: str, strategy: BiddingStrategy, bid: int | None):
        return make_entity(
            K.KEYWORD,
            kid,
            parent_id=cid,
            campaign_id=cid,
            text=f"kw {kid}",
            match_type=MatchType.EXACT,
            bidding_strategy=strategy,
            cpc_bid_micros=bid,
            trailing_7d=make_metrics(700, 700, clicks=clicks),
        )

    troas, tcpa, manual = BiddingStrategy.TARGET_ROAS, BiddingStrategy.TARGET_CPA, BiddingStrategy.MANUAL_CPC
    return make_snapshot(
        [
            campaign("roas", troas, 1.0, target_roas_bps=30_000, delivery_blocked_by=blocked),
            keyword("k-roas", "roas", troas, 1_000_000),  # a stale bid under Smart Bidding: the platform ignores it
            campaign("cpa", tcpa, 1.0, target_cpa_micros=20_000_000),
            campaign("manual", manual, 1.0),
            keyword("k-manual", "manual", manual, 1_000_000),
            campaign("leader", manual, 6.0),
        ]
    )


def test_under_smart_bidding_the_bid_shifter_moves_the_target_never_the_bid(
    make_entity, make_metrics, make_snapshot
) -> None:
    # "the keyword-level bids will be ignored without errors" under a TARGET_ROAS campaign strategy:
    # https://developers.google.com/google-ads/api/docs/campaigns/bidding/override-strategies
    from bidloop.core.actions import SetTargetCpa, SetTargetRoas

    actions = propose_bid_actions(_strategy_account(make_entity, make_metrics, make_snapshot), AgentContext(run_id="r"))
    bids = {a.entity.entity_id for a in actions if isinstance(a, SetBid)}
    assert bids == {"k-manual"}  # spend less at poor ROAS: the manual keyword's bid goes down
    roas = next(a for a in actions if isinstance(a, SetTargetRoas))
    assert roas.entity.entity_id == "roas"
    assert roas.new_target_roas_bps > roas.old_target_roas_bps  # spend less at a higher return: raise tROAS
    cpa = next(a for a in actions if isinstance(a, SetTargetCpa))
    assert cpa.entity.entity_id == "cpa" and cpa.new_target_cpa_micros < cpa.old_target_cpa_micros


def test_the_bid_shifter_moves_nothing_into_or_out_of_a_holder_that_does_not_deliver(
    make_entity, make_metrics, make_snapshot
) -> None:
    snap = _strategy_account(make_entity, make_metrics, make_snapshot, blocked="CAMPAIGN_PAUSED")
    actions = propose_bid_actions(snap, AgentContext(run_id="r"))
    assert any(isinstance(a, SetBudget) for a in actions)
    assert not [a for a in actions if a.entity.entity_id in ("roas", "k-roas")]


def test_the_bid_shifter_does_not_act_without_enough_clicks(make_entity, make_metrics, make_snapshot) -> None:
    snap = _strategy_account(make_entity, make_metrics, make_snapshot, clicks=10)
    assert propose_bid_actions(snap, AgentContext(run_id="r")) == []  # default: 30 clicks over the week


def test_named_leaders_never_take_the_unspent_part_of_a_lifetime_budget(
    make_entity, make_metrics, make_snapshot
) -> None:
    # A lifetime budget's unspent part stays for the flight's remaining days ("You won't be charged more than
    # your lifetime budget", https://developers.facebook.com/documentation/ads-commerce/marketing-api/bidding/overview/budgets):
    # it is not unused budget to hand out. A daily holder's unspent budget is.
    snap = _holders(make_entity, make_metrics, make_snapshot)
    lifetime = [
        e.model_copy(update={"budget_period": BudgetPeriod.LIFETIME}) if e.ref.entity_id == "121" else e
        for e in snap.entities
    ]
    steer = Steering(focus_entity_ids=frozenset({"124"}))
    for entities, gives in ((snap.entities, True), (lifetime, False)):
        snapshot = snap.model_copy(update={"entities": entities})
        actions = propose_bid_actions(snapshot, AgentContext(run_id="r", steering=steer))
        cut = {a.entity.entity_id for a in actions if isinstance(a, SetBudget) and a.new_value < a.old_value}
        assert ("121" in cut) is gives
